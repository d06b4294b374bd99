"""k of n operator signatures on a trust bundle (docs/FORMAT.md §8.1): the library and
``certledger-verify --operator … --threshold K``. Each refusal names its reason: too few signatures,
an unknown signer, a duplicate signer, a tampered bundle or signature."""

from __future__ import annotations

import copy
import json

import pytest

from tests.support.factory import AT, World
from tests.support.verify_cli import FRESH, run
from verifier import TrustBundle, add_bundle_signature, eth_address, sign_trust_bundle
from verifier.errors import BundleSignatureError

KEYS = [bytes([0x60 + i]) * 32 for i in range(4)]  # four operators (bureaus)
OPS = [eth_address(k) for k in KEYS]
OUTSIDER = b"\x77" * 32


@pytest.fixture(scope="module")
def world():
    w = World()
    issuer = w.add_issuer()
    copies = w.issue(issuer, [w.document(issuer) for _ in range(2)])
    return w, w.bundle(block_timestamp=FRESH, signed=False), copies


def test_three_of_four_operators_sign_and_the_bundle_loads(world):
    _, body, _ = world
    bundle = sign_trust_bundle(body, KEYS[0], KEYS[1], KEYS[2])
    assert "signature" not in bundle and [s["signer"] for s in bundle["signatures"]] == sorted(OPS[:3])
    b = TrustBundle.load(bundle, operators=OPS, threshold=3)
    assert set(b.signers) == set(OPS[:3]) and b.verified
    assert all(b.trusts_header_signer(a) for a in OPS[:3])
    assert "signed by " + ", ".join(sorted(OPS[:3])) in b.describe()


def test_cosigning_one_at_a_time_gives_the_same_signatures(world):
    _, body, _ = world
    step = sign_trust_bundle(body, KEYS[0])
    for key in KEYS[1:3]:
        step = add_bundle_signature(step, key)
    assert step == sign_trust_bundle(body, KEYS[0], KEYS[1], KEYS[2])


def test_a_key_given_twice_counts_once_when_signing(world):
    _, body, _ = world
    twice = sign_trust_bundle(body, KEYS[0], KEYS[0], KEYS[1])
    assert len(twice["signatures"]) == 2
    again = add_bundle_signature(twice, KEYS[1])
    assert again == twice
    with pytest.raises(
        BundleSignatureError, match=r"signed by 2 of the pinned operators; 3 of 4 are required"
    ):
        TrustBundle.load(twice, operators=OPS, threshold=3)


def test_too_few_signatures_are_refused(world):
    _, body, _ = world
    with pytest.raises(
        BundleSignatureError, match=r"signed by 2 of the pinned operators; 3 of 4 are required"
    ):
        TrustBundle.load(sign_trust_bundle(body, KEYS[0], KEYS[1]), operators=OPS, threshold=3)
    with pytest.raises(BundleSignatureError, match=r"signed by 1 of the pinned operators; 2 of 4"):
        TrustBundle.load(sign_trust_bundle(body, KEYS[3]), operators=OPS, threshold=2)


def test_an_unknown_signer_is_refused_even_beside_enough_pinned_ones(world):
    _, body, _ = world
    bundle = sign_trust_bundle(body, KEYS[0], KEYS[1], KEYS[2], OUTSIDER)
    with pytest.raises(
        BundleSignatureError, match=rf"signed by {eth_address(OUTSIDER)}, which is not one of the pinned"
    ):
        TrustBundle.load(bundle, operators=OPS, threshold=3)


def test_a_duplicated_signature_is_refused(world):
    _, body, _ = world
    bundle = sign_trust_bundle(body, KEYS[0], KEYS[1])
    bundle["signatures"].append(copy.deepcopy(bundle["signatures"][0]))
    first = bundle["signatures"][0]["signer"]
    with pytest.raises(
        BundleSignatureError, match=rf"signatures 0 and 2 are both by {first} \(duplicate signer"
    ):
        TrustBundle.load(bundle, operators=OPS, threshold=2)


@pytest.mark.parametrize("member", ["issuers", "anchors", "statusLists", "block", "chainId", "contracts"])
def test_a_tampered_bundle_fails_every_signature(world, member):
    _, body, _ = world
    bundle = sign_trust_bundle(body, KEYS[0], KEYS[1], KEYS[2])
    altered = copy.deepcopy(bundle)
    if member == "chainId":
        altered["chainId"] += 1
    elif member == "block":
        altered["block"]["number"] += 1
    elif member == "contracts":
        altered["contracts"]["dataFlowLedger"] = "0x" + "ab" * 20
    elif member == "statusLists":
        altered["statusLists"]["revocation"]["details"] = {"3": {"reason": 1, "timestamp": 0, "by": "x"}}
    elif member == "issuers":
        altered["issuers"][0]["name"] = "冒名机构"
    else:
        altered["anchors"][0]["count"] += 1
    with pytest.raises(
        BundleSignatureError, match=r"signature 0 \(by 0x[0-9a-f]{40}\) does not verify: the file was altered"
    ):
        TrustBundle.load(altered, operators=OPS, threshold=3)


