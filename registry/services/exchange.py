"""Presentation exchange between the verify page and the holder page (issue #19, FORMAT.md §13.3).

A relying party (a bank clerk on ``/verify``) opens a request: a fresh nonce, the bank's credit code
as audience, a purpose and an expiry. The page shows it as a QR code linking to the holder page
(``/holder?request=<nonce>``), which the enterprise opens on its own machine, picks what to disclose,
and signs with its holder key *in the browser* (the key never reaches the registry). The signed
presentation comes back here, is verified at once against the registry's trust bundle and the
request it answers, and the bank's page, which polls, shows the result.

A presentation is 4–6 KB, more than a QR code holds, so it travels over this relay rather than in a
QR code (as OpenID4VP's ``direct_post`` does); the holder page's QR links to the result instead,
and stops working when the request expires.

Requests live in this process's memory until they expire (at most :data:`MAX_OPEN` open at once):
a second instance behind a load balancer does not see them, so route ``/verify/requests`` to one
instance (OPERATIONS.md). Nothing here is needed to verify a presentation: ``certledger-verify
--presentation`` does it offline from the files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from registry.core.errors import Conflict, NotFound, RateLimited, RegistryError
from verifier import PresentationRequest
from verifier.errors import InvalidPresentation

MAX_OPEN = 10_000
MIN_TTL, MAX_TTL, DEFAULT_TTL = 60, 3600, 300


class RequestExpired(RegistryError):
    code, http_status = "request_expired", 410


class RequestAnswered(Conflict):
    code = "request_answered"


@dataclass
class _Open:
    request: PresentationRequest
    deadline: float  # monotonic
    result: dict[str, Any] | None = None


class PresentationExchange:
    """Open requests by nonce, each with the verified answer once one came. Not thread-safe: used
    from the event loop only."""

    def __init__(self, max_open: int = MAX_OPEN, clock: Callable[[], float] = time.monotonic) -> None:
        self._open: dict[str, _Open] = {}
        self._max_open = max_open
        self._clock = clock

    def _expire(self) -> None:
        now = self._clock()
        for nonce in [n for n, o in self._open.items() if o.deadline <= now]:
            del self._open[nonce]

    def open(
        self, audience: Any, purpose: Any, ttl_seconds: Any = None, credential_types: Any = None
    ) -> PresentationRequest:
        """A new request, from a request body's members as they came (InvalidPresentation naming a bad
        audience, purpose, ttlSeconds or credentialTypes)."""
        ttl_seconds = DEFAULT_TTL if ttl_seconds is None else ttl_seconds
        if type(ttl_seconds) is not int or not MIN_TTL <= ttl_seconds <= MAX_TTL:
            raise InvalidPresentation(f"ttlSeconds must be a whole number from {MIN_TTL} to {MAX_TTL}")
        credential_types = [] if credential_types is None else credential_types
        if not isinstance(credential_types, list) or not all(isinstance(t, str) for t in credential_types):
            raise InvalidPresentation("credentialTypes must be a list of type names")
        self._expire()
        if len(self._open) >= self._max_open:
            raise RateLimited(
                f"{self._max_open} presentation requests are open: try again in a minute",
                headers={"retry-after": "60"},
            )
        request = PresentationRequest.new(
            audience, purpose, ttl=timedelta(seconds=ttl_seconds), credential_types=credential_types
        )
        self._open[request.nonce] = _Open(request, self._clock() + ttl_seconds)
        return request

    def get(self, nonce: str) -> _Open:
        """The open request; 404 if it was never made here, 410 once it expired."""
        entry = self._open.get(nonce)
        if entry is None:
            raise NotFound("no such presentation request here (it expired, or was made elsewhere)")
        if entry.deadline <= self._clock():
            del self._open[nonce]
            raise RequestExpired("the presentation request has expired: ask for a new one")
        return entry

    def unanswered(self, nonce: str) -> _Open:
        """:meth:`get`, and 409 ``request_answered`` once it has its answer (one per request)."""
        entry = self.get(nonce)
        if entry.result is not None:
            raise RequestAnswered(
                "this request was answered already: a request takes one presentation (ask for a new one)"
            )
        return entry

    def answer(self, nonce: str, result: dict[str, Any]) -> None:
        self.unanswered(nonce).result = result


def result_json(result: Any) -> dict[str, Any]:
    """A PresentationResult as the pages show it."""
    return {"valid": result.valid, "credentials": [r.to_json() for r in result.results]}
