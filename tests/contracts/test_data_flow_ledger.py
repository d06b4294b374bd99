"""DataFlowLedger against a real anvil: participants, declarations (original and onward) with an
asset certificate proven on-chain (proofs from `@openzeppelin/merkle-tree`), decisions, every
revert by custom error name and arguments, every event, and who may do what."""

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

ISSUER, EXPORTER, IMPORTER, THIRD, STRANGER = DEV_KEYS[1], DEV_KEYS[5], DEV_KEYS[6], DEV_KEYS[7], DEV_KEYS[9]
EXPORTER_ID = H.kk("91440101MA5EXPORT1")  # keccak256 of the holder's unified social credit code
IMPORTER_ID = H.kk("HK-BR-12345678")
THIRD_ID = H.kk("SG-UEN-201912345K")
CN_GD, HK, SG, MO = H.jur("CN-GD"), H.jur("HK"), H.jur("SG"), H.jur("MO")
ZERO32 = b"\0" * 32


@pytest.fixture(scope="module")
def assets():
    """A batch of 8 data asset certificates; #0 and #1 are held by EXPORTER, #2 by IMPORTER."""
    return H.make_batch(8, subjects=[EXPORTER_ID, EXPORTER_ID, IMPORTER_ID])


@pytest.fixture(scope="module")
def licences():
    """A batch of business licences, #0 held by EXPORTER."""
    return H.make_batch(4, subjects=[EXPORTER_ID])


@pytest.fixture()
def c(chain, deployment):
    c = H.contracts(chain, deployment)
    H.register_issuer(c, ISSUER)
    for key, pid in ((EXPORTER, EXPORTER_ID), (IMPORTER, IMPORTER_ID), (THIRD, THIRD_ID)):
        c.tx(c.fl.functions.registerParticipant(H.addr(key), pid), H.GOV)
    return c


@pytest.fixture()
def anchored(c, assets):
    H.anchor(c, ISSUER, assets.root, H.DATA_ASSET_CERTIFICATE, 8)
    return assets


def decl(
    parent=0,
    importer=IMPORTER_ID,
    frm=CN_GD,
    to=HK,
    basis=H.GBA_STANDARD_CONTRACT,
    pi=False,
    subjects=0,
    volume=1 << 30,
    purpose="credit risk assessment",
    payload=None,
    declaration_hash=None,
):
    return (
        parent,
        importer,
        frm,
        to,
        basis,
        pi,
        subjects,
        volume,
        H.kk(purpose),
        payload or H.kk("payload"),
        declaration_hash or H.kk("declaration"),
    )


def proof(batch, i, root=None):
    t, s, p = batch.cred(i)
    return (root or batch.root, t, s, p)


def declare(c, key, declaration, asset) -> dict:
    return c.tx(c.fl.functions.declareFlow(declaration, asset), key)


def original_flow(c, anchored, i=0) -> int:
    receipt = declare(c, EXPORTER, decl(), proof(anchored, i))
    return H.one_event(c.fl, "FlowDeclared", receipt)["flowId"]


def decide(c, flow_id, decision, reason="ok", key=H.GOV) -> dict:
    return c.tx(c.fl.functions.decideFlow(flow_id, decision, reason), key)


# -- participants -----------------------------------------------------------------------------
def test_register_participant(c):
    assert c.call(c.fl.functions.participantOf(H.addr(EXPORTER))) == EXPORTER_ID
    assert c.call(c.fl.functions.participantOf(H.addr(STRANGER))) == ZERO32
    receipt = c.tx(c.fl.functions.registerParticipant(H.addr(STRANGER), THIRD_ID), H.GOV)
    assert H.one_event(c.fl, "ParticipantRegistered", receipt) == {
        "account": H.addr(STRANGER),
        "participantId": THIRD_ID,
    }
    # re-pointing an account
    new_id = H.kk("another")
    receipt = c.tx(c.fl.functions.registerParticipant(H.addr(STRANGER), new_id), H.GOV)
    assert H.one_event(c.fl, "ParticipantRegistered", receipt) == {
        "account": H.addr(STRANGER),
        "participantId": new_id,
    }
    assert c.call(c.fl.functions.participantOf(H.addr(STRANGER))) == new_id


