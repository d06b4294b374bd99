"""Tampering fails the right check, by name; later checks that depend on it are skipped."""

from __future__ import annotations

import copy
import hashlib
import re
from datetime import date, timedelta

import pytest

from tests.support.factory import AT, BANK_USCC, T_ANCHOR, World, make_uscc, status_index
from verifier import CHECK_NAMES, Verifier, redact, verify
from verifier._internal.disclosure import flatten, parse_pointer
from verifier.licence_id import ROOT_CODE, make_licence_identifier, parse_licence_identifier
from verifier.uscc import check_character

# Paths whose value the schema pins (const): changing them fails `format` before `integrity`.
CONST_PATHS = re.compile(
    r"^/(@context/\d|type/\d|credentialSchema/.*|credentialStatus/\d/(type|statusPurpose)|"
    r"credentialSubject/(registeredCapital|valuation)/currency|credentialSubject/holderCodeType)$"
)
# An e-licence's metadata is tied together (FORMAT.md §2.3): its identifier names the issuer and
# carries the type code, so changing the issuer's credit code or the type code alone fails `format`.
LICENCE_TIED_PATHS = {"/issuer/unifiedSocialCreditCode", "/credentialSubject/licenceTypeCode"}


def _expect(result, name):
    """``name`` is the first check that failed (later ones may fail too, e.g. a tampered issuer name
    fails `integrity` and then `issuer`)."""
    names = [c.name for c in result.checks]
    assert names == list(CHECK_NAMES)
    assert not result.valid
    check = result.check(name)
    assert check.status == "failed", result.checks
    for c in result.checks[: names.index(name)]:
        # the only earlier check that may be skipped is `issuer` (it needs the anchor record) and
        # the optional `data` (no dataset given)
        assert c.status == "passed" or (c.status == "skipped" and c.name in ("issuer", "data")), result.checks

    return check


def _mutate(path: str, value):
    if type(value) is bool:
        return not value
    if type(value) is int:
        return value + 1
    if value is None or value == {} or value == []:
        return "x"
    v = value
    if v.startswith(ROOT_CODE + "."):  # another serial of the same type and issuer, with its check character
        ident = parse_licence_identifier(v)
        return make_licence_identifier(ident.type_code, ident.issuer_code, ident.serial + "1")
    if re.fullmatch(r"[0-9A-HJ-NPQRTUWXY]{18}", v):
        body = v[:16] + ("1" if v[16] != "1" else "2")
        return body + check_character(body)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
        return (date.fromisoformat(v) + timedelta(days=1)).isoformat()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T.*Z", v):
        return str(int(v[:4]) - 1) + v[4:]
    if v.startswith(("urn:uuid:", "0x")):
        return v[:-1] + ("0" if v[-1] != "0" else "1")
    if v.startswith(("urn:certledger:", "did:certledger:")):
        return v.replace(":31337:", ":31338:")
    if re.fullmatch(r"\d+", v):
        return str(int(v) + 1)
    if re.fullmatch(r"\d+\.\d+", v):
        whole, frac = v.split(".")
        return f"{int(whole) + 1}.{frac}"
    swaps = {
        "important": "core",
        "sha256": "sm3",
        "sm3": "sha256",
        "revocation": "suspension",
        "suspension": "revocation",
    }
    if v in swaps:
        return swaps[v]
    return v + "改"


