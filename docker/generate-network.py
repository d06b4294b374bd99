#!/usr/bin/env python3
"""Generate the keys and configuration of a 4-validator Hyperledger Besu QBFT network.

Writes into --out (default: docker/network/, gitignored; never commit it):

  validator{1..4}/key         node private key (hex, 0x-prefixed: Besu's key-file format)
  validator{1..4}/key.pub     node public key (64 bytes, hex) = the enode id
  validator{1..4}/address     node address = the QBFT validator address
  genesis.json                QBFT genesis: extraData naming the 4 validators, free gas, alloc
  permissions_config.toml     nodes-allowlist (the 4 enodes) + accounts-allowlist
  static-nodes.json           the 4 enode URLs (discovery is off; peers are static)
  deployer.key                deployer/governance key (only when --deployer is not given)
  secrets/postgres_password   PostgreSQL password (a compose secret)
  .env                        the registry's environment: database URL, keystore passphrase,
                              governance key (the generated deployer's)
  deployment/                 where `certledger deploy --manifest` writes the manifest
  network.json                public summary: chain id, validators, enodes, allowlisted accounts
  validators.json             the pinned validator set for `certledger-verify --validators`
                              (docs/FORMAT.md §12.2): hand it to every bank

Runs with the project's virtualenv (coincurve, eth-keys, rlp). The fixed container IPs below
must match docker/compose.yaml (a test checks they do).

QBFT extraData (Besu's QbftExtraDataCodec, block-header validator selection):
    RLP([32-byte vanity, [validator addresses], vote = [] (none), round = 0 (scalar), seals = []])
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
from pathlib import Path

import rlp
from coincurve import PrivateKey
from eth_keys import keys as eth_keys_mod

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "network"

VALIDATORS = ("validator1", "validator2", "validator3", "validator4")
SUBNET = "172.28.40.0/24"
VALIDATOR_IPS = {name: f"172.28.40.{11 + i}" for i, name in enumerate(VALIDATORS)}
P2P_PORT = 30303
DEFAULT_CHAIN_ID = 8020
# 10^9 ether to the deployer (gas is free; the balance is there for tools that check it).
DEPLOYER_BALANCE = hex(10**27)

QBFT = {"blockperiodseconds": 2, "epochlength": 30000, "requesttimeoutseconds": 4}


# -- pure helpers (imported by the tests) -----------------------------------------------------
def node_public_key(private_key: bytes) -> bytes:
    """The 64-byte uncompressed public key (without the 0x04 prefix): the enode id."""
    return PrivateKey(private_key).public_key.format(compressed=False)[1:]


def node_address(private_key: bytes) -> str:
    """The node (= validator) address, checksummed."""
    return eth_keys_mod.PrivateKey(private_key).public_key.to_checksum_address()


def enode_url(private_key: bytes, host: str, port: int = P2P_PORT) -> str:
    return f"enode://{node_public_key(private_key).hex()}@{host}:{port}"


def qbft_extra_data(addresses: list[str]) -> str:
    """RLP([vanity(32 zero bytes), [addresses], [] (no vote), 0 (round), [] (no seals)]) as 0x-hex."""
    validators = [bytes.fromhex(a.removeprefix("0x")) for a in addresses]
    if any(len(v) != 20 for v in validators):
        raise ValueError("validator addresses must be 20 bytes")
    return "0x" + rlp.encode([b"\x00" * 32, validators, [], 0, []]).hex()


def decode_qbft_extra_data(extra_data: str) -> dict:
    """Inverse of qbft_extra_data (for tests and `--check`)."""
    vanity, validators, vote, round_, seals = rlp.decode(bytes.fromhex(extra_data.removeprefix("0x")))
    return {
        "vanity": vanity,
        "validators": ["0x" + v.hex() for v in validators],
        "vote": vote,
        "round": int.from_bytes(round_, "big"),
        "seals": seals,
    }


def validators_file(chain_id: int, addresses: list[str]) -> dict:
    """The validators file of docs/FORMAT.md §12.2 (``verifier.ValidatorSet.load`` reads it)."""
    return {
        "type": "certledger-validators",
        "version": 1,
        "chainId": chain_id,
        "validators": sorted(a.lower() for a in addresses),
    }


def checksum(address: str) -> str:
    a = address.strip()
    body = a.removeprefix("0x").removeprefix("0X")
    if len(body) != 40 or any(c not in "0123456789abcdefABCDEF" for c in body):
        raise argparse.ArgumentTypeError(f"not an address: {address!r}")
    from eth_utils import to_checksum_address

    return to_checksum_address("0x" + body.lower())


def genesis(chain_id: int, validators: list[str], deployer: str) -> dict:
    """A QBFT genesis with every fork through Cancun at 0 (the contracts are compiled for
    evmVersion cancun) and free gas (zeroBaseFee + --min-gas-price=0 on the nodes)."""
    return {
        "config": {
            "chainId": chain_id,
            "homesteadBlock": 0,
            "eip150Block": 0,
            "eip155Block": 0,
            "eip158Block": 0,
            "byzantiumBlock": 0,
            "constantinopleBlock": 0,
            "petersburgBlock": 0,
            "istanbulBlock": 0,
            "berlinBlock": 0,
            "londonBlock": 0,
            "shanghaiTime": 0,
            "cancunTime": 0,
            "zeroBaseFee": True,
            "contractSizeLimit": 2147483647,
            "qbft": dict(QBFT),
        },
        "nonce": "0x0",
        "timestamp": "0x0",
        "gasLimit": "0x5f5e100",
        "difficulty": "0x1",
        "mixHash": "0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365",
        "coinbase": "0x0000000000000000000000000000000000000000",
        "alloc": {deployer.removeprefix("0x").lower(): {"balance": DEPLOYER_BALANCE}},
        "extraData": qbft_extra_data(validators),
    }


def permissions_toml(enodes: list[str], accounts: list[str]) -> str:
    # Besu rewrites this file in place on perm_add*/perm_remove* (one `key=[...]` line per list).
    def arr(items: list[str]) -> str:
        return "[" + ",".join(json.dumps(i) for i in items) + "]"

    return (
        "# Besu local permissioning (generated by docker/generate-network.py).\n"
        f"accounts-allowlist={arr(accounts)}\n"
        f"nodes-allowlist={arr(enodes)}\n"
    )


# -- writing ---------------------------------------------------------------------------------
def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)


# File modes. The whole output directory is 0700, so nothing in it is reachable by other host
# users; files the containers read as their own non-root users (besu uid 1000, postgres uid
# 999) are bind-mounted, so they must be readable by "other" inside that directory; Besu
# rewrites permissions_config.toml on perm_* calls, so that one is writable too.
PRIVATE = 0o600
CONTAINER_READ = 0o644
CONTAINER_WRITE = 0o666


def generate(out: Path, *, chain_id: int, deployer: str | None, accounts: list[str], force: bool) -> dict:
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(
                f"{out} already holds a network; refusing to overwrite its keys (use --force to replace it)"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)

    validators = []
    for name in VALIDATORS:
        key = secrets.token_bytes(32)
        while True:  # a valid secp256k1 scalar (0 < k < n); failure odds ~2^-128
            try:
                PrivateKey(key)
                break
            except ValueError:
                key = secrets.token_bytes(32)
        d = out / name
        d.mkdir()
        os.chmod(d, 0o755)
        _write(d / "key", "0x" + key.hex(), CONTAINER_READ)
        _write(d / "key.pub", "0x" + node_public_key(key).hex() + "\n", CONTAINER_READ)
        _write(d / "address", node_address(key) + "\n", CONTAINER_READ)
        validators.append(
            {
                "name": name,
                "address": node_address(key),
                "enode": enode_url(key, VALIDATOR_IPS[name]),
                "ip": VALIDATOR_IPS[name],
            }
        )

    deployer_key_file = None
    governance_line = "# CERTLEDGER_GOVERNANCE_KEY=0x...  (the --deployer account's key: set it here)\n"
    if deployer is None:
        dkey = secrets.token_bytes(32)
        PrivateKey(dkey)
        deployer = node_address(dkey)
        deployer_key_file = out / "deployer.key"
        _write(deployer_key_file, "0x" + dkey.hex() + "\n", PRIVATE)
        governance_line = f"CERTLEDGER_GOVERNANCE_KEY=0x{dkey.hex()}\n"
    # Lower-case, as in Besu's own examples; one entry per account.
    allow = list(dict.fromkeys(a.lower() for a in [deployer, *accounts]))

    enodes = [v["enode"] for v in validators]
    addresses = [v["address"] for v in validators]
    genesis_json = json.dumps(genesis(chain_id, addresses, deployer), indent=2) + "\n"
    _write(out / "genesis.json", genesis_json, CONTAINER_READ)
    _write(out / "permissions_config.toml", permissions_toml(enodes, allow), CONTAINER_WRITE)
    _write(out / "static-nodes.json", json.dumps(enodes, indent=2) + "\n", CONTAINER_READ)
    _write(
        out / "validators.json",
        json.dumps(validators_file(chain_id, addresses), indent=2) + "\n",
        CONTAINER_READ,
    )

    pg_password = secrets.token_urlsafe(32)
    (out / "secrets").mkdir()
    os.chmod(out / "secrets", 0o755)
    _write(out / "secrets" / "postgres_password", pg_password, CONTAINER_READ)
    _write(
        out / ".env",
        "# The registry's environment (generated; secret; never commit).\n"
        f"CERTLEDGER_DATABASE_URL=postgresql+asyncpg://certledger:{pg_password}@postgres:5432/certledger\n"
        f"CERTLEDGER_KEYSTORE_PASSPHRASE={secrets.token_urlsafe(32)}\n" + governance_line,
        PRIVATE,  # read by the compose client on the host (env_file), not inside a container
    )
    # `certledger deploy --manifest OUT/deployment/deployment.json` writes here; the registry
    # container mounts this directory read-only (a directory, so it may be empty at first).
    (out / "deployment").mkdir()
    os.chmod(out / "deployment", 0o755)
    summary = {
        "chainId": chain_id,
        "subnet": SUBNET,
        "validators": validators,
        "extraData": qbft_extra_data(addresses),
        "deployer": deployer,
        "deployerKeyFile": str(deployer_key_file) if deployer_key_file else None,
        "accountsAllowlist": allow,
    }
    _write(out / "network.json", json.dumps(summary, indent=2) + "\n", CONTAINER_READ)
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="generate-network.py",
        description="Generate node keys, QBFT genesis, permissioning allowlists, static nodes and "
        "random passwords for the 4-validator Besu network of docker/compose.yaml.",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})")
    p.add_argument(
        "--chain-id", type=int, default=DEFAULT_CHAIN_ID, help=f"chain id (default: {DEFAULT_CHAIN_ID})"
    )
    p.add_argument(
        "--deployer",
        type=checksum,
        default=None,
        help="deployer/governance address (funded in genesis, allowlisted); "
        "default: generate a key into OUT/deployer.key",
    )
    p.add_argument(
        "--accounts",
        type=checksum,
        nargs="+",
        default=[],
        metavar="0xADDR",
        help="further accounts for the accounts allowlist (the issuer accounts)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing network (its keys are lost)")
    args = p.parse_args(argv)
    try:
        s = generate(
            args.out, chain_id=args.chain_id, deployer=args.deployer, accounts=args.accounts, force=args.force
        )
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"network written to {args.out} (chain id {s['chainId']}); the validator set for banks: "
        f"{args.out / 'validators.json'}"
    )
    for v in s["validators"]:
        print(f"  {v['name']}: {v['address']}  {v['enode'][:24]}…@{v['ip']}")
    key_note = f" (key in {s['deployerKeyFile']})" if s["deployerKeyFile"] else ""
    print(f"  deployer: {s['deployer']}{key_note}")
    print(f"  accounts allowlist: {', '.join(s['accountsAllowlist'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
