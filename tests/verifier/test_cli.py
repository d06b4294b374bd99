"""certledger-verify through a real subprocess: outputs, exit statuses, never a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.factory import AT, BANK_USCC
from tests.support.verify_cli import run


def test_valid_files_exit_0_with_one_line_per_check(files):
    d, w = files
    proc = run(
        str(d / "creds" / "c0.json"),
        "--bundle",
        str(d / "bundle.json"),
        "--operator",
        w.operator,
        "--at",
        AT,
        "--relying-party",
        BANK_USCC,
        "--purpose",
        "loan assessment",
    )
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr.decode()
    assert "VALID" in out and out.count("✓") == 7 and "–" in out  # data skipped
    assert "signed by " + w.operator in out and "old" in out


def test_json_lines_are_alike_for_every_file_name(files, tmp_path):
    """A file name that is not UTF-8 (possible on Linux) cannot go through orjson; its line is
    written by json, in the same compact form, and stays one object (the name as decoded bytes)."""
    d, _ = files
    source = next((d / "creds").iterdir()).read_bytes()
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "营业执照.json").write_bytes(source)
    (Path(os.fsdecode(bytes(folder) + b"/\xff\xfe.json"))).write_bytes(source)
    proc = run(str(folder), "--bundle", str(d / "bundle.json"), "--at", AT, "--json")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        obj = json.loads(line.decode("utf-8", "surrogateescape"))
        assert obj["valid"] is True
        assert line.startswith(b'{"file":"') and b'","valid":true,"checks":[{"name":"format"' in line
    assert any(b"\xff\xfe.json" in line for line in lines) and any(
        "营业执照".encode() in line for line in lines
    )


def test_json_output_is_one_object_per_file(files):
    d, _ = files
    proc = run(str(d / "creds"), "--bundle", str(d / "bundle.json"), "--at", AT, "--json")
    assert proc.returncode == 0
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 2
    for line in lines:
        obj = json.loads(line)
        assert set(obj) == {"file", "valid", "checks", "credential", "evidenceAsOf"} and obj["valid"] is True
        assert obj["evidenceAsOf"] == "2026-05-31T23:00:00Z"  # the bundle's block time
        assert [c["name"] for c in obj["checks"]] == [
            "format",
            "integrity",
            "issuer",
            "anchor",
            "status",
            "validity",
            "data",
            "usage",
        ]
        assert set(obj["credential"]) == {"id", "type", "issuer", "subject"}


def test_an_invalid_file_exits_1(files):
    d, _ = files
    proc = run(
        str(d / "creds"), str(d / "revoked.json"), "--bundle", str(d / "bundle.json"), "--at", AT, "--json"
    )
    assert proc.returncode == 1
    results = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    assert [r["valid"] for r in results] == [True, True, False]
    status = next(c for c in results[2]["checks"] if c["name"] == "status")
    assert status["status"] == "failed" and "revoked" in status["reason"]


def test_stdin_is_read_with_dash(files):
    d, _ = files
    proc = run(
        "-",
        "--bundle",
        str(d / "bundle.json"),
        "--at",
        AT,
        "--json",
        stdin=(d / "creds" / "c1.json").read_bytes(),
    )
    assert proc.returncode == 0 and json.loads(proc.stdout)["file"] == "-"


def test_a_missing_file_is_a_usage_error(files, tmp_path):
    d, _ = files
    proc = run(str(tmp_path / "missing.json"), "--bundle", str(d / "bundle.json"), "--at", AT)
    assert proc.returncode == 2 and b"no such file" in proc.stderr


@pytest.mark.parametrize(
    "case,match",
    [
        ("truncated", "not valid JSON"),
        ("duplicate-key", "appears twice"),
        ("nan", "NaN is not a JSON number"),
        ("not-utf8", "not UTF-8"),
        ("not-object", "a credential is a JSON object"),
        ("wrong-types", "does not match the DataAssetCertificate schema"),
        ("huge-number", "thousands of digits"),
        ("unsafe-integer", "2^53"),
        ("float", "decimal strings"),
    ],
)
def test_malformed_input_is_a_format_failure_with_a_clear_message(files, tmp_path, case, match):
    """Issue 24: an unparsable or malformed file is that file's failed ``format`` check, exit 1."""
    d, _ = files
    good = json.loads((d / "creds" / "c0.json").read_text(encoding="utf-8"))
    f = tmp_path / f"{case}.json"
    if case == "truncated":
        f.write_bytes((d / "creds" / "c0.json").read_bytes()[:300])
    elif case == "duplicate-key":
        f.write_text(json.dumps(good, ensure_ascii=False)[:-1] + ', "id": "urn:uuid:x"}', encoding="utf-8")
    elif case == "nan":
        f.write_text(
            json.dumps(good, ensure_ascii=False).replace('"recordCount": 8760000', '"recordCount": NaN')
        )
    elif case == "not-utf8":
        f.write_bytes(
            json.dumps(good, ensure_ascii=False).encode("utf-8").replace("广".encode(), b"\xff\xfe", 1)
        )
    elif case == "not-object":
        f.write_text("[1, 2, 3]")
    elif case == "wrong-types":
        good["credentialSubject"]["recordCount"] = "many"
        good["validFrom"] = 20260101
        f.write_text(json.dumps(good, ensure_ascii=False), encoding="utf-8")
    elif case == "huge-number":
        f.write_text(
            json.dumps(good, ensure_ascii=False).replace(
                '"recordCount": 8760000', '"recordCount": ' + "9" * 5000
            )
        )
    elif case == "unsafe-integer":
        good["credentialSubject"]["recordCount"] = 2**53
        f.write_text(json.dumps(good, ensure_ascii=False), encoding="utf-8")
    elif case == "float":
        good["credentialSubject"]["recordCount"] = 1.5
        f.write_text(json.dumps(good, ensure_ascii=False), encoding="utf-8")
    proc = run(str(f), "--bundle", str(d / "bundle.json"), "--at", AT, "--json")
    assert proc.returncode == 1, proc.stderr
    (result,) = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    fmt = result["checks"][0]
    assert result["valid"] is False and fmt["name"] == "format" and fmt["status"] == "failed"
    assert match in fmt["reason"]
    assert b"Traceback" not in proc.stderr


