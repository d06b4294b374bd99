"""Typed results of a verification."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["CHECK_NAMES", "Check", "CredentialSummary", "VerificationResult"]

#: The checks, in the order they are reported (DESIGN.md, "Verification").
CHECK_NAMES: tuple[str, ...] = (
    "format",
    "integrity",
    "issuer",
    "anchor",
    "status",
    "validity",
    "data",
    "usage",
)

Status = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class Check:
    """One check: ``passed``, ``failed`` (with a reason for a person) or ``skipped`` (and why)."""

    name: str
    status: Status
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class CredentialSummary:
    """What the credential says it is (as disclosed; trust it only if the result is valid)."""

    id: str | None
    type: str | None
    issuer: str | None
    subject: str | None

    def to_json(self) -> dict[str, str | None]:
        return {"id": self.id, "type": self.type, "issuer": self.issuer, "subject": self.subject}


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """The outcome of verifying one credential: valid iff no check failed."""

    valid: bool
    checks: tuple[Check, ...]
    credential: CredentialSummary

    def check(self, name: str) -> Check:
        """The check called ``name`` (one of :data:`CHECK_NAMES`)."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == "failed")

    def to_json(self, file: str | None = None) -> dict[str, Any]:
        """The ``certledger-verify --json`` object."""
        out: dict[str, Any] = {} if file is None else {"file": file}
        out.update(
            valid=self.valid, checks=[c.to_json() for c in self.checks], credential=self.credential.to_json()
        )
        return out
