"""Holder binding and presentations bound to the verifier's request (docs/FORMAT.md §13).

A credential names its holder's own public key in ``credentialSubject.id`` (a URN, part of what the
issuer hashed, so it cannot be swapped). A relying party (the bank) makes a
:class:`PresentationRequest` — a fresh nonce, its own unified social credit code as audience, a
purpose and an expiry. The holder answers with a W3C VC 2.0 ``VerifiablePresentation`` of one or
more (redacted) holder copies, whose ``proof`` is the holder key's signature over the request and
the canonical hash of every credential exactly as disclosed. :func:`verify_presentation` runs every
check of :class:`~verifier.Verifier` on each credential (``usage`` against the request's audience
and purpose) and adds one, ``holder``: the signature, the nonce, the audience, the expiry, and that
the credential names the key that signed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Literal

import orjson
from coincurve import PrivateKey, PublicKey

from verifier._internal.canon import jcs, jcs_unchecked
from verifier._internal.suites import sign_digest_secp256k1, sign_digest_sm2, sm2_public_key, verify_sm2
from verifier._result import Check, VerificationResult
from verifier._schema import parse_datetime
from verifier.errors import InvalidPresentation
from verifier.uscc import is_valid_uscc

__all__ = [
    "HOLDER_PROOF_TYPE",
    "HolderKey",
    "PresentationRequest",
    "PresentationResult",
    "holder_id_of",
    "present",
    "unsigned_presentation",
    "verify_presentation",
]

HOLDER_PROOF_TYPE = "CertledgerHolderProof2026"
REQUEST_TYPE = "CertledgerPresentationRequest"
_DOMAIN = b"certledger:presentation:v1"
_HOLDER_PREFIX = "urn:certledger:holder:"
_HOLDER_ID = re.compile(r"^urn:certledger:holder:(secp256k1:0x0[23][0-9a-f]{64}|sm2:0x[0-9a-f]{128})$")
_NONCE = re.compile(r"^0x[0-9a-f]{32,128}$")
_PROOF_VALUE = re.compile(r"0x[0-9a-f]{128,130}")
_PROOF_MEMBERS = frozenset(
    ("type", "created", "expires", "challenge", "domain", "purpose", "verificationMethod", "proofValue")
)
_SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
HolderSuite = Literal["secp256k1", "sm2"]


@dataclass(frozen=True)
class HolderKey:
    """A holder's key pair: ``suite`` and the 32-byte private scalar (kept by the holder alone)."""

    suite: HolderSuite
    private_key: bytes

    @classmethod
    def generate(cls, suite: HolderSuite = "secp256k1") -> HolderKey:
        if suite not in ("secp256k1", "sm2"):
            raise InvalidPresentation(f"unknown holder key suite {suite!r}: secp256k1 or sm2")
        while True:
            key = secrets.token_bytes(32)
            try:
                holder = cls(suite, key)
                holder.holder_id  # noqa: B018 - checks the scalar is in range
                return holder
            except Exception:  # noqa: BLE001  # pragma: no cover - probability ~2^-128
                continue

    @property
    def holder_id(self) -> str:
        """``urn:certledger:holder:<suite>:0x<public key>`` — the value of ``credentialSubject.id``."""
        return holder_id_of(self.suite, self.private_key)

    def sign(self, digest: bytes) -> bytes:
        if self.suite == "secp256k1":
            return sign_digest_secp256k1(digest, self.private_key)
        return sign_digest_sm2(digest, self.private_key)


def holder_id_of(suite: str, private_key: bytes) -> str:
    if suite == "secp256k1":
        public = PrivateKey(private_key).public_key.format(compressed=True)
    elif suite == "sm2":
        public = sm2_public_key(private_key)
    else:
        raise InvalidPresentation(f"unknown holder key suite {suite!r}: secp256k1 or sm2")
    return f"{_HOLDER_PREFIX}{suite}:0x{public.hex()}"


def _holder_parts(holder: str) -> tuple[str, str]:
    """The suite and the public key's hex of a holder id that matched ``_HOLDER_ID``."""
    suite, _, public_hex = holder.removeprefix(_HOLDER_PREFIX).partition(":0x")
    return suite, public_hex


