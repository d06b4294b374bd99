"""What the verify page's tests share: the dataset a certificate covers, and where screenshots go."""

from __future__ import annotations

import hashlib

from tests.support.services import ROOT

ARTIFACTS = ROOT / "test-artifacts" / "verify-page"

DATASET = (
    b"timestamp,meter,kwh\n"
    + b"".join(f"2025-01-01T{h:02d}:00Z,4406-0001,{h * 7 % 13}.25\n".encode() for h in range(24)) * 50
)
DIGEST = "0x" + hashlib.sha256(DATASET).hexdigest()


def one_byte_off(data: bytes) -> bytes:
    """The dataset with one byte changed (same length)."""
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]
