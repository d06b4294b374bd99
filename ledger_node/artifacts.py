"""The committed compiler artifacts (ABI, bytecode, storage layout), package data in ledger_node/build/
(written by scripts/compile_contracts.py), so an installed wheel deploys as a checkout does."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

from ledger_node.errors import LedgerNodeError

BUILD_DIR = Path(str(files("ledger_node") / "build"))
ARTIFACT_NAMES = ("IssuerRegistry", "AnchorRegistry", "DataFlowLedger", "PledgeRegistry")


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list
    bytecode: str
    deployed_bytecode: str
    storage_layout: dict
    sha256: str

    def storage_slot(self, label: str) -> int:
        """The slot number of the state variable `label` (e.g. "_anchors")."""
        for entry in self.storage_layout["storage"]:
            if entry["label"] == label:
                return int(entry["slot"])
        raise KeyError(label)


@cache
def load_artifact(name: str, build_dir: Path = BUILD_DIR) -> Artifact:
    path = build_dir / f"{name}.json"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise LedgerNodeError(
            f"contract artifact {path} is missing: run `python scripts/compile_contracts.py`"
        ) from None
    data = json.loads(raw)
    return Artifact(
        name=name,
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        storage_layout=data["storageLayout"],
        sha256=hashlib.sha256(raw).hexdigest(),
    )


@cache
def error_selectors() -> dict[bytes, tuple[str, list[dict]]]:
    """4-byte selector → (error name, ABI inputs), across all contracts (and OZ's errors)."""
    from eth_utils import keccak

    out: dict[bytes, tuple[str, list[dict]]] = {}
    for name in ARTIFACT_NAMES:
        for item in load_artifact(name).abi:
            if item["type"] != "error":
                continue
            sig = f"{item['name']}({','.join(_canonical_type(i) for i in item['inputs'])})"
            out[keccak(text=sig)[:4]] = (item["name"], item["inputs"])
    return out


def _canonical_type(param: dict) -> str:
    t = param["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_canonical_type(c) for c in param["components"]) + ")" + t[5:]
    return t