def test_register_participant_reverts(c):
    zero = "0x" + "00" * 20
    with H.reverts("InvalidParticipant", {"account": zero, "participantId": THIRD_ID}):
        c.tx(c.fl.functions.registerParticipant(zero, THIRD_ID), H.GOV)
    with H.reverts("InvalidParticipant", {"account": H.addr(STRANGER), "participantId": ZERO32}):
        c.tx(c.fl.functions.registerParticipant(H.addr(STRANGER), ZERO32), H.GOV)
    for key in (STRANGER, EXPORTER, ISSUER):
        with H.reverts(
            "AccessControlUnauthorizedAccount", {"account": H.addr(key), "neededRole": H.GOVERNANCE_ROLE}
        ):
            c.tx(c.fl.functions.registerParticipant(H.addr(key), THIRD_ID), key)


# -- declaring --------------------------------------------------------------------------------
def test_declare_original_flow(c, anchored):
    d = decl(
        pi=True, subjects=1200, basis=H.STANDARD_CONTRACT, payload=H.kk("p1"), declaration_hash=H.kk("d1")
    )
    receipt = declare(c, EXPORTER, d, proof(anchored, 1))
    ev = H.one_event(c.fl, "FlowDeclared", receipt)
    declaration = ev.pop("declaration")
    assert ev == {
        "flowId": 1,
        "assetLeaf": anchored.leaves[1],
        "parentFlowId": 0,
        "exporter": H.addr(EXPORTER),
        "exporterId": EXPORTER_ID,
        "assetRoot": anchored.root,
    }
    names = (
        "parentFlowId",
        "importerId",
        "fromJurisdiction",
        "toJurisdiction",
        "legalBasis",
        "personalInformation",
        "personalInformationSubjects",
        "volume",
        "purposeHash",
        "payloadDigest",
        "declarationHash",
    )
    assert {k: declaration[k] for k in names} == dict(zip(names, d))
    assert c.call(c.fl.functions.flowCount()) == 1
    ts = c.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert tuple(c.call(c.fl.functions.flow(1))) == (
        anchored.leaves[1],
        anchored.root,
        EXPORTER_ID,
        IMPORTER_ID,
        H.addr(EXPORTER),
        0,
        ts,
        CN_GD,
        HK,
        H.D_PENDING,
        H.STANDARD_CONTRACT,
        True,
        0,
        H.kk("p1"),
        H.kk("d1"),
    )
    # ids count from 1
    receipt = declare(c, EXPORTER, decl(to=MO), proof(anchored, 0))
    assert H.one_event(c.fl, "FlowDeclared", receipt)["flowId"] == 2
    assert c.call(c.fl.functions.flowCount()) == 2


def test_personal_information_under_an_exemption_is_anchored(c, anchored):
    # the 2024 rules exempt some personal information (CAC 2024 art. 5); which ones depends on facts
    # the chain does not hold (annual totals, sensitivity, the exemption ground), so the registry's
    # rule engine decides and the contract anchors what it is given (FORMAT.md §11.1)
    receipt = declare(c, EXPORTER, decl(pi=True, subjects=5, basis=H.EXEMPTION), proof(anchored, 0))
    d = H.one_event(c.fl, "FlowDeclared", receipt)["declaration"]
    assert (d["legalBasis"], d["personalInformation"], d["personalInformationSubjects"]) == (
        H.EXEMPTION,
        True,
        5,
    )


