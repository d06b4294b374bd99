"""The authorisation matrix: every endpoint × every role × every way of failing to authenticate.

Endpoints are enumerated from the running app, so a new endpoint without a row in `MATRIX` fails
`test_matrix_covers_every_route` (and the matrix itself). Each row names the roles allowed and
the status a successful call returns; every other role must get 403 `forbidden`, and a missing,
malformed, wrong-secret or revoked key 401 `unauthenticated` — each in the one error shape.

The whole matrix runs in one test function per database (one service, one deployment), with
failures collected and reported together.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from scripts.samples import business_licence_record, make_uscc
from tests.support.service import app_routes

pytestmark = [pytest.mark.chain, pytest.mark.anyio]

ADMIN, ISSUER, OTHER, VERIFIER, REGULATOR, EXPORTER, IMPORTER, HOLDER = (
    "admin",
    "issuer",
    "other-issuer",
    "verifier",
    "regulator",
    "exporter",
    "importer",
    "holder",
)
# `exporter` holds a data asset certificate (issued by `other-issuer`) and declares a flow to
# `importer`, a Hong Kong organisation that is also an exporter (it may transfer onward).
# `holder` is the enterprise the issuer's credential is about (its credit code is the subject).
ROLES = (ADMIN, ISSUER, OTHER, VERIFIER, REGULATOR, EXPORTER, IMPORTER, HOLDER)
ANY = frozenset(ROLES)
ISSUERS = frozenset({ISSUER, OTHER})
PUBLIC = None  # no authentication at all


@dataclass(frozen=True)
class Row:
    allowed: frozenset | None  # roles allowed; PUBLIC: no key needed
    ok: int = 200  # status of a successful call
    # (env, role, headers) -> (path, json body or None, extra request kwargs)
    request: Callable | None = None
    note: str = ""
    denied_code: str = "forbidden"  # error code for a refused role ...
    codes: dict = field(default_factory=dict)  # ... or a more specific one, per role
    page: bool = False  # an HTML page: statuses only, no JSON error shape
    unauth_status: int = 401  # pages: what a caller who is not signed in gets
    denied_status: int = 403


def page(allowed, *, ok=200, unauth=401, denied=403, request=None, note=""):
    return Row(
        allowed, ok=ok, request=request, note=note, page=True, unauth_status=unauth, denied_status=denied
    )


def _path(template: str) -> Callable:
    return lambda env, role, headers: (template.format(**env.params(role)), None, {})


def _post(template: str, body: Callable | dict | None = None, **kw) -> Callable:
    def build(env, role, headers):
        b = body(env, role) if callable(body) else body
        return template.format(**env.params(role)), b, kw

    return build


def _sign_in(env, role, headers):
    """The trace page's sign-in form takes the key in the body, not in a header."""
    auth = headers.get("Authorization", "")
    key = auth[7:] if auth.startswith("Bearer ") else headers.get("X-API-Key", "")
    return (
        "/trace/session",
        None,
        {
            "data": {"api_key": key} if key else {},
            "headers": {"authorization": ""},
            "follow_redirects": False,
        },
    )


def _declaration(env, role):
    from tests.support.flows import declaration

    importer = (
        env.orgs[IMPORTER]
        if role != IMPORTER
        else {"name": "Another HK Ltd", "identifier": "HK-BR-00000001", "jurisdiction": "HK"}
    )  # not to itself
    return declaration(env.extra["certificate"], importer=importer, to="HK")


def _bulk(env, role, headers):
    return (
        "/v1/credentials/bulk?type=BusinessLicence",
        None,
        {
            "content": _json_bytes([business_licence_record()]),
            "headers": {"content-type": "application/json"},
        },
    )


