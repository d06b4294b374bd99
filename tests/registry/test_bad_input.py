"""Bad input gets a 4xx in the one error shape {"error": {"code", "message", "details"}} — never a
500: schema violations, bad credit codes, duplicate ids, oversized and mistyped bodies, malformed
JSON / JSON Lines, Unicode edge cases, out-of-range numbers, unknown types, roles and ids, and
status changes that the state does not allow.

Every test here runs with a response hook that records any 5xx the service returns (`no_5xx`).
"""

from __future__ import annotations

import json
import random
import uuid

import pytest

from scripts.samples import business_licence_record, data_asset_record, make_uscc

pytestmark = [pytest.mark.chain, pytest.mark.anyio]

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
NDJSON = {"content-type": "application/x-ndjson"}
JSON_CT = {"content-type": "application/json"}


def assert_error(r, status: int, code: str | None = None) -> dict:
    """`r` is `status` with the error shape (and `code`); returns the error object."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:500]}"
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    return body["error"]


def dumps(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


@pytest.fixture()
async def svc(service):
    """The service, with every 5xx response recorded and failed on at teardown."""
    errors: list[str] = []

    async def hook(response):
        if response.status_code >= 500:
            await response.aread()
            errors.append(
                f"{response.request.method} {response.request.url.path}: {response.status_code} "
                f"{response.text[:300]}"
            )

    service.client.event_hooks["response"].append(hook)
    yield service
    assert not errors, "the service answered bad input with a server error:\n" + "\n".join(errors)


async def _issuer(service, types=("BusinessLicence",), name="广州市市场监督管理局"):
    org, key = await service.create_org(
        name=name, identifier=make_uscc(), roles=["issuer"], types=list(types)
    )
    return org, key


async def _total(service, key) -> int:
    r = await service.client.get("/v1/credentials", headers=service.h(key))
    assert r.status_code == 200, r.text
    return r.json()["total"]


async def _bulk(service, key, body, *, type_="BusinessLicence", atomic=False, headers=JSON_CT):
    content = body if isinstance(body, (bytes, str)) else dumps(body)
    return await service.client.post(
        f"/v1/credentials/bulk?type={type_}&atomic={str(atomic).lower()}",
        headers={**service.h(key), **headers},
        content=content,
    )


# -- schema violations -----------------------------------------------------------------------
def _bad_records() -> list:
    def without(field):
        rec = business_licence_record()
        del rec["credentialSubject"][field]
        return rec

    def subject(**over):
        return business_licence_record(**over)

    def top(**over):
        return {**business_licence_record(), **over}

    return [
        without("enterpriseName"),
        subject(registeredCapital="1000000"),  # an object expected
        subject(registeredCapital={"amount": "1e6", "currency": "CNY"}),  # not a decimal string
        subject(dateOfEstablishment="2018-02-30"),  # no such day
        subject(enterpriseName=""),  # minLength
        subject(businessScope="x" * 5000),  # maxLength
        subject(unexpected="field"),  # additionalProperties
        top(validFrom="yesterday"),
        top(validUntil=20440101),
        top(id="urn:uuid:not-a-uuid"),
        top(id="https://example.com/1"),
        top(id=["urn:uuid:0190a3c4-8a2b-7c3d-9e4f-0123456789ab"]),  # a list: was a 500 (unhashable)
        top(id={"urn": "uuid"}),
        top(id=7),
        top(extra=True),
        {"validFrom": "2024-01-01T00:00:00Z"},  # no credentialSubject
        {"credentialSubject": "a string"},
        "a string",
        None,
        [business_licence_record()],
        42,
    ]


async def test_schema_violations_per_record_with_index(svc):
    service = svc
    _, key = await _issuer(service)
    bad = _bad_records()
    rng = random.Random(7)
    records, bad_at = [], set()
    for b in bad:  # interleave: valid, bad, valid, bad, ...
        records.append(business_licence_record(make_uscc(rng)))
        bad_at.add(len(records))
        records.append(b)
    # atomic: nothing is issued, every bad record is named by index
    before = await _total(service, key)
    r = await _bulk(service, key, records, atomic=True)
    err = assert_error(r, 422, "validation_failed")
    assert {d["index"] for d in err["details"]} == bad_at, err["details"]
    assert all(d["errors"] and all(isinstance(e, str) and e for e in d["errors"]) for d in err["details"])
    assert await _total(service, key) == before
    # the same through the one-record endpoint
    for b in bad:
        r = await service.client.post(
            "/v1/credentials", headers=service.h(key), json={"type": "BusinessLicence", "record": b}
        )
        assert r.status_code in (400, 422), (b, r.status_code, r.text)
        assert_error(r, r.status_code, "validation_failed" if r.status_code == 422 else "bad_request")
    assert await _total(service, key) == before
    # not atomic: the valid ones are accepted, the bad ones reported by index
    r = await _bulk(service, key, records, atomic=False)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted"] == len(records) - len(bad) == len(body["ids"])
    assert {d["index"] for d in body["rejected"]} == bad_at
    assert await _total(service, key) == before + body["accepted"]
    # the same as JSON Lines (the workers decode each line): the same records refused
    r = await _bulk(service, key, b"\n".join(dumps(rec) for rec in records), atomic=False, headers=NDJSON)
    assert r.status_code == 202, r.text
    assert {d["index"] for d in r.json()["rejected"]} == bad_at and r.json()["accepted"] == body["accepted"]
    # the message names the problem
    msgs = {d["index"]: " ".join(d["errors"]) for d in body["rejected"]}
    assert "enterpriseName" in msgs[1], msgs[1]
    assert "JSON object" in msgs[2 * bad.index("a string") + 1]


async def test_every_single_character_mutation_of_a_credit_code_is_refused(svc):
    service = svc
    _, key = await _issuer(service)
    valid = make_uscc(random.Random(1))
    mutants = set()
    for i, ch in enumerate(valid):
        for other in USCC_ALPHABET + "IOSVZio a-":
            if other != ch:
                mutants.add(valid[:i] + other + valid[i + 1 :])
        mutants.add(valid[:i] + valid[i + 1 :])  # deletion
        mutants.add(valid[:i] + valid[i].lower() + valid[i + 1 :])  # lower case (a no-op for digits)
    mutants.add(valid + "0")
    mutants.discard(valid)
    mutants = sorted(mutants)
    assert len(mutants) > 18 * 30
    records = [business_licence_record(m) for m in mutants] + [business_licence_record(valid)]
    r = await _bulk(service, key, records)
    assert r.status_code == 202, r.text[:500]
    body = r.json()
    assert body["accepted"] == 1, f"{body['accepted'] - 1} mutated credit codes accepted"
    assert len(body["rejected"]) == len(mutants)
    assert all("unifiedSocialCreditCode" in " ".join(d["errors"]) for d in body["rejected"]), body[
        "rejected"
    ][:3]
    # an issuer organisation's own identifier is checked too (it is registered on-chain)
    for m in mutants[::97]:
        r = await service.client.post(
            "/v1/organisations",
            headers=service.h(service.admin_key),
            json={
                "name": "某局",
                "identifier": m,
                "jurisdiction": "CN-GD",
                "roles": ["issuer"],
                "credentialTypes": ["BusinessLicence"],
            },
        )
        assert_error(r, 400, "bad_request")


async def test_duplicate_ids_in_one_upload_and_against_existing(svc):
    service = svc
    _, key = await _issuer(service)
    a, b = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    recs = [
        {**business_licence_record(), "id": a},
        {**business_licence_record(), "id": b},
        {**business_licence_record(), "id": a},
    ]
    r = await _bulk(service, key, recs, atomic=True)
    err = assert_error(r, 422, "validation_failed")
    assert [d["index"] for d in err["details"]] == [2] and "duplicate" in err["details"][0]["errors"][0]
    r = await _bulk(service, key, recs, atomic=False)
    assert r.status_code == 202, r.text
    assert r.json()["ids"] == [a, b] and [d["index"] for d in r.json()["rejected"]] == [2]
    # against existing: one record, bulk (atomic or not), in a later upload
    r = await service.client.post(
        "/v1/credentials",
        headers=service.h(key),
        json={"type": "BusinessLicence", "record": {**business_licence_record(), "id": b}},
    )
    err = assert_error(r, 422, "validation_failed")
    assert "exists already" in json.dumps(err["details"], ensure_ascii=False)
    fresh = f"urn:uuid:{uuid.uuid4()}"
    recs = [{**business_licence_record(), "id": fresh}, {**business_licence_record(), "id": a}]
    assert_error(await _bulk(service, key, recs, atomic=True), 422, "validation_failed")
    r = await _bulk(service, key, recs, atomic=False)
    assert r.status_code == 202 and r.json()["ids"] == [fresh] and r.json()["rejected"][0]["index"] == 1, (
        r.text
    )
    # an upload of which every record is refused (ids taken; a record that is not an object) is
    # answered, not failed: nothing accepted, each refusal named (a re-sent upload after a crash)
    r = await _bulk(
        service,
        key,
        [
            {**business_licence_record(), "id": a},
            {**business_licence_record(), "id": b},
            ["not", "a", "record"],
        ],
        atomic=False,
    )
    assert r.status_code == 202, r.text
    assert (
        r.json()["accepted"] == 0
        and r.json()["ids"] == []
        and [d["index"] for d in r.json()["rejected"]] == [0, 1, 2]
    )
    # an id issued by *another* issuer is taken too
    _, key2 = await _issuer(service, name="深圳市市场监督管理局")
    r = await service.client.post(
        "/v1/credentials",
        headers=service.h(key2),
        json={"type": "BusinessLicence", "record": {**business_licence_record(), "id": a}},
    )
    assert_error(r, 422, "validation_failed")
    # the same id after anchoring
    await service.drain()
    r = await service.client.post(
        "/v1/credentials",
        headers=service.h(key),
        json={"type": "BusinessLicence", "record": {**business_licence_record(), "id": a}},
    )
    assert_error(r, 422, "validation_failed")
    assert await _total(service, key) == 3


# -- size, content type, JSON syntax ---------------------------------------------------------
async def test_oversized_upload_is_413(svc):
    service = svc
    _, key = await _issuer(service)
    limit = service.ctx.settings.max_upload_bytes
    assert limit == 64 * 1024 * 1024
    body = b"[" + b" " * (limit - 1) + b"]"  # limit + 1 bytes, content-length set by httpx
    r = await _bulk(service, key, body)
    err = assert_error(r, 413, "payload_too_large")
    assert err["details"]["limit"] == limit
    # a 100 MB one
    r = await _bulk(service, key, b"x" * (100 * 1000 * 1000))
    assert_error(r, 413, "payload_too_large")
    # the limit applies to any endpoint, and before authentication
    r = await service.client.post("/v1/verify", content=b"{" + b" " * limit + b"}", headers=JSON_CT)
    assert_error(r, 413, "payload_too_large")
    # exactly at the limit is not refused for size (it is whitespace: an empty array)
    r = await _bulk(service, key, b"[" + b" " * (limit - 2) + b"]")
    assert_error(r, 400, "bad_request")


async def test_oversized_upload_without_content_length_is_413(svc):
    """A chunked body (no content-length) is counted as it arrives."""
    service = svc
    _, key = await _issuer(service)
    limit = service.ctx.settings.max_upload_bytes
    chunk = b" " * (1024 * 1024)

    async def stream():
        yield b"["
        for _ in range(limit // len(chunk) + 1):
            yield chunk
        yield b"]"

    r = await service.client.post(
        "/v1/credentials/bulk?type=BusinessLicence", content=stream(), headers={**service.h(key), **JSON_CT}
    )
    assert "content-length" not in r.request.headers
    assert_error(r, 413, "payload_too_large")
    assert r.headers.get("x-request-id")  # the refusal is a response of this request like any other


async def test_content_types_and_malformed_json(svc):
    service = svc
    _, key = await _issuer(service)
    h = service.h(key)
    good = [business_licence_record()]
    for ctype in (
        "text/csv",
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "image/png",
    ):
        r = await _bulk(service, key, good, headers={"content-type": ctype})
        assert_error(r, 415, "unsupported_media_type")
    r = await service.client.post("/v1/credentials/bulk?type=BusinessLicence", headers=h, content=dumps(good))
    assert "content-type" not in r.request.headers
    assert_error(r, 415, "unsupported_media_type")
    # the JSON endpoints refuse a non-JSON body
    for path, body in (
        ("/v1/credentials", {"type": "BusinessLicence", "record": good[0]}),
        ("/v1/verify", {"credential": "{}"}),
    ):
        for ctype in ("text/plain", "application/xml", "application/x-www-form-urlencoded"):
            r = await service.client.post(path, headers={**h, "content-type": ctype}, content=dumps(body))
            assert r.status_code in (400, 415), (path, ctype, r.status_code, r.text)
            assert_error(r, r.status_code)
    # JSON charset parameter and case are fine
    r = await _bulk(service, key, good, headers={"content-type": "Application/JSON; charset=utf-8"})
    assert r.status_code == 202, r.text
    # malformed JSON
    for raw in (
        b"[",
        b"[{]",
        b'{"a": 1}',
        b"",
        b"null",
        b"[1,]",
        b"\xff\xfe[]",
        b"[NaN]",
        '["é"]'.encode("latin-1"),
    ):
        r = await _bulk(service, key, raw)
        assert_error(r, 400, "bad_request")
    for raw in (b"{", b'{"type": "BusinessLicence", "record": }', b"\xff"):
        r = await service.client.post("/v1/credentials", headers={**h, **JSON_CT}, content=raw)
        assert_error(r, 400, "bad_request")
    # JSON Lines: the line that is wrong is named
    lines = [dumps(business_licence_record()) for _ in range(5)]
    lines[3] = b'{"credentialSubject": {"enterpriseName": "x",}'
    r = await _bulk(service, key, b"\n".join(lines), headers=NDJSON)
    err = assert_error(r, 400, "bad_request")
    assert err["details"] == {"line": 4} and "line 4" in err["message"], err
    # blank lines don't count as records but do count as lines
    r = await _bulk(service, key, b"\n\n" + b"\n".join(lines), headers={"content-type": "application/jsonl"})
    err = assert_error(r, 400, "bad_request")
    assert err["details"] == {"line": 6}, err
    # CRLF line ends are fine; a JSON Lines record that is not an object is a per-record rejection
    body = b"\r\n".join([lines[0], b"[1, 2]", lines[1]]) + b"\r\n"
    r = await _bulk(service, key, body, headers=NDJSON)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 2 and r.json()["rejected"][0]["index"] == 1
    # not UTF-8: the line is named (the body is split as bytes; the workers decode each line)
    r = await _bulk(service, key, lines[0] + b"\n\xc3\x28\n", headers=NDJSON)
    err = assert_error(r, 400, "bad_request")
    assert err["details"] == {"line": 2} and "line 2" in err["message"], err
    assert "not UTF-8 (byte 1 of the line)" in err["message"], err


# -- Unicode ---------------------------------------------------------------------------------
VALID_UNICODE = {
    "rtl override": "示例\u202eLTD\u202c公司",
    "emoji": "🏭 示例工厂 👩‍🔬🇨🇳",
    "cjk extension b": "𠀀𠀁𪚥𠮷 有限公司",  # 4-byte UTF-8, outside the BMP
    "combining (not normalised)": "Cafe\u0301 e\u0301 é",
    "zero width": "a\u200bb\u200dc\ufeffd",
    "noncharacter": "x\ufffey\U0010ffff",
    "nul": "a\u0000b",
}
INVALID_UNICODE = {  # raw JSON text of a string literal
    "lone high surrogate": '"bad \\ud800 name"',
    "lone low surrogate": '"bad \\udc00 name"',
    "reversed pair": '"\\udc00\\ud800"',
    "high surrogate at end": '"name\\udbff"',
}


async def test_unicode_round_trips_byte_for_byte_or_is_refused(svc):
    service = svc
    _, key = await _issuer(service)
    h = service.h(key)
    ids = {}
    accepted_nul = None
    for what, text in VALID_UNICODE.items():
        rec = business_licence_record(name=text, address=text + " 地址", legalRepresentative=text[:20])
        r = await service.client.post(
            "/v1/credentials", headers=h, json={"type": "BusinessLicence", "record": rec}
        )
        if what == "nul":
            accepted_nul = r.status_code == 202
            if not accepted_nul:  # control characters may be refused, but cleanly
                assert r.status_code in (400, 422), r.text
                assert_error(r, r.status_code)
                continue
        assert r.status_code == 202, (what, r.text)
        ids[what] = (r.json()["id"], rec)
    # through JSON Lines with the characters escaped, as \\uXXXX (and surrogate pairs)
    rec = business_licence_record(name=VALID_UNICODE["cjk extension b"])
    line = json.dumps(rec, ensure_ascii=True).encode()
    assert b"\\ud840\\udc00" in line
    r = await _bulk(service, key, line, headers=NDJSON)
    assert r.status_code == 202, r.text
    ids["escaped surrogate pair"] = (r.json()["ids"][0], rec)
    await service.drain()
    for what, (cid, rec) in ids.items():
        r = await service.client.get(f"/v1/credentials/{cid}", headers=h)
        assert r.status_code == 200, r.text
        copy = r.json()["credential"]
        for field in ("enterpriseName", "address", "legalRepresentative"):
            sent, got = rec["credentialSubject"][field], copy["credentialSubject"][field]
            assert got.encode("utf-8") == sent.encode("utf-8"), (what, field, sent, got)
        v = await service.client.post("/v1/verify", headers=h, json={"credential": copy})
        assert v.status_code == 200 and v.json()["valid"], (what, v.json())
        # and as the holder's file: raw UTF-8 bytes
        v = await service.client.post(
            "/v1/verify", headers=h, json={"credential": json.dumps(copy, ensure_ascii=False)}
        )
        assert v.json()["valid"], (what, v.json())
    # invalid Unicode (lone surrogates via JSON escapes) is a clean 4xx on every JSON entry point
    for what, literal in INVALID_UNICODE.items():
        rec_text = dumps(business_licence_record()).decode().replace('"广州市示例科技有限公司"', literal, 1)
        assert literal in rec_text
        single = f'{{"type": "BusinessLicence", "record": {rec_text}}}'.encode()
        r = await service.client.post("/v1/credentials", headers={**h, **JSON_CT}, content=single)
        assert r.status_code in (400, 422), (what, r.status_code, r.text)
        assert_error(r, r.status_code)
        for body, headers in ((f"[{rec_text}]".encode(), JSON_CT), (rec_text.encode(), NDJSON)):
            r = await _bulk(service, key, body, headers=headers, atomic=True)
            assert r.status_code in (400, 422), (what, r.status_code, r.text)
            assert_error(r, r.status_code)
            r = await _bulk(service, key, body, headers=headers, atomic=False)
            assert r.status_code in (202, 400, 422), (what, r.status_code, r.text)
            if r.status_code == 202:
                assert r.json()["accepted"] == 0 and r.json()["rejected"][0]["index"] == 0, r.text
            else:
                assert_error(r, r.status_code)
        # an organisation's name, and a credential to verify
        r = await service.client.post(
            "/v1/organisations",
            headers={**service.h(service.admin_key), **JSON_CT},
            content=f'{{"name": {literal}, "identifier": "X{uuid.uuid4().hex[:8]}", '
            f'"jurisdiction": "HK", "roles": ["verifier"]}}'.encode(),
        )
        assert r.status_code in (400, 422), (what, r.status_code, r.text)
        assert_error(r, r.status_code)
        r = await service.client.post(
            "/v1/verify", headers={**h, **JSON_CT}, content=f'{{"credential": {{"id": {literal}}}}}'.encode()
        )
        assert r.status_code in (200, 400, 422), (what, r.status_code, r.text)
        if r.status_code == 200:
            assert not r.json()["valid"]
    # raw (not escaped) invalid UTF-8 — an encoded surrogate (CESU-8), an overlong form — is not JSON
    good = dumps([business_licence_record()])
    for raw in (b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80"):
        body = good.replace("广州市示例科技有限公司".encode(), raw, 1)
        assert body != good
        for headers in (JSON_CT, NDJSON):
            r = await _bulk(service, key, body if headers is JSON_CT else body[1:-1], headers=headers)
            assert_error(r, 400, "bad_request")
        r = await service.client.post(
            "/v1/credentials",
            headers={**h, **JSON_CT},
            content=b'{"type": "BusinessLicence", "record": ' + body[1:-1] + b"}",
        )
        assert r.status_code in (400, 422), r.text
        assert_error(r, r.status_code)


async def test_line_separators_inside_a_json_lines_record_keep_it_one_record(svc):
    """JSON strings may hold U+2028, U+2029 and U+0085 as they are; a JSON Lines body splits at LF
    only, so such a record is one record (it was two invalid lines with str.splitlines), and line
    numbers count LF-separated lines."""
    service = svc
    _, key = await _issuer(service)
    h = service.h(key)
    recs = [business_licence_record(name=f"示例{sep}科技有限公司") for sep in ("\u2028", "\u2029", "\u0085")]
    lines = [dumps(rec) for rec in recs]
    assert all(sep.encode() in line for sep, line in zip(("\u2028", "\u2029", "\u0085"), lines))
    r = await _bulk(service, key, b"\n".join(lines), headers=NDJSON)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 3 and r.json()["rejected"] == []
    ids = r.json()["ids"]
    # the line after them is still named by its number
    r = await _bulk(service, key, b"\n".join([*lines, b"{"]), headers=NDJSON)
    err = assert_error(r, 400, "bad_request")
    assert err["details"] == {"line": 4}, err
    await service.drain()
    for cid, rec in zip(ids, recs):
        r = await service.client.get(f"/v1/credentials/{cid}", headers=h)
        copy = r.json()["credential"]
        assert copy["credentialSubject"]["enterpriseName"] == rec["credentialSubject"]["enterpriseName"]
        v = await service.client.post("/v1/verify", headers=h, json={"credential": copy})
        assert v.json()["valid"], v.json()


async def test_a_large_json_lines_upload_is_prepared_from_its_text_as_an_array_is_from_records(
    svc, monkeypatch
):
    """An upload large enough for the worker processes: a JSON Lines body's workers get each
    record's text as the body's bytes (never decoded in the service), an array's get the records.
    Both refuse the same records (schema, shape, duplicate id, the first of the two kept) at the
    same indexes, and what they accept is the same and verifies."""
    from registry.services import issuance as issuance_module

    service = svc
    _, key = await _issuer(service)
    h = service.h(key)
    monkeypatch.setattr(issuance_module, "POOL_THRESHOLD", 50)
    monkeypatch.setattr(issuance_module, "CHUNK", 40)
    loop = issuance_module.asyncio.get_running_loop()
    real_run, given = loop.run_in_executor, []

    def run_in_executor(executor, fn, *args):  # what each chunk's worker is given: text or records
        if getattr(fn, "__module__", None) == "registry.services.prepare":  # (not to_thread's, web3's)
            given.append((fn.__name__, args[1], type(args[0][0]).__name__))
        return real_run(executor, fn, *args)

    monkeypatch.setattr(loop, "run_in_executor", run_in_executor)

    def upload(tag):
        fixed = f"urn:uuid:{uuid.uuid4()}"
        recs = [business_licence_record(name=f"示例科技有限公司{tag}{i}") for i in range(120)]
        recs[7]["credentialSubject"]["registeredCapital"] = "1000000"  # schema
        recs[50] = {"credentialSubject": "a string"}  # shape
        recs[60] = {**recs[60], "id": fixed}
        recs[99] = {**recs[99], "id": fixed}  # duplicate in the upload
        return recs

    results = {}
    for how, headers in (("lines", NDJSON), ("array", JSON_CT)):
        recs = upload(how)
        content = b"\n".join(dumps(rec) for rec in recs) if how == "lines" else dumps(recs)
        given.clear()
        r = await _bulk(service, key, content, headers=headers)
        assert r.status_code == 202, r.text
        results[how] = (r.json(), recs)
        text = how == "lines"
        assert set(given) == {("prepare_upload", text, "bytes" if text else "dict")}, (how, given)
        assert len(given) == 6  # 120 records: chunks of 40, the last 40 in pieces of 10 (chunk_spans)
    for how, (body, _recs) in results.items():
        assert body["accepted"] == 117, (how, body["rejected"])
        assert [d["index"] for d in body["rejected"]] == [7, 50, 99], how
    await service.drain()
    for how, (body, recs) in results.items():
        for k in (0, 60, 119):
            cid = body["ids"][k - (k > 7) - (k > 50) - (k > 99)]
            copy = (await service.client.get(f"/v1/credentials/{cid}", headers=h)).json()["credential"]
            # the record's subject, with the licence identifier and metadata the registry fills in
            given_subject = recs[k]["credentialSubject"]
            assert {f: copy["credentialSubject"][f] for f in given_subject} == given_subject, (how, k)
            assert copy["credentialSubject"]["licenceIdentifier"].startswith("1.2.156.3005.2."), (how, k)
            v = await service.client.post("/v1/verify", headers=h, json={"credential": copy})
            assert v.json()["valid"], (how, k, v.json())


# -- numbers ---------------------------------------------------------------------------------
async def test_huge_integers_and_floats_where_integers_belong(svc):
    service = svc
    _, key = await _issuer(service, types=["DataAssetCertificate"], name="广东省政务服务和数据管理局")
    h = service.h(key)
    bad_counts = [2**64, -1, 2**53, 10**400, 1.5, 17520.5, -0.0 - 1, "17520", True, None, 1e308]
    records = []
    for n in bad_counts:
        rec = data_asset_record()
        rec["credentialSubject"]["recordCount"] = n
        records.append(rec)
    raw = dumps(records)
    r = await _bulk(service, key, raw, type_="DataAssetCertificate", atomic=False)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 0, [
        (bad_counts[i], i)
        for i in range(len(bad_counts))
        if i not in {d["index"] for d in r.json()["rejected"]}
    ]
    # an integer written as a float (17520.0) is not an integer in the holder's copy either
    rec = data_asset_record()
    text = dumps(rec).decode().replace('"recordCount": 17520', '"recordCount": 17520.0')
    assert "17520.0" in text
    r = await service.client.post(
        "/v1/credentials",
        headers={**h, **JSON_CT},
        content=f'{{"type": "DataAssetCertificate", "record": {text}}}'.encode(),
    )
    if r.status_code == 202:  # accepted: then it must be an integer in the holder copy and verify
        cid = r.json()["id"]
        await service.drain()
        copy = (await service.client.get(f"/v1/credentials/{cid}", headers=h)).json()["credential"]
        v = await service.client.post("/v1/verify", headers=h, json={"credential": copy})
        assert v.json()["valid"], v.json()
    else:
        assert_error(r, r.status_code)
        assert r.status_code in (400, 422)
    # numbers in query, path and body parameters
    for path in (
        "/v1/credentials?limit=1001",
        "/v1/credentials?limit=0",
        f"/v1/credentials?limit={2**64}",
        "/v1/credentials?limit=1.5",
        f"/v1/credentials?offset={2**64}",
        "/v1/credentials?offset=-1",
        f"/v1/credentials?batch={2**64}",
        "/v1/credentials?batch=1.5",
        f"/v1/batches?offset={2**63}",
        f"/v1/batches/{2**64}",
        f"/v1/batches/{2**31}",
        "/v1/batches/1.5",
        "/v1/batches/-1",
        f"/v1/organisations/{2**64}",
        f"/v1/organisations/{2**63}",
        "/v1/organisations/1e3",
    ):
        r = await service.client.get(path, headers=service.h(service.admin_key))
        assert r.status_code in (400, 404), (path, r.status_code, r.text)
        assert_error(r, r.status_code)
    for path in (f"/v1/batches/{2**64}/revoke", f"/v1/organisations/{2**64}/api-keys"):
        r = await service.client.post(path, headers=service.h(service.admin_key))
        assert r.status_code in (400, 404), (path, r.status_code, r.text)
        assert_error(r, r.status_code)
    r = await service.client.post(
        "/v1/credentials", headers=h, json={"type": "DataAssetCertificate", "record": data_asset_record()}
    )
    assert r.status_code == 202, r.text
    cid = r.json()["id"]
    await service.drain()
    for reason in (2**64, 256, -1, 1.5, "noSuchReason", [1], {"a": 1}):
        r = await service.client.post(f"/v1/credentials/{cid}/revoke", headers=h, json={"reason": reason})
        assert_error(r, 400, "bad_request")
    r = await service.client.get(f"/v1/credentials/{cid}", headers=h)
    assert r.json()["status"] == "valid"


# -- unknown names, empty uploads, organisation fields ---------------------------------------
async def test_unknown_type_empty_upload_and_organisation_fields(svc):
    service = svc
    _, key = await _issuer(service)
    h = service.h(key)
    for t in ("NoSuchType", "businesslicence", "", "VerifiableCredential"):
        r = await _bulk(service, key, [business_licence_record()], type_=t)
        assert_error(r, 400, "bad_request")
        r = await service.client.post(
            "/v1/credentials", headers=h, json={"type": t, "record": business_licence_record()}
        )
        assert_error(r, 400, "bad_request")
    r = await service.client.post("/v1/credentials/bulk", headers={**h, **JSON_CT}, content=b"[]")  # no type
    assert_error(r, 400, "bad_request")
    r = await service.client.get("/v1/credentials?type=NoSuchType", headers=h)
    assert_error(r, 400, "bad_request")
    r = await service.client.get("/v1/credentials?status=lost", headers=h)
    assert_error(r, 400, "bad_request")
    # a type the issuer is not registered for
    r = await service.client.post(
        "/v1/credentials", headers=h, json={"type": "DataAssetCertificate", "record": data_asset_record()}
    )
    assert_error(r, 403, "forbidden")
    # empty uploads
    for body, headers in ((b"[]", JSON_CT), (b"", NDJSON), (b"\n\n  \n", NDJSON)):
        r = await _bulk(service, key, body, headers=headers)
        assert_error(r, 400, "bad_request")
    r = await service.client.post("/v1/credentials", headers=h, json={"type": "BusinessLicence"})
    assert_error(r, 400, "bad_request")
    r = await service.client.post("/v1/credentials", headers=h, json={})
    assert_error(r, 400, "bad_request")
    # organisations: unknown roles, jurisdiction, suite, types; missing fields; duplicates
    admin = service.h(service.admin_key)
    base = {"name": "某银行", "identifier": make_uscc(), "jurisdiction": "CN-GD", "roles": ["verifier"]}
    for over in (
        {"roles": ["superuser"]},
        {"roles": []},
        {"roles": "issuer"},
        {"roles": ["verifier", "root"]},
        {"jurisdiction": "Narnia"},
        {"jurisdiction": "cn-gd"},
        {"jurisdiction": ""},
        {"jurisdiction": "CN-GD-EXTRA1"},
        {"suite": "rsa"},
        {"credentialTypes": ["Passport"]},
        {"name": ""},
        {"name": "x" * 201},
        {"identifier": ""},
        {"identifier": "9" * 65},
        {"roles": ["issuer"]},  # an issuer without credential types
        {"roles": ["issuer"], "credentialTypes": ["BusinessLicence"], "identifier": "NOT-A-USCC"},
    ):
        r = await service.client.post("/v1/organisations", headers=admin, json={**base, **over})
        assert_error(r, 400, "bad_request")
    for missing in ("name", "identifier", "jurisdiction", "roles"):
        r = await service.client.post(
            "/v1/organisations", headers=admin, json={k: v for k, v in base.items() if k != missing}
        )
        err = assert_error(r, 400, "bad_request")
        assert any(missing in d["loc"] for d in err["details"]), err
    r = await service.client.post("/v1/organisations", headers=admin, json=base)
    assert r.status_code == 201, r.text
    r = await service.client.post("/v1/organisations", headers=admin, json={**base, "name": "同一代码"})
    assert_error(r, 409, "conflict")
    # no organisation was half-created by the refusals above
    names = [
        o["name"] for o in (await service.client.get("/v1/organisations", headers=admin)).json()["items"]
    ]
    assert names.count("某银行") == 1 and "同一代码" not in names


# -- state conflicts and unknown ids ---------------------------------------------------------
async def test_state_conflicts_and_unknown_ids(svc):
    service = svc
    _, key = await _issuer(service)
    h = service.h(key)
    r = await service.client.post(
        "/v1/credentials", headers=h, json={"type": "BusinessLicence", "record": business_licence_record()}
    )
    pending = r.json()["id"]
    # not anchored yet: no status change, no holder copy, no batch change
    for action in ("revoke", "suspend", "reinstate"):
        r = await service.client.post(f"/v1/credentials/{pending}/{action}", headers=h)
        assert_error(r, 409, "conflict")
    r = await service.client.get(f"/v1/credentials/{pending}", headers=h)
    assert r.status_code == 200 and r.json()["credential"] is None and r.json()["state"] == "accepted"
    await service.drain()
    cid = pending
    batch = (await service.client.get(f"/v1/credentials/{cid}", headers=h)).json()["batchId"]
    # reinstating a credential that is not suspended: the chain refuses it
    r = await service.client.post(f"/v1/credentials/{cid}/reinstate", headers=h)
    err = assert_error(r, 409, "chain_rejected")
    assert err["details"]["error"] == "NotSuspended", err
    r = await service.client.post(f"/v1/batches/{batch}/reinstate", headers=h)
    err = assert_error(r, 409, "chain_rejected")
    assert err["details"]["error"] == "NotSuspended", err
    # twice the same change
    assert (await service.client.post(f"/v1/credentials/{cid}/suspend", headers=h)).status_code == 200
    err = assert_error(
        await service.client.post(f"/v1/credentials/{cid}/suspend", headers=h), 409, "chain_rejected"
    )
    assert err["details"]["error"] == "AlreadySuspended", err
    assert (await service.client.post(f"/v1/credentials/{cid}/revoke", headers=h)).status_code == 200
    err = assert_error(
        await service.client.post(f"/v1/credentials/{cid}/revoke", headers=h), 409, "chain_rejected"
    )
    assert err["details"]["error"] == "AlreadyRevoked", err
    # a status change with a body that is not an object
    r = await service.client.post(f"/v1/batches/{batch}/suspend", headers={**h, **JSON_CT}, content=b"[1]")
    assert_error(r, 400, "bad_request")
    # unknown ids
    admin = service.h(service.admin_key)
    nope = f"urn:uuid:{uuid.uuid4()}"
    for method, path in (
        ("GET", f"/v1/credentials/{nope}"),
        ("GET", f"/v1/credentials/{nope}/qr.png"),
        ("GET", f"/v1/credentials/{nope}/qr.svg"),
        ("POST", f"/v1/credentials/{nope}/revoke"),
        ("POST", f"/v1/credentials/{nope}/suspend"),
        ("POST", f"/v1/credentials/{nope}/reinstate"),
        ("GET", "/v1/credentials/" + "x" * 5000),
        ("GET", "/v1/batches/999999"),
        ("POST", "/v1/batches/999999/revoke"),
        ("GET", "/v1/organisations/999999"),
        ("POST", "/v1/organisations/999999/api-keys"),
        ("DELETE", "/v1/api-keys/ffffffffffffffff"),
        ("GET", "/v1/no-such-thing"),
        ("GET", "/v1/credentials/x/y/z"),
    ):
        r = await service.client.request(method, path, headers=admin)
        assert_error(r, 404, "not_found")
    # NUL in a URL (PostgreSQL text cannot hold it)
    for method, path in (
        ("GET", "/v1/credentials/%00"),
        ("POST", "/v1/credentials/urn%00x/revoke"),
        ("DELETE", "/v1/api-keys/%00"),
        ("GET", "/v1/credentials?subject=%00"),
        ("GET", "/v1/batches?state=sealed%00"),
    ):
        r = await service.client.request(method, path, headers=admin)
        assert_error(r, 400, "bad_request")
    r = await service.client.get(f"/v1/credentials/{cid}/qr.gif", headers=admin)
    assert_error(r, 400, "bad_request")
    r = await service.client.put(f"/v1/credentials/{cid}", headers=admin)
    assert_error(r, 405, "method_not_allowed")
    # verify: things that are not credentials are a result (valid: false) or a 400, never an error
    for body in (
        {"credential": "not json"},
        {"credential": {}},
        {"credential": "[]"},
        {"credential": '{"a":'},
        {"credential": {"proof": {"type": "x"}}},
        {"credential": {"id": 10**30, "n": [2**64]}},
    ):
        r = await service.client.post("/v1/verify", headers=h, json=body)
        assert r.status_code == 200 and r.json()["valid"] is False, (body, r.text)
        assert r.json()["checks"][0] == {**r.json()["checks"][0], "name": "format", "status": "failed"}
    # a lone surrogate anywhere in the request (JSON can spell one, UTF-8 cannot) is a 400 naming it
    for body in (
        b'{"credential": {"id": "x\\ud800"}}',
        b'{"credential": {"credentialSubject": {"a": ["\\udc00"]}}}',
        b'{"credential": {}, "purpose": "\\udbff"}',
    ):
        r = await service.client.post("/v1/verify", headers={**h, **JSON_CT}, content=body)
        assert_error(r, 400, "bad_request")
        assert "Unicode" in r.json()["error"]["message"], r.text
    copy = (await service.client.get(f"/v1/credentials/{cid}", headers=h)).json()["credential"]
    for extra in (
        {"at": "not a time"},
        {"at": "2026-13-01T00:00:00Z"},
        {"data": "!!!not base64"},
        {"credential": 42},
        {"relyingParty": ["x"]},
    ):
        r = await service.client.post("/v1/verify", headers=h, json={"credential": copy, **extra})
        assert r.status_code in (400, 422), (extra, r.status_code, r.text)
        assert_error(r, r.status_code)


async def test_a_line_that_is_not_json_refuses_a_pooled_upload_naming_it(svc, monkeypatch):
    """In an upload large enough for the worker processes, which decode the lines, a line that is
    not JSON (in the last chunk, after blank lines) still refuses the whole upload, naming the first
    such line of the file; nothing is issued."""
    from registry.services import issuance as issuance_module

    service = svc
    _, key = await _issuer(service)
    monkeypatch.setattr(issuance_module, "POOL_THRESHOLD", 50)
    monkeypatch.setattr(issuance_module, "CHUNK", 40)
    before = await _total(service, key)
    lines = [dumps(business_licence_record()) for _ in range(120)]
    lines[100] = b'{"credentialSubject": NaN}'
    lines[110] = b"{"
    body = b"\n\n" + b"\n".join(lines)  # the record at index 100 is on line 103
    r = await _bulk(service, key, body, headers=NDJSON)
    err = assert_error(r, 400, "bad_request")
    assert err["details"] == {"line": 103} and "line 103" in err["message"] and "NaN" in err["message"], err
    for atomic in (True, False):
        r = await _bulk(service, key, b"\n".join(lines[:110] + [b"[1,]"]), headers=NDJSON, atomic=atomic)
        assert assert_error(r, 400, "bad_request")["details"] == {"line": 101}
    assert await _total(service, key) == before
    # and the upload goes through once the lines are fixed
    lines[100] = lines[110] = dumps(business_licence_record())
    r = await _bulk(service, key, b"\n".join(lines), headers=NDJSON)
    assert r.status_code == 202 and r.json()["accepted"] == 120, r.text


async def test_json_nested_deeper_than_the_decoder_goes_is_a_400_on_every_entry_point(svc, monkeypatch):
    """Arrays nested 100,000 deep: a 400 with the error shape on every JSON entry point, decoded in
    the service or in a worker process. (py_ecc, imported with eth_account, had raised the
    recursion limit to 100,000: decoding this overflowed the C stack and the process died of
    SIGSEGV; the service now puts the limit back when it starts.)"""
    from registry.services import issuance as issuance_module

    service = svc
    _, key = await _issuer(service)
    h = service.h(key)
    deep = "[" * 100_000 + "]" * 100_000
    good = dumps(business_licence_record()).decode()
    bodies = [
        ("/v1/credentials/bulk?type=BusinessLicence", NDJSON, f"{good}\n{deep}"),
        ("/v1/credentials/bulk?type=BusinessLicence", JSON_CT, f"[{good}, {deep}]"),
        ("/v1/credentials", JSON_CT, f'{{"type": "BusinessLicence", "record": {deep}}}'),
        ("/v1/verify", JSON_CT, f'{{"credential": {deep}}}'),
        ("/v1/organisations", JSON_CT, deep),
    ]
    for path, headers, body in bodies:
        r = await service.client.post(path, headers={**h, **headers}, content=body.encode())
        err = assert_error(r, 400, "bad_request")
        assert "nested too deeply" in err["message"] or "pars" in err["message"], (path, err)
    # a credential file given as a string is checked by the verifier: not valid, said so
    r = await service.client.post("/v1/verify", headers=h, json={"credential": deep})
    assert r.status_code == 200 and not r.json()["valid"] and "nested too deeply" in r.text, r.text
    # in a worker process: the line is named
    monkeypatch.setattr(issuance_module, "POOL_THRESHOLD", 50)
    lines = [good] * 60 + [deep]
    err = assert_error(
        await _bulk(service, key, "\n".join(lines).encode(), headers=NDJSON), 400, "bad_request"
    )
    assert err["details"] == {"line": 61} and "nested too deeply" in err["message"], err
    # and the service still answers
    r = await _bulk(service, key, good.encode(), headers=NDJSON)
    assert r.status_code == 202 and r.json()["accepted"] == 1, r.text
