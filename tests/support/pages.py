"""What the verify page's tests share: the dataset a certificate covers, and where screenshots go."""

from __future__ import annotations

import hashlib
from typing import Any

from tests.support.services import ROOT

ARTIFACTS = ROOT / "test-artifacts" / "verify-page"

DATASET = (
    b"timestamp,meter,kwh\n"
    + b"".join(f"2025-01-01T{h:02d}:00Z,4406-0001,{h * 7 % 13}.25\n".encode() for h in range(24)) * 50
)
DIGEST = "0x" + hashlib.sha256(DATASET).hexdigest()


def one_byte_off(data: bytes) -> bytes:
    """The dataset with one byte changed (same length)."""
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


async def data_authority(service: Any) -> str:
    """A new data authority issuing data asset certificates on ``service``: its API key."""
    from scripts.samples import make_uscc

    _, key = await service.create_org(
        name="广东省政务服务和数据管理局",
        identifier=make_uscc(prefix="114400"),
        roles=["issuer"],
        types=["DataAssetCertificate"],
    )
    return key


async def anchored_copy(service: Any, key: str, credential_id: str) -> dict:
    """The holder copy of an anchored credential, read with its issuer's ``key``."""
    r = await service.client.get(f"/v1/credentials/{credential_id}", headers=service.h(key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "anchored", body
    return body["credential"]


async def holder_bound_certificate(service: Any) -> tuple[dict, Any, str]:
    """A data asset certificate issued through ``service`` to a fresh holder key (FORMAT.md §13):
    (its holder copy, the HolderKey, the relying bank's credit code it authorises)."""
    from scripts.samples import data_asset_record, make_uscc
    from verifier import HolderKey

    s = service
    authority = await data_authority(s)
    key = HolderKey.generate("secp256k1")
    holder, bank = make_uscc(prefix="914406"), make_uscc(prefix="914401")
    record = data_asset_record(holder, bank, DIGEST)
    record["credentialSubject"] = {"id": key.holder_id, **record["credentialSubject"]}
    r = await s.client.post(
        "/v1/credentials", headers=s.h(authority), json={"type": "DataAssetCertificate", "record": record}
    )
    assert r.status_code == 202, r.text
    cid = r.json()["id"]
    await s.drain()
    return await anchored_copy(s, authority, cid), key, bank
