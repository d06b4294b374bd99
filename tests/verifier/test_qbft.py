"""Validator-sealed QBFT headers (docs/FORMAT.md §14) against the real Besu vector
(tests/assets/besu-qbft-block-7528.json) and headers sealed over anvil's real blocks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import rlp

from verifier import (
    ValidatorSet,
    eth_address,
    follow_validator_changes,
    parse_qbft_header,
    seal_qbft_header,
    verify_sealed_header,
)
from verifier._internal.keccak import keccak256
from verifier._qbft import qbft_extra_data, quorum
from verifier.errors import InvalidSealedHeader, InvalidValidatorSet

VECTOR = json.loads((Path(__file__).parent.parent / "assets" / "besu-qbft-block-7528.json").read_text())
HEADER = bytes.fromhex(VECTOR["sealedHeaderRlp"][2:])
EXPECTED = VECTOR["expected"]
PINNED = ValidatorSet(chain_id=1337, validators=tuple(EXPECTED["validators"]))
OUTSIDER = "0x" + "11" * 20


def _keys(tag: str, n: int) -> list[bytes]:
    return [hashlib.sha256(f"certledger/test-validator/{tag}/{i}".encode()).digest() for i in range(n)]


def _rebuild(header: bytes, *, seals=None, round_=None, validators=None, field=None) -> bytes:
    """The header with one part of it replaced, re-encoded canonically."""
    fields = rlp.decode(header)
    vanity, vals, vote, rnd, sl = rlp.decode(fields[12])
    if seals is not None:
        sl = seals
    if round_ is not None:
        rnd = round_
    if validators is not None:
        vals = validators
    fields[12] = rlp.encode([vanity, vals, vote, rnd, sl])
    if field is not None:
        fields[field[0]] = field[1]
    return rlp.encode(fields)


def _seals(header: bytes) -> list[bytes]:
    return list(rlp.decode(rlp.decode(header)[12])[4])


# -- the real Besu vector ------------------------------------------------------------------------
def test_real_besu_header_parses_to_the_published_fields():
    h = parse_qbft_header(HEADER)
    assert h.number == EXPECTED["number"]
    assert h.timestamp == EXPECTED["timestamp"]
    assert "0x" + h.state_root.hex() == EXPECTED["stateRoot"]
    assert h.round == EXPECTED["round"]
    assert list(h.validators) == EXPECTED["validators"]
    assert len(h.seals) == EXPECTED["committedSeals"]
    assert "0x" + h.commit_hash.hex() == EXPECTED["commitHash"]
    # The commit hash is the keccak of the published header-without-seals bytes.
    assert h.commit_hash == keccak256(bytes.fromhex(VECTOR["headerRlpWithoutCommittedSeals"][2:]))


def test_real_besu_header_is_accepted_with_three_of_four_seals():
    assert PINNED.threshold == 3
    h = verify_sealed_header(HEADER, PINNED)
    assert h.number == 7528


@pytest.mark.parametrize(
    ("n", "q"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 4), (6, 4), (7, 5), (10, 7), (100, 67)]
)
def test_quorum_is_besu_ceil_two_n_over_three(n, q):
    assert quorum(n) == q  # Util.fastDivCeiling(2n, 3)


def test_changed_seal_byte_is_refused():
    seals = _seals(HEADER)
    seals[1] = seals[1][:50] + bytes([seals[1][50] ^ 1]) + seals[1][51:]  # a byte of s
    with pytest.raises(
        InvalidSealedHeader,
        match="committed seal 1 recovers to 0x[0-9a-f]{40}, which is not a pinned validator",
    ):
        verify_sealed_header(_rebuild(HEADER, seals=seals), PINNED)


def test_validator_not_pinned_is_refused():
    signer0 = "0x647bfdd19655e51e69d35454ff3a92f8828e6302"  # sealed the block (seal order varies)
    pinned = ValidatorSet(1337, tuple(v if v != signer0 else OUTSIDER for v in EXPECTED["validators"]))
    with pytest.raises(InvalidSealedHeader, match=rf"recovers to {signer0}, which is not a pinned validator"):
        verify_sealed_header(HEADER, pinned)


def test_duplicated_seal_is_refused():
    seals = _seals(HEADER)
    with pytest.raises(
        InvalidSealedHeader,
        match=r"committed seals 0 and 3 are both from validator 0x[0-9a-f]{40} \(duplicate seal\)",
    ):
        verify_sealed_header(_rebuild(HEADER, seals=[*seals, seals[0]]), PINNED)
    # A duplicate cannot make up for a missing seal either.
    with pytest.raises(InvalidSealedHeader, match="duplicate seal"):
        verify_sealed_header(_rebuild(HEADER, seals=[seals[0], seals[1], seals[0]]), PINNED)


def test_only_two_of_four_seals_is_refused():
    seals = _seals(HEADER)
    with pytest.raises(
        InvalidSealedHeader, match=r"only 2 distinct validator seals on block 7528; 3 of 4 are needed"
    ):
        verify_sealed_header(_rebuild(HEADER, seals=seals[:2]), PINNED)
    with pytest.raises(InvalidSealedHeader, match=r"only 0 distinct"):
        verify_sealed_header(_rebuild(HEADER, seals=[]), PINNED)


def test_changed_state_root_is_refused():
    changed = bytes.fromhex(EXPECTED["stateRoot"][2:])
    changed = changed[:-1] + bytes([changed[-1] ^ 1])
    with pytest.raises(InvalidSealedHeader, match="committed seal 0 recovers to .* not a pinned validator"):
        verify_sealed_header(_rebuild(HEADER, field=(3, changed)), PINNED)


def test_changed_round_is_refused():
    for rnd in (b"", b"\x02", b"\x01\x00"):
        with pytest.raises(
            InvalidSealedHeader, match="committed seal 0 recovers to .* not a pinned validator"
        ):
            verify_sealed_header(_rebuild(HEADER, round_=rnd), PINNED)


@pytest.mark.parametrize("index", range(15))
def test_every_single_header_field_change_is_refused(index):
    fields = rlp.decode(HEADER)
    if index == 12:  # extraData: change its vanity (the other parts have their own tests)
        vanity, vals, vote, rnd, sl = rlp.decode(fields[12])
        changed = rlp.encode([b"\x01" + vanity[1:], vals, vote, rnd, sl])
    else:
        value = fields[index]
        changed = value[:-1] + bytes([value[-1] ^ 1]) if value else b"\x01"
        if index in (8, 11) and changed[:1] == b"\x00":
            changed = b"\x01" + changed[1:]
    with pytest.raises(InvalidSealedHeader, match="committed seal 0 recovers to .* not a pinned validator"):
        verify_sealed_header(rlp.encode([*fields[:index], changed, *fields[index + 1 :]]), PINNED)


@pytest.mark.parametrize("byte", range(65))
def test_every_seal_byte_change_is_refused(byte):
    seals = _seals(HEADER)
    seals[2] = seals[2][:byte] + bytes([seals[2][byte] ^ 0x01]) + seals[2][byte + 1 :]
    with pytest.raises(InvalidSealedHeader, match="committed seal 2"):
        verify_sealed_header(_rebuild(HEADER, seals=seals), PINNED)


def test_malformed_seals_are_refused_with_the_reason():
    seals = _seals(HEADER)
    cases = {
        "64 bytes, not 65": seals[0][:64],
        "recovery id 27 is not 0 or 1": seals[0][:64] + b"\x1b",
        "high-s signature": seals[0][:32]
        + (
            0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
            - int.from_bytes(seals[0][32:64], "big")
        ).to_bytes(32, "big")
        + bytes([seals[0][64] ^ 1]),
        "not a valid secp256k1 signature": bytes(64) + b"\x00",
    }
    for reason, bad in cases.items():
        with pytest.raises(InvalidSealedHeader, match=f"committed seal 0: {reason}"):
            verify_sealed_header(_rebuild(HEADER, seals=[bad, *seals[1:]]), PINNED)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h: h[:-1], "not an RLP block header"),
        (lambda h: rlp.encode(rlp.decode(h)[:14]), "at least 15"),
        (lambda h: _rebuild(h, field=(12, b"\x00\x01")), "extraData is not QBFT extra data"),
        (lambda h: _rebuild(h, field=(12, rlp.encode([b"x"] * 4))), "extraData is not QBFT extra data"),
        (lambda h: _rebuild(h, field=(0, b"\x00" * 31)), "parentHash is not 32 bytes"),
        (lambda h: _rebuild(h, field=(3, b"\x00" * 33)), "stateRoot is not 32 bytes"),
        (lambda h: _rebuild(h, validators=[b"\x01" * 19]), "validators is not a list of 20-byte"),
        (lambda h: _rebuild(h, round_=b"\x00\x01"), "round is not a canonical"),
        (lambda h: _rebuild(h, round_=b"\x01" * 5), "round is not a 32-bit"),
        (lambda h: _rebuild(h, round_=[b"\x01"]), "round is not a 32-bit"),
        (lambda h: _rebuild(h, seals=[[b"x"]]), "committed seals is not a list"),
        (lambda h: _rebuild(h, field=(8, b"\x00\x01")), "number is not a canonical"),
    ],
)
def test_malformed_headers_are_refused_with_the_reason(mutate, reason):
    with pytest.raises(InvalidSealedHeader, match=reason):
        verify_sealed_header(mutate(HEADER), PINNED)


# -- validator-set changes ---------------------------------------------------------------------
def _dev_block(number: int, parent: bytes, state_root: bytes) -> dict:
    return {
        "parentHash": "0x" + parent.hex(),
        "sha3Uncles": "0x" + "1d" * 32,
        "miner": "0x" + "00" * 20,
        "stateRoot": "0x" + state_root.hex(),
        "transactionsRoot": "0x" + "56" * 32,
        "receiptsRoot": "0x" + "56" * 32,
        "logsBloom": "0x" + "00" * 256,
        "difficulty": "0x0",
        "number": hex(number),
        "gasLimit": "0x1c9c380",
        "gasUsed": "0x0",
        "timestamp": hex(1_700_000_000 + number),
        "extraData": "0x",
        "mixHash": "0x" + "00" * 32,
        "nonce": "0x0000000000000000",
        "baseFeePerGas": "0x7",
    }


def _sealed_with_list(block: dict, signers: list[bytes], listed: list[str]) -> bytes:
    """A header sealed by ``signers`` whose extraData lists ``listed`` (a validator-set change)."""
    fields = rlp.decode(seal_qbft_header(block, signers))
    fields[12] = qbft_extra_data(sorted(listed), 0, None)
    commit = keccak256(rlp.encode(fields))
    from verifier._internal.suites import sign_digest_secp256k1

    seals = [(s := sign_digest_secp256k1(commit, k))[:64] + bytes([s[64] - 27]) for k in signers]
    fields[12] = qbft_extra_data(sorted(listed), 0, seals)
    return rlp.encode(fields)


def test_validator_set_change_is_refused_naming_the_change():
    keys = _keys("change", 4)
    old = ValidatorSet(7, tuple(eth_address(k) for k in keys))
    new_key = _keys("newcomer", 1)[0]
    listed = [eth_address(k) for k in keys[1:]] + [eth_address(new_key)]
    header = _sealed_with_list(_dev_block(10, bytes(32), b"\x22" * 32), keys, listed)
    with pytest.raises(
        InvalidSealedHeader,
        match=rf"validator set change at block 10: added {eth_address(new_key)}; removed {eth_address(keys[0])}",
    ):
        verify_sealed_header(header, old)


def test_validator_set_change_is_followed_through_sealed_headers():
    keys = _keys("follow", 4)
    newcomer = _keys("follow-new", 1)[0]
    pinned = ValidatorSet(7, tuple(eth_address(k) for k in keys))
    second = keys[1:] + [newcomer]
    # sealed by the four trusted validators (keys[0] seals the block that drops it): 4 of the old 4,
    # 3 of the new 4 — both quorums (docs/FORMAT.md §14.3)
    change = _sealed_with_list(
        _dev_block(10, bytes(32), b"\x22" * 32), keys, [eth_address(k) for k in second]
    )
    after = seal_qbft_header(_dev_block(11, b"\x33" * 32, b"\x44" * 32), second)
    trusted = follow_validator_changes([change], pinned)
    assert set(trusted.validators) == {eth_address(k) for k in second}
    assert verify_sealed_header(after, trusted).number == 11
    with pytest.raises(InvalidSealedHeader, match="validator set change at block 11|not a pinned validator"):
        verify_sealed_header(after, pinned)
    # The change itself must be sealed by a quorum of the set trusted before it.
    forged = _sealed_with_list(
        _dev_block(10, bytes(32), b"\x22" * 32), keys[:1] + [newcomer], [eth_address(newcomer)]
    )
    with pytest.raises(
        InvalidSealedHeader,
        match=r"validator-change header 0 \(block 10\): the validator set change "
        r"at block 10 \(added .*; removed .*\) is sealed by 1 of the 4 trusted validators; 3 are needed",
    ):
        follow_validator_changes([forged], pinned)
    too_few = _sealed_with_list(_dev_block(10, bytes(32), b"\x22" * 32), keys[:2], [eth_address(newcomer)])
    with pytest.raises(InvalidSealedHeader, match="sealed by 2 of the 4 trusted validators; 3 are needed"):
        follow_validator_changes([too_few], pinned)
    with pytest.raises(
        InvalidSealedHeader,
        match=r"validator-change header 1 \(block 10\): block 10 does not follow block 10",
    ):
        follow_validator_changes([change, change], pinned)


def test_a_rotation_in_two_votes_is_followed_add_then_remove():
    """OPERATIONS.md's rotation: vote the new validator in (4 → 5), then the old one out (5 → 4). Each
    change header is sealed by a quorum of the set before it and of the set it lists."""
    keys = _keys("rotate", 4)
    new = _keys("rotate-new", 1)[0]
    pinned = ValidatorSet(7, tuple(eth_address(k) for k in keys))
    five = keys + [new]
    final = keys[1:] + [new]
    add = _sealed_with_list(_dev_block(20, bytes(32), b"\x22" * 32), five[1:], [eth_address(k) for k in five])
    remove = _sealed_with_list(
        _dev_block(30, bytes(32), b"\x23" * 32), final, [eth_address(k) for k in final]
    )
    trusted = follow_validator_changes([add, remove], pinned)
    assert set(trusted.validators) == {eth_address(k) for k in final}
    later = _sealed_with_list(
        _dev_block(31, bytes(32), b"\x24" * 32), final[:3], [eth_address(k) for k in final]
    )
    assert verify_sealed_header(later, trusted).number == 31
    # the removal sealed by only 3 of the trusted 5 (⌈10/3⌉ = 4 needed)
    weak = _sealed_with_list(
        _dev_block(30, bytes(32), b"\x23" * 32), final[:3], [eth_address(k) for k in final]
    )
    with pytest.raises(
        InvalidSealedHeader,
        match=r"validator-change header 1 \(block 30\): the validator set change at "
        rf"block 30 \(removed {eth_address(keys[0])}\) is sealed by 3 of the 5 trusted validators; 4 are needed",
    ):
        follow_validator_changes([add, weak], pinned)
    # the removal header alone also suffices: three of the pinned four (a quorum) sealed it
    assert follow_validator_changes([remove], pinned) == trusted
    # but not when only two of the pinned four are among its seals
    two_old = _sealed_with_list(
        _dev_block(30, bytes(32), b"\x23" * 32), [*keys[1:3], new], [eth_address(k) for k in final]
    )
    with pytest.raises(
        InvalidSealedHeader,
        match=rf"added {eth_address(new)}; removed {eth_address(keys[0])}\) is sealed by 2 of the 4",
    ):
        follow_validator_changes([two_old], pinned)


# -- the development chain: anvil's real blocks, sealed by test validator keys ----------------------
def test_anvil_block_sealed_by_dev_validators_verifies(chain):
    keys = _keys("dev", 4)
    raw = chain.w3.provider.make_request("eth_getBlockByNumber", ["latest", False])["result"]
    header = seal_qbft_header(raw, keys, round=2)
    validators = ValidatorSet(chain.chain_id, tuple(eth_address(k) for k in keys))
    h = verify_sealed_header(header, validators)
    assert "0x" + h.state_root.hex() == raw["stateRoot"]
    assert h.number == int(raw["number"], 16) and h.timestamp == int(raw["timestamp"], 16)
    assert "0x" + h.parent_hash.hex() == raw["parentHash"] and h.round == 2
    # Only 2 of the 4 dev validators seal: refused.
    fields = rlp.decode(header)
    v, vals, vote, rnd, seals = rlp.decode(fields[12])
    fields[12] = rlp.encode([v, vals, vote, rnd, seals[:2]])
    with pytest.raises(InvalidSealedHeader, match="only 2 distinct validator seals"):
        verify_sealed_header(rlp.encode(fields), validators)


# -- the validators file (docs/FORMAT.md §14.2) -----------------------------------------------------
def test_validators_file_round_trips(tmp_path):
    path = tmp_path / "validators.json"
    doc = PINNED.to_json()
    doc["validators"] = [v.upper().replace("0X", "0x") for v in reversed(doc["validators"])]
    path.write_text(json.dumps(doc))
    loaded = ValidatorSet.load(path)
    assert loaded == PINNED and loaded.threshold == 3


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{", "not valid JSON"),
        ("[]", "a JSON object"),
        ('{"type": "x", "version": 1, "chainId": 1, "validators": []}', "not a validators file"),
        ('{"type": "certledger-validators", "version": 2, "chainId": 1, "validators": []}', "version 2"),
        (
            '{"type": "certledger-validators", "version": 1, "chainId": 0, "validators": ["0x'
            + "11" * 20
            + '"]}',
            "chainId",
        ),
        (
            '{"type": "certledger-validators", "version": 1, "chainId": true, "validators": ["0x'
            + "11" * 20
            + '"]}',
            "chainId",
        ),
        ('{"type": "certledger-validators", "version": 1, "chainId": 1, "validators": []}', "empty"),
        (
            '{"type": "certledger-validators", "version": 1, "chainId": 1, "validators": "0x"}',
            "list of addresses",
        ),
        ('{"type": "certledger-validators", "version": 1, "chainId": 1, "validators": ["0x11"]}', "20 bytes"),
        (
            '{"type": "certledger-validators", "version": 1, "chainId": 1, "validators": ["0x'
            + "zz" * 20
            + '"]}',
            "20 bytes",
        ),
        (
            '{"type": "certledger-validators", "version": 1, "chainId": 1, "validators": ["0x'
            + "11" * 20
            + '", "0x'
            + "11" * 20
            + '"]}',
            "twice",
        ),
    ],
)
def test_bad_validators_files_are_refused(tmp_path, content, reason):
    path = tmp_path / "v.json"
    path.write_text(content)
    with pytest.raises(InvalidValidatorSet, match=reason):
        ValidatorSet.load(path)


def test_missing_validators_file_is_refused(tmp_path):
    with pytest.raises(InvalidValidatorSet, match="cannot read the validators file"):
        ValidatorSet.load(tmp_path / "nope.json")


def test_memoised_acceptance_is_per_header_and_validator_set():
    verify_sealed_header(HEADER, PINNED)
    verify_sealed_header(HEADER, PINNED)  # the cached answer
    other = ValidatorSet(1337, tuple(v if i else OUTSIDER for i, v in enumerate(EXPECTED["validators"])))
    with pytest.raises(InvalidSealedHeader):
        verify_sealed_header(HEADER, other)  # another set: checked afresh
    with pytest.raises(InvalidSealedHeader):
        verify_sealed_header(bytearray(HEADER[:-1]) + b"\x01", PINNED)
