"""Organisations, API keys and on-chain onboarding.

API keys look like `cl_<key_id>_<secret>`; only sha256(secret) is stored, compared in constant
time. An issuer organisation gets a chain key (encrypted keystore) registered in the issuer
registry; exporters (and importers that forward data) are registered as flow-ledger participants
under keccak256(identifier); regulators get the ledger's REGULATOR_ROLE.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from eth_utils import keccak
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.core.errors import BadRequest, Conflict, NotFound, Unauthenticated
from registry.db.models import ApiKey, Organisation, SigningKey
from registry.services import audit
from registry.services.keys import decrypt_secret, new_key
from verifier.issuance import CREDENTIAL_TYPES

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
    session.add(ApiKey(key_id=key_id, secret_hash=_hash_secret(secret), org_id=org.id, label=label,
                       created_at=datetime.now(timezone.utc)))
    await session.flush()
    return f"cl_{key_id}_{secret}"


async def authenticate(session: AsyncSession, presented: str | None) -> Principal:
    if not presented:
        raise Unauthenticated("an API key is required: send it as 'Authorization: Bearer <key>' or 'X-API-Key'")
    parts = presented.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != "cl" or not parts[1] or not parts[2]:
        raise Unauthenticated("the API key is malformed")
    row = (await session.execute(
        select(ApiKey, Organisation).join(Organisation, Organisation.id == ApiKey.org_id)
        .where(ApiKey.key_id == parts[1])
    )).first()
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
    org = Organisation(name="certledger operator", identifier="operator", jurisdiction="CN",
                       roles=["admin"], created_at=datetime.now(timezone.utc))
    session.add(org)
    await session.flush()
    key = await issue_api_key(session, org, "bootstrap admin")
    await audit.append(session, actor="system", action="bootstrap_admin", target=f"org:{org.id}",
                       request_id="bootstrap", org_id=org.id)
    return key


async def get_org(session: AsyncSession, org_id: int) -> Organisation:
    org = await session.get(Organisation, org_id)
    if org is None:
        raise NotFound(f"organisation {org_id} does not exist")
    return org


async def current_key(session: AsyncSession, org_id: int) -> SigningKey | None:
    return (await session.execute(
        select(SigningKey).where(SigningKey.org_id == org_id, SigningKey.retired_at.is_(None))
        .order_by(SigningKey.version.desc()).limit(1)
    )).scalar()


async def signing_key(session: AsyncSession, org_id: int, passphrase: str) -> tuple[SigningKey, str, str | None]:
    """(key row, secp256k1 private key, SM2 private key or None) — decrypted in memory.

    A keystore is decrypted once per process (scrypt: ~0.5 s of CPU) in a thread, so the event loop
    keeps serving requests meanwhile; then from memory."""
    row = await current_key(session, org_id)
    if row is None:
        raise Conflict(f"organisation {org_id} has no signing key")
    sm2 = await asyncio.to_thread(decrypt_secret, row.sm2_keystore, passphrase) if row.sm2_keystore else None
    return row, await asyncio.to_thread(decrypt_secret, row.keystore, passphrase), sm2


async def keystores_of(session: AsyncSession, org_ids: set[int]) -> list[str]:
    """The keystores of these organisations' current signing keys (for :func:`unlock`)."""
    rows = [await current_key(session, org_id) for org_id in sorted(org_ids)]
    return [k for row in rows if row is not None for k in (row.keystore, row.sm2_keystore) if k]


async def unlock(keystores: list[str], passphrase: str) -> None:
    """Decrypt keystores ahead of :func:`signing_key` (each once per process, in a thread): called
    with no transaction open, so their first scrypt is not paid inside one."""
    for keystore in keystores:
        await asyncio.to_thread(decrypt_secret, keystore, passphrase)


def participant_id(identifier: str) -> bytes:
    return keccak(text=identifier)


async def create_organisation(
    session: AsyncSession,
    ctx,  # registry.services.context.ServiceContext
    *,
    name: str,
    identifier: str,
    jurisdiction: str,
    roles: list[str],
    suite: str = "secp256k1",
    credential_types: list[str] | None = None,
    actor: str,
    request_id: str,
) -> tuple[Organisation, str]:
    """Create an organisation, its first API key, and its on-chain identity. Returns (org, api key)."""
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise BadRequest(f"unknown roles {bad}: choose from {', '.join(ROLES)}" if bad else "roles must not be empty")
    if suite not in SUITES:
        raise BadRequest(f"unknown signature suite {suite!r}: choose secp256k1 or sm2-sm3")
    types = credential_types or []
    unknown = [t for t in types if t not in CREDENTIAL_TYPE_CODES]
    if unknown:
        raise BadRequest(f"unknown credential types {unknown}: choose from {', '.join(CREDENTIAL_TYPE_CODES)}")
    if "issuer" in roles and not types:
        raise BadRequest("an issuer needs at least one credential type")
    exists = (await session.execute(select(Organisation.id).where(Organisation.identifier == identifier))).scalar()
    if exists is not None:
        raise Conflict(f"an organisation with identifier {identifier} exists already (id {exists})",
                       details={"org_id": exists})

    org = Organisation(name=name, identifier=identifier, jurisdiction=jurisdiction, roles=roles,
                       suite=suite if "issuer" in roles else None,
                       credential_types=[CREDENTIAL_TYPE_CODES[t] for t in types], created_at=datetime.now(timezone.utc))
    session.add(org)
    await session.flush()
    needs_key = any(r in roles for r in ("issuer", "regulator", "exporter"))
    if needs_key:
        passphrase = ctx.settings.passphrase()
        key = new_key(passphrase, suite if "issuer" in roles else "secp256k1")
        session.add(SigningKey(org_id=org.id, version=1, suite=suite, address=key.address,
                               sm2_public_key=key.sm2_public_key, keystore=key.keystore,
                               sm2_keystore=key.sm2_keystore, created_at=datetime.now(timezone.utc)))
        org.chain_account = key.address
        await ctx.onboard_on_chain(org, key, types)
    api_key = await issue_api_key(session, org, "initial")
    await audit.append(session, actor=actor, action="create_organisation", target=f"org:{org.id}",
                       request_id=request_id, org_id=org.id,
                       details={"name": name, "identifier": identifier, "roles": roles,
                                "account": org.chain_account, "issuer_id": org.issuer_id})
    return org, api_key