def test_declare_reverts_on_the_declaration(c, anchored):
    asset = proof(anchored, 0)
    with H.reverts("NotAParticipant", {"account": H.addr(STRANGER)}):
        declare(c, STRANGER, decl(), asset)
    with H.reverts("NotAParticipant", {"account": H.addr(ISSUER)}):  # being an issuer is not enough
        declare(c, ISSUER, decl(), asset)
    empty = b"\0" * 8
    with H.reverts("InvalidJurisdictions", {"fromJurisdiction": empty, "toJurisdiction": HK}):
        declare(c, EXPORTER, decl(frm=empty), asset)
    with H.reverts("InvalidJurisdictions", {"fromJurisdiction": CN_GD, "toJurisdiction": empty}):
        declare(c, EXPORTER, decl(to=empty), asset)
    with H.reverts("InvalidJurisdictions", {"fromJurisdiction": HK, "toJurisdiction": HK}):
        declare(c, EXPORTER, decl(frm=HK, to=HK), asset)
    with H.reverts("ImporterIsExporter", {"participantId": EXPORTER_ID}):
        declare(c, EXPORTER, decl(importer=EXPORTER_ID), asset)
    assert c.call(c.fl.functions.flowCount()) == 0


def test_only_the_holder_declares_an_original_flow(c, anchored):
    for key in (IMPORTER, THIRD):
        with H.reverts("NotAssetHolder", {"account": H.addr(key), "holderId": EXPORTER_ID}):
            declare(c, key, decl(importer=H.kk("somebody")), proof(anchored, 0))
    # IMPORTER holds #2 and may export it
    receipt = declare(c, IMPORTER, decl(importer=THIRD_ID, frm=HK, to=SG), proof(anchored, 2))
    assert H.one_event(c.fl, "FlowDeclared", receipt)["exporterId"] == IMPORTER_ID


def test_asset_must_be_anchored_and_valid(c, assets):
    leaf0 = assets.leaves[0]
    # never anchored (the proof itself is right)
    with H.reverts("AssetNotValid", {"root": assets.root, "leaf": leaf0}):
        declare(c, EXPORTER, decl(), proof(assets, 0))
    H.anchor(c, ISSUER, assets.root, H.DATA_ASSET_CERTIFICATE, 8)
    # a forged proof
    t, s, p = assets.cred(0)
    with H.reverts("AssetNotValid", {"root": assets.root, "leaf": leaf0}):
        declare(c, EXPORTER, decl(), (assets.root, t, s, [H.b32()] + p[1:]))
    # a claimed holder that is not in the certificate (the leaf changes, so the proof fails)
    forged_leaf = c.call(c.ar.functions.leafHash(assets.values[3][0], EXPORTER_ID))
    with H.reverts("AssetNotValid", {"root": assets.root, "leaf": forged_leaf}):
        declare(c, EXPORTER, decl(), (assets.root, assets.values[3][0], EXPORTER_ID, assets.proofs[3]))
    # a suspended certificate
    c.tx(c.ar.functions.suspendCredential(assets.root, t, s, p, 7), ISSUER)
    with H.reverts("AssetNotValid", {"root": assets.root, "leaf": leaf0}):
        declare(c, EXPORTER, decl(), proof(assets, 0))
    c.tx(c.ar.functions.reinstateCredential(assets.root, leaf0), ISSUER)
    assert H.one_event(c.fl, "FlowDeclared", declare(c, EXPORTER, decl(), proof(assets, 0)))["flowId"] == 1
    # a revoked certificate
    c.tx(c.ar.functions.revokeCredential(assets.root, t, s, p, 1), ISSUER)
    with H.reverts("AssetNotValid", {"root": assets.root, "leaf": leaf0}):
        declare(c, EXPORTER, decl(), proof(assets, 0))
    # a certificate in a suspended, then a revoked batch
    c.tx(c.ar.functions.suspendBatch(assets.root, 4), ISSUER)
    with H.reverts("AssetNotValid", {"root": assets.root, "leaf": assets.leaves[1]}):
        declare(c, EXPORTER, decl(), proof(assets, 1))
    c.tx(c.ar.functions.revokeBatch(assets.root, 4), ISSUER)
    with H.reverts("AssetNotValid", {"root": assets.root, "leaf": assets.leaves[1]}):
        declare(c, EXPORTER, decl(), proof(assets, 1))
    assert c.call(c.fl.functions.flowCount()) == 1


