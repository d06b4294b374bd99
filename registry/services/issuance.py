"""Accepting credentials: validate, build the W3C document, salt, hash, persist as *accepted*.

Large uploads are prepared (salts + digests + targetHash) in a process pool on every core;
the rows are written in one transaction per upload chunk, together with a status-list index
range reserved from the `counters` table.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from eth_utils import keccak
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from registry.core.errors import BadRequest, Forbidden, ValidationFailed
from registry.db.models import Counter, Credential, Organisation
from registry.services import audit
from registry.services.orgs import CREDENTIAL_TYPE_CODES, Principal

CONTEXT = ["https://www.w3.org/ns/credentials/v2", "https://certledger.example/ns/v1"]
RECORD_KEYS = {"id", "validFrom", "validUntil", "credentialSubject"}
POOL_THRESHOLD = 2000
CHUNK = 2500


@dataclass
class AcceptResult:
    accepted: list[str] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_document(record: dict, type_name: str, issuer: dict, status_index: int, deployment: dict) -> dict:
    chain_id, registry = deployment["chainId"], deployment["anchorRegistry"].lower()
    base = f"urn:certledger:{chain_id}:{registry}:status"
    doc = {
        "@context": CONTEXT,
        "id": record.get("id") or f"urn:uuid:{uuid.uuid4()}",
        "type": ["VerifiableCredential", type_name],
        "issuer": issuer,
        "validFrom": record.get("validFrom") or _iso(datetime.now(timezone.utc)),
    }
    if record.get("validUntil") is not None:
        doc["validUntil"] = record["validUntil"]
    doc["credentialSubject"] = record["credentialSubject"]
    doc["credentialSchema"] = {"id": f"https://certledger.example/schemas/v1/{type_name}.json", "type": "JsonSchema"}
    doc["credentialStatus"] = [
        {"id": f"{base}:{purpose}#{status_index}", "type": "BitstringStatusListEntry",
         "statusPurpose": purpose, "statusListIndex": str(status_index),
         "statusListCredential": f"{base}:{purpose}"}
        for purpose in ("revocation", "suspension")
    ]
    return doc


def prepare_chunk(docs: list[dict], type_name: str, suite: str) -> list[tuple[str, str, str] | list[str]]:
    """For each document: (salts JSON, targetHash, subjectHash) or a list of error messages.

    Runs in worker processes: imports only the verifier.
    """
    from verifier._internal.disclosure import SUITE_HASHES, salt_and_digest, target_hash_of
    from verifier._schema import schema_errors
    from verifier.errors import InvalidDocument

    h = SUITE_HASHES[suite]
    out: list[Any] = []
    for doc in docs:
        errors = schema_errors(doc, type_name)
        if errors:
            out.append(errors)
            continue
        try:
            salts, digests = salt_and_digest(doc, h)
        except InvalidDocument as exc:
            out.append([str(exc)])
            continue
        subject = doc["credentialSubject"]["unifiedSocialCreditCode"]
        out.append((json.dumps(salts), "0x" + target_hash_of(h, digests).hex(), "0x" + keccak(text=subject).hex()))
    return out


_UUID_URN = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _shape_errors(record: Any) -> list[str]:
    if not isinstance(record, dict):
        return [f"a record must be a JSON object, not {type(record).__name__}"]
    errs = []
    extra = sorted(set(record) - RECORD_KEYS)
    if extra:
        errs.append(f"unknown fields {extra}: a record has credentialSubject, and optionally id, validFrom, validUntil")
    if not isinstance(record.get("credentialSubject"), dict):
        errs.append("credentialSubject must be a JSON object")
    rid = record.get("id")
    if rid is not None and (not isinstance(rid, str) or not _UUID_URN.fullmatch(rid)):
        errs.append("id must be a 'urn:uuid:...' string (lower-case hex)")
    for k in ("validFrom", "validUntil"):
        if k in record and record[k] is not None and not isinstance(record[k], str):
            errs.append(f"{k} must be an RFC 3339 date-time string")
    return errs


async def reserve_status_indexes(session: AsyncSession, n: int) -> int:
    """Reserve n consecutive status-list indexes; returns the first. Row-locked on PostgreSQL."""
    row = (await session.execute(
        update(Counter).where(Counter.name == "status_index").values(value=Counter.value + n)
        .returning(Counter.value)
    )).scalar()
    if row is None:
        raise RuntimeError("the status_index counter is missing: run `certledger db upgrade`")
    return row - n


class Issuance:
    def __init__(self, ctx):
        self.ctx = ctx
        self._pool: ProcessPoolExecutor | None = None

    def pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing

            self._pool = ProcessPoolExecutor(max_workers=max(2, (multiprocessing.cpu_count() or 2)),
                                             mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    async def _prepare(self, docs: list[dict], type_name: str, suite: str) -> list:
        if len(docs) < POOL_THRESHOLD:
            return prepare_chunk(docs, type_name, suite)
        loop = asyncio.get_running_loop()
        step = max(500, len(docs) // (2 * (self.pool()._max_workers)))
        parts = await asyncio.gather(*[
            loop.run_in_executor(self.pool(), prepare_chunk, docs[i:i + step], type_name, suite)
            for i in range(0, len(docs), step)
        ])
        return [x for part in parts for x in part]

    async def accept(self, principal: Principal, type_name: str, records: list[Any], *,
                     atomic: bool, request_id: str) -> AcceptResult:
        if type_name not in CREDENTIAL_TYPE_CODES:
            raise BadRequest(f"unknown credential type {type_name!r}: choose from {', '.join(CREDENTIAL_TYPE_CODES)}")
        if not principal.has("issuer"):
            raise Forbidden("only an issuer organisation may issue credentials")
        if not records:
            raise BadRequest("no records to issue")
        ctx = self.ctx
        code = CREDENTIAL_TYPE_CODES[type_name]
        async with ctx.sessions() as s:
            org = await s.get(Organisation, principal.org_id)
        if org.issuer_id is None:
            raise Forbidden(f"{org.name} is not registered as an issuer on-chain")
        if code not in (org.credential_types or []):
            raise Forbidden(f"{org.name} may not issue {type_name}")
        issuer = {"id": f"did:certledger:{ctx.deployment.chain_id}:issuer:{org.issuer_id}", "name": org.name,
                  "unifiedSocialCreditCode": org.identifier}
        dep = {"chainId": ctx.deployment.chain_id, "anchorRegistry": ctx.deployment.anchor_registry}

        result = AcceptResult()
        problems: dict[int, list[str]] = {}
        seen: set[str] = set()
        for i, rec in enumerate(records):
            errs = _shape_errors(rec)
            rid = rec.get("id") if isinstance(rec, dict) else None
            if rid:
                if rid in seen:
                    errs.append(f"duplicate id {rid} in this upload")
                seen.add(rid)
            if errs:
                problems[i] = errs
        if seen:
            async with ctx.sessions() as s:
                ids = list(seen)
                for j in range(0, len(ids), 1000):
                    taken = set((await s.execute(select(Credential.id).where(Credential.id.in_(ids[j:j + 1000]))))
                                .scalars())
                    for i, rec in enumerate(records):
                        if isinstance(rec, dict) and rec.get("id") in taken:
                            problems.setdefault(i, []).append(f"a credential with id {rec['id']} exists already")
        candidates = [i for i in range(len(records)) if i not in problems]
        if atomic and problems:
            # name every invalid record, not only the malformed ones: check the rest too
            trial = [build_document(records[i], type_name, issuer, 0, dep) for i in candidates]
            for i, prep in zip(candidates, await self._prepare(trial, type_name, org.suite or "secp256k1")):
                if isinstance(prep, list):
                    problems[i] = prep
            raise ValidationFailed(f"{len(problems)} of {len(records)} records are invalid; nothing was issued",
                                   details=_problem_list(problems))

        async with ctx.sessions() as s, s.begin():
            first = await reserve_status_indexes(s, len(candidates))
        docs = [build_document(records[i], type_name, issuer, first + k, dep) for k, i in enumerate(candidates)]
        prepared = await self._prepare(docs, type_name, org.suite or "secp256k1")
        rows = []
        accepted_at = datetime.now(timezone.utc)
        for k, (i, doc, prep) in enumerate(zip(candidates, docs, prepared)):
            if isinstance(prep, list):
                problems[i] = prep
                continue
            salts, target, subject = prep
            rows.append(dict(
                id=doc["id"], status_index=first + k, issuer_org_id=org.id, credential_type=code,
                subject_identifier=doc["credentialSubject"]["unifiedSocialCreditCode"], target_hash=target,
                subject_hash=subject, document=json.dumps(doc, ensure_ascii=False), salts=salts,
                accepted_at=accepted_at, valid_until=_parse_until(doc.get("validUntil")), status=1, status_reason=0,
            ))
        if atomic and problems:
            raise ValidationFailed(f"{len(problems)} of {len(records)} records are invalid; nothing was issued",
                                   details=_problem_list(problems))
        async with ctx.sessions() as s, s.begin():
            for j in range(0, len(rows), CHUNK):
                await s.execute(insert(Credential), rows[j:j + CHUNK])
            await audit.append(s, actor=principal.org_name, action="issue", target=f"{type_name}:{len(rows)}",
                               request_id=request_id, org_id=principal.org_id,
                               details={"count": len(rows), "rejected": len(problems),
                                        "first": rows[0]["id"] if rows else None})
        crash = getattr(ctx, "pipeline", None)
        if crash is not None:
            crash.crash.passed("accepted")
        result.accepted = [r["id"] for r in rows]
        result.rejected = _problem_list(problems)
        return result


def _parse_until(text: str | None) -> datetime | None:
    if not text:
        return None
    from verifier._schema import parse_datetime

    return parse_datetime(text)


def _problem_list(problems: dict[int, list[str]]) -> list[dict]:
    return [{"index": i, "errors": errs} for i, errs in sorted(problems.items())][:1000]
