from typing import Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from registry.api.deps import AnyPrincipal, CtxDep, IssuanceDep, IssuerOrAdmin, RequestId
from registry.api.openapi import link
from registry.core.errors import BadRequest, Forbidden, UnsupportedMediaType
from registry.db.models import Batch
from registry.services import lifecycle, records
from registry.services.jsonl import jsonl_records
from registry.services.prepare import NESTED_TOO_DEEPLY, RECORD_DECODER
from verifier import CREDENTIAL_TYPES

router = APIRouter(prefix="/v1/credentials", tags=["credentials"])

MAX_ID = 2**31 - 1  # the DB's integer ids and offsets: a larger one would fail in the query
CredType = Literal[tuple(CREDENTIAL_TYPES)]  # type: ignore[valid-type]  # the verifier's table


class IssueOne(BaseModel):
    type: CredType
    record: dict[str, Any] = Field(description="credentialSubject and optionally id, validFrom, validUntil")


class StatusChange(BaseModel):
    reason: str | int | None = None


_ID = "$response.body#/id"


@router.post(
    "",
    status_code=202,
    responses={
        202: {
            "description": "accepted",
            "links": {
                "GetCredential": link("get_credential", "the credential just accepted", credential_id=_ID),
                **{
                    f"{a.title()}Credential": link(f"{a}_credential", f"{a} it", credential_id=_ID)
                    for a in ("revoke", "suspend", "reinstate")
                },
            },
        }
    },
)
async def issue_one(body: IssueOne, issuance: IssuanceDep, p: IssuerOrAdmin, rid: RequestId):
    """Accept one credential; it is anchored with the next batch (GET it to follow its state)."""
    res = await issuance.accept(p, body.type, [body.record], atomic=True, request_id=rid)
    return {"id": res.accepted[0], "state": "accepted"}


_BULK_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": {"type": "object"},
                    "description": "records: credentialSubject and optionally id, validFrom, validUntil",
                }
            },
            "application/x-ndjson": {
                "schema": {"type": "string", "description": "JSON Lines: one record per line"}
            },
            "application/jsonl": {
                "schema": {"type": "string", "description": "JSON Lines: one record per line"}
            },
        },
    }
}


@router.post("/bulk", status_code=202, openapi_extra=_BULK_BODY)
async def issue_bulk(
    request: Request,
    issuance: IssuanceDep,
    p: IssuerOrAdmin,
    rid: RequestId,
    type: CredType = Query(..., description="credential type of every record"),
    atomic: bool = Query(False, description="refuse the whole upload if any record is invalid"),
):
    """Accept many: a JSON array, or JSON Lines (application/x-ndjson, application/jsonl)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    records = texts = lines = None
    if ctype == "application/json":
        try:
            records = RECORD_DECODER.decode(raw.decode("utf-8"))  # strict: no CESU-8 surrogates
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN / Infinity
            raise BadRequest(f"the body is not valid JSON: {exc}") from None
        except RecursionError:
            raise BadRequest(f"the body is not valid JSON: {NESTED_TOO_DEEPLY}") from None
        if not isinstance(records, list):
            raise BadRequest("a JSON body must be an array of records")
    elif ctype in ("application/x-ndjson", "application/jsonl", "application/json-lines", "text/plain"):
        # each record's bytes go to the worker processes, which decode them (a line that is not UTF-8
        # or not JSON refuses the upload, naming it); the body is split as bytes, never decoded here
        texts, lines = jsonl_records(raw)
    else:
        raise UnsupportedMediaType(
            f"unsupported content type {ctype or '(none)'}: send application/json "
            "(an array) or application/x-ndjson (one record per line)"
        )
    count = len(records if records is not None else texts)
    if count > 200_000:
        raise BadRequest(f"{count} records in one upload; the limit is 200,000")
    res = await issuance.accept(p, type, records, atomic=atomic, request_id=rid, texts=texts, lines=lines)
    # (serialised here: FastAPI's encoder would walk every one of up to 200,000 ids first)
    return Response(
        orjson.dumps({"accepted": len(res.accepted), "ids": res.accepted, "rejected": res.rejected}),
        status_code=202,
        media_type="application/json",
    )


@router.get("")
async def list_credentials(
    ctx: CtxDep,
    p: AnyPrincipal,
    type: str | None = None,
    status: str | None = None,
    subject: str | None = Query(None, max_length=64),
    batch: int | None = Query(None, ge=1, le=MAX_ID),
    licence_identifier: str | None = Query(
        None,
        alias="licenceIdentifier",
        max_length=160,
        description="an e-licence's 证照标识 (FORMAT.md §2.4): the licence it identifies",
    ),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_ID),
):
    async with ctx.sessions() as s:
        return await records.list_credentials(
            s,
            p,
            type_name=type,
            status=status,
            subject=subject,
            batch_id=batch,
            licence_identifier=licence_identifier,
            limit=limit,
            offset=offset,
        )


@router.get("/{credential_id}")
async def get_credential(
    credential_id: str,
    ctx: CtxDep,
    p: AnyPrincipal,
    disclose: Literal["citizenIdNumber"] | None = Query(
        None,
        description="a natural person's certificate: include its citizen ID number (redacted by default, "
        "FORMAT.md §2.4)",
    ),
):
    """The holder's copy (document + proof) once anchored; otherwise its state."""
    async with ctx.sessions() as s:
        cred = await records.load_credential(s, credential_id)
        if not records.can_read(p, cred):
            raise Forbidden("only the issuing organisation or an admin reads a credential")
        batch = await s.get(Batch, cred.batch_id) if cred.batch_id else None
        summary = records.credential_summary(cred, batch)
        if batch is None or batch.state != "anchored":
            return {**summary, "credential": None}
        copy = await records.holder_copy(s, ctx, cred, disclose_citizen_id=disclose == "citizenIdNumber")
        return {**summary, "credential": copy}


@router.get(
    "/{credential_id}/qr.{fmt}",
    responses={
        200: {
            "description": "the QR code (fmt: png or svg)",
            "content": {"image/png": {}, "image/svg+xml": {}},
        }
    },
)
async def credential_qr(credential_id: str, fmt: Literal["png", "svg"], ctx: CtxDep, p: AnyPrincipal):
    """The credential as a QR code (png or svg) linking to the verify page for it."""
    from registry.services.qr import qr_png, qr_svg, verify_link

    async with ctx.sessions() as s:
        cred = await records.load_credential(s, credential_id)
        if not records.can_read(p, cred):
            raise Forbidden("only the issuing organisation or an admin renders a credential's QR code")
    link = verify_link(ctx.settings.public_url, credential_id)
    if fmt == "png":
        return Response(qr_png(link), media_type="image/png")
    return Response(qr_svg(link), media_type="image/svg+xml")


for _action in ("revoke", "suspend", "reinstate"):

    def _make(action):
        async def change(
            credential_id: str,
            ctx: CtxDep,
            p: IssuerOrAdmin,
            rid: RequestId,
            body: StatusChange | None = None,
        ):
            return await lifecycle.change_credential(
                ctx, p, credential_id, action, body.reason if body else None, rid
            )

        change.__name__ = f"{action}_credential"
        change.__doc__ = f"{action.capitalize()} one credential: on-chain first, the DB after confirmation."
        return change

    router.post(f"/{{credential_id}}/{_action}")(_make(_action))