@pytest.mark.parametrize("field", ["signer", "value", "suite", "extra"])
def test_every_single_field_change_of_one_signature_is_refused(world, field):
    _, body, _ = world
    bundle = sign_trust_bundle(body, KEYS[0], KEYS[1], KEYS[2])
    entry = bundle["signatures"][1]
    if field == "signer":
        entry["signer"] = OPS[3]
        match = "signature 1 .* does not verify"
    elif field == "value":
        v = entry["value"]
        entry["value"] = v[:30] + ("0" if v[30] != "0" else "1") + v[31:]
        match = "signature 1 .* does not verify"
    elif field == "suite":
        entry["suite"] = "sm2-sm3"
        match = r"unsupported trust bundle signature suite 'sm2-sm3' in signatures\[1\]"
    else:
        entry["note"] = "x"
        match = r"signatures\[1\] has unknown member\(s\) note"
    with pytest.raises(BundleSignatureError, match=match):
        TrustBundle.load(bundle, operators=OPS, threshold=2)


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda b: b.__setitem__("signatures", []), "signatures must be a non-empty list"),
        (lambda b: b.__setitem__("signatures", {"a": 1}), "signatures must be a non-empty list"),
        (lambda b: b.__setitem__("signature", b["signatures"][0]), "both signature and signatures"),
        (lambda b: b["signatures"].__setitem__(0, "0xab"), r"signatures\[0\] is not an object"),
        (lambda b: b["signatures"][0].__setitem__("value", "0x12"), r"signatures\[0\].value is not 65 bytes"),
        (lambda b: b.__setitem__("signatures", b["signatures"] * 33), "more than 64"),
    ],
)
def test_malformed_signature_lists_are_refused(world, mutate, match):
    _, body, _ = world
    bundle = sign_trust_bundle(body, KEYS[0], KEYS[1])
    mutate(bundle)
    with pytest.raises(BundleSignatureError, match=match):
        TrustBundle.load(bundle, operators=OPS, threshold=2)


def test_threshold_arguments_are_checked(world):
    _, body, _ = world
    bundle = sign_trust_bundle(body, KEYS[0], KEYS[1])
    with pytest.raises(BundleSignatureError, match="cannot be met by 2 pinned operator"):
        TrustBundle.load(bundle, operators=OPS[:2], threshold=3)
    with pytest.raises(BundleSignatureError, match="needs the operators pinned"):
        TrustBundle.load(bundle, threshold=2)
    with pytest.raises(BundleSignatureError, match="positive integer"):
        TrustBundle.load(bundle, operators=OPS, threshold=0)
    # unpinned, any correctly signed bundle still loads (today's behaviour), reporting its signers
    assert set(TrustBundle.load(bundle).signers) == set(OPS[:2])


def test_a_cosigned_bundle_refuses_a_tampered_earlier_signature(world):
    _, body, _ = world
    bundle = sign_trust_bundle(body, KEYS[0])
    bundle["block"]["number"] += 1
    with pytest.raises(BundleSignatureError, match="signature 0 .* does not verify"):
        add_bundle_signature(bundle, KEYS[1])


# -- certledger-verify --operator … --threshold K -----------------------------------------------------


@pytest.fixture(scope="module")
def cli_files(world, tmp_path_factory):
    _, body, copies = world
    d = tmp_path_factory.mktemp("threshold")
    (d / "c0.json").write_text(json.dumps(copies[0], ensure_ascii=False), encoding="utf-8")
    (d / "three.json").write_text(json.dumps(sign_trust_bundle(body, KEYS[0], KEYS[1], KEYS[2])))
    (d / "two.json").write_text(json.dumps(sign_trust_bundle(body, KEYS[0], KEYS[1])))
    (d / "stranger.json").write_text(json.dumps(sign_trust_bundle(body, KEYS[0], KEYS[1], OUTSIDER)))
    dup = sign_trust_bundle(body, KEYS[0], KEYS[1])
    dup["signatures"].append(dup["signatures"][1])
    (d / "dup.json").write_text(json.dumps(dup))
    tampered = sign_trust_bundle(body, KEYS[0], KEYS[1], KEYS[2])
    tampered["anchors"][0]["status"] = "revoked"
    (d / "tampered.json").write_text(json.dumps(tampered))
    return d


def _ops() -> list[str]:
    return [a for op in OPS for a in ("--operator", op)]


def test_cli_accepts_three_of_four(cli_files):
    d = cli_files
    proc = run(str(d / "c0.json"), "--bundle", str(d / "three.json"), *_ops(), "--threshold", "3", "--at", AT)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    assert "VALID" in proc.stdout.decode()


@pytest.mark.parametrize(
    "bundle,threshold,match",
    [
        ("two.json", "3", "signed by 2 of the pinned operators; 3 of 4 are required"),
        ("stranger.json", "2", "which is not one of the pinned operators"),
        ("dup.json", "2", "duplicate signer"),
        ("tampered.json", "3", "does not verify: the file was altered"),
    ],
)
def test_cli_refusals_exit_2_naming_the_reason(cli_files, bundle, threshold, match):
    d = cli_files
    proc = run(str(d / "c0.json"), "--bundle", str(d / bundle), *_ops(), "--threshold", threshold, "--at", AT)
    assert proc.returncode == 2 and match in proc.stderr.decode().replace("\n", " "), proc.stderr.decode()


@pytest.mark.parametrize(
    "args,match",
    [
        (["--threshold", "2"], "--threshold K needs the operators pinned"),
        (["--operator", OPS[0], "--threshold", "2"], "--threshold 2 cannot be met by 1 distinct"),
        (
            ["--operator", OPS[0], "--operator", OPS[0].upper().replace("0X", "0x"), "--threshold", "2"],
            "cannot be met by 1 distinct",
        ),
        ([*_ops(), "--threshold", "0"], "--threshold must be at least 1"),
    ],
)
def test_cli_threshold_usage_errors_exit_2(cli_files, args, match):
    d = cli_files
    proc = run(str(d / "c0.json"), "--bundle", str(d / "three.json"), *args, "--at", AT)
    assert proc.returncode == 2 and match in proc.stderr.decode().replace("\n", " "), proc.stderr.decode()
