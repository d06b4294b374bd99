"""The FastAPI application: tiny here — routes live in api/routes/, domain errors map to one
JSON shape {"error": {"code", "message", "details"}} in one handler."""

from __future__ import annotations

import logging
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry.core.config import Settings
from registry.core.errors import PayloadTooLarge, RegistryError

log = logging.getLogger("certledger.api")

REQUESTS = Counter("certledger_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "certledger_http_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def error_body(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details}}


class _RequestContext:
    """Request id, the body limit, early refusals (NUL in the URL) and Prometheus metrics — one plain
    ASGI middleware (Starlette's BaseHTTPMiddleware costs ~0.3 ms a request; each layer of its own
    wraps every message the request receives and sends).

    The body is counted as it arrives, so a body sent without a content-length (chunked) is held to
    the same limit as one with it: past the limit the app's reply is replaced by a 413."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit
        #: the metrics' children by their labels (``labels()`` takes a lock and builds a key per call)
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._timed: dict[str, Any] = {}

    def _too_large(self) -> JSONResponse:
        return JSONResponse(
            error_body(
                "payload_too_large",
                f"the body is larger than {self.limit // (1024 * 1024)} MiB",
                {"limit": self.limit},
            ),
            status_code=413,
        )

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        rid_header = (b"x-request-id", rid.encode("latin-1"))
        length = headers.get(b"content-length", b"")
        refusal = None
        if length.isdigit() and int(length) > self.limit:
            refusal = self._too_large()
        elif "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            # PostgreSQL text cannot hold NUL: refuse it here rather than fail in a query
            refusal = JSONResponse(
                error_body("bad_request", "the URL contains a NUL character"), status_code=400
            )
        if refusal is not None:
            refusal.raw_headers.append(rid_header)
            await refusal(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        received, exceeded, started = 0, False, False

        async def limited_receive():
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    exceeded = True
                    raise PayloadTooLarge("the body is too large")
            return message

        async def guarded_send(message):
            nonlocal started, status
            if exceeded and not started:
                return  # the 413 below replaces whatever the app made of the truncated body
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        try:
            try:
                await self.app(scope, limited_receive, guarded_send)
            except Exception:
                if not exceeded or started:
                    raise
            if exceeded and not started:
                refusal = self._too_large()
                refusal.raw_headers.append(rid_header)
                status = 413
                await refusal(scope, receive, send)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            key = (scope["method"], path, status)
            counted = self._counted.get(key)
            if counted is None:
                counted = self._counted[key] = REQUESTS.labels(scope["method"], path, str(status))
            counted.inc()
            timed = self._timed.get(path)
            if timed is None:
                timed = self._timed[path] = LATENCY.labels(path)
            timed.observe(time.perf_counter() - start)


def create_app(settings: Settings | None = None, *, ctx=None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from registry.services.context import ServiceContext
        from registry.services.issuance import Issuance
        from registry.services.orgs import bootstrap_admin
        from registry.services.runtime import bound_recursion, settle_heap, start_background

        context = ctx or await ServiceContext.create(settings)
        bound_recursion()  # deeply nested JSON in a request: a 400, not a dead process
        app.state.ctx = context
        app.state.issuance = Issuance(context)
        async with context.sessions() as s, s.begin():
            admin_key = await bootstrap_admin(s)
        #: the admin API key made on this first start (None on every later start)
        app.state.first_admin_key = admin_key
        if admin_key:
            path = context.settings.data_dir / "secrets" / "admin-api-key"
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.touch(mode=0o600)
            path.write_text(admin_key + "\n")
            log.warning(
                "first start: the admin API key is %s (also in %s; store it and delete the file)",
                admin_key,
                path,
            )
        app.state.background = start_background(context)
        if ctx is None:  # the service owns this process (certledger serve)
            settle_heap()
        try:
            yield
        finally:
            await app.state.background.stop()
            await app.state.issuance.close()
            if ctx is None:
                await context.close()

    app = FastAPI(
        title="certledger registry",
        version="0.1.0",
        lifespan=lifespan,
        generate_unique_id_function=lambda route: route.name,  # operationId: the function's name
        description="Issue, revoke and verify anchored credentials; declare and trace cross-border data flows.",
    )

    from registry.api.ratelimit import PublicRateLimit

    app.state.public_limit = PublicRateLimit(settings.public_rate_limit)
    app.add_middleware(_RequestContext, limit=settings.max_upload_bytes)

    @app.exception_handler(RegistryError)
    async def _domain(request: Request, exc: RegistryError):
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details), status_code=exc.http_status, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        details = [{"loc": list(e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()][:50]
        return JSONResponse(error_body("bad_request", "the request is not valid", details), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = {
            400: "bad_request",
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
            415: "unsupported_media_type",
        }.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error")
        return JSONResponse(
            error_body(
                "internal_error",
                "an internal error occurred; it has been logged",
                {"request_id": getattr(request.state, "request_id", None)},
            ),
            status_code=500,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics():
        from starlette.responses import Response

        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    from registry.api.openapi import document_errors, install_openapi
    from registry.api.routes import (
        audit,
        batches,
        bundle,
        collateral,
        credentials,
        flows,
        health,
        holder,
        organisations,
        pages,
        pledges,
        presentations,
        proofs,
        trace_page,
        verify,
    )

    # verify first: Starlette tries the routes in order, and it is the path a relying party calls most.
    # Every router is imported eagerly: a broken import fails the app's creation, never drops a router
    # (tests/registry/test_mounting.py).
    for module in (
        verify,
        health,
        organisations,
        credentials,
        batches,
        bundle,
        holder,
        flows,
        pages,
        presentations,
        trace_page,
        audit,
        proofs,
        pledges,
        collateral,
    ):
        document_errors(module.router)
        app.include_router(module.router)
    install_openapi(app)
    return app
