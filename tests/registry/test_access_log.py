"""`certledger serve` writes a line per request only when CERTLEDGER_ACCESS_LOG asks for it (off by
default: /metrics counts and times every request)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.procs import ServiceProcess, write_manifest

pytestmark = [pytest.mark.chain]


def _requests_logged(svc: ServiceProcess) -> list[str]:
    svc.start()
    try:
        assert httpx.get(svc.url + "/v1/no-such-route", timeout=10).status_code == 404
        metrics = httpx.get(svc.url + "/metrics", timeout=10).text
        assert 'route="unmatched",status="404"' in metrics  # counted either way
    finally:
        svc.kill()
    run = svc.log.read_text().rsplit("=== start", 1)[1]  # this start's part of the log
    return [line for line in run.splitlines() if "/v1/no-such-route HTTP/1.1" in line]


def test_a_line_per_request_only_when_the_access_log_is_on(chain, deployment, tmp_path):
    manifest = write_manifest(tmp_path / "deployment.json", deployment)
    env = {
        "CERTLEDGER_RPC_URL": chain.rpc_url,
        "CERTLEDGER_MANIFEST": str(manifest),
        "CERTLEDGER_KEYSTORE_PASSPHRASE": "log-test",
        "CERTLEDGER_INDEXER_ENABLED": "false",
    }
    assert _requests_logged(ServiceProcess(tmp_path / "data", env=env, name="quiet")) == []
    logged = _requests_logged(
        ServiceProcess(tmp_path / "data", env={**env, "CERTLEDGER_ACCESS_LOG": "true"}, name="logged")
    )
    assert len(logged) == 1 and '"GET /v1/no-such-route HTTP/1.1" 404' in logged[0]
