"""The public verify page (server-rendered, one small script and one stylesheet, no external
resources): drop a credential file — or open an e-licence's QR link — and see every check of the
offline verifier, green or red, in plain words, with Chinese and English labels.

No API key anywhere here: a bank clerk with no account must be able to check a credential a
business hands over. Everything is verified against the registry's own signed trust bundle
(`current_verifier`), exactly as `certledger-verify --bundle` would.

- ``GET  /verify``                    the page (``?credential=<id>`` is the QR link)
- ``POST /verify/check``              multipart: ``credential`` (≤ 10 MiB), optional ``dataset``
                                      (≤ 100 MiB, streamed to a temporary file), ``relyingParty``,
                                      ``purpose``, ``at`` → the result, redacted paths, disclosed fields
- ``GET  /verify/credential/{id}``    an e-licence's verification (business licence data is public);
                                      for a data asset certificate only its id, type, issuer, status
- ``GET  /verify/static/verify.js|css``

The two checks are rate-limited per client address (``CERTLEDGER_PUBLIC_RATE_LIMIT``): 429 with
``Retry-After`` over the limit.
"""

from __future__ import annotations

import asyncio
import html
import os
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from registry.api.deps import CtxDep, public_rate_limit
from registry.core.errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType

if TYPE_CHECKING:
    from registry.services.context import ServiceContext

router = APIRouter(tags=["pages"])

PACKAGE = Path(__file__).resolve().parents[2]
STATIC = {
    "verify.js": "text/javascript; charset=utf-8",
    "lang.js": "text/javascript; charset=utf-8",
    "verify.css": "text/css; charset=utf-8",
    "request.js": "text/javascript; charset=utf-8",
}

MIB = 1024 * 1024
MAX_CREDENTIAL = 10 * MIB
MAX_DATASET = 100 * MIB
MAX_FIELD = 1024
MAX_PARTS = 8
MAX_DISPLAY = 500  # disclosed fields / redacted paths listed for display
E_LICENCES = frozenset({"BusinessLicence", "OperatingPermit"})
FIELDS = {"credential", "dataset", "relyingParty", "purpose", "at"}

#: (name, 中文, English) for each check, in the verifier's order
CHECKS = (
    ("format", "格式", "Format"),
    ("integrity", "完整性", "Integrity"),
    ("issuer", "签发机构", "Issuer"),
    ("anchor", "链上存证", "Anchor"),
    ("status", "状态", "Status"),
    ("validity", "有效期", "Validity"),
    ("data", "数据", "Data"),
    ("usage", "用途", "Usage"),
)

HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
e = html.escape


@cache
def _template() -> Template:
    return Template((PACKAGE / "templates" / "verify.html").read_text(encoding="utf-8"))


@cache
def _static(name: str) -> bytes:
    return (PACKAGE / "static" / name).read_bytes()


def _bi(zh: str, en: str) -> str:
    return f'<span lang="zh">{e(zh)}</span> <span lang="en">{e(en)}</span>'


# -- the page ---------------------------------------------------------------------------------
@router.get("/verify", response_class=HTMLResponse, include_in_schema=False)
async def verify_page(request: Request):
    """The verify page; with ``?credential=<id>`` (an e-licence's QR link) it checks that credential."""
    credential = request.query_params.get("credential", "")[:200]
    presentation = request.query_params.get("presentation", "")[:130]  # the holder page's result QR
    rows = "\n".join(
        f'<tr class="check pending" data-check="{name}" data-status="pending">'
        f'<td class="icon" aria-hidden="true">·</td><th scope="row" class="label">{_bi(zh, en)}</th>'
        f'<td class="status"></td><td class="reason"></td></tr>'
        for name, zh, en in CHECKS
    )
    body = _template().substitute(
        check_rows=rows,
        credential=e(credential, quote=True),
        presentation=e(presentation, quote=True),
        max_credential=MAX_CREDENTIAL // MIB,
        max_dataset=MAX_DATASET // MIB,
    )
    return HTMLResponse(body, headers=HEADERS)


def static_response(name: str, table: dict[str, str]) -> Response:
    """One of the pages' static files (``table``: name → media type), cached for five minutes."""
    if name not in table:
        raise NotFound(f"no static file {name}")
    return Response(
        _static(name),
        media_type=table[name],
        headers={"cache-control": "max-age=300", "x-content-type-options": "nosniff"},
    )


@router.get("/verify/static/{name}", include_in_schema=False)
async def static_file(name: str):
    return static_response(name, STATIC)


# -- the multipart form, streamed -------------------------------------------------------------
@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    size: int = 0
    data: bytearray = field(default_factory=bytearray)
    file: Any = None  # the dataset's temporary file


