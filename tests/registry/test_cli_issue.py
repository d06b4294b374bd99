"""`certledger issue` against a real `certledger serve`: line numbers of rejected records, --ids in
file order, --atomic refusing the whole file, and a request that fails mid-way (the records
accepted before it stand, the lines not issued are named)."""

from __future__ import annotations

import json
import subprocess
import uuid

import httpx
import pytest

from scripts.samples import business_licence_record, make_uscc
from tests.support.procs import CERTLEDGER, ServiceProcess, create_issuer, write_manifest

pytestmark = [pytest.mark.chain]


@pytest.fixture()
def served(chain, deployment, tmp_path):
    """(service process, an issuer's API key); uploads over 4,000 bytes are refused (HTTP 413)."""
    manifest = write_manifest(tmp_path / "deployment.json", deployment)
    svc = ServiceProcess(
        tmp_path / "data",
        name="cli",
        env={
            "CERTLEDGER_RPC_URL": chain.rpc_url,
            "CERTLEDGER_MANIFEST": str(manifest),
            "CERTLEDGER_KEYSTORE_PASSPHRASE": "cli-test",
            "CERTLEDGER_INDEXER_ENABLED": "false",
            "CERTLEDGER_MAX_UPLOAD_BYTES": "4000",
        },
    )
    svc.start()
    try:
        yield svc, create_issuer(svc, make_uscc())
    finally:
        svc.kill()


def _record(**over) -> dict:
    return {**business_licence_record(**over), "id": f"urn:uuid:{uuid.uuid4()}"}


def _issue(svc, key, path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CERTLEDGER), "issue", "BusinessLicence", str(path), "--url", svc.url, "--api-key", key, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _stored(svc, key) -> set[str]:
    r = httpx.get(
        svc.url + "/v1/credentials",
        params={"limit": 1000},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    return {c["id"] for c in (body["items"] if isinstance(body, dict) else body)}


def test_rejected_records_are_named_by_file_line_and_ids_come_in_file_order(served, tmp_path):
    svc, key = served
    records = [_record() for _ in range(11)]
    # JSON strings may hold U+2028 and U+0085 as they are: still one line each (str.splitlines splits there)
    records[0], records[4] = _record(name="示例\u2028科技有限公司"), _record(name="示例\u0085科技有限公司")
    bad = {2, 7}  # records 3 and 8: a credit code that is no credit code
    for i in bad:
        records[i]["credentialSubject"]["unifiedSocialCreditCode"] = "not-a-credit-code"
    text = [json.dumps(r, ensure_ascii=False) for r in records]
    text.insert(5, "")  # a blank line: record 8 is on line 9
    (tmp_path / "in.jsonl").write_text("\n".join(text) + "\n", encoding="utf-8")
    proc = _issue(svc, key, tmp_path / "in.jsonl", "--chunk", "2", "--ids", str(tmp_path / "ids.txt"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "accepted 9 of 11 BusinessLicence records" in proc.stdout
    assert "line 3: " in proc.stderr and "line 9: " in proc.stderr and "2 records rejected" in proc.stderr
    assert "Traceback" not in proc.stderr
    good = [r["id"] for i, r in enumerate(records) if i not in bad]
    assert (tmp_path / "ids.txt").read_text().split() == good
    assert _stored(svc, key) == set(good)


def test_atomic_refuses_the_whole_file_across_chunks(served, tmp_path):
    """Five records with --chunk 2: with one invalid record (the last), nothing at all is issued."""
    svc, key = served
    records = [_record() for _ in range(5)]
    records[4]["credentialSubject"]["unifiedSocialCreditCode"] = "not-a-credit-code"
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records), encoding="utf-8")
    proc = _issue(svc, key, path, "--atomic", "--chunk", "2")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "accepted 0 of 5" in proc.stdout
    assert "line 5: " in proc.stderr and "lines 1-5 not issued: " in proc.stderr and "HTTP 422" in proc.stderr
    assert _stored(svc, key) == set()
    records[4] = _record()
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records), encoding="utf-8")
    proc = _issue(svc, key, path, "--atomic", "--chunk", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _stored(svc, key) == {r["id"] for r in records}


def test_a_request_failing_mid_way_leaves_the_accepted_records_and_names_the_rest(served, tmp_path):
    """Chunks of two; the third is over the service's upload limit (HTTP 413). The fourth was in
    flight and is accepted; the fifth is not sent. The ids of all accepted records are written."""
    svc, key = served
    records = [_record() for _ in range(10)]
    records[4] = _record(businessScope="软件开发" * 350)  # ~4 kB: its request is over the limit
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records), encoding="utf-8")
    proc = _issue(svc, key, path, "--chunk", "2", "--ids", str(tmp_path / "ids.txt"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "accepted 6 of 10" in proc.stdout
    assert "lines 5-6 not issued: " in proc.stderr and "HTTP 413" in proc.stderr
    assert "lines 9-10 not issued: not sent after the failure above" in proc.stderr
    assert "the 6 accepted records stand" in proc.stderr and "Traceback" not in proc.stderr
    accepted = [r["id"] for r in records[:4] + records[6:8]]
    assert (tmp_path / "ids.txt").read_text().split() == accepted
    assert _stored(svc, key) == set(accepted)


@pytest.mark.parametrize(
    "content, args, expected",
    [
        ("\n\n", [], "holds no records"),
        (None, [], "cannot read"),
        (
            b'{"credentialSubject": {"name": "\xe7\xa4\xba"}}\n{"credentialSubject": {"name": "\xff"}}',
            [],
            "cannot read",
        ),
        ('{"credentialSubject": {}}', ["--chunk", "0"], "--chunk"),
    ],
)
def test_bad_input_is_refused_before_anything_is_sent(tmp_path, content, args, expected):
    path = tmp_path / "in.jsonl"
    if isinstance(content, bytes):  # (not UTF-8: refused whole, before any of it is sent)
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    proc = subprocess.run(
        [
            str(CERTLEDGER),
            "issue",
            "BusinessLicence",
            str(path),
            "--url",
            "http://127.0.0.1:9",
            "--api-key",
            "k",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr


def test_an_unreachable_service_names_the_lines_not_issued(tmp_path):
    """Nothing listens on the port: every line is named as not issued, exit 1, no traceback. The
    command does not import the formats' modules (the verifier, the workers' code): a tenth of a
    second of its start, and it only splits the file into lines."""
    import sys

    from ledger_node.node import free_port

    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(_record(), ensure_ascii=False) for _ in range(3)), encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "import sys; from registry.cli import main; sys.argv[0] = 'certledger'; sys.exit(main())",
            "issue",
            "BusinessLicence",
            str(path),
            "--url",
            f"http://127.0.0.1:{free_port()}",
            "--api-key",
            "k",
            "--chunk",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "accepted 0 of 3" in proc.stdout and "Traceback" not in proc.stderr
    assert "lines 1-2 not issued: cannot reach the registry" in proc.stderr
    assert "lines 3-3 not issued: " in proc.stderr
    imported = {
        line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "import time:" in line
    }
    assert "registry.services.jsonl" in imported  # (the command ran, and its imports were listed)
    assert not imported & {"verifier", "registry.services.prepare", "orjson", "sqlalchemy"}, imported
