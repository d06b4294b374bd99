#!/usr/bin/env python3
"""Compile contracts/*.sol with the pinned solc-js and write the artifacts the installed packages
read at run time (package data, so a wheel behaves as a checkout does):

* ledger_node/build/<Name>.json — ABI, bytecode, deployed bytecode, storage layout, metadata (what
  ``certledger deploy`` deploys, the indexer decodes);
* verifier/_data/contracts.json — per contract only its ABI and storage layout (what the verifier's
  ``--rpc`` and proof-carrying modes read; the verifier imports nothing from ledger_node).

    python scripts/compile_contracts.py            # (re)write both
    python scripts/compile_contracts.py --out DIR  # write both into DIR instead (the drift test does)
    python scripts/compile_contracts.py --check    # exit 1 if either is stale

solc-js is driven through py-solc-x (``compile_standard`` with ``solc_binary`` pointing at
scripts/solc-js, which drops solc-js's ``>>>`` stdout lines). OpenZeppelin imports resolve
through solc-js's import callback, which is switched on by ``--base-path node_modules``.
The artifacts are committed; the running service needs no compiler.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ROOT / "contracts"
BUILD = ROOT / "ledger_node" / "build"
VERIFIER_DATA = ROOT / "verifier" / "_data" / "contracts.json"
WRAPPER = ROOT / "scripts" / "solc-js"
DEPLOYABLE = ("IssuerRegistry", "AnchorRegistry", "DataFlowLedger", "PledgeRegistry")
SETTINGS = {
    "evmVersion": "cancun",
    "viaIR": True,
    "optimizer": {"enabled": True, "runs": 10_000},
    "metadata": {"bytecodeHash": "ipfs"},
    "outputSelection": {
        "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata", "storageLayout"]}
    },
}


def standard_input() -> dict:
    sources = {}
    for path in sorted(CONTRACTS.rglob("*.sol")):
        rel = path.relative_to(CONTRACTS).as_posix()
        sources[rel] = {"content": path.read_text(encoding="utf-8")}
    return {"language": "Solidity", "sources": sources, "settings": SETTINGS}


def compile_contracts() -> dict[str, dict]:
    """Return {contract name: artifact} for the deployable contracts."""
    import solcx  # imported here so --help works without the dev dependencies

    try:
        out = solcx.compile_standard(
            standard_input(), solc_binary=str(WRAPPER), base_path=str(ROOT / "node_modules")
        )
    except solcx.exceptions.SolcError as exc:
        errors = [
            e
            for e in (exc.stdout_data and json.loads(exc.stdout_data) or {}).get("errors", [])
            if e.get("severity") == "error"
        ]
        raise SystemExit("\n".join(e["formattedMessage"] for e in errors) or exc.message) from None
    artifacts = {}
    for source, contracts in out["contracts"].items():
        for name, c in contracts.items():
            if name not in DEPLOYABLE:
                continue
            artifacts[name] = {
                "contractName": name,
                "sourceName": source,
                "compiler": "solc-js " + json.loads(c["metadata"])["compiler"]["version"],
                "abi": c["abi"],
                "bytecode": "0x" + c["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + c["evm"]["deployedBytecode"]["object"],
                "storageLayout": c["storageLayout"],
                "metadata": json.loads(c["metadata"]),
            }
    missing = set(DEPLOYABLE) - set(artifacts)
    if missing:
        raise SystemExit(f"compiler output lacks {sorted(missing)}")
    return artifacts


def render(artifact: dict) -> bytes:
    return (json.dumps(artifact, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def verifier_view(artifacts: dict[str, dict]) -> dict[str, dict]:
    """What the verifier reads of the artifacts: each contract's ABI and storage layout."""
    return {
        name: {"abi": a["abi"], "storageLayout": a["storageLayout"]} for name, a in sorted(artifacts.items())
    }


def outputs(artifacts: dict[str, dict], build: Path, verifier_data: Path) -> dict[Path, bytes]:
    """Every file the compiler's output is written to, with its bytes."""
    out = {build / f"{name}.json": render(a) for name, a in artifacts.items()}
    out[verifier_data] = render(verifier_view(artifacts))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write every file into this directory (default: ledger_node/build and verifier/_data)",
    )
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed files, write nothing"
    )
    args = parser.parse_args(argv)

    artifacts = compile_contracts()
    if args.check:
        stale = [
            path
            for path, data in outputs(artifacts, BUILD, VERIFIER_DATA).items()
            if not path.is_file() or path.read_bytes() != data
        ]
        for path in stale:
            print(
                f"{path.relative_to(ROOT)} is stale: run python scripts/compile_contracts.py", file=sys.stderr
            )
        return 1 if stale else 0
    files = (
        outputs(artifacts, args.out, args.out / VERIFIER_DATA.name)
        if args.out
        else outputs(artifacts, BUILD, VERIFIER_DATA)
    )
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
