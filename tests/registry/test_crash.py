"""Crash safety of the issuance pipeline, with the real service process killed by SIGKILL.

A bulk issuance of 20,000 credentials runs while the service is killed at 24 moments: at every
pipeline state (after `accepted`, `sealed`, `signed`, `sending` is committed, after `broadcast`,
after `anchored`), each at its first and third passage, via CERTLEDGER_TEST_CRASH_AFTER
(tests/support/crashing_service.py; the process
SIGKILLs itself there), and at 12 random moments from outside. Afterwards, compared with the
chain's own events: every accepted credential is anchored exactly once, no root is anchored
twice, every stored proof leads to an anchored root.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import uuid

import httpx
import pytest

from scripts.samples import business_licence_record, make_uscc
from tests.support.procs import ServiceProcess, create_issuer, write_manifest
from verifier._internal.merkle import leaf_hash, process_proof

pytestmark = [pytest.mark.chain, pytest.mark.slow]

POINTS = ("accepted", "sealed", "signed", "sending", "broadcast", "anchored")
TOTAL = 20_000
CHUNK = 400


def _env(chain, manifest, **extra):
    return {
        "CERTLEDGER_RPC_URL": chain.rpc_url,
        "CERTLEDGER_MANIFEST": str(manifest),
        "CERTLEDGER_KEYSTORE_PASSPHRASE": "crash-test",
        "CERTLEDGER_BATCH_SIZE": "500",
        "CERTLEDGER_BATCH_WINDOW_SECONDS": "0.3",
        "CERTLEDGER_INSTANCE_ID": "crash-test",
        "CERTLEDGER_INDEXER_ENABLED": "false",
        **extra,
    }


def _post(svc, key, chunk) -> set[str] | None:
    """Send one chunk; the ids now in the registry, or None if the service died meanwhile."""
    body = "\n".join(json.dumps(r, ensure_ascii=False) for r in chunk)
    try:
        r = httpx.post(
            svc.url + "/v1/credentials/bulk",
            params={"type": "BusinessLicence"},
            content=body.encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"},
            timeout=60,
        )
    except httpx.HTTPError:
        return None
    assert r.status_code == 202, r.text
    res = r.json()
    ids = set(res["ids"])
    for rej in res["rejected"]:  # a resent chunk whose first attempt was committed before the crash
        assert all("exists already" in e for e in rej["errors"]), rej
        ids.add(chunk[rej["index"]]["id"])
    return ids


def test_sigkill_at_every_pipeline_state_loses_nothing_and_anchors_once(chain, deployment, tmp_path):
    rng = random.Random(20261122)
    manifest = write_manifest(tmp_path / "deployment.json", deployment)
    svc = ServiceProcess(tmp_path / "data", env=_env(chain, manifest), name="crash")
    svc.start()
    key = create_issuer(svc, make_uscc(rng))

    records = [
        {**business_licence_record(make_uscc(rng)), "id": f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128))}"}
        for _ in range(TOTAL)
    ]
    chunks = [records[i : i + CHUNK] for i in range(0, TOTAL, CHUNK)]
    acked: set[str] = set()
    plan = [f"{p}:{n}" for n in (1, 3) for p in POINTS] + [None] * 12
    rng.shuffle(plan)
    kills = 0
    svc.kill()
    for spec in plan:
        svc.start(crash_after=spec)
        timer = None
        if spec is None:
            timer = threading.Timer(rng.uniform(0.2, 2.5), svc.kill)
            timer.start()
        sends = 0
        while svc.alive() and chunks and sends < 3:
            got = _post(svc, key, chunks[0])
            if got is None:
                break
            acked |= got
            chunks.pop(0)
            sends += 1
        if not svc.wait_dead(timeout=15):  # the crash point was not reached in time: kill from outside
            svc.kill()
        if timer:
            timer.cancel()
        svc.kill()
        kills += 1
    assert kills >= 20

    svc.start()
    while chunks:
        got = _post(svc, key, chunks[0])
        assert got is not None
        acked |= got
        chunks.pop(0)
    import time

    deadline = time.monotonic() + 180
    while svc.health()["pendingCredentialsAndBatches"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert svc.health()["pendingCredentialsAndBatches"] == 0, svc.tail()
    revoked = records[7]["id"]  # for the audit below
    r = httpx.post(
        f"{svc.url}/v1/credentials/{revoked}/revoke",
        headers={"Authorization": f"Bearer {key}"},
        json={"reason": "superseded"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    svc.kill()

    # -- the DB --------------------------------------------------------------------------------
    db = sqlite3.connect(svc.data_dir / "registry.db")
    creds = db.execute("SELECT id, batch_id, target_hash, subject_hash FROM credentials").fetchall()
    batches = {
        b[0]: b[1:]
        for b in db.execute(
            "SELECT id, state, root, count, nodes FROM batches LEFT JOIN batch_trees ON batch_id = id"
        )
    }
    ids = {c[0] for c in creds}
    assert acked == {r["id"] for r in records}
    assert acked <= ids and len(ids) == TOTAL
    assert all(c[1] is not None for c in creds), "a credential was never batched"
    assert all(b[0] == "anchored" for b in batches.values()), {k: b[0] for k, b in batches.items()}
    per_batch: dict[int, int] = {}
    for c in creds:
        per_batch[c[1]] = per_batch.get(c[1], 0) + 1
    assert per_batch == {k: b[2] for k, b in batches.items()}

    # -- the chain's events ---------------------------------------------------------------------
    anchors = chain.contract("AnchorRegistry", deployment.anchor_registry)
    events = anchors.events.BatchAnchored().get_logs(from_block=deployment.deploy_block)
    chain_roots = ["0x" + bytes(e["args"]["root"]).hex() for e in events]
    assert len(chain_roots) == len(set(chain_roots)), "a root was anchored twice"
    db_roots = {b[1]: b[2] for b in batches.values()}
    assert set(chain_roots) == set(db_roots), "DB batches and chain anchors differ"
    assert {("0x" + bytes(e["args"]["root"]).hex()): e["args"]["count"] for e in events} == db_roots
    assert sum(e["args"]["count"] for e in events) == TOTAL

    # -- every stored proof verifies against an anchored root -----------------------------------
    from registry.services.records import proof_from_tree

    for cid, batch_id, target, subject in creds:
        _, root, _, tree = batches[batch_id]
        leaf = leaf_hash(bytes.fromhex(target[2:]), bytes.fromhex(subject[2:]))
        assert "0x" + process_proof(leaf, proof_from_tree(tree, leaf)).hex() == root, cid

    # -- `certledger audit` agrees, and notices a deliberately deleted row ------------------------
    import subprocess

    from tests.support.procs import CERTLEDGER

    audit = subprocess.run(
        [str(CERTLEDGER), "audit"], env=svc.env, capture_output=True, text=True, timeout=300
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "clean" in audit.stdout
    # a DB restored from a backup older than the revocation: the audit names the difference, and takes
    # the chain's status (with its reason) only when asked
    before = db.execute("SELECT status, status_reason FROM credentials WHERE id = ?", (revoked,)).fetchone()
    assert before[0] == 2
    db.execute(
        "UPDATE credentials SET status = 1, status_reason = 0, status_changed_at = NULL, status_tx = NULL "
        "WHERE id = ?",
        (revoked,),
    )
    db.commit()
    audit = subprocess.run(
        [str(CERTLEDGER), "audit"], env=svc.env, capture_output=True, text=True, timeout=300
    )
    assert audit.returncode == 1, audit.stdout + audit.stderr
    assert f"credential {revoked}: status Revoked on the chain, Valid in the DB" in audit.stdout
    assert "--adopt-chain-status" in audit.stdout
    audit = subprocess.run(
        [str(CERTLEDGER), "audit", "--adopt-chain-status"],
        env=svc.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert f"adopted credential {revoked}: Valid → Revoked" in audit.stdout and "clean" in audit.stdout
    assert (
        db.execute("SELECT status, status_reason FROM credentials WHERE id = ?", (revoked,)).fetchone()
        == before
    )
    victim = creds[12345][0]
    db.execute("DELETE FROM credentials WHERE id = ?", (victim,))
    db.commit()
    audit = subprocess.run(
        [str(CERTLEDGER), "audit"], env=svc.env, capture_output=True, text=True, timeout=300
    )
    assert audit.returncode == 1, audit.stdout + audit.stderr
    assert f"batch {creds[12345][1]}: the chain anchored" in audit.stdout and "the DB holds" in audit.stdout


def test_sigkill_between_a_revocation_being_mined_and_recorded_loses_nothing(chain, deployment, tmp_path):
    """The service dies (SIGKILL) after the revocation's transaction is mined and before the DB
    records it. Restarted, it applies the revocation itself from its outbox row: the
    credential reads revoked, with the chain's transaction, and nothing is sent twice."""
    manifest = write_manifest(tmp_path / "deployment.json", deployment)
    svc = ServiceProcess(
        tmp_path / "data", env=_env(chain, manifest, CERTLEDGER_TX_TIMEOUT_SECONDS="2"), name="revoke-crash"
    )
    svc.start()
    try:
        key = create_issuer(svc, make_uscc())
        headers = {"Authorization": f"Bearer {key}"}
        r = httpx.post(
            svc.url + "/v1/credentials",
            headers=headers,
            timeout=60,
            json={"type": "BusinessLicence", "record": business_licence_record()},
        )
        assert r.status_code == 202, r.text
        cid = r.json()["id"]
        for _ in range(300):
            got = httpx.get(f"{svc.url}/v1/credentials/{cid}", headers=headers, timeout=10).json()
            if got.get("batchId") and got.get("credential"):
                break
            threading.Event().wait(0.1)
        else:
            raise AssertionError(f"credential {cid} was not anchored: {svc.tail()}")
        svc.kill()
        svc.wait_dead()
        svc.start(crash_after="change_mined:1")
        with pytest.raises(httpx.HTTPError):  # the process dies under the request
            httpx.post(
                f"{svc.url}/v1/credentials/{cid}/revoke",
                headers=headers,
                json={"reason": "superseded"},
                timeout=60,
            )
        assert svc.wait_dead(), svc.tail()
        conn = sqlite3.connect(tmp_path / "data" / "registry.db")
        ((status, tx_hash),) = conn.execute(
            "SELECT c.status, p.tx_hash FROM credentials c JOIN outbox p "
            "ON p.target = 'credential:' || c.id WHERE c.id = ? AND p.state = 'sent'",
            (cid,),
        ).fetchall()
        conn.close()
        assert status == 1  # mined on the chain, not recorded
        assert chain.w3.eth.get_transaction_receipt(tx_hash)["status"] == 1

        svc.start()
        for _ in range(300):  # the settler looks at it once the request's own timeout (2 s) + 5 s have passed
            got = httpx.get(f"{svc.url}/v1/credentials/{cid}", headers=headers, timeout=10).json()
            if got["status"] == "revoked":
                break
            threading.Event().wait(0.1)
        else:
            raise AssertionError(f"the revocation was not applied after the restart: {got} {svc.tail()}")
        conn = sqlite3.connect(tmp_path / "data" / "registry.db")
        assert conn.execute(
            "SELECT status, status_reason, status_tx FROM credentials WHERE id = ?", (cid,)
        ).fetchall() == [(2, 2, tx_hash)]
        assert conn.execute(
            "SELECT state, count(*) FROM outbox WHERE kind = 'status_change' GROUP BY state"
        ).fetchall() == [("confirmed", 1)]
        actions = [
            json.loads(d)
            for (d,) in conn.execute(
                "SELECT details FROM audit_log WHERE action = 'revoke_credential'"
            ).fetchall()
        ]
        conn.close()
        assert actions == [{"reason": 2, "tx": tx_hash, "settledFromChain": True}]
    finally:
        svc.kill()


