"""Hypothesis strategies for schema-valid credential subjects of every type."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from verifier.uscc import ALPHABET, check_character

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=24)
chinese = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=1, max_size=12)
label = st.one_of(text, chinese)
uscc = st.text(alphabet=ALPHABET, min_size=17, max_size=17).map(lambda b: b + check_character(b))
day = st.dates().map(lambda d: d.isoformat())
_START, _END = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
moment = st.datetimes(min_value=_START.replace(tzinfo=None), max_value=_END.replace(tzinfo=None)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")  # naive values, written as UTC
)
decimal = st.builds(
    lambda w, f: f"{w}.{f:02d}" if f >= 0 else str(w), st.integers(0, 10**12), st.integers(-1, 99)
)
money = st.fixed_dictionaries({"amount": decimal, "currency": st.just("CNY")})


def business_licence():
    return st.fixed_dictionaries(
        {
            "unifiedSocialCreditCode": uscc,
            "licenceNumber": label,
            "enterpriseName": label,
            "enterpriseType": label,
            "legalRepresentative": label,
            "registeredCapital": money,
            "dateOfEstablishment": day,
            "businessScope": label,
            "address": label,
            "registrationAuthority": label,
        }
    )


def operating_permit():
    return st.fixed_dictionaries(
        {
            "unifiedSocialCreditCode": uscc,
            "permitNumber": label,
            "permitType": label,
            "enterpriseName": label,
            "permittedActivities": st.lists(label, min_size=1, max_size=5),
            "issuingDepartment": label,
            "address": label,
        }
    )


def data_asset_certificate():
    use = st.fixed_dictionaries(
        {
            "relyingParty": st.fixed_dictionaries({"name": label, "unifiedSocialCreditCode": uscc}),
            "purpose": label,
            "until": moment,
        }
    )
    return st.fixed_dictionaries(
        {
            "unifiedSocialCreditCode": uscc,
            "assetId": label,
            "assetName": label,
            "holderName": label,
            "dataProvider": label,
            "dataCategory": label,
            "classificationLevel": st.sampled_from(["core", "important", "general"]),
            "periodCovered": st.fixed_dictionaries({"from": day, "to": day}),
            "recordCount": st.integers(0, 2**53 - 1),
            "datasetDigest": st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex()),
            "digestAlgorithm": st.sampled_from(["sha256", "sm3"]),
            "valuation": st.fixed_dictionaries(
                {"amount": decimal, "currency": st.just("CNY"), "method": label}
            ),
            "authorisedUses": st.lists(use, max_size=3),
        }
    )


SUBJECTS = {
    "BusinessLicence": business_licence,
    "OperatingPermit": operating_permit,
    "DataAssetCertificate": data_asset_certificate,
}
