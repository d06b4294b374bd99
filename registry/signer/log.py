"""The signer's append-only log: one JSON object per line (JSON Lines), hash-chained and fsync'd.

Each entry carries ``seq`` (from 1), ``prev`` (the ``hash`` of the entry before it, 64 zeros for
the first) and ``hash`` = sha256 of the RFC 8785 (JCS) canonical form of the entry without
``hash``. Changing, removing or reordering an entry breaks the chain at that entry. Cutting entries
off the end leaves a valid chain, so the head (``seq`` and ``hash`` of the last entry) is also
written to ``<log>.head`` after every entry; a log shorter than its head was truncated. Whoever
keeps a copy of a head (the registry keeps each answer's ``logSeq``/``logHash``) can prove an
entry up to it was there.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785

GENESIS = "0" * 64


class LogCorrupt(Exception):
    """The log's chain is broken, or the log is shorter than its head: it was changed or cut."""


def entry_hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(rfc8785.dumps(body)).hexdigest()


@dataclass(frozen=True)
class LogHead:
    seq: int
    hash: str


def read_log(path: Path) -> Iterator[dict[str, Any]]:
    """Every entry of the log at ``path``, checked link by link; LogCorrupt at the first bad one."""
    prev, seq = GENESIS, 0
    if not path.exists():
        return
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.endswith(b"\n"):
                raise LogCorrupt(f"{path}: line {n} is incomplete (the last write was cut short)")
            try:
                entry = json.loads(line)
            except ValueError:
                raise LogCorrupt(f"{path}: line {n} is not JSON") from None
            if not isinstance(entry, dict):
                raise LogCorrupt(f"{path}: line {n} is not a JSON object")
            if entry.get("seq") != seq + 1:
                raise LogCorrupt(f"{path}: line {n} has seq {entry.get('seq')!r}, expected {seq + 1}")
            if entry.get("prev") != prev:
                raise LogCorrupt(f"{path}: entry {seq + 1} does not follow entry {seq} (prev hash differs)")
            if entry.get("hash") != entry_hash(entry):
                raise LogCorrupt(f"{path}: entry {seq + 1} was changed (its hash does not match its content)")
            prev, seq = entry["hash"], entry["seq"]
            yield entry


class SignerLog:
    """Appends entries to the log at ``path`` (created if absent); checks the whole log on opening."""

    def __init__(self, path: Path):
        self.path = path
        self.head_path = path.with_name(path.name + ".head")
        self.entries: list[dict[str, Any]] = list(read_log(path))
        last = self.entries[-1] if self.entries else None
        self.head = LogHead(last["seq"], last["hash"]) if last else LogHead(0, GENESIS)
        if self.head_path.exists():
            try:
                stored = json.loads(self.head_path.read_text())
                stored_seq, stored_hash = int(stored["seq"]), str(stored["hash"])
            except (ValueError, KeyError, TypeError):
                raise LogCorrupt(f"{self.head_path} is not a log head") from None
            if stored_seq > self.head.seq:
                raise LogCorrupt(
                    f"{path} ends at entry {self.head.seq} but its head says {stored_seq}: "
                    "entries were cut off the end"
                )
            if stored_seq == self.head.seq and stored_hash != self.head.hash:
                raise LogCorrupt(f"{path}: the last entry is not the one its head recorded")
        elif self.entries:
            raise LogCorrupt(f"{path} has entries but no head file {self.head_path.name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("ab")

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Write ``entry`` (seq, prev and hash added), fsync it and the head. Returns the entry."""
        full = {**entry, "seq": self.head.seq + 1, "prev": self.head.hash}
        full["hash"] = entry_hash(full)
        self._fh.write(json.dumps(full, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.head = LogHead(full["seq"], full["hash"])
        tmp = self.head_path.with_name(self.head_path.name + ".tmp")
        with tmp.open("w") as fh:
            fh.write(json.dumps({"seq": self.head.seq, "hash": self.head.hash}))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.head_path)
        self.entries.append(full)
        return full

    def close(self) -> None:
        self._fh.close()
