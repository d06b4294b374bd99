"""A node's refusal is classified once, by code or by the node's words (registry/services/node_errors.py):
the pipeline and the outbox decide on the kind, never on the message. The refusals here are a real
anvil's (one without automining, so a transaction can wait in its pool), and Besu's error objects
as its ``JsonRpcError`` enum gives them (besu: ethereum/api/.../JsonRpcError.java)."""

from __future__ import annotations

import pytest
import requests
from eth_account import Account
from web3.exceptions import Web3RPCError

from ledger_node import DEV_KEYS
from registry.services.node_errors import Refusal, classify
from tests.support.anvil import PrivateAnvil


@pytest.fixture(scope="module")
def idle_anvil():
    node = PrivateAnvil("--no-mining")
    yield node
    node.stop()


def _rpc(node, method, params):
    return requests.post(
        node.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    ).json()


def _tx(node, key, nonce, *, to="0x" + "11" * 20, price=2_000_000_000) -> str:
    tx = {
        "to": to,
        "value": 1,
        "gas": 21000,
        "gasPrice": price,
        "nonce": nonce,
        "chainId": node.w3.eth.chain_id,
    }
    return "0x" + bytes(Account.sign_transaction(tx, key).raw_transaction).hex()


def test_a_real_nodes_refusals_are_classified_by_what_they_mean(idle_anvil):
    key = DEV_KEYS[3]
    first = _tx(idle_anvil, key, 0)
    assert "result" in _rpc(idle_anvil, "eth_sendRawTransaction", [first])

    def refusal(raw):
        answer = _rpc(idle_anvil, "eth_sendRawTransaction", [raw])
        assert "error" in answer, answer
        return classify(answer["error"])

    again = refusal(first)
    assert again.kind is Refusal.ALREADY_KNOWN and again.message == "transaction already imported"
    assert refusal(_tx(idle_anvil, key, 0, to="0x" + "22" * 20)).kind is Refusal.UNDERPRICED  # replacement
    assert "result" in _rpc(idle_anvil, "evm_mine", [])
    assert refusal(first).kind is Refusal.NONCE_USED  # mined: its nonce is used (by itself)
    assert refusal(_tx(idle_anvil, key, 0, to="0x" + "33" * 20)).kind is Refusal.NONCE_USED
    assert refusal(_tx(idle_anvil, key, 1, price=1)).kind is Refusal.UNDERPRICED  # under the base fee


def test_a_block_the_node_does_not_serve_is_classified_through_web3s_exception(idle_anvil):
    head = idle_anvil.w3.eth.block_number
    with pytest.raises(Web3RPCError) as caught:
        idle_anvil.w3.eth.get_logs({"fromBlock": head + 50, "toBlock": head + 50})
    assert classify(caught.value).kind is Refusal.BLOCK_NOT_SERVED


@pytest.mark.parametrize(
    "error, kind",
    [
        ({"code": -32001, "message": "Nonce too low"}, Refusal.NONCE_USED),
        ({"code": -32006, "message": "Nonce too high"}, Refusal.NONCE_GAP),
        ({"code": -32009, "message": "Gas price below configured minimum gas price"}, Refusal.UNDERPRICED),
        ({"code": -32000, "message": "Known transaction"}, Refusal.ALREADY_KNOWN),
        ({"code": -32000, "message": "Replacement transaction underpriced"}, Refusal.UNDERPRICED),
        ({"code": -39001, "message": "Unknown block"}, Refusal.BLOCK_NOT_SERVED),
        ({"code": -32000, "message": "Execution reverted", "data": "0x1234"}, Refusal.OTHER),
        ({"code": -32007, "message": "Sender account not authorized to send transactions"}, Refusal.OTHER),
    ],
)
def test_besus_error_objects_are_classified_by_code_first(error, kind):
    got = classify(error)
    assert got.kind is kind and got.message.startswith(error["message"])


def test_a_text_that_names_nothing_known_is_the_callers_error_with_the_nodes_words_kept():
    got = classify({"code": -32000, "message": "intrinsic gas too low"})
    assert got.kind is Refusal.OTHER and str(got) == "intrinsic gas too low"
    assert classify(None).kind is Refusal.OTHER
    assert classify("nonce too low: next nonce 4, tx nonce 1").kind is Refusal.NONCE_USED  # geth's wording
