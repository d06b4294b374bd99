"""The three contracts deployed with web3 on a private anvil (tests.support.anvil), with helpers that
anchor and revoke: the verifier's chain tests and the wheel test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.anvil import PrivateAnvil

BUILD = (
    Path(__file__).resolve().parents[2] / "ledger_node" / "build"
)  # the package data ledger_node deploys from
# anvil's well-known development keys (mnemonic "test test ... junk"): governance, issuer, other issuer
GOVERNANCE_KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
ISSUER_KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
OTHER_KEY = bytes.fromhex("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a")


def _artifact(name: str) -> dict[str, Any]:
    return json.loads((BUILD / f"{name}.json").read_text())


class Deployment:
    """The three contracts deployed by governance, with helpers that send transactions."""

    def __init__(self, anvil: PrivateAnvil) -> None:
        from eth_account import Account

        self.w3 = w3 = anvil.w3
        self.gov = Account.from_key(GOVERNANCE_KEY)
        self.chain_id = int(w3.eth.chain_id)
        issuers = self._deploy("IssuerRegistry", self.gov.address)
        anchors = self._deploy("AnchorRegistry", self.gov.address, issuers.address)
        flows = self._deploy("DataFlowLedger", self.gov.address, anchors.address)
        self.issuers, self.anchors, self.flows = issuers, anchors, flows
        self.deploy_block = int(w3.eth.block_number)

    def manifest(self) -> dict[str, Any]:
        return {
            "chainId": self.chain_id,
            "deployBlock": self.deploy_block,
            "contracts": {
                "issuerRegistry": self.issuers.address,
                "anchorRegistry": self.anchors.address,
                "dataFlowLedger": self.flows.address,
            },
        }

    def _send(self, fn: Any, key: bytes) -> Any:
        from eth_account import Account

        account = Account.from_key(key)
        tx = fn.build_transaction(
            {
                "from": account.address,
                "nonce": self.w3.eth.get_transaction_count(account.address),
                "chainId": self.chain_id,
            }
        )
        signed = account.sign_transaction(tx)
        receipt = self.w3.eth.wait_for_transaction_receipt(
            self.w3.eth.send_raw_transaction(signed.raw_transaction)
        )
        assert receipt["status"] == 1, receipt
        return receipt

    def _deploy(self, name: str, *args: Any) -> Any:
        a = _artifact(name)
        factory = self.w3.eth.contract(abi=a["abi"], bytecode=a["bytecode"])
        receipt = self._send(factory.constructor(*args), GOVERNANCE_KEY)
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=a["abi"])

    def register_issuer(
        self, key: bytes, name: str, uscc: str, types: list[int], *, suite: int = 0, sm2: bytes = b""
    ) -> int:
        from eth_account import Account

        self._send(
            self.issuers.functions.registerIssuer(
                Account.from_key(key).address, name, uscc, types, suite, sm2, 0, 0
            ),
            GOVERNANCE_KEY,
        )
        return int(self.issuers.functions.issuerCount().call())

    def anchor(self, key: bytes, root: bytes, credential_type: int, count: int) -> Any:
        return self._send(self.anchors.functions.anchor(root, credential_type, count), key)

    def revoke_credential(
        self, key: bytes, root: bytes, target: bytes, subject: bytes, proof: list[bytes], reason: int
    ) -> Any:
        return self._send(self.anchors.functions.revokeCredential(root, target, subject, proof, reason), key)

    def revoke_batch(self, key: bytes, root: bytes, reason: int) -> Any:
        return self._send(self.anchors.functions.revokeBatch(root, reason), key)
