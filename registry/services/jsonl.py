"""The records of a JSON Lines upload (the bulk route, and ``certledger issue`` on the issuer's side).

The standard library alone: ``certledger issue`` imports it where it starts, and the formats'
modules (the verifier, orjson, zstandard) took ~0.1 s of its start (docs/BENCHMARKS.md, stop 34).
"""

from __future__ import annotations

from typing import AnyStr

__all__ = ["jsonl_records", "reference_jsonl_records"]


def jsonl_records(text: AnyStr) -> tuple[list[AnyStr], list[int]]:
    """The records of a JSON Lines text, each as its text (not decoded: the workers decode them),
    and the line number (from 1) of each; blank lines are skipped but counted. Lines end at LF
    only, a CR before it dropped (``str.splitlines`` also splits at U+2028, U+2029 and U+0085,
    which JSON strings may hold as they are). ``text`` may be ``bytes`` (UTF-8, as ``certledger
    issue`` sends it: splitting it as text took twice as long), giving the records as ``bytes``.

    A text with no CR and no blank line (as files written by programs are) is only split, not
    read line by line: 10,000 business licences (6.3 MB) take 3.3 ms, against 5.2 ms by
    :func:`reference_jsonl_records` (tests/registry/test_jsonl.py holds the two equal)."""
    lf, cr, blank = ("\n", "\r", " \t") if isinstance(text, str) else (b"\n", b"\r", b" \t")
    if cr not in text:
        texts = text.split(lf)
        if not texts[-1]:  # (the text ends with an LF: an empty last line, skipped)
            texts.pop()
        # a blank line is empty or begins with a space or tab: then the least line begins with a
        # character at or below a space (as a line beginning with another such character would)
        if not texts or min(texts)[:1] > blank[:1]:
            return texts, list(range(1, len(texts) + 1))
    return reference_jsonl_records(text)


def reference_jsonl_records(text: AnyStr) -> tuple[list[AnyStr], list[int]]:
    """:func:`jsonl_records` line by line (any text)."""
    lf, cr, blank = ("\n", "\r", " \t") if isinstance(text, str) else (b"\n", b"\r", b" \t")
    texts, numbers = [], []
    for n, line in enumerate(text.split(lf), 1):
        if line.endswith(cr):
            line = line[:-1]
        if line.strip(blank):
            texts.append(line)
            numbers.append(n)
    return texts, numbers