def _hash(suite: str, data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest() if suite == "sm2" else hashlib.sha256(data).digest()


def _time(value: Any, what: str) -> datetime:
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise InvalidPresentation(f"{what}: {exc}") from None


def _now(at: datetime | None) -> datetime:
    return (at or datetime.now(UTC)).astimezone(UTC)


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class PresentationRequest:
    """What the relying party asks for; it keeps the request and checks the answer against it."""

    nonce: str
    audience: str
    purpose: str
    expires: str
    credential_types: tuple[str, ...] = ()

    @cached_property
    def expires_at(self) -> datetime:
        """``expires`` as a time (read once: a bank checks many presentations against one request)."""
        return _time(self.expires, "the request's expires")

    @classmethod
    def new(
        cls,
        audience: str,
        purpose: str,
        *,
        ttl: timedelta = timedelta(minutes=5),
        credential_types: Sequence[str] = (),
        at: datetime | None = None,
    ) -> PresentationRequest:
        request = cls(
            "0x" + secrets.token_bytes(16).hex(),
            audience,
            purpose,
            _rfc3339(_now(at) + ttl),
            tuple(credential_types),
        )
        return cls.from_json(request.to_json())  # one validation path

    @classmethod
    def from_json(cls, data: Any) -> PresentationRequest:
        if not isinstance(data, Mapping) or data.get("type") != REQUEST_TYPE:
            raise InvalidPresentation(
                f'a presentation request is a JSON object with "type": "{REQUEST_TYPE}"'
            )
        unknown = set(data) - {"type", "nonce", "audience", "purpose", "expires", "credentialTypes"}
        if unknown:
            raise InvalidPresentation(f"a presentation request has no member {sorted(unknown)[0]!r}")
        nonce, audience, purpose = data.get("nonce"), data.get("audience"), data.get("purpose")
        if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
            raise InvalidPresentation("the request's nonce must be 0x + 32 to 128 lower-case hex digits")
        if not isinstance(audience, str) or not is_valid_uscc(audience):
            raise InvalidPresentation(
                "the request's audience must be the relying party's unified social credit code"
            )
        if not isinstance(purpose, str) or not 1 <= len(purpose) <= 1024:
            raise InvalidPresentation("the request's purpose must be text of 1 to 1,024 characters")
        _time(data.get("expires"), "the request's expires")
        types = data.get("credentialTypes", [])
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise InvalidPresentation("the request's credentialTypes must be a list of type names")
        return cls(nonce, audience, purpose, data["expires"], tuple(types))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": REQUEST_TYPE,
            "nonce": self.nonce,
            "audience": self.audience,
            "purpose": self.purpose,
            "expires": self.expires,
        }
        if self.credential_types:
            out["credentialTypes"] = list(self.credential_types)
        return out


def _statement(
    holder: str,
    proof: Mapping[str, Any],
    credentials: Sequence[Any],
    suite: str,
    *,
    canonical: Callable[[Any], bytes] = jcs,
) -> bytes:
    """What the holder signs: the request it answers and each credential's hash as disclosed
    (``canonical``: how a credential is written, :func:`jcs` by default)."""
    try:
        digests = ["0x" + _hash(suite, canonical(c)).hex() for c in credentials]
    except Exception as exc:  # noqa: BLE001 - a credential that has no canonical form
        raise InvalidPresentation(f"a presented credential has no canonical JSON form: {exc}") from None
    statement = {
        "holder": holder,
        "challenge": proof.get("challenge"),
        "domain": proof.get("domain"),
        "purpose": proof.get("purpose"),
        "expires": proof.get("expires"),
        "created": proof.get("created"),
        "credentials": digests,
    }
    return _hash(suite, _DOMAIN + _statement_jcs(statement))


