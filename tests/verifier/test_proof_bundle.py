"""A trust bundle that carries proofs for many credentials (docs/FORMAT.md §16), against a real anvil's
``eth_getProof``: in validator mode the bank needs nothing but the pinned validators. The operator
key is assumed stolen throughout: every forged bundle below is re-signed with it, so only the sealed
evidence can refuse it — and every single-field change of the new members is refused, the failing
check named."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import rlp

from tests.support.factory import AT
from tests.support.proofs import ISSUER_NAME, OPERATOR_KEY, _leaf, _trust
from tests.support.verify_cli import run
from verifier import (
    TrustBundle,
    ValidatorHeaderTrust,
    ValidatorPinnedTrust,
    ValidatorSet,
    Verifier,
    attach_bundle_proofs,
    eth_address,
    fetch_sealed_proof_package,
    open_bundle_proofs,
    seal_qbft_header,
    sign_trust_bundle,
)
from verifier._internal.keccak import keccak256
from verifier._internal.suites import sign_digest_secp256k1
from verifier._qbft import qbft_extra_data
from verifier.errors import InvalidProofPackage, InvalidSealedHeader, MalformedBundle

pytestmark = pytest.mark.chain
VKEYS = [bytes([0x31 + i]) * 32 for i in range(4)]
PINNED_ADDRS = tuple(eth_address(k) for k in VKEYS)
NEWCOMER = b"\x3a" * 32


def _pinned(chain_id: int) -> ValidatorSet:
    return ValidatorSet(chain_id, PINNED_ADDRS)


def _forged(anvil, deployed, copies, root, *, keys=VKEYS, changes=()) -> dict[str, Any]:
    """The operator's bundle, knowing no anchor and no revocation, carrying a package sealed by ``keys``
    for all six credentials, re-signed with the (stolen) operator key."""
    trust = _trust(anvil, deployed)
    package = fetch_sealed_proof_package(
        anvil.w3, deployed.anchors.address, [(root, _leaf(c)) for c in copies], validator_keys=keys
    )
    return sign_trust_bundle(
        attach_bundle_proofs(trust.data, package, validator_changes=changes), OPERATOR_KEY
    )


def _verify_all(bundle: dict[str, Any], copies, pinned: ValidatorSet):
    b = TrustBundle.load(bundle)
    proofs = open_bundle_proofs(b, pinned)
    verifier = Verifier(
        trust=ValidatorPinnedTrust(b, proofs.validators),
        header_trust=ValidatorHeaderTrust(proofs.validators),
        proven_only=True,
        proof_package=proofs.package,
    )
    return proofs, [verifier.verify(c, at=AT) for c in copies]


@pytest.fixture(scope="module")
def forged(anvil, deployed, batch):
    copies, root = batch
    return _forged(anvil, deployed, copies, root)


def test_the_bundles_sealed_proofs_outrank_what_the_operator_signed(anvil, deployed, batch, forged):
    copies, _ = batch
    assert TrustBundle.load(forged).anchor(bytes.fromhex(copies[0]["proof"]["merkleRoot"][2:])) is None
    proofs, results = _verify_all(forged, copies, _pinned(deployed.chain_id))
    assert proofs.followed == () and proofs.header is not None
    assert proofs.header.attested_by == "4 of 4 pinned validators"
    assert "headerSignature" not in forged["proofPackage"]  # nothing of the operator's in the evidence
    assert [r.valid for r in results] == [True, False, False, True, True, True]
    assert results[1].check("status").reason.startswith("revoked on ")
    assert results[1].check("status").reason.endswith("reason superseded")
    assert results[2].check("status").reason.startswith("suspended on ")
    assert "proven from chain state attested by 4 of 4 pinned validators" in results[0].check("status").reason


def test_without_proofs_nothing_is_proven(anvil, deployed, batch, forged):
    copies, _ = batch
    stripped = sign_trust_bundle({k: v for k, v in forged.items() if k != "proofPackage"}, OPERATOR_KEY)
    proofs, results = _verify_all(stripped, copies, _pinned(deployed.chain_id))
    assert proofs.package is None and not any(r.valid for r in results)
    assert all("no proof package" in r.check("anchor").reason for r in results)


def test_a_header_sealed_by_strangers_is_refused(anvil, deployed, batch):
    copies, root = batch
    strangers = [bytes([0x51 + i]) * 32 for i in range(4)]
    bundle = _forged(anvil, deployed, copies, root, keys=strangers)
    with pytest.raises(
        InvalidProofPackage,
        match="the trust bundle's proofPackage: blockHeader: validator set change at block [0-9]+: added 0x",
    ):
        _verify_all(bundle, copies, _pinned(deployed.chain_id))
    # listing the pinned validators but sealed by strangers
    header = bytes.fromhex(bundle["proofPackage"]["blockHeader"][2:])
    bundle["proofPackage"]["blockHeader"] = "0x" + _reseal(header, strangers, list(PINNED_ADDRS)).hex()
    with pytest.raises(
        InvalidProofPackage,
        match="the trust bundle's proofPackage: blockHeader: committed seal 0 "
        "recovers to 0x[0-9a-f]{40}, which is not a pinned validator",
    ):
        _verify_all(sign_trust_bundle(bundle, OPERATOR_KEY), copies, _pinned(deployed.chain_id))


def _flip(hex_text: str, at: int) -> str:
    raw = bytearray(bytes.fromhex(hex_text[2:]))
    raw[at % len(raw)] ^= 0x01
    return "0x" + raw.hex()


def _mutations(package: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(name, mutate(package), expected failing member) for single-field changes of the package."""
    header = bytes.fromhex(package["blockHeader"][2:])
    fields = rlp.decode(header)
    out: list[tuple[str, Any, str]] = [
        ("type", lambda p: p.__setitem__("type", "CertledgerProofBundle"), "type:"),
        ("version", lambda p: p.__setitem__("version", 2), "version:"),
        ("chainId", lambda p: p.__setitem__("chainId", p["chainId"] + 1), "chainId:"),
        ("anchorRegistry", lambda p: p.__setitem__("anchorRegistry", "0x" + "12" * 20), "anchorRegistry:"),
        ("extra member", lambda p: p.__setitem__("note", "x"), "unknown member"),
        (
            "accountProof node",
            lambda p: p["accountProof"].__setitem__(0, _flip(p["accountProof"][0], 40)),
            "accountProof:",
        ),
        ("accountProof dropped", lambda p: p["accountProof"].pop(), "accountProof:"),
        (
            "header seal byte",
            lambda p: p.__setitem__("blockHeader", _flip(p["blockHeader"], len(header) - 5)),
            "blockHeader:",
        ),
    ]
    for i in (3, 8, 11):  # stateRoot, number, timestamp: the seals no longer recover to the validators

        def change(p: dict[str, Any], i: int = i) -> None:
            f = list(rlp.decode(bytes.fromhex(p["blockHeader"][2:])))
            f[i] = (
                (int.from_bytes(f[i], "big") + 1).to_bytes(max(1, len(f[i])), "big")
                if i != 3
                else b"\x99" * 32
            )
            p["blockHeader"] = "0x" + rlp.encode(f).hex()

        out.append((f"header field {i}", change, "blockHeader:"))
    assert len(fields) >= 15
    return out


