"""The service's two short-lived caches, held as explicit members of the ServiceContext.

- :class:`AuthCache`: authenticated API keys for a few seconds, so a verify burst costs no DB
  round trip per request; revoking a key clears it at once on this instance.
- :class:`VerifierCache`: the Verifier over the registry's own signed trust bundle that /v1/verify,
  the verify page and flow declarations use, rebuilt every few seconds and dropped at once when
  anchors or statuses change here (``ServiceContext.anchors_changed``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

if TYPE_CHECKING:
    from registry.services.orgs import Principal


class AuthCache:
    """Authenticated keys for a few seconds. Other instances see a revocation within TTL."""

    TTL = 2.0
    MAX = 10_000

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, presented: str | None) -> Principal | None:
        if not presented:
            return None
        hit = self._entries.get(presented)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, presented: str, principal: Principal) -> None:
        if len(self._entries) >= self.MAX:
            self._entries.clear()
        self._entries[presented] = (time.monotonic() + self.TTL, principal)

    def clear(self) -> None:
        self._entries.clear()


class VerifierCache:
    """One value, built by ``build`` at most once at a time, kept for ``ttl`` seconds or until
    :meth:`invalidate`."""

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._value: tuple[float, Any] | None = None
        self._lock = asyncio.Lock()

    async def get(self, build: Callable[[], Awaitable[Any]]) -> Any:
        hit = self._value
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        async with self._lock:
            hit = self._value
            if hit is not None and time.monotonic() - hit[0] < self.ttl:
                return hit[1]
            value = await build()
            self._value = (time.monotonic(), value)
            return value

    def invalidate(self) -> None:
        self._value = None