def _statement_jcs(statement: dict[str, Any]) -> bytes:
    """:func:`jcs` of a statement. When every member but ``credentials`` (hex digests) is text, as in
    every presentation made by :func:`unsigned_presentation`, ``orjson`` with sorted keys writes
    exactly JCS: the member names are fixed ASCII, so its code-point order is JCS's UTF-16 order,
    and it writes text as JCS does (tests/verifier/test_presentation.py holds the two equal)."""
    if all(type(v) is str for k, v in statement.items() if k != "credentials"):
        try:
            return orjson.dumps(statement, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # a lone surrogate: jcs names it
    return jcs(statement)


def unsigned_presentation(
    request: PresentationRequest,
    credentials: Sequence[Mapping[str, Any]],
    holder: str,
    *,
    at: datetime | None = None,
) -> tuple[dict[str, Any], bytes]:
    """The presentation of ``credentials`` to ``request`` by ``holder`` (a holder id, FORMAT.md §13)
    without its signature, and the digest its holder key signs into ``proof.proofValue`` (``0x`` +
    r ‖ s ‖ v, low s, for secp256k1). For a holder whose key signs elsewhere — the holder page signs
    in the browser, so the key never leaves the enterprise's machine."""
    if not credentials:
        raise InvalidPresentation("a presentation holds at least one credential")
    if not isinstance(holder, str) or not _HOLDER_ID.fullmatch(holder):
        raise InvalidPresentation(
            "the holder must be a holder id urn:certledger:holder:<suite>:0x<public key>"
        )
    for c in credentials:
        if not isinstance(c, Mapping):
            raise InvalidPresentation("a presented credential is a JSON object (a holder copy)")
        subject = c.get("credentialSubject")
        named = subject.get("id") if isinstance(subject, Mapping) else None
        if named is not None and named != holder:
            raise InvalidPresentation(f"credential {c.get('id')} names another holder key ({named[:40]}…)")
    proof: dict[str, Any] = {
        "type": HOLDER_PROOF_TYPE,
        "created": _rfc3339(_now(at)),
        "expires": request.expires,
        "challenge": request.nonce,
        "domain": request.audience,
        "purpose": request.purpose,
        "verificationMethod": holder,
    }
    creds = [dict(c) for c in credentials]
    digest = _statement(holder, proof, creds, _holder_parts(holder)[0])
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiablePresentation"],
        "holder": holder,
        "verifiableCredential": creds,
        "proof": proof,
    }, digest


def present(
    request: PresentationRequest,
    credentials: Sequence[Mapping[str, Any]],
    key: HolderKey,
    *,
    at: datetime | None = None,
) -> dict[str, Any]:
    """The holder's answer to ``request``: a VerifiablePresentation of ``credentials`` (holder copies,
    each redacted as the holder chose), signed with ``key``."""
    presentation, digest = unsigned_presentation(request, credentials, key.holder_id, at=at)
    presentation["proof"]["proofValue"] = "0x" + key.sign(digest).hex()
    return presentation


