"""What a certledger signer agrees to sign: its policy file, and the checks made against it.

The policy file is a JSON object::

    {
      "chainId": 31337,
      "anchorRegistry": "0x...",          # the AnchorRegistry every signed transaction calls
      "credentialTypes": [1, 3],          # credential type codes this issuer may issue
      "maxBatchSize": 10000,              # most credentials in one batch
      "batchesPerHour": 3600,             # new batch roots signed in any 60 minutes
      "credentialsPerDay": 100000000,     # credentials in new batch roots in any 24 hours
      "maxGas": 500000,                   # most gas a signed transaction may carry
      "maxFeePerGasWei": 1000000000000    # most fee per gas (maxFeePerGas or gasPrice)
    }

Only ``chainId`` and ``anchorRegistry`` are required; the others have the defaults shown.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOUR, DAY = 3600.0, 86400.0


class PolicyError(Exception):
    """The policy file is missing, not JSON, or has a bad field."""


class Refused(Exception):
    """A request the signer's policy does not allow (what it asked for, and why not)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


_DEFAULTS = {
    "credentialTypes": [1, 2, 3],
    "maxBatchSize": 10_000,
    "batchesPerHour": 3600,
    "credentialsPerDay": 100_000_000,
    "maxGas": 500_000,
    "maxFeePerGasWei": 10**12,
}


@dataclass(frozen=True)
class Policy:
    chain_id: int
    anchor_registry: str  # lower-case 0x address
    credential_types: frozenset[int]
    max_batch_size: int
    batches_per_hour: int
    credentials_per_day: int
    max_gas: int
    max_fee_per_gas: int

    @classmethod
    def load(cls, path: Path) -> Policy:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise PolicyError(f"cannot read the policy file {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise PolicyError(f"the policy file {path} is not JSON: {exc}") from None
        return cls.from_json(raw, str(path))

    @classmethod
    def from_json(cls, raw: Any, where: str = "the policy") -> Policy:
        if not isinstance(raw, dict):
            raise PolicyError(f"{where} must be a JSON object")
        unknown = sorted(set(raw) - {"chainId", "anchorRegistry", *_DEFAULTS})
        if unknown:
            raise PolicyError(f"{where}: unknown fields {unknown}")
        v = {**_DEFAULTS, **raw}

        def count(name: str, low: int = 1) -> int:
            x = v.get(name)
            if type(x) is not int or x < low:
                raise PolicyError(f"{where}: {name} must be an integer ≥ {low}, not {x!r}")
            return x

        registry = v.get("anchorRegistry")
        if not (
            isinstance(registry, str)
            and len(registry) == 42
            and registry[:2] == "0x"
            and all(c in "0123456789abcdefABCDEF" for c in registry[2:])
        ):
            raise PolicyError(
                f"{where}: anchorRegistry must be a 0x-prefixed 20-byte address, not {registry!r}"
            )
        types = v["credentialTypes"]
        if (
            not isinstance(types, list)
            or not types
            or any(type(t) is not int or not 0 < t < 2**16 for t in types)
        ):
            raise PolicyError(f"{where}: credentialTypes must be a non-empty list of type codes (1-65535)")
        return cls(
            chain_id=count("chainId"),
            anchor_registry=registry.lower(),
            credential_types=frozenset(types),
            max_batch_size=count("maxBatchSize"),
            batches_per_hour=count("batchesPerHour"),
            credentials_per_day=count("credentialsPerDay"),
            max_gas=count("maxGas", 21_000),
            max_fee_per_gas=count("maxFeePerGasWei", 0),
        )


@dataclass
class RateWindows:
    """New batch roots signed in the last hour and credentials in them in the last day."""

    policy: Policy
    batches: deque = field(default_factory=deque)  # times
    credentials: deque = field(default_factory=deque)  # (time, count)

    def check(self, count: int, now: float) -> None:
        while self.batches and self.batches[0] <= now - HOUR:
            self.batches.popleft()
        while self.credentials and self.credentials[0][0] <= now - DAY:
            self.credentials.popleft()
        if len(self.batches) + 1 > self.policy.batches_per_hour:
            raise Refused(
                "rate_limited",
                f"the policy allows {self.policy.batches_per_hour} batches an hour; "
                f"{len(self.batches)} were signed in the last hour",
            )
        day = sum(c for _, c in self.credentials)
        if day + count > self.policy.credentials_per_day:
            raise Refused(
                "rate_limited",
                f"the policy allows {self.policy.credentials_per_day} credentials a day; "
                f"{day} were signed in the last 24 hours and this batch has {count}",
            )

    def record(self, count: int, at: float) -> None:
        self.batches.append(at)
        self.credentials.append((at, count))
