"""The installed package is self-contained (issue 20, point 5): the wheel, installed into a fresh
virtualenv and run from a directory outside the source tree, verifies in every mode
(``certledger-verify`` with a bundle, over ``--rpc``, and with a proof-carrying anchor) against a
real anvil, and deploys and serves (``certledger deploy`` + ``certledger serve`` on SQLite) — what
it reads at run time (contract artifacts, schemas, templates, static files, migrations) is package
data.

Slow: building the wheel and installing it with its service extra into a new virtualenv (from the
package index; pip's cache makes a second run quicker) takes a minute or two.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support.anvil import PrivateAnvil, free_port
from tests.support.contracts import ISSUER_KEY, Deployment
from tests.support.factory import AT, World
from verifier import RpcTrust, build_trust_bundle, eth_address, fetch_anchor_proof, sign_trust_bundle

pytestmark = [pytest.mark.slow, pytest.mark.chain]

ROOT = Path(__file__).resolve().parents[1]
OPERATOR_KEY = b"\x42" * 32
ISSUER_NAME = "广东省市场监督管理局"


def _run(args: list[str], *, timeout: float, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)  # noqa: PLW1510


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The project's wheel (built from a copy of what the Dockerfile copies), installed with its
    service extra into a new virtualenv; commands run from an empty directory, without PYTHONPATH."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in ("verifier", "ledger_node", "registry"):
        shutil.copytree(
            ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so")
        )
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(src)],
        timeout=600,
        cwd=tmp,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp / "dist").glob("certledger-*.whl")
    made = _run([sys.executable, "-m", "venv", str(tmp / "venv")], timeout=120)
    assert made.returncode == 0, made.stderr
    bin_dir = tmp / "venv" / "bin"
    got = _run(
        [str(bin_dir / "pip"), "install", "-q", "--disable-pip-version-check", f"{wheel}[service]"],
        timeout=900,
        cwd=tmp,
    )
    assert got.returncode == 0, got.stderr
    work = tmp / "work"
    work.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith("CERTLEDGER_")
    }
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return SimpleNamespace(bin=bin_dir, cwd=work, env=env, site=tmp / "venv" / "lib")


@pytest.fixture(scope="module")
def wheel_chain(anvil_node):
    """A private anvil with the contracts deployed by web3 (depends on ``anvil_node`` for its "no anvil" skip)."""
    node = PrivateAnvil()
    yield node, Deployment(node)
    node.stop()


def _probe(installed, code: str) -> str:
    """What ``python -c code`` prints in the wheel's virtualenv, run outside the source tree."""
    out = _run([str(installed.bin / "python"), "-c", code], timeout=120, cwd=installed.cwd, env=installed.env)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_installed_packages_run_from_site_packages(installed):
    files = json.loads(
        _probe(
            installed,
            "import json, sys, verifier, ledger_node, registry; "
            "print(json.dumps([m.__file__ for m in (verifier, ledger_node, registry)] + sys.path))",
        )
    )
    assert all(Path(f).is_relative_to(installed.site) for f in files[:3]), files[:3]
    assert not any(p and Path(p).resolve().is_relative_to(ROOT) for p in files[3:]), (
        "the source tree is on sys.path"
    )


def test_the_wheel_carries_the_c_accelerator(installed):
    """The wheel builds verifier/_internal/_leaves.c (optional: an install without a C compiler runs
    the pure-Python path); here, with one, it is built, installed and used."""
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler here: the wheel is pure Python (CI installs gcc)")
    so_file, used = _probe(
        installed,
        "from verifier._internal import _leaves, disclosure; "
        "print(_leaves.__file__); print(disclosure.accelerated_target_hash is _leaves.target_hash)",
    ).split()
    assert Path(so_file).is_relative_to(installed.site) and so_file.endswith(".so"), so_file
    assert used == "True"


