"""QBFT committed seals (FORMAT.md §14) against a real Besu header, and every refusal named."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
import rlp

from verifier import ValidatorSet, follow_validator_changes, parse_qbft_header, seal_qbft_header, verify_sealed_header
from verifier._qbft import EXTRA_DATA_INDEX, quorum
from verifier.errors import InvalidSealedHeader

VECTOR = json.loads((Path(__file__).resolve().parents[1] / "assets" / "besu-qbft-block-7528.json").read_text())
SEALED = bytes.fromhex(VECTOR["sealedHeaderRlp"][2:])
EXPECTED = VECTOR["expected"]
PINNED = ValidatorSet(1337, tuple(EXPECTED["validators"]))


def _rebuild(mutate) -> bytes:
    """The vector with its fields / extraData changed by ``mutate(fields, extra)``."""
    fields = rlp.decode(SEALED)
    extra = rlp.decode(fields[EXTRA_DATA_INDEX])
    mutate(fields, extra)
    fields[EXTRA_DATA_INDEX] = rlp.encode(extra)
    return rlp.encode(fields)


def test_the_real_besu_header_is_accepted_with_3_seals_of_4():
    header = verify_sealed_header(SEALED, PINNED)
    assert header.number == EXPECTED["number"] == 7528
    assert header.timestamp == EXPECTED["timestamp"]
    assert "0x" + header.state_root.hex() == EXPECTED["stateRoot"]
    assert header.round == EXPECTED["round"] == 1
    assert list(header.validators) == EXPECTED["validators"]
    assert len(header.seals) == EXPECTED["committedSeals"] == 3
    assert "0x" + header.commit_hash.hex() == EXPECTED["commitHash"]
    # the commit hash is keccak of the header without committed seals, as the vector gives it
    from verifier._internal.keccak import keccak256

    assert keccak256(bytes.fromhex(VECTOR["headerRlpWithoutCommittedSeals"][2:])) == header.commit_hash
    assert quorum(4) == 3 and quorum(3) == 2 and quorum(7) == 5 and quorum(1) == 1


def _flip(seal: bytes, i: int) -> bytes:
    return seal[:i] + bytes([seal[i] ^ 1]) + seal[i + 1:]


@pytest.mark.parametrize("name,mutate,reason", [
    ("a changed seal byte", lambda f, e: e[4].__setitem__(0, _flip(e[4][0], 5)), "seal 0"),
    ("a duplicated seal", lambda f, e: e[4].__setitem__(1, e[4][0]), "repeats"),
    ("only 2 of 4 seals", lambda f, e: e[4].pop(), "has 2 committed seal(s) of 4 validators; a quorum is 3"),
    ("a changed stateRoot", lambda f, e: f.__setitem__(3, b"\x11" * 32), "seal"),
    ("a changed round", lambda f, e: e.__setitem__(3, b"\x02"), "seal"),
    ("a changed number", lambda f, e: f.__setitem__(8, (7529).to_bytes(2, "big")), "seal"),
    ("a changed timestamp", lambda f, e: f.__setitem__(11, (1715495308).to_bytes(4, "big")), "seal"),
    ("a changed parentHash", lambda f, e: f.__setitem__(0, b"\x22" * 32), "seal"),
    ("a changed vanity", lambda f, e: e.__setitem__(0, b"\x01" * 32), "seal"),
    ("a vote added", lambda f, e: e.__setitem__(2, [b"\x33" * 20, b"\x01"]), "seal"),
    ("a high-s seal", lambda f, e: e[4].__setitem__(0, e[4][0][:32] + (
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141 - int.from_bytes(e[4][0][32:64], "big")
    ).to_bytes(32, "big") + bytes([e[4][0][64] ^ 1])), "seal 0"),
    ("a seal with v = 27", lambda f, e: e[4].__setitem__(0, e[4][0][:64] + bytes([e[4][0][64] + 27])), "seal 0"),
])
def test_each_tampering_is_refused_with_its_reason(name, mutate, reason):
    with pytest.raises(InvalidSealedHeader, match=reason.replace("(", r"\(").replace(")", r"\)")):
        verify_sealed_header(_rebuild(mutate), PINNED)


def test_a_validator_not_pinned_is_refused():
    other = ValidatorSet(1337, (*EXPECTED["validators"][:3], "0x" + "44" * 20))
    with pytest.raises(InvalidSealedHeader, match="another validator set than the pinned one"):
        verify_sealed_header(SEALED, other)
    # and a seal by a key outside the set, in a header that names the pinned set
    outsider = secrets.token_bytes(32)
    from coincurve import PrivateKey

    def add_foreign_seal(f, e):
        e[4][2] = PrivateKey(outsider).sign_recoverable(parse_qbft_header(SEALED).commit_hash, hasher=None)

    with pytest.raises(InvalidSealedHeader, match="not a pinned validator"):
        verify_sealed_header(_rebuild(add_foreign_seal), PINNED)


@pytest.mark.parametrize("bad,reason", [
    (b"\x01\x02", "not RLP"),
    (rlp.encode([b"a"] * 5), "at least 15"),
    (_rebuild(lambda f, e: e.pop()), "vanity, validators, vote, round, seals"),
    (_rebuild(lambda f, e: e.__setitem__(1, [])), "non-empty list of 20-byte addresses"),
    (_rebuild(lambda f, e: e.__setitem__(1, e[1] + [e[1][0]])), "twice"),
])
def test_malformed_headers_are_refused_with_their_reason(bad, reason):
    with pytest.raises(InvalidSealedHeader, match=reason):
        verify_sealed_header(bad, PINNED)


def _dev_block(number: int) -> dict:
    return {"parentHash": "0x" + "01" * 32, "sha3Uncles": "0x" + "02" * 32, "miner": "0x" + "00" * 20,
            "stateRoot": "0x" + secrets.token_hex(32), "transactionsRoot": "0x" + "03" * 32,
            "receiptsRoot": "0x" + "04" * 32, "logsBloom": "0x" + "00" * 256, "difficulty": "0x0",
            "number": hex(number), "gasLimit": "0x1c9c380", "gasUsed": "0x0", "timestamp": hex(1_767_571_200 + number),
            "extraData": "0x", "mixHash": "0x" + "00" * 32, "nonce": "0x0000000000000000", "baseFeePerGas": "0x7"}


def test_development_headers_sealed_by_test_validators_verify_and_validator_changes_are_followed():
    keys = [secrets.token_bytes(32) for _ in range(7)]
    first = ValidatorSet.from_json({"type": "CertledgerValidatorSet", "chainId": 31337,
                                    "validators": [_address(k) for k in keys[:4]]})
    block = _dev_block(10)
    header = verify_sealed_header(seal_qbft_header(block, keys[:4], sealers=3), first)
    assert "0x" + header.state_root.hex() == block["stateRoot"] and header.number == 10
    with pytest.raises(InvalidSealedHeader, match="a quorum is 3"):
        verify_sealed_header(seal_qbft_header(block, keys[:4], sealers=2), first)
    # the network moves to validators 2..6: a header sealed by the old set names the new one
    change = seal_qbft_header(_dev_block(11), keys[:4], sealers=3)
    change = _renamed(change, keys[2:7], sealers=keys[:3])
    later = seal_qbft_header(_dev_block(12), keys[2:7], sealers=4)
    with pytest.raises(InvalidSealedHeader, match="another validator set"):
        verify_sealed_header(later, first)
    now = follow_validator_changes(first, [change])
    assert set(now.validators) == {_address(k) for k in keys[2:7]}
    assert verify_sealed_header(later, now).number == 12
    # a change sealed by too few of the trusted set is refused
    forged = _renamed(seal_qbft_header(_dev_block(11), keys[:4]), keys[4:7], sealers=keys[4:7])
    with pytest.raises(InvalidSealedHeader, match="not a pinned validator"):
        follow_validator_changes(first, [forged])


def _address(key: bytes) -> str:
    from verifier import eth_address

    return eth_address(key)


def _renamed(header_rlp: bytes, new_validators: list[bytes], *, sealers: list[bytes]) -> bytes:
    """``header_rlp`` naming ``new_validators`` and sealed anew by ``sealers``."""
    from coincurve import PrivateKey

    from verifier._internal.keccak import keccak256

    fields = rlp.decode(header_rlp)
    vanity = rlp.decode(fields[EXTRA_DATA_INDEX])[0]
    addresses = [bytes.fromhex(_address(k)[2:]) for k in new_validators]
    fields[EXTRA_DATA_INDEX] = rlp.encode([vanity, addresses, [], b"", []])
    commit = keccak256(rlp.encode(fields))
    seals = [PrivateKey(k).sign_recoverable(commit, hasher=None) for k in sealers]
    fields[EXTRA_DATA_INDEX] = rlp.encode([vanity, addresses, [], b"", seals])
    return rlp.encode(fields)


@pytest.mark.parametrize("data,reason", [
    ([], "type"), ({"type": "CertledgerValidatorSet", "chainId": 0, "validators": ["0x" + "11" * 20]}, "chainId"),
    ({"type": "CertledgerValidatorSet", "chainId": 1, "validators": ["0x" + "AA" * 20]}, "lower-case"),
    ({"type": "CertledgerValidatorSet", "chainId": 1, "validators": ["0x" + "11" * 20] * 2}, "twice"),
])
def test_a_bad_validator_set_file_is_refused(data, reason):
    with pytest.raises(InvalidSealedHeader, match=reason):
        ValidatorSet.from_json(data)


def test_format_md_states_the_vector_it_is_checked_against():
    text = (Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md").read_text(encoding="utf-8")
    section = text[text.index("## 14. Validator-sealed block headers"):]
    assert EXPECTED["commitHash"] in section and "block 7528, round 1" in section
    from verifier._qbft import BFT_MIX_HASH

    assert "0x" + BFT_MIX_HASH.hex() in section
    assert parse_qbft_header(SEALED).fields[13] == BFT_MIX_HASH  # the real header carries it
