"""EIP-712 consents for PledgeRegistry (contracts/PledgeRegistry.sol; docs/FORMAT.md §17): what a
holder's and a lender's wallets sign to pledge a data asset and to release it (the demo and the tests)."""

from __future__ import annotations

from eth_account import Account

_PLEDGE = [
    ("assetKey", "bytes32"),
    ("rank", "uint8"),
    ("holder", "address"),
    ("lender", "address"),
    ("loanRef", "bytes32"),
    ("nonce", "uint32"),
    ("deadline", "uint64"),
]
_RELEASE = [("assetKey", "bytes32"), ("rank", "uint8"), ("lender", "address"), ("nonce", "uint32")]


def _domain(chain_id: int, registry: str) -> dict:
    return {"name": "certledger-pledges", "version": "1", "chainId": chain_id, "verifyingContract": registry}


def ref32(text: str) -> bytes:
    """A short reference as the registry sends it: UTF-8, right-padded to 32 bytes."""
    return text.encode().ljust(32, b"\0")


def pledge_signature(
    key: str,
    chain_id: int,
    registry: str,
    *,
    asset_key: bytes,
    rank: int,
    holder: str,
    lender: str,
    loan_ref: str,
    nonce: int,
    deadline: int,
) -> str:
    msg = {
        "assetKey": asset_key,
        "rank": rank,
        "holder": holder,
        "lender": lender,
        "loanRef": ref32(loan_ref),
        "nonce": nonce,
        "deadline": deadline,
    }
    types = {"Pledge": [{"name": n, "type": t} for n, t in _PLEDGE]}
    return "0x" + bytes(Account.sign_typed_data(key, _domain(chain_id, registry), types, msg).signature).hex()


def release_signature(
    key: str, chain_id: int, registry: str, *, asset_key: bytes, rank: int, nonce: int
) -> str:
    msg = {"assetKey": asset_key, "rank": rank, "lender": Account.from_key(key).address, "nonce": nonce}
    types = {"Release": [{"name": n, "type": t} for n, t in _RELEASE]}
    return "0x" + bytes(Account.sign_typed_data(key, _domain(chain_id, registry), types, msg).signature).hex()
