"""Sample records (valid unified social credit codes, GB 32100-2015) for the demo, benchmarks and tests."""

from __future__ import annotations

import random

from verifier.uscc import check_character

_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def make_uscc(rng: random.Random | None = None, prefix: str = "914401") -> str:
    rng = rng or random.Random()
    body = prefix + "".join(rng.choice(_ALPHABET) for _ in range(17 - len(prefix)))
    return body + check_character(body)


def business_licence_record(uscc: str | None = None, name: str = "广州市示例科技有限公司", **over) -> dict:
    uscc = uscc or make_uscc()
    subject = {
        "licenceNumber": "4401" + uscc[-10:],
        "enterpriseName": name,
        "unifiedSocialCreditCode": uscc,
        "enterpriseType": "有限责任公司（自然人投资或控股）",
        "legalRepresentative": "张三",
        "registeredCapital": {"amount": "1000000.00", "currency": "CNY"},
        "dateOfEstablishment": "2018-05-20",
        "businessScope": "软件开发；信息技术咨询服务",
        "address": "广州市天河区珠江新城华夏路10号",
        "registrationAuthority": "广州市天河区市场监督管理局",
    }
    subject.update(over)
    return {
        "validFrom": "2024-01-01T00:00:00Z",
        "validUntil": "2044-01-01T00:00:00Z",
        "credentialSubject": subject,
    }


def data_asset_record(
    uscc: str | None = None, relying_party: str | None = None, digest: str = "0x" + "0" * 64
) -> dict:
    uscc = uscc or make_uscc(prefix="914406")
    return {
        "validFrom": "2026-01-01T00:00:00Z",
        "validUntil": "2028-01-01T00:00:00Z",
        "credentialSubject": {
            "assetId": "GD-DA-2026-000123",
            "assetName": "佛山某制造企业用电数据",
            "holderName": "佛山市示例制造有限公司",
            "unifiedSocialCreditCode": uscc,
            "dataProvider": "广东电网有限责任公司佛山供电局",
            "dataCategory": "electricity-usage",
            "classificationLevel": "general",
            "periodCovered": {"from": "2024-01-01", "to": "2025-12-31"},
            "recordCount": 17520,
            "datasetDigest": digest,
            "digestAlgorithm": "sha256",
            "valuation": {"amount": "2500000.00", "currency": "CNY", "method": "income approach"},
            "authorisedUses": [
                {
                    "relyingParty": {
                        "name": "示例银行广州分行",
                        "unifiedSocialCreditCode": relying_party or make_uscc(),
                    },
                    "purpose": "credit-assessment",
                    "until": "2027-12-31T23:59:59Z",
                }
            ],
        },
    }


def natural_person_asset_record(
    citizen_id: str = "11010519491231002X", relying_party: str | None = None
) -> dict:
    """A data asset certificate whose holder is a natural person (FORMAT.md §2.4): an individual's
    social-insurance payment records, bound by the salted digest of the citizen ID number."""
    record = data_asset_record(relying_party=relying_party)
    subject = {k: v for k, v in record["credentialSubject"].items() if k != "unifiedSocialCreditCode"}
    record["credentialSubject"] = {
        "holderCodeType": "citizenId",
        "citizenIdNumber": citizen_id,
        **subject,
        "assetName": "个人社会保险缴费记录（2021–2025年）",
        "holderName": "张三",
        "dataProvider": "广东省社会保险基金管理局",
        "dataCategory": "social-insurance-payments",
    }
    return record
