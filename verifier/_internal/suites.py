"""Signature suites for batch roots (docs/FORMAT.md §6).

Both suites sign the same 32-byte EIP-712 digest of ``Batch(bytes32 root,uint16 credentialType,
uint32 count)`` under the domain {name "certledger", version "1", chainId, verifyingContract =
AnchorRegistry}:

* ``secp256k1`` — ECDSA by the issuer's chain account, 65 bytes ``r ‖ s ‖ v`` (v = 27/28, low s,
  EIP-2); verified by recovering the address (libsecp256k1 via coincurve).
* ``sm2-sm3`` — SM2 (GM/T 0003.2) with the SM3 message digest ``e = SM3(Z_A ‖ M)`` and the default
  user ID ``1234567812345678``, 64 bytes ``r ‖ s``; the public key is 64 bytes ``x ‖ y``
  (gmssl's ``sign_with_sm3`` / ``verify_with_sm3``).
"""

from __future__ import annotations

import secrets
from typing import Literal

from coincurve import PrivateKey, PublicKey

from verifier._internal.keccak import keccak256 as keccak
from verifier.errors import SignatureError

__all__ = [
    "SUITES",
    "Suite",
    "batch_digest",
    "domain_separator",
    "eth_address",
    "personal_digest",
    "recover_address",
    "sign_batch",
    "sign_digest_secp256k1",
    "sign_digest_sm2",
    "sm2_public_key",
    "verify_batch_signature",
    "verify_sm2",
]

Suite = Literal["secp256k1", "sm2-sm3"]
SUITES: tuple[str, ...] = ("secp256k1", "sm2-sm3")

EIP712_DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
BATCH_TYPEHASH = keccak(b"Batch(bytes32 root,uint16 credentialType,uint32 count)")
_NAME_HASH = keccak(b"certledger")
_VERSION_HASH = keccak(b"1")

_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
_SM2_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
_SM2_A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
_SM2_B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93


def _address_bytes(address: str | bytes) -> bytes:
    if isinstance(address, bytes):
        raw = address
    else:
        text = address[2:] if address[:2] in ("0x", "0X") else address
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
    if len(raw) != 20:
        raise SignatureError(f"{address!r} is not a 20-byte account address")
    return raw


def domain_separator(chain_id: int, anchor_registry: str | bytes) -> bytes:
    """EIP-712 ``hashStruct(EIP712Domain)`` of the AnchorRegistry at ``anchor_registry`` on ``chain_id``."""
    return keccak(
        EIP712_DOMAIN_TYPEHASH
        + _NAME_HASH
        + _VERSION_HASH
        + int(chain_id).to_bytes(32, "big")
        + _address_bytes(anchor_registry).rjust(32, b"\0")
    )


def batch_digest(
    root: bytes, credential_type: int, count: int, *, chain_id: int, anchor_registry: str | bytes
) -> bytes:
    """The EIP-712 digest ``keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(Batch))`` both suites sign."""
    if len(root) != 32:
        raise SignatureError("a batch root is 32 bytes")
    if not 0 <= credential_type < 2**16 or not 0 <= count < 2**32:
        raise SignatureError("credentialType must fit uint16 and count uint32")
    struct_hash = keccak(
        BATCH_TYPEHASH + root + credential_type.to_bytes(32, "big") + count.to_bytes(32, "big")
    )
    return keccak(b"\x19\x01" + domain_separator(chain_id, anchor_registry) + struct_hash)


def personal_digest(message32: bytes) -> bytes:
    """EIP-191 ``keccak256("\\x19Ethereum Signed Message:\\n32" ‖ message32)``."""
    return keccak(b"\x19Ethereum Signed Message:\n32" + message32)


def eth_address(private_key: bytes) -> str:
    """The checksum-free, lower-case 0x address of a secp256k1 private key."""
    public = PrivateKey(private_key).public_key.format(compressed=False)[1:]
    return "0x" + keccak(public)[-20:].hex()


def sign_digest_secp256k1(digest: bytes, private_key: bytes) -> bytes:
    """65-byte ``r ‖ s ‖ v`` (v = 27 + recovery id) over a 32-byte digest (libsecp256k1 signs low-s)."""
    try:
        sig = PrivateKey(private_key).sign_recoverable(digest, hasher=None)
    except Exception as exc:  # noqa: BLE001  # coincurve raises ValueError/TypeError for bad keys
        raise SignatureError(f"cannot sign with that secp256k1 key: {exc}") from None
    return sig[:64] + bytes([sig[64] + 27])


