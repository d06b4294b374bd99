"""The service under a chain-node outage, and two service instances on one PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
import uuid

import httpx
import pytest

from scripts.samples import business_licence_record, make_uscc
from tests.support.procs import ServiceProcess, create_issuer, write_manifest

pytestmark = [pytest.mark.chain, pytest.mark.slow]


def _issue(svc, key, n, *, chunk=250) -> set[str]:
    ids = set()
    for start in range(0, n, chunk):
        recs = [
            {**business_licence_record(), "id": f"urn:uuid:{uuid.uuid4()}"}
            for _ in range(min(chunk, n - start))
        ]
        r = httpx.post(
            svc.url + "/v1/credentials/bulk",
            params={"type": "BusinessLicence"},
            content="\n".join(json.dumps(x, ensure_ascii=False) for x in recs).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"},
            timeout=60,
        )
        assert r.status_code == 202, r.text
        assert not r.json()["rejected"]
        ids |= set(r.json()["ids"])
    return ids


def _wait_drained(svc, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if svc.health()["pendingCredentialsAndBatches"] == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"not drained: {svc.health()} {svc.tail()}")


def _chain_roots(chain, deployment) -> list[str]:
    anchors = chain.contract("AnchorRegistry", deployment.anchor_registry)
    return [
        "0x" + bytes(e["args"]["root"]).hex()
        for e in anchors.events.BatchAnchored().get_logs(from_block=deployment.deploy_block)
    ]


def test_node_outage_of_30_seconds_loses_nothing(tmp_path):
    """Stop anvil mid-issuance for 30 s: issuance keeps accepting, /health says degraded, anchoring
    resumes by itself when the node is back, and nothing is lost or failed."""
    from ledger_node import DEV_KEYS, AnvilNode, Chain, deploy
    from ledger_node.node import free_port

    node = AnvilNode(tmp_path / "node", port=free_port())
    node.start()
    try:
        chain = Chain(node.rpc_url)
        deployment, _ = deploy(chain, DEV_KEYS[0], tmp_path / "deployment.json")
        svc = ServiceProcess(
            tmp_path / "data",
            name="outage",
            env={
                "CERTLEDGER_RPC_URL": node.rpc_url,
                "CERTLEDGER_MANIFEST": str(tmp_path / "deployment.json"),
                "CERTLEDGER_KEYSTORE_PASSPHRASE": "outage",
                "CERTLEDGER_BATCH_SIZE": "200",
                "CERTLEDGER_BATCH_WINDOW_SECONDS": "0.3",
                "CERTLEDGER_INDEXER_ENABLED": "false",
            },
        )
        svc.start()
        key = create_issuer(svc, make_uscc())
        ids = _issue(svc, key, 1000)
        node.stop()
        t0 = time.monotonic()
        ids |= _issue(svc, key, 2000)  # accepted while the node is down
        health = svc.health()
        assert health["status"] == "degraded" and health["checks"]["chain"] == "unreachable"
        assert health["pendingCredentialsAndBatches"] > 0
        time.sleep(max(0.0, 30 - (time.monotonic() - t0)))
        node.start()
        _wait_drained(svc)
        assert svc.health()["status"] == "ok"
        r = httpx.get(
            svc.url + "/v1/batches", params={"limit": 1000}, headers={"Authorization": f"Bearer {key}"}
        )
        batches = r.json()["items"]
        assert {b["state"] for b in batches} == {"anchored"}
        assert sum(b["count"] for b in batches) == len(ids) == 3000
        roots = _chain_roots(chain, deployment)
        assert len(roots) == len(set(roots)) == len(batches)
        assert set(roots) == {b["root"] for b in batches}
        svc.kill()
    finally:
        node.stop()


def test_two_instances_on_one_postgres_never_anchor_a_batch_twice(
    chain, deployment, pg_database_url, tmp_path
):
    manifest = write_manifest(tmp_path / "deployment.json", deployment)
    common = {
        "CERTLEDGER_RPC_URL": chain.rpc_url,
        "CERTLEDGER_MANIFEST": str(manifest),
        "CERTLEDGER_DATABASE_URL": pg_database_url,
        "CERTLEDGER_KEYSTORE_PASSPHRASE": "two",
        "CERTLEDGER_BATCH_SIZE": "100",
        "CERTLEDGER_BATCH_WINDOW_SECONDS": "0.2",
        "CERTLEDGER_INDEXER_ENABLED": "false",
    }
    a = ServiceProcess(tmp_path / "a", name="a", env={**common, "CERTLEDGER_INSTANCE_ID": "instance-a"})
    a.start()
    # both instances share the DB, so they share the operator's keystore passphrase and the admin key
    b = ServiceProcess(tmp_path / "b", name="b", env={**common, "CERTLEDGER_INSTANCE_ID": "instance-b"})
    (tmp_path / "b" / "secrets").mkdir(parents=True)
    b.start()
    key = create_issuer(a, make_uscc())
    results: dict[str, set[str]] = {}

    def run(svc):
        results[svc.name] = _issue(svc, key, 3000, chunk=100)

    threads = [threading.Thread(target=run, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _wait_drained(a)
    _wait_drained(b)
    ids = results["a"] | results["b"]
    assert len(ids) == 6000
    r = httpx.get(a.url + "/v1/batches", params={"limit": 1000}, headers={"Authorization": f"Bearer {key}"})
    batches = r.json()["items"]
    assert {x["state"] for x in batches} == {"anchored"}
    assert sum(x["count"] for x in batches) == 6000
    roots = _chain_roots(chain, deployment)
    assert len(roots) == len(set(roots)), "a root was anchored twice"
    assert set(roots) == {x["root"] for x in batches}
    claimed = {x["id"]: x for x in batches}
    assert len(claimed) == len(batches)
    a.kill()
    b.kill()
