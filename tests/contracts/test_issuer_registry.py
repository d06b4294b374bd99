"""IssuerRegistry against a real anvil: every external function, revert (by custom error name and
arguments), event, and the governance access matrix."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from ledger_node import DEV_KEYS


def _load_helpers():
    name = "certledger_contract_test_helpers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("helpers.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


H = _load_helpers()
pytestmark = pytest.mark.chain

ISSUER, ISSUER2, NEW_KEY, STRANGER = DEV_KEYS[1], DEV_KEYS[2], DEV_KEYS[3], DEV_KEYS[9]
SM2_KEY = bytes(range(64))


@pytest.fixture()
def c(chain, deployment):
    return H.contracts(chain, deployment)


def _latest_ts(c) -> int:
    return int(c.chain.w3.eth.get_block("latest")["timestamp"])


# -- registration -----------------------------------------------------------------------------
def test_register_issuer_records_everything_and_emits(c):
    issuer_id, receipt = H.register_issuer(
        c,
        ISSUER,
        (H.BUSINESS_LICENCE, H.DATA_ASSET_CERTIFICATE),
        name="Guangzhou Data Bureau",
        active_from=1,
        active_until=2**40,
    )
    assert issuer_id == 1
    ev = H.one_event(c.ir, "IssuerRegistered", receipt)
    assert ev == {
        "issuerId": 1,
        "account": H.addr(ISSUER),
        "suite": H.SECP256K1,
        "activeFrom": 1,
        "activeUntil": 2**40,
        "name": "Guangzhou Data Bureau",
        "uscc": H.USCC,
        "sm2PublicKey": b"",
    }
    types = H.events(c.ir, "CredentialTypeSet", receipt)
    assert types == [
        {"issuerId": 1, "credentialType": H.BUSINESS_LICENCE, "allowed": True},
        {"issuerId": 1, "credentialType": H.DATA_ASSET_CERTIFICATE, "allowed": True},
    ]
    rec = c.call(c.ir.functions.issuer(1))
    block_ts = int(c.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
    assert tuple(rec) == (
        1,
        H.SECP256K1,
        H.ISSUER_ACTIVE,
        0,
        1,
        2**40,
        H.addr(ISSUER),
        "Guangzhou Data Bureau",
        H.USCC,
    )
    assert tuple(c.call(c.ir.functions.issuerKey(1, 1))) == (H.addr(ISSUER), block_ts, 0, b"")
    assert c.call(c.ir.functions.issuerOf(H.addr(ISSUER))) == 1
    assert c.call(c.ir.functions.issuerOf(H.addr(STRANGER))) == 0
    assert c.call(c.ir.functions.issuerCount()) == 1
    assert c.call(c.ir.functions.isAllowed(1, H.BUSINESS_LICENCE)) is True
    assert c.call(c.ir.functions.isAllowed(1, H.OPERATING_PERMIT)) is False
    assert c.call(c.ir.functions.authorise(H.addr(ISSUER), H.DATA_ASSET_CERTIFICATE)) == [1, 1]


def test_issuer_ids_count_from_one(c):
    assert c.call(c.ir.functions.issuerCount()) == 0
    assert H.register_issuer(c, ISSUER)[0] == 1
    assert H.register_issuer(c, ISSUER2)[0] == 2
    assert c.call(c.ir.functions.issuerCount()) == 2


def test_register_sm2_issuer(c):
    issuer_id, receipt = H.register_issuer(c, ISSUER, suite=H.SM2SM3, sm2=SM2_KEY)
    assert H.one_event(c.ir, "IssuerRegistered", receipt)["sm2PublicKey"] == SM2_KEY
    assert c.call(c.ir.functions.issuer(issuer_id))[1] == H.SM2SM3
    assert c.call(c.ir.functions.issuerKey(issuer_id, 1))[3] == SM2_KEY


def test_register_issuer_reverts(c):
    a = H.addr(ISSUER)
    reg = c.ir.functions.registerIssuer
    with H.reverts(
        "AccessControlUnauthorizedAccount", {"account": H.addr(STRANGER), "neededRole": H.GOVERNANCE_ROLE}
    ):
        c.tx(reg(a, "n", H.USCC, [1], H.SECP256K1, b"", 0, 0), STRANGER)
    with H.reverts("InvalidUscc", {"uscc": "SHORT"}):
        c.tx(reg(a, "n", "SHORT", [1], H.SECP256K1, b"", 0, 0), H.GOV)
    with H.reverts("InvalidUscc", {"uscc": H.USCC + "0"}):
        c.tx(reg(a, "n", H.USCC + "0", [1], H.SECP256K1, b"", 0, 0), H.GOV)
    with H.reverts("InvalidActivityWindow", {"activeFrom": 100, "activeUntil": 100}):
        c.tx(reg(a, "n", H.USCC, [1], H.SECP256K1, b"", 100, 100), H.GOV)
    with H.reverts("InvalidActivityWindow", {"activeFrom": 100, "activeUntil": 99}):
        c.tx(reg(a, "n", H.USCC, [1], H.SECP256K1, b"", 100, 99), H.GOV)
    zero = "0x" + "00" * 20
    with H.reverts("InvalidAccount", {"account": zero}):
        c.tx(reg(zero, "n", H.USCC, [1], H.SECP256K1, b"", 0, 0), H.GOV)
    with H.reverts("InvalidSm2PublicKey", {"suite": H.SM2SM3, "length": 0}):
        c.tx(reg(a, "n", H.USCC, [1], H.SM2SM3, b"", 0, 0), H.GOV)
    with H.reverts("InvalidSm2PublicKey", {"suite": H.SM2SM3, "length": 33}):
        c.tx(reg(a, "n", H.USCC, [1], H.SM2SM3, b"\x02" * 33, 0, 0), H.GOV)
    with H.reverts("InvalidSm2PublicKey", {"suite": H.SECP256K1, "length": 64}):
        c.tx(reg(a, "n", H.USCC, [1], H.SECP256K1, SM2_KEY, 0, 0), H.GOV)
    with H.reverts("InvalidCredentialType", {"credentialType": 0}):
        c.tx(reg(a, "n", H.USCC, [1, 0], H.SECP256K1, b"", 0, 0), H.GOV)
    assert c.call(c.ir.functions.issuerCount()) == 0
    H.register_issuer(c, ISSUER)
    with H.reverts("AccountAlreadyRegistered", {"account": a, "issuerId": 1}):
        c.tx(reg(a, "n", H.USCC, [1], H.SECP256K1, b"", 0, 0), H.GOV)


# -- credential types ---------------------------------------------------------------------------
def test_set_credential_type(c):
    issuer_id, _ = H.register_issuer(c, ISSUER, (H.BUSINESS_LICENCE,))
    receipt = c.tx(c.ir.functions.setCredentialType(issuer_id, H.OPERATING_PERMIT, True), H.GOV)
    assert H.one_event(c.ir, "CredentialTypeSet", receipt) == {
        "issuerId": issuer_id,
        "credentialType": H.OPERATING_PERMIT,
        "allowed": True,
    }
    assert c.call(c.ir.functions.isAllowed(issuer_id, H.OPERATING_PERMIT)) is True
    receipt = c.tx(c.ir.functions.setCredentialType(issuer_id, H.BUSINESS_LICENCE, False), H.GOV)
    assert H.one_event(c.ir, "CredentialTypeSet", receipt) == {
        "issuerId": issuer_id,
        "credentialType": H.BUSINESS_LICENCE,
        "allowed": False,
    }
    assert c.call(c.ir.functions.isAllowed(issuer_id, H.BUSINESS_LICENCE)) is False
    with H.reverts("CredentialTypeNotAllowed", {"issuerId": issuer_id, "credentialType": H.BUSINESS_LICENCE}):
        c.call(c.ir.functions.authorise(H.addr(ISSUER), H.BUSINESS_LICENCE))
    with H.reverts("CredentialTypeNotAllowed", {"issuerId": issuer_id, "credentialType": H.BUSINESS_LICENCE}):
        H.anchor(c, ISSUER, H.b32(), H.BUSINESS_LICENCE)
    H.anchor(c, ISSUER, H.b32(), H.OPERATING_PERMIT)


def test_set_credential_type_reverts(c):
    issuer_id, _ = H.register_issuer(c, ISSUER)
    with H.reverts(
        "AccessControlUnauthorizedAccount", {"account": H.addr(ISSUER), "neededRole": H.GOVERNANCE_ROLE}
    ):
        c.tx(c.ir.functions.setCredentialType(issuer_id, 7, True), ISSUER)
    with H.reverts("IssuerUnknown", {"issuerId": 99}):
        c.tx(c.ir.functions.setCredentialType(99, 1, True), H.GOV)
    with H.reverts("InvalidCredentialType", {"credentialType": 0}):
        c.tx(c.ir.functions.setCredentialType(issuer_id, 0, True), H.GOV)


# -- suspension -------------------------------------------------------------------------------
def test_suspend_and_reinstate_issuer(c):
    issuer_id, _ = H.register_issuer(c, ISSUER)
    receipt = c.tx(c.ir.functions.suspendIssuer(issuer_id, 5), H.GOV)
    assert H.one_event(c.ir, "IssuerSuspended", receipt) == {"issuerId": issuer_id, "reason": 5}
    rec = c.call(c.ir.functions.issuer(issuer_id))
    assert (rec[2], rec[3]) == (H.ISSUER_SUSPENDED, 5)
    with H.reverts("IssuerStatusMismatch", {"issuerId": issuer_id, "status": H.ISSUER_SUSPENDED}):
        c.call(c.ir.functions.authorise(H.addr(ISSUER), 1))
    with H.reverts("IssuerStatusMismatch", {"issuerId": issuer_id, "status": H.ISSUER_SUSPENDED}):
        c.tx(c.ir.functions.suspendIssuer(issuer_id, 1), H.GOV)

    receipt = c.tx(c.ir.functions.reinstateIssuer(issuer_id), H.GOV)
    assert H.one_event(c.ir, "IssuerReinstated", receipt) == {"issuerId": issuer_id}
    rec = c.call(c.ir.functions.issuer(issuer_id))
    assert (rec[2], rec[3]) == (H.ISSUER_ACTIVE, 0)
    assert c.call(c.ir.functions.authorise(H.addr(ISSUER), 1)) == [issuer_id, 1]
    with H.reverts("IssuerStatusMismatch", {"issuerId": issuer_id, "status": H.ISSUER_ACTIVE}):
        c.tx(c.ir.functions.reinstateIssuer(issuer_id), H.GOV)


def test_suspend_reinstate_reverts(c):
    issuer_id, _ = H.register_issuer(c, ISSUER)
    for key in (ISSUER, STRANGER):
        with H.reverts(
            "AccessControlUnauthorizedAccount", {"account": H.addr(key), "neededRole": H.GOVERNANCE_ROLE}
        ):
            c.tx(c.ir.functions.suspendIssuer(issuer_id, 1), key)
    c.tx(c.ir.functions.suspendIssuer(issuer_id, 1), H.GOV)
    for key in (ISSUER, STRANGER):
        with H.reverts(
            "AccessControlUnauthorizedAccount", {"account": H.addr(key), "neededRole": H.GOVERNANCE_ROLE}
        ):
            c.tx(c.ir.functions.reinstateIssuer(issuer_id), key)
    with H.reverts("IssuerUnknown", {"issuerId": 42}):
        c.tx(c.ir.functions.suspendIssuer(42, 1), H.GOV)
    with H.reverts("IssuerUnknown", {"issuerId": 42}):
        c.tx(c.ir.functions.reinstateIssuer(42), H.GOV)


# -- key rotation -----------------------------------------------------------------------------
@pytest.mark.parametrize("by", ["issuer", "governance"])
def test_rotate_key(c, by):
    issuer_id, _ = H.register_issuer(c, ISSUER)
    receipt = c.tx(
        c.ir.functions.rotateKey(issuer_id, H.addr(NEW_KEY), b""), ISSUER if by == "issuer" else H.GOV
    )
    assert H.one_event(c.ir, "IssuerKeyRotated", receipt) == {
        "issuerId": issuer_id,
        "keyVersion": 2,
        "account": H.addr(NEW_KEY),
        "previousAccount": H.addr(ISSUER),
        "sm2PublicKey": b"",
    }
    ts = int(c.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
    old = c.call(c.ir.functions.issuerKey(issuer_id, 1))
    new = c.call(c.ir.functions.issuerKey(issuer_id, 2))
    assert (old[0], old[2]) == (H.addr(ISSUER), ts)
    assert tuple(new) == (H.addr(NEW_KEY), ts, 0, b"")
    rec = c.call(c.ir.functions.issuer(issuer_id))
    assert (rec[0], rec[6]) == (2, H.addr(NEW_KEY))
    assert c.call(c.ir.functions.issuerOf(H.addr(ISSUER))) == 0
    assert c.call(c.ir.functions.issuerOf(H.addr(NEW_KEY))) == issuer_id
    assert c.call(c.ir.functions.authorise(H.addr(NEW_KEY), 1)) == [issuer_id, 2]
    with H.reverts("NotAnIssuer", {"account": H.addr(ISSUER)}):
        c.call(c.ir.functions.authorise(H.addr(ISSUER), 1))
    # the rotated-out key can no longer rotate
    with H.reverts("NotIssuerOrGovernance", {"account": H.addr(ISSUER), "issuerId": issuer_id}):
        c.tx(c.ir.functions.rotateKey(issuer_id, H.addr(DEV_KEYS[4]), b""), ISSUER)


def test_rotate_sm2_key(c):
    issuer_id, _ = H.register_issuer(c, ISSUER, suite=H.SM2SM3, sm2=SM2_KEY)
    new_sm2 = bytes(reversed(SM2_KEY))
    with H.reverts("InvalidSm2PublicKey", {"suite": H.SM2SM3, "length": 0}):
        c.tx(c.ir.functions.rotateKey(issuer_id, H.addr(NEW_KEY), b""), ISSUER)
    receipt = c.tx(c.ir.functions.rotateKey(issuer_id, H.addr(NEW_KEY), new_sm2), ISSUER)
    assert H.one_event(c.ir, "IssuerKeyRotated", receipt)["sm2PublicKey"] == new_sm2
    assert c.call(c.ir.functions.issuerKey(issuer_id, 1))[3] == SM2_KEY
    assert c.call(c.ir.functions.issuerKey(issuer_id, 2))[3] == new_sm2


def test_rotate_key_reverts(c):
    issuer_id, _ = H.register_issuer(c, ISSUER)
    other_id, _ = H.register_issuer(c, ISSUER2)
    with H.reverts("IssuerUnknown", {"issuerId": 7}):
        c.tx(c.ir.functions.rotateKey(7, H.addr(NEW_KEY), b""), H.GOV)
    # a stranger, and another issuer, may not rotate this issuer's key
    for key in (STRANGER, ISSUER2):
        with H.reverts("NotIssuerOrGovernance", {"account": H.addr(key), "issuerId": issuer_id}):
            c.tx(c.ir.functions.rotateKey(issuer_id, H.addr(NEW_KEY), b""), key)
    zero = "0x" + "00" * 20
    with H.reverts("InvalidAccount", {"account": zero}):
        c.tx(c.ir.functions.rotateKey(issuer_id, zero, b""), ISSUER)
    with H.reverts("AccountAlreadyRegistered", {"account": H.addr(ISSUER2), "issuerId": other_id}):
        c.tx(c.ir.functions.rotateKey(issuer_id, H.addr(ISSUER2), b""), ISSUER)
    with H.reverts("InvalidSm2PublicKey", {"suite": H.SECP256K1, "length": 64}):
        c.tx(c.ir.functions.rotateKey(issuer_id, H.addr(NEW_KEY), SM2_KEY), ISSUER)


# -- views ------------------------------------------------------------------------------------
def test_view_reverts(c):
    with H.reverts("IssuerUnknown", {"issuerId": 1}):
        c.call(c.ir.functions.issuer(1))
    issuer_id, _ = H.register_issuer(c, ISSUER)
    with H.reverts("IssuerUnknown", {"issuerId": issuer_id}):
        c.call(c.ir.functions.issuerKey(issuer_id, 0))
    with H.reverts("IssuerUnknown", {"issuerId": issuer_id}):
        c.call(c.ir.functions.issuerKey(issuer_id, 2))
    with H.reverts("IssuerUnknown", {"issuerId": 5}):
        c.call(c.ir.functions.issuerKey(5, 1))
    with H.reverts("NotAnIssuer", {"account": H.addr(STRANGER)}):
        c.call(c.ir.functions.authorise(H.addr(STRANGER), 1))


def test_activity_window(c):
    now = _latest_ts(c)
    future_id, _ = H.register_issuer(c, ISSUER, active_from=now + 10**6)
    past_id, _ = H.register_issuer(c, ISSUER2, active_from=1, active_until=2)
    for key, issuer_id in ((ISSUER, future_id), (ISSUER2, past_id)):
        with H.reverts("IssuerOutsideActivityWindow") as e:
            c.call(c.ir.functions.authorise(H.addr(key), 1))
        assert e.value.args_dict["issuerId"] == issuer_id
        assert now <= e.value.args_dict["timestamp"] <= now + 600
        # and so it cannot anchor
        with H.reverts("IssuerOutsideActivityWindow") as e:
            H.anchor(c, key, H.b32())
        assert e.value.args_dict["issuerId"] == issuer_id
    open_id, _ = H.register_issuer(c, DEV_KEYS[4], active_from=now - 10, active_until=now + 10**6)
    assert c.call(c.ir.functions.authorise(H.addr(DEV_KEYS[4]), 1)) == [open_id, 1]


# -- access control plumbing ------------------------------------------------------------------
def test_roles_and_interfaces(c):
    gov = H.addr(H.GOV)
    assert c.call(c.ir.functions.GOVERNANCE_ROLE()) == H.GOVERNANCE_ROLE
    assert c.call(c.ir.functions.DEFAULT_ADMIN_ROLE()) == H.DEFAULT_ADMIN_ROLE
    assert c.call(c.ir.functions.hasRole(H.GOVERNANCE_ROLE, gov)) is True
    assert c.call(c.ir.functions.hasRole(H.DEFAULT_ADMIN_ROLE, gov)) is True
    assert c.call(c.ir.functions.getRoleAdmin(H.GOVERNANCE_ROLE)) == H.DEFAULT_ADMIN_ROLE
    assert c.call(c.ir.functions.version()) == "1.0.0"
    assert c.call(c.ir.functions.supportsInterface(bytes.fromhex("7965db0b"))) is True  # IAccessControl
    assert c.call(c.ir.functions.supportsInterface(bytes.fromhex("ffffffff"))) is False

    # a second governance account can register; once its role is revoked it cannot
    second = DEV_KEYS[8]
    c.tx(c.ir.functions.grantRole(H.GOVERNANCE_ROLE, H.addr(second)), H.GOV)
    H.register_issuer(c, ISSUER, gov=second)
    c.tx(c.ir.functions.revokeRole(H.GOVERNANCE_ROLE, H.addr(second)), H.GOV)
    with H.reverts(
        "AccessControlUnauthorizedAccount", {"account": H.addr(second), "neededRole": H.GOVERNANCE_ROLE}
    ):
        H.register_issuer(c, ISSUER2, gov=second)
    with H.reverts(
        "AccessControlUnauthorizedAccount", {"account": H.addr(STRANGER), "neededRole": H.DEFAULT_ADMIN_ROLE}
    ):
        c.tx(c.ir.functions.grantRole(H.GOVERNANCE_ROLE, H.addr(STRANGER)), STRANGER)
    with H.reverts("AccessControlBadConfirmation", {}):
        c.tx(c.ir.functions.renounceRole(H.GOVERNANCE_ROLE, gov), STRANGER)