def test_only_data_asset_certificates_flow(c, licences):
    H.anchor(c, ISSUER, licences.root, H.BUSINESS_LICENCE, 4)
    with H.reverts("NotADataAssetCertificate", {"root": licences.root, "credentialType": H.BUSINESS_LICENCE}):
        declare(c, EXPORTER, decl(), proof(licences, 0))


# -- onward transfers -------------------------------------------------------------------------
def test_onward_transfer(c, anchored):
    parent = original_flow(c, anchored)
    decide(c, parent, H.D_APPROVED)
    d = decl(parent=parent, importer=THIRD_ID, frm=HK, to=SG)
    receipt = declare(c, IMPORTER, d, proof(anchored, 0))
    ev = H.one_event(c.fl, "FlowDeclared", receipt)
    assert (ev["flowId"], ev["parentFlowId"], ev["assetLeaf"], ev["exporter"], ev["exporterId"]) == (
        2,
        parent,
        anchored.leaves[0],
        H.addr(IMPORTER),
        IMPORTER_ID,
    )
    rec = c.call(c.fl.functions.flow(2))
    assert (rec[2], rec[3], rec[5], rec[7], rec[8], rec[9]) == (
        IMPORTER_ID,
        THIRD_ID,
        parent,
        HK,
        SG,
        H.D_PENDING,
    )
    # and onward again, from the onward flow's importer (a pending parent is allowed on-chain;
    # the trace flags an onward transfer of an unapproved flow)
    receipt = declare(
        c, THIRD, decl(parent=2, importer=H.kk("MO-importer"), frm=SG, to=MO), proof(anchored, 0)
    )
    assert H.one_event(c.fl, "FlowDeclared", receipt)["parentFlowId"] == 2


def test_onward_transfer_reverts(c, anchored):
    with H.reverts("UnknownFlow", {"flowId": 1}):
        declare(c, IMPORTER, decl(parent=1, importer=THIRD_ID, frm=HK, to=SG), proof(anchored, 0))
    parent = original_flow(c, anchored)
    onward = decl(parent=parent, importer=THIRD_ID, frm=HK, to=SG)
    # only the parent's importer declares an onward transfer — not the holder, not a third party
    with H.reverts("NotParentImporter", {"account": H.addr(THIRD), "parentFlowId": parent}):
        declare(c, THIRD, decl(parent=parent, importer=IMPORTER_ID, frm=HK, to=SG), proof(anchored, 0))
    with H.reverts("NotParentImporter", {"account": H.addr(EXPORTER), "parentFlowId": parent}):
        declare(c, EXPORTER, onward, proof(anchored, 0))
    with H.reverts("NotAParticipant", {"account": H.addr(STRANGER)}):
        declare(c, STRANGER, onward, proof(anchored, 0))
    # the same asset as the parent
    with H.reverts(
        "AssetMismatch",
        {"parentFlowId": parent, "expectedLeaf": anchored.leaves[0], "leaf": anchored.leaves[1]},
    ):
        declare(c, IMPORTER, onward, proof(anchored, 1))
    # leaving from where the parent arrived
    with H.reverts("JurisdictionMismatch", {"parentFlowId": parent, "expected": HK, "actual": MO}):
        declare(c, IMPORTER, decl(parent=parent, importer=THIRD_ID, frm=MO, to=SG), proof(anchored, 0))
    # not onward of a rejected flow
    decide(c, parent, H.D_REJECTED, "no standard contract filed")
    with H.reverts("ParentFlowRejected", {"parentFlowId": parent}):
        declare(c, IMPORTER, onward, proof(anchored, 0))
    assert c.call(c.fl.functions.flowCount()) == 1


def test_onward_transfer_of_a_revoked_asset_rejected(c, anchored):
    parent = original_flow(c, anchored)
    decide(c, parent, H.D_APPROVED)
    t, s, p = anchored.cred(0)
    c.tx(c.ar.functions.revokeCredential(anchored.root, t, s, p, 5), ISSUER)
    with H.reverts("AssetNotValid", {"root": anchored.root, "leaf": anchored.leaves[0]}):
        declare(c, IMPORTER, decl(parent=parent, importer=THIRD_ID, frm=HK, to=SG), proof(anchored, 0))


