"""Start, stop and inspect the local development chain: anvil from node_modules.

The node's state is persisted to `<data_dir>/anvil-state.json` (`--state`, dumped every second
and on exit), so `certledger node down` / `up`, and even `kill -9`, keep every anchor and the
chain's identity (its genesis block: see `keep_first_genesis`). The pid is
recorded in `<data_dir>/anvil.pid`; `stop()` stops only that process, and only if it still is
the anvil we started.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ledger_node.errors import AnvilNotInstalled, NodeStartFailed, PortInUse, RpcUnreachable

ROOT = Path(__file__).resolve().parent.parent
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"


def _native_anvil(wrapper: Path) -> Path:
    """The platform binary behind npm's `.bin/anvil` node wrapper (so our pid *is* anvil's)."""
    for candidate in sorted((wrapper.parent.parent / "@foundry-rs").glob("anvil-*/bin/anvil")):
        if os.access(candidate, os.X_OK):
            return candidate
    return wrapper


DEV_CHAIN_ID = 31337
DEV_MNEMONIC = "test test test test test test test test test test test junk"


@cache
def _dev_keys() -> tuple[str, ...]:
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    return tuple(
        "0x" + bytes(Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key).hex()
        for i in range(20)
    )


class _DevKeys:
    """The 20 well-known anvil development keys (never use them on a real network)."""

    def __getitem__(self, i: int) -> str:
        return _dev_keys()[i]

    def __len__(self) -> int:
        return 20

    def __iter__(self):
        return iter(_dev_keys())


DEV_KEYS = _DevKeys()

#: The development chain's 4 test QBFT validator keys (anvil seals nothing; docs/FORMAT.md §14.5):
#: ``sha256("certledger/dev-validator/<i>")``. Public by construction — never use them elsewhere.
DEV_VALIDATOR_KEYS: tuple[bytes, ...] = tuple(
    hashlib.sha256(f"certledger/dev-validator/{i}".encode()).digest() for i in range(4)
)


def dev_validator_set(chain_id: int = DEV_CHAIN_ID) -> dict:
    """The development validators as a validators file (FORMAT.md §14.2)."""
    from verifier import ValidatorSet, eth_address

    return ValidatorSet(chain_id, tuple(eth_address(k) for k in DEV_VALIDATOR_KEYS)).to_json()


@dataclass(frozen=True)
class NodeStatus:
    running: bool
    pid: int | None
    rpc_url: str
    chain_id: int | None = None
    block: int | None = None


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def rpc_chain_id(rpc_url: str, timeout: float = 2.0) -> int:
    """eth_chainId over plain HTTP (no web3 import): raise RpcUnreachable if it does not answer."""
    import urllib.error
    import urllib.request

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    req = urllib.request.Request(rpc_url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(json.loads(resp.read())["result"], 16)
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ConnectionRefusedError):
            reason = "connection refused"
        raise RpcUnreachable(f"cannot reach the chain node at {rpc_url}: {reason}") from None


class AnvilNode:
    """The local anvil node belonging to one data directory."""

    def __init__(
        self,
        data_dir: str | Path = ".certledger",
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        chain_id: int = DEV_CHAIN_ID,
        anvil: Path = ANVIL,
        persist: bool = True,
        extra_args: Sequence[str] = (),
    ):
        """``persist=False`` keeps the chain in memory only (no ``--state`` dump: tests and
        benchmarks that make long histories); ``extra_args`` go to anvil as they are."""
        self.data_dir = Path(data_dir)
        self.persist = persist
        self.extra_args = tuple(extra_args)
        self.host = host
        self.port = port if port is not None else self._remembered_port()
        self.chain_id = chain_id
        self.anvil = Path(anvil)

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.data_dir / "node.json"

    def _remembered_port(self) -> int:
        """The port this data directory's node last used (8545 the first time)."""
        try:
            return int(json.loads(self.config_file.read_text())["port"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return 8545

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "anvil.pid"

    @property
    def state_file(self) -> Path:
        return self.data_dir / "anvil-state.json"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "anvil.log"

    @property
    def cache_dir(self) -> Path:
        """Where anvil keeps the states of older blocks once they leave its memory (``--cache-path``;
        by default ``~/.foundry/anvil/tmp``, which it never cleans when signalled: 800 files per
        900 blocks, tens of GB over a few hundred test sessions). Emptied on start and on stop:
        a restarted anvil serves its loaded state, not these."""
        return self.data_dir / "anvil-cache"

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> NodeStatus:
        """Start anvil unless our node already runs; return its status once it answers."""
        pid = self._recorded_pid()
        if pid is not None:
            self._load_recorded_port()
            return self.status()
        if not self.anvil.exists():
            raise AnvilNotInstalled(f"anvil is not installed ({self.anvil} missing): run `npm ci` in {ROOT}")
        if not port_is_free(self.host, self.port):
            raise PortInUse(
                f"port {self.port} on {self.host} is in use by another process: "
                "stop it or choose another port (--port / CERTLEDGER_NODE_PORT)"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        if self.persist:
            keep_first_genesis(self.state_file)
        cmd = [
            str(_native_anvil(self.anvil)),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--accounts",
            "20",
            "--balance",
            "1000000",
            *(("--state", str(self.state_file), "--state-interval", "1") if self.persist else ()),
            "--cache-path",
            str(self.cache_dir),
            *self.extra_args,
        ]
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise NodeStartFailed(f"anvil exited with status {proc.returncode}: {self._log_tail()}")
            try:
                rpc_chain_id(self.rpc_url, timeout=1.0)
                break
            except RpcUnreachable:
                if time.monotonic() > deadline:
                    proc.kill()
                    raise NodeStartFailed(
                        f"anvil did not answer within {timeout:.0f} s: {self._log_tail()}"
                    ) from None
                time.sleep(0.1)
        self.pid_file.write_text(json.dumps({"pid": proc.pid, "host": self.host, "port": self.port}))
        self.config_file.write_text(
            json.dumps({"host": self.host, "port": self.port, "chainId": self.chain_id})
        )
        self._check_genesis_link()
        return self.status()

    def _check_genesis_link(self) -> None:
        """Refuse a node whose block 1 does not follow its block 0: the loaded state has lost the
        chain's genesis, and every manifest made for this chain would be refused as another's."""
        first = _rpc_call(self.rpc_url, "eth_getBlockByNumber", ["0x1", False])
        if not first:
            return  # nothing mined yet: block 0 is whatever anvil made
        genesis = _rpc_call(self.rpc_url, "eth_getBlockByNumber", ["0x0", False])
        if genesis is None or genesis.get("hash") != first.get("parentHash"):
            self.stop()
            raise NodeStartFailed(
                f"the chain state in {self.state_file} has lost its genesis block (block 1's parent is "
                f"{str(first.get('parentHash'))[:12]}…, block 0 is {str((genesis or {}).get('hash'))[:12]}…): "
                "restore the data directory from a backup"
            )

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop our anvil (only the recorded pid, only if it is still anvil). True if it ran."""
        pid = self._recorded_pid()
        if pid is None:
            return False
        _signal_group(pid, signal.SIGTERM)  # anvil dumps its state on SIGTERM
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
        self._wait_port_free()
        self.pid_file.unlink(missing_ok=True)
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        return True

    def kill(self) -> None:
        """SIGKILL our anvil (tests: the state file must survive a crash)."""
        pid = self._recorded_pid()
        if pid is not None:
            _signal_group(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.02)
            self._wait_port_free()
            self.pid_file.unlink(missing_ok=True)

    def _wait_port_free(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not port_is_free(self.host, self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def status(self) -> NodeStatus:
        pid = self._recorded_pid()
        if pid is not None:
            self._load_recorded_port()
        try:
            chain_id = rpc_chain_id(self.rpc_url, timeout=1.0)
        except RpcUnreachable:
            return NodeStatus(running=False, pid=pid, rpc_url=self.rpc_url)
        block = _rpc_block_number(self.rpc_url)
        return NodeStatus(running=True, pid=pid, rpc_url=self.rpc_url, chain_id=chain_id, block=block)

    # -- helpers --------------------------------------------------------------------------
    def _recorded_pid(self) -> int | None:
        """The recorded pid if that process is alive and is an anvil; stale pid files are removed."""
        try:
            info = json.loads(self.pid_file.read_text())
            pid = int(info["pid"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            cmdline = []
        if not _alive(pid) or not any(part.endswith(b"anvil") for part in cmdline):
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def _load_recorded_port(self) -> None:
        try:
            info = json.loads(self.pid_file.read_text())
            self.host, self.port = info["host"], int(info["port"])
        except (FileNotFoundError, ValueError, KeyError):
            pass

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except FileNotFoundError:
            return "no log"
        return " | ".join(lines[-3:]) or "no output"


def keep_first_genesis(state_file: Path) -> None:
    """Leave one block 0 in anvil's state file: the chain's own genesis.

    anvil (1.7) makes a fresh genesis block, stamped with the current time, every time it starts;
    loading ``--state`` then adds the dumped blocks, and the next dump lists both genesis blocks
    (serialised from a hash map, in no fixed order). Which of them the following load keeps as
    block 0 is then a matter of that order, so from the second restart on the node can answer
    with a genesis hash that is not the one the chain began with (and block 1's parent is not
    block 0). The first genesis is the one made when the chain began: every later one is made
    at a later start, so it has the earliest timestamp (two made in the same second are the same
    block). The file is rewritten atomically, and only when it holds more than one block 0.
    """
    try:
        state = json.loads(state_file.read_bytes())
        blocks = state["blocks"]
        genesis = [b for b in blocks if int(b["header"]["number"], 16) == 0]
        if len(genesis) < 2:
            return
        first = min(genesis, key=lambda b: int(b["header"]["timestamp"], 16))
    except FileNotFoundError:
        return
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NodeStartFailed(
            f"the chain state file {state_file} is not anvil's state dump: {exc!r}"
        ) from None
    state["blocks"] = [b for b in blocks if b is first or int(b["header"]["number"], 16) != 0]
    tmp = state_file.with_suffix(".repair.tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, state_file)


def _signal_group(pid: int, sig: int) -> None:
    """Signal anvil's process group (it runs in its own session), falling back to the pid."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child counts as dead
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            return False
    except OSError:
        pass
    return True


def _rpc_call(rpc_url: str, method: str, params: list) -> Any:
    """One JSON-RPC call over plain HTTP; None if the node does not answer with a result."""
    import urllib.request

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(rpc_url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return json.loads(resp.read()).get("result")
    except Exception:
        return None


def _rpc_block_number(rpc_url: str) -> int | None:
    result = _rpc_call(rpc_url, "eth_blockNumber", [])
    try:
        return int(result, 16)
    except (TypeError, ValueError):
        return None