def recover_address(digest: bytes, signature: bytes) -> str | None:
    """The address that made a 65-byte ``r ‖ s ‖ v`` signature over ``digest``, or ``None``."""
    if len(signature) != 65 or signature[64] not in (27, 28):
        return None
    s = int.from_bytes(signature[32:64], "big")
    if not 0 < s <= _SECP256K1_N // 2 or not 0 < int.from_bytes(signature[:32], "big") < _SECP256K1_N:
        return None  # EIP-2: high-s signatures are malleable copies, refuse them
    try:
        public = PublicKey.from_signature_and_message(
            signature[:64] + bytes([signature[64] - 27]), digest, hasher=None
        )
    except Exception:  # noqa: BLE001
        return None
    return "0x" + keccak(public.format(compressed=False)[1:])[-20:].hex()


def _sm2(private_hex: str, public_xy: bytes) -> object:
    from gmssl.sm2 import CryptSM2

    crypt = CryptSM2(private_key=private_hex, public_key="00")
    # Set the key directly: CryptSM2's constructor strips a leading "04" with str.lstrip, which
    # also eats leading '0'/'4' digits of x.
    crypt.public_key = public_xy.hex()
    return crypt


def sm2_public_key(private_key: bytes) -> bytes:
    """The 64-byte ``x ‖ y`` SM2 public key of a 32-byte private key."""
    d = int.from_bytes(private_key, "big")
    if len(private_key) != 32 or not 1 <= d <= _SM2_N - 2:
        raise SignatureError("an SM2 private key is 32 bytes in [1, n−2]")
    crypt = _sm2(private_key.hex(), b"\0" * 64)
    point = crypt._kg(d, crypt.ecc_table["g"])  # type: ignore[attr-defined]
    return bytes.fromhex(point)


def _on_sm2_curve(public_xy: bytes) -> bool:
    if len(public_xy) != 64:
        return False
    x, y = int.from_bytes(public_xy[:32], "big"), int.from_bytes(public_xy[32:], "big")
    return x < _SM2_P and y < _SM2_P and (y * y - (x * x * x + _SM2_A * x + _SM2_B)) % _SM2_P == 0


def sign_digest_sm2(digest: bytes, private_key: bytes) -> bytes:
    """64-byte SM2 signature ``r ‖ s`` over ``digest`` (SM3 with Z_A, default user ID).

    The nonce comes from :mod:`secrets` (gmssl's own default uses :mod:`random`, which is not fit
    for signing).
    """
    public = sm2_public_key(private_key)
    crypt = _sm2(private_key.hex(), public)
    for _ in range(8):
        k = secrets.randbelow(_SM2_N - 1) + 1
        sig = crypt.sign_with_sm3(digest, f"{k:064x}")  # type: ignore[attr-defined]
        if sig:
            return bytes.fromhex(sig)
    raise SignatureError("SM2 signing failed repeatedly")  # pragma: no cover - probability ~2^-256


def verify_sm2(digest: bytes, signature: bytes, public_xy: bytes) -> bool:
    """Whether ``signature`` (64 bytes ``r ‖ s``) is a valid SM2-with-SM3 signature by ``public_xy``."""
    if len(signature) != 64 or not _on_sm2_curve(public_xy):
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (0 < r < _SM2_N and 0 < s < _SM2_N):
        return False
    try:
        return bool(_sm2("00", public_xy).verify_with_sm3(signature.hex(), digest))  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001
        return False


def sign_batch(
    suite: str,
    private_key: bytes,
    root: bytes,
    credential_type: int,
    count: int,
    *,
    chain_id: int,
    anchor_registry: str | bytes,
) -> bytes:
    """The issuer's signature over a batch root in ``suite`` (65 bytes secp256k1, 64 bytes SM2)."""
    digest = batch_digest(root, credential_type, count, chain_id=chain_id, anchor_registry=anchor_registry)
    if suite == "secp256k1":
        return sign_digest_secp256k1(digest, private_key)
    if suite == "sm2-sm3":
        return sign_digest_sm2(digest, private_key)
    raise SignatureError(f"unknown signature suite {suite!r} (expected one of {', '.join(SUITES)})")


def verify_batch_signature(
    suite: str, digest: bytes, signature: bytes, *, account: str, sm2_public_key: bytes = b""
) -> bool:
    """Whether ``signature`` over ``digest`` was made by the key (``account`` / ``sm2_public_key``)."""
    if suite == "secp256k1":
        recovered = recover_address(digest, signature)
        return recovered is not None and recovered == account.lower()
    if suite == "sm2-sm3":
        return verify_sm2(digest, signature, sm2_public_key)
    return False
