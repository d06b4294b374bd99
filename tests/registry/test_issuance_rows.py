"""What the issuance workers hand the service: ids, stored datetimes, rows, salts that reproduce."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite

from registry.samples import business_licence_record, data_asset_record, make_uscc
from registry.services.issuance import (
    ROW_FIELDS,
    STORED_MEMBERS,
    build_document,
    document_of,
    new_credential_id,
    prepare_records,
    sqlite_datetime,
)
from verifier._holder import PreparedCredential, assemble_holder_copy
from verifier._internal.disclosure import recompute_target_hash, salts_from_seed
from verifier._internal.merkle import leaf_hash
from verifier._schema import schema_of

ISSUER = {"id": "did:certledger:31337:issuer:1", "name": "广州市市场监督管理局",
          "unifiedSocialCreditCode": make_uscc(prefix="114401")}
DEPLOYMENT = {"chainId": 31337, "anchorRegistry": "0x" + "ab" * 20}
#: what document_of reads the deployment from (the service's Deployment)
DEPLOYED = SimpleNamespace(chain_id=DEPLOYMENT["chainId"], anchor_registry=DEPLOYMENT["anchorRegistry"])


def test_credential_ids_are_uuidv7_urns_in_time_order():
    pattern = re.compile(schema_of("BusinessLicence")["properties"]["id"]["pattern"])
    ids = [new_credential_id() for _ in range(2000)]
    assert len(set(ids)) == 2000
    for i in ids:
        assert pattern.fullmatch(i)
        u = uuid.UUID(i[len("urn:uuid:"):])
        assert u.version == 7 and u.variant == uuid.RFC_4122
    millis = [int(i[9:17] + i[18:22], 16) for i in ids]
    assert millis == sorted(millis)
    now = int(datetime.now(timezone.utc).timestamp() * 1000)
    assert now - 60_000 < millis[-1] <= now


@pytest.mark.parametrize("dt", [datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc),
                                datetime(2044, 12, 31, 23, 59, 59, 123456, tzinfo=timezone.utc),
                                datetime(1999, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=7)])
def test_sqlite_datetime_text_is_what_sqlalchemy_stores(dt):
    process = DateTime(timezone=True).dialect_impl(sqlite.dialect()).bind_processor(sqlite.dialect())
    assert sqlite_datetime(dt) == process(dt)


@pytest.mark.parametrize("sqlite_", [False, True])
def test_prepared_rows_hash_the_stored_document_with_the_seeds_salts(sqlite_):
    records = [business_licence_record() for _ in range(20)]
    records[3]["validUntil"] = "2031-06-30T12:00:00.5Z"
    records[7]["credentialSubject"]["unifiedSocialCreditCode"] = "91440101MA5BANK000"  # wrong check character
    out = prepare_records(records, "BusinessLicence", "secp256k1", ISSUER, DEPLOYMENT, 100, sqlite_)
    assert isinstance(out[7], list) and "unified social credit code" in " ".join(out[7])
    for k, prep in enumerate(out):
        if k == 7:
            continue
        row = dict(zip(ROW_FIELDS, prep[:-1]))
        assert tuple(json.loads(row["document"])) == STORED_MEMBERS  # the rest is rebuilt on reading
        doc = document_of(SimpleNamespace(document=row["document"], credential_type=1,
                                          status_index=row["status_index"]), DEPLOYED)
        assert row["status_index"] == 100 + k and doc["credentialStatus"][0]["statusListIndex"] == str(100 + k)
        assert doc["credentialSubject"] == records[k]["credentialSubject"]
        salts = salts_from_seed(doc, row["salt_seed"])
        target = recompute_target_hash(doc, salts, {}, hashlib.sha256)
        assert "0x" + target.hex() == row["target_hash"]
        subject = bytes.fromhex(row["subject_hash"][2:])
        assert prep[-1] == leaf_hash(target, subject)
        until = datetime(2031, 6, 30, 12, 0, 0, 500000, tzinfo=timezone.utc) if k == 3 else None
        if until is not None:
            assert row["valid_until"] == (sqlite_datetime(until) if sqlite_ else until)
        copy_ = assemble_holder_copy(doc, PreparedCredential(salts, target, subject, 1, "secp256k1"),
                                     merkle_root=prep[-1], merkle_proof=[], batch_count=1, issuer_id=1,
                                     key_version=1, signature=b"\0" * 65, chain_id=31337,
                                     anchor_registry=DEPLOYMENT["anchorRegistry"], tx_hash="0x" + "00" * 32,
                                     block_number=1)
        assert set(copy_["proof"]["salts"]) == set(salts) and "" in salts


def test_a_document_whose_shared_members_are_invalid_is_refused_whole():
    """The workers check the first document of a chunk whole and only the record's members of the
    others: an issuer name the schema refuses must still fail every record, not only the first."""
    bad_issuer = {**ISSUER, "name": ""}
    out = prepare_records([business_licence_record() for _ in range(3)], "BusinessLicence", "secp256k1",
                          bad_issuer, DEPLOYMENT, 0)
    assert all(isinstance(o, list) and any("/issuer/name" in e for e in o) for o in out)
    doc = build_document(business_licence_record(), "BusinessLicence", ISSUER, 5, DEPLOYMENT)
    assert doc["id"].startswith("urn:uuid:")


def test_record_members_are_checked_in_every_document_of_a_chunk():
    records = [business_licence_record() for _ in range(6)]
    records[4]["validFrom"] = "yesterday"
    del records[5]["credentialSubject"]["address"]
    out = prepare_records(records, "BusinessLicence", "secp256k1", ISSUER, DEPLOYMENT, 0)
    assert [isinstance(o, list) for o in out] == [False, False, False, False, True, True]
    assert any("/validFrom" in e for e in out[4])
    assert any("address" in e for e in out[5])


@pytest.mark.parametrize("type_name", ["BusinessLicence", "OperatingPermit", "DataAssetCertificate"])
def test_a_stored_document_reads_back_as_the_document_that_was_hashed(type_name):
    from registry.services.orgs import CREDENTIAL_TYPE_CODES

    make = {"BusinessLicence": business_licence_record, "DataAssetCertificate": data_asset_record,
            "OperatingPermit": _operating_permit_record}[type_name]
    records = [make() for _ in range(3)]
    out = prepare_records(records, type_name, "secp256k1", ISSUER, DEPLOYMENT, 40)
    for k, prep in enumerate(out):
        assert isinstance(prep, tuple), prep
        row = dict(zip(ROW_FIELDS, prep[:-1]))
        doc = document_of(SimpleNamespace(document=row["document"], credential_type=CREDENTIAL_TYPE_CODES[type_name],
                                          status_index=row["status_index"]), DEPLOYED)
        expected = build_document({"id": row["id"], **records[k]}, type_name, ISSUER, 40 + k, DEPLOYMENT)
        assert doc == expected and list(doc) == list(expected)
        salts = salts_from_seed(doc, row["salt_seed"])
        assert "0x" + recompute_target_hash(doc, salts, {}, hashlib.sha256).hex() == row["target_hash"]


def _operating_permit_record() -> dict:
    return {"validFrom": "2026-01-01T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z", "credentialSubject": {
        "unifiedSocialCreditCode": make_uscc(), "permitNumber": "粤食经许2026-001", "permitType": "食品经营许可证",
        "enterpriseName": "广州市示例餐饮有限公司", "permittedActivities": ["预包装食品销售", "热食类食品制售"],
        "issuingDepartment": "广州市市场监督管理局", "address": "广州市越秀区北京路1号"}}


def test_a_row_written_before_compact_storage_reads_as_stored():
    """Rows written before documents were stored without their derivable members hold the whole
    document: it is returned unchanged (even if the deployment now says otherwise)."""
    doc = build_document(business_licence_record(), "BusinessLicence", ISSUER, 9, DEPLOYMENT)
    other = SimpleNamespace(chain_id=1, anchor_registry="0x" + "cd" * 20)
    row = SimpleNamespace(document=json.dumps(doc, ensure_ascii=False), credential_type=1, status_index=9)
    assert document_of(row, other) == doc