def _json_bytes(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


# The expected table: (method, path as the app declares it) -> who may call it. The order is
# the order of execution: reads first, then status changes (suspend → reinstate → revoke).
MATRIX: dict[tuple[str, str], Row] = {
    ("GET", "/health"): Row(PUBLIC),
    ("GET", "/metrics"): Row(PUBLIC),
    ("GET", "/openapi.json"): Row(PUBLIC),
    ("GET", "/docs"): Row(PUBLIC),
    ("GET", "/docs/oauth2-redirect"): Row(PUBLIC),
    ("GET", "/redoc"): Row(PUBLIC),
    ("GET", "/v1/organisations"): Row(ANY),
    ("GET", "/v1/organisations/{org_id}"): Row(ANY),
    ("GET", "/v1/credentials"): Row(frozenset({ADMIN}) | ISSUERS, note="issuers see their own"),
    ("GET", "/v1/credentials/{credential_id}"): Row(frozenset({ADMIN, ISSUER})),
    ("GET", "/v1/credentials/{credential_id}/qr.{fmt}"): Row(frozenset({ADMIN, ISSUER})),
    ("GET", "/v1/credentials/{credential_id}/proof"): Row(PUBLIC, note="a fresh proof package; rate-limited"),
    ("GET", "/v1/credentials/{credential_id}/pledge"): Row(
        PUBLIC,
        ok=409,
        note=(
            "a fresh pledge proof; rate-limited. Public: no caller is refused; the matrix's credential is a business "
            "licence (409: no data asset); the 200 path is tests/registry/test_pledge_route.py"
        ),
    ),
    **{
        ("POST", f"/v1/credentials/{{credential_id}}/asset/{action}"): Row(
            frozenset({ADMIN, ISSUER}),
            ok=409,
            request=_post(f"/v1/credentials/{{credential_id}}/asset/{action}", body),
            note="the data authority's (its issuer, or an admin); the matrix's credential is a business licence "
            "(409: no data asset); the 200 path is tests/registry/test_collateral.py",
        )
        for action, body in (
            ("register", {"holder": "0x" + "11" * 20}),
            ("dispute", {"caseRef": "CASE-1"}),
            ("resolve", {"caseRef": "CASE-1"}),
            ("cancel", {"reason": 1}),
            ("transfer", {"holder": "0x" + "11" * 20, "newCredentialId": "urn:uuid:x"}),
            ("change", {"changeDigest": "CHANGE-1"}),
        )
    },
    ("POST", "/v1/credentials/{credential_id}/pledges/{rank}/cancel"): Row(
        frozenset({ADMIN, ISSUER}),
        ok=409,
        request=_post("/v1/credentials/{credential_id}/pledges/1/cancel", {"reason": 1}),
        note="the data authority's; 409: the matrix's credential names no data asset",
    ),
    ("POST", "/v1/credentials/{credential_id}/pledges"): Row(
        ANY,
        ok=409,
        request=_post(
            "/v1/credentials/{credential_id}/pledges",
            {
                "lender": "0x" + "22" * 20,
                "loanRef": "LOAN-1",
                "deadline": 2**40,
                "holderSignature": "0x" + "33" * 65,
                "lenderSignature": "0x" + "44" * 65,
            },
        ),
        note="any organisation relays a pledge both parties signed; 409: no data asset in the matrix",
    ),
    ("POST", "/v1/credentials/{credential_id}/pledges/{rank}/release"): Row(
        ANY,
        ok=409,
        request=_post(
            "/v1/credentials/{credential_id}/pledges/1/release", {"lenderSignature": "0x" + "44" * 65}
        ),
        note="any organisation relays the lender's signed release; 409: no data asset in the matrix",
    ),
    ("GET", "/v1/batches"): Row(frozenset({ADMIN}) | ISSUERS, note="issuers see their own"),
    ("GET", "/v1/batches/{batch_id}"): Row(frozenset({ADMIN, ISSUER})),
    ("POST", "/v1/verify"): Row(
        ANY, request=_post("/v1/verify", lambda env, role: {"credential": env.holder_copy})
    ),
    ("GET", "/v1/trust-bundle"): Row(ANY),
    ("GET", "/v1/audit"): Row(frozenset({ADMIN})),
    ("GET", "/v1/holder/credentials"): Row(frozenset({HOLDER}), note="its own credentials only"),
    ("GET", "/v1/holder/credentials/{credential_id}"): Row(
        frozenset({HOLDER}), note="the credential it is the subject of"
    ),
    ("POST", "/v1/credentials"): Row(
        ISSUERS,
        ok=202,
        request=_post(
            "/v1/credentials",
            lambda env, role: {"type": "BusinessLicence", "record": business_licence_record()},
        ),
        note="admin passes the route's role check but holds no issuer identity: 403 from issuance",
    ),
    ("POST", "/v1/credentials/bulk"): Row(ISSUERS, ok=202, request=_bulk),
    ("POST", "/v1/credentials/{credential_id}/suspend"): Row(
        frozenset({ADMIN, ISSUER}),
        request=_post("/v1/credentials/{credential_id}/suspend", {"reason": "courtOrder"}),
    ),
    ("POST", "/v1/credentials/{credential_id}/reinstate"): Row(
        frozenset({ADMIN, ISSUER}), request=_post("/v1/credentials/{credential_id}/reinstate")
    ),
    ("POST", "/v1/credentials/{credential_id}/revoke"): Row(
        frozenset({ADMIN, ISSUER}),
        request=_post("/v1/credentials/{credential_id}/revoke", {"reason": "superseded"}),
    ),
    ("POST", "/v1/batches/{batch_id}/suspend"): Row(
        frozenset({ADMIN, ISSUER}), request=_post("/v1/batches/{batch_id}/suspend", {"reason": 8})
    ),
    ("POST", "/v1/batches/{batch_id}/reinstate"): Row(
        frozenset({ADMIN, ISSUER}), request=_post("/v1/batches/{batch_id}/reinstate")
    ),
    ("POST", "/v1/batches/{batch_id}/revoke"): Row(
        frozenset({ADMIN, ISSUER}), request=_post("/v1/batches/{batch_id}/revoke")
    ),
    ("POST", "/v1/organisations/{org_id}/api-keys"): Row(
        frozenset({ADMIN}), ok=201, request=_post("/v1/organisations/{org_id}/api-keys")
    ),
    ("DELETE", "/v1/api-keys/{key_id}"): Row(
        frozenset({ADMIN, ISSUER}), note="an admin any key, an org its own"
    ),
    ("POST", "/v1/organisations"): Row(
        frozenset({ADMIN}),
        ok=201,
        request=_post(
            "/v1/organisations",
            lambda env, role: {
                "name": f"新机构 {role}",
                "identifier": make_uscc(),
                "jurisdiction": "CN-GD",
                "roles": ["verifier"],
            },
        ),
    ),
    # data flows (tests/flows covers their rules in depth; here: who gets past the door)
    ("GET", "/v1/flows/trace"): Row(frozenset({ADMIN, REGULATOR})),
    ("GET", "/v1/flows/rules"): Row(PUBLIC, note="the rule tables in force: the regulation is public"),
    ("GET", "/v1/flows/{flow_id}"): Row(
        frozenset({ADMIN, REGULATOR, EXPORTER, IMPORTER}),
        note="its exporter, its importer, regulators, admins",
    ),
    ("POST", "/v1/flows"): Row(
        frozenset({EXPORTER}),
        ok=201,
        request=_post("/v1/flows", _declaration),
        codes={IMPORTER: "not_asset_holder"},
        note="the certificate's holder",
    ),
    ("POST", "/v1/flows/{flow_id}/decision"): Row(
        frozenset({REGULATOR}),
        request=_post(
            "/v1/flows/{flow_id}/decision", {"decision": "approved", "reason": "standard contract filed"}
        ),
    ),
    ("POST", "/v1/flows/{flow_id}/receipt"): Row(
        frozenset({IMPORTER}),
        denied_code="not_importer",
        request=_post(
            "/v1/flows/{flow_id}/receipt", lambda env, role: {"payloadDigest": env.extra["digest"]}
        ),
    ),
    # the regulator's trace pages (HTML; a bearer key or the sign-in cookie)
    ("GET", "/trace/static/trace.js"): Row(PUBLIC),
    ("POST", "/trace/signout"): page(
        PUBLIC,
        ok=303,
        request=lambda env, role, headers: ("/trace/signout", None, {"follow_redirects": False}),
    ),
    ("POST", "/trace/session"): page(frozenset({ADMIN, REGULATOR}), ok=303, request=_sign_in),
    ("GET", "/trace"): page(
        frozenset({ADMIN, REGULATOR}), unauth=200, note="not signed in: the sign-in form"
    ),
    ("GET", "/trace/export.{fmt}"): page(
        frozenset({ADMIN, REGULATOR}), request=lambda env, role, headers: ("/trace/export.csv", None, {})
    ),
    ("GET", "/trace/tx/{tx_hash}"): page(frozenset({ADMIN, REGULATOR})),
    # the public verify page (a bank clerk or a QR scan: no key)
    ("GET", "/verify"): Row(PUBLIC),
    ("GET", "/verify/static/{name}"): Row(
        PUBLIC, request=lambda env, role, headers: ("/verify/static/verify.css", None, {})
    ),
    ("GET", "/verify/credential/{credential_id}"): Row(PUBLIC),
    ("POST", "/verify/check"): Row(
        PUBLIC,
        request=lambda env, role, headers: (
            "/verify/check",
            None,
            {
                "files": {
                    "credential": (
                        "licence.json",
                        json.dumps(env.holder_copy, ensure_ascii=False).encode(),
                        "application/json",
                    )
                }
            },
        ),
    ),
}

BANK = make_uscc(prefix="914401")


def _open_request(env):
    """A fresh presentation request on the service (a request takes one answer)."""
    return env.extra["exchange"].open(BANK, "credit-assessment", 300, [])


def _holder_prepare(env, role, headers):
    from verifier import HolderKey, PresentationRequest

    request = PresentationRequest.new(BANK, "credit-assessment")
    body = {
        "credentials": [env.holder_copy],
        "redact": [[]],
        "request": request.to_json(),
        "holder": HolderKey.generate().holder_id,
    }
    return "/holder/prepare", body, {}


def _answer(env, role, headers):
    from verifier import HolderKey, present

    request = _open_request(env)
    presentation = present(request, [env.holder_copy], HolderKey.generate())
    return f"/verify/requests/{request.nonce}/presentation", presentation, {}


PRESENTATION_ROWS = {
    # the holder page and the verify page's presentation exchange (FORMAT.md §13.3): public, like /verify
    ("GET", "/holder"): Row(PUBLIC),
    ("GET", "/holder/static/{name}"): Row(
        PUBLIC, request=lambda env, role, headers: ("/holder/static/holder.js", None, {})
    ),
    ("POST", "/holder/prepare"): Row(PUBLIC, request=_holder_prepare, note="the key never comes here"),
    ("POST", "/verify/requests"): Row(
        PUBLIC, ok=201, request=_post("/verify/requests", {"audience": BANK, "purpose": "credit-assessment"})
    ),
    ("GET", "/verify/requests/{nonce}"): Row(
        PUBLIC, request=lambda env, role, headers: (f"/verify/requests/{_open_request(env).nonce}", None, {})
    ),
    ("GET", "/verify/requests/{nonce}/result"): Row(
        PUBLIC,
        request=lambda env, role, headers: (f"/verify/requests/{_open_request(env).nonce}/result", None, {}),
    ),
    ("POST", "/verify/requests/{nonce}/presentation"): Row(PUBLIC, request=_answer),
}
MATRIX.update(PRESENTATION_ROWS)

ROUTE_PATH_EXAMPLES = {"fmt": ("png", "svg")}


@dataclass
class Env:
    """Ids the matrix's paths refer to; mutations get one target per allowed role."""

    keys: dict[str, str]
    orgs: dict[str, dict]
    creds: dict[str, str]  # role -> credential id (admin: its own target; others: the issuer's)
    batches: dict[str, int]
    spare_keys: dict[str, str]  # role -> key id to delete
    holder_copy: dict
    extra: dict = field(default_factory=dict)

    def params(self, role: str) -> dict:
        target = ADMIN if role == ADMIN else ISSUER
        return {
            "org_id": self.orgs[ISSUER]["id"],
            "credential_id": self.creds[target],
            "batch_id": self.batches[target],
            "key_id": self.spare_keys[target],
            "fmt": "png",
            "flow_id": self.extra["flow_id"],
            "tx_hash": self.extra["flow_tx"],
        }


def key_id(api_key: str) -> str:
    return api_key.split("_", 2)[1]


def error_problem(r, status: int, code: str) -> str | None:
    """None if `r` is `status` with the error shape and `code`; else what is wrong."""
    if r.status_code != status:
        return f"status {r.status_code} (expected {status}): {r.text[:200]}"
    try:
        body = r.json()
    except ValueError:
        return f"not JSON: {r.text[:200]}"
    if not (
        isinstance(body, dict)
        and set(body) == {"error"}
        and isinstance(body["error"], dict)
        and set(body["error"]) == {"code", "message", "details"}
    ):
        return f"not the error shape: {body!r:.200}"
    if body["error"]["code"] != code:
        return f"error code {body['error']['code']!r} (expected {code!r})"
    if not isinstance(body["error"]["message"], str) or not body["error"]["message"]:
        return "empty error message"
    return None


async def _setup(service) -> Env:
    c, h = service.client, service.h
    keys = {ADMIN: service.admin_key}
    orgs = {}
    r = await c.get("/v1/organisations", headers=h(service.admin_key))
    orgs[ADMIN] = r.json()["items"][0]
    for role, roles, types in (
        (ISSUER, ["issuer"], ["BusinessLicence"]),
        (OTHER, ["issuer"], ["BusinessLicence", "DataAssetCertificate"]),
        (VERIFIER, ["verifier"], []),
        (REGULATOR, ["regulator"], []),
        (EXPORTER, ["exporter"], []),
    ):
        orgs[role], keys[role] = await service.create_org(
            name=f"机构 {role}", identifier=make_uscc(), roles=roles, types=types
        )
    orgs[IMPORTER], keys[IMPORTER] = await service.create_org(
        name="Example Trade Finance (HK) Ltd",
        identifier=f"HK-BR-{uuid.uuid4().int % 10**8:08d}",
        roles=["exporter"],
        jurisdiction="HK",
    )
    # two batches of the issuer: batch 1 holds two credentials, batch 2 one
    creds, batches = {}, {}
    ids = []
    for n in (2, 1):
        r = await c.post(
            "/v1/credentials/bulk?type=BusinessLicence&atomic=true",
            headers=h(keys[ISSUER]),
            json=[business_licence_record() for _ in range(n)],
        )
        assert r.status_code == 202, r.text
        ids.append(r.json()["ids"])
        await service.drain()
    creds[ADMIN], creds[ISSUER] = ids[0]
    for role, cid in ((ADMIN, ids[0][0]), (ISSUER, ids[1][0])):
        r = await c.get(f"/v1/credentials/{cid}", headers=h(keys[ISSUER]))
        assert r.status_code == 200 and r.json()["state"] == "anchored", r.text
        batches[role] = r.json()["batchId"]
    assert batches[ADMIN] != batches[ISSUER]
    issued = (await c.get(f"/v1/credentials/{creds[ISSUER]}", headers=h(keys[ISSUER]))).json()
    holder = issued["credential"]
    orgs[HOLDER], keys[HOLDER] = await service.create_org(
        name="广州市穗云数据科技有限公司", identifier=issued["subject"], roles=["holder"]
    )
    spare = {}
    for role in (ADMIN, ISSUER):
        r = await c.post(f"/v1/organisations/{orgs[ISSUER]['id']}/api-keys", headers=h(service.admin_key))
        assert r.status_code == 201, r.text
        spare[role] = key_id(r.json()["apiKey"])
    env = Env(keys=keys, orgs=orgs, creds=creds, batches=batches, spare_keys=spare, holder_copy=holder)
    env.extra["exchange"] = service.ctx.exchange  # the pages' presentation requests (opened per call)
    # a data asset certificate held by the exporter, and one declared flow of it (pending)
    from tests.support.flows import DIGEST, certificate_record, declaration

    r = await c.post(
        "/v1/credentials",
        headers=h(keys[OTHER]),
        json={"type": "DataAssetCertificate", "record": certificate_record(orgs[EXPORTER]["identifier"])},
    )
    assert r.status_code == 202, r.text
    env.extra["certificate"] = r.json()["id"]
    env.extra["digest"] = DIGEST
    await service.drain()
    r = await c.post(
        "/v1/flows",
        headers=h(keys[EXPORTER]),
        json=declaration(env.extra["certificate"], importer=orgs[IMPORTER], to="HK"),
    )
    assert r.status_code == 201, r.text
    env.extra["flow_id"], env.extra["flow_tx"] = r.json()["flowId"], r.json()["txHash"]
    # a key that was revoked (by its own organisation)
    r = await c.post(f"/v1/organisations/{orgs[VERIFIER]['id']}/api-keys", headers=h(service.admin_key))
    revoked = r.json()["apiKey"]
    r = await c.delete(f"/v1/api-keys/{key_id(revoked)}", headers=h(revoked))
    assert r.status_code == 200, r.text
    env.extra["revoked"] = revoked
    return env


def bad_credentials(env: Env) -> dict[str, dict]:
    """Ways of not being authenticated -> request headers."""
    good = env.keys[VERIFIER]
    kid = key_id(good)
    return {
        "no key": {},
        "malformed key": {"Authorization": "Bearer not-an-api-key"},
        "malformed key (cl_ with no secret)": {"Authorization": f"Bearer cl_{kid}_"},
        "malformed key (X-API-Key)": {"X-API-Key": "cl_"},
        "empty bearer": {"Authorization": "Bearer "},
        "basic auth scheme": {"Authorization": f"Basic {good}"},
        "unknown key id": {"Authorization": f"Bearer cl_{'0' * 16}_{good.split('_', 2)[2]}"},
        "wrong secret": {"Authorization": f"Bearer cl_{kid}_{'A' * 43}"},
        "wrong secret (X-API-Key)": {"X-API-Key": f"cl_{kid}_{'A' * 43}"},
        "revoked key": {"Authorization": f"Bearer {env.extra['revoked']}"},
        "revoked key (X-API-Key)": {"X-API-Key": env.extra["revoked"]},
    }


async def _call(service, method: str, route: str, row: Row, env: Env, role: str, headers: dict):
    build = row.request or _path(route)
    path, body, kw = build(env, role, headers)
    kw = dict(kw)
    override = kw.pop("headers", {})
    hdrs = {**headers, **override} if row.request is _sign_in else {**override, **headers}
    hdrs = {k: v for k, v in hdrs.items() if v}
    service.client.cookies.clear()  # the trace sign-in sets a cookie: every call stands on its own
    if body is not None:
        kw["json"] = body
    return path, await service.client.request(method, path, headers=hdrs, **kw)


def test_matrix_covers_every_route():
    """No app needed beyond construction: a new endpoint without a matrix row fails here."""
    from registry.api.app import create_app

    served = app_routes(create_app())
    missing = sorted(served - set(MATRIX))
    stale = sorted(set(MATRIX) - served)
    assert not missing, f"endpoints without a row in the authorisation matrix: {missing}"
    assert not stale, f"matrix rows for endpoints the app does not serve: {stale}"


async def test_authorisation_matrix(service):
    env = await _setup(service)
    # ~40 calls per public row, seven of them rate-limited per client: the matrix checks who may
    # call, not how often (the limit has its own test in tests/pages/test_verify_page.py)
    from registry.api.ratelimit import PublicRateLimit

    service.app.state.public_limit = PublicRateLimit("off")
    served = app_routes(service.app)
    assert served == set(MATRIX), (sorted(served - set(MATRIX)), sorted(set(MATRIX) - served))
    failures: list[str] = []
    calls = 0
    for (method, route), row in MATRIX.items():
        # 1. not authenticated
        for what, headers in bad_credentials(env).items():
            path, r = await _call(service, method, route, row, env, VERIFIER, headers)
            calls += 1
            if row.allowed is PUBLIC or row.page:
                want = row.ok if row.allowed is PUBLIC else row.unauth_status
                if r.status_code != want:
                    failures.append(
                        f"{method} {route} [{what}]: expected {want}, got {r.status_code}: {r.text[:150]}"
                    )
                continue
            problem = error_problem(r, 401, "unauthenticated")
            if problem:
                failures.append(f"{method} {route} [{what}]: {problem}")
        # 2. every role: refused ones first (no side effect), then the allowed ones
        order = sorted(ROLES, key=lambda role: row.allowed is not PUBLIC and role in row.allowed)
        for role in order:
            path, r = await _call(service, method, route, row, env, role, service.h(env.keys[role]))
            calls += 1
            allowed = row.allowed is PUBLIC or role in row.allowed
            if allowed:
                if r.status_code != row.ok:
                    failures.append(
                        f"{method} {route} as {role}: expected {row.ok}, got {r.status_code}: {r.text[:200]}"
                    )
            elif row.page:
                if r.status_code != row.denied_status:
                    failures.append(
                        f"{method} {route} as {role}: expected {row.denied_status}, got {r.status_code}"
                    )
            else:
                problem = error_problem(r, 403, row.codes.get(role, row.denied_code))
                if problem:
                    failures.append(f"{method} {route} as {role}: {problem}")
    assert not failures, f"{len(failures)} of {calls} authorisation checks failed:\n  " + "\n  ".join(
        failures
    )

    # the allowed status changes really happened, and only those
    c, h = service.client, service.h
    for role in (ADMIN, ISSUER):
        r = await c.get(f"/v1/credentials/{env.creds[role]}", headers=h(service.admin_key))
        assert r.json()["status"] == "revoked", r.text
        r = await c.get(f"/v1/batches/{env.batches[role]}", headers=h(service.admin_key))
        assert r.json()["status"] == "revoked", r.text


async def test_other_issuer_cannot_touch_a_credential(service):
    """The issuer-vs-issuer rule on every object endpoint, with the other issuer's own data present."""
    c, h = service.client, service.h
    _, key_a = await service.create_org(
        name="甲局", identifier=make_uscc(), roles=["issuer"], types=["BusinessLicence"]
    )
    _, key_b = await service.create_org(
        name="乙局", identifier=make_uscc(), roles=["issuer"], types=["BusinessLicence"]
    )
    ids = {}
    for name, key in (("a", key_a), ("b", key_b)):
        r = await c.post(
            "/v1/credentials",
            headers=h(key),
            json={"type": "BusinessLicence", "record": business_licence_record()},
        )
        assert r.status_code == 202, r.text
        ids[name] = r.json()["id"]
    await service.drain()
    batch_a = (await c.get(f"/v1/credentials/{ids['a']}", headers=h(key_a))).json()["batchId"]
    for method, path in (
        ("GET", f"/v1/credentials/{ids['a']}"),
        ("GET", f"/v1/credentials/{ids['a']}/qr.svg"),
        ("POST", f"/v1/credentials/{ids['a']}/revoke"),
        ("POST", f"/v1/credentials/{ids['a']}/suspend"),
        ("POST", f"/v1/credentials/{ids['a']}/reinstate"),
        ("GET", f"/v1/batches/{batch_a}"),
        ("POST", f"/v1/batches/{batch_a}/revoke"),
        ("POST", f"/v1/batches/{batch_a}/suspend"),
    ):
        r = await c.request(method, path, headers=h(key_b))
        assert error_problem(r, 403, "forbidden") is None, (method, path, r.status_code, r.text)
    # lists show each issuer only its own
    for key, mine, theirs in ((key_a, ids["a"], ids["b"]), (key_b, ids["b"], ids["a"])):
        listed = {i["id"] for i in (await c.get("/v1/credentials", headers=h(key))).json()["items"]}
        assert mine in listed and theirs not in listed
        batches = {b["id"] for b in (await c.get("/v1/batches", headers=h(key))).json()["items"]}
        assert (batch_a in batches) == (key is key_a)
    # and nothing changed
    r = await c.get(f"/v1/credentials/{ids['a']}", headers=h(key_a))
    assert r.json()["status"] == "valid"


async def test_a_holder_reads_its_own_credentials_and_never_anothers(service):
    c, h = service.client, service.h
    _, issuer_key = await service.create_org(
        name="签发机构", identifier=make_uscc(), roles=["issuer"], types=["BusinessLicence"]
    )
    records = [business_licence_record() for _ in range(3)]
    r = await c.post(
        "/v1/credentials/bulk?type=BusinessLicence&atomic=true", headers=h(issuer_key), json=records
    )
    ids = r.json()["ids"]
    await service.drain()
    _, mine = await service.create_org(
        name="持证企业",
        identifier=records[0]["credentialSubject"]["unifiedSocialCreditCode"],
        roles=["holder"],
    )
    listed = (await c.get("/v1/holder/credentials", headers=h(mine))).json()
    assert listed["total"] == 1 and [i["id"] for i in listed["items"]] == [ids[0]]
    own = (await c.get(f"/v1/holder/credentials/{ids[0]}", headers=h(mine))).json()
    assert own["state"] == "anchored" and own["credential"]["id"] == ids[0]
    assert own["credential"]["proof"]["merkleRoot"]
    for other in (ids[1], ids[2], "urn:uuid:00000000-0000-4000-8000-000000000000", "x" * 300):
        r = await c.get(f"/v1/holder/credentials/{other}", headers=h(mine))
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
    # the issuer's own read still works; the holder cannot use it
    r = await c.get(f"/v1/credentials/{ids[0]}", headers=h(mine))
    assert r.status_code == 403


async def test_api_key_lifecycle(service):
    """A new key works at once; a revoked one stops at once; an org cannot revoke another's key."""
    c, h = service.client, service.h
    org, key = await service.create_org(name="银行", identifier=make_uscc(), roles=["verifier"])
    _, other = await service.create_org(name="另一家银行", identifier=make_uscc(), roles=["verifier"])
    r = await c.post(f"/v1/organisations/{org['id']}/api-keys", headers=h(service.admin_key))
    second = r.json()["apiKey"]
    assert (await c.get("/v1/trust-bundle", headers={"X-API-Key": second})).status_code == 200
    r = await c.delete(f"/v1/api-keys/{key_id(second)}", headers=h(other))
    assert error_problem(r, 403, "forbidden") is None, r.text
    r = await c.delete(f"/v1/api-keys/{key_id(second)}", headers=h(key))
    assert r.status_code == 200, r.text
    r = await c.get("/v1/organisations", headers=h(second))
    assert error_problem(r, 401, "unauthenticated") is None, r.text
    assert "revoked" in r.json()["error"]["message"]
    assert (await c.get("/v1/organisations", headers=h(key))).status_code == 200  # the first key still works
    r = await c.delete(f"/v1/api-keys/{uuid.uuid4().hex[:16]}", headers=h(key))
    assert error_problem(r, 404, "not_found") is None, r.text
