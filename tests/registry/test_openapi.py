"""The OpenAPI document is the API's contract: it validates as OpenAPI 3.1, every `$ref` resolves, and
schemathesis, run against the real `certledger serve` (SQLite and PostgreSQL, real anvil) with one API
key per role, finds no server error, no undocumented status code, no response outside its schema and
no undeclared content type."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from scripts.samples import make_uscc
from tests.support.procs import ServiceProcess

ST = Path(sys.executable).parent / "st"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def _spec() -> dict:
    from registry.api.app import create_app

    return create_app().openapi()


def test_the_document_is_valid_openapi_3_1_and_every_ref_resolves():
    from openapi_spec_validator import validate

    spec = _spec()
    validate(spec)
    assert spec["openapi"].startswith("3.1")
    text = json.dumps(spec)
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text))
    assert refs and refs <= set(spec["components"]["schemas"]), refs - set(spec["components"]["schemas"])
    assert "PartyIn" in refs  # the flow declaration's importer, once dangling
    assert "HTTPValidationError" not in text  # this API answers 400 with its own shape, never FastAPI's 422


def test_every_error_response_has_the_one_error_shape_and_every_operation_its_codes():
    spec = _spec()
    ops = {(m.upper(), p): op for p, item in spec["paths"].items() for m, op in item.items()}
    for (method, path), op in ops.items():
        responses = op["responses"]
        assert {"400", "413"} <= set(responses), (method, path)
        for code, response in responses.items():
            if code.startswith(("4", "5")):
                assert response["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorBody"
                }, (method, path, code)
        # an operation takes an API key exactly where it can refuse one: the key is read in
        # registry.api.deps, not by FastAPI, so the document declares the schemes itself (from the
        # same dependency as the 401) and they must reach every such operation, in this form
        assert bool(op.get("security")) == ("401" in responses), (method, path)
        if op.get("security"):
            assert op["security"] == [{"apiKeyBearer": []}, {"apiKeyHeader": []}], (method, path)
            assert {"401", "403"} <= set(responses), (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)
    assert "429" in ops[("POST", "/verify/check")]["responses"]
    assert "429" not in ops[("POST", "/v1/verify")]["responses"]
    assert {"409", "422", "503"} <= set(ops[("POST", "/v1/credentials/bulk")]["responses"])
    assert "404" in ops[("GET", "/v1/flows/trace")]["responses"]  # a query naming an unknown asset
    # the bodies the routes read themselves are declared, with their media types
    assert set(ops[("POST", "/v1/credentials/bulk")]["requestBody"]["content"]) == {
        "application/json",
        "application/x-ndjson",
        "application/jsonl",
    }
    assert "multipart/form-data" in ops[("POST", "/verify/check")]["requestBody"]["content"]
    assert set(ops[("GET", "/v1/flows/trace")]["responses"]["200"]["content"]) == {
        "application/json",
        "text/csv",
        "image/svg+xml",
    }
    # API keys are security schemes, not header parameters a client could fill with anything
    assert set(spec["components"]["securitySchemes"]) == {"apiKeyBearer", "apiKeyHeader"}
    for op in ops.values():
        assert not [p for p in op.get("parameters", []) if p["in"] == "header"], op["operationId"]
    # stateful links: issue, then read / revoke what was issued
    links = ops[("POST", "/v1/credentials")]["responses"]["202"]["links"]
    assert links["GetCredential"]["operationId"] == "get_credential"
    assert {lk["operationId"] for lk in links.values()} <= {op["operationId"] for op in ops.values()}


def _create_org(svc: ServiceProcess, roles: list[str], types: list[str] = ()) -> str:
    r = httpx.post(
        svc.url + "/v1/organisations",
        headers={"Authorization": f"Bearer {svc.admin_key()}"},
        json={
            "name": f"{'/'.join(roles)} 测试",
            "identifier": make_uscc(),
            "jurisdiction": "CN-GD",
            "roles": roles,
            "credentialTypes": list(types),
        },
        timeout=60,
    )
    assert r.status_code == 201, r.text
    return r.json()["apiKey"]


@pytest.mark.chain
@pytest.mark.slow
def test_schemathesis_finds_nothing_against_the_real_service(tmp_path, database_url):
    """schemathesis (coverage, fuzzing and stateful phases, bounded examples, fixed seed) for each role."""
    env = {"CERTLEDGER_BATCH_WINDOW_SECONDS": "0.3", "CERTLEDGER_INDEXER_ENABLED": "false"}
    if not database_url.startswith("sqlite"):
        env["CERTLEDGER_DATABASE_URL"] = database_url
    node_port = str(__import__("ledger_node.node", fromlist=["free_port"]).free_port())
    env["CERTLEDGER_NODE_PORT"] = node_port
    svc = ServiceProcess(tmp_path / "data", env=env, name="schemathesis")
    try:
        svc.start()
        keys = {
            "admin": svc.admin_key(),
            "issuer": _create_org(svc, ["issuer"], ["BusinessLicence", "DataAssetCertificate"]),
            "verifier": _create_org(svc, ["verifier"]),
            "regulator": _create_org(svc, ["regulator"]),
            "exporter": _create_org(svc, ["exporter"]),
        }
        spec = httpx.get(svc.url + "/openapi.json", timeout=30).json()
        operations = sum(len(item) for item in spec["paths"].values())
        for role, key in keys.items():
            proc = subprocess.run(
                [
                    str(ST),
                    "run",
                    svc.url + "/openapi.json",
                    "-H",
                    f"Authorization: Bearer {key}",
                    "--checks",
                    CHECKS,
                    "--max-examples",
                    "8",
                    "--seed",
                    "20261203",
                    "--no-color",
                    "--request-timeout",
                    "30",
                    "--workers",
                    "1",
                ],
                capture_output=True,
                text=True,
                timeout=600,
                env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
            )
            summary = (
                proc.stdout[proc.stdout.find("= FAILURES =") :][:6000]
                if "FAILURES" in proc.stdout
                else proc.stdout[-3000:]
            )
            assert proc.returncode == 0, f"role {role}:\n{summary}\n{proc.stderr[-2000:]}"
            assert re.search(rf"Tested: {operations}\b", proc.stdout), proc.stdout[-2000:]  # every operation
    finally:
        if svc.alive():
            os.killpg(svc.proc.pid, signal.SIGTERM)
            svc.wait_dead(60)
        subprocess.run(
            [str(Path(sys.executable).parent / "certledger"), "node", "down"],
            env={
                **os.environ,
                "CERTLEDGER_DATA_DIR": str(tmp_path / "data"),
                "CERTLEDGER_NODE_PORT": node_port,
            },
            capture_output=True,
        )
