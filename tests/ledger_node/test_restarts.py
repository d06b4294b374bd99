"""The embedded chain keeps its identity across any number of restarts (issue: refused as "another
chain" after its second restart), and a node that really is another chain is still refused.

Everything here is the real thing: `certledger node up/down`, `certledger deploy`, `certledger serve`
and `certledger audit` as subprocesses in a fresh data directory, anvil stopped by `node down` or
killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from ledger_node import DEV_KEYS, AnvilNode, Chain, deploy
from ledger_node.deploy import check_manifest, load_manifest
from ledger_node.errors import WrongChain
from ledger_node.node import free_port
from scripts.samples import business_licence_record, make_uscc
from tests.support.procs import ServiceProcess, create_issuer

pytestmark = [pytest.mark.chain, pytest.mark.slow]
CERTLEDGER = Path(sys.executable).parent / "certledger"


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CERTLEDGER), *args], env=env, capture_output=True, text=True, timeout=300)


def _issue_and_drain(svc: ServiceProcess, key: str, n: int) -> None:
    recs = [{**business_licence_record(), "id": f"urn:uuid:{uuid.uuid4()}"} for _ in range(n)]
    r = httpx.post(
        svc.url + "/v1/credentials/bulk",
        params={"type": "BusinessLicence"},
        content="\n".join(json.dumps(x, ensure_ascii=False) for x in recs).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"},
        timeout=60,
    )
    assert r.status_code == 202 and not r.json()["rejected"], r.text
    deadline = time.monotonic() + 120
    while svc.health()["pendingCredentialsAndBatches"]:
        assert time.monotonic() < deadline, f"not anchored: {svc.health()} {svc.tail()}"
        time.sleep(0.3)


def _stop_service(svc: ServiceProcess) -> None:
    os.killpg(svc.proc.pid, signal.SIGTERM)
    assert svc.wait_dead(60), svc.tail()


def _anchors(chain: Chain, manifest_path: Path) -> dict[str, tuple]:
    """Every anchor on the chain, root → the contract's record of it."""
    dep = load_manifest(manifest_path)
    registry = chain.contract("AnchorRegistry", dep.anchor_registry)
    roots = [
        bytes(e["args"]["root"])
        for e in registry.events.BatchAnchored().get_logs(from_block=dep.deploy_block)
    ]
    return {"0x" + r.hex(): tuple(registry.functions.anchorOf(r).call()) for r in roots}


def test_the_chain_keeps_its_identity_over_restarts_by_node_down_and_sigkill(tmp_path):
    data = tmp_path / "data"
    port = free_port()
    env = {**os.environ, "CERTLEDGER_DATA_DIR": str(data), "CERTLEDGER_NODE_PORT": str(port)}
    svc = ServiceProcess(
        data,
        env={
            "CERTLEDGER_NODE_PORT": str(port),
            "CERTLEDGER_BATCH_SIZE": "5",
            "CERTLEDGER_BATCH_WINDOW_SECONDS": "0.2",
        },
        name="restarts",
    )
    node = AnvilNode(data, port=port)
    try:
        svc.start()  # the embedded defaults: starts the node and deploys
        key = create_issuer(svc, make_uscc())
        _issue_and_drain(svc, key, 7)
        _stop_service(svc)
        chain = Chain(node.rpc_url)
        before = _anchors(chain, data / "deployment.json")
        assert len(before) == 2
        genesis = chain.genesis_hash()

        for cycle, how in enumerate(["down", "kill", "down", "kill", "kill", "down"], start=1):
            if how == "down":
                assert _cli(env, "node", "down").returncode == 0
            else:
                time.sleep(1.2)  # anvil dumps its state every second; a kill loses at most that
                node.kill()
            up = _cli(env, "node", "up")
            assert up.returncode == 0, f"cycle {cycle} ({how}): {up.stdout}{up.stderr}"
            dep = _cli(env, "deploy")
            assert dep.returncode == 0, f"cycle {cycle} ({how}): deployment refused: {dep.stdout}{dep.stderr}"
            assert "another chain" not in dep.stdout + dep.stderr
            assert chain.genesis_hash() == genesis, f"cycle {cycle} ({how}): genesis changed"
            after = _anchors(chain, data / "deployment.json")
            assert {r: after[r] for r in before} == before, f"cycle {cycle} ({how}): an anchor changed"
            svc.start()  # refuses to start on WrongChain
            _issue_and_drain(svc, key, 3)  # and anchors more, carried into the next cycle
            _stop_service(svc)
            audit = _cli(env, "audit")
            assert audit.returncode == 0 and "clean" in audit.stdout, f"cycle {cycle} ({how}): {audit.stdout}"
            before = _anchors(chain, data / "deployment.json")
        assert len(before) == 2 + 6
    finally:
        svc.kill()
        _cli(env, "node", "down")


def test_a_different_chain_with_the_same_id_is_still_refused(tmp_path):
    """Two nodes with chain id 31337 and the same dev accounts: a manifest from one is refused on the
    other, even after restarts of both."""
    a = AnvilNode(tmp_path / "a", port=free_port())
    b = AnvilNode(tmp_path / "b", port=free_port())
    try:
        a.start()
        time.sleep(1.1)  # genesis blocks stamped in different seconds
        b.start()
        manifest, _ = deploy(Chain(a.rpc_url), DEV_KEYS[0], tmp_path / "a.json")
        deploy(Chain(b.rpc_url), DEV_KEYS[0], tmp_path / "b.json")
        for node in (a, b):
            node.stop()
            node.start()
        check_manifest(Chain(a.rpc_url), manifest, tmp_path / "a.json")  # its own chain: accepted
        with pytest.raises(WrongChain, match="another chain with id 31337"):
            check_manifest(Chain(b.rpc_url), manifest, tmp_path / "a.json")
    finally:
        a.stop()
        b.stop()


def test_a_state_file_that_is_not_anvils_is_refused_with_one_line(tmp_path):
    node = AnvilNode(tmp_path, port=free_port())
    node.state_file.parent.mkdir(parents=True, exist_ok=True)
    node.state_file.write_text('{"blocks": [{"header": {"number": "zz"}}]}')
    from ledger_node.errors import NodeStartFailed

    with pytest.raises(NodeStartFailed, match="not anvil's state dump"):
        node.start()
