#!/usr/bin/env python3
"""Produce tests/assets/format_vectors.json: the worked example of docs/FORMAT.md.

    .venv/bin/python tests/assets/make_format_vectors.py > tests/assets/format_vectors.json

Everything is deterministic: salts are sha256("certledger/vector/salt" ‖ path) instead of random,
keys are fixed, secp256k1 signatures are RFC 6979 deterministic. (SM2 signatures are randomised,
so the SM2 vector gives a key, a digest and one valid signature to check, not to reproduce.)
tests/verifier/test_format_vectors.py recomputes every value with the verifier and compares.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from verifier import (
    StandardMerkleTree,
    batch_digest,
    eth_address,
    leaf_hash,
    sign_batch,
    sm2_public_key,
    subject_hash,
    subject_salt_for,
)
from verifier._bundle import bundle_message
from verifier._internal.canon import jcs
from verifier._internal.disclosure import (
    SUITE_HASHES,
    leaf_digest,
    leaves_of,
    reference_target_hash,
)
from verifier._internal.keccak import keccak256
from verifier._internal.statuslist import encode_status_list
from verifier.licence_id import make_licence_identifier
from verifier.uscc import check_character

CHAIN_ID = 31337
REGISTRY = "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512"
ISSUER_KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
SM2_KEY = hashlib.sha256(b"certledger/vector/sm2-key").digest()

ISSUER_USCC = "11440106MB2C79281" + check_character("11440106MB2C79281")

DOCUMENT = {
    "@context": ["https://www.w3.org/ns/credentials/v2", "https://certledger.example/ns/v1"],
    "id": "urn:uuid:3f1e2d4c-5b6a-4978-8a1b-2c3d4e5f6a7b",
    "type": ["VerifiableCredential", "BusinessLicence"],
    "issuer": {
        "id": f"did:certledger:{CHAIN_ID}:issuer:1",
        "name": "广州市天河区市场监督管理局",
        "unifiedSocialCreditCode": ISSUER_USCC,
    },
    "validFrom": "2026-01-01T00:00:00Z",
    "validUntil": "2031-01-01T00:00:00Z",
    "credentialSubject": {
        "unifiedSocialCreditCode": "91440101MA5BANK009",
        # the national identifier (§2.4): placeholder type code, the issuer's credit code, a serial
        "licenceIdentifier": make_licence_identifier(
            "CERTLEDGERBL001", ISSUER_USCC, "3F1E2D4C5B6A49788A1B2C3D4E5F6A7B"
        ),
        "licenceTypeCode": "CERTLEDGERBL001",
        "holderCodeType": "uscc",
        "issueDate": "2026-01-01",
        "licenceNumber": "440106000123456",
        "enterpriseName": "广州市穗云数据科技有限公司",
        "enterpriseType": "有限责任公司（自然人投资或控股）",
        "legalRepresentative": "陈志明",
        "registeredCapital": {"amount": "1000000.00", "currency": "CNY"},
        "dateOfEstablishment": "2015-06-18",
        "businessScope": "软件开发；信息技术咨询服务；数据处理和存储支持服务",
        "address": "广州市天河区珠江新城华夏路10号",
        "registrationAuthority": "广州市天河区市场监督管理局",
    },
    "credentialSchema": {
        "id": "https://certledger.example/schemas/v1/BusinessLicence.json",
        "type": "JsonSchema",
    },
    "credentialStatus": [
        {
            "id": f"urn:certledger:{CHAIN_ID}:{REGISTRY}:status:{p}#17",
            "type": "BitstringStatusListEntry",
            "statusPurpose": p,
            "statusListIndex": "17",
            "statusListCredential": f"urn:certledger:{CHAIN_ID}:{REGISTRY}:status:{p}",
        }
        for p in ("revocation", "suspension")
    ],
}


SUBJECT_KEY = hashlib.sha256(b"certledger/vector/subject-salt-key").digest()


def vector_salt(path: str) -> bytes:
    return hashlib.sha256(b"certledger/vector/salt" + path.encode("utf-8")).digest()


def jcs_text(value: object) -> str:
    import rfc8785

    return rfc8785.dumps(value).decode("utf-8")


def hx(b: bytes) -> str:
    return "0x" + b.hex()


#: §2.4: a data asset certificate held by a natural person, with the provenance members of §2.1.
PERSON_DOCUMENT = {
    **{k: v for k, v in DOCUMENT.items() if k not in ("type", "credentialSubject", "credentialSchema")},
    "id": "urn:uuid:7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "type": ["VerifiableCredential", "DataAssetCertificate"],
    "issuer": {**DOCUMENT["issuer"], "name": "广东省人力资源和社会保障厅"},
    "credentialSubject": {
        "holderCodeType": "citizenId",
        "citizenIdNumber": "11010519491231002X",
        "assetId": "GD-DA-2026-000777",
        "assetName": "个人社会保险缴费记录（2021–2025年）",
        "holderName": "张三",
        "dataProvider": "广东省社会保险基金管理局",
        "dataCategory": "social-insurance-payments",
        "classificationLevel": "general",
        "periodCovered": {"from": "2021-01-01", "to": "2025-12-31"},
        "recordCount": 60,
        "datasetDigest": "0x" + hashlib.sha256(b"certledger/vector/dataset").hexdigest(),
        "digestAlgorithm": "sha256",
        "valuation": {
            "amount": "120000.00",
            "currency": "CNY",
            "method": "income approach",
            "appraiser": "广东某资产评估有限公司",
            "valuationDate": "2025-12-31",
        },
        "authorisedUses": [],
        "rightsType": ["holding"],
        "authorisation": {
            "digest": "0x" + hashlib.sha256(b"certledger/vector/authorisation").hexdigest(),
            "digestAlgorithm": "sha256",
            "date": "2025-12-01",
        },
        "complianceReport": {
            "digest": "0x" + hashlib.sha256(b"certledger/vector/compliance").hexdigest(),
            "digestAlgorithm": "sha256",
        },
    },
    "credentialSchema": {
        "id": "https://certledger.example/schemas/v1/DataAssetCertificate.json",
        "type": "JsonSchema",
    },
}


def natural_person() -> dict:
    """§2.4's worked example (secp256k1): the citizen ID leaf's digest and the subjectHash it gives."""
    h = SUITE_HASHES["secp256k1"]
    digests = [
        (path, leaf_digest(h, vector_salt(path), path, value)) for path, value in leaves_of(PERSON_DOCUMENT)
    ]
    citizen = dict(digests)["/credentialSubject/citizenIdNumber"]
    return {
        "document": PERSON_DOCUMENT,
        "salts": {path: hx(vector_salt(path)) for path, _ in digests},
        "citizenIdDigest": hx(citizen),
        "subjectHash": hx(keccak256(citizen)),
        "targetHash": hx(reference_target_hash(h, digests)),
    }


def build() -> dict:
    out: dict = {"document": DOCUMENT, "suites": {}}
    for suite in ("secp256k1", "sm2-sm3"):
        h = SUITE_HASHES[suite]
        leaves = []
        for path, value in leaves_of(DOCUMENT):
            salt = vector_salt(path)
            p = path.encode()
            leaves.append(
                {
                    "path": path,
                    "jcs": jcs(value).decode("utf-8"),
                    "salt": hx(salt),
                    "preimage": hx(salt + len(p).to_bytes(4, "big") + p + jcs(value)),
                    "digest": hx(leaf_digest(h, salt, path, value)),
                }
            )
        target = reference_target_hash(h, [(x["path"], bytes.fromhex(x["digest"][2:])) for x in leaves])
        # §3.3: one entry uint32_be(len(path)) ‖ path ‖ digest per leaf, sorted bytewise, concatenated.
        entries = sorted(
            len(x["path"].encode()).to_bytes(4, "big") + x["path"].encode() + bytes.fromhex(x["digest"][2:])
            for x in leaves
        )
        out["suites"][suite] = {
            "leaves": leaves,
            "targetHashOrder": [
                x["path"] for x in sorted(leaves, key=lambda x: (len(x["path"].encode()), x["path"].encode()))
            ],
            "targetHashPreimage": hx(b"".join(entries)),
            "targetHash": hx(target),
        }
    # §1: an enterprise's subjectHash = keccak256(subjectSalt ‖ utf8(code)); the registry derives
    # subjectSalt from its key (informative: any 32 secret bytes the issuer keeps per holder will do)
    code = DOCUMENT["credentialSubject"]["unifiedSocialCreditCode"]
    subject_salt = subject_salt_for(SUBJECT_KEY, code)
    subject = subject_hash(code, subject_salt)
    out["subjectSaltKey"] = hx(SUBJECT_KEY)
    out["subjectSalt"] = hx(subject_salt)
    out["subjectHashPreimage"] = hx(subject_salt + code.encode("utf-8"))
    out["subjectHash"] = hx(subject)
    target = bytes.fromhex(out["suites"]["secp256k1"]["targetHash"][2:])
    out["leaf"] = hx(leaf_hash(target, subject))
    # A batch of three: this credential and two others whose (targetHash, subjectHash) are fixed words.
    pairs = [(target, subject)] + [
        (hashlib.sha256(f"t{i}".encode()).digest(), hashlib.sha256(f"s{i}".encode()).digest()) for i in (1, 2)
    ]
    tree = StandardMerkleTree.of(pairs)
    out["batch"] = {
        "pairs": [[hx(t), hx(s)] for t, s in pairs],
        "root": hx(tree.root),
        "proof0": [hx(x) for x in tree.proof(0)],
        "tree": [hx(x) for x in tree.tree],
    }
    digest = batch_digest(tree.root, 1, 3, chain_id=CHAIN_ID, anchor_registry=REGISTRY)
    out["eip712"] = {
        "chainId": CHAIN_ID,
        "anchorRegistry": REGISTRY,
        "root": hx(tree.root),
        "credentialType": 1,
        "count": 3,
        "digest": hx(digest),
        "secp256k1": {
            "privateKey": hx(ISSUER_KEY),
            "account": eth_address(ISSUER_KEY),
            "signature": hx(
                sign_batch(
                    "secp256k1", ISSUER_KEY, tree.root, 1, 3, chain_id=CHAIN_ID, anchor_registry=REGISTRY
                )
            ),
        },
        "sm2-sm3": {
            "privateKey": hx(SM2_KEY),
            "publicKey": hx(sm2_public_key(SM2_KEY)),
            "signature": hx(
                sign_batch("sm2-sm3", SM2_KEY, tree.root, 1, 3, chain_id=CHAIN_ID, anchor_registry=REGISTRY)
            ),
        },
    }
    out["naturalPerson"] = natural_person()
    out["statusList"] = {"setIndexes": [17], "encodedList": encode_status_list([17])}
    bundle_body = {"type": "CertledgerTrustBundle", "version": 1, "chainId": CHAIN_ID}
    out["bundleMessage"] = {
        "body": bundle_body,
        "jcs": jcs_text(bundle_body),
        "sha256OfJcs": hx(hashlib.sha256(jcs_text(bundle_body).encode()).digest()),
        "message": hx(bundle_message(bundle_body)),
    }
    return out


if __name__ == "__main__":
    json.dump(build(), sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