def test_a_folder_with_one_malformed_file_reports_every_file(files, tmp_path):
    """Issue 24: one bad file (a duplicate key) never stops the run; every file gets its result."""
    d, _ = files
    folder = tmp_path / "folder"
    folder.mkdir()
    folder.joinpath("a.json").write_bytes((d / "creds" / "c0.json").read_bytes())
    text = (d / "creds" / "c1.json").read_text(encoding="utf-8")
    folder.joinpath("b.json").write_text(text.rstrip()[:-1] + ', "type": ["x"]}', encoding="utf-8")
    folder.joinpath("c.json").write_bytes((d / "creds" / "c1.json").read_bytes())
    proc = run(str(folder), "--bundle", str(d / "bundle.json"), "--at", AT, "--json")
    assert proc.returncode == 1
    results = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    assert [Path(r["file"]).name for r in results] == ["a.json", "b.json", "c.json"]
    assert [r["valid"] for r in results] == [True, False, True]
    assert results[1]["checks"][0] == {
        "name": "format",
        "status": "failed",
        "reason": "the file is not valid JSON: the key 'type' appears twice in one object",
    }
    human = run(str(folder), "--bundle", str(d / "bundle.json"), "--at", AT)
    assert human.returncode == 1 and human.stdout.decode().count("VALID") == 3


def test_a_50_mb_file_is_a_format_failure(files, tmp_path):
    d, _ = files
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.write(b'{"padding": "')
        f.write(b"x" * (50 * 1024 * 1024))
        f.write(b'"}')
    proc = run(
        str(big), str(d / "creds" / "c0.json"), "--bundle", str(d / "bundle.json"), "--at", AT, "--json"
    )
    results = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    assert proc.returncode == 1 and [r["valid"] for r in results] == [False, True]
    assert "larger than 10 MB" in results[0]["checks"][0]["reason"]


@pytest.mark.parametrize(
    "args,match",
    [
        (["--bundle", "{d}/tampered-bundle.json"], "signature does not verify"),
        (["--bundle", "{d}/bundle.json", "--operator", "0x" + "12" * 20], "not one of the pinned operators"),
        (["--bundle", "{d}/nope.json"], "cannot read the trust bundle"),
        (["--bundle", "{d}/creds/c0.json"], "not a certledger trust bundle"),
        ([], "say what to trust"),
        (["--bundle", "{d}/bundle.json", "--rpc", "http://127.0.0.1:1"], "not both"),
        (["--rpc", "http://127.0.0.1:1"], "needs both"),
        (["--bundle", "{d}/bundle.json", "--purpose", "loan"], "go together"),
        (["--bundle", "{d}/bundle.json", "--at", "yesterday"], "--at"),
        (["--bundle", "{d}/bundle.json", "--data", "{d}/none.csv"], "no such file"),
        (["--bundle", "{d}/bundle.json", "--file", "{d}/none.ofd"], "no such file"),
    ],
)
def test_usage_and_bundle_errors_exit_2(files, args, match):
    d, _ = files
    proc = run(str(d / "creds" / "c0.json"), *[a.format(d=d) for a in args])
    assert proc.returncode == 2, proc.stdout
    assert match in proc.stderr.decode()


def test_unreachable_node_exits_2(files, tmp_path):
    d, w = files
    manifest = tmp_path / "deployment.json"
    manifest.write_text(
        json.dumps(
            {
                "chainId": w.chain_id,
                "contracts": {
                    "issuerRegistry": "0x" + "01" * 20,
                    "anchorRegistry": w.anchor_registry,
                    "dataFlowLedger": "0x" + "02" * 20,
                },
            }
        )
    )
    proc = run(str(d / "creds" / "c0.json"), "--rpc", "http://127.0.0.1:9", "--deployment", str(manifest))
    assert proc.returncode == 2 and b"cannot reach the chain node" in proc.stderr


