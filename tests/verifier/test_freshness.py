"""Freshness (docs/FORMAT.md §15): evidence older than the policy is refused with a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.support.factory import AT, T_BUNDLE
from tests.support.verify_cli import run
from verifier._freshness import check_fresh, parse_duration
from verifier.errors import StaleEvidence


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("1h", 3600),
        ("24h", 86400),
        ("7d", 604800),
        ("2w", 1209600),
        ("none", None),
        ("NONE", None),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "h", "1.5h", "-1h", "0h", "1y", "1h30m", "10000000000s"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError, match="is not a duration such as 90s, 30m, 1h, 7d or 2w"):
        parse_duration(text)


def test_check_fresh_boundary():
    at = datetime.fromtimestamp(T_BUNDLE + 3600, UTC)
    check_fresh(T_BUNDLE, 3600, at)  # exactly the maximum age: fresh
    with pytest.raises(
        StaleEvidence, match=r"as of 2026-01-09T23:06:40Z, 1 hour before .* older than the maximum age 59m"
    ):
        check_fresh(T_BUNDLE, 3540, at, what="evidence")
    check_fresh(0, None, at)  # no limit


def test_stale_bundle_is_refused_by_default(files):  # noqa: F811
    d, _ = files
    proc = run(str(d / "creds"), "--bundle", str(d / "old-bundle.json"), "--at", AT)
    assert proc.returncode == 2
    assert (
        "the trust bundle is as of 2026-01-09T23:06:40Z, 142 days before the verification time, "
        "older than the maximum age 1d"
    ) in proc.stderr.decode()


def test_max_age_allows_and_tightens(files):  # noqa: F811
    d, _ = files
    ok = run(
        str(d / "creds"), "--bundle", str(d / "old-bundle.json"), "--at", AT, "--max-age", "200d", "--json"
    )
    assert ok.returncode == 0, ok.stderr.decode()
    assert {json.loads(x)["evidenceAsOf"] for x in ok.stdout.decode().splitlines()} == {
        "2026-01-09T23:06:40Z"
    }
    assert (
        run(
            str(d / "creds"), "--bundle", str(d / "old-bundle.json"), "--at", AT, "--max-age", "none"
        ).returncode
        == 0
    )
    tight = run(str(d / "creds"), "--bundle", str(d / "bundle.json"), "--at", AT, "--max-age", "30m")
    assert (
        tight.returncode == 2
        and "1 hour before the verification time, older than the maximum age 30m" in tight.stderr.decode()
    )


def test_bad_max_age_is_a_usage_error(files):  # noqa: F811
    d, _ = files
    proc = run(str(d / "creds"), "--bundle", str(d / "bundle.json"), "--at", AT, "--max-age", "a week")
    assert proc.returncode == 2 and "--max-age: 'a week' is not a duration" in proc.stderr.decode()


def test_bad_validators_file_is_a_usage_error(files, tmp_path):  # noqa: F811
    d, _ = files
    (tmp_path / "v.json").write_text('{"type": "certledger-validators", "version": 9}')
    proc = run(
        str(d / "creds"),
        "--bundle",
        str(d / "bundle.json"),
        "--at",
        AT,
        "--validators",
        str(tmp_path / "v.json"),
    )
    assert proc.returncode == 2 and "validators file version 9 is not supported" in proc.stderr.decode()
    proc = run(
        str(d / "creds"),
        "--bundle",
        str(d / "bundle.json"),
        "--at",
        AT,
        "--validators",
        str(tmp_path / "no.json"),
    )
    assert proc.returncode == 2 and "cannot read the validators file" in proc.stderr.decode()
