#!/usr/bin/env python3
"""Compile contracts/*.sol with the pinned solc-js and write contracts/build/*.json.

    python scripts/compile_contracts.py            # (re)write contracts/build/
    python scripts/compile_contracts.py --out DIR  # write elsewhere (the drift test does)
    python scripts/compile_contracts.py --check    # exit 1 if contracts/build/ is stale

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
BUILD = CONTRACTS / "build"
WRAPPER = ROOT / "scripts" / "solc-js"
DEPLOYABLE = ("IssuerRegistry", "AnchorRegistry", "DataFlowLedger")
SETTINGS = {
    "evmVersion": "cancun",
    "viaIR": True,
    "optimizer": {"enabled": True, "runs": 10_000},
    "metadata": {"bytecodeHash": "ipfs"},
    "outputSelection": {
        "*": {
            "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata", "storageLayout"]
        }
    },
}


def standard_input() -> dict:
    sources = {}
    for path in sorted(CONTRACTS.rglob("*.sol")):
        rel = path.relative_to(CONTRACTS).as_posix()
        if rel.startswith("build/"):
            continue
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
        errors = [e for e in (exc.stdout_data and json.loads(exc.stdout_data) or {}).get("errors", [])
                  if e.get("severity") == "error"]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=BUILD, help="output directory (default contracts/build)")
    parser.add_argument("--check", action="store_true", help="compare with contracts/build, write nothing")
    args = parser.parse_args(argv)

    artifacts = compile_contracts()
    if args.check:
        stale = [n for n, a in artifacts.items() if not (BUILD / f"{n}.json").is_file()
                 or (BUILD / f"{n}.json").read_bytes() != render(a)]
        for name in stale:
            print(f"contracts/build/{name}.json is stale: run python scripts/compile_contracts.py", file=sys.stderr)
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, artifact in artifacts.items():
        (args.out / f"{name}.json").write_bytes(render(artifact))
        print(f"wrote {args.out / (name + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
