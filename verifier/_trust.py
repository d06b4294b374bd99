"""What ``verify`` needs to know about the chain, and the protocol every trust source implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = [
    "REASONS",
    "STATUS_NAMES",
    "AnchorRecord",
    "IssuerKeyRecord",
    "IssuerRecord",
    "StatusRecord",
    "TrustSource",
]

#: On-chain ``IAnchorRegistry.Status`` codes (docs/FORMAT.md §4).
STATUS_NAMES = {0: "none", 1: "valid", 2: "revoked", 3: "suspended"}
#: Reason codes (``uint8``) and their words.
REASONS = {
    0: "unspecified",
    1: "key compromise",
    2: "superseded",
    3: "cessation of operation",
    4: "affiliation changed",
    5: "privilege withdrawn",
    6: "data inaccurate",
    7: "holder request",
    8: "court order",
}


@dataclass(frozen=True)
class IssuerKeyRecord:
    """One key version of an issuer (``IIssuerRegistry.IssuerKey``). Times are unix seconds."""

    version: int
    account: str  # lower-case 0x address
    valid_from: int
    valid_until: int  # 0 = still current
    sm2_public_key: bytes = b""

    def valid_at(self, timestamp: int) -> bool:
        return self.valid_from <= timestamp and (self.valid_until == 0 or timestamp < self.valid_until)


@dataclass(frozen=True)
class IssuerRecord:
    """An issuer as the issuer registry knows it."""

    id: int
    name: str
    uscc: str
    suite: str  # "secp256k1" | "sm2-sm3"
    status: str  # "active" | "suspended"
    active_from: int
    active_until: int  # 0 = open-ended
    credential_types: frozenset[int]
    keys: dict[int, IssuerKeyRecord] = field(default_factory=dict)
    #: When a suspended issuer was suspended (its last ``IssuerSuspended``): block and unix time;
    #: 0 when active or not known (FORMAT.md §8).
    status_block: int = 0
    status_timestamp: int = 0

    def active_at(self, timestamp: int) -> bool:
        return self.active_from <= timestamp and (self.active_until == 0 or timestamp < self.active_until)


@dataclass(frozen=True)
class AnchorRecord:
    """An anchored batch root (``IAnchorRegistry.Anchor``), as of the trust source's block."""

    root: bytes
    issuer_id: int
    key_version: int
    credential_type: int
    count: int
    block_number: int
    timestamp: int
    status: int  # STATUS_NAMES
    reason: int = 0
    status_timestamp: int = 0


@dataclass(frozen=True)
class StatusRecord:
    """The effective status of one credential: its batch's, unless overridden for the credential."""

    status: int  # 1 valid, 2 revoked, 3 suspended
    reason: int = 0
    timestamp: int = 0
    by: str = ""
    scope: str = "credential"  # "batch" | "credential"


@runtime_checkable
class TrustSource(Protocol):
    """Everything ``verify`` asks of the chain, answered "as of" one block.

    Implemented by :class:`~verifier.TrustBundle` (offline, signed file) and
    :class:`~verifier.RpcTrust` (JSON-RPC, pinned block).
    """

    chain_id: int
    anchor_registry: str  # lower-case 0x address
    block_number: int
    block_timestamp: int

    def issuer(self, issuer_id: int) -> IssuerRecord | None:
        """The issuer, with its key history, or ``None`` if it was never registered."""
        ...

    def anchor(self, root: bytes) -> AnchorRecord | None:
        """The anchor of ``root``, or ``None`` if it is not anchored as of this source's block."""
        ...

    def credential_status(self, root: bytes, leaf: bytes, status_list_index: int) -> StatusRecord:
        """The effective status of the credential ``leaf`` of batch ``root``."""
        ...

    def trusts_header_signer(self, address: str) -> bool:
        """Whether a block header signed by ``address`` is trusted (proof-carrying anchors)."""
        ...
