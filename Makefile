# The README's two commands. Each does its own setup on a fresh machine:
# a virtualenv with the project installed (pip install -e .[dev]) and the pinned npm
# toolchain (npm ci: solc-js, anvil, OpenZeppelin).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed

.PHONY: setup test lint demo bench compile clean static

setup: $(PIP_STAMP) $(NPM_STAMP)

$(PIP_STAMP): pyproject.toml verifier/_internal/_leaves.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Two workers, a test file at a time each (module fixtures are made once): the tests mostly wait
# on anvil, PostgreSQL or Chromium. PYTEST_ARGS= (empty) runs them in one process.
PYTEST_ARGS ?= -n 2 --dist loadfile

test: setup lint
	$(PY) -m pytest $(PYTEST_ARGS)

# ruff (the rules and line length in pyproject.toml; code formatted by `ruff format`) and mypy
# (strict on verifier/)
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

demo: setup
	$(PY) scripts/demo.py $(DEMO_ARGS)

bench: setup
	$(PY) scripts/bench $(BENCH_ARGS)

compile: setup
	$(PY) scripts/compile_contracts.py

clean:
	rm -rf .certledger build *.egg-info

# The holder page's bundles (registry/static/holder-crypto.js: secp256k1; holder-scan.js: the QR
# reader), committed: the package ships them.
static: $(NPM_STAMP)
	node_modules/.bin/esbuild scripts/js/holder-crypto.mjs --bundle --format=iife \
		--global-name=certledgerHolderCrypto --minify --target=es2020 --legal-comments=eof \
		--outfile=registry/static/holder-crypto.js
	node_modules/.bin/esbuild scripts/js/holder-scan.mjs --bundle --format=iife \
		--global-name=certledgerHolderScan --minify --target=es2020 --legal-comments=eof \
		--outfile=registry/static/holder-scan.js
