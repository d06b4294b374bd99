"""The one launcher of a private anvil for tests and benchmarks, built on ``ledger_node.node``.

The session's ``anvil_node`` (tests/conftest.py) is the persistent node the service uses; a
*private* anvil is in memory (no ``--state`` dump, whose once-a-second cost grows with history)
and goes away with the test module that made it.
"""

from __future__ import annotations

import shutil
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Any

from ledger_node.node import ANVIL, AnvilNode, free_port

ROOT = Path(__file__).resolve().parents[2]

#: a high block gas limit and a zero base fee: thousands of anchors fit in one block
BULK_ARGS = ("--gas-limit", "1000000000", "--base-fee", "0")


class PrivateAnvil:
    """An in-memory anvil on a free port, started on construction; ``stop()`` removes everything."""

    def __init__(self, *extra_args: str) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="certledger-anvil-"))
        self.node = AnvilNode(self._dir, port=free_port(), persist=False, extra_args=extra_args)
        try:
            self.node.start()
        except Exception:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self.port = self.node.port
        self.url = self.node.rpc_url

    @cached_property
    def w3(self) -> Any:
        from web3 import HTTPProvider, Web3

        return Web3(HTTPProvider(self.url))

    def deploy(self, manifest_path: Path) -> Any:
        """A fresh deployment of the three contracts (governance and regulator: dev key 0)."""
        from ledger_node import DEV_KEYS, deploy
        from ledger_node.chain import Chain

        manifest, _ = deploy(Chain(self.url), DEV_KEYS[0], manifest_path, force=True)
        return manifest

    def stop(self) -> None:
        self.node.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


__all__ = ["ANVIL", "BULK_ARGS", "ROOT", "PrivateAnvil", "free_port"]