# -- deciding ---------------------------------------------------------------------------------
@pytest.mark.parametrize("decision", [H.D_APPROVED, H.D_REJECTED])
def test_decide_flow(c, anchored, decision):
    flow_id = original_flow(c, anchored)
    receipt = decide(c, flow_id, decision, "checked against the GBA standard contract")
    assert H.one_event(c.fl, "FlowDecided", receipt) == {
        "flowId": flow_id,
        "decision": decision,
        "regulator": H.addr(H.GOV),
        "reason": "checked against the GBA standard contract",
    }
    ts = c.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    rec = c.call(c.fl.functions.flow(flow_id))
    assert (rec[9], rec[12]) == (decision, ts)
    with H.reverts("AlreadyDecided", {"flowId": flow_id, "decision": decision}):
        decide(c, flow_id, H.D_APPROVED)
    with H.reverts("AlreadyDecided", {"flowId": flow_id, "decision": decision}):
        decide(c, flow_id, H.D_REJECTED)


def test_decide_flow_reverts(c, anchored):
    with H.reverts("UnknownFlow", {"flowId": 1}):
        decide(c, 1, H.D_APPROVED)
    flow_id = original_flow(c, anchored)
    with H.reverts("InvalidDecision", {"decision": H.D_NONE}):
        decide(c, flow_id, H.D_NONE)
    with H.reverts("InvalidDecision", {"decision": H.D_PENDING}):
        decide(c, flow_id, H.D_PENDING)
    # only a regulator: not the exporter, the importer, an issuer or a stranger
    for key in (EXPORTER, IMPORTER, ISSUER, STRANGER):
        with H.reverts(
            "AccessControlUnauthorizedAccount", {"account": H.addr(key), "neededRole": H.REGULATOR_ROLE}
        ):
            decide(c, flow_id, H.D_APPROVED, key=key)
    # a newly granted regulator may decide
    regulator = DEV_KEYS[8]
    c.tx(c.fl.functions.grantRole(H.REGULATOR_ROLE, H.addr(regulator)), H.GOV)
    receipt = decide(c, flow_id, H.D_APPROVED, key=regulator)
    assert H.one_event(c.fl, "FlowDecided", receipt)["regulator"] == H.addr(regulator)


def test_flow_view_reverts(c):
    with H.reverts("UnknownFlow", {"flowId": 0}):
        c.call(c.fl.functions.flow(0))
    with H.reverts("UnknownFlow", {"flowId": 3}):
        c.call(c.fl.functions.flow(3))


def test_views_and_roles(c, deployment):
    assert c.call(c.fl.functions.anchorRegistry()) == deployment.anchor_registry
    assert c.call(c.fl.functions.version()) == "1.0.0"
    assert c.call(c.fl.functions.DATA_ASSET_CERTIFICATE()) == H.DATA_ASSET_CERTIFICATE
    assert c.call(c.fl.functions.GOVERNANCE_ROLE()) == H.GOVERNANCE_ROLE
    assert c.call(c.fl.functions.REGULATOR_ROLE()) == H.REGULATOR_ROLE
    assert c.call(c.fl.functions.DEFAULT_ADMIN_ROLE()) == H.DEFAULT_ADMIN_ROLE
    assert c.call(c.fl.functions.getRoleAdmin(H.REGULATOR_ROLE)) == H.DEFAULT_ADMIN_ROLE
    assert c.call(c.fl.functions.hasRole(H.REGULATOR_ROLE, H.addr(H.GOV))) is True
    assert c.call(c.fl.functions.supportsInterface(bytes.fromhex("7965db0b"))) is True
    assert c.call(c.fl.functions.flowCount()) == 0
    # a regulator that renounces its role can no longer decide
    c.tx(c.fl.functions.renounceRole(H.REGULATOR_ROLE, H.addr(H.GOV)), H.GOV)
    assert c.call(c.fl.functions.hasRole(H.REGULATOR_ROLE, H.addr(H.GOV))) is False
