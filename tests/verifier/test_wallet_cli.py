"""certledger-wallet and certledger-verify --presentation as real subprocesses: the loan story offline
(the bank asks, the business presents a redacted certificate bound to that request, the bank
verifies), a replay to a second bank refused, bad input one line with exit 2, and the wallet loading
no service code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.factory import BANK_USCC, World, sample_subject

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


def run(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(BIN / tool), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, "CERTLEDGER_WALLET": str(cwd / "wallet"), "COLUMNS": "200"},
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture()
def story(tmp_path):
    """The business makes its key; the data authority issues a certificate bound to it."""
    keygen = run("certledger-wallet", "keygen", cwd=tmp_path)
    assert keygen.returncode == 0, keygen.stderr
    holder_id = keygen.stdout.strip()
    assert holder_id.startswith("urn:certledger:holder:secp256k1:0x0")
    assert oct((tmp_path / "wallet" / "key.json").stat().st_mode & 0o777) == "0o600"
    w = World()
    issuer = w.add_issuer()
    subject = {"id": holder_id, **sample_subject("DataAssetCertificate", w.rng)}
    cert = w.issue(issuer, [w.document(issuer, "DataAssetCertificate", subject=subject)])[0]
    (tmp_path / "cert.json").write_text(json.dumps(cert, ensure_ascii=False), encoding="utf-8")
    # a bundle an hour older than the verification time below (bundles older than 24 h are refused)
    (tmp_path / "bundle.json").write_text(json.dumps(w.bundle(block_timestamp=1_780_268_400)))
    return tmp_path, cert, w.operator


def test_the_loan_story_offline(story):
    d, cert, operator = story
    assert run("certledger-wallet", "add", "cert.json", cwd=d).returncode == 0
    listed = run("certledger-wallet", "list", cwd=d)
    assert cert["id"] in listed.stdout and "yes" in listed.stdout
    red = run(
        "certledger-wallet",
        "redact",
        cert["id"],
        "--drop",
        "/credentialSubject/valuation/amount",
        "--out",
        "shown.json",
        cwd=d,
    )
    assert red.returncode == 0 and "/credentialSubject/valuation/amount" in red.stdout
    assert (
        run(
            "certledger-wallet",
            "request",
            "--audience",
            BANK_USCC,
            "--purpose",
            "loan assessment",
            "--out",
            "request.json",
            cwd=d,
        ).returncode
        == 0
    )
    pres = run(
        "certledger-wallet",
        "present",
        "--request",
        "request.json",
        "--credential",
        cert["id"],
        "--drop",
        "/credentialSubject/valuation/amount",
        "--out",
        "presentation.json",
        cwd=d,
    )
    assert pres.returncode == 0, pres.stderr
    verify = [
        "certledger-verify",
        "presentation.json",
        "--presentation",
        "request.json",
        "--bundle",
        "bundle.json",
        "--operator",
        operator,
        "--at",
        "2026-06-01T00:00:00Z",
    ]
    ok = run(*verify, "--json", cwd=d)
    result = json.loads(ok.stdout.splitlines()[0])
    checks = {c["name"]: c["status"] for c in result["checks"]}
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert checks["holder"] == "passed" and checks["usage"] == "passed" and checks["integrity"] == "passed"
    assert result["file"] == "presentation.json#0"
    human = run(*verify, cwd=d)
    assert human.returncode == 0 and "holder" in human.stdout

    # a second bank, shown the same presentation, refuses it: it answers another request
    assert (
        run(
            "certledger-wallet",
            "request",
            "--audience",
            BANK_USCC,
            "--purpose",
            "loan assessment",
            "--out",
            "request2.json",
            cwd=d,
        ).returncode
        == 0
    )
    replay = run(
        "certledger-verify",
        "presentation.json",
        "--presentation",
        "request2.json",
        "--bundle",
        "bundle.json",
        "--at",
        "2026-06-01T00:00:00Z",
        "--json",
        cwd=d,
    )
    assert replay.returncode == 1
    holder = [c for c in json.loads(replay.stdout.splitlines()[0])["checks"] if c["name"] == "holder"][0]
    assert holder["status"] == "failed" and "replay" in holder["reason"]


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["present", "--request", "request.json", "--credential", "nope", "--out", "p.json"],
            "no credential nope",
        ),
        (["request", "--audience", "91440101MA5BANK000", "--purpose", "x", "--out", "r.json"], "audience"),
        (["request", "--audience", BANK_USCC, "--purpose", "x", "--out", "r.json", "--ttl", "1"], "--ttl"),
        (["keygen"], "exists"),
        (["keygen", "--force", "--suite", "ed25519"], "--suite"),
        (["add", "bundle.json"], "not a certledger holder copy"),
        (["redact", "nope", "--out", "x.json"], "no credential"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(story, args, message):
    d, _, _ = story
    (d / "request.json").write_text(
        json.dumps(
            {
                "type": "CertledgerPresentationRequest",
                "nonce": "0x" + "ab" * 16,
                "audience": BANK_USCC,
                "purpose": "p",
                "expires": "2030-01-01T00:00:00Z",
            }
        )
    )
    proc = run("certledger-wallet", *args, cwd=d)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_present_without_a_key_and_a_bad_request_file_exit_2(tmp_path):
    (tmp_path / "request.json").write_text("{not json")
    proc = run(
        "certledger-wallet",
        "present",
        "--request",
        "request.json",
        "--credential",
        "x",
        "--out",
        "p.json",
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr
    verify = run(
        "certledger-verify", "x.json", "--presentation", "request.json", "--bundle", "b.json", cwd=tmp_path
    )
    assert verify.returncode == 2 and len(verify.stderr.strip().splitlines()) == 1


def test_the_wallet_loads_no_service_code(tmp_path):
    code = (
        "import sys, verifier._wallet, verifier._presentation; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'registry', 'ledger_node', 'web3', 'fastapi', 'sqlalchemy'}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr


@pytest.mark.chain
def test_fetch_from_the_real_registry(tmp_path, database_url):
    """`certledger-wallet fetch` against `certledger serve` (SQLite and PostgreSQL): the holder's own
    anchored credentials land in the wallet; a wrong key is one line and exit 2."""
    import signal
    import time

    import httpx

    from ledger_node.node import free_port
    from scripts.samples import business_licence_record, make_uscc
    from tests.support.procs import ServiceProcess, create_issuer

    env = {
        "CERTLEDGER_NODE_PORT": str(free_port()),
        "CERTLEDGER_BATCH_WINDOW_SECONDS": "0.2",
        "CERTLEDGER_INDEXER_ENABLED": "false",
    }
    if not database_url.startswith("sqlite"):
        env["CERTLEDGER_DATABASE_URL"] = database_url
    svc = ServiceProcess(tmp_path / "data", env=env, name="wallet")
    try:
        svc.start()
        issuer = create_issuer(svc, make_uscc())
        made = run("certledger-wallet", "keygen", cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        holder_id = made.stdout.strip()
        records = [business_licence_record() for _ in range(2)]
        records[0]["credentialSubject"] = {"id": holder_id, **records[0]["credentialSubject"]}
        r = httpx.post(
            svc.url + "/v1/credentials/bulk?type=BusinessLicence",
            json=records,
            headers={"Authorization": f"Bearer {issuer}"},
            timeout=60,
        )
        assert r.status_code == 202, r.text
        mine = records[0]["credentialSubject"]["unifiedSocialCreditCode"]
        r = httpx.post(
            svc.url + "/v1/organisations",
            headers={"Authorization": f"Bearer {svc.admin_key()}"},
            json={"name": "持证企业", "identifier": mine, "jurisdiction": "CN-GD", "roles": ["holder"]},
        )
        key = r.json()["apiKey"]
        for _ in range(100):
            if not svc.health()["pendingCredentialsAndBatches"]:
                break
            time.sleep(0.2)
        fetched = run("certledger-wallet", "fetch", "--registry", svc.url, "--api-key", key, cwd=tmp_path)
        assert fetched.returncode == 0 and "fetched 1 credential" in fetched.stdout, (
            fetched.stdout + fetched.stderr
        )
        stored = list((tmp_path / "wallet" / "credentials").glob("*.json"))
        assert len(stored) == 1
        assert json.loads(stored[0].read_text())["credentialSubject"]["unifiedSocialCreditCode"] == mine
        bad = run("certledger-wallet", "fetch", "--registry", svc.url, "--api-key", "cl_nope", cwd=tmp_path)
        assert bad.returncode == 2 and "401" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
        down = run(
            "certledger-wallet",
            "fetch",
            "--registry",
            f"http://127.0.0.1:{free_port()}",
            "--api-key",
            key,
            cwd=tmp_path,
        )
        assert down.returncode == 2 and "cannot reach the registry" in down.stderr

        # a bank's request link (its QR code): present, send, and get the verdict and its QR code
        bank = make_uscc(prefix="914401")
        opened = httpx.post(
            svc.url + "/verify/requests", json={"audience": bank, "purpose": "credit-assessment"}
        )
        assert opened.status_code == 201, opened.text
        link = f"{svc.url}/holder?request={opened.json()['request']['nonce']}"
        cid = json.loads(stored[0].read_text())["id"]
        sent = run(
            "certledger-wallet",
            "present",
            "--request",
            link,
            "--credential",
            cid,
            "--out",
            "p.json",
            "--drop",
            "/credentialSubject/registeredCapital/amount",
            "--send",
            "--qr",
            "verdict.png",
            cwd=tmp_path,
        )
        assert sent.returncode == 0 and "check says valid" in sent.stdout, sent.stdout + sent.stderr
        assert (tmp_path / "verdict.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        result = httpx.get(f"{svc.url}/verify/requests/{opened.json()['request']['nonce']}/result").json()
        assert result["state"] == "answered" and result["result"]["valid"] is True
        # the same request again: answered already, one line, exit 2
        again = run(
            "certledger-wallet",
            "present",
            "--request",
            link,
            "--credential",
            cid,
            "--out",
            "p2.json",
            "--send",
            cwd=tmp_path,
        )
        assert (
            again.returncode == 2
            and "answered already" in again.stderr
            and len(again.stderr.splitlines()) == 1
        )
        for bad_args, said in (
            (["--request", svc.url + "/holder?request=nope"], "not a request link"),
            (["--request", f"{svc.url}/holder?request=0x{'ab' * 16}"], "404"),
            (["--request", "p.json", "--send"], "need a request link"),
        ):
            bad = run(
                "certledger-wallet",
                "present",
                *bad_args,
                "--credential",
                cid,
                "--out",
                "x.json",
                cwd=tmp_path,
            )
            assert bad.returncode == 2 and said in bad.stderr and len(bad.stderr.splitlines()) == 1, (
                bad.stderr
            )
    finally:
        if svc.alive():
            os.killpg(svc.proc.pid, signal.SIGTERM)
            svc.wait_dead(60)
        subprocess.run(
            [str(BIN / "certledger"), "node", "down"],
            capture_output=True,
            env={
                **os.environ,
                "CERTLEDGER_DATA_DIR": str(tmp_path / "data"),
                "CERTLEDGER_NODE_PORT": env["CERTLEDGER_NODE_PORT"],
            },
        )
