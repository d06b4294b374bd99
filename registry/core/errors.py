"""Domain errors. Services raise these; one exception handler maps them to HTTP and to the
error shape {"error": {"code", "message", "details"}}; the CLI prints their message."""

from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, *, details: Any = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers


class BadRequest(RegistryError):
    code, http_status = "bad_request", 400


class ValidationFailed(RegistryError):
    code, http_status = "validation_failed", 422


class Unauthenticated(RegistryError):
    code, http_status = "unauthenticated", 401


class Forbidden(RegistryError):
    code, http_status = "forbidden", 403


class NotFound(RegistryError):
    code, http_status = "not_found", 404


class Conflict(RegistryError):
    code, http_status = "conflict", 409


class PayloadTooLarge(RegistryError):
    code, http_status = "payload_too_large", 413


class UnsupportedMediaType(RegistryError):
    code, http_status = "unsupported_media_type", 415


class ChainUnavailable(RegistryError):
    code, http_status = "chain_unavailable", 503


class ChainRejected(RegistryError):
    """The chain refused a transaction (a custom error from the contracts)."""

    code, http_status = "chain_rejected", 409


class RateLimited(RegistryError):
    code, http_status = "rate_limited", 429
