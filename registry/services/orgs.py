"""Organisations, API keys and on-chain onboarding.

API keys look like `cl_<key_id>_<secret>`; only sha256(secret) is stored, compared in constant
time. An issuer organisation gets a chain key (encrypted keystore) registered in the issuer
registry; exporters (and importers that forward data) are registered as flow-ledger participants
under a keyed commitment to their identifier (registry.services.participants); regulators get the
ledger's REGULATOR_ROLE. Those transactions are queued in the outbox with the organisation's row
and sent after it is committed (registry/services/onboarding.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.core.errors import BadRequest, ChainUnavailable, Conflict, NotFound, Unauthenticated
from registry.db.models import ApiKey, Organisation, SigningKey
from registry.services import audit, onboarding
from registry.services.keys import decrypt_secret, new_key
from registry.services.remote_signer import RemoteSigner
from verifier.issuance import CREDENTIAL_TYPES
from verifier.uscc import is_valid_uscc

if TYPE_CHECKING:
    from registry.services.context import ServiceContext

ROLES = ("admin", "issuer", "verifier", "regulator", "exporter", "holder")
SUITES = ("secp256k1", "sm2-sm3")
CREDENTIAL_TYPE_CODES = CREDENTIAL_TYPES  # the verifier's table (FORMAT.md §2): name → on-chain code


@dataclass(frozen=True)
class Principal:
    """Who is calling: an organisation with roles, through one API key."""

    org_id: int
    org_name: str
    roles: tuple[str, ...]
    key_id: str

    def has(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def issue_api_key(session: AsyncSession, org: Organisation, label: str = "") -> str:
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    session.add(
        ApiKey(
            key_id=key_id,
            secret_hash=_hash_secret(secret),
            org_id=org.id,
            label=label,
            created_at=datetime.now(UTC),
        )
    )
    await session.flush()
    return f"cl_{key_id}_{secret}"


async def authenticate(session: AsyncSession, presented: str | None) -> Principal:
    if not presented:
        raise Unauthenticated(
            "an API key is required: send it as 'Authorization: Bearer <key>' or 'X-API-Key'"
        )
    parts = presented.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != "cl" or not parts[1] or not parts[2]:
        raise Unauthenticated("the API key is malformed")
    row = (
        await session.execute(
            select(ApiKey, Organisation)
            .join(Organisation, Organisation.id == ApiKey.org_id)
            .where(ApiKey.key_id == parts[1])
        )
    ).first()
    if row is None or not hmac.compare_digest(row[0].secret_hash, _hash_secret(parts[2])):
        raise Unauthenticated("the API key is not valid")
    key, org = row
    if key.revoked_at is not None:
        raise Unauthenticated("the API key was revoked")
    return Principal(org_id=org.id, org_name=org.name, roles=tuple(org.roles), key_id=key.key_id)


async def bootstrap_admin(session: AsyncSession) -> str | None:
    """On first start: create the operator organisation and return its one-time admin key."""
    count = (await session.execute(select(func.count()).select_from(Organisation))).scalar_one()
    if count:
        return None
    org = Organisation(
        name="certledger operator",
        identifier="operator",
        jurisdiction="CN",
        roles=["admin"],
        created_at=datetime.now(UTC),
    )
    session.add(org)
    await session.flush()
    key = await issue_api_key(session, org, "bootstrap admin")
    await audit.append(
        session,
        actor="system",
        action="bootstrap_admin",
        target=f"org:{org.id}",
        request_id="bootstrap",
        org_id=org.id,
    )
    return key


async def get_org(session: AsyncSession, org_id: int) -> Organisation:
    org = await session.get(Organisation, org_id)
    if org is None:
        raise NotFound(f"organisation {org_id} does not exist")
    return org


async def current_key(session: AsyncSession, org_id: int) -> SigningKey | None:
    return (
        await session.execute(
            select(SigningKey)
            .where(SigningKey.org_id == org_id, SigningKey.retired_at.is_(None))
            .order_by(SigningKey.version.desc())
            .limit(1)
        )
    ).scalar()


async def signing_key(
    session: AsyncSession, org_id: int, passphrase: str, *, signer_timeout: float = 30.0
) -> tuple[SigningKey, str | RemoteSigner, str | None]:
    """(key row, secp256k1 private key, SM2 private key or None) — decrypted in memory. For an
    organisation with its own signer: (key row, its RemoteSigner, None); the registry has no key.

    A keystore is decrypted once per process (scrypt: ~0.5 s of CPU) in a thread, so the event loop
    keeps serving requests meanwhile; then from memory."""
    row = await current_key(session, org_id)
    if row is None:
        raise Conflict(f"organisation {org_id} has no signing key")
    org = await session.get(Organisation, org_id) if row.keystore is None else None
    return row, *await _unlocked(row, org, passphrase, signer_timeout)


@dataclass(frozen=True)
class IssuerKey:
    """An organisation's current signing key as the pipeline signs with it: the secp256k1 private
    key (hex) and, for the SM2 suite, the SM2 one — or, instead of both, the issuer's own signer."""

    version: int
    suite: str
    secp: str | RemoteSigner
    sm2: str | None

    @property
    def private(self) -> str:
        """The private key a batch root is signed with (its suite's)."""
        private = self.sm2 if self.suite == "sm2-sm3" else self.secp
        if not isinstance(private, str):  # (an issuer with its own signer signs there)
            raise RuntimeError(f"no {self.suite} key is kept in the registry for this organisation")
        return private


