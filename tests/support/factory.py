"""Issue real credential batches offline and build signed trust bundles — no chain needed.

Everything a test needs: random issuer keys in both suites, sample documents of every type,
batches (salted, hashed, Merkle tree, issuer signature, holder copies) and the trust bundle that
vouches for them. Deterministic enough for assertions, random where the format demands (salts).
"""

from __future__ import annotations

import random
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from verifier import (
    CREDENTIAL_TYPES,
    AnchorRecord,
    IssuerKeyRecord,
    IssuerRecord,
    StandardMerkleTree,
    TrustBundle,
    assemble_holder_copy,
    build_trust_bundle,
    eth_address,
    prepare_credential,
    sign_batch,
    sign_trust_bundle,
    sm2_public_key,
)
from verifier.issuance import with_licence_metadata
from verifier.uscc import ALPHABET, check_character

CHAIN_ID = 31337
ANCHOR_REGISTRY = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
CONTRACTS = {
    "issuerRegistry": "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512",
    "anchorRegistry": ANCHOR_REGISTRY,
    "dataFlowLedger": "0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0",
}
T_ACTIVE = 1_735_689_600  # 2025-01-01: issuers registered
T_ANCHOR = 1_767_571_200  # 2026-01-05: batches anchored
T_BUNDLE = 1_768_000_000  # 2026-01-09: bundle exported
AT = "2026-06-01T00:00:00Z"  # verification time used by tests
VALID_FROM = "2026-01-01T00:00:00Z"
VALID_UNTIL = "2031-01-01T00:00:00Z"
BANK_USCC = "91440101MA5BANK00" + check_character("91440101MA5BANK00")
SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123


def make_uscc(rng: random.Random) -> str:
    """A random, valid 18-character unified social credit code (a Guangzhou enterprise)."""
    body = (
        "914401"
        + "".join(rng.choice("0123456789") for _ in range(2))
        + "".join(rng.choice(ALPHABET) for _ in range(9))
    )
    return body + check_character(body)


def new_key(suite: str) -> tuple[bytes, str, bytes]:
    """(private key, chain account, SM2 public key or b"")."""
    account_key = secrets.token_bytes(32)
    if suite == "sm2-sm3":
        sm2_key = (secrets.randbelow(SM2_N - 2) + 1).to_bytes(32, "big")
        return sm2_key, eth_address(account_key), sm2_public_key(sm2_key)
    return account_key, eth_address(account_key), b""


@dataclass
class Issuer:
    id: int
    name: str
    uscc: str
    suite: str
    types: set[int]
    key: bytes
    account: str
    sm2_public: bytes
    active_from: int = T_ACTIVE
    active_until: int = 0
    status: str = "active"
    key_version: int = 1
    keys: dict[int, IssuerKeyRecord] = field(default_factory=dict)

    def record(self) -> IssuerRecord:
        return IssuerRecord(
            self.id,
            self.name,
            self.uscc,
            self.suite,
            self.status,
            self.active_from,
            self.active_until,
            frozenset(self.types),
            dict(self.keys),
        )


def sample_subject(type_name: str, rng: random.Random, uscc: str | None = None) -> dict[str, Any]:
    uscc = uscc or make_uscc(rng)
    n = rng.randrange(10**6)
    if type_name == "BusinessLicence":
        return {
            "unifiedSocialCreditCode": uscc,
            "licenceNumber": f"440101{n:09d}",
            "enterpriseName": f"广州市穗云数据科技有限公司{n}",
            "enterpriseType": "有限责任公司（自然人投资或控股）",
            "legalRepresentative": "陈志明",
            "registeredCapital": {"amount": f"{rng.randrange(1, 10**7)}.00", "currency": "CNY"},
            "dateOfEstablishment": "2015-06-18",
            "businessScope": "软件开发；信息技术咨询服务；数据处理和存储支持服务",
            "address": "广州市天河区珠江新城华夏路10号",
            "registrationAuthority": "广州市天河区市场监督管理局",
        }
    if type_name == "OperatingPermit":
        return {
            "unifiedSocialCreditCode": uscc,
            "permitNumber": f"粤B2-2026{n:06d}",
            "permitType": "增值电信业务经营许可证",
            "enterpriseName": f"广州市穗云数据科技有限公司{n}",
            "permittedActivities": ["互联网数据中心业务", "在线数据处理与交易处理业务"],
            "issuingDepartment": "广东省通信管理局",
            "address": "广州市天河区珠江新城华夏路10号",
        }
    return {
        "unifiedSocialCreditCode": uscc,
        "assetId": f"GDDA-2026-{n:06d}",
        "assetName": "工业园区用电负荷数据（2025年度）",
        "holderName": f"广州市穗云数据科技有限公司{n}",
        "dataProvider": "广东电网有限责任公司广州供电局",
        "dataCategory": "电力消费数据",
        "classificationLevel": "important",
        "periodCovered": {"from": "2025-01-01", "to": "2025-12-31"},
        "recordCount": 8_760_000,
        "datasetDigest": "0x" + secrets.token_hex(32),
        "digestAlgorithm": "sha256",
        "valuation": {"amount": "12500000.00", "currency": "CNY", "method": "收益法"},
        "authorisedUses": [
            {
                "relyingParty": {"name": "中国工商银行广州分行", "unifiedSocialCreditCode": BANK_USCC},
                "purpose": "loan assessment",
                "until": "2027-01-01T00:00:00Z",
            },
            {
                "relyingParty": {"name": "广州数据交易所", "unifiedSocialCreditCode": make_uscc(rng)},
                "purpose": "listing",
                "until": "2026-12-31T00:00:00Z",
            },
        ],
    }


