"""The offline trust source: a signed trust bundle file (docs/FORMAT.md §8)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import rfc8785

from verifier._internal.statuslist import MIN_BITS, bit_is_set, decode_status_list, encode_status_list
from verifier._internal.suites import eth_address, personal_digest, recover_address, sign_digest_secp256k1
from verifier._jsonio import loads_strict
from verifier._trust import STATUS_NAMES, AnchorRecord, IssuerKeyRecord, IssuerRecord, StatusRecord
from verifier.errors import BundleSignatureError, InvalidBundle, MalformedBundle, UnsupportedBundle

__all__ = [
    "BUNDLE_TYPE",
    "BUNDLE_VERSION",
    "TrustBundle",
    "add_bundle_signature",
    "build_trust_bundle",
    "bundle_message",
    "sign_trust_bundle",
]

BUNDLE_TYPE = "CertledgerTrustBundle"
BUNDLE_VERSION = 1
MAX_BUNDLE_BYTES = 512 * 1024 * 1024
_STATUS_CODES = {name: code for code, name in STATUS_NAMES.items()}
_VALID = StatusRecord(1)


_SIGNATURE_MEMBERS = ("signature", "signatures")
#: At most this many operator signatures on one bundle (FORMAT.md §8.1).
MAX_SIGNATURES = 64


def bundle_message(bundle: Mapping[str, Any]) -> bytes:
    """The 32-byte digest every operator signs: EIP-191 of
    ``sha256(JCS(bundle without "signature" and "signatures"))`` (FORMAT.md §8, §8.1)."""
    body = {k: v for k, v in bundle.items() if k not in _SIGNATURE_MEMBERS}
    return personal_digest(hashlib.sha256(rfc8785.dumps(body)).digest())


def _hex0x(data: bytes) -> str:
    return "0x" + data.hex()


def _plain(record: Any) -> dict[str, Any]:
    if isinstance(record, IssuerRecord):
        return {
            "id": record.id,
            "name": record.name,
            "uscc": record.uscc,
            "suite": record.suite,
            "status": record.status,
            "activeFrom": record.active_from,
            "activeUntil": record.active_until,
            "credentialTypes": sorted(record.credential_types),
            "keys": [
                {
                    "version": k.version,
                    "account": k.account.lower(),
                    "sm2PublicKey": _hex0x(k.sm2_public_key),
                    "validFrom": k.valid_from,
                    "validUntil": k.valid_until,
                }
                for k in sorted(record.keys.values(), key=lambda k: k.version)
            ],
            "statusBlock": record.status_block,
            "statusTimestamp": record.status_timestamp,
        }
    if isinstance(record, AnchorRecord):
        return {
            "root": _hex0x(record.root),
            "issuerId": record.issuer_id,
            "keyVersion": record.key_version,
            "credentialType": record.credential_type,
            "count": record.count,
            "blockNumber": record.block_number,
            "timestamp": record.timestamp,
            "status": STATUS_NAMES[record.status],
            "reason": record.reason,
            "statusTimestamp": record.status_timestamp,
        }
    if is_dataclass(record):
        return asdict(record)  # type: ignore[arg-type]
    return dict(record)


def build_trust_bundle(
    *,
    chain_id: int,
    contracts: Mapping[str, str],
    block: Mapping[str, Any],
    issuers: Iterable[IssuerRecord | Mapping[str, Any]],
    anchors: Iterable[AnchorRecord | Mapping[str, Any]],
    revoked: Mapping[int, Mapping[str, Any]] | None = None,
    suspended: Mapping[int, Mapping[str, Any]] | None = None,
    status_list_bits: int = MIN_BITS,
) -> dict[str, Any]:
    """An unsigned trust bundle (sign it with :func:`sign_trust_bundle`).

    ``block`` is ``{number, hash, timestamp, stateRoot}``; ``revoked`` / ``suspended`` map a
    ``statusListIndex`` to its details ``{reason, timestamp, by}`` (``by``: who changed it, in words).
    """

    def status_list(entries: Mapping[int, Mapping[str, Any]] | None) -> dict[str, Any]:
        entries = entries or {}
        return {
            "encodedList": encode_status_list(entries.keys(), status_list_bits),
            "details": {str(i): dict(entries[i]) for i in sorted(entries)},
        }

    bundle = {
        "type": BUNDLE_TYPE,
        "version": BUNDLE_VERSION,
        "chainId": int(chain_id),
        "contracts": {k: str(v).lower() for k, v in contracts.items()},
        "block": dict(block),
        "issuers": sorted((_plain(i) for i in issuers), key=lambda i: i["id"]),
        "anchors": sorted((_plain(a) for a in anchors), key=lambda a: (a["blockNumber"], a["root"])),
        "statusLists": {"revocation": status_list(revoked), "suspension": status_list(suspended)},
    }
    TrustBundle(bundle, signer="", verified=False)  # refuse a malformed bundle at the source
    return bundle


def _signature_entry(body: Mapping[str, Any], private_key: bytes) -> dict[str, str]:
    value = sign_digest_secp256k1(bundle_message(body), private_key)
    return {"suite": "secp256k1", "signer": eth_address(private_key), "value": _hex0x(value)}


def sign_trust_bundle(bundle: Mapping[str, Any], private_key: bytes, *more_keys: bytes) -> dict[str, Any]:
    """A copy of ``bundle`` signed by the operator: one key gives ``signature`` {suite, signer,
    value}; several (k of n operators, FORMAT.md §8.1) give ``signatures``, one per distinct signer
    (a key given twice counts once), sorted by signer. Earlier signatures are dropped."""
    body = {k: v for k, v in bundle.items() if k not in _SIGNATURE_MEMBERS}
    if not more_keys:
        return {**body, "signature": _signature_entry(body, private_key)}
    entries = {e["signer"]: e for e in (_signature_entry(body, k) for k in (private_key, *more_keys))}
    return {**body, "signatures": [entries[a] for a in sorted(entries)]}


def add_bundle_signature(bundle: Mapping[str, Any], private_key: bytes) -> dict[str, Any]:
    """``bundle`` co-signed by one more operator (each operator signs on its own machine): its
    ``signature`` / ``signatures`` become ``signatures`` with this key's added; a signer already
    present counts once (its entry is replaced). The signed content is unchanged: a bundle whose
    existing signatures do not verify is refused (:class:`BundleSignatureError`)."""
    body = {k: v for k, v in bundle.items() if k not in _SIGNATURE_MEMBERS}
    existing = _signature_list(bundle)
    message = bundle_message(body)
    entries: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(existing):
        signer, value = _signature_parts(entry, i)
        if recover_address(message, value) != signer:
            raise BundleSignatureError(
                f"signature {i} (by {signer}) does not verify: the bundle was altered after it was signed"
            )
        entries[signer] = dict(entry)
    new = _signature_entry(body, private_key)
    entries[new["signer"]] = new
    return {**body, "signatures": [entries[a] for a in sorted(entries)]}


def _signature_list(data: Mapping[str, Any]) -> list[Any]:
    """The bundle's signature entries: ``signature`` (one) or ``signatures`` (k of n), not both."""
    one, many = data.get("signature"), data.get("signatures")
    if one is not None and many is not None:
        raise BundleSignatureError(
            "the trust bundle has both signature and signatures; a bundle carries one of them"
        )
    if many is None:
        if one is None:
            raise BundleSignatureError("the trust bundle is not signed")
        return [one]
    if not isinstance(many, list) or not many:
        raise BundleSignatureError("the trust bundle's signatures must be a non-empty list")
    if len(many) > MAX_SIGNATURES:
        raise BundleSignatureError(f"the trust bundle has {len(many)} signatures, more than {MAX_SIGNATURES}")
    return many