async def issuer_keys(ctx: ServiceContext, org_ids: set[int]) -> dict[int, IssuerKey]:
    """The current signing key of each organisation of ``org_ids``: the rows read in one query,
    the keystores then decrypted with no session open (as :func:`signing_key`: once per process,
    in a thread; then from memory)."""
    async with ctx.sessions() as s:
        rows = (
            await s.execute(
                select(SigningKey, Organisation)
                .join(Organisation, Organisation.id == SigningKey.org_id)
                .where(SigningKey.org_id.in_(org_ids), SigningKey.retired_at.is_(None))
                .order_by(SigningKey.org_id, SigningKey.version.desc())
            )
        ).all()
    current: dict[int, tuple[SigningKey, Organisation]] = {}
    for row, org in rows:  # (each organisation's newest key first, as current_key takes it)
        current.setdefault(org.id, (row, org))
    out = {}
    for org_id in sorted(org_ids):
        if org_id not in current:
            raise Conflict(f"organisation {org_id} has no signing key")
        row, org = current[org_id]
        secp, sm2 = await _unlocked(row, org, ctx.settings.passphrase(), ctx.settings.signer_timeout_seconds)
        out[org_id] = IssuerKey(row.version, org.suite or "secp256k1", secp, sm2)
    return out


async def _unlocked(
    row: SigningKey, org: Organisation | None, passphrase: str, signer_timeout: float
) -> tuple[str | RemoteSigner, str | None]:
    """(secp256k1 private key, SM2 private key or None) of ``row``, decrypted; for a row with no
    keystore, (the signer of ``org``, None)."""
    if row.keystore is None:
        if org is None or not org.signer_url:
            raise Conflict(f"organisation {row.org_id} has neither a keystore nor a signer")
        return RemoteSigner(org.signer_url, row.address.lower(), signer_timeout), None
    sm2 = await asyncio.to_thread(decrypt_secret, row.sm2_keystore, passphrase) if row.sm2_keystore else None
    return await asyncio.to_thread(decrypt_secret, row.keystore, passphrase), sm2