def _org(svc, name: str, identifier: str, roles: list[str], jurisdiction: str = "CN-GD", **extra) -> dict:
    r = httpx.post(
        svc.url + "/v1/organisations",
        headers={"Authorization": f"Bearer {svc.admin_key()}"},
        json={"name": name, "identifier": identifier, "jurisdiction": jurisdiction, "roles": roles, **extra},
        timeout=60,
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_sigkill_between_a_flow_being_declared_or_decided_on_chain_and_recorded_loses_nothing(
    chain, deployment, tmp_path
):
    """The service dies (SIGKILL) after the exporter's declaration is mined and before the DB records
    it; then again after the regulator's decision is mined and before the DB records that. Each time,
    restarted, it applies the transaction itself from its outbox row (the flow id and block time;
    the chain's transaction and the regulator's reason), once; nobody has to repeat anything."""
    from tests.support.flows import certificate_record, declaration

    manifest = write_manifest(tmp_path / "deployment.json", deployment)
    env = _env(chain, manifest, CERTLEDGER_TX_TIMEOUT_SECONDS="2")
    svc = ServiceProcess(tmp_path / "data", env=env, name="decision-crash")
    svc.start()
    try:
        authority = _org(
            svc,
            "广东省政务服务和数据管理局",
            make_uscc(prefix="114400"),
            ["issuer"],
            credentialTypes=["DataAssetCertificate"],
        )["apiKey"]
        uscc = make_uscc(prefix="914401")
        exporter = _org(svc, "广州市示例能源科技有限公司", uscc, ["exporter"])["apiKey"]
        hk = _org(svc, "Example Trade Finance (HK) Ltd", "HK-BR-12345678", ["exporter"], jurisdiction="HK")
        regulator = _org(svc, "国家数据局 数据出境监管", make_uscc(prefix="110000"), ["regulator"])["apiKey"]
        r = httpx.post(
            svc.url + "/v1/credentials",
            headers={"Authorization": f"Bearer {authority}"},
            timeout=60,
            json={"type": "DataAssetCertificate", "record": certificate_record(uscc)},
        )
        assert r.status_code == 202, r.text
        cid = r.json()["id"]
        for _ in range(300):
            got = httpx.get(
                f"{svc.url}/v1/credentials/{cid}",
                headers={"Authorization": f"Bearer {authority}"},
                timeout=10,
            ).json()
            if got.get("credential"):
                break
            threading.Event().wait(0.1)
        else:
            raise AssertionError(f"certificate {cid} was not anchored: {svc.tail()}")
        svc.kill()
        svc.wait_dead()
        svc.start(crash_after="declaration_mined:1")
        with pytest.raises(httpx.HTTPError):  # the process dies under the request
            httpx.post(
                svc.url + "/v1/flows",
                headers={"Authorization": f"Bearer {exporter}"},
                timeout=60,
                json=declaration(cid, importer=hk["organisation"], to="HK"),
            )
        assert svc.wait_dead(), svc.tail()
        conn = sqlite3.connect(tmp_path / "data" / "registry.db")
        ((row_id, flow_id, declared_tx),) = conn.execute(
            "SELECT f.id, f.flow_id, o.tx_hash FROM flow_declarations f JOIN outbox o "
            "ON o.target = 'declaration:' || f.id WHERE o.state = 'sent'"
        ).fetchall()
        conn.close()
        assert flow_id is None  # mined on the chain, not recorded
        assert chain.w3.eth.get_transaction_receipt(declared_tx)["status"] == 1
        svc.start()
        for _ in range(300):  # the settler looks at it once the request's own timeout (2 s) + 5 s have passed
            conn = sqlite3.connect(tmp_path / "data" / "registry.db")
            ((flow_id, tx_hash),) = conn.execute(
                "SELECT flow_id, tx_hash FROM flow_declarations WHERE id = ?", (row_id,)
            ).fetchall()
            conn.close()
            if flow_id is not None:
                break
            threading.Event().wait(0.1)
        else:
            raise AssertionError(f"the declaration was not recorded after the restart: {svc.tail()}")
        assert tx_hash == declared_tx
        got = httpx.get(
            f"{svc.url}/v1/flows/{flow_id}", headers={"Authorization": f"Bearer {regulator}"}, timeout=10
        ).json()
        assert (got["status"], got["txHash"]) == ("pending", declared_tx), got
        svc.kill()
        svc.wait_dead()
        svc.start(crash_after="decision_mined:1")
        with pytest.raises(httpx.HTTPError):  # the process dies under the request
            httpx.post(
                f"{svc.url}/v1/flows/{flow_id}/decision",
                headers={"Authorization": f"Bearer {regulator}"},
                json={"decision": "approved", "reason": "standard contract filed"},
                timeout=60,
            )
        assert svc.wait_dead(), svc.tail()
        conn = sqlite3.connect(tmp_path / "data" / "registry.db")
        ((decision, tx_hash),) = conn.execute(
            "SELECT f.decision, o.tx_hash FROM flow_declarations f JOIN outbox o "
            "ON o.target = 'flow:' || f.flow_id WHERE f.flow_id = ? AND o.state = 'sent'",
            (flow_id,),
        ).fetchall()
        conn.close()
        assert decision == 1  # mined on the chain, not recorded: still pending in the DB
        assert chain.w3.eth.get_transaction_receipt(tx_hash)["status"] == 1

        svc.start()
        for _ in range(300):  # the settler looks at it once the request's own timeout (2 s) + 5 s have passed
            got = httpx.get(
                f"{svc.url}/v1/flows/{flow_id}", headers={"Authorization": f"Bearer {regulator}"}, timeout=10
            ).json()
            if got["status"] == "approved":
                break
            threading.Event().wait(0.1)
        else:
            raise AssertionError(f"the decision was not applied after the restart: {got} {svc.tail()}")
        assert got["decision"]["txHash"] == tx_hash and got["decision"]["reason"] == "standard contract filed"
        conn = sqlite3.connect(tmp_path / "data" / "registry.db")
        assert conn.execute("SELECT kind, state FROM outbox WHERE kind = 'flow_decision'").fetchall() == [
            ("flow_decision", "confirmed")
        ]
        actions = [
            json.loads(d)
            for (d,) in conn.execute("SELECT details FROM audit_log WHERE action = 'decide_flow'").fetchall()
        ]
        conn.close()
        assert len(actions) == 1 and actions[0]["tx"] == tx_hash and actions[0]["settledFromChain"] is True
        conn = sqlite3.connect(tmp_path / "data" / "registry.db")
        declared = conn.execute("SELECT details FROM audit_log WHERE action = 'declare_flow'").fetchall()
        assert [json.loads(d)["tx"] for (d,) in declared] == [declared_tx]  # recorded once
        conn.close()
    finally:
        svc.kill()


def test_sigkill_between_an_organisations_registration_being_mined_and_recorded_loses_nothing(
    chain, deployment, tmp_path
):
    """The service dies (SIGKILL) after the first of an issuer's onboarding transactions is mined and
    before the DB records it; the request never answers. Restarted, the settle pass applies the
    mined one and sends the one never sent: the issuer gets exactly one issuer id on-chain, the
    admin finds it and issues it a new API key, and it issues."""
    manifest = write_manifest(tmp_path / "deployment.json", deployment)
    svc = ServiceProcess(
        tmp_path / "data",
        env=_env(chain, manifest, CERTLEDGER_TX_TIMEOUT_SECONDS="2"),
        name="onboarding-crash",
    )
    uscc = make_uscc(prefix="114401")
    registered_before = (
        chain.contract("IssuerRegistry", deployment.issuer_registry).functions.issuerCount().call()
    )
    svc.start(crash_after="registration_mined:1")
    try:
        with pytest.raises(httpx.HTTPError):  # the process dies under the request
            _org(svc, "广州市市场监督管理局", uscc, ["issuer"], credentialTypes=["BusinessLicence"])
        assert svc.wait_dead(), svc.tail()
        conn = sqlite3.connect(tmp_path / "data" / "registry.db")
        states = dict(conn.execute("SELECT target, state FROM outbox WHERE kind = 'registration'").fetchall())
        conn.close()
        assert sorted(states.values()) == ["queued", "sent"], (
            states
        )  # fund mined and unrecorded; issuer not sent
        svc.start()
        admin = {"Authorization": f"Bearer {svc.admin_key()}"}
        for _ in range(300):  # the settle pass looks once the request's own wait (2 s + 5 s) is over
            orgs = httpx.get(svc.url + "/v1/organisations", headers=admin, timeout=10).json()["items"]
            (org,) = [o for o in orgs if o["identifier"] == uscc]
            if org["issuerId"] is not None:
                break
            threading.Event().wait(0.1)
        else:
            raise AssertionError(f"the issuer was not registered after the restart: {svc.tail()}")
        ir = chain.contract("IssuerRegistry", deployment.issuer_registry)
        assert ir.functions.issuerCount().call() == registered_before + 1  # registered once
        assert ir.functions.issuerOf(org["chainAccount"]).call() == org["issuerId"]
        r = httpx.post(f"{svc.url}/v1/organisations/{org['id']}/api-keys", headers=admin, timeout=10)
        assert r.status_code == 201, r.text
        r = httpx.post(
            svc.url + "/v1/credentials",
            headers={"Authorization": f"Bearer {r.json()['apiKey']}"},
            json={"type": "BusinessLicence", "record": business_licence_record()},
            timeout=60,
        )
        assert r.status_code == 202, r.text
        conn = sqlite3.connect(tmp_path / "data" / "registry.db")
        assert sorted(conn.execute("SELECT state FROM outbox WHERE kind = 'registration'").fetchall()) == [
            ("confirmed",),
            ("confirmed",),
        ]
        conn.close()
    finally:
        svc.kill()


def test_sigkill_between_a_pledge_being_mined_and_recorded_loses_nothing_and_never_pledges_twice(
    chain, deployment, tmp_path
):
    """The service dies (SIGKILL) after a bank's pledge is mined and before the DB records it; the
    request never answers. Restarted, the settle pass records it (its audit entry, once); the bank,
    not knowing, sends the same pledge again and the chain refuses it (its consents were bound to
    the nonce the pledge consumed), and with fresh consents too (AlreadyPledged): one active pledge,
    one audit entry."""
    import time

    from eth_account import Account

    from scripts.pledge_consents import pledge_signature
    from scripts.samples import data_asset_record
    from verifier import credential_asset_key

    manifest = write_manifest(tmp_path / "deployment.json", deployment)
    svc = ServiceProcess(
        tmp_path / "data", env=_env(chain, manifest, CERTLEDGER_TX_TIMEOUT_SECONDS="2"), name="pledge-crash"
    )
    holder, bank_key = "0x" + "a1" * 32, "0x" + "b2" * 32
    svc.start(crash_after="pledge_mined:2")  # the asset's registration is the first, the pledge the second
    try:
        authority = _org(
            svc,
            "广东省政务服务和数据管理局",
            make_uscc(prefix="114400"),
            ["issuer"],
            credentialTypes=["DataAssetCertificate"],
        )
        bank = _org(svc, "示例银行", make_uscc(prefix="914401"), ["verifier"])
        ah, bh = ({"Authorization": f"Bearer {o['apiKey']}"} for o in (authority, bank))
        r = httpx.post(
            svc.url + "/v1/credentials",
            headers=ah,
            json={"type": "DataAssetCertificate", "record": data_asset_record()},
            timeout=60,
        )
        assert r.status_code == 202, r.text
        cid = r.json()["id"]
        for _ in range(300):
            got = httpx.get(f"{svc.url}/v1/credentials/{cid}", headers=ah, timeout=10).json()
            if got.get("credential"):
                break
            threading.Event().wait(0.1)
        else:
            raise AssertionError(f"the certificate was not anchored: {svc.tail()}")
        key = credential_asset_key(got["credential"])
        r = httpx.post(
            f"{svc.url}/v1/credentials/{cid}/asset/register",
            headers=ah,
            json={"holder": Account.from_key(holder).address},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        deadline = int(time.time()) + 3600
        common = dict(
            asset_key=key,
            rank=1,
            holder=Account.from_key(holder).address,
            lender=Account.from_key(bank_key).address,
            loan_ref="GZ-LOAN-1",
            nonce=0,
            deadline=deadline,
        )
        body = {
            "lender": Account.from_key(bank_key).address,
            "loanRef": "GZ-LOAN-1",
            "deadline": deadline,
            "holderSignature": pledge_signature(
                holder, deployment.chain_id, deployment.pledge_registry, **common
            ),
            "lenderSignature": pledge_signature(
                bank_key, deployment.chain_id, deployment.pledge_registry, **common
            ),
        }
        with pytest.raises(httpx.HTTPError):  # the process dies under the request
            httpx.post(f"{svc.url}/v1/credentials/{cid}/pledges", headers=bh, json=body, timeout=60)
        assert svc.wait_dead(), svc.tail()
        reg = chain.contract("PledgeRegistry", deployment.pledge_registry)
        assert reg.functions.pledgeOf(key, 1).call()[2] == 1  # mined: active
        db = tmp_path / "data" / "registry.db"
        conn = sqlite3.connect(db)
        assert conn.execute(
            "SELECT state FROM outbox WHERE kind = 'pledge_registry' ORDER BY id"
        ).fetchall() == [("confirmed",), ("sent",)]
        assert conn.execute("SELECT count(*) FROM audit_log WHERE action = 'asset_pledge'").fetchone() == (0,)
        conn.close()

        svc.start()
        for _ in range(300):  # the settle pass looks once the request's own wait (2 s + 5 s) is over
            conn = sqlite3.connect(db)
            n = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'asset_pledge'").fetchone()[0]
            conn.close()
            if n:
                break
            threading.Event().wait(0.1)
        else:
            raise AssertionError(f"the mined pledge was not recorded after the restart: {svc.tail()}")
        # the same request again: its consents were bound to the nonce the mined pledge consumed
        r = httpx.post(f"{svc.url}/v1/credentials/{cid}/pledges", headers=bh, json=body, timeout=60)
        assert r.status_code == 409 and r.json()["error"]["details"]["error"] == "BadHolderSignature", r.text
        # fresh consents for the same rank: the rank is pledged
        common["nonce"] = 1
        again = body | {
            "holderSignature": pledge_signature(
                holder, deployment.chain_id, deployment.pledge_registry, **common
            ),
            "lenderSignature": pledge_signature(
                bank_key, deployment.chain_id, deployment.pledge_registry, **common
            ),
        }
        r = httpx.post(f"{svc.url}/v1/credentials/{cid}/pledges", headers=bh, json=again, timeout=60)
        assert r.status_code == 409 and r.json()["error"]["details"]["error"] == "AlreadyPledged", r.text
        asset = reg.functions.assetOf(key).call()
        assert asset[3] == 1  # one active pledge
        conn = sqlite3.connect(db)
        rows = conn.execute("SELECT details FROM audit_log WHERE action = 'asset_pledge'").fetchall()
        states = conn.execute(
            "SELECT state FROM outbox WHERE kind = 'pledge_registry' ORDER BY id"
        ).fetchall()
        conn.close()
        assert len(rows) == 1 and json.loads(rows[0][0])["settledFromChain"] is True
        assert states == [("confirmed",), ("confirmed",), ("failed",)] or states == [
            ("confirmed",),
            ("confirmed",),
        ]
    finally:
        svc.kill()
