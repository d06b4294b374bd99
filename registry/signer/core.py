"""The signing core of ``certledger signer``: the issuer's keys, its policy, its log.

It signs three things, each only after checking it against the policy and its own record:

* a **batch**: it is sent the batch's leaves (StandardMerkleTree leaf hashes), the credential type
  and the count. It builds the tree itself (the verifier's construction, docs/FORMAT.md §5),
  computes the EIP-712 digest itself (FORMAT.md §6) and signs it in the issuer's suite; in the same
  call it builds and signs the transaction ``AnchorRegistry.anchor(root, type, count)`` to the
  configured contract and chain (the caller supplies only nonce, gas and fee). It never signs a
  digest it did not compute.
* a **transaction** (JSON-RPC ``eth_signTransaction``) to the AnchorRegistry: the anchor of a root it
  signed (re-signed with a new nonce or fee), or a status change (revoke / suspend / reinstate) of a
  root it signed — for one credential, only with a Merkle proof that leads from that credential's
  leaf to the root.
* nothing else: opaque data (Web3Signer's ``/api/v1/eth1/sign``) is refused.

Every signature and every refusal goes into the append-only log (:mod:`registry.signer.log`)
before the answer leaves.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector

from ledger_node.artifacts import load_artifact
from registry.signer.log import SignerLog
from registry.signer.policy import Policy, RateWindows, Refused
from verifier import batch_digest, eth_address, leaf_hash, sign_batch, sm2_public_key
from verifier.issuance import process_proof, tree_bytes

#: AnchorRegistry functions the signer signs transactions for
STATUS_FUNCTIONS = (
    "revokeBatch",
    "suspendBatch",
    "reinstateBatch",
    "reinstateCredential",
    "revokeCredential",
    "suspendCredential",
)


class BadRequest(Exception):
    """A request that is not well formed (as opposed to one the policy refuses)."""


def _selectors() -> dict[bytes, tuple[str, list[str]]]:
    out = {}
    for f in load_artifact("AnchorRegistry").abi:
        if f.get("type") == "function" and f["name"] in ("anchor", *STATUS_FUNCTIONS):
            types = [i["type"] for i in f["inputs"]]
            out[function_signature_to_4byte_selector(f"{f['name']}({','.join(types)})")] = (f["name"], types)
    return out


def _quantity(tx: dict, name: str, *, required: bool = True) -> int | None:
    value = tx.get(name)
    if value is None:
        if required:
            raise BadRequest(f"the transaction needs {name}")
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value[:2] == "0x":
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise BadRequest(f"{name} must be a 0x-hex quantity, not {value!r}")


def _hex32(value: Any, what: str) -> bytes:
    if isinstance(value, str) and value[:2] == "0x" and len(value) == 66:
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            pass
    raise BadRequest(f"{what} must be 0x and 64 hex digits")


@dataclass(frozen=True)
class SignedBatch:
    root: str
    credential_type: int
    count: int


class Signer:
    """One issuer's keys (secp256k1 chain account; SM2 key for the sm2-sm3 suite) under a policy."""

    def __init__(
        self,
        *,
        chain_key: bytes,
        sm2_key: bytes | None,
        policy: Policy,
        log: SignerLog,
        test_delay: float = 0.0,
    ):
        self._chain_key = chain_key
        self._sm2_key = sm2_key
        self.policy = policy
        self.log = log
        self.address = eth_address(chain_key)
        self.suite = "sm2-sm3" if sm2_key else "secp256k1"
        self.sm2_public_key = "0x" + sm2_public_key(sm2_key).hex() if sm2_key else None
        self.public_key = "0x" + _secp_public(chain_key).hex()
        self.test_delay = test_delay
        self._lock = threading.Lock()
        self._selectors = _selectors()
        self.signed: dict[str, SignedBatch] = {}
        self.rates = RateWindows(policy)
        for entry in log.entries:  # what was signed before this start counts
            if entry.get("kind") == "batch" and entry.get("new"):
                self.signed[entry["root"]] = SignedBatch(
                    entry["root"], entry["credentialType"], entry["count"]
                )
                self.rates.record(entry["count"], _unix(entry["at"]))
        log.append(
            {
                "at": _now(),
                "kind": "start",
                "address": self.address,
                "suite": self.suite,
                "sm2PublicKey": self.sm2_public_key,
                "chainId": policy.chain_id,
                "anchorRegistry": policy.anchor_registry,
            }
        )

    # -- batches ---------------------------------------------------------------------------------
    def sign_batch(self, body: Any) -> dict[str, Any]:
        """Check and sign a batch and its anchor transaction (see the module docstring)."""
        if self.test_delay:
            time.sleep(self.test_delay)
        with self._lock:
            try:
                return self._sign_batch(body)
            except (Refused, BadRequest) as exc:
                self._refused("batch", exc, _summary(body))
                raise

    def _sign_batch(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        ident = body.get("identifier")
        if not isinstance(ident, str) or ident.lower() != self.address:
            raise BadRequest(f"this signer holds {self.address}, not {ident!r}")
        ctype, count, leaves = body.get("credentialType"), body.get("count"), body.get("leaves")
        if type(ctype) is not int or type(count) is not int:
            raise BadRequest("credentialType and count must be integers")
        if not isinstance(leaves, list) or not leaves:
            raise BadRequest("leaves must be a non-empty list of 0x-hex 32-byte leaf hashes")
        if ctype not in self.policy.credential_types:
            raise Refused(
                "credential_type_not_allowed",
                f"credential type {ctype} is not among this issuer's types "
                f"{sorted(self.policy.credential_types)}",
            )
        if count != len(leaves):
            raise Refused(
                "count_mismatch", f"the batch says count {count} but {len(leaves)} leaves were sent"
            )
        if count > self.policy.max_batch_size:
            raise Refused(
                "batch_too_large",
                f"{count} credentials exceed the policy's maxBatchSize {self.policy.max_batch_size}",
            )
        raw_leaves = [_hex32(x, "each leaf") for x in leaves]
        if len(set(raw_leaves)) != len(raw_leaves):
            raise Refused("duplicate_leaves", "the leaves are not distinct")
        tx = body.get("transaction")
        if not isinstance(tx, dict):
            raise BadRequest("transaction must be an object with nonce, gas and the fee fields")
        root = tree_bytes(b"".join(raw_leaves))[:32]
        root_hex = "0x" + root.hex()
        known = self.signed.get(root_hex)
        if known is not None and (known.credential_type, known.count) != (ctype, count):
            raise Refused(
                "root_signed_otherwise",
                f"root {root_hex} was signed before as type {known.credential_type} count {known.count}",
            )
        now = time.time()
        if known is None:
            self.rates.check(count, now)
        digest = batch_digest(
            root, ctype, count, chain_id=self.policy.chain_id, anchor_registry=self.policy.anchor_registry
        )
        key = self._sm2_key if self.suite == "sm2-sm3" else self._chain_key
        signature = sign_batch(
            self.suite,
            key,
            root,
            ctype,
            count,
            chain_id=self.policy.chain_id,
            anchor_registry=self.policy.anchor_registry,
        )
        data = self._encode("anchor", [root, ctype, count])
        raw, tx_hash, nonce = self._sign_tx(tx, data)
        entry = self.log.append(
            {
                "at": _now(),
                "kind": "batch",
                "new": known is None,
                "root": root_hex,
                "credentialType": ctype,
                "count": count,
                "leavesSha256": hashlib.sha256(b"".join(raw_leaves)).hexdigest(),
                "digest": "0x" + digest.hex(),
                "suite": self.suite,
                "signature": "0x" + signature.hex(),
                "transaction": {"hash": tx_hash, "nonce": nonce, "function": "anchor"},
            }
        )
        if known is None:
            self.signed[root_hex] = SignedBatch(root_hex, ctype, count)
            self.rates.record(count, now)
        return {
            "root": root_hex,
            "digest": "0x" + digest.hex(),
            "suite": self.suite,
            "signature": "0x" + signature.hex(),
            "transaction": {"raw": raw, "hash": tx_hash, "nonce": nonce, "from": self.address},
            "log": {"seq": entry["seq"], "hash": entry["hash"]},
        }

    # -- transactions ------------------------------------------------------------------------------
    def sign_transaction(self, tx: Any) -> dict[str, Any]:
        """``eth_signTransaction``: a transaction to the AnchorRegistry about a root this signer signed."""
        with self._lock:
            try:
                return self._sign_transaction(tx)
            except (Refused, BadRequest) as exc:
                self._refused(
                    "transaction",
                    exc,
                    {
                        "to": tx.get("to") if isinstance(tx, dict) else None,
                        "data": str(tx.get("data"))[:202] if isinstance(tx, dict) else None,
                    },
                )
                raise

    def _sign_transaction(self, tx: Any) -> dict[str, Any]:
        if not isinstance(tx, dict):
            raise BadRequest("eth_signTransaction takes one transaction object")
        sender = tx.get("from")
        if not isinstance(sender, str) or sender.lower() != self.address:
            raise BadRequest(f"from must be this signer's account {self.address}, not {sender!r}")
        to = tx.get("to")
        if not isinstance(to, str) or to.lower() != self.policy.anchor_registry:
            raise Refused(
                "wrong_contract",
                f"this signer signs transactions to the AnchorRegistry "
                f"{self.policy.anchor_registry} only, not to {to!r}",
            )
        if _quantity(tx, "value", required=False):
            raise Refused("value_not_allowed", "a transaction to the AnchorRegistry carries no value")
        chain = _quantity(tx, "chainId", required=False)
        if chain is not None and chain != self.policy.chain_id:
            raise Refused("wrong_chain", f"this signer signs for chain {self.policy.chain_id}, not {chain}")
        data = tx.get("data") or tx.get("input")
        if not isinstance(data, str) or data[:2] != "0x":
            raise BadRequest("data must be 0x-hex call data")
        try:
            raw_data = bytes.fromhex(data[2:])
        except ValueError:
            raise BadRequest("data must be 0x-hex call data") from None
        name, types = self._selectors.get(raw_data[:4], (None, None))
        if name is None:
            raise Refused(
                "function_not_allowed",
                "this signer signs AnchorRegistry anchor and status "
                f"transactions only ({', '.join(STATUS_FUNCTIONS)})",
            )
        try:
            args = abi_decode(types, raw_data[4:])
        except Exception:  # noqa: BLE001 - eth_abi raises several kinds for bad call data
            raise BadRequest(f"the call data of {name} does not decode") from None
        root_hex = "0x" + bytes(args[0]).hex()
        known = self.signed.get(root_hex)
        if known is None:
            raise Refused("root_not_signed", f"{name}: root {root_hex} is not a batch this signer signed")
        if name == "anchor" and (args[1], args[2]) != (known.credential_type, known.count):
            raise Refused(
                "root_signed_otherwise",
                f"anchor: root {root_hex} was signed as type {known.credential_type} count {known.count}",
            )
        if name in ("revokeCredential", "suspendCredential"):
            leaf = leaf_hash(bytes(args[1]), bytes(args[2]))
            if process_proof(leaf, [bytes(p) for p in args[3]]) != bytes(args[0]):
                raise Refused(
                    "not_in_batch",
                    f"{name}: the Merkle proof does not lead from the credential's leaf to root {root_hex}",
                )
        raw, tx_hash, nonce = self._sign_tx(tx, raw_data)
        entry = self.log.append(
            {
                "at": _now(),
                "kind": "transaction",
                "function": name,
                "root": root_hex,
                "transaction": {"hash": tx_hash, "nonce": nonce},
            }
        )
        return {
            "raw": raw,
            "hash": tx_hash,
            "nonce": nonce,
            "log": {"seq": entry["seq"], "hash": entry["hash"]},
        }

    def refuse_opaque(self, identifier: str) -> Refused:
        """Web3Signer's ``/api/v1/eth1/sign``: opaque data, which this signer never signs."""
        exc = Refused(
            "opaque_data_refused",
            "this signer signs only what it can check (batches at "
            "/api/v1/certledger/batches, AnchorRegistry transactions by "
            "eth_signTransaction), never opaque data",
        )
        with self._lock:
            self._refused("eth1_sign", exc, {"identifier": identifier})
        return exc

    # -- helpers -----------------------------------------------------------------------------------
    def _encode(self, name: str, args: list) -> bytes:
        for selector, (n, types) in self._selectors.items():
            if n == name:
                return selector + abi_encode(types, args)
        raise KeyError(name)  # pragma: no cover - the ABI has anchor

    def _sign_tx(self, tx: dict, data: bytes) -> tuple[str, str, int]:
        nonce, gas = _quantity(tx, "nonce"), _quantity(tx, "gas")
        if gas > self.policy.max_gas:
            raise Refused("gas_too_high", f"gas {gas} exceeds the policy's maxGas {self.policy.max_gas}")
        fields: dict[str, Any] = {
            "to": _checksum(self.policy.anchor_registry),
            "data": data,
            "nonce": nonce,
            "gas": gas,
            "value": 0,
            "chainId": self.policy.chain_id,
        }
        if tx.get("maxFeePerGas") is not None:
            fee = _quantity(tx, "maxFeePerGas")
            fields.update(maxFeePerGas=fee, maxPriorityFeePerGas=_quantity(tx, "maxPriorityFeePerGas"))
        else:
            fee = _quantity(tx, "gasPrice")
            fields["gasPrice"] = fee
        if fee > self.policy.max_fee_per_gas:
            raise Refused(
                "fee_too_high",
                f"a fee of {fee} wei per gas exceeds the policy's maxFeePerGasWei "
                f"{self.policy.max_fee_per_gas}",
            )
        signed = Account.sign_transaction(fields, self._chain_key)
        return "0x" + bytes(signed.raw_transaction).hex(), "0x" + bytes(signed.hash).hex(), nonce

    def _refused(self, what: str, exc: Refused | BadRequest, request: dict) -> None:
        code = exc.code if isinstance(exc, Refused) else "bad_request"
        self.log.append(
            {
                "at": _now(),
                "kind": "refused",
                "request": what,
                "code": code,
                "reason": str(exc),
                "details": request,
            }
        )


def _summary(body: Any) -> dict:
    if not isinstance(body, dict):
        return {}
    leaves = body.get("leaves")
    return {
        "credentialType": body.get("credentialType"),
        "count": body.get("count"),
        "leaves": len(leaves) if isinstance(leaves, list) else None,
    }


def _secp_public(key: bytes) -> bytes:
    from coincurve import PrivateKey

    return PrivateKey(key).public_key.format(compressed=False)[1:]


def _checksum(address: str) -> str:
    from eth_utils import to_checksum_address

    return to_checksum_address(address)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _unix(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