async def create_organisation(
    session: AsyncSession,
    ctx: ServiceContext,  # registry.services.context.ServiceContext
    *,
    name: str,
    identifier: str,
    jurisdiction: str,
    roles: list[str],
    suite: str = "secp256k1",
    credential_types: list[str] | None = None,
    signer: dict | None = None,
    actor: str,
    request_id: str,
) -> tuple[Organisation, str]:
    """Create an organisation, its first API key, and its on-chain identity. Returns (org, api key).

    ``signer`` ({"url", "address", "sm2PublicKey"}): an issuer that keeps its key in its own signer
    (``certledger signer``); the registry registers that address (and SM2 key) and never holds the key."""
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise BadRequest(
            f"unknown roles {bad}: choose from {', '.join(ROLES)}" if bad else "roles must not be empty"
        )
    if suite not in SUITES:
        raise BadRequest(f"unknown signature suite {suite!r}: choose secp256k1 or sm2-sm3")
    types = credential_types or []
    unknown = [t for t in types if t not in CREDENTIAL_TYPE_CODES]
    if unknown:
        raise BadRequest(
            f"unknown credential types {unknown}: choose from {', '.join(CREDENTIAL_TYPE_CODES)}"
        )
    if "issuer" in roles and not types:
        raise BadRequest("an issuer needs at least one credential type")
    if "issuer" in roles and not is_valid_uscc(identifier):  # refused before anything is written
        raise BadRequest(f"{identifier!r} is not a valid unified social credit code (GB 32100-2015)")
    needs_chain = signer is not None or any(r in roles for r in ("issuer", "regulator", "exporter"))
    if needs_chain and not await ctx.chain.is_up():
        raise ChainUnavailable("the chain node is unreachable: onboarding needs it, try again later")
    remote = await _check_signer(signer, roles, suite, ctx) if signer is not None else None
    exists = (
        await session.execute(select(Organisation.id).where(Organisation.identifier == identifier))
    ).scalar()
    if exists is not None:
        raise Conflict(
            f"an organisation with identifier {identifier} exists already (id {exists})",
            details={"org_id": exists},
        )

    org = Organisation(
        name=name,
        identifier=identifier,
        jurisdiction=jurisdiction,
        roles=roles,
        suite=suite if "issuer" in roles else None,
        credential_types=[CREDENTIAL_TYPE_CODES[t] for t in types],
        created_at=datetime.now(UTC),
    )
    session.add(org)
    await session.flush()
    needs_key = any(r in roles for r in ("issuer", "regulator", "exporter"))
    sm2_public: str | None = None
    if remote is not None:
        assert signer is not None  # remote is made from it
        org.signer_url = signer["url"]
        session.add(
            SigningKey(
                org_id=org.id,
                version=1,
                suite=suite,
                address=remote.address,
                sm2_public_key=remote.sm2_public_key,
                keystore=None,
                sm2_keystore=None,
                created_at=datetime.now(UTC),
            )
        )
        org.chain_account = remote.address
        sm2_public = remote.sm2_public_key
    elif needs_key:
        passphrase = ctx.settings.passphrase()
        key = new_key(passphrase, suite if "issuer" in roles else "secp256k1")
        session.add(
            SigningKey(
                org_id=org.id,
                version=1,
                suite=suite,
                address=key.address,
                sm2_public_key=key.sm2_public_key,
                keystore=key.keystore,
                sm2_keystore=key.sm2_keystore,
                created_at=datetime.now(UTC),
            )
        )
        org.chain_account = key.address
        sm2_public = key.sm2_public_key
    if org.chain_account is not None:  # its on-chain identity: queued with its row, sent after commit
        await onboarding.queue(
            session,
            ctx,
            org,
            sm2_public_key=sm2_public,
            credential_types=[CREDENTIAL_TYPE_CODES[t] for t in types],
            actor=actor,
            request_id=request_id,
        )
    api_key = await issue_api_key(session, org, "initial")
    await audit.append(
        session,
        actor=actor,
        action="create_organisation",
        target=f"org:{org.id}",
        request_id=request_id,
        org_id=org.id,
        details={
            "name": name,
            "identifier": identifier,
            "roles": roles,
            "account": org.chain_account,
            **({"signer": org.signer_url} if org.signer_url else {}),
        },
    )
    return org, api_key


@dataclass(frozen=True)
class RemoteKey:
    """The public half of an issuer's key held by its own signer (what onboarding registers)."""

    address: str
    sm2_public_key: str | None


async def _check_signer(signer: dict, roles: list[str], suite: str, ctx: ServiceContext) -> RemoteKey:
    """Check an issuer's signer reference, and that the signer holds the address (``eth_accounts``)."""
    from eth_utils.address import to_checksum_address

    if "issuer" not in roles or not set(roles) <= {"issuer", "verifier"}:
        raise BadRequest(
            "a remote signer is for an issuer (roles issuer, and optionally verifier): "
            "regulators and exporters sign with a key the registry holds"
        )
    url, address, sm2 = signer.get("url"), signer.get("address"), signer.get("sm2PublicKey")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise BadRequest(f"the signer URL must be http(s)://..., not {url!r}")
    try:
        address = to_checksum_address(address)
    except (TypeError, ValueError):
        raise BadRequest(
            f"the signer's address must be a 0x-prefixed 20-byte address, not {address!r}"
        ) from None
    if suite == "sm2-sm3":
        if not (
            isinstance(sm2, str)
            and len(sm2) == 130
            and sm2[:2] == "0x"
            and all(c in "0123456789abcdefABCDEF" for c in sm2[2:])
        ):
            raise BadRequest(
                "an sm2-sm3 issuer's signer needs its SM2 public key: 0x + 128 hex digits (x ‖ y)"
            )
    elif sm2 is not None:
        raise BadRequest("an SM2 public key is for the sm2-sm3 suite only")
    held = await RemoteSigner(url, address.lower(), ctx.settings.signer_timeout_seconds).accounts()
    if address.lower() not in held:
        raise BadRequest(
            f"the signer at {url} does not hold {address} (it holds {', '.join(held) or 'nothing'})"
        )
    return RemoteKey(address, sm2.lower() if sm2 else None)
