"""The local anvil node: lifecycle in a temporary data directory on a free port, persistence across
stop/start and SIGKILL, stopping only what we started, and clear one-line errors (API and CLI)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ledger_node import DEV_KEYS, AnvilNode, Chain, deploy
from ledger_node.errors import AnvilNotInstalled, PortInUse, RpcUnreachable
from ledger_node.node import free_port, port_is_free

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
CERTLEDGER = ROOT / ".venv" / "bin" / "certledger"
if not CERTLEDGER.exists():
    CERTLEDGER = Path(sys.executable).with_name("certledger")

pytestmark = [
    pytest.mark.chain,
    pytest.mark.skipif(not ANVIL.exists(), reason=f"no anvil: {ANVIL} missing (run `npm ci`)"),
]


def _children(pid: int) -> list[int]:
    """Direct children of `pid` (the npm `anvil` wrapper spawns the native binary)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_port_free(port: int, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_is_free("127.0.0.1", port):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture()
def node(tmp_path):
    """A node of our own (not the session's), cleaned up by pid — its own and its children's."""
    n = AnvilNode(tmp_path / "data", port=free_port())
    started: set[int] = set()
    n._test_started = started  # type: ignore[attr-defined]
    yield n
    pid = n._recorded_pid()
    if pid is not None:
        started.update([pid, *_children(pid)])
    n.stop()
    for p in started:
        if _alive(p):
            os.kill(p, signal.SIGKILL)


def _start(n: AnvilNode):
    status = n.start()
    n._test_started.update([status.pid, *_children(status.pid)])  # type: ignore[attr-defined]
    return status


def _anchor_something(rpc_url: str, data_dir: Path) -> tuple[Chain, object, bytes]:
    """Deploy, register dev key 1 as an issuer, anchor a random root; return (chain, deployment, root)."""
    chain = Chain(rpc_url)
    dep, _ = deploy(chain, DEV_KEYS[0], data_dir / "deployment.json")
    ir = chain.contract("IssuerRegistry", dep.issuer_registry)
    ar = chain.contract("AnchorRegistry", dep.anchor_registry)
    issuer = chain.w3.eth.account.from_key(DEV_KEYS[1]).address
    chain.transact(
        ir.functions.registerIssuer(issuer, "Bureau", "91440101MA59TEST0X", [1], 0, b"", 0, 0), DEV_KEYS[0]
    )
    root = os.urandom(32)
    chain.transact(ar.functions.anchor(root, 1, 1000), DEV_KEYS[1])
    return chain, dep, root


def _anchor_of(rpc_url: str, dep, root: bytes) -> tuple:
    chain = Chain(rpc_url)
    return tuple(chain.call(chain.contract("AnchorRegistry", dep.anchor_registry).functions.anchorOf(root)))


# -- lifecycle --------------------------------------------------------------------------------
def test_start_status_stop(node):
    assert node.status().running is False
    st = _start(node)
    assert st.running and st.chain_id == 31337 and st.block == 0 and st.pid
    assert st.rpc_url == f"http://127.0.0.1:{node.port}"
    assert json.loads(node.pid_file.read_text())["pid"] == st.pid
    assert json.loads(node.config_file.read_text())["port"] == node.port
    assert Chain(st.rpc_url).check_reachable() == 31337
    again = node.status()
    assert (again.running, again.pid) == (True, st.pid)
    assert node.stop() is True
    assert not node.pid_file.exists()
    assert _wait_port_free(node.port)
    assert node.status().running is False
    assert node.stop() is False  # nothing to stop


def test_start_twice_returns_the_running_node(node):
    first = _start(node)
    second = node.start()
    assert (second.running, second.pid, second.rpc_url) == (True, first.pid, first.rpc_url)
    # a fresh object for the same data directory finds it too (port remembered from the pid file)
    other = AnvilNode(node.data_dir)
    assert other.start().pid == first.pid
    assert other.status().rpc_url == first.rpc_url


def test_remembered_port(node):
    _start(node)
    node.stop()
    assert AnvilNode(node.data_dir).port == node.port


def test_stop_only_stops_the_recorded_anvil(node):
    """A stale pid file pointing at an unrelated live process must not get it killed."""
    node.data_dir.mkdir(parents=True)
    sleeper = subprocess.Popen(["sleep", "100"])
    try:
        node.pid_file.write_text(json.dumps({"pid": sleeper.pid, "host": "127.0.0.1", "port": node.port}))
        assert node.stop() is False
        time.sleep(0.2)
        assert sleeper.poll() is None, "stop() killed an unrelated process"
        assert not node.pid_file.exists()  # the stale pid file is cleared
        node.pid_file.write_text(json.dumps({"pid": sleeper.pid, "host": "127.0.0.1", "port": node.port}))
        node.kill()
        time.sleep(0.2)
        assert sleeper.poll() is None, "kill() killed an unrelated process"
        assert node.status().running is False
    finally:
        sleeper.kill()
        sleeper.wait()


def test_stale_pid_file_of_a_dead_process_is_ignored(node):
    node.data_dir.mkdir(parents=True)
    proc = subprocess.Popen(["true"])
    proc.wait()
    node.pid_file.write_text(json.dumps({"pid": proc.pid, "host": "127.0.0.1", "port": node.port}))
    st = _start(node)
    assert st.running and st.pid != proc.pid


# -- persistence ------------------------------------------------------------------------------
def test_anchors_survive_stop_and_start(node):
    st = _start(node)
    _, dep, root = _anchor_something(st.rpc_url, node.data_dir)
    before = _anchor_of(st.rpc_url, dep, root)
    assert before[2:4] == (1, 1000)
    node.stop()
    assert _wait_port_free(node.port)
    st = _start(node)
    assert _anchor_of(st.rpc_url, dep, root) == before
    # and the deployment is reused, not redeployed
    _, reused = deploy(Chain(st.rpc_url), DEV_KEYS[0], node.data_dir / "deployment.json")
    assert reused is True


def test_anchors_survive_kill(node):
    st = _start(node)
    _, dep, root = _anchor_something(st.rpc_url, node.data_dir)
    before = _anchor_of(st.rpc_url, dep, root)
    time.sleep(1.6)  # state is dumped every second
    node.kill()
    assert _wait_port_free(node.port), "the node still answers after kill()"
    st = _start(node)
    assert _anchor_of(st.rpc_url, dep, root) == before


def _mine(rpc_url: str, blocks: int) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "anvil_mine", "params": [hex(blocks)]}).encode()
    request = urllib.request.Request(rpc_url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert "error" not in json.loads(response.read())


def _files(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


def test_old_block_states_stay_in_the_data_dir_and_go_with_the_node(node):
    """anvil writes the states of older blocks to disk; they go to the node's own directory (not
    ~/.foundry/anvil/tmp, which filled a disk) and are removed on stop, and on start after a kill."""
    home_tmp = Path.home() / ".foundry" / "anvil" / "tmp"
    elsewhere = set(home_tmp.iterdir()) if home_tmp.exists() else set()
    st = _start(node)
    _mine(st.rpc_url, 600)  # more blocks than anvil keeps states of in memory
    deadline = time.monotonic() + 10
    while not _files(node.cache_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _files(node.cache_dir)
    assert (set(home_tmp.iterdir()) if home_tmp.exists() else set()) == elsewhere
    node.kill()
    assert _files(node.cache_dir)  # a killed anvil leaves them; the next start clears them
    st = _start(node)
    assert not _files(node.cache_dir)
    _mine(st.rpc_url, 600)
    node.stop()
    assert not node.cache_dir.exists()


# -- errors -----------------------------------------------------------------------------------
def test_anvil_not_installed(tmp_path):
    missing = tmp_path / "no" / "anvil"
    with pytest.raises(AnvilNotInstalled) as e:
        AnvilNode(tmp_path / "d", port=free_port(), anvil=missing).start()
    assert str(missing) in str(e.value) and "npm ci" in str(e.value)
    assert "\n" not in str(e.value)


def test_port_in_use(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(PortInUse) as e:
            AnvilNode(tmp_path / "d", port=port).start()
    assert f"port {port}" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "d" / "anvil.pid").exists()


def test_rpc_unreachable():
    port = free_port()
    with pytest.raises(RpcUnreachable) as e:
        Chain(f"http://127.0.0.1:{port}", timeout=2).check_reachable()
    assert f"127.0.0.1:{port}" in str(e.value) and "connection refused" in str(e.value)
    assert "\n" not in str(e.value)


# -- the CLI ----------------------------------------------------------------------------------
def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CERTLEDGER_")}
    environ.update(env or {})
    return subprocess.run([str(CERTLEDGER), *args], capture_output=True, text=True, timeout=60, env=environ)


def _one_error(proc: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    """A failed command: exit `code`, an `error:` message (whitespace-normalised), no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    message = " ".join(proc.stderr.split())
    assert message.startswith("error:"), proc.stderr
    for f in fragments:
        assert f in message, (f, message)
    return message


def test_cli_up_status_deploy_down(tmp_path):
    data, port = tmp_path / "data", str(free_port())
    try:
        up = _cli("node", "up", "--data-dir", str(data), "--port", port)
        assert up.returncode == 0, up.stderr
        assert f"node up: http://127.0.0.1:{port} (chain id 31337" in up.stdout
        pid = json.loads((data / "anvil.pid").read_text())["pid"]

        st = _cli("node", "status", "--data-dir", str(data))
        assert st.returncode == 0, st.stderr
        assert "chain id 31337" in st.stdout and f"pid {pid}" in st.stdout
        assert "contracts: not deployed" in st.stdout

        dep = _cli("deploy", "--data-dir", str(data))
        assert dep.returncode == 0, dep.stderr
        assert "contracts deployed on chain 31337" in dep.stdout
        manifest = json.loads((data / "deployment.json").read_text())
        again = _cli("deploy", "--data-dir", str(data))
        assert again.returncode == 0 and "contracts reused on chain 31337" in again.stdout
        for addr in manifest["contracts"].values():
            assert addr in again.stdout

        st = _cli("node", "status", "--data-dir", str(data))
        assert st.returncode == 0 and "contracts: deployed" in st.stdout

        down = _cli("node", "down", "--data-dir", str(data))
        assert down.returncode == 0 and "node down" in down.stdout
        assert _wait_port_free(int(port))
        down = _cli("node", "down", "--data-dir", str(data))
        assert down.returncode == 0 and "no node of this data directory is running" in down.stdout

        st = _cli("node", "status", "--data-dir", str(data))
        _one_error(st, 1, "node down", f"127.0.0.1:{port}", "connection refused")
        dep = _cli("deploy", "--data-dir", str(data))
        _one_error(dep, 1, "cannot reach the chain node", f"127.0.0.1:{port}")
    finally:
        AnvilNode(data).stop()


def test_cli_port_in_use(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        up = _cli("node", "up", "--data-dir", str(tmp_path / "d"), "--port", str(port))
    _one_error(up, 1, f"port {port} on 127.0.0.1 is in use")


def test_cli_manifest_errors(tmp_path, anvil_node):
    data = tmp_path / "d"
    data.mkdir()
    (data / "deployment.json").write_text("{not json")
    port = str(anvil_node.port)
    dep = _cli("deploy", "--data-dir", str(data), "--port", port)
    _one_error(dep, 1, "is not JSON")
    st = _cli("node", "status", "--data-dir", str(data), "--port", port)
    _one_error(st, 1, "contracts:", "is not JSON")
    # a non-dev chain without a deployer key is a usage error (exit 2); not reachable here, so
    # check the reachable-but-wrong-chain manifest instead
    (data / "deployment.json").write_text(
        json.dumps(
            {
                "chainId": 1,
                "genesisHash": "0x" + "11" * 32,
                "deployBlock": 1,
                "deployer": "0x" + "22" * 20,
                "governance": "0x" + "22" * 20,
                "contracts": {
                    k: "0x" + "33" * 20 for k in ("issuerRegistry", "anchorRegistry", "dataFlowLedger")
                },
            }
        )
    )
    dep = _cli("deploy", "--data-dir", str(data), "--port", port)
    _one_error(dep, 1, "is for chain id 1", "chain id 31337")


def test_cli_error_is_one_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        up = _cli("node", "up", "--data-dir", str(tmp_path / "d"), "--port", str(port))
    assert up.returncode == 1
    assert len(up.stderr.strip().splitlines()) == 1, up.stderr


def test_cli_deploy_key_errors(tmp_path):
    """Off the development chain a deployer key is required (usage error, exit 2); an unfunded key
    is refused with a one-line InsufficientFunds message (exit 1)."""
    n = AnvilNode(tmp_path / "other", port=free_port(), chain_id=4242)
    st = n.start()
    pids = [st.pid, *_children(st.pid)]
    try:
        dep = _cli("deploy", "--data-dir", str(tmp_path / "d"), "--rpc", st.rpc_url)
        _one_error(dep, 2, "chain 4242 is not the development chain", "CERTLEDGER_DEPLOYER_KEY")
        from eth_account import Account

        key = "0x" + bytes(Account.create().key).hex()
        dep = _cli(
            "deploy",
            "--data-dir",
            str(tmp_path / "d"),
            "--rpc",
            st.rpc_url,
            env={"CERTLEDGER_DEPLOYER_KEY": key},
        )
        _one_error(dep, 1, Account.from_key(key).address, "no funds", "4242")
        assert not (tmp_path / "d" / "deployment.json").exists()
    finally:
        n.stop()
        for p in pids:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
