"""FORMAT.md §2.2: the schema rules quoted in the spec equal the normative schema files, the
files' $ids resolve from the package, and the answers the section gives hold in the verifier."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from tests.support.factory import AT
from verifier import CREDENTIAL_TYPES, schema_for_id, verify
from verifier._schema import schema_errors
from verifier.uscc import check_character

ROOT = Path(__file__).resolve().parents[2]
SPEC = (ROOT / "docs" / "FORMAT.md").read_text(encoding="utf-8")
SECTION = SPEC[SPEC.index("### 2.2 Schemas (normative)") : SPEC.index("## 3. Field digests")]
ROWS = re.findall(r"^\| ([^|]+?) \| `(/[^`]+)` \| `(.+)` \|$", SECTION, re.MULTILINE)


def _resolve(schema: dict, pointer: str):
    node = schema
    for token in pointer[1:].split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def test_the_section_quotes_at_least_the_rules_the_issue_asked_about():
    names = [r[0] for r in ROWS]
    assert len(ROWS) >= 12
    for needed in ("`id`", "text", "issuer's credit code", "`statusListIndex`", "`statusListCredential`"):
        assert needed in names


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_every_quoted_rule_equals_every_schema_file(row):
    _, pointer, value = row
    expected = json.loads(value.replace("\\|", "|"))
    for type_name in CREDENTIAL_TYPES:
        on_disk = json.loads((ROOT / "verifier" / "schemas" / f"{type_name}.json").read_text("utf-8"))
        assert _resolve(on_disk, pointer) == expected, (type_name, pointer)


def test_schema_ids_resolve_from_the_package():
    for type_name in CREDENTIAL_TYPES:
        schema_id = f"https://certledger.example/schemas/v1/{type_name}.json"
        schema = schema_for_id(schema_id)
        assert schema["$id"] == schema_id
        assert schema == json.loads((ROOT / "verifier" / "schemas" / f"{type_name}.json").read_text("utf-8"))
        assert f"`{schema_id.rsplit('/', 1)[1]}`" in SECTION or type_name in SECTION
    for bad in (
        "https://certledger.example/schemas/v1/Passport.json",
        "BusinessLicence",
        "https://certledger.example/schemas/v1/BusinessLicence.json#x",
    ):
        with pytest.raises(KeyError):
            schema_for_id(bad)


def _licence(world):
    holder = world.batches[("secp256k1", "BusinessLicence")][0]
    return {k: copy.deepcopy(v) for k, v in holder.items() if k != "proof"}


def test_any_uuid_version_is_accepted_and_upper_case_is_not(world):
    doc = _licence(world)
    for uuid in (
        "00000000-0000-0000-0000-000000000000",
        "3f1e2d4c-5b6a-1978-0a1b-2c3d4e5f6a7b",
        "3f1e2d4c-5b6a-7978-ca1b-2c3d4e5f6a7b",
    ):
        doc["id"] = f"urn:uuid:{uuid}"
        assert schema_errors(doc, "BusinessLicence") == []
    doc["id"] = "urn:uuid:3F1E2D4C-5B6A-4978-8A1B-2C3D4E5F6A7B"
    assert schema_errors(doc, "BusinessLicence")


def test_lengths_count_code_points(world):
    doc = _licence(world)
    doc["credentialSubject"]["address"] = "𠀀" * 1024  # 1,024 code points, 2,048 UTF-16 units
    assert schema_errors(doc, "BusinessLicence") == []
    doc["credentialSubject"]["address"] = "𠀀" * 1025
    assert schema_errors(doc, "BusinessLicence")


def test_every_credit_code_gets_the_check_character(world, trust):
    """The issuer's and each relying party's credit code fail format with a wrong check character."""
    holder = world.batches[("secp256k1", "DataAssetCertificate")][0]
    for where in ("issuer", "relyingParty", "subject"):
        doc = copy.deepcopy(holder)
        if where == "issuer":
            target = doc["issuer"]
        elif where == "relyingParty":
            target = doc["credentialSubject"]["authorisedUses"][0]["relyingParty"]
        else:
            target = doc["credentialSubject"]
        code = target["unifiedSocialCreditCode"]
        wrong = next(c for c in "0123456789ABCDEFGHJKLMNPQRTUWXY" if c != check_character(code[:17]))
        target["unifiedSocialCreditCode"] = code[:17] + wrong
        check = verify(doc, trust=trust, at=AT).check("format")
        assert check.status == "failed" and "check character" in check.reason, (where, check)


def test_status_list_index_pattern(world):
    doc = _licence(world)
    for index, ok in (
        ("0", True),
        ("4294967295", True),
        ("9999999999", True),
        ("07", False),
        ("12345678901", False),
        ("-1", False),
        ("1.0", False),
    ):
        for entry in doc["credentialStatus"]:
            entry["statusListIndex"] = index
            entry["id"] = entry["statusListCredential"] + "#" + index
        assert (schema_errors(doc, "BusinessLicence") == []) is ok, index
