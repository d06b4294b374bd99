"""`make demo` (scripts/demo.py) end to end in a fresh data directory, then its artefacts verified
independently with certledger-verify (the bank's tool), not with the demo's own output."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ledger_node.node import free_port

pytestmark = [pytest.mark.chain, pytest.mark.slow]
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def _verify(*args, cwd):
    return subprocess.run(
        [str(BIN / "certledger-verify"), *args, "--json"], cwd=cwd, capture_output=True, text=True
    )


def _serve_once(env: dict[str, str], data_dir: Path) -> None:
    """`certledger serve` on the demo's data directory (it starts the node), then stopped."""
    from tests.support.procs import ServiceProcess

    svc = ServiceProcess(data_dir, env={"CERTLEDGER_NODE_PORT": env["CERTLEDGER_NODE_PORT"]}, name="between")
    try:
        svc.start()
        assert svc.health()["status"] == "ok", svc.tail()
    finally:
        if svc.alive():
            os.killpg(svc.proc.pid, signal.SIGTERM)
            svc.wait_dead(60)


def test_demo_runs_twice_and_its_artefacts_verify_independently(tmp_path):
    env = {
        **os.environ,
        "CERTLEDGER_DATA_DIR": str(tmp_path / "state"),
        "CERTLEDGER_NODE_PORT": str(free_port()),
    }
    try:
        for run in ("first", "second"):  # re-running works: organisations are reused
            if run == "second":  # the node restarts twice between the runs (it kept its identity: issue 25)
                subprocess.run(
                    [str(BIN / "certledger"), "node", "down"], env=env, capture_output=True, check=True
                )
                _serve_once(env, tmp_path / "state")
                subprocess.run(
                    [str(BIN / "certledger"), "node", "down"], env=env, capture_output=True, check=True
                )
            out = tmp_path / run
            proc = subprocess.run(
                [sys.executable, str(ROOT / "scripts" / "demo.py"), "--out", str(out)],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            assert "certledger demo done" in proc.stdout
            # the pledge (issue 22): not pledged → pledged to the first bank → the second refused → released
            text = " ".join(proc.stdout.split())
            assert text.count("not pledged") == 2 and "pledged to 示例银行 since" in text, text[-3000:]
            assert "refused on-chain: AlreadyPledged" in text and "releases its pledge" in text
            names = {p.name for p in out.iterdir()}
            assert {
                "business-licence.json",
                "business-licence-qr.png",
                "data-asset-certificate.json",
                "data-asset-certificate.redacted.json",
                "data-asset-certificate.tampered.json",
                "data-asset-certificate.revoked.json",
                "trust-bundle.json",
                "electricity-usage-2025.csv",
                "trace.json",
                "trace.csv",
                "trace.svg",
                "validators.json",
                "trust-bundle-proofs.json",
                "forged-trust-bundle.json",
                "forged-trust-bundle-minted.json",
                "minted-business-licence.json",
            } <= names
    finally:
        subprocess.run([str(BIN / "certledger"), "node", "down"], env=env, capture_output=True)

    bundle = json.loads((out / "trust-bundle.json").read_text())
    operator = bundle["signature"]["signer"]
    # the last pledge proof (after the release) proves "not pledged" to the verifier's own check
    from verifier import TrustBundle
    from verifier._pledge_proof import pledge_check

    manifest = json.loads((tmp_path / "state" / "deployment.json").read_text())
    cert = json.loads((out / "data-asset-certificate.json").read_text())
    got = pledge_check(
        cert,
        json.loads((out / "pledge-proof.json").read_text()),
        pledge_registry=manifest["contracts"]["pledgeRegistry"],
        trust=TrustBundle.load(bundle, operators=[operator]),
    )
    assert got.status == "passed" and "not pledged" in got.reason, got
    ok = _verify(
        "business-licence.json",
        "data-asset-certificate.json",
        "--bundle",
        "trust-bundle.json",
        "--operator",
        operator,
        cwd=out,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    red = _verify(
        "data-asset-certificate.redacted.json",
        "--bundle",
        "trust-bundle.json",
        "--data",
        "electricity-usage-2025.csv",
        cwd=out,
    )
    assert red.returncode == 0, red.stdout
    checks = {c["name"]: c["status"] for c in json.loads(red.stdout.splitlines()[0])["checks"]}
    assert checks["data"] == "passed" and checks["integrity"] == "passed"
    for name, failing in (
        ("data-asset-certificate.tampered.json", "integrity"),
        ("data-asset-certificate.revoked.json", "status"),
    ):
        bad = _verify(name, "--bundle", "trust-bundle.json", cwd=out)
        assert bad.returncode == 1, bad.stdout
        checks = {c["name"]: c["status"] for c in json.loads(bad.stdout.splitlines()[0])["checks"]}
        assert checks[failing] == "failed", checks
    # the loan: the presentation bound to the bank's request verifies (before the request expired), and
    # carries the holder check; shown against another request it is refused
    request = json.loads((out / "loan-request.json").read_text())
    presentation = json.loads((out / "loan-presentation.json").read_text())
    before_expiry = presentation["proof"]["created"]
    loan = _verify(
        "loan-presentation.json",
        "--presentation",
        "loan-request.json",
        "--bundle",
        "trust-bundle.json",
        "--at",
        before_expiry,
        cwd=out,
    )
    assert loan.returncode == 0, loan.stdout + loan.stderr
    checks = {c["name"]: c["status"] for c in json.loads(loan.stdout.splitlines()[0])["checks"]}
    assert checks["holder"] == "passed" and checks["usage"] == "passed"
    assert presentation["proof"]["challenge"] == request["nonce"]
    assert (
        "/credentialSubject/valuation/amount"
        in presentation["verifiableCredential"][0]["proof"]["redactedDigests"]
    )
    replay = _verify(
        "loan-presentation.json",
        "--presentation",
        "second-bank-request.json",
        "--bundle",
        "trust-bundle.json",
        "--at",
        before_expiry,
        cwd=out,
    )
    assert replay.returncode == 1
    assert (out / "business-licence-qr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the demo's business licence carries a national identifier naming its issuer (FORMAT.md §2.3)
    from verifier.licence_id import parse_licence_identifier

    licence = json.loads((out / "business-licence.json").read_text("utf-8"))
    ident = licence["credentialSubject"]["licenceIdentifier"]
    parse_licence_identifier(ident, issuer_code=licence["issuer"]["unifiedSocialCreditCode"])
    trace = json.loads((out / "trace.json").read_text())
    assert "440600" in json.dumps(trace) and "HK" in json.dumps(trace)
    # the 2024 rules (run twice: the second run's flows add to this year's totals)
    edges = trace["edges"]
    exempt = [e for e in edges if e["exporterName"].startswith("广州市示例旅行社")]
    assert exempt[0]["rule"]["rule"] == "exempt-under-100000" and exempt[0]["status"] == "approved"
    platform = [e["flowId"] for e in edges if e["exporterName"].startswith("深圳市示例电商平台")]
    assert len(platform) == 8
    splits = {
        v["flowId"]: v["details"]["flows"] for v in trace["violations"] if v["kind"] == "threshold_split"
    }
    # the first run's fourth flow crosses 1,000,000 people: flagged, naming the four flows
    assert splits[platform[3]] == platform[:4]
    assert splits[platform[3]] and all(fid in splits for fid in platform[3:])
    assert platform[0] not in splits and platform[2] not in splits
    assert (out / "trace.svg").read_text().lstrip().startswith(("<svg", "<?xml"))
    # the stolen operator passphrase (issue 18): the forgeries fool a bank pinning the operator key, and are
    # refused in validator mode (anchors and status proven from state the pinned validators sealed)
    operator = json.loads((out / "forged-trust-bundle.json").read_text())["signature"]["signer"]
    assert operator == bundle["signature"]["signer"]
    for name, forged_bundle, failing in (
        ("data-asset-certificate.revoked.json", "forged-trust-bundle.json", "status"),
        ("minted-business-licence.json", "forged-trust-bundle-minted.json", "anchor"),
    ):
        fooled = _verify(name, "--bundle", forged_bundle, "--operator", operator, cwd=out)
        assert fooled.returncode == 0, fooled.stdout + fooled.stderr
        refused = _verify(name, "--bundle", forged_bundle, "--validators", "validators.json", cwd=out)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        checks = {
            c["name"]: (c["status"], c["reason"])
            for c in json.loads(refused.stdout.splitlines()[0])["checks"]
        }
        assert checks[failing][0] == "failed", checks
    revoked = _verify(
        "data-asset-certificate.revoked.json",
        "--bundle",
        "forged-trust-bundle.json",
        "--validators",
        "validators.json",
        cwd=out,
    )
    status = [c for c in json.loads(revoked.stdout.splitlines()[0])["checks"] if c["name"] == "status"][0]
    assert status["reason"].startswith("revoked on ")
    # the genuine bundle with proofs: the same bank, validator mode, accepts the good licence
    good = _verify(
        "business-licence.json",
        "--bundle",
        "trust-bundle-proofs.json",
        "--validators",
        "validators.json",
        cwd=out,
    )
    assert good.returncode == 0, good.stdout + good.stderr