@dataclass
class _Form:
    credential: bytes | None = None
    dataset: str | None = None  # path of the temporary file
    dataset_size: int = 0
    fields: dict[str, str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    temp_paths: list[str] = field(default_factory=list)

    def cleanup(self) -> None:
        for path in self.temp_paths:
            try:
                os.unlink(path)
            except OSError:
                pass


async def _read_form(request: Request, form: _Form) -> None:
    """Parse a multipart body as it arrives: the credential and short fields in memory (bounded),
    the dataset straight into a temporary file. Limits are enforced while reading."""
    try:
        from python_multipart.exceptions import FormParserError
        from python_multipart.multipart import MultipartParser, parse_options_header
    except ImportError:  # older python-multipart
        from multipart.exceptions import FormParserError
        from multipart.multipart import MultipartParser, parse_options_header

    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data":
        raise UnsupportedMediaType(
            f"send the credential as multipart/form-data (a file upload), not "
            f"{kind.decode('latin-1') or 'no content type'}"
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequest("the multipart body has no boundary")

    state = {"part": _Part(), "hname": b"", "hvalue": b"", "disposition": b"", "parts": 0}

    def on_part_begin():
        state["parts"] += 1
        if state["parts"] > MAX_PARTS:
            raise BadRequest(f"too many form fields (at most {MAX_PARTS})")
        state["part"], state["disposition"] = _Part(), b""

    def on_header_field(data, start, end):
        state["hname"] += data[start:end]

    def on_header_value(data, start, end):
        state["hvalue"] += data[start:end]

    def on_header_end():
        if state["hname"].lower() == b"content-disposition":
            state["disposition"] = state["hvalue"]
        state["hname"], state["hvalue"] = b"", b""

    def on_headers_finished():
        part: _Part = state["part"]
        _, options = parse_options_header(state["disposition"])
        name = options.get(b"name")
        if name is None:
            raise BadRequest("a form part has no name")
        part.name = name.decode("utf-8", "replace")
        if part.name not in FIELDS:
            raise BadRequest(
                f"unknown form field {part.name[:40]!r}: send credential, and optionally dataset, "
                "relyingParty, purpose, at",
                details={"field": part.name[:40]},
            )
        if part.name in form.seen:
            raise BadRequest(f"the form field {part.name!r} appears twice", details={"field": part.name})
        form.seen.add(part.name)
        if b"filename" in options:
            part.filename = options[b"filename"].decode("utf-8", "replace")
        if part.name == "dataset":
            fd, path = tempfile.mkstemp(prefix="certledger-dataset-")
            form.temp_paths.append(path)
            part.file = os.fdopen(fd, "wb")

    def on_part_data(data, start, end):
        part: _Part = state["part"]
        n = end - start
        part.size += n
        if part.name == "dataset":
            if part.size > MAX_DATASET:
                raise PayloadTooLarge(
                    f"the dataset is larger than {MAX_DATASET // MIB} MiB",
                    details={"field": "dataset", "limit": MAX_DATASET},
                )
            part.file.write(data[start:end])
            return
        limit = MAX_CREDENTIAL if part.name == "credential" else MAX_FIELD
        if part.size > limit:
            what = "the credential file" if part.name == "credential" else f"the field {part.name}"
            raise PayloadTooLarge(
                f"{what} is larger than {_size(limit)}", details={"field": part.name, "limit": limit}
            )
        part.data += data[start:end]

    def on_part_end():
        part: _Part = state["part"]
        if part.name == "dataset":
            part.file.close()
            part.file = None
            if part.size or part.filename:  # an empty file input sends filename="" and no bytes
                form.dataset, form.dataset_size = form.temp_paths[-1], part.size
        elif part.name == "credential":
            form.credential = bytes(part.data)
        else:
            try:
                form.fields[part.name] = part.data.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise BadRequest(
                    f"the field {part.name} is not UTF-8 text", details={"field": part.name}
                ) from None

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
    }
    parser = MultipartParser(boundary, callbacks)
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except FormParserError:
        raise BadRequest("the multipart body is malformed") from None
    finally:
        part = state["part"]
        if part.file is not None:
            part.file.close()


def _size(n: int) -> str:
    return f"{n // MIB} MiB" if n >= MIB else f"{n} bytes"


def _display(doc: Any) -> dict:
    """What the page shows beside the result: the disclosed subject fields (JSON Pointer → value)
    and the redacted paths. Claimed by the document; trusted only if the result is valid."""
    from verifier.issuance import escape_token

    if not isinstance(doc, dict):
        return {"disclosed": [], "redacted": [], "subjectName": None}
    proof = doc.get("proof") if isinstance(doc.get("proof"), dict) else {}
    redacted_map = proof.get("redactedDigests") if isinstance(proof.get("redactedDigests"), dict) else {}
    redacted = sorted(p for p in redacted_map if isinstance(p, str))[:MAX_DISPLAY]
    hidden = set(redacted)
    disclosed: list[dict] = []

    def walk(value: Any, path: str, depth: int) -> None:
        if len(disclosed) >= MAX_DISPLAY or depth > 20:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}/{escape_token(str(k))}", depth + 1)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}/{i}", depth + 1)
        elif path not in hidden and not (value is None and any(r.startswith(path + "/") for r in hidden)):
            if isinstance(value, str) and len(value) > 1000:
                value = value[:1000] + "…"
            disclosed.append({"path": path, "value": value})

    subject = doc.get("credentialSubject")
    if isinstance(subject, dict):
        walk(subject, "/credentialSubject", 0)
        name = subject.get("enterpriseName") or subject.get("holderName")
    else:
        name = None
    return {
        "disclosed": disclosed,
        "redacted": redacted,
        "subjectName": name if isinstance(name, str) else None,
    }