def test_every_single_field_change_of_the_bundles_package_is_refused(deployed, batch, forged):
    copies, _ = batch
    for name, mutate, member in _mutations(forged["proofPackage"]):
        bundle = copy.deepcopy(forged)
        mutate(bundle["proofPackage"])
        resigned = sign_trust_bundle(bundle, OPERATOR_KEY)  # the stolen key signs anything
        with pytest.raises(InvalidProofPackage, match=f"the trust bundle's proofPackage: .*{member}") as exc:
            _verify_all(resigned, copies, _pinned(deployed.chain_id))
        assert member in str(exc.value), name


def test_every_storage_node_of_the_bundles_package_is_needed(deployed, batch, forged):
    """Drop or alter any one pooled storage node: some credential's anchor or status is no longer proven,
    and its check names storageProof; the others still verify as before."""
    copies, _ = batch
    pool = forged["proofPackage"]["storageProof"]
    for i in range(len(pool)):
        for how in ("drop", "alter"):
            bundle = copy.deepcopy(forged)
            nodes = bundle["proofPackage"]["storageProof"]
            if how == "drop":
                nodes.pop(i)
            else:
                nodes[i] = _flip(nodes[i], len(nodes[i]) // 4)
            _, results = _verify_all(
                sign_trust_bundle(bundle, OPERATOR_KEY), copies, _pinned(deployed.chain_id)
            )
            failed = [
                r
                for r in results
                if any("storageProof" in c.reason for c in r.checks if c.status == "failed")
            ]
            assert failed, (i, how)
            assert not any(r.valid for r in failed)
            assert [r.valid for r in results if r not in failed] == [
                v for r, v in zip(results, [True, False, False, True, True, True]) if r not in failed
            ]


def test_malformed_bundle_members_are_refused(deployed, batch, forged):
    copies, _ = batch
    for value, match in (("0xzz", "proofPackage must be an object"),):
        bundle = sign_trust_bundle({**forged, "proofPackage": value}, OPERATOR_KEY)
        with pytest.raises(MalformedBundle, match=match):
            _verify_all(bundle, copies, _pinned(deployed.chain_id))
    for value, match in (
        ("0x00", "validatorChanges must be a list"),
        (["00"], r"validatorChanges\[0\] is not 0x-hex"),
        (["0x"] * 257, "at most 256"),
    ):
        bundle = sign_trust_bundle({**forged, "validatorChanges": value}, OPERATOR_KEY)
        with pytest.raises(MalformedBundle, match=match):
            _verify_all(bundle, copies, _pinned(deployed.chain_id))


# -- validator-set changes carried by the bundle (FORMAT.md §14.3, §16) ---------------------------------


def _change_header(
    anvil, signers: list[bytes], listed: list[str], *, vote: tuple[bytes, bytes] | None = None
) -> bytes:
    """anvil's block 1 wrapped in a QBFT header listing ``listed`` (and carrying ``vote``), sealed by ``signers``."""
    block = anvil.w3.provider.make_request("eth_getBlockByNumber", ["0x1", False])["result"]
    return _reseal(seal_qbft_header(block, signers), signers, listed, vote=vote)


def _reseal(
    header: bytes, signers: list[bytes], listed: list[str], *, vote: tuple[bytes, bytes] | None = None
) -> bytes:
    fields = rlp.decode(header)
    votes = [vote[0], vote[1]] if vote else ()
    fields[12] = qbft_extra_data(sorted(listed), 0, None, vote=votes)
    commit = keccak256(rlp.encode(fields))
    seals = [(s := sign_digest_secp256k1(commit, k))[:64] + bytes([s[64] - 27]) for k in signers]
    fields[12] = qbft_extra_data(sorted(listed), 0, seals, vote=votes)
    return rlp.encode(fields)


def test_a_validator_rotation_is_followed_from_the_pinned_set(anvil, deployed, batch):
    """Rotation by QBFT votes: the newcomer is voted in (block 1's header, sealed by all four), then the
    package is sealed by the new set. Without the change header the package is refused naming the change."""
    copies, root = batch
    new_keys = VKEYS[1:] + [NEWCOMER]
    listed = [eth_address(k) for k in new_keys]
    change = _change_header(anvil, VKEYS, listed, vote=(bytes.fromhex(eth_address(NEWCOMER)[2:]), b"\xff"))
    bundle = _forged(anvil, deployed, copies, root, keys=new_keys, changes=[change])
    proofs, results = _verify_all(bundle, copies, _pinned(deployed.chain_id))
    assert proofs.followed == (1,) and set(proofs.validators.validators) == set(listed)
    assert [r.valid for r in results] == [True, False, False, True, True, True]
    # a bank that already pins the new set needs no change headers (and is not tripped by them)
    proofs, _ = _verify_all(bundle, copies, ValidatorSet(deployed.chain_id, tuple(listed)))
    assert proofs.followed == ()
    # without the change header: refused, naming the change
    bare = sign_trust_bundle({k: v for k, v in bundle.items() if k != "validatorChanges"}, OPERATOR_KEY)
    with pytest.raises(
        InvalidProofPackage,
        match=rf"validator set change at block \d+: added {eth_address(NEWCOMER)}; "
        rf"removed {eth_address(VKEYS[0])}",
    ):
        _verify_all(bare, copies, _pinned(deployed.chain_id))


@pytest.mark.parametrize(
    "signers,listed,match",
    [
        # the newcomer and one bureau vote the whole set out: 1 of the 4 trusted validators
        (
            lambda: [VKEYS[0], NEWCOMER],
            lambda: [eth_address(NEWCOMER)],
            "sealed by 1 of the 4 trusted validators; 3 are needed",
        ),
        # an honest-looking add with too few seals of the new five
        (
            lambda: VKEYS[:3],
            lambda: [*PINNED_ADDRS, eth_address(NEWCOMER)],
            "sealed by 3 of the 5 validators it lists; 4 are needed",
        ),
        # a seal from neither set
        (
            lambda: [*VKEYS[1:], b"\x66" * 32],
            lambda: [eth_address(k) for k in VKEYS[1:] + [NEWCOMER]],
            "neither a trusted validator nor one the header lists",
        ),
    ],
)
def test_a_forged_validator_change_is_refused_naming_it(anvil, deployed, batch, signers, listed, match):
    copies, root = batch
    change = _change_header(anvil, signers(), listed())
    bundle = _forged(anvil, deployed, copies, root, keys=VKEYS[1:] + [NEWCOMER], changes=[change])
    with pytest.raises(
        InvalidSealedHeader,
        match=rf"the trust bundle's validatorChanges: validator-change header 0 "
        rf"\(block 1\): .*{match}",
    ):
        _verify_all(bundle, copies, _pinned(deployed.chain_id))


def test_every_byte_change_of_a_change_header_is_refused(anvil, deployed, batch):
    copies, root = batch
    new_keys = VKEYS[1:] + [NEWCOMER]
    change = _change_header(anvil, VKEYS, [eth_address(k) for k in new_keys])
    bundle = _forged(anvil, deployed, copies, root, keys=new_keys, changes=[change])
    for at in range(len(change)):  # every byte
        tampered = copy.deepcopy(bundle)
        tampered["validatorChanges"][0] = _flip(tampered["validatorChanges"][0], at)
        with pytest.raises(
            (InvalidSealedHeader, InvalidProofPackage), match="validatorChanges|validator set change"
        ):
            _verify_all(sign_trust_bundle(tampered, OPERATOR_KEY), copies, _pinned(deployed.chain_id))


# -- certledger-verify --bundle B --validators V ---------------------------------------------------------


def test_cli_validator_mode_uses_the_bundles_proofs_and_their_age(anvil, deployed, batch, forged, tmp_path):
    copies, _ = batch
    for i in (0, 1):
        (tmp_path / f"c{i}.json").write_text(json.dumps(copies[i], ensure_ascii=False), encoding="utf-8")
    (tmp_path / "bundle.json").write_text(json.dumps(forged))
    (tmp_path / "v.json").write_text(json.dumps(_pinned(deployed.chain_id).to_json()))
    base = ["--bundle", str(tmp_path / "bundle.json"), "--validators", str(tmp_path / "v.json")]
    ok = run(str(tmp_path / "c0.json"), *base, "--at", AT, "--json")
    assert ok.returncode == 0, ok.stdout.decode() + ok.stderr.decode()
    assert "the bundle proves anchors and status as of block" in ok.stderr.decode()
    header_ts = TrustBundle.load(forged).data["proofPackage"]["blockHeader"]
    as_of = json.loads(ok.stdout.decode())["evidenceAsOf"]
    ts = int.from_bytes(rlp.decode(bytes.fromhex(header_ts[2:]))[11], "big")
    from datetime import UTC, datetime

    assert as_of == datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # the sealed header's time
    bad = run(str(tmp_path / "c1.json"), *base, "--at", AT, "--json")
    assert bad.returncode == 1
    status = [c for c in json.loads(bad.stdout.decode())["checks"] if c["name"] == "status"][0]
    assert status["status"] == "failed" and status["reason"].startswith("revoked on ")
    # the operator writes a fresh block time over an old sealed package: the sealed header's age decides
    later = ts + 3 * 86400
    fresh_looking = copy.deepcopy(forged)
    fresh_looking["block"]["timestamp"] = later - 60
    (tmp_path / "stale.json").write_text(json.dumps(sign_trust_bundle(fresh_looking, OPERATOR_KEY)))
    at = datetime.fromtimestamp(later, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    stale = run(
        str(tmp_path / "c0.json"),
        "--bundle",
        str(tmp_path / "stale.json"),
        "--validators",
        str(tmp_path / "v.json"),
        "--at",
        at,
    )
    assert stale.returncode == 2 and "trust bundle's sealed proof package is as of" in stale.stderr.decode()


def test_a_besu_style_block_gives_its_sealed_header(anvil):
    """A Besu QBFT node serves extraData with the seals in it, and a block hash computed without them
    (round 0): ``sealed_header_from_block`` rebuilds the sealed header and checks it Besu's way. (Made
    here from anvil's block and the test keys: no real Besu block with its hash was available.)"""
    from verifier import parse_qbft_header, sealed_header_from_block
    from verifier._anchor_proof import header_rlp_from_block
    from verifier.errors import InvalidAnchorProof

    block = anvil.w3.provider.make_request("eth_getBlockByNumber", ["0x1", False])["result"]
    sealed = seal_qbft_header(block, VKEYS, round=1)
    parsed = parse_qbft_header(sealed)
    besu = {**block, "extraData": "0x" + parsed.fields[12].hex(), "hash": "0x" + parsed.block_hash.hex()}
    assert sealed_header_from_block(besu) == sealed
    with pytest.raises(InvalidAnchorProof, match="does not hash to the block hash"):
        header_rlp_from_block(besu)  # the plain Ethereum check refuses a sealed header
    with pytest.raises(InvalidSealedHeader, match="seals removed and round 0"):
        sealed_header_from_block({**besu, "hash": "0x" + keccak256(sealed).hex()})


# -- issuer records proven from the IssuerRegistry's storage (FORMAT.md §16.1) ---------------------------


def _with_issuer_proof(anvil, deployed, bundle: dict[str, Any], ids=(1,)) -> dict[str, Any]:
    from verifier import fetch_issuer_proof

    number = int.from_bytes(rlp.decode(bytes.fromhex(bundle["proofPackage"]["blockHeader"][2:]))[8], "big")
    proof = fetch_issuer_proof(anvil.w3, deployed.issuers.address, list(ids), number)
    return sign_trust_bundle(
        attach_bundle_proofs(bundle, bundle["proofPackage"], issuer_proof=proof), OPERATOR_KEY
    )


def test_issuer_records_are_proven_from_the_issuer_registry(anvil, deployed, batch, forged):
    from tests.support.contracts import OTHER_KEY
    from verifier import RpcTrust, sm2_public_key
    from verifier._issuer_proof import ProvenIssuerTrust

    copies, root = batch
    # a second issuer whose name and SM2 key are long storage strings (data slots at keccak(slot) + k)
    long_name = "广东省政务服务和数据管理局（数据资产登记中心，第二签发机构）"
    second = deployed.register_issuer(
        OTHER_KEY, long_name, "11440000MB2C93176P", [3], suite=1, sm2=sm2_public_key(OTHER_KEY)
    )
    fresh = _forged(anvil, deployed, copies, root)
    both = _with_issuer_proof(anvil, deployed, fresh, ids=(1, second))
    proofs = open_bundle_proofs(TrustBundle.load(both), _pinned(deployed.chain_id))
    rpc = RpcTrust(anvil.url, deployed.manifest())
    for issuer_id in (1, second):
        proven, on_chain = proofs.issuers.issuer(issuer_id), rpc.issuer(issuer_id)
        assert proven is not None
        for field in (
            "id",
            "name",
            "uscc",
            "suite",
            "status",
            "active_from",
            "active_until",
            "credential_types",
            "keys",
        ):
            assert getattr(proven, field) == getattr(on_chain, field), (issuer_id, field)
    assert proofs.issuers.issuer(second).name == long_name and len(long_name.encode()) > 31
    assert len(proofs.issuers.issuer(second).keys[1].sm2_public_key) == 64
    bundle = _with_issuer_proof(anvil, deployed, forged)
    # the thief renames the issuer and swaps its key account in the signed records: nothing proven changes
    lie = copy.deepcopy(bundle)
    lie["issuers"][0]["name"] = "冒名机构"
    lie["issuers"][0]["keys"][0]["account"] = eth_address(OPERATOR_KEY)
    lie = sign_trust_bundle(lie, OPERATOR_KEY)
    b = TrustBundle.load(lie)
    assert not Verifier(trust=b).verify(copies[0], at=AT).valid  # bundle mode believes the lie
    proofs = open_bundle_proofs(b, _pinned(deployed.chain_id))
    trust = ProvenIssuerTrust(ValidatorPinnedTrust(b, proofs.validators), proofs.issuers)
    verifier = Verifier(
        trust=trust,
        header_trust=ValidatorHeaderTrust(proofs.validators),
        proven_only=True,
        proof_package=proofs.package,
    )
    results = [verifier.verify(c, at=AT) for c in copies]
    assert [r.valid for r in results] == [True, False, False, True, True, True]
    assert ISSUER_NAME in results[0].check("issuer").reason
    # an issuer the proof does not cover is not believed either
    assert trust.issuer(7) is None


def test_every_change_to_the_issuer_proof_is_refused(anvil, deployed, batch, forged):
    from verifier._issuer_proof import ProvenIssuerTrust

    copies, _ = batch
    bundle = _with_issuer_proof(anvil, deployed, forged)
    nodes = bundle["issuerProof"]["storageProof"]
    for i in range(len(nodes)):
        t = copy.deepcopy(bundle)
        t["issuerProof"]["storageProof"][i] = _flip(nodes[i], len(nodes[i]) // 3)
        b = TrustBundle.load(sign_trust_bundle(t, OPERATOR_KEY))
        proofs = open_bundle_proofs(b, _pinned(deployed.chain_id))
        with pytest.raises(InvalidProofPackage, match="issuerProof: storageProof"):
            proofs.issuers.issuer(1)
        trust = ProvenIssuerTrust(ValidatorPinnedTrust(b, proofs.validators), proofs.issuers)
        result = Verifier(
            trust=trust,
            header_trust=ValidatorHeaderTrust(proofs.validators),
            proven_only=True,
            proof_package=proofs.package,
        ).verify(copies[0], at=AT)
        assert result.check("issuer").status == "failed", i
    for mutate, match in (
        (
            lambda p: p["accountProof"].__setitem__(0, _flip(p["accountProof"][0], 40)),
            "issuerProof: accountProof",
        ),
        (lambda p: p.__setitem__("extra", 1), "issuerProof: must be an object"),
        (lambda p: p.pop("storageProof"), "issuerProof: must be an object"),
    ):
        t = copy.deepcopy(bundle)
        mutate(t["issuerProof"])
        with pytest.raises(InvalidProofPackage, match=match):
            open_bundle_proofs(
                TrustBundle.load(sign_trust_bundle(t, OPERATOR_KEY)), _pinned(deployed.chain_id)
            )


def test_cli_validator_mode_takes_issuer_records_from_the_issuer_proof(
    anvil, deployed, batch, forged, tmp_path
):
    copies, _ = batch
    lie = copy.deepcopy(_with_issuer_proof(anvil, deployed, forged))
    lie["issuers"][0]["name"] = "冒名机构"  # the operator's word; the proof says otherwise
    (tmp_path / "lie.json").write_text(json.dumps(sign_trust_bundle(lie, OPERATOR_KEY)))
    (tmp_path / "c0.json").write_text(json.dumps(copies[0], ensure_ascii=False), encoding="utf-8")
    (tmp_path / "v.json").write_text(json.dumps(_pinned(deployed.chain_id).to_json()))
    ok = run(
        str(tmp_path / "c0.json"),
        "--bundle",
        str(tmp_path / "lie.json"),
        "--validators",
        str(tmp_path / "v.json"),
        "--at",
        AT,
    )
    assert ok.returncode == 0, ok.stdout.decode() + ok.stderr.decode()
    out = ok.stdout.decode()
    assert "anchors and status and issuer records as of block" in out and ISSUER_NAME in out
    bundle_mode = run(str(tmp_path / "c0.json"), "--bundle", str(tmp_path / "lie.json"), "--at", AT)
    assert bundle_mode.returncode == 1  # without the validators the signed lie is believed


def test_cli_refuses_a_carried_package_older_than_the_maximum_age(anvil, deployed, batch, tmp_path):
    """A holder keeps a sealed package from before its revocation: in validator mode a package's status is
    only as fresh as its sealed header, so the maximum age applies to it (FORMAT.md §15)."""
    from datetime import UTC, datetime

    copies, root = batch
    holder = copy.deepcopy(copies[0])
    holder["proof"]["proofPackage"] = fetch_sealed_proof_package(
        anvil.w3, deployed.anchors.address, [(root, _leaf(copies[0]))], validator_keys=VKEYS
    )
    ts = int.from_bytes(
        rlp.decode(bytes.fromhex(holder["proof"]["proofPackage"]["blockHeader"][2:]))[11], "big"
    )
    trust = _trust(anvil, deployed)
    later = ts + 2 * 86400
    fresh_looking = sign_trust_bundle(
        {**trust.data, "block": {**trust.data["block"], "timestamp": later - 60}}, OPERATOR_KEY
    )
    (tmp_path / "b.json").write_text(json.dumps(fresh_looking))
    (tmp_path / "h.json").write_text(json.dumps(holder, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "v.json").write_text(json.dumps(_pinned(deployed.chain_id).to_json()))

    def at(t: int) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    base = [
        str(tmp_path / "h.json"),
        "--bundle",
        str(tmp_path / "b.json"),
        "--validators",
        str(tmp_path / "v.json"),
        "--json",
    ]
    stale = run(*base, "--at", at(later))
    assert stale.returncode == 1, stale.stdout.decode() + stale.stderr.decode()
    anchor = [c for c in json.loads(stale.stdout.decode())["checks"] if c["name"] == "anchor"][0]
    assert anchor["status"] == "failed" and "older than the maximum age allows" in anchor["reason"]
    allowed = run(*base, "--at", at(later), "--max-age", "3d")  # a looser policy, stated by the bank
    assert allowed.returncode == 0, allowed.stdout.decode() + allowed.stderr.decode()
    fresh = run(*base, "--at", at(ts + 3600))
    assert fresh.returncode == 0, fresh.stdout.decode() + fresh.stderr.decode()
