"""Freshness (docs/FORMAT.md §15): every trust source says when its evidence was true, and the
verifier refuses evidence older than a policy.

* trust bundle: its block's timestamp (``block.timestamp``); default maximum age 24 hours;
* JSON-RPC: the timestamp of the block it pinned (the chain head when it started); no default
  limit — the head is the current state, and an idle chain (anvil) mines no new blocks;
* validator-sealed header (a proof-carrying anchor in validator mode): the header's timestamp.

The age is measured at the verification time (``--at``, default now).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from verifier.errors import StaleEvidence

__all__ = [
    "DEFAULT_MAX_AGE",
    "check_fresh",
    "default_max_age",
    "evidence_as_of",
    "format_duration",
    "parse_duration",
]

#: Default maximum age, in seconds, per kind of trust source (``None``: no limit).
DEFAULT_MAX_AGE: dict[str, int | None] = {"bundle": 24 * 3600, "rpc": None}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"([0-9]{1,9})([smhdw])")


def parse_duration(text: str) -> int | None:
    """``"90s"``, ``"30m"``, ``"1h"``, ``"7d"``, ``"2w"`` → seconds; ``"none"`` → ``None`` (no limit).

    ``ValueError`` with the accepted forms otherwise.
    """
    if text.strip().lower() == "none":
        return None
    m = _DURATION.fullmatch(text.strip())
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration such as 90s, 30m, 1h, 7d or 2w (or none)")
    return int(m.group(1)) * _UNITS[m.group(2)]


def format_duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _kind(trust: Any) -> str:
    return "rpc" if type(getattr(trust, "_inner", trust)).__name__ == "RpcTrust" else "bundle"


def default_max_age(trust: Any) -> int | None:
    return DEFAULT_MAX_AGE[_kind(trust)]


def evidence_as_of(trust: Any) -> int:
    """When the trust source's evidence was true (unix seconds)."""
    return int(trust.block_timestamp)


def _human(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


def _utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_fresh(
    as_of: int, max_age: int | None, at: datetime | None = None, *, what: str = "evidence"
) -> None:
    """:class:`StaleEvidence` if ``as_of`` is more than ``max_age`` seconds before ``at`` (default now)."""
    if max_age is None:
        return
    now = int((at or datetime.now(UTC)).timestamp())
    age = now - as_of
    if age > max_age:
        raise StaleEvidence(
            f"the {what} is as of {_utc(as_of)}, {_human(age)} before the verification time, "
            f"older than the maximum age {format_duration(max_age)} "
            "(get fresher evidence, or allow older with --max-age)"
        )
