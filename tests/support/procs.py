"""`certledger serve` as a real subprocess, for crash, outage and multi-instance tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ledger_node.node import free_port

CERTLEDGER = Path(sys.executable).parent / "certledger"
ROOT = Path(__file__).resolve().parents[2]


class ServiceProcess:
    def __init__(self, data_dir: Path, *, env: dict[str, str], port: int | None = None, name: str = "svc"):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.env = {**os.environ, "CERTLEDGER_DATA_DIR": str(self.data_dir), **env}
        self.name = name
        self.proc: subprocess.Popen | None = None
        self.log = self.data_dir / f"{name}.log"
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, crash_after: str | None = None, timeout: float = 60) -> None:
        env = dict(self.env)
        env.pop("CERTLEDGER_TEST_CRASH_AFTER", None)
        command = [str(CERTLEDGER), "serve", "--port", str(self.port)]
        if crash_after:  # the service with a fault installed (tests/support/crashing_service.py)
            env["CERTLEDGER_TEST_CRASH_AFTER"] = crash_after
            env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
            command = [sys.executable, "-m", "tests.support.crashing_service", *command[1:]]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            log.write(f"\n=== start {self.starts} crash_after={crash_after}\n".encode())
            self.proc = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if crash_after:  # the injected crash came during start-up: that is a kill too
                    return
                raise RuntimeError(f"service exited with {self.proc.returncode}: {self.tail()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"service did not become healthy: {self.tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def wait_dead(self, timeout: float = 60) -> bool:
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def health(self) -> dict:
        return httpx.get(self.url + "/health", timeout=5).json()

    def admin_key(self) -> str:
        return (self.data_dir / "secrets" / "admin-api-key").read_text().strip()

    def tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return "(no log)"


def create_issuer(svc: ServiceProcess, uscc: str, name: str = "广州市市场监督管理局") -> str:
    r = httpx.post(
        svc.url + "/v1/organisations",
        headers={"Authorization": f"Bearer {svc.admin_key()}"},
        json={
            "name": name,
            "identifier": uscc,
            "jurisdiction": "CN-GD",
            "roles": ["issuer"],
            "credentialTypes": ["BusinessLicence", "DataAssetCertificate"],
        },
        timeout=60,
    )
    assert r.status_code == 201, r.text
    return r.json()["apiKey"]


def write_manifest(path: Path, deployment) -> Path:
    path.write_text(json.dumps(deployment.to_json()))
    return path