def test_help_is_readable():
    proc = run("--help")
    out = proc.stdout.decode()
    assert proc.returncode == 0
    for option in (
        "--bundle",
        "--operator",
        "--rpc",
        "--deployment",
        "--data",
        "--relying-party",
        "--purpose",
        "--at",
        "--json",
        "Exit status",
    ):
        assert option in out


def test_many_files_keep_json_output_clean(files, tmp_path):
    d, _ = files
    good = (d / "creds" / "c0.json").read_bytes()
    for i in range(25):
        (tmp_path / f"copy{i:02d}.json").write_bytes(good)
    proc = run(str(tmp_path), "--bundle", str(d / "bundle.json"), "--at", AT, "--json")
    assert proc.returncode == 0
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 25 and all(json.loads(line)["valid"] for line in lines)


def test_jobs_give_the_same_output_in_the_same_order_as_one_process(files, tmp_path):
    """--jobs N verifies in forked workers a chunk of files at a time; the parent prints every
    result in file order, exactly as one process does (valid, revoked and malformed files mixed)."""
    d, _ = files
    folder = tmp_path / "many"
    folder.mkdir()
    good = [(d / "creds" / f"c{i}.json").read_bytes() for i in range(2)]
    revoked = (d / "revoked.json").read_bytes()
    for i in range(700):  # more than one chunk per worker
        body = b"{not json" if i % 97 == 5 else revoked if i % 50 == 7 else good[i % 2]
        (folder / f"f{i:04d}.json").write_bytes(body)
    args = [str(folder), "--bundle", str(d / "bundle.json"), "--at", AT, "--json"]
    one, two = run(*args), run(*args, "--jobs", "2")
    assert one.returncode == two.returncode == 1
    assert two.stdout == one.stdout
    lines = [json.loads(x) for x in one.stdout.splitlines()]
    assert len(lines) == 700 and [x["file"] for x in lines] == sorted(x["file"] for x in lines)
    assert sum(not x["valid"] for x in lines) == len([i for i in range(700) if i % 97 == 5 or i % 50 == 7])


def test_jobs_refuse_an_online_trust_source(files):
    d, _ = files
    proc = run(
        str(d / "creds"), "--rpc", "http://127.0.0.1:9", "--deployment", str(d / "bundle.json"), "--jobs", "2"
    )
    assert proc.returncode == 2
    assert b"--jobs needs an offline trust source" in proc.stderr


def test_read_gives_a_reason_for_what_cannot_be_read(tmp_path):
    """A credential path that turns out to be a folder, or vanished after the listing: a reason
    (the file's format check fails with it), never an exception."""
    from verifier._cli import _read

    assert _read(str(tmp_path)).startswith("the file cannot be read: ")
    assert _read(str(tmp_path / "gone.json")).startswith("the file cannot be read: ")
    (tmp_path / "c.json").write_bytes(b'{"a": 1}')
    assert _read(str(tmp_path / "c.json")) == b'{"a": 1}'
    (tmp_path / "empty.json").write_bytes(b"")
    assert _read(str(tmp_path / "empty.json")) == b""


@pytest.mark.parametrize("spelling", ["{d}", "{d}/", "{d}/./", "{d}/../odd", ".", "./"])
def test_a_folders_files_are_listed_as_pathlib_lists_them(tmp_path, monkeypatch, spelling):
    """The folder's .json files (hidden ones and symlinks to files too; not folders, dangling links or
    other names), in order, each labelled str(Path(folder) / name), however the folder is spelled."""
    from verifier._cli import _expand

    d = tmp_path / "odd"
    d.mkdir()
    for name in ("b.json", "a.json", ".hidden.json", ".json", "c.JSON", "notes.txt", "营业执照.json"):
        (d / name).write_text("{}")
    (d / "sub.json").mkdir()
    (d / "link.json").symlink_to(d / "a.json")
    (d / "dangling.json").symlink_to(d / "missing")
    monkeypatch.chdir(d)
    expected = sorted(str(p) for p in Path(spelling.format(d=d)).glob("*.json") if p.is_file())
    assert len(expected) == 6  # a, b, .hidden, .json, 营业执照, link; not sub.json, c.JSON, dangling
    assert _expand([spelling.format(d=d)]) == expected


def test_verifies_without_the_modules_only_proofs_and_error_messages_need(files):
    """rlp and trie (with eth_utils) are for proof packages, jsonschema for naming a
    schema violation, eth_hash for a machine without a fast Keccak: the command verifies a valid
    credential against a bundle without importing any of them (``-X importtime`` lists what it
    imported)."""
    import subprocess
    import sys

    from tests.support.verify_cli import ROOT

    d, w = files
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "verifier._cli", str(d / "creds" / "c0.json"),
         "--bundle", str(d / "bundle.json"), "--operator", w.operator, "--at", AT],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0 and "VALID" in proc.stdout, proc.stderr[-2000:]
    imported = {
        line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")
    }
    assert "verifier._verify" in imported  # the listing is read right
    heavy = {"rlp", "trie", "eth_utils", "jsonschema", "eth_hash"}  # (typer itself imports pydantic to run)
    assert not heavy & {name.split(".")[0] for name in imported}, sorted(
        name for name in imported if name.split(".")[0] in heavy
    )
