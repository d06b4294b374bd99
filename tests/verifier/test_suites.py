"""Signature suites: EIP-712 digest, secp256k1 (coincurve), SM2 with SM3 (gmssl)."""

from __future__ import annotations

import os
import secrets

import pytest
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak

from verifier import batch_digest, eth_address, sign_batch, sm2_public_key
from verifier._internal.suites import recover_address, verify_batch_signature, verify_sm2
from verifier.errors import SignatureError

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
SECP_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _eth_account_digest(root: bytes, ctype: int, count: int, chain_id: int, registry: str) -> bytes:
    message = encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Batch": [
                    {"name": "root", "type": "bytes32"},
                    {"name": "credentialType", "type": "uint16"},
                    {"name": "count", "type": "uint32"},
                ],
            },
            "primaryType": "Batch",
            "domain": {
                "name": "certledger",
                "version": "1",
                "chainId": chain_id,
                "verifyingContract": registry,
            },
            "message": {"root": root, "credentialType": ctype, "count": count},
        }
    )
    return keccak(b"\x19" + message.version + message.header + message.body)


@pytest.mark.parametrize("chain_id,ctype,count", [(31337, 1, 1), (1, 3, 10_000), (2**40, 65535, 2**32 - 1)])
def test_batch_digest_equals_eth_account_encode_typed_data(chain_id, ctype, count):
    root = os.urandom(32)
    assert batch_digest(
        root, ctype, count, chain_id=chain_id, anchor_registry=REGISTRY
    ) == _eth_account_digest(root, ctype, count, chain_id, REGISTRY)


def test_digest_binds_chain_and_contract():
    root = os.urandom(32)
    base = batch_digest(root, 1, 5, chain_id=31337, anchor_registry=REGISTRY)
    assert base != batch_digest(root, 1, 5, chain_id=31338, anchor_registry=REGISTRY)
    assert base != batch_digest(root, 1, 5, chain_id=31337, anchor_registry="0x" + "11" * 20)


def test_secp256k1_signature_recovers_the_signer_and_nobody_else():
    key = secrets.token_bytes(32)
    root = os.urandom(32)
    sig = sign_batch("secp256k1", key, root, 1, 5, chain_id=31337, anchor_registry=REGISTRY)
    digest = batch_digest(root, 1, 5, chain_id=31337, anchor_registry=REGISTRY)
    assert len(sig) == 65 and sig[64] in (27, 28)
    assert recover_address(digest, sig) == eth_address(key)
    assert not verify_batch_signature("secp256k1", digest, sig, account=eth_address(secrets.token_bytes(32)))
    other = batch_digest(root, 1, 6, chain_id=31337, anchor_registry=REGISTRY)
    assert not verify_batch_signature("secp256k1", other, sig, account=eth_address(key))


def test_high_s_secp256k1_signatures_are_refused():
    key = secrets.token_bytes(32)
    digest = os.urandom(32)
    sig = sign_batch("secp256k1", key, digest, 1, 1, chain_id=1, anchor_registry=REGISTRY)
    d = batch_digest(digest, 1, 1, chain_id=1, anchor_registry=REGISTRY)
    s = int.from_bytes(sig[32:64], "big")
    flipped = sig[:32] + (SECP_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    assert recover_address(d, flipped) is None


def test_sm2_signature_verifies_with_its_public_key_only():
    key = (secrets.randbelow(2**255) + 1).to_bytes(32, "big")
    public = sm2_public_key(key)
    root = os.urandom(32)
    sig = sign_batch("sm2-sm3", key, root, 3, 7, chain_id=31337, anchor_registry=REGISTRY)
    digest = batch_digest(root, 3, 7, chain_id=31337, anchor_registry=REGISTRY)
    assert len(sig) == 64 and len(public) == 64
    assert verify_sm2(digest, sig, public)
    assert not verify_sm2(os.urandom(32), sig, public)
    other = sm2_public_key((secrets.randbelow(2**255) + 1).to_bytes(32, "big"))
    assert not verify_sm2(digest, sig, other)
    assert not verify_sm2(digest, sig[:32] + b"\0" * 32, public)  # s = 0
    assert not verify_sm2(digest, sig, b"\1" * 64)  # not on the curve


def test_sm2_matches_gmssl_reference_verification():
    from gmssl.sm2 import CryptSM2

    key = (secrets.randbelow(2**255) + 1).to_bytes(32, "big")
    public = sm2_public_key(key)
    digest = os.urandom(32)
    sig = sign_batch("sm2-sm3", key, digest, 1, 1, chain_id=1, anchor_registry=REGISTRY)
    d = batch_digest(digest, 1, 1, chain_id=1, anchor_registry=REGISTRY)
    reference = CryptSM2(private_key=key.hex(), public_key="00")
    reference.public_key = public.hex()
    assert reference.verify_with_sm3(sig.hex(), d)


def test_sm2_public_keys_starting_with_04_work():
    # gmssl's constructor strips a leading "04" with str.lstrip; keys whose x starts 0x04 must still work.
    for _ in range(4000):
        key = (secrets.randbelow(2**255) + 1).to_bytes(32, "big")
        public = sm2_public_key(key)
        if public.hex().startswith("04"):
            break
    else:
        pytest.skip("no key with x starting 04 found in 4000 tries")
    digest = os.urandom(32)
    sig = sign_batch("sm2-sm3", key, digest, 1, 1, chain_id=1, anchor_registry=REGISTRY)
    assert verify_sm2(batch_digest(digest, 1, 1, chain_id=1, anchor_registry=REGISTRY), sig, public)


def test_unknown_suite_and_bad_keys_raise_signature_error():
    with pytest.raises(SignatureError):
        sign_batch("rsa", b"\1" * 32, b"\0" * 32, 1, 1, chain_id=1, anchor_registry=REGISTRY)
    with pytest.raises(SignatureError):
        sign_batch("secp256k1", b"\0" * 32, b"\0" * 32, 1, 1, chain_id=1, anchor_registry=REGISTRY)
    with pytest.raises(SignatureError):
        batch_digest(b"\0" * 31, 1, 1, chain_id=1, anchor_registry=REGISTRY)