def _signature_ok(suite: str, public_hex: str, digest: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is the holder key's (``suite``, ``public_hex`` from its holder id) over
    ``digest``."""
    public = bytes.fromhex(public_hex)
    if suite == "sm2":
        return verify_sm2(digest, signature, public)
    if len(signature) != 65 or signature[64] not in (27, 28):
        return False
    if not 0 < int.from_bytes(signature[32:64], "big") <= _SECP256K1_HALF_N:
        return False  # high-s: a malleated copy
    try:  # verification against the named key: a fifth cheaper than recovering the key and comparing
        return bool(PublicKey(public).verify(_der(signature[:32], signature[32:64]), digest, hasher=None))
    except Exception:  # noqa: BLE001 - not a point, r or s out of range: not this key's signature
        return False


def _der(r: bytes, s: bytes) -> bytes:
    """The DER ``SEQUENCE { INTEGER r, INTEGER s }`` libsecp256k1's verify takes (minimal, positive)."""
    r, s = r.lstrip(b"\0"), s.lstrip(b"\0")
    if not r or r[0] & 0x80:  # zero is one 0 byte; a set high bit would read as negative
        r = b"\0" + r
    if not s or s[0] & 0x80:
        s = b"\0" + s
    return bytes((0x30, len(r) + len(s) + 4, 2, len(r))) + r + bytes((2, len(s))) + s


@dataclass(frozen=True)
class PresentationResult:
    """One :class:`VerificationResult` per presented credential, each with the ``holder`` check."""

    valid: bool
    results: tuple[VerificationResult, ...]


def _shape(presentation: Any) -> tuple[str, dict[str, Any], list[Any]]:
    """The holder, the proof and the credentials, or InvalidPresentation naming what is wrong."""
    if not isinstance(presentation, Mapping):
        raise InvalidPresentation("a presentation is a JSON object")
    if presentation.get("type") != ["VerifiablePresentation"]:
        raise InvalidPresentation('a presentation has "type": ["VerifiablePresentation"]')
    holder, proof, creds = (
        presentation.get("holder"),
        presentation.get("proof"),
        presentation.get("verifiableCredential"),
    )
    if not isinstance(holder, str) or not _HOLDER_ID.fullmatch(holder):
        raise InvalidPresentation("the presentation's holder is not a holder key (urn:certledger:holder:…)")
    if not isinstance(proof, dict) or proof.get("type") != HOLDER_PROOF_TYPE:
        raise InvalidPresentation(f"the presentation's proof is not a {HOLDER_PROOF_TYPE}")
    if not _PROOF_MEMBERS.issuperset(proof):
        unknown = sorted(set(proof) - _PROOF_MEMBERS)[0]
        raise InvalidPresentation(f"the presentation's proof has an unknown member {unknown!r}")
    if not isinstance(creds, list) or not creds:
        raise InvalidPresentation("the presentation holds no credential (verifiableCredential)")
    return holder, proof, creds


def _holder_check(
    holder: str, proof: Mapping[str, Any], creds: list[Any], request: PresentationRequest, now: datetime
) -> Check:
    """The presentation-wide part of ``holder``: signature, nonce, audience, purpose, expiry."""
    if proof.get("verificationMethod") != holder:
        return Check("holder", "failed", "the proof was made with another key than the presentation's holder")
    if proof.get("challenge") != request.nonce:
        return Check(
            "holder",
            "failed",
            "the presentation answers another request (its nonce is not the one you issued): a replay",
        )
    if proof.get("domain") != request.audience:
        return Check(
            "holder",
            "failed",
            f"the presentation was made for another relying party ({proof.get('domain')}),"
            f" not {request.audience}",
        )
    if proof.get("purpose") != request.purpose:
        return Check(
            "holder", "failed", f"the presentation was made for another purpose ({proof.get('purpose')!r})"
        )
    if proof.get("expires") != request.expires:
        return Check("holder", "failed", "the presentation states another expiry than your request")
    if now > request.expires_at:
        return Check("holder", "failed", f"the request expired at {request.expires}")
    value = proof.get("proofValue")
    if not isinstance(value, str) or not _PROOF_VALUE.fullmatch(value):
        return Check("holder", "failed", "the holder's signature (proofValue) is not 0x + hex")
    suite, public_hex = _holder_parts(holder)
    statement = _statement(holder, proof, creds, suite, canonical=jcs_unchecked)
    if not _signature_ok(suite, public_hex, statement, bytes.fromhex(value[2:])):
        return Check(
            "holder",
            "failed",
            "the holder's signature does not match the presented credentials and "
            "request (changed or swapped after signing, or made without the key)",
        )
    return Check(
        "holder",
        "passed",
        f"presented by the holder of its key, for {request.audience}, "
        f"purpose {request.purpose!r}, before {request.expires}",
    )


def _bound(credential: Any, holder: str, overall: Check) -> Check:
    """``holder`` for one credential: the presentation-wide check, and the key the credential names."""
    subject = credential.get("credentialSubject") if isinstance(credential, Mapping) else None
    named = subject.get("id") if isinstance(subject, Mapping) else None
    if named is None:
        redacted = (
            (credential.get("proof") or {}).get("redactedDigests")
            if isinstance(credential, Mapping)
            else None
        )
        if isinstance(redacted, Mapping) and "/credentialSubject/id" in redacted:
            return Check("holder", "failed", "the holder key is redacted: possession cannot be checked")
        if overall.status == "failed":
            return overall
        return Check(
            "holder", "skipped", "the credential names no holder key: no proof of possession was possible"
        )
    if overall.status == "failed":
        return overall
    if named != holder:
        return Check(
            "holder", "failed", "the credential names another holder key than the one that presented it"
        )
    return overall


def verify_presentation(
    presentation: Any,
    request: PresentationRequest,
    *,
    verifier: Any,
    at: datetime | None = None,
    data: Any = None,
) -> PresentationResult:
    """Every check of ``verifier`` on each presented credential (``usage`` for the request's audience and
    purpose), plus ``holder``. InvalidPresentation if it is not a presentation at all."""
    now = _now(at)
    holder, proof, creds = _shape(presentation)
    overall = _holder_check(holder, proof, creds, request, now)
    results = []
    for credential in creds:
        base = verifier.verify(
            credential, at=now, data=data, relying_party=request.audience, purpose=request.purpose
        )
        types = credential.get("type") if isinstance(credential, Mapping) else None
        checks = list(base.checks)
        if request.credential_types and not (
            isinstance(types, list) and types[-1:] and types[-1] in request.credential_types
        ):
            checks.append(Check("holder", "failed", f"you asked for {', '.join(request.credential_types)}"))
        else:
            checks.append(_bound(credential, holder, overall))
        results.append(
            VerificationResult(base.valid and checks[-1].status != "failed", tuple(checks), base.credential)
        )
    return PresentationResult(valid=all(r.valid for r in results), results=tuple(results))
