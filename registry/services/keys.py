"""Signing keys in encrypted keystores (Web3 Secret Storage: scrypt + AES-128-CTR + MAC).

An organisation's secp256k1 chain key and, for the sm2-sm3 suite, its SM2 key (also a 32-byte
scalar, so the same keystore format holds it) never touch the DB or a log in plaintext; they are
decrypted in memory with the passphrase from Settings, and cached for the process's life.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from functools import lru_cache

from eth_account import Account
from eth_typing import HexStr

from verifier.issuance import sm2_public_key

SM2_ORDER = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123

# scrypt n=2**14 keeps onboarding under a second on the 2-core machine (eth default 2**18 takes ~1 s
# per decrypt); the passphrase is a generated 256-bit secret in the embedded setup.
_KDF_N = 2**14


@dataclass(frozen=True)
class NewKey:
    address: str
    private_key: str  # 0x hex, held in memory only
    keystore: str
    sm2_private_key: str | None = None
    sm2_public_key: str | None = None  # 0x + 128 hex (x || y)
    sm2_keystore: str | None = None


def encrypt_secret(private_key_hex: str, passphrase: str) -> str:
    return json.dumps(Account.encrypt(HexStr(private_key_hex), passphrase, kdf="scrypt", iterations=_KDF_N))


@lru_cache(maxsize=256)
def decrypt_secret(keystore: str, passphrase: str) -> str:
    return "0x" + bytes(Account.decrypt(json.loads(keystore), passphrase)).hex()


def new_key(passphrase: str, suite: str = "secp256k1") -> NewKey:
    acct = Account.create()
    pk = "0x" + bytes(acct.key).hex()
    out = dict(address=acct.address, private_key=pk, keystore=encrypt_secret(pk, passphrase))
    if suite == "sm2-sm3":
        d = secrets.randbelow(SM2_ORDER - 2) + 1
        sm2_pk = "0x" + d.to_bytes(32, "big").hex()
        out.update(
            sm2_private_key=sm2_pk,
            sm2_public_key="0x" + sm2_public_key(d.to_bytes(32, "big")).hex(),
            sm2_keystore=encrypt_secret(sm2_pk, passphrase),
        )
    return NewKey(**out)