def _signature_parts(entry: Any, i: int) -> tuple[str, bytes]:
    """(claimed signer, 65-byte value) of signature entry ``i``; :class:`BundleSignatureError` if malformed."""
    where = "signature" if i < 0 else f"signatures[{i}]"
    if not isinstance(entry, dict):
        raise BundleSignatureError(f"the trust bundle's {where} is not an object")
    if entry.get("suite") != "secp256k1":
        raise BundleSignatureError(
            f"unsupported trust bundle signature suite {entry.get('suite')!r} in {where}"
        )
    extra = set(entry) - {"suite", "signer", "value"}
    if extra:
        raise BundleSignatureError(
            f"the trust bundle's {where} has unknown member(s) {', '.join(sorted(extra))}"
        )
    try:
        return _Reader.address(entry, "signer", where), _Reader.hexbytes(entry, "value", where, 65)
    except InvalidBundle as exc:
        raise BundleSignatureError(str(exc)) from None


class _Reader:
    """Typed access to bundle JSON that turns every surprise into :class:`InvalidBundle`."""

    @staticmethod
    def get(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            raise MalformedBundle(f"the trust bundle lacks {where}.{key}")
        value = obj[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise MalformedBundle(f"the trust bundle's {where}.{key} has the wrong type")
        return value

    @classmethod
    def uint(cls, obj: Any, key: str, where: str) -> int:
        value = cls.get(obj, key, int, where)
        if isinstance(value, bool) or value < 0:
            raise MalformedBundle(f"the trust bundle's {where}.{key} must be a non-negative integer")
        return int(value)

    @classmethod
    def hexbytes(cls, obj: Any, key: str, where: str, size: int | tuple[int, ...]) -> bytes:
        text = cls.get(obj, key, str, where)
        sizes = (size,) if isinstance(size, int) else size
        try:
            # lower-case only (FORMAT.md §8): "0x…".islower() is false exactly when a digit is upper-case
            raw = bytes.fromhex(text[2:]) if text.startswith("0x") and text.islower() else None
        except ValueError:
            raw = None
        if raw is None or len(raw) not in sizes:
            raise MalformedBundle(
                f"the trust bundle's {where}.{key} is not {'/'.join(map(str, sizes))} bytes of lower-case 0x-hex"
            )
        return raw

    @classmethod
    def address(cls, obj: Any, key: str, where: str) -> str:
        return "0x" + cls.hexbytes(obj, key, where, 20).hex()


class TrustBundle:
    """A verified trust bundle: the issuer registry, anchors and status lists as of one block.

    Load with :meth:`load`; it refuses a wrong type or version (:class:`InvalidBundle`), malformed
    content (:class:`InvalidBundle`), and a bad signature or an unpinned signer
    (:class:`BundleSignatureError`).
    """

    def __init__(
        self, data: Mapping[str, Any], *, signer: str, verified: bool, operators: Iterable[str] = ()
    ) -> None:
        r = _Reader
        if not isinstance(data, dict):
            raise MalformedBundle("a trust bundle is a JSON object")
        if data.get("type") != BUNDLE_TYPE:
            raise UnsupportedBundle(
                f"this file is not a certledger trust bundle (its type is {data.get('type')!r})"
            )
        if data.get("version") != BUNDLE_VERSION:
            raise UnsupportedBundle(
                f"trust bundle version {data.get('version')!r} is not supported "
                f"(this verifier reads version {BUNDLE_VERSION})"
            )
        self.data = data
        self.signer = signer
        #: Every operator whose signature verified (FORMAT.md §8.1), the first is ``signer``.
        self.signers: tuple[str, ...] = (signer,) if signer else ()
        self.verified = verified
        self.operators = frozenset(a.lower() for a in operators)
        self.chain_id = r.uint(data, "chainId", "bundle")
        contracts = r.get(data, "contracts", dict, "bundle")
        self.contracts = {
            k: r.address(contracts, k, "contracts")
            for k in ("issuerRegistry", "anchorRegistry", "dataFlowLedger")
        }
        if "pledgeRegistry" in contracts:  # FORMAT.md §17 (optional: bundles before it lack it)
            self.contracts["pledgeRegistry"] = r.address(contracts, "pledgeRegistry", "contracts")
        self.anchor_registry = self.contracts["anchorRegistry"]
        block = r.get(data, "block", dict, "bundle")
        self.block_number = r.uint(block, "number", "block")
        self.block_timestamp = r.uint(block, "timestamp", "block")
        self.block_hash = r.hexbytes(block, "hash", "block", 32)
        self.state_root = r.hexbytes(block, "stateRoot", "block", 32)
        self._issuers = {
            i.id: i
            for i in (self._issuer(x, n) for n, x in enumerate(r.get(data, "issuers", list, "bundle")))
        }
        self._anchors = {
            a.root: a
            for a in (self._anchor(x, n) for n, x in enumerate(r.get(data, "anchors", list, "bundle")))
        }
        lists = r.get(data, "statusLists", dict, "bundle")
        self._bits: dict[str, bytes] = {}
        self._details: dict[str, dict[str, Any]] = {}
        for purpose in ("revocation", "suspension"):
            entry = r.get(lists, purpose, dict, "statusLists")
            try:
                self._bits[purpose] = decode_status_list(
                    r.get(entry, "encodedList", str, f"statusLists.{purpose}")
                )
            except ValueError as exc:
                raise MalformedBundle(
                    f"the trust bundle's {purpose} status list is malformed: {exc}"
                ) from None
            self._details[purpose] = r.get(entry, "details", dict, f"statusLists.{purpose}")

    # -- parsing -----------------------------------------------------------------------------
    @staticmethod
    def _issuer(x: Any, n: int) -> IssuerRecord:
        r, where = _Reader, f"issuers[{n}]"
        suite = r.get(x, "suite", str, where)
        status = r.get(x, "status", str, where)
        if suite not in ("secp256k1", "sm2-sm3") or status not in ("active", "suspended"):
            raise MalformedBundle(f"the trust bundle's {where} has an unknown suite or status")
        keys = {}
        for m, k in enumerate(r.get(x, "keys", list, where)):
            kw = f"{where}.keys[{m}]"
            sm2 = r.hexbytes(k, "sm2PublicKey", kw, (0, 64))
            key = IssuerKeyRecord(
                r.uint(k, "version", kw),
                r.address(k, "account", kw),
                r.uint(k, "validFrom", kw),
                r.uint(k, "validUntil", kw),
                sm2,
            )
            keys[key.version] = key
        types = r.get(x, "credentialTypes", list, where)
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in types):
            raise MalformedBundle(f"the trust bundle's {where}.credentialTypes must be integers")
        return IssuerRecord(
            r.uint(x, "id", where),
            r.get(x, "name", str, where),
            r.get(x, "uscc", str, where),
            suite,
            status,
            r.uint(x, "activeFrom", where),
            r.uint(x, "activeUntil", where),
            frozenset(types),
            keys,
            # when a suspended issuer was suspended (FORMAT.md §8); absent in bundles made before
            r.uint(x, "statusBlock", where) if "statusBlock" in x else 0,
            r.uint(x, "statusTimestamp", where) if "statusTimestamp" in x else 0,
        )

    @staticmethod
    def _anchor(x: Any, n: int) -> AnchorRecord:
        r, where = _Reader, f"anchors[{n}]"
        status = r.get(x, "status", str, where)
        if status not in ("valid", "revoked", "suspended"):
            raise MalformedBundle(f"the trust bundle's {where}.status {status!r} is unknown")
        return AnchorRecord(
            r.hexbytes(x, "root", where, 32),
            r.uint(x, "issuerId", where),
            r.uint(x, "keyVersion", where),
            r.uint(x, "credentialType", where),
            r.uint(x, "count", where),
            r.uint(x, "blockNumber", where),
            r.uint(x, "timestamp", where),
            _STATUS_CODES[status],
            r.uint(x, "reason", where),
            r.uint(x, "statusTimestamp", where),
        )

    @classmethod
    def load(
        cls,
        source: str | Path | bytes | Mapping[str, Any],
        *,
        operators: Iterable[str] | None = None,
        threshold: int = 1,
    ) -> TrustBundle:
        """Read, check and verify a trust bundle from a path, raw bytes or a parsed dict.

        With ``operators`` (pinned operator addresses), at least ``threshold`` distinct pinned
        operators must have signed it, and every signer must be pinned (FORMAT.md §8.1).
        """
        pinned = sorted({a.lower() for a in operators}) if operators is not None else None
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise BundleSignatureError(
                f"the signature threshold must be a positive integer, not {threshold!r}"
            )
        if pinned is not None and threshold > len(pinned):
            raise BundleSignatureError(
                f"a threshold of {threshold} signatures cannot be met by {len(pinned)} pinned operator(s)"
            )
        if pinned is None and threshold > 1:
            raise BundleSignatureError("a signature threshold above 1 needs the operators pinned")
        if isinstance(source, Mapping):
            data: Any = dict(source)
        else:
            if isinstance(source, (str, Path)):
                try:
                    path = Path(source)
                    if path.stat().st_size > MAX_BUNDLE_BYTES:
                        raise InvalidBundle(
                            f"the trust bundle {path} is larger than {MAX_BUNDLE_BYTES >> 20} MB"
                        )
                    raw = path.read_bytes()
                except OSError as exc:
                    raise InvalidBundle(
                        f"cannot read the trust bundle {source}: {exc.strerror or exc}"
                    ) from None
            else:
                raw = bytes(source)
            try:
                data = loads_strict(raw)
            except ValueError as exc:
                raise MalformedBundle(f"the trust bundle is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise MalformedBundle("a trust bundle is a JSON object")
        bundle = cls(data, signer="", verified=False)  # type/version/content first: clearer errors
        entries = _signature_list(data)
        single = "signatures" not in data
        message = bundle_message(data)
        signers: list[str] = []
        for i, entry in enumerate(entries):
            claimed, value = _signature_parts(entry, -1 if single else i)
            where = "the trust bundle's signature" if single else f"signature {i} (by {claimed})"
            if recover_address(message, value) != claimed:  # 1. tampered
                raise BundleSignatureError(
                    f"{where} does not verify: the file was altered after it was signed, "
                    "or it was not signed by the operator it names"
                )
            if claimed in signers:  # 2. duplicate
                raise BundleSignatureError(
                    f"signatures {signers.index(claimed)} and {i} are both by {claimed} (duplicate signer; "
                    "each operator signs once)"
                )
            if pinned is not None and claimed not in pinned:  # 3. unknown signer
                raise BundleSignatureError(
                    f"the trust bundle was signed by {claimed}, which is not one of the pinned operators "
                    f"({', '.join(pinned)})"
                )
            signers.append(claimed)
        if pinned is not None and len(signers) < threshold:  # 4. too few
            raise BundleSignatureError(
                f"the trust bundle is signed by {len(signers)} of the pinned operators; {threshold} of "
                f"{len(pinned)} are required (--threshold)"
            )
        bundle.signer = signers[0]
        bundle.signers = tuple(signers)
        bundle.verified = True
        bundle.operators = frozenset(pinned or ())
        return bundle

    # -- TrustSource ------------------------------------------------------------------------
    def issuer(self, issuer_id: int) -> IssuerRecord | None:
        return self._issuers.get(issuer_id)

    def anchor(self, root: bytes) -> AnchorRecord | None:
        return self._anchors.get(root)

    def credential_status(self, root: bytes, leaf: bytes, status_list_index: int) -> StatusRecord:
        anchor = self._anchors.get(root)
        if anchor is not None and anchor.status not in (0, 1):
            issuer = self._issuers.get(anchor.issuer_id)
            return StatusRecord(
                anchor.status, anchor.reason, anchor.status_timestamp, issuer.name if issuer else "", "batch"
            )
        return self.list_status(status_list_index, root)

    def list_status(self, index: int, root: bytes | None = None) -> StatusRecord:
        """The status of ``index`` in the bundle's bitstring status lists (revocation wins)."""
        byte, mask = index >> 3, 0x80 >> (index & 7)
        revocation, suspension = self._bits["revocation"], self._bits["suspension"]
        if (byte >= len(revocation) or not revocation[byte] & mask) and (
            byte >= len(suspension) or not suspension[byte] & mask
        ):
            return _VALID
        for purpose, code in (("revocation", 2), ("suspension", 3)):
            if bit_is_set(self._bits[purpose], index):
                anchor = self._anchors.get(root) if root is not None else None
                issuer = self._issuers.get(anchor.issuer_id) if anchor is not None else None
                d = self._details[purpose].get(str(index)) or {}
                by = str(d.get("by") or (issuer.name if issuer else ""))
                return StatusRecord(code, _int(d.get("reason")), _int(d.get("timestamp")), by)
        return _VALID  # pragma: no cover - one of the bits was set

    def trusts_header_signer(self, address: str) -> bool:
        address = address.lower()
        return self.verified and (address in self.signers or address in self.operators)

    # -- reporting --------------------------------------------------------------------------
    def age(self, now: datetime | None = None) -> timedelta:
        """How old the bundle's block is at ``now`` (default: the current time)."""
        now = now or datetime.now(UTC)
        return now - datetime.fromtimestamp(self.block_timestamp, UTC)

    def describe(self, now: datetime | None = None) -> str:
        """One line for people: chain, block, age and signer."""
        when = datetime.fromtimestamp(self.block_timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return (
            f"trust bundle for chain {self.chain_id} at block {self.block_number} ({when}, "
            f"{_human_age(self.age(now))} old), signed by {', '.join(self.signers) or 'nobody'}"
        )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _human_age(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    if seconds < 0:
        return "from the future: " + _human_age(-age)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"
