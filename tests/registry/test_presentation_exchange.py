"""The presentation exchange behind the verify page's "request a presentation" and the holder page
(issue #19; registry/services/exchange.py): a bank opens a request, the holder's presentation —
signed with its own key outside the registry — is verified against it at once, and every refusal is
named: a replay to another request, another audience, an expired request, a second answer, a key
that is not the credential's, bad input. Real service, SQLite and PostgreSQL, real anvil."""

from __future__ import annotations

import pytest

from scripts.samples import make_uscc
from tests.support.pages import holder_bound_certificate
from verifier import HolderKey
from verifier._internal.suites import sign_digest_secp256k1

pytestmark = [pytest.mark.chain, pytest.mark.anyio]


@pytest.fixture()
async def bound(service):
    """A data asset certificate bound to a holder key, its holder copy, the key and the bank."""
    credential, key, bank = await holder_bound_certificate(service)
    return service, credential, key, bank


async def _open(s, bank, **over):
    body = {"audience": bank, "purpose": "credit-assessment", **over}
    r = await s.client.post("/verify/requests", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def _present(s, request, credential, key, redact=()):
    r = await s.client.post(
        "/holder/prepare",
        json={
            "credentials": [credential],
            "redact": [list(redact)],
            "request": request,
            "holder": key.holder_id,
        },
    )
    assert r.status_code == 200, r.text
    prepared = r.json()
    presentation = prepared["presentation"]
    presentation["proof"]["proofValue"] = "0x" + key.sign(bytes.fromhex(prepared["digest"][2:])).hex()
    return presentation


def _holder_check(answer):
    (credential,) = answer["result"]["credentials"]
    return next(c for c in credential["checks"] if c["name"] == "holder")


async def test_a_redacted_presentation_bound_to_the_request_is_verified(bound):
    s, credential, key, bank = bound
    opened = await _open(s, bank)
    assert opened["holderLink"].endswith("/holder?request=" + opened["request"]["nonce"])
    assert opened["qrSvg"]  # base64 SVG of the holder link
    nonce = opened["request"]["nonce"]
    assert (await s.client.get(f"/verify/requests/{nonce}")).json() == opened["request"]
    pending = (await s.client.get(f"/verify/requests/{nonce}/result")).json()
    assert pending["state"] == "pending" and pending["result"] is None

    presentation = await _present(
        s, opened["request"], credential, key, ["/credentialSubject/valuation/amount"]
    )
    shown = presentation["verifiableCredential"][0]
    assert "amount" not in shown["credentialSubject"]["valuation"]
    assert "/credentialSubject/valuation/amount" in shown["proof"]["redactedDigests"]
    r = await s.client.post(f"/verify/requests/{nonce}/presentation", json=presentation)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["result"]["valid"] is True, answer
    assert _holder_check(answer)["status"] == "passed"
    assert answer["resultLink"].endswith(f"/verify?presentation={nonce}") and answer["qrSvg"]
    done = (await s.client.get(f"/verify/requests/{nonce}/result")).json()
    assert done["state"] == "answered" and done["result"] == answer["result"]

    # one answer per request: the same presentation again is refused
    r = await s.client.post(f"/verify/requests/{nonce}/presentation", json=presentation)
    assert r.status_code == 409 and r.json()["error"]["code"] == "request_answered"

    # a replay to a second bank's request: answered, and refused for its nonce and audience
    other = await _open(s, make_uscc(prefix="914403"))
    r = await s.client.post(f"/verify/requests/{other['request']['nonce']}/presentation", json=presentation)
    assert r.status_code == 200 and r.json()["result"]["valid"] is False
    reason = _holder_check(r.json())["reason"]
    assert "another request" in reason or "nonce" in reason, reason


async def test_another_key_and_an_expired_request_are_refused(bound):
    s, credential, key, bank = bound
    opened = await _open(s, bank)
    thief = HolderKey.generate("secp256k1")
    # the registry will not even prepare it: the credential names another holder key
    r = await s.client.post(
        "/holder/prepare",
        json={
            "credentials": [credential],
            "redact": [],
            "request": opened["request"],
            "holder": thief.holder_id,
        },
    )
    assert r.status_code == 400 and "another holder key" in r.json()["error"]["message"]
    # signed by another key anyway: the holder check fails
    presentation = await _present(s, opened["request"], credential, key)
    digest = bytes(32)
    presentation["proof"]["proofValue"] = "0x" + sign_digest_secp256k1(digest, thief.private_key).hex()
    r = await s.client.post(f"/verify/requests/{opened['request']['nonce']}/presentation", json=presentation)
    assert r.status_code == 200 and r.json()["result"]["valid"] is False
    assert _holder_check(r.json())["status"] == "failed"

    # an expired request: 410, named
    clock = [0.0]
    from registry.services.exchange import PresentationExchange

    s.replace_context(exchange=PresentationExchange(clock=lambda: clock[0]))
    late = await _open(s, bank, ttlSeconds=60)
    clock[0] = 61.0
    for r in (
        await s.client.get(f"/verify/requests/{late['request']['nonce']}"),
        await s.client.get(f"/verify/requests/{late['request']['nonce']}/result"),
    ):
        assert r.status_code in (404, 410), r.text
    late2 = await _open(s, bank, ttlSeconds=60)
    clock[0] = 200.0
    r = await s.client.post(f"/verify/requests/{late2['request']['nonce']}/presentation", json=presentation)
    assert r.status_code == 410 and r.json()["error"]["code"] == "request_expired"


@pytest.mark.parametrize(
    "body, status, text",
    [
        ({"audience": "91440101MA5BANK000", "purpose": "x"}, 400, "credit code"),
        ({"audience": None, "purpose": "x"}, 400, "credit code"),
        ({"purpose": ""}, 400, "purpose"),
        ({"ttlSeconds": 5}, 400, "ttlSeconds"),
        ({"ttlSeconds": 7200}, 400, "ttlSeconds"),
        ({"ttlSeconds": "300"}, 400, "ttlSeconds"),
        ({"extra": 1}, 400, "unknown member"),
        # a string is not a list of types (it was once taken as a list of its characters)
        ({"credentialTypes": "DataAssetCertificate"}, 400, "credentialTypes"),
        ({"credentialTypes": [1]}, 400, "credentialTypes"),
    ],
)
async def test_bad_requests_are_refused_by_name(bound, body, status, text):
    s, _, _, bank = bound
    r = await s.client.post(
        "/verify/requests", json={"audience": bank, "purpose": "credit-assessment", **body}
    )
    assert r.status_code == status and text in r.json()["error"]["message"], r.text


async def test_bad_input_to_the_exchange_is_refused(bound):
    s, credential, key, bank = bound
    opened = await _open(s, bank)
    nonce = opened["request"]["nonce"]
    r = await s.client.post("/verify/requests", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = await s.client.post("/verify/requests", content=b"{}", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert (await s.client.get("/verify/requests/0x" + "ab" * 16)).status_code == 404
    assert (await s.client.get("/verify/requests/not-a-nonce/result")).status_code == 404
    r = await s.client.post(f"/verify/requests/{nonce}/presentation", json={"type": "nothing"})
    assert r.status_code == 400 and "VerifiablePresentation" in r.json()["error"]["message"]
    # the credit code binds the holder: it may not be redacted
    r = await s.client.post(
        "/holder/prepare",
        json={
            "credentials": [credential],
            "redact": [["/credentialSubject/unifiedSocialCreditCode"]],
            "request": opened["request"],
            "holder": key.holder_id,
        },
    )
    assert r.status_code == 400 and "unifiedSocialCreditCode" in r.json()["error"]["message"]
    for bad in (
        {"credentials": [], "redact": [], "request": opened["request"], "holder": key.holder_id},
        {"credentials": [credential], "redact": "x", "request": opened["request"], "holder": key.holder_id},
        {"credentials": [credential], "redact": [], "request": {"type": "x"}, "holder": key.holder_id},
        {"credentials": [credential], "redact": [], "request": opened["request"], "holder": "me"},
        {"credentials": ["x"], "redact": [], "request": opened["request"], "holder": key.holder_id},
        {
            "credentials": [{"id": 1}],
            "redact": [["/credentialSubject/x"]],
            "request": opened["request"],
            "holder": key.holder_id,
        },
        [1, 2],
    ):
        r = await s.client.post("/holder/prepare", json=bad)
        assert r.status_code == 400, (bad, r.text)
