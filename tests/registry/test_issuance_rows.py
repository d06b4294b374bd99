"""What the issuance workers hand the service: ids, stored datetimes, rows, salts that reproduce."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite

from registry.services.docpack import licence_key, pack, unpack
from registry.services.issuance import document_of
from registry.services.prepare import (
    PACKED_MEMBERS,
    ROW_FIELDS,
    _EnvelopeTemplate,
    build_document,
    new_credential_ids,
    prepare_records,
    sqlite_datetime,
)
from scripts.samples import business_licence_record, data_asset_record, make_uscc
from verifier._holder import PreparedCredential, assemble_holder_copy
from verifier._internal.disclosure import recompute_target_hash, salts_from_seed
from verifier._internal.keccak import keccak256
from verifier._internal.merkle import leaf_hash
from verifier._schema import schema_of
from verifier.issuance import new_credential_id, subject_hash, subject_salt_for, with_licence_metadata

ISSUER = {
    "id": "did:certledger:31337:issuer:1",
    "name": "广州市市场监督管理局",
    "unifiedSocialCreditCode": make_uscc(prefix="114401"),
}
KEY = bytes(range(32))  # the registry's subject-salt key (registry_secrets)
DEPLOYMENT = {"chainId": 31337, "anchorRegistry": "0x" + "ab" * 20}
#: what document_of reads the deployment from (the service's Deployment)
DEPLOYED = SimpleNamespace(chain_id=DEPLOYMENT["chainId"], anchor_registry=DEPLOYMENT["anchorRegistry"])


def test_credential_ids_are_uuidv7_urns_in_time_order():
    pattern = re.compile(schema_of("BusinessLicence")["properties"]["id"]["pattern"])
    ids = [new_credential_id() for _ in range(2000)]
    assert len(set(ids)) == 2000
    for i in ids:
        assert pattern.fullmatch(i)
        u = uuid.UUID(i[len("urn:uuid:") :])
        assert u.version == 7 and u.variant == uuid.RFC_4122
    millis = [int(i[9:17] + i[18:22], 16) for i in ids]
    assert millis == sorted(millis)
    now = int(datetime.now(UTC).timestamp() * 1000)
    assert now - 60_000 < millis[-1] <= now


@pytest.mark.parametrize(
    "dt",
    [
        datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
        datetime(2044, 12, 31, 23, 59, 59, 123456, tzinfo=UTC),
        datetime(1999, 1, 1, tzinfo=UTC) + timedelta(microseconds=7),
    ],
)
def test_sqlite_datetime_text_is_what_sqlalchemy_stores(dt):
    process = DateTime(timezone=True).dialect_impl(sqlite.dialect()).bind_processor(sqlite.dialect())
    assert sqlite_datetime(dt) == process(dt)


def _as_registry_fills(record: dict, type_name: str, cid: str, valid_from: str) -> dict:
    """``record`` with its id and the e-licence metadata the registry fills in (FORMAT.md §2.3)."""
    subject = with_licence_metadata(
        record["credentialSubject"], type_name, ISSUER["unifiedSocialCreditCode"], cid, valid_from
    )
    return {**record, "id": cid, "credentialSubject": subject}


@pytest.mark.parametrize("sqlite_", [False, True])
def test_prepared_rows_hash_the_stored_document_with_the_seeds_salts(sqlite_):
    records = [business_licence_record() for _ in range(20)]
    records[3]["validUntil"] = "2031-06-30T12:00:00.5Z"
    records[7]["credentialSubject"]["unifiedSocialCreditCode"] = "91440101MA5BANK000"  # wrong check character
    out = prepare_records(
        records, "BusinessLicence", "secp256k1", ISSUER, DEPLOYMENT, 100, sqlite_, subject_key=KEY
    )
    assert isinstance(out[7], list) and "unified social credit code" in " ".join(out[7])
    for k, prep in enumerate(out):
        if k == 7:
            continue
        row = dict(zip(ROW_FIELDS, prep[:-1]))
        assert row["packed_document"][0] == 2  # docpack version 2: JSON compressed by Zstandard
        # the rest is rebuilt, and the id is the row's id column
        assert tuple(json.loads(unpack(row["packed_document"]))) == PACKED_MEMBERS
        doc = document_of(
            SimpleNamespace(
                id=row["id"],
                packed_document=row["packed_document"],
                credential_type=1,
                status_index=row["status_index"],
            ),
            DEPLOYED,
        )
        assert row["status_index"] == 100 + k and doc["credentialStatus"][0]["statusListIndex"] == str(
            100 + k
        )
        # a row written before stop 37 holds the id in its packed document too: the same document
        old_json = orjson.dumps({"id": row["id"], **json.loads(unpack(row["packed_document"]))})
        old_row = SimpleNamespace(
            id=row["id"], packed_document=pack(old_json), credential_type=1, status_index=row["status_index"]
        )
        assert json.dumps(document_of(old_row, DEPLOYED)) == json.dumps(doc)
        # the record's subject, with the licence's national identifier and metadata filled in (§2.3)
        assert doc["credentialSubject"] == with_licence_metadata(
            records[k]["credentialSubject"],
            "BusinessLicence",
            ISSUER["unifiedSocialCreditCode"],
            doc["id"],
            doc["validFrom"],
        )
        assert row["licence_key"] == licence_key(doc["credentialSubject"]["licenceIdentifier"])
        salts = salts_from_seed(doc, row["salt_seed"])
        target = recompute_target_hash(doc, salts, {}, hashlib.sha256)
        assert "0x" + target.hex() == row["target_hash"]
        subject = bytes.fromhex(row["subject_hash"][2:])
        # the holder's keyed commitment (FORMAT.md §1), not a bare hash of its public credit code
        code = doc["credentialSubject"]["unifiedSocialCreditCode"]
        assert subject == subject_hash(code, subject_salt_for(KEY, code)) != keccak256(code.encode())
        assert prep[-1] == leaf_hash(target, subject)
        until = datetime(2031, 6, 30, 12, 0, 0, 500000, tzinfo=UTC) if k == 3 else None
        if until is not None:
            assert row["valid_until"] == (sqlite_datetime(until) if sqlite_ else until)
        copy_ = assemble_holder_copy(
            doc,
            PreparedCredential(salts, target, subject, 1, "secp256k1", subject_salt_for(KEY, code)),
            merkle_root=prep[-1],
            merkle_proof=[],
            batch_count=1,
            issuer_id=1,
            key_version=1,
            signature=b"\0" * 65,
            chain_id=31337,
            anchor_registry=DEPLOYMENT["anchorRegistry"],
            tx_hash="0x" + "00" * 32,
            block_number=1,
        )
        assert set(copy_["proof"]["salts"]) == set(salts) and "" in salts


def test_a_document_whose_shared_members_are_invalid_is_refused_whole():
    """The workers check the first document of a chunk whole and only the record's members of the
    others: an issuer name the schema refuses must still fail every record, not only the first."""
    bad_issuer = {**ISSUER, "name": ""}
    out = prepare_records(
        [business_licence_record() for _ in range(3)],
        "BusinessLicence",
        "secp256k1",
        bad_issuer,
        DEPLOYMENT,
        0,
        subject_key=KEY,
    )
    assert all(isinstance(o, list) and any("/issuer/name" in e for e in o) for o in out)
    doc = build_document(business_licence_record(), "BusinessLicence", ISSUER, 5, DEPLOYMENT)
    assert doc["id"].startswith("urn:uuid:")


def test_record_members_are_checked_in_every_document_of_a_chunk():
    records = [business_licence_record() for _ in range(6)]
    records[4]["validFrom"] = "yesterday"
    del records[5]["credentialSubject"]["address"]
    out = prepare_records(records, "BusinessLicence", "secp256k1", ISSUER, DEPLOYMENT, 0, subject_key=KEY)
    assert [isinstance(o, list) for o in out] == [False, False, False, False, True, True]
    assert any("/validFrom" in e for e in out[4])
    assert any("address" in e for e in out[5])


@pytest.mark.parametrize("type_name", ["BusinessLicence", "OperatingPermit", "DataAssetCertificate"])
def test_a_stored_document_reads_back_as_the_document_that_was_hashed(type_name):
    from registry.services.orgs import CREDENTIAL_TYPE_CODES

    make = {
        "BusinessLicence": business_licence_record,
        "DataAssetCertificate": data_asset_record,
        "OperatingPermit": _operating_permit_record,
    }[type_name]
    records = [make() for _ in range(3)]
    out = prepare_records(records, type_name, "secp256k1", ISSUER, DEPLOYMENT, 40, subject_key=KEY)
    for k, prep in enumerate(out):
        assert isinstance(prep, tuple), prep
        row = dict(zip(ROW_FIELDS, prep[:-1]))
        doc = document_of(
            SimpleNamespace(
                id=row["id"],
                packed_document=row["packed_document"],
                credential_type=CREDENTIAL_TYPE_CODES[type_name],
                status_index=row["status_index"],
            ),
            DEPLOYED,
        )
        expected = build_document(
            _as_registry_fills(records[k], type_name, row["id"], doc["validFrom"]),
            type_name,
            ISSUER,
            40 + k,
            DEPLOYMENT,
        )
        assert doc == expected and list(doc) == list(expected)
        salts = salts_from_seed(doc, row["salt_seed"])
        assert "0x" + recompute_target_hash(doc, salts, {}, hashlib.sha256).hex() == row["target_hash"]


def _operating_permit_record() -> dict:
    return {
        "validFrom": "2026-01-01T00:00:00Z",
        "validUntil": "2029-01-01T00:00:00Z",
        "credentialSubject": {
            "unifiedSocialCreditCode": make_uscc(),
            "permitNumber": "粤食经许2026-001",
            "permitType": "食品经营许可证",
            "enterpriseName": "广州市示例餐饮有限公司",
            "permittedActivities": ["预包装食品销售", "热食类食品制售"],
            "issuingDepartment": "广州市市场监督管理局",
            "address": "广州市越秀区北京路1号",
        },
    }


def test_ids_drawn_together_are_uuidv7_urns_of_one_millisecond():
    pattern = re.compile(schema_of("BusinessLicence")["properties"]["id"]["pattern"])
    before = int(datetime.now(UTC).timestamp() * 1000)
    ids = new_credential_ids(3000)
    after = int(datetime.now(UTC).timestamp() * 1000)
    assert len(ids) == 3000 and len(set(ids)) == 3000
    for i in ids:
        assert pattern.fullmatch(i)
        u = uuid.UUID(i[len("urn:uuid:") :])
        assert u.version == 7 and u.variant == uuid.RFC_4122
    millis = {int(i[9:17] + i[18:22], 16) for i in ids}
    assert len(millis) == 1 and before <= millis.pop() <= after
    # the 74 random bits are random: every hex digit outside the fixed ones varies
    assert all(len({i[k] for i in ids}) == 16 for k in (24, 25, 26, 29, 30, 31, 33, 44))
    assert {i[23] for i in ids} == {"7"}
    assert {i[28] for i in ids} == set("89ab")  # variant 10xx


@pytest.mark.parametrize("type_name", ["BusinessLicence", "OperatingPermit", "DataAssetCertificate"])
@pytest.mark.parametrize(
    "issuer_name", ["广州市市场监督管理局", 'A "quoted" 100% \\ name', "𠀀 astral 𝄞", "tab\there"]
)
def test_the_envelope_template_writes_what_canonical_json_of_the_built_document_is(type_name, issuer_name):
    from verifier._internal.canon import jcs_of_checked
    from verifier._internal.disclosure import envelope_of

    issuer = {**ISSUER, "name": issuer_name}
    values = [
        (
            "urn:uuid:0190a3c4-8a2b-7c3d-9e4f-0123456789ab",
            "2026-01-01T00:00:00Z",
            "2031-06-30T12:00:00.5Z",
            0,
        ),
        ("urn:uuid:x", "2026-01-01T08:00:00+08:00", None, 9),
        ('odd "id" \\ with\ncontrol \x07 and 中文 𝄞', "2026", "%s %d %%", 10),
        ("i", "f", "u", 2**40),
    ]
    for cid, valid_from, until, index in values:
        template = _EnvelopeTemplate(type_name, issuer, DEPLOYMENT, until is not None)
        assert template.template is not None
        record = {"id": cid, "validFrom": valid_from, "validUntil": until, "credentialSubject": {}}
        doc = build_document(record, type_name, issuer, index, DEPLOYMENT)
        assert template.jcs(cid, valid_from, until, index) == jcs_of_checked(envelope_of(doc))


def test_an_issuer_whose_name_holds_a_template_marker_gets_its_documents_built_in_full():
    issuer = {**ISSUER, "name": "name \x01N\x01 \x01I\x01"}
    assert _EnvelopeTemplate("BusinessLicence", issuer, DEPLOYMENT, True).template is None
    records = [business_licence_record() for _ in range(4)]
    out = prepare_records(records, "BusinessLicence", "secp256k1", issuer, DEPLOYMENT, 7, subject_key=KEY)
    for _k, prep in enumerate(out):
        assert isinstance(prep, tuple), prep
        row = dict(zip(ROW_FIELDS, prep[:-1]))
        doc = document_of(
            SimpleNamespace(
                id=row["id"],
                packed_document=row["packed_document"],
                credential_type=1,
                status_index=row["status_index"],
            ),
            DEPLOYED,
        )
        assert doc["issuer"]["name"] == issuer["name"]
        salts = salts_from_seed(doc, row["salt_seed"])
        assert "0x" + recompute_target_hash(doc, salts, {}, hashlib.sha256).hex() == row["target_hash"]


def test_records_of_one_chunk_may_differ_in_what_they_give():
    """Ids given or not, validFrom absent, validUntil absent or null (which every type refuses),
    before and after a document of the chunk passed whole: each accepted document is the one
    build_document makes of its record, and its targetHash recomputes from it."""
    records = [business_licence_record() for _ in range(9)]
    del records[0]["validUntil"]  # refused before any document passed
    records[1]["id"] = "urn:uuid:0190a3c4-8a2b-7c3d-9e4f-0123456789ab"
    del records[2]["validUntil"]  # and after
    records[3]["validUntil"] = None
    del records[4]["validFrom"]
    records[5]["id"] = "urn:uuid:0190a3c4-8a2b-7c3d-9e4f-0123456789ac"
    records[6]["validUntil"] = "yesterday"
    records[7]["validFrom"] = "2025-02-03T04:05:06.25Z"
    before = datetime.now(UTC).replace(microsecond=0)
    out = prepare_records(records, "BusinessLicence", "secp256k1", ISSUER, DEPLOYMENT, 500, subject_key=KEY)
    refused = {k: errors for k, errors in enumerate(out) if isinstance(errors, list)}
    assert set(refused) == {0, 2, 3, 6}
    assert all(
        "has neither validUntil nor credentialSubject.longTermValidity" in " ".join(refused[k])
        for k in (0, 2, 3)
    )
    assert any("/validUntil" in e for e in refused[6])
    for k, prep in enumerate(out):
        if k in refused:
            continue
        row = dict(zip(ROW_FIELDS, prep[:-1]))
        doc = document_of(
            SimpleNamespace(
                id=row["id"],
                packed_document=row["packed_document"],
                credential_type=1,
                status_index=row["status_index"],
            ),
            DEPLOYED,
        )
        expected = build_document(
            _as_registry_fills(
                {"validFrom": doc["validFrom"], **records[k]}, "BusinessLicence", row["id"], doc["validFrom"]
            ),
            "BusinessLicence",
            ISSUER,
            500 + k,
            DEPLOYMENT,
        )
        assert doc == expected and list(doc) == list(expected)
        salts = salts_from_seed(doc, row["salt_seed"])
        assert "0x" + recompute_target_hash(doc, salts, {}, hashlib.sha256).hex() == row["target_hash"]
    assert out[1][0] == records[1]["id"] and out[5][0] == records[5]["id"]
    assert len({out[k][0] for k in (4, 7, 8)}) == 3
    issued = datetime.fromisoformat(json.loads(unpack(out[4][5]))["validFrom"].replace("Z", "+00:00"))
    assert before <= issued <= datetime.now(UTC)


def test_a_template_that_disagrees_with_the_built_document_is_not_used(monkeypatch):
    """The workers compare the template's envelope with the first document's; a template that
    writes anything else (a fault that no issuer or type can cause today) is dropped."""
    monkeypatch.setattr(_EnvelopeTemplate, "jcs", lambda self, *values: b'{"wrong":true}')
    records = [business_licence_record() for _ in range(3)]
    out = prepare_records(records, "BusinessLicence", "secp256k1", ISSUER, DEPLOYMENT, 0, subject_key=KEY)
    for prep in out:
        row = dict(zip(ROW_FIELDS, prep[:-1]))
        doc = document_of(
            SimpleNamespace(
                id=row["id"],
                packed_document=row["packed_document"],
                credential_type=1,
                status_index=row["status_index"],
            ),
            DEPLOYED,
        )
        salts = salts_from_seed(doc, row["salt_seed"])
        assert "0x" + recompute_target_hash(doc, salts, {}, hashlib.sha256).hex() == row["target_hash"]


@pytest.mark.parametrize(
    "record,error",
    [
        ({"credentialSubject": {}}, None),
        (
            {
                "id": "urn:uuid:0190a3c4-8a2b-7c3d-9e4f-0123456789ab",
                "validFrom": "x",
                "validUntil": None,
                "credentialSubject": {"a": 1},
            },
            None,
        ),
        ([], "a record must be a JSON object, not list"),
        ("text", "a record must be a JSON object, not str"),
        ({"credentialSubject": {}, "proof": {}}, "unknown fields ['proof']"),
        ({"credentialSubject": []}, "credentialSubject must be a JSON object"),
        ({}, "credentialSubject must be a JSON object"),
        ({"credentialSubject": {}, "id": ""}, "id must be a 'urn:uuid:...' string"),
        ({"credentialSubject": {}, "id": "urn:uuid:0190A3C4-8A2B-7C3D-9E4F-0123456789AB"}, "id must be"),
        ({"credentialSubject": {}, "id": 7}, "id must be"),
        ({"credentialSubject": {}, "validFrom": 20260101}, "validFrom must be an RFC 3339 date-time string"),
        (
            {"credentialSubject": {}, "validUntil": ["2030"]},
            "validUntil must be an RFC 3339 date-time string",
        ),
    ],
)
def test_the_shape_of_each_uploaded_record_is_checked_before_anything_is_built(record, error):
    from registry.services.prepare import shape_errors

    errors = shape_errors(record)
    assert (errors == []) if error is None else any(error in e for e in errors), errors


@given(st.integers(min_value=1, max_value=30_000))
def test_an_upload_s_worker_tasks_cover_each_record_once_in_order_ending_in_small_pieces(n):
    """``chunk_spans``: the records' positions, each once and in upload order (the service writes
    the chunks in that order: of two records with one id, the first is accepted); ``CHUNK`` at most
    a task, and the last at most a quarter of it (written alone, after the workers are done)."""
    from registry.services.issuance import CHUNK, chunk_spans

    spans = chunk_spans(n)
    assert [i for a, b in spans for i in range(a, b)] == list(range(n))
    assert all(0 < b - a <= CHUNK for a, b in spans)
    assert spans[-1][1] - spans[-1][0] <= -(-CHUNK // 4)
    assert all(b - a == CHUNK for a, b in spans[:-4])  # (full chunks but for the last 1 to CHUNK records)