@dataclass
class World:
    """A chain's worth of trust: issuers, anchored batches, statuses, and the operator key."""

    chain_id: int = CHAIN_ID
    anchor_registry: str = ANCHOR_REGISTRY
    operator_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    issuers: dict[int, Issuer] = field(default_factory=dict)
    anchors: list[AnchorRecord] = field(default_factory=list)
    revoked: dict[int, dict[str, Any]] = field(default_factory=dict)
    suspended: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_index: int = 0
    block: int = 100
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    @property
    def operator(self) -> str:
        return eth_address(self.operator_key)

    def add_issuer(
        self,
        suite: str = "secp256k1",
        types: set[int] | None = None,
        name: str = "广东省市场监督管理局",
        **kw: Any,
    ) -> Issuer:
        key, account, sm2 = new_key(suite)
        issuer = Issuer(
            len(self.issuers) + 1,
            name,
            make_uscc(self.rng),
            suite,
            types or {1, 2, 3},
            key,
            account,
            sm2,
            **kw,
        )
        issuer.keys[1] = IssuerKeyRecord(1, account, T_ACTIVE, 0, sm2)
        self.issuers[issuer.id] = issuer
        return issuer

    def document(
        self,
        issuer: Issuer,
        type_name: str = "BusinessLicence",
        subject: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        index = self.next_index
        self.next_index += 1
        base = f"urn:certledger:{self.chain_id}:{self.anchor_registry}:status:"
        cid = f"urn:uuid:{uuid.UUID(int=self.rng.getrandbits(128), version=4)}"
        subject = with_licence_metadata(
            subject or sample_subject(type_name, self.rng), type_name, issuer.uscc, cid, VALID_FROM
        )
        doc = {
            "@context": ["https://www.w3.org/ns/credentials/v2", "https://certledger.example/ns/v1"],
            "id": cid,
            "type": ["VerifiableCredential", type_name],
            "issuer": {
                "id": f"did:certledger:{self.chain_id}:issuer:{issuer.id}",
                "name": issuer.name,
                "unifiedSocialCreditCode": issuer.uscc,
            },
            "validFrom": VALID_FROM,
            "validUntil": VALID_UNTIL,
            "credentialSubject": dict(subject),
            "credentialSchema": {
                "id": f"https://certledger.example/schemas/v1/{type_name}.json",
                "type": "JsonSchema",
            },
            "credentialStatus": [
                {
                    "id": f"{base}{p}#{index}",
                    "type": "BitstringStatusListEntry",
                    "statusPurpose": p,
                    "statusListIndex": str(index),
                    "statusListCredential": base + p,
                }
                for p in ("revocation", "suspension")
            ],
        }
        doc.update(overrides)
        return doc

    def issue(
        self,
        issuer: Issuer,
        docs: list[dict[str, Any]],
        *,
        anchored_at: int = T_ANCHOR,
        anchor: bool = True,
        sign_key: bytes | None = None,
        validate: bool = True,
    ) -> list[dict[str, Any]]:
        """Issue ``docs`` as one batch: prepare, tree, sign, anchor (in this world), holder copies.
        ``validate=False`` issues documents the schema refuses (an issuer that skipped its checks)."""
        type_name = docs[0]["type"][1]
        code = CREDENTIAL_TYPES[type_name]
        prepared = [prepare_credential(d, suite=issuer.suite, validate=validate) for d in docs]
        tree = StandardMerkleTree.of([(p.target_hash, p.subject_hash) for p in prepared])
        signature = sign_batch(
            issuer.suite,
            sign_key or issuer.key,
            tree.root,
            code,
            len(docs),
            chain_id=self.chain_id,
            anchor_registry=self.anchor_registry,
        )
        self.block += 1
        if anchor:
            self.anchors.append(
                AnchorRecord(
                    tree.root, issuer.id, issuer.key_version, code, len(docs), self.block, anchored_at, 1
                )
            )
        tx = "0x" + secrets.token_hex(32)
        return [
            assemble_holder_copy(
                d,
                p,
                merkle_root=tree.root,
                merkle_proof=tree.proof(i),
                batch_count=len(docs),
                issuer_id=issuer.id,
                key_version=issuer.key_version,
                signature=signature,
                chain_id=self.chain_id,
                anchor_registry=self.anchor_registry,
                tx_hash=tx,
                block_number=self.block,
            )
            for i, (d, p) in enumerate(zip(docs, prepared))
        ]

    def bundle(self, *, block_timestamp: int = T_BUNDLE, signed: bool = True) -> dict[str, Any]:
        data = build_trust_bundle(
            chain_id=self.chain_id,
            contracts={**CONTRACTS, "anchorRegistry": self.anchor_registry},
            block={
                "number": self.block + 5,
                "hash": "0x" + "ab" * 32,
                "timestamp": block_timestamp,
                "stateRoot": "0x" + "cd" * 32,
            },
            issuers=[i.record() for i in self.issuers.values()],
            anchors=self.anchors,
            revoked=self.revoked,
            suspended=self.suspended,
        )
        return sign_trust_bundle(data, self.operator_key) if signed else data

    def trust(self, **kw: Any) -> TrustBundle:
        return TrustBundle.load(self.bundle(**kw), operators=[self.operator])


def status_index(holder_copy: dict[str, Any]) -> int:
    return int(holder_copy["credentialStatus"][0]["statusListIndex"])