def test_certledger_verify_from_the_wheel_in_bundle_rpc_and_proof_carrying_modes(
    installed, wheel_chain, tmp_path
):
    anvil, deployed = wheel_chain
    w = World(chain_id=deployed.chain_id, anchor_registry=deployed.anchors.address.lower())
    issuer = w.add_issuer(name=ISSUER_NAME)
    issuer.id = deployed.register_issuer(ISSUER_KEY, ISSUER_NAME, issuer.uscc, [1, 2, 3])
    issuer.key, issuer.account = ISSUER_KEY, eth_address(ISSUER_KEY)
    copies = w.issue(issuer, [w.document(issuer) for _ in range(2)])
    root = bytes.fromhex(copies[0]["proof"]["merkleRoot"][2:])
    receipt = deployed.anchor(ISSUER_KEY, root, 1, len(copies))
    for c in copies:
        c["proof"]["anchor"]["txHash"] = "0x" + bytes(receipt["transactionHash"]).hex()
        c["proof"]["anchor"]["blockNumber"] = int(receipt["blockNumber"])
    carried = copy.deepcopy(copies[1])
    carried["proof"]["anchorProof"] = fetch_anchor_proof(
        anvil.w3, deployed.anchors.address, root, OPERATOR_KEY
    )

    # two bundles of the real chain, signed by the operator: one with the anchor, one without
    rpc = RpcTrust(anvil.url, deployed.manifest())
    block = anvil.w3.eth.get_block(rpc.block_number)
    for name, anchors in (("bundle.json", [rpc.anchor(root)]), ("no-anchors.json", [])):
        data = build_trust_bundle(
            chain_id=deployed.chain_id,
            contracts={k: v.lower() for k, v in deployed.manifest()["contracts"].items()},
            block={
                "number": rpc.block_number,
                "hash": "0x" + bytes(block["hash"]).hex(),
                "timestamp": rpc.block_timestamp,
                "stateRoot": "0x" + bytes(block["stateRoot"]).hex(),
            },
            issuers=[rpc.issuer(issuer.id)],
            anchors=anchors,
        )
        (tmp_path / name).write_text(json.dumps(sign_trust_bundle(data, OPERATOR_KEY)))
    (tmp_path / "deployment.json").write_text(json.dumps(deployed.manifest()))
    for name, doc in (("c0.json", copies[0]), ("c1.json", copies[1]), ("carried.json", carried)):
        (tmp_path / name).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")

    def verify(*args: str) -> tuple[int, dict]:
        proc = _run(
            [str(installed.bin / "certledger-verify"), *args, "--at", AT, "--json"],
            timeout=120,
            cwd=installed.cwd,
            env=installed.env,
        )
        assert proc.returncode in (0, 1), proc.stderr
        return proc.returncode, json.loads(proc.stdout.splitlines()[0])

    operator = ("--operator", eth_address(OPERATOR_KEY))
    code, out = verify(str(tmp_path / "c0.json"), "--bundle", str(tmp_path / "bundle.json"), *operator)
    assert code == 0 and out["valid"], out
    code, out = verify(
        str(tmp_path / "c0.json"), "--rpc", anvil.url, "--deployment", str(tmp_path / "deployment.json")
    )
    assert code == 0 and out["valid"], out
    # proof-carrying: the bundle lacks the anchor, the credential's own storage proof supplies it
    # (the storage layout it needs is package data)
    code, out = verify(
        str(tmp_path / "carried.json"), "--bundle", str(tmp_path / "no-anchors.json"), *operator
    )
    assert code == 0 and out["valid"], out
    code, out = verify(str(tmp_path / "c1.json"), "--bundle", str(tmp_path / "no-anchors.json"), *operator)
    assert code == 1 and {c["name"]: c["status"] for c in out["checks"]}["anchor"] == "failed", out


def test_certledger_deploy_and_serve_from_the_wheel_on_sqlite(installed, wheel_chain, tmp_path):
    anvil, _ = wheel_chain
    data_dir = tmp_path / "data"
    deployed = _run(
        [str(installed.bin / "certledger"), "deploy", "--data-dir", str(data_dir), "--rpc", anvil.url],
        timeout=300,
        cwd=installed.cwd,
        env=installed.env,
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    manifest = json.loads((data_dir / "deployment.json").read_text())
    assert set(manifest["contracts"]) == {
        "issuerRegistry",
        "anchorRegistry",
        "dataFlowLedger",
        "pledgeRegistry",
    }

    port = free_port()
    env = {**installed.env, "CERTLEDGER_DATA_DIR": str(data_dir), "CERTLEDGER_RPC_URL": anvil.url}
    server = subprocess.Popen(
        [str(installed.bin / "certledger"), "serve", "--port", str(port)],
        cwd=installed.cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5) as r:
                    health = json.loads(r.read())
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    pytest.fail(f"certledger serve did not come up: {server.stdout.read().decode()[-3000:]}")
                time.sleep(0.5)
        assert (data_dir / "registry.db").exists() or any(data_dir.glob("*.db")), list(data_dir.iterdir())
        assert health, health
        # a page from templates/ with its script from static/ (package data)
        with urllib.request.urlopen(f"{base}/verify", timeout=10) as r:
            page = r.read().decode()
        assert r.status == 200 and "<html" in page.lower()
        with urllib.request.urlopen(f"{base}/verify/static/verify.js", timeout=10) as r:
            assert r.status == 200 and r.read()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
