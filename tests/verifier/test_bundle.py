"""Trust bundles: signed, pinned, typed; refused with a specific error otherwise."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.factory import T_ANCHOR, T_BUNDLE, World
from verifier import TrustBundle, build_trust_bundle, sign_trust_bundle
from verifier._internal.statuslist import MIN_BITS, bit_is_set, decode_status_list, encode_status_list
from verifier.errors import BundleSignatureError, InvalidBundle, MalformedBundle, UnsupportedBundle


@pytest.fixture(scope="module")
def signed():
    w = World()
    issuer = w.add_issuer()
    w.issue(issuer, [w.document(issuer) for _ in range(2)])
    w.revoked[5] = {"reason": 1, "timestamp": T_BUNDLE, "by": "广东省市场监督管理局"}
    return w, w.bundle()


def test_a_signed_bundle_loads_from_bytes_path_and_dict(signed, tmp_path):
    w, bundle = signed
    raw = json.dumps(bundle, ensure_ascii=False).encode()
    path = tmp_path / "bundle.json"
    path.write_bytes(raw)
    for source in (raw, path, str(path), bundle):
        b = TrustBundle.load(source, operators=[w.operator])
        assert b.signer == w.operator and b.chain_id == w.chain_id and b.verified
        assert b.list_status(5).status == 2 and b.list_status(4).status == 1


def test_age_and_description(signed):
    w, bundle = signed
    b = TrustBundle.load(bundle)
    now = datetime.fromtimestamp(T_BUNDLE, UTC) + timedelta(days=3, hours=2)
    assert b.age(now) == timedelta(days=3, hours=2)
    assert "3 days old" in b.describe(now) and w.operator in b.describe(now)


@pytest.mark.parametrize(
    "path,value",
    [
        (("chainId",), 1),
        (("block", "number"), 1),
        (("issuers", 0, "name"), "冒名机构"),
        (("anchors", 0, "status"), "revoked"),
        (("anchors", 0, "count"), 3),
        (("statusLists", "revocation", "encodedList"), encode_status_list([])),
    ],
)
def test_altered_content_breaks_the_signature(signed, path, value):
    _, bundle = signed
    altered = copy.deepcopy(bundle)
    node = altered
    for key in path[:-1]:
        node = node[key]
    if node[path[-1]] == value:
        value = value + 1 if isinstance(value, int) else value + "x"
    node[path[-1]] = value
    with pytest.raises(BundleSignatureError, match="altered"):
        TrustBundle.load(altered)


def test_altered_signature_is_refused(signed):
    _, bundle = signed
    altered = copy.deepcopy(bundle)
    v = altered["signature"]["value"]
    altered["signature"]["value"] = v[:20] + ("0" if v[20] != "0" else "1") + v[21:]
    with pytest.raises(BundleSignatureError):
        TrustBundle.load(altered)


def test_unsigned_bundle_is_refused(signed):
    _, bundle = signed
    with pytest.raises(BundleSignatureError, match="not signed"):
        TrustBundle.load({k: v for k, v in bundle.items() if k != "signature"})


def test_signer_must_be_a_pinned_operator(signed):
    _, bundle = signed
    with pytest.raises(BundleSignatureError, match="not one of the pinned operators"):
        TrustBundle.load(bundle, operators=["0x" + "12" * 20])


def test_resigned_by_another_key_is_refused_when_pinned(signed):
    w, bundle = signed
    forged = sign_trust_bundle(bundle, b"\x55" * 32)
    assert TrustBundle.load(forged).signer != w.operator
    with pytest.raises(BundleSignatureError):
        TrustBundle.load(forged, operators=[w.operator])


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("type", "SomethingElse", "not a certledger trust bundle"),
        ("version", 2, "version 2 is not supported"),
    ],
)
def test_wrong_type_or_version_is_invalid_bundle(signed, key, value, match):
    _, bundle = signed
    with pytest.raises(UnsupportedBundle, match=match):
        TrustBundle.load({**bundle, key: value})


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b["contracts"].pop("anchorRegistry"),
        lambda b: b["block"].update(number="12"),
        lambda b: b["issuers"][0]["keys"][0].update(account="0x1234"),
        lambda b: b["anchors"][0].update(root="0xzz"),
        lambda b: b["anchors"][0].update(status="lost"),
        lambda b: b["statusLists"]["suspension"].update(encodedList="zzz"),
        lambda b: b["statusLists"]["suspension"].update(encodedList=encode_status_list([])[:40]),
        lambda b: b.update(issuers={}),
    ],
)
def test_malformed_content_is_invalid_bundle(signed, mutate):
    _, bundle = signed
    broken = copy.deepcopy(bundle)
    mutate(broken)
    with pytest.raises(MalformedBundle, match="trust bundle"):
        TrustBundle.load(broken)


def test_unreadable_and_non_json_bundles_are_invalid_bundle(tmp_path):
    with pytest.raises(InvalidBundle, match="cannot read"):
        TrustBundle.load(tmp_path / "missing.json")
    with pytest.raises(MalformedBundle, match="not valid JSON"):
        TrustBundle.load(b'{"type": "CertledgerTrustBundle", ')
    with pytest.raises(MalformedBundle, match="twice"):
        TrustBundle.load(b'{"type": 1, "type": 2}')


def test_build_refuses_malformed_input():
    with pytest.raises(InvalidBundle):
        build_trust_bundle(chain_id=1, contracts={"anchorRegistry": "0x00"}, block={}, issuers=[], anchors=[])


def test_status_list_bit_order_and_minimum_length():
    encoded = encode_status_list([0, 9, 131_071])
    assert encoded.startswith("u") and "=" not in encoded
    raw = decode_status_list(encoded)
    assert len(raw) * 8 == MIN_BITS
    assert raw[0] == 0x80 and raw[1] == 0x40  # index 0 = left-most bit of byte 0; index 9 = 2nd bit of byte 1
    assert bit_is_set(raw, 0) and bit_is_set(raw, 9) and bit_is_set(raw, 131_071) and not bit_is_set(raw, 1)
    assert not bit_is_set(raw, 10**9)


@pytest.mark.parametrize(
    "blocks,suspended_at,verdict,words",
    [
        (
            1,
            T_ANCHOR + 86_400,
            "passed",
            "after this batch was anchored; credentials it issued before stay valid",
        ),
        (1, T_ANCHOR, "passed", "after this batch was anchored"),  # same second, later block: blocks decide
        (0, T_ANCHOR, "failed", "while 广东省市场监督管理局 was suspended"),
        (-1, T_ANCHOR - 86_400, "failed", "while 广东省市场监督管理局 was suspended"),
        (None, 0, "passed", "since a time the trust source does not record"),
    ],
)
def test_issuer_suspension_time_travels_in_the_bundle(blocks, suspended_at, verdict, words):
    """FORMAT.md §7/§8 (issue 24): the bundle records when an issuer was suspended (block, time), so
    offline an issuer suspended after a batch was anchored leaves that batch valid, and a batch
    anchored at or after the suspension fails `issuer`."""
    from tests.support.factory import AT
    from verifier import verify

    w = World()
    issuer = w.add_issuer()
    holder = w.issue(issuer, [w.document(issuer) for _ in range(2)])[0]
    data = w.bundle(signed=False)
    entry = data["issuers"][0]
    assert entry["statusBlock"] == 0 and entry["statusTimestamp"] == 0  # active: written as 0
    entry["status"] = "suspended"
    block = holder["proof"]["anchor"]["blockNumber"] + (blocks or 0)
    if blocks is not None:
        entry["statusBlock"], entry["statusTimestamp"] = block, suspended_at
    else:  # a bundle made before the members existed
        del entry["statusBlock"], entry["statusTimestamp"]
    trust = TrustBundle.load(sign_trust_bundle(data, w.operator_key), operators=[w.operator])
    record = trust.issuer(issuer.id)
    assert (record.status_block, record.status_timestamp) == (
        (block, suspended_at) if blocks is not None else (0, 0)
    )
    check = verify(holder, trust=trust, at=AT).check("issuer")
    assert check.status == verdict and words in check.reason, check
    if blocks is not None:
        assert f"block {block}" in check.reason


def test_a_malformed_suspension_time_is_refused():
    w = World()
    w.add_issuer()
    data = w.bundle(signed=False)
    data["issuers"][0]["statusTimestamp"] = -1
    with pytest.raises(MalformedBundle, match="statusTimestamp must be a non-negative integer"):
        TrustBundle.load(sign_trust_bundle(data, w.operator_key), operators=[w.operator])


@pytest.mark.parametrize("where", ["contracts", "anchor root", "key account", "block hash"])
def test_upper_case_hex_in_a_bundle_is_refused(where):
    """FORMAT.md §8: hex in a bundle is lower-case; an EIP-55 or upper-case value is MalformedBundle."""
    w = World()
    issuer = w.add_issuer()
    w.issue(issuer, [w.document(issuer) for _ in range(2)])
    data = w.bundle(signed=False)
    if where == "contracts":
        data["contracts"]["anchorRegistry"] = "0x" + data["contracts"]["anchorRegistry"][2:].upper()
    elif where == "anchor root":
        data["anchors"][0]["root"] = "0x" + data["anchors"][0]["root"][2:].upper()
    elif where == "key account":
        data["issuers"][0]["keys"][0]["account"] = "0x" + data["issuers"][0]["keys"][0]["account"][2:].upper()
    else:
        data["block"]["hash"] = "0x" + "AB" * 32
    with pytest.raises(MalformedBundle, match="lower-case 0x-hex"):
        TrustBundle.load(sign_trust_bundle(data, w.operator_key), operators=[w.operator])
