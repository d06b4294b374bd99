"""Chain histories for the indexer tests and scripts/bench_indexer.py (no tests, no fixtures here).

`Loader` makes chain history fast: transactions are signed locally (eth_account) with explicit
nonces and sent as JSON-RPC *batches* of raw transactions; with `per_block`, anvil's automine is
switched off and blocks are mined by hand so many transactions share a block. Anvil-specific
calls (evm_setAutomine, evm_mine, anvil_setNextBlockBaseFeePerGas, evm_snapshot, evm_revert,
anvil_reorg) live here, in test code only.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx
from eth_account import Account
from eth_utils import keccak

from ledger_node import DEV_KEYS
from ledger_node.chain import Chain

GOV = DEV_KEYS[0]
ISSUER = DEV_KEYS[1]
ISSUER_NEW_KEY = DEV_KEYS[2]
ISSUER2 = DEV_KEYS[3]
EXPORTER, IMPORTER = DEV_KEYS[4], DEV_KEYS[5]
BUSINESS_LICENCE, OPERATING_PERMIT, DATA_ASSET_CERTIFICATE = 1, 2, 3
GAS_PRICE = 1_000_000_000


def addr(key: str) -> str:
    return Account.from_key(key).address


# -- a small sorted-pair Merkle tree (OpenZeppelin MerkleProof-compatible) ---------------------
def leaf_hash(target: bytes, subject: bytes) -> bytes:
    return keccak(keccak(target + subject))  # abi.encode(bytes32, bytes32) is the concatenation


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak(min(a, b) + max(a, b))


def merkle(leaves: list[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """(root, proof per leaf) for a sorted-pair tree; an odd node is carried up unchanged."""
    proofs: list[list[bytes]] = [[] for _ in leaves]
    level = [(lf, [i]) for i, lf in enumerate(leaves)]
    while len(level) > 1:
        nxt = []
        for j in range(0, len(level), 2):
            if j + 1 == len(level):
                nxt.append(level[j])
                continue
            (a, ia), (b, ib) = level[j], level[j + 1]
            for i in ia:
                proofs[i].append(b)
            for i in ib:
                proofs[i].append(a)
            nxt.append((_pair(a, b), ia + ib))
        level = nxt
    return level[0][0], proofs


class Loader:
    """Drive the contracts fast from a test (sync; httpx for raw batches, web3 for encoding)."""

    def __init__(self, rpc_url: str, deployment: Any):
        self.url = rpc_url
        self.d = deployment
        self.chain = Chain(rpc_url)
        self.http = httpx.Client(timeout=120)
        self.ir = self.chain.contract("IssuerRegistry", deployment.issuer_registry)
        self.ar = self.chain.contract("AnchorRegistry", deployment.anchor_registry)
        self.fl = self.chain.contract("DataFlowLedger", deployment.data_flow_ledger)
        self.chain_id = self.chain.chain_id
        self._nonces: dict[str, int] = {}

    # JSON-RPC
    def rpc(self, method: str, params: list | None = None) -> Any:
        r = self.http.post(
            self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
        )
        body = r.json()
        if body.get("error"):
            raise RuntimeError(f"{method}: {body['error']}")
        return body["result"]

    def head(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def block_hash(self, n: int) -> str:
        return self.rpc("eth_getBlockByNumber", [hex(n), False])["hash"]

    def mine(self, n: int = 1) -> None:
        for _ in range(n):
            self.rpc("evm_mine")

    def snapshot(self) -> str:
        return self.rpc("evm_snapshot")

    def revert(self, snap: str) -> None:
        assert self.rpc("evm_revert", [snap]) is True
        self._nonces.clear()

    # transactions
    def nonce(self, key: str) -> int:
        a = addr(key)
        if a not in self._nonces:
            self._nonces[a] = int(self.rpc("eth_getTransactionCount", [a, "pending"]), 16)
        n = self._nonces[a]
        self._nonces[a] = n + 1
        return n

    def sign(self, key: str, to: str, data: str, gas: int = 200_000) -> str:
        tx = {
            "to": to,
            "data": data,
            "nonce": self.nonce(key),
            "gas": gas,
            "gasPrice": GAS_PRICE,
            "chainId": self.chain_id,
            "value": 0,
        }
        return "0x" + bytes(Account.from_key(key).sign_transaction(tx).raw_transaction).hex()

    def send_raw(self, raws: list[str], chunk: int = 500) -> list[str]:
        hashes: list[str] = []
        for i in range(0, len(raws), chunk):
            body = [
                {"jsonrpc": "2.0", "id": j, "method": "eth_sendRawTransaction", "params": [raw]}
                for j, raw in enumerate(raws[i : i + chunk])
            ]
            reply = self.http.post(self.url, json=body).json()
            for r in sorted(reply, key=lambda r: r["id"]):
                if r.get("error"):
                    raise RuntimeError(f"eth_sendRawTransaction: {r['error']}")
                hashes.append(r["result"])
        return hashes

    def tx(self, fn, key: str, gas: int = 500_000) -> dict:
        """One transaction through the normal path, waiting for its receipt (automine on)."""
        raw = self.sign(key, fn.address, fn._encode_transaction_data(), gas)
        (h,) = self.send_raw([raw])
        receipt = self.chain.w3.eth.wait_for_transaction_receipt(h, timeout=30)
        assert receipt["status"] == 1, f"tx failed: {fn.fn_name}"
        return receipt

    def anchor_calls(
        self, key: str, n: int, credential_type: int = BUSINESS_LICENCE
    ) -> tuple[list[str], list[bytes]]:
        roots = [os.urandom(32) for _ in range(n)]
        to = self.ar.address
        sel = self.ar.functions.anchor(b"\0" * 32, credential_type, 1)._encode_transaction_data()[:10]
        raws = []
        for i, root in enumerate(roots):
            data = (
                sel
                + root.hex()
                + credential_type.to_bytes(32, "big").hex()
                + (1 + i % 1000).to_bytes(32, "big").hex()
            )
            raws.append(self.sign(key, to, data, 80_000))
        return raws, roots

    def anchor_many(
        self, key: str, n: int, *, per_block: int = 300, credential_type: int = BUSINESS_LICENCE
    ) -> list[bytes]:
        """Anchor n random roots, `per_block` to a block (automine off, mined by hand: anvil's
        automine falls far behind a large pool)."""
        raws, roots = self.anchor_calls(key, n, credential_type)
        self.send_packed(raws, per_block)
        return roots

    def send_packed(self, raws: list[str], per_block: int) -> None:
        self.rpc("evm_setAutomine", [False])
        try:
            for i in range(0, len(raws), per_block):
                self.send_raw(raws[i : i + per_block])
                self.mine()
            while int(self.rpc("txpool_status")["pending"], 16):
                self.mine()
        finally:
            self.rpc("evm_setAutomine", [True])

    def wait_mined(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while int(self.rpc("txpool_status")["pending"], 16):
            assert time.time() < deadline, "transactions not mined"
            time.sleep(0.02)

    # a history touching every event the indexer handles
    def register_issuer(
        self,
        key: str,
        types=(BUSINESS_LICENCE, OPERATING_PERMIT, DATA_ASSET_CERTIFICATE),
        name: str = "Guangzhou Market Regulation Bureau",
        uscc: str = "91440101MA59TEST0X",
    ) -> int:
        r = self.tx(self.ir.functions.registerIssuer(addr(key), name, uscc, list(types), 0, b"", 0, 0), GOV)
        from web3.logs import DISCARD

        return self.ir.events.IssuerRegistered().process_receipt(r, errors=DISCARD)[0]["args"]["issuerId"]

    def mixed_history(self) -> dict:
        """Every event type at least once; returns the keys it made."""
        i1 = self.register_issuer(ISSUER)
        i2 = self.register_issuer(
            ISSUER2, (OPERATING_PERMIT,), name="Shenzhen Data Bureau", uscc="91440300MA5FTEST1X"
        )
        self.tx(self.ir.functions.setCredentialType(i2, DATA_ASSET_CERTIFICATE, True), GOV)
        self.tx(self.ir.functions.setCredentialType(i2, OPERATING_PERMIT, False), GOV)
        self.tx(self.ir.functions.suspendIssuer(i2, 7), GOV)
        self.tx(self.ir.functions.reinstateIssuer(i2), GOV)
        # batches and statuses
        exporter_id = keccak(text="91440101MA59EXPORT")
        importer_id = keccak(text="HK-IMPORTER-0001")
        values = [
            (os.urandom(32), exporter_id),
            (os.urandom(32), keccak(text="s1")),
            (os.urandom(32), keccak(text="s2")),
            (os.urandom(32), keccak(text="s3")),
        ]
        leaves = [leaf_hash(t, s) for t, s in values]
        root, proofs = merkle(leaves)
        self.tx(self.ar.functions.anchor(root, DATA_ASSET_CERTIFICATE, len(values)), ISSUER)
        t, s = values[1]
        self.tx(self.ar.functions.revokeCredential(root, t, s, proofs[1], 3), ISSUER)
        t, s = values[2]
        self.tx(self.ar.functions.suspendCredential(root, t, s, proofs[2], 4), ISSUER)
        self.tx(self.ar.functions.reinstateCredential(root, leaves[2]), ISSUER)
        t, s = values[3]
        self.tx(self.ar.functions.suspendCredential(root, t, s, proofs[3], 5), GOV)
        other = [os.urandom(32) for _ in range(3)]
        for r in other:
            self.tx(self.ar.functions.anchor(r, BUSINESS_LICENCE, 10), ISSUER)
        self.tx(self.ar.functions.revokeBatch(other[0], 1), ISSUER)
        self.tx(self.ar.functions.suspendBatch(other[1], 2), ISSUER)
        self.tx(self.ar.functions.reinstateBatch(other[1]), ISSUER)
        self.tx(self.ar.functions.suspendBatch(other[2], 9), GOV)
        # key rotation: the old anchors keep their key version
        self.tx(self.ir.functions.rotateKey(i1, addr(ISSUER_NEW_KEY), b""), ISSUER)
        self.tx(self.ar.functions.anchor(os.urandom(32), BUSINESS_LICENCE, 5), ISSUER_NEW_KEY)
        # data flows
        self.tx(self.fl.functions.registerParticipant(addr(EXPORTER), exporter_id), GOV)
        self.tx(self.fl.functions.registerParticipant(addr(IMPORTER), importer_id), GOV)
        t, s = values[0]
        decl = (
            0,
            importer_id,
            b"CN-GD".ljust(8, b"\0"),
            b"HK".ljust(8, b"\0"),
            1,
            True,
            1200,
            10**9,
            keccak(text="credit assessment"),
            os.urandom(32),
            os.urandom(32),
        )
        self.tx(self.fl.functions.declareFlow(decl, (root, t, s, proofs[0])), EXPORTER)
        self.tx(self.fl.functions.decideFlow(1, 2, "approved under the GBA standard contract"), GOV)
        onward = (
            1,
            keccak(text="MO-IMPORTER-7"),
            b"HK".ljust(8, b"\0"),
            b"MO".ljust(8, b"\0"),
            3,
            False,
            0,
            5 * 10**8,
            keccak(text="analytics"),
            os.urandom(32),
            os.urandom(32),
        )
        self.tx(self.fl.functions.declareFlow(onward, (root, t, s, proofs[0])), IMPORTER)
        self.tx(self.fl.functions.decideFlow(2, 3, "destination not authorised"), GOV)
        decl3 = (
            0,
            importer_id,
            b"CN-GD".ljust(8, b"\0"),
            b"SG".ljust(8, b"\0"),
            4,
            False,
            0,
            1,
            keccak(text="backup"),
            os.urandom(32),
            os.urandom(32),
        )
        self.tx(self.fl.functions.declareFlow(decl3, (root, t, s, proofs[0])), EXPORTER)  # stays pending
        return {"issuers": [i1, i2], "root": root, "leaves": leaves, "other": other}


# -- indexing from a test ----------------------------------------------------------------------
def run(coro):
    return asyncio.run(coro)


async def index_once(rpc_url: str, deployment: Any, database_url: str, **kw: Any):
    """Create the tables if missing, run the indexer once, return (stats, snapshot)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from ledger_node.indexer import Indexer
    from ledger_node.projection import create_chain_tables, projection_snapshot

    engine = create_async_engine(database_url)
    try:
        await create_chain_tables(engine)
        async with Indexer(rpc_url, deployment, engine, **kw) as ix:
            stats = await ix.run_once()
        async with engine.connect() as conn:
            from sqlalchemy.ext.asyncio import AsyncSession

            async with AsyncSession(bind=conn) as s:
                snap = await projection_snapshot(s)
        return stats, snap
    finally:
        await engine.dispose()


async def db_snapshot(database_url: str) -> dict:
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from ledger_node.projection import projection_snapshot

    engine = create_async_engine(database_url)
    try:
        async with AsyncSession(engine) as s:
            return await projection_snapshot(s)
    finally:
        await engine.dispose()


def diff(a: dict, b: dict) -> str:
    """A short description of how two snapshots differ ("" when equal)."""
    out = []
    for k in sorted(set(a) | set(b)):
        ra, rb = a.get(k, []), b.get(k, [])
        if ra != rb:
            extra = [r for r in ra if r not in rb][:2]
            missing = [r for r in rb if r not in ra][:2]
            out.append(f"{k}: {len(ra)} vs {len(rb)} rows; only left {extra}; only right {missing}")
    return "\n".join(out)
