"""Stored documents compressed with a preset dictionary (registry/services/docpack.py): every stored
document reads back byte for byte, in at most half its bytes, in the current version (2, Zstandard)
and in version 1 (deflate: rows written before stop 34), and version 2 as a level-3 writer wrote it
(before stop 37); what is not one is refused."""

from __future__ import annotations

import os
import random

import orjson
import pytest

from registry.services.docpack import _pack_v1, pack, unpack
from registry.services.prepare import prepare_records
from scripts.samples import business_licence_record, data_asset_record, make_uscc, natural_person_asset_record
from tests.support.factory import sample_subject

ISSUER = {
    "id": "did:certledger:31337:issuer:1",
    "name": "广州市市场监督管理局",
    "unifiedSocialCreditCode": make_uscc(prefix="114401"),
}
DEPLOYMENT = {"chainId": 31337, "anchorRegistry": "0x5fbdb2315678afecb367f032d93f642f64180aa3"}
RNG = random.Random(7)
VARIED = business_licence_record(
    name="深圳市前海星河数字科技发展有限公司",
    address="深圳市南山区粤海街道科技园社区科苑路8号讯美科技广场3号楼1201",
    businessScope="一般经营项目是：计算机软硬件技术开发、技术咨询、技术服务；数据处理。",
    legalRepresentative="欧阳晓明",
)


@pytest.mark.parametrize(
    ("type_name", "record"),
    [
        ("BusinessLicence", business_licence_record()),
        ("BusinessLicence", VARIED),
        (
            "OperatingPermit",
            {**business_licence_record(), "credentialSubject": sample_subject("OperatingPermit", RNG)},
        ),
        ("DataAssetCertificate", data_asset_record()),
        ("DataAssetCertificate", natural_person_asset_record()),
    ],
)
def test_every_stored_document_reads_back_in_at_most_half_its_bytes(type_name, record):
    (row,) = prepare_records(
        [record], type_name, "secp256k1", ISSUER, DEPLOYMENT, 0, subject_key=os.urandom(32)
    )
    assert isinstance(row, tuple), row
    packed = row[5]
    assert packed[0] == 2
    stored = unpack(packed)
    assert "id" not in orjson.loads(stored)  # (the row's id column)
    assert pack(stored) == packed
    assert len(packed) * 2 <= len(stored), (len(packed), len(stored))
    assert unpack(_pack_v1(stored)) == stored


@pytest.mark.parametrize("text", [b"", b"{}", '{"名称":"\\u0000\U0001f600"}'.encode(), os.urandom(3000)])
@pytest.mark.parametrize("packer", [pack, _pack_v1])
def test_any_bytes_round_trip(text, packer):
    assert unpack(packer(text)) == text


def test_a_row_written_as_version_1_reads_back():
    """Bytes a stop-33 registry wrote (deflate with the dictionary), as they are in its database."""
    v1 = bytes.fromhex("01ab462be14021f87442eff3e51b40bedab9ffe9f67920bf61f55e2d00")
    assert unpack(v1).decode() == '{"id":"urn:uuid:0","名称":"广州市市场监督管理局"}'


@pytest.mark.parametrize(
    ("written", "v2", "text"),
    [
        (
            "by a stop-36 registry: Zstandard level 3, whose literals are Huffman-coded",
            "0228b52ffd20917501008830222c22e5908de7a7b0b9bfe5b79e7d7d090043e4002508e0233b282060a0243f107f"
            "81afb1ce9a15cb413210",
            '{"id":"urn:uuid:0","名称":"广州市市场监督管理局",'
            '"credentialSubject":{"enterpriseName":"广州市市场监督管理局有限公司"}}',
        ),
        (
            "by a stop-37 to stop-40 registry: level −1",
            "0228b52ffd20b5f50100f07be5b9bfe5b79ee5b8827de7a4bae4be8be7a791e68a804e616d65327d7d0a00b27a74"
            "0c59b984027364067ebac122595fec53d74bce404d1eb070892b",
            '{"issuer":{"name":"广州市市场监督管理局"},'
            '"credentialSubject":{"enterpriseName":"广州市示例科技有限公司","enterpriseName2":"广州市示例科技有限公司"}}',
        ),
    ],
)
def test_a_version_2_row_written_at_another_level_reads_back(written, v2, text):
    """Stop 41 writes level −3: a version's frames read alike whatever level wrote them."""
    assert unpack(bytes.fromhex(v2)).decode() == text, written
    assert pack(text.encode()) != bytes.fromhex(v2)  # (written today at another level)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"", "version byte missing"),
        (b"\x03" + pack(b"{}")[1:], "version byte 03"),
        (b'{"id":1}', "version byte 7b"),  # a document stored as text before b0004
        (pack(b'{"a":"' + b"x" * 200 + b'"}')[:-3], "cut short"),
        (pack(b"{}") + b"\x00", "bytes after its end"),
        (b"\x02", "cut short"),
        (_pack_v1(b'{"a":"' + b"x" * 200 + b'"}')[:-3], "cut short"),
        (_pack_v1(b"{}") + b"\x00", "bytes after its end"),
    ],
)
def test_what_is_not_a_stored_document_is_refused(value, message):
    with pytest.raises(ValueError, match=message):
        unpack(value)