async def _verifier(ctx: ServiceContext):
    from registry.services.bundle import current_verifier

    return await current_verifier(ctx)


def _trust_line(v) -> str | None:
    describe = getattr(v.trust, "describe", None)
    try:
        return describe() if describe else None
    except Exception:  # noqa: BLE001 - a description is for display only
        return None


_CHECK_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["credential"],
                    "properties": {
                        "credential": {
                            "type": "string",
                            "format": "binary",
                            "description": "the holder copy (JSON file)",
                        },
                        "dataset": {
                            "type": "string",
                            "format": "binary",
                            "description": "the dataset, for the data check",
                        },
                        "at": {
                            "type": "string",
                            "description": "RFC 3339 time for validity and usage (default: now)",
                        },
                        "relyingParty": {
                            "type": "string",
                            "description": "your unified social credit code, for the usage check",
                        },
                        "purpose": {"type": "string", "description": "the purpose, for the usage check"},
                    },
                }
            }
        },
    }
}


@router.post("/verify/check", dependencies=[Depends(public_rate_limit)], openapi_extra=_CHECK_FORM)
async def verify_upload(request: Request, ctx: CtxDep):
    """Verify an uploaded credential (and optionally a dataset) against the registry's trust bundle.
    Public: no API key. Returns the verifier's result plus the redacted paths and disclosed fields."""
    from registry.api.routes.verify import _invalid_unicode
    from verifier.issuance import loads_strict, parse_datetime

    form = _Form()
    try:
        await _read_form(request, form)
        raw = form.credential
        if raw is None:
            raise BadRequest(
                "no credential: send the credential file in the form field 'credential'",
                details={"field": "credential"},
            )
        if not raw.strip():
            raise BadRequest("the credential file is empty", details={"field": "credential"})
        try:
            doc = loads_strict(raw)
        except ValueError as exc:
            raise BadRequest(
                f"the credential file is not valid JSON: {exc}", details={"field": "credential"}
            ) from None
        if not isinstance(doc, dict):
            raise BadRequest(
                f"a credential file holds one JSON object, not {_json_kind(doc)}",
                details={"field": "credential"},
            )
        if _invalid_unicode(doc):
            raise BadRequest(
                "the credential holds text that is not valid Unicode (a lone surrogate)",
                details={"field": "credential"},
            )
        at = None
        if form.fields.get("at"):
            try:
                at = parse_datetime(form.fields["at"])
            except ValueError as exc:
                raise BadRequest(f"at: {exc}", details={"field": "at"}) from None
        relying_party = form.fields.get("relyingParty") or None
        purpose = form.fields.get("purpose") or None
        v = await _verifier(ctx)
        options = dict(at=at, relying_party=relying_party, purpose=purpose)
        if form.dataset is not None:
            # hashing up to 100 MiB: off the event loop
            result = await asyncio.to_thread(v.verify, doc, data=form.dataset, **options)
        else:
            result = v.verify(doc, **options)
    finally:
        form.cleanup()
    out = result.to_json()
    # FORMAT.md §3.3: the redacted paths are proven only when integrity passed (targetHash covers them)
    out.update(
        _display(doc),
        trust=_trust_line(v),
        source="upload",
        redactionProven=result.check("integrity").status == "passed",
        dataset={"size": form.dataset_size} if form.dataset is not None else None,
    )
    return out


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


@router.get("/verify/credential/{credential_id}", dependencies=[Depends(public_rate_limit)])
async def verify_credential_link(credential_id: str, request: Request, ctx: CtxDep):
    """What the QR link shows. An e-licence (business licence data is public in China): the
    verification of its holder copy. A data asset certificate: only its id, type, issuer and
    status — the holder must present the file itself."""
    from registry.db.models import Batch, Credential, Organisation
    from registry.services import records

    if len(credential_id) > 200:
        raise NotFound("no such credential")
    async with ctx.sessions() as s:
        cred = await s.get(Credential, credential_id)
        if cred is None:
            raise NotFound(f"no credential {credential_id} in this registry", details={"id": credential_id})
        type_name = records.TYPE_NAMES.get(cred.credential_type, str(cred.credential_type))
        org = await s.get(Organisation, cred.issuer_org_id)
        if type_name not in E_LICENCES:
            batch = await s.get(Batch, cred.batch_id) if cred.batch_id else None
            anchored = batch is not None and batch.state == "anchored"
            return {
                "id": cred.id,
                "type": type_name,
                "issuer": org.name if org else None,
                "status": records.STATUS_NAMES.get(cred.status, "unknown") if anchored else "pending",
                "source": "registry",
                "summaryOnly": True,
            }
        doc = await records.holder_copy(s, ctx, cred)
    v = await _verifier(ctx)
    out = v.verify(doc).to_json()
    out.update(_display(doc), trust=_trust_line(v), source="registry", dataset=None)
    return out
