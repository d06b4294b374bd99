"""`certledger signer` as a real subprocess: its keys, its policy, its log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from ledger_node.node import free_port
from tests.support.procs import CERTLEDGER


class SignerProcess:
    """An issuer's signer with its own keystore(s) in ``home`` (made here with `certledger signer new-key`)."""

    def __init__(
        self,
        home: Path,
        deployment,
        *,
        suite: str = "secp256k1",
        policy: dict | None = None,
        test_delay: float = 0.0,
    ):
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.test_delay = test_delay
        (self.home / "passphrase").write_text("issuer's own secret, never the registry's\n")
        out = subprocess.run(
            [
                str(CERTLEDGER),
                "signer",
                "new-key",
                "--out",
                str(self.home / "keys"),
                "--passphrase-file",
                str(self.home / "passphrase"),
                "--suite",
                suite,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        self.identity = json.loads(out.stdout)
        self.address = self.identity["address"]
        self.sm2_public_key = self.identity["sm2PublicKey"]
        self.suite = suite
        self.policy = {
            "chainId": deployment.chain_id,
            "anchorRegistry": deployment.anchor_registry,
            **(policy or {}),
        }
        self.write_policy()
        self.log = self.home / "signing-log.jsonl"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_policy(self) -> None:
        (self.home / "policy.json").write_text(json.dumps(self.policy))

    def command(self) -> list[str]:
        cmd = [
            str(CERTLEDGER),
            "signer",
            "run",
            "--keystore",
            str(self.home / "keys" / "keystore.json"),
            "--passphrase-file",
            str(self.home / "passphrase"),
            "--policy",
            str(self.home / "policy.json"),
            "--log",
            str(self.log),
            "--port",
            str(self.port),
        ]
        if self.suite == "sm2-sm3":
            cmd += ["--sm2-keystore", str(self.home / "keys" / "sm2-keystore.json")]
        if self.test_delay:
            cmd += ["--test-delay", str(self.test_delay)]
        return cmd

    def start(self, timeout: float = 30) -> SignerProcess:
        with open(self.home / "signer.out", "ab") as out:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"signer exited with {self.proc.returncode}: "
                    f"{(self.home / 'signer.out').read_text(errors='replace')[-2000:]}"
                )
            try:
                if httpx.get(self.url + "/upcheck", timeout=1).text == "OK":
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("signer did not come up")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def entries(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def ref(self) -> dict:
        return {
            "url": self.url,
            "address": self.address,
            **({"sm2PublicKey": self.sm2_public_key} if self.sm2_public_key else {}),
        }