def _set(doc, path, value):
    tokens = parse_pointer(path)
    node = doc
    for t in tokens[:-1]:
        node = node[int(t)] if isinstance(node, list) else node[t]
    last = tokens[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def _leaves(doc):
    out = []
    for k, v in doc.items():
        if k != "proof":
            flatten(v, "/" + k, out)
    return out


@pytest.mark.parametrize("suite", ["secp256k1", "sm2-sm3"])
@pytest.mark.parametrize("type_name", ["BusinessLicence", "OperatingPermit", "DataAssetCertificate"])
def test_untouched_credentials_verify(world, trust, suite, type_name):
    for copy_ in world.batches[(suite, type_name)]:
        result = verify(copy_, trust=trust, at=AT)
        assert result.valid, result.checks
        assert [c.name for c in result.checks] == list(CHECK_NAMES)
        assert result.credential.type == type_name


@pytest.mark.parametrize("type_name", ["BusinessLicence", "OperatingPermit", "DataAssetCertificate"])
def test_every_single_field_changed_in_turn_fails(world, trust, type_name):
    holder = world.batches[("secp256k1", type_name)][0]
    verifier = Verifier(trust=trust)
    paths = _leaves(holder)
    assert len(paths) > 25
    for path, value in paths:
        doc = copy.deepcopy(holder)
        _set(doc, path, _mutate(path, value))
        result = verifier.verify(doc, at=AT)
        tied = type_name != "DataAssetCertificate" and path in LICENCE_TIED_PATHS
        _expect(result, "format" if CONST_PATHS.match(path) or tied else "integrity")


def test_a_field_added_to_an_object_fails_format(world, trust):
    doc = copy.deepcopy(world.batches[("secp256k1", "BusinessLicence")][0])
    doc["credentialSubject"]["note"] = "added"
    check = _expect(verify(doc, trust=trust, at=AT), "format")
    assert "note" in check.reason


def test_an_element_added_to_an_array_fails_integrity(world, trust):
    doc = copy.deepcopy(world.batches[("secp256k1", "OperatingPermit")][0])
    doc["credentialSubject"]["permittedActivities"].append("跨境数据传输业务")
    check = _expect(verify(doc, trust=trust, at=AT), "integrity")
    assert "added later" in check.reason


def test_a_field_removed_without_redaction_fails_integrity(world, trust):
    doc = copy.deepcopy(world.batches[("secp256k1", "DataAssetCertificate")][0])
    del doc["credentialSubject"]["authorisedUses"][1]
    _expect(verify(doc, trust=trust, at=AT), "integrity")


@pytest.mark.parametrize("reinserted", ["same", "other"])
def test_a_redacted_field_re_added_fails_integrity(world, trust, reinserted):
    holder = world.batches[("sm2-sm3", "BusinessLicence")][0]
    red = redact(holder, ["/credentialSubject/legalRepresentative"])
    assert verify(red, trust=trust, at=AT).valid
    red["credentialSubject"]["legalRepresentative"] = (
        holder["credentialSubject"]["legalRepresentative"] if reinserted == "same" else "王小明"
    )
    check = _expect(verify(red, trust=trust, at=AT), "integrity")
    assert "redacted" in check.reason


def test_proof_path_swapped_truncated_or_borrowed_fails_integrity(world, trust):
    batch = world.batches[("secp256k1", "BusinessLicence")]
    holder = batch[0]
    assert len(holder["proof"]["merkleProof"]) >= 2
    swapped = copy.deepcopy(holder)
    p = swapped["proof"]["merkleProof"]
    p[0], p[1] = p[1], p[0]
    _expect(verify(swapped, trust=trust, at=AT), "integrity")
    truncated = copy.deepcopy(holder)
    truncated["proof"]["merkleProof"].pop()
    _expect(verify(truncated, trust=trust, at=AT), "integrity")
    borrowed = copy.deepcopy(holder)
    borrowed["proof"]["merkleProof"] = batch[1]["proof"]["merkleProof"]
    _expect(verify(borrowed, trust=trust, at=AT), "integrity")


@pytest.mark.parametrize(
    "bad",
    [
        1,
        None,
        ["0x" + "ab" * 32],
        {"0x": 1},
        "0x" + "zz" * 32,
        "0x" + "ab" * 31,
        "0x" + "ab" * 33,
        "0x" + "ab" * 31 + "  ",
        "ab" * 33,
        "0X" + "ab" * 32,
        "0x" + "ab" * 16 + " " * 32,
    ],
)
def test_a_malformed_merkle_proof_sibling_fails_format(world, trust, bad):
    """Each position of the path, before and after a good sibling was decoded (and remembered)."""
    holder = world.batches[("secp256k1", "BusinessLicence")][0]
    assert verify(holder, trust=trust, at=AT).valid  # its siblings are decoded and remembered now
    for i in (0, len(holder["proof"]["merkleProof"]) - 1):
        doc = copy.deepcopy(holder)
        doc["proof"]["merkleProof"][i] = bad
        result = verify(doc, trust=trust, at=AT)
        assert result.check("format").status == "failed", (bad, result.check("format"))
        assert (
            "merkleProof must be a list of 32-byte lower-case 0x-hex hashes" in result.check("format").reason
        )


def test_proof_fields_altered_fail(world, trust):
    holder = world.batches[("secp256k1", "BusinessLicence")][0]
    doc = copy.deepcopy(holder)
    doc["proof"]["batchCount"] = 7  # the signature covers the count, and the anchor records it
    result = verify(doc, trust=trust, at=AT)
    assert result.check("issuer").status == "failed" and result.check("anchor").status == "failed"
    for key, value, check in [
        ("issuerId", 2, "anchor"),
        ("credentialType", 2, "integrity"),
        ("keyVersion", 2, "anchor"),
        ("targetHash", "0x" + "00" * 32, "integrity"),
        ("subjectHash", "0x" + "00" * 32, "integrity"),
        ("merkleRoot", "0x" + "11" * 32, "integrity"),
    ]:
        doc = copy.deepcopy(holder)
        doc["proof"][key] = value
        _expect(verify(doc, trust=trust, at=AT), check)
    doc = copy.deepcopy(holder)
    doc["proof"]["anchor"]["blockNumber"] += 1
    _expect(verify(doc, trust=trust, at=AT), "anchor")
    doc = copy.deepcopy(holder)
    sig = doc["proof"]["signature"]
    doc["proof"]["signature"] = sig[:10] + ("0" if sig[10] != "0" else "1") + sig[11:]
    _expect(verify(doc, trust=trust, at=AT), "issuer")


@pytest.mark.parametrize("what", ["chain", "contract"])
def test_root_from_another_chain_or_contract_fails_anchor(trust, what):
    other = World(chain_id=5) if what == "chain" else World(anchor_registry="0x" + "42" * 20)
    issuer = other.add_issuer()
    holder = other.issue(issuer, [other.document(issuer) for _ in range(3)])[0]
    result = verify(holder, trust=trust, at=AT)
    check = _expect(result, "anchor")
    assert ("chain 5" in check.reason) if what == "chain" else ("0x4242" in check.reason)
    assert result.check("issuer").status == "skipped"
    assert result.check("status").status == "skipped"


def test_root_relabelled_for_this_chain_is_not_anchored(trust):
    other = World()
    issuer = other.add_issuer()
    holder = other.issue(issuer, [other.document(issuer) for _ in range(2)], anchor=False)[0]
    check = _expect(verify(holder, trust=trust, at=AT), "anchor")
    assert "not anchored" in check.reason


def test_signature_by_a_key_not_registered_for_that_type_fails_issuer():
    w = World()
    issuer = w.add_issuer(types={1})
    holder = w.issue(issuer, [w.document(issuer, "DataAssetCertificate") for _ in range(2)])[0]
    check = _expect(verify(holder, trust=w.trust(), at=AT), "issuer")
    assert "not authorised to issue DataAssetCertificate" in check.reason


def test_signature_by_an_unregistered_key_fails_issuer():
    w = World()
    issuer = w.add_issuer()
    holder = w.issue(issuer, [w.document(issuer) for _ in range(2)], sign_key=b"\7" * 32)[0]
    check = _expect(verify(holder, trust=w.trust(), at=AT), "issuer")
    assert "signature was not made by" in check.reason


@pytest.mark.parametrize("window", ["key", "issuer"])
def test_signature_outside_its_window_fails_issuer(window):
    w = World()
    issuer = w.add_issuer("sm2-sm3")
    holder = w.issue(issuer, [w.document(issuer) for _ in range(2)])[0]
    if window == "key":
        k = issuer.keys[1]
        issuer.keys[1] = type(k)(1, k.account, T_ANCHOR + 3600, 0, k.sm2_public_key)
    else:
        issuer.active_until = T_ANCHOR - 1
    check = _expect(verify(holder, trust=w.trust(), at=AT), "issuer")
    assert (
        ("was not valid when" in check.reason)
        if window == "key"
        else ("outside its authorised" in check.reason)
    )


def test_rotated_key_keeps_old_anchors_valid():
    w = World()
    issuer = w.add_issuer()
    holder = w.issue(issuer, [w.document(issuer) for _ in range(2)])[0]
    k = issuer.keys[1]
    issuer.keys[1] = type(k)(1, k.account, k.valid_from, T_ANCHOR + 10, b"")
    issuer.keys[2] = type(k)(2, "0x" + "99" * 20, T_ANCHOR + 10, 0, b"")
    issuer.key_version = 2
    assert verify(holder, trust=w.trust(), at=AT).valid


def _status_world(kind: str):
    w = World()
    issuer = w.add_issuer(name="广东省数据管理局")
    batch = w.issue(issuer, [w.document(issuer) for _ in range(3)])
    details = {"reason": 2, "timestamp": 1_772_409_600, "by": "Guangdong Data Authority"}  # 2026-03-02
    if kind == "revoked":
        w.revoked[status_index(batch[1])] = details
    elif kind == "suspended":
        w.suspended[status_index(batch[1])] = details
    else:
        a = w.anchors[-1]
        w.anchors[-1] = type(a)(
            a.root,
            a.issuer_id,
            a.key_version,
            a.credential_type,
            a.count,
            a.block_number,
            a.timestamp,
            2,
            6,
            1_772_409_600,
        )
    return w, batch


def test_revoked_credential_fails_status_with_reason_in_words():
    w, batch = _status_world("revoked")
    trust = w.trust()
    check = _expect(verify(batch[1], trust=trust, at=AT), "status")
    assert check.reason == "revoked by Guangdong Data Authority on 2026-03-02: reason superseded"
    assert verify(batch[0], trust=trust, at=AT).valid and verify(batch[2], trust=trust, at=AT).valid


def test_suspended_credential_fails_status():
    w, batch = _status_world("suspended")
    check = _expect(verify(batch[1], trust=w.trust(), at=AT), "status")
    assert check.reason.startswith("suspended by Guangdong Data Authority on 2026-03-02")


def test_revoked_batch_fails_status_for_every_member():
    w, batch = _status_world("batch")
    trust = w.trust()
    for holder in batch:
        check = _expect(verify(holder, trust=trust, at=AT), "status")
        assert (
            check.reason
            == "the whole batch was revoked by 广东省数据管理局 on 2026-03-02: reason data inaccurate"
        )


@pytest.mark.parametrize(
    "at,words", [("2031-01-01T00:00:00Z", "expired"), ("2025-12-31T23:59:59Z", "not yet valid")]
)
def test_outside_validity_fails_validity(world, trust, at, words):
    holder = world.batches[("secp256k1", "BusinessLicence")][0]
    check = _expect(verify(holder, trust=trust, at=at), "validity")
    assert words in check.reason


@pytest.mark.parametrize("algorithm", ["sha256", "sm3"])
def test_dataset_one_byte_different_fails_data(algorithm):
    w = World()
    issuer = w.add_issuer()
    data = bytes(range(256)) * 40
    subject_doc = w.document(issuer, "DataAssetCertificate")
    subject_doc["credentialSubject"]["digestAlgorithm"] = algorithm
    subject_doc["credentialSubject"]["datasetDigest"] = "0x" + hashlib.new(algorithm, data).hexdigest()
    holder = w.issue(issuer, [subject_doc])[0]
    trust = w.trust()
    good = verify(holder, trust=trust, at=AT, data=data)
    assert good.valid and good.check("data").status == "passed"
    tampered = data[:1000] + bytes([data[1000] ^ 1]) + data[1001:]
    check = _expect(verify(holder, trust=trust, at=AT, data=tampered), "data")
    assert "does not match" in check.reason


def test_dataset_path_is_read(tmp_path):
    w = World()
    issuer = w.add_issuer()
    data = b"meter,kwh\n1,2\n" * 1000
    doc = w.document(issuer, "DataAssetCertificate")
    doc["credentialSubject"]["datasetDigest"] = "0x" + hashlib.sha256(data).hexdigest()
    holder = w.issue(issuer, [doc])[0]
    f = tmp_path / "data.csv"
    f.write_bytes(data)
    assert verify(holder, trust=w.trust(), at=AT, data=f).check("data").status == "passed"


def test_relying_party_not_among_authorised_uses_fails_usage(world, trust):
    holder = world.batches[("secp256k1", "DataAssetCertificate")][0]
    ok = verify(holder, trust=trust, at=AT, relying_party=BANK_USCC, purpose="loan assessment")
    assert ok.valid and ok.check("usage").status == "passed"
    stranger = make_uscc(__import__("random").Random(99))
    check = _expect(
        verify(holder, trust=trust, at=AT, relying_party=stranger, purpose="loan assessment"), "usage"
    )
    assert "not among" in check.reason
    check = _expect(verify(holder, trust=trust, at=AT, relying_party=BANK_USCC, purpose="marketing"), "usage")
    assert "not for 'marketing'" in check.reason
    check = _expect(
        verify(
            holder, trust=trust, at="2027-06-01T00:00:00Z", relying_party=BANK_USCC, purpose="loan assessment"
        ),
        "usage",
    )
    assert "ended on 2027-01-01" in check.reason


def test_optional_checks_are_skipped_without_their_inputs(world, trust):
    result = verify(world.batches[("secp256k1", "BusinessLicence")][0], trust=trust, at=AT)
    assert result.check("data").status == "skipped" and result.check("usage").status == "skipped"


def test_format_failure_skips_everything_else(trust):
    result = verify({"type": ["VerifiableCredential", "Passport"]}, trust=trust, at=AT)
    assert result.check("format").status == "failed"
    assert all(c.status == "skipped" for c in result.checks[1:])
    result = verify(b'{"truncated": ', trust=trust, at=AT)
    assert result.check("format").status == "failed" and "not valid JSON" in result.check("format").reason


def test_integrity_failure_skips_content_checks(world, trust):
    doc = copy.deepcopy(world.batches[("secp256k1", "DataAssetCertificate")][0])
    doc["credentialSubject"]["assetName"] = "别的数据"
    result = verify(doc, trust=trust, at=AT, data=b"x", relying_party=BANK_USCC, purpose="loan assessment")
    assert [c.status for c in result.checks] == [
        "passed",
        "failed",
        "passed",
        "passed",
        "skipped",
        "skipped",
        "skipped",
        "skipped",
    ]


def test_bundle_for_another_chain_fails_anchor(world):
    holder = world.batches[("secp256k1", "BusinessLicence")][0]
    other = World(chain_id=1)
    other.issuers = world.issuers
    other.anchors = world.anchors
    check = _expect(verify(holder, trust=other.trust(), at=AT), "anchor")
    assert "trust source is for chain 1" in check.reason


def test_verifier_checks_each_batch_signature_once(world, trust, monkeypatch):
    import verifier._verify as module

    calls = []
    real = module.verify_batch_signature
    monkeypatch.setattr(module, "verify_batch_signature", lambda *a, **k: calls.append(1) or real(*a, **k))
    v = Verifier(trust=trust)
    batch = world.batches[("sm2-sm3", "OperatingPermit")]
    assert all(r.valid for r in v.verify_many(batch, at=AT))
    assert all(r.valid for r in v.verify_many(batch, at=AT))
    assert len(calls) == 1


def test_result_serialises_for_the_cli(world, trust):
    holder = world.batches[("secp256k1", "BusinessLicence")][0]
    out = verify(holder, trust=trust, at=AT).to_json("a.json")
    assert out["file"] == "a.json" and out["valid"] is True
    assert [c["name"] for c in out["checks"]] == list(CHECK_NAMES)
    assert out["credential"] == {
        "id": holder["id"],
        "type": "BusinessLicence",
        "issuer": holder["issuer"]["name"],
        "subject": holder["credentialSubject"]["unifiedSocialCreditCode"],
    }


@pytest.mark.parametrize(
    "bad",
    [
        None,
        7,
        ["0x" + "00" * 32],
        "0x" + "00" * 31,
        "0x" + "00" * 33,
        "0x" + "zz" * 32,
        "0X" + "00" * 32,
        "00" * 33,
        "0x" + "00" * 30 + " 0",
        "remove",
    ],
)
def test_a_malformed_or_missing_salt_fails_integrity_naming_the_field(world, trust, bad):
    holder = world.batches[("secp256k1", "BusinessLicence")][0]
    doc = copy.deepcopy(holder)
    path = "/credentialSubject/enterpriseName"
    if bad == "remove":
        del doc["proof"]["salts"][path]
    else:
        doc["proof"]["salts"][path] = bad
    result = verify(doc, trust=trust, at=AT)
    assert not result.valid
    failed = result.failed[0]
    assert failed.name == "integrity", result.failed
    assert "enterpriseName" in failed.reason, failed.reason


@pytest.mark.parametrize("where", ["proof", "proof.anchor"])
def test_an_unknown_proof_member_fails_format(world, trust, where):
    """FORMAT.md §5: a member of proof (or proof.anchor) the format does not define is refused."""
    holder = world.batches[("secp256k1", "BusinessLicence")][0]
    doc = copy.deepcopy(holder)
    (doc["proof"] if where == "proof" else doc["proof"]["anchor"])["verifiedBy"] = "the central bank"
    check = _expect(verify(doc, trust=trust, at=AT), "format")
    assert f"{where} has a member the format does not define (verifiedBy)" in check.reason


@pytest.mark.parametrize(
    "member,check",
    [
        ("targetHash", "format"),
        ("merkleRoot", "format"),
        ("signature", "format"),
        ("anchor.anchorRegistry", "format"),
        ("anchor.txHash", "format"),
        ("merkleProof.0", "format"),
        ("salts", "integrity"),
        ("redactedDigests", "integrity"),
    ],
)
def test_upper_case_hex_is_refused(world, trust, member, check):
    """FORMAT.md preamble: hex is lower-case; upper-case hex in the proof is refused."""
    holder = world.batches[("secp256k1", "DataAssetCertificate")][0]
    doc = redact(holder, ["/credentialSubject/valuation"])
    proof = doc["proof"]
    if member == "salts":
        key = "/credentialSubject/assetName"
        proof["salts"][key] = "0x" + proof["salts"][key][2:].upper()
    elif member == "redactedDigests":
        key = "/credentialSubject/valuation/amount"
        proof["redactedDigests"][key] = "0x" + proof["redactedDigests"][key][2:].upper()
    elif member == "merkleProof.0":
        proof["merkleProof"][0] = "0x" + proof["merkleProof"][0][2:].upper()
    elif member.startswith("anchor."):
        k = member.split(".")[1]
        proof["anchor"][k] = "0x" + proof["anchor"][k][2:].upper()
    else:
        proof[member] = "0x" + proof[member][2:].upper()
    assert any(c.isupper() for c in str(proof))
    result = _expect(verify(doc, trust=trust, at=AT), check)
    assert "lower-case 0x-hex" in result.reason


def _member_paths(node, prefix=()):
    if isinstance(node, dict):
        for key, item in node.items():
            yield (*prefix, key)
            yield from _member_paths(item, (*prefix, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield (*prefix, index)
            yield from _member_paths(item, (*prefix, index))


@pytest.mark.parametrize("pure_python", [False, True], ids=["accelerated", "pure-python"])
def test_any_member_of_any_json_type_is_a_verdict_never_an_exception(world, trust, monkeypatch, pure_python):
    """Every member of a holder copy of each type and suite (envelope, subject, proof, anchor)
    replaced by values of other JSON types, unhashable ones included: verify gives a failed result,
    never an exception. (A list as ``type[1]`` or ``proof.suite`` once ended in a TypeError.)"""
    import verifier._proof as proof_module
    import verifier._verify as verify_module

    if pure_python:
        monkeypatch.setattr(verify_module, "accelerated_target_hash", None)
        monkeypatch.setattr(proof_module, "_fast_parse", None)
    verifier = Verifier(trust=trust)
    tried = 0
    for copies in world.batches.values():
        good = copies[0]
        for path in _member_paths(good):
            for bad in ([], {}, [[]], {"a": []}, None, 1.5, 2**70, True, "x"):
                doc = copy.deepcopy(good)
                node = doc
                for key in path[:-1]:
                    node = node[key]
                node[path[-1]] = copy.deepcopy(bad)
                result = verifier.verify(doc, at=AT)  # raises nothing
                assert result.checks[0].name == "format"
                tried += 1
    assert tried > 3000
