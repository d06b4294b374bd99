"""A per-client rate limit for the public endpoints (the verify page needs no API key, so nothing
else stops one address from keeping the service busy). Moving windows in this process's memory:
each instance counts its own requests, so N instances behind a balancer allow up to N times the
limit. The client address is the connection's peer, or ``X-Forwarded-For`` when the peer is in
uvicorn's ``FORWARDED_ALLOW_IPS`` (default 127.0.0.1): set it to a reverse proxy's address."""

from __future__ import annotations

import time

from fastapi import Request
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from registry.core.errors import RateLimited

__all__ = ["PublicRateLimit"]


class PublicRateLimit:
    def __init__(self, spec: str):
        self.items = [] if spec.strip().lower() == "off" else parse_many(spec)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def __call__(self, request: Request) -> None:
        """Count one request from its client; RateLimited (429, Retry-After) over any limit."""
        who = request.client.host if request.client else "unknown"
        for item in self.items:
            if not self.limiter.hit(item, "public", who):
                reset, _ = self.limiter.get_window_stats(item, "public", who)
                retry = max(1, int(reset - time.time() + 0.999))
                raise RateLimited(
                    f"too many checks from {who}: at most {item} on the public verify page; try again in {retry} s",
                    details={"limit": str(item), "retryAfter": retry},
                    headers={"Retry-After": str(retry)},
                )
