"""Holders' and participants' private on-chain identifiers (FORMAT.md §1, §11; issue #21).

An enterprise's ``subjectHash`` — the subject half of each of its credentials' Merkle leaves, and
its participant id on the DataFlowLedger (exporter and importer ids alike) — is
``keccak256(subjectSalt ‖ utf8(credit code))``, where ``subjectSalt`` is derived from a secret
only the registry (and the regulator, who runs it) holds: :func:`verifier.issuance.subject_salt_for`
over the key in ``registry_secrets``. Credit codes are public, so a bare ``keccak256(code)`` could
be reversed with a dictionary; this commitment cannot without the key. Every credential of one
holder has the same ``subjectSalt``, so the DataFlowLedger's holder check (the certificate's
``subjectHash`` is the declaring participant's id) still holds on-chain.

The key is made once per database, by migration b0002, and kept there so that every instance of a
deployment derives the same ids. It cannot be rotated without re-issuing every
credential and re-registering every participant.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.core.errors import Conflict
from registry.db.models import RegistrySecret
from verifier.issuance import subject_hash, subject_salt_for

KEY_NAME = "subject_salt_key"


class ParticipantIds:
    """The keyed participant ids of one deployment."""

    __slots__ = ("key",)

    def __init__(self, key: bytes) -> None:
        self.key = key

    def salt(self, identifier: str) -> bytes:
        """The holder's ``subjectSalt`` (the same in every credential issued to it)."""
        return subject_salt_for(self.key, identifier)

    def id(self, identifier: str) -> bytes:
        """``keccak256(subjectSalt ‖ utf8(identifier))``: the participant's on-chain id."""
        return subject_hash(identifier, subject_salt_for(self.key, identifier))

    def hex(self, identifier: str) -> str:
        return "0x" + self.id(identifier).hex()


async def participant_ids(session: AsyncSession) -> ParticipantIds:
    """The deployment's :class:`ParticipantIds` (its key is made by migration b0002). One primary-key
    read: callers take it once per upload or request, not per credential."""
    value = (
        await session.execute(select(RegistrySecret.value).where(RegistrySecret.name == KEY_NAME))
    ).scalar_one_or_none()
    if value is None:
        raise Conflict(
            "the database has no subject-salt key (registry_secrets): it was removed by hand; "
            "restore it from a backup — a new key would change every participant id"
        )
    return ParticipantIds(bytes.fromhex(value))


async def participant_names(session: AsyncSession) -> dict[str, tuple[str, str]]:
    """Every participant the registry knows, by its keyed id (0x-hex): (name, identifier) — the
    organisations and every party a declaration names. What lets the regulator, who holds the key,
    name the nodes of a trace read from the chain alone."""
    from registry.db.models import FlowDeclaration, Organisation

    ids = await participant_ids(session)
    out: dict[str, tuple[str, str]] = {}
    for name, identifier in (await session.execute(select(Organisation.name, Organisation.identifier))).all():
        out[ids.hex(identifier)] = (name, identifier)
    for declaration in (await session.execute(select(FlowDeclaration.declaration))).scalars():
        for party in (declaration.get("exporter"), declaration.get("importer")):
            if isinstance(party, dict) and isinstance(party.get("identifier"), str):
                out.setdefault(
                    ids.hex(party["identifier"]), (str(party.get("name") or ""), party["identifier"])
                )
    return out


def participant_names_of_database(database_url: str) -> tuple[ParticipantIds, dict[str, tuple[str, str]]]:
    """:func:`participant_ids` and :func:`participant_names` from the registry's database. Sync."""
    import asyncio

    from registry.db.session import make_engine, make_sessionmaker

    async def read() -> tuple[ParticipantIds, dict[str, tuple[str, str]]]:
        engine = make_engine(database_url)
        try:
            async with make_sessionmaker(engine)() as s:
                return await participant_ids(s), await participant_names(s)
        finally:
            await engine.dispose()

    return asyncio.run(read())
