"""The records of a JSON Lines upload (the bulk route, and ``certledger issue`` on the issuer's side).

The standard library alone: ``certledger issue`` imports it where it starts, and the formats'
modules (the verifier, orjson, zstandard) took ~0.1 s of its start (docs/BENCHMARKS.md, stop 34).
"""

from __future__ import annotations

from typing import AnyStr

__all__ = ["jsonl_records"]


def jsonl_records(text: AnyStr) -> tuple[list[AnyStr], list[int]]:
    """The records of a JSON Lines text, each as its text (not decoded: the workers decode them),
    and the line number (from 1) of each; blank lines are skipped but counted. Lines end at LF
    only, a CR before it dropped (``str.splitlines`` also splits at U+2028, U+2029 and U+0085,
    which JSON strings may hold as they are). ``text`` may be ``bytes`` (UTF-8, as ``certledger
    issue`` sends it: splitting it as text took twice as long), giving the records as ``bytes``."""
    lf, cr, blank = ("\n", "\r", " \t") if isinstance(text, str) else (b"\n", b"\r", b" \t")
    texts, numbers = [], []
    for n, line in enumerate(text.split(lf), 1):
        if line.endswith(cr):
            line = line[:-1]
        if line.strip(blank):
            texts.append(line)
            numbers.append(n)
    return texts, numbers
