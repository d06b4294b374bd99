"""The public verify page (`/verify`): in headless Chromium — a valid data asset certificate, with
the right dataset and with one a byte different, a tampered one, a redacted one (dropped by
drag-and-drop), a revoked one, the usage check; an e-licence's QR link; a certificate's QR link
(no subject data); an unknown id. Every result is asserted on the page; screenshots go to
test-artifacts/verify-page/. And, without a browser, the public endpoints' answers to bad input."""

from __future__ import annotations

import copy
import json
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.pages import ARTIFACTS, DATASET, DIGEST, one_byte_off
from tests.support.services import CHROMIUM, require_service

pytestmark = [pytest.mark.chain, pytest.mark.anyio, pytest.mark.sqlite_only]

PASSING = ("format", "integrity", "issuer", "anchor", "status", "validity")


# -- browser helpers ---------------------------------------------------------------------------
class Page:
    """A Playwright page on the served registry, recording every request and any script error."""

    def __init__(self, page, base: str):
        self.page, self.base = page, base
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda req: self.requests.append(req.url))
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    async def goto(self, path: str = "/verify"):
        await self.page.goto(self.base + path)

    async def runs(self) -> int:
        values = await self.page.eval_on_selector_all(
            "#result, #error", "els => els.map(e => e.dataset.run || '0')"
        )
        return max(int(v) for v in values)

    async def wait_run(self, before: int):
        await self.page.wait_for_function(
            "n => [...document.querySelectorAll('#result, #error')].some(e => Number(e.dataset.run || 0) > n)",
            arg=before,
            timeout=20_000,
        )

    async def choose(self, kind: str, name: str, data: bytes, mime: str = "application/json"):
        """Pick a file in the credential or dataset input and wait for the verification it starts."""
        before = await self.runs()
        await self.page.set_input_files(
            f"#{kind}-file", files=[{"name": name, "mimeType": mime, "buffer": data}]
        )
        await self.wait_run(before)

    async def drop(self, kind: str, name: str, data: bytes):
        """Drag-and-drop a file onto a drop zone (a real DataTransfer with a File in it)."""
        before = await self.runs()
        dt = await self.page.evaluate_handle(
            """([name, text]) => { const dt = new DataTransfer();
                 dt.items.add(new File([text], name, {type: 'application/json'})); return dt; }""",
            [name, data.decode("utf-8")],
        )
        await self.page.dispatch_event(f"#drop-{kind}", "drop", {"dataTransfer": dt})
        await self.wait_run(before)

    async def verdict(self) -> str:
        assert await self.page.is_visible("#result"), await self.error()
        return " ".join((await self.page.text_content("#verdict")).split())

    async def error(self) -> str:
        if not await self.page.is_visible("#error"):
            return ""
        return " ".join((await self.page.text_content("#error")).split())

    async def check(self, name: str) -> tuple[str, str]:
        row = self.page.locator(f"#checks tr.check[data-check='{name}']")
        return await row.get_attribute("data-status"), (await row.locator(".reason").text_content()).strip()

    async def statuses(self) -> dict[str, str]:
        return dict(
            await self.page.eval_on_selector_all(
                "#checks tr.check", "rows => rows.map(r => [r.dataset.check, r.dataset.status])"
            )
        )

    async def text(self, selector: str) -> str:
        return " ".join((await self.page.text_content(selector)).split())

    async def shot(self, name: str):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def assert_clean(self, *, expected: tuple[str, ...] = ()):
        errors = [e for e in self.errors if not any(x in e for x in expected)]
        assert not errors, errors
        outside = [u for u in self.requests if not u.startswith(self.base) and not u.startswith("data:")]
        assert not outside, f"the page reached outside the registry: {outside}"


def as_bytes(doc: dict) -> bytes:
    return json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")


async def _page(browser, served) -> Page:
    context = await browser.new_context(viewport={"width": 1100, "height": 900}, locale="zh-CN")
    return Page(await context.new_page(), served.base)


# -- in Chromium -------------------------------------------------------------------------------
@pytest.mark.browser
async def test_verify_page_uploads(issued, served, browser):
    require_service(CHROMIUM.exists(), "no Chromium at /usr/bin/chromium")
    from verifier import redact

    p = await _page(browser, served)
    await p.goto()
    assert "验证" in await p.text("h1") and "Verify" in await p.text("h1")
    for label in (
        "格式 Format",
        "完整性 Integrity",
        "签发机构 Issuer",
        "链上存证 Anchor",
        "状态 Status",
        "有效期 Validity",
        "数据 Data",
        "用途 Usage",
    ):
        assert label in await p.text("#checks tbody")
    assert not await p.page.is_visible("#result")

    # 1. a valid data asset certificate
    await p.choose("credential", "certificate.json", as_bytes(issued.certificate))
    verdict = await p.verdict()
    assert "VALID" in verdict and "NOT VALID" not in verdict and "有效" in verdict, verdict
    assert await p.page.get_attribute("#verdict", "data-valid") == "true"
    statuses = await p.statuses()
    assert all(statuses[c] == "passed" for c in PASSING), statuses
    assert statuses["data"] == "skipped" and statuses["usage"] == "skipped"
    assert await p.text("#cred-issuer") == "广东省政务服务和数据管理局"
    subject = await p.text("#cred-subject")
    assert issued.holder_uscc in subject and "佛山市示例制造有限公司" in subject
    assert "数据资产凭证" in await p.text("#cred-type")
    assert await p.text("#cred-id") == issued.certificate_id
    assert "广东省政务服务和数据管理局" in (await p.check("issuer"))[1]
    assert await p.page.locator("#fields tr.redacted").count() == 0
    assert not await p.page.is_visible("#fields-warning")
    assert "trust bundle for chain" in await p.text("#trust")
    await p.shot("valid")

    # 2. with the certified dataset: data green
    await p.choose("dataset", "electricity.csv", DATASET, "text/csv")
    assert "NOT VALID" not in await p.verdict()
    status, reason = await p.check("data")
    assert status == "passed" and "matches the certified digest" in reason, reason
    assert "electricity.csv" in await p.text("#dataset-name")
    await p.shot("valid-with-dataset")

    # 3. a dataset one byte different: data red
    await p.choose("dataset", "electricity-edited.csv", one_byte_off(DATASET), "text/csv")
    verdict = await p.verdict()
    assert "NOT VALID" in verdict and "无效" in verdict, verdict
    status, reason = await p.check("data")
    assert status == "failed" and "does not match the certificate" in reason and DIGEST[:18] in reason, reason
    assert await p.page.get_attribute("#checks tr[data-check='data']", "class") == "check failed"
    assert all(s == "passed" for c, s in (await p.statuses()).items() if c in PASSING)
    await p.shot("dataset-mismatch")

    # 4. tampered: one field changed → integrity red (the dataset removed first)
    await p.page.click("#clear-dataset")
    assert await p.text("#dataset-name") == ""
    tampered = copy.deepcopy(issued.certificate)
    tampered["credentialSubject"]["recordCount"] = 99999
    await p.choose("credential", "tampered.json", as_bytes(tampered))
    assert "NOT VALID" in await p.verdict()
    status, reason = await p.check("integrity")
    assert status == "failed" and "does not match what the issuer signed" in reason, reason
    assert (await p.statuses())["data"] == "skipped"
    assert "do not rely on the contents" in await p.text("#fields-warning")
    assert await p.page.is_visible("#fields-warning")
    await p.shot("tampered")

    # 5. redacted by the holder (dropped onto the page): valid, the fields shown as redacted
    redacted = redact(issued.certificate, ["/credentialSubject/valuation", "/credentialSubject/dataProvider"])
    await p.drop("credential", "redacted.json", as_bytes(redacted))
    assert "NOT VALID" not in await p.verdict()
    assert "redacted.json" in await p.text("#credential-name")
    status, reason = await p.check("integrity")
    assert status == "passed" and "4 field(s) redacted by the holder" in reason, reason
    rows = await p.page.eval_on_selector_all("#fields tr.redacted", "rs => rs.map(r => r.dataset.path)")
    assert sorted(rows) == [
        "/credentialSubject/dataProvider",
        "/credentialSubject/valuation/amount",
        "/credentialSubject/valuation/currency",
        "/credentialSubject/valuation/method",
    ], rows
    cell = await p.text("#fields tr.redacted[data-path='/credentialSubject/dataProvider'] td:last-child")
    assert cell.startswith("已隐去 redacted") and "(path proven by the issuer's hash)" in cell, cell
    assert "广东电网" not in await p.text("#fields")
    assert "佛山某制造企业用电数据" in await p.text("#fields")  # a disclosed field
    await p.shot("redacted")

    # 5b. the same copy with two redaction labels swapped (issue 24): integrity fails, and the page
    # says the redacted paths are only the holder's claim
    relabelled = copy.deepcopy(redacted)
    d = relabelled["proof"]["redactedDigests"]
    d["/credentialSubject/valuation/amount"], d["/credentialSubject/dataProvider"] = (
        d["/credentialSubject/dataProvider"],
        d["/credentialSubject/valuation/amount"],
    )
    await p.drop("credential", "relabelled.json", as_bytes(relabelled))
    assert "NOT VALID" in await p.verdict()
    assert (await p.check("integrity"))[0] == "failed"
    cell = await p.text("#fields tr.redacted[data-path='/credentialSubject/dataProvider'] td:last-child")
    assert "(path is the holder's claim, not proven)" in cell, cell
    await p.drop("credential", "redacted.json", as_bytes(redacted))  # back to the honest copy for step 6
    assert "NOT VALID" not in await p.verdict()

    # 6. the usage check: the authorised bank and purpose
    await p.page.click("#options summary")
    await p.page.fill("#relying-party", issued.relying_party)
    await p.page.fill("#purpose", "credit-assessment")
    await p.page.fill("#at", "2026-06-01T00:00:00Z")
    before = await p.runs()
    await p.page.click("#verify-button")
    await p.wait_run(before)
    status, reason = await p.check("usage")
    assert status == "passed" and "credit-assessment" in reason, reason
    await p.page.fill("#purpose", "marketing")
    before = await p.runs()
    await p.page.click("#verify-button")
    await p.wait_run(before)
    status, reason = await p.check("usage")
    assert status == "failed" and "not for 'marketing'" in reason, reason
    await p.page.fill("#relying-party", "")
    await p.page.fill("#purpose", "")
    await p.page.fill("#at", "")

    # 7. revoked by its issuer → status red, with who and why
    await issued.revoke(issued.revocable_id, "dataInaccurate")
    await p.choose("credential", "revoked.json", as_bytes(issued.revocable))
    verdict = await p.verdict()
    assert "NOT VALID" in verdict, verdict
    status, reason = await p.check("status")
    assert (
        status == "failed"
        and "revoked by" in reason
        and "广东省政务服务和数据管理局" in reason
        and "reason data inaccurate" in reason
    ), reason
    statuses = await p.statuses()
    assert all(statuses[c] == "passed" for c in ("format", "integrity", "issuer", "anchor", "validity")), (
        statuses
    )
    await p.shot("revoked")

    # 8. a file that is not a credential: a plain message, no result
    await p.choose("credential", "photo.json", b"\x89PNG\r\n\x1a\n not json", "image/png")
    assert not await p.page.is_visible("#result")
    message = await p.error()
    assert "无法核验" in message and "not valid JSON" in message, message
    await p.shot("not-json")
    p.assert_clean(expected=("status of 400",))  # the browser logs the refused upload's 400 itself


@pytest.mark.browser
async def test_verify_page_qr_links(issued, served, browser):
    require_service(CHROMIUM.exists(), "no Chromium at /usr/bin/chromium")
    s = issued.service
    r = await s.client.get(f"/v1/credentials/{issued.licence_id}/qr.svg", headers=s.h(issued.regulator_key))
    assert r.status_code == 200
    from registry.services.qr import verify_link

    link = urlsplit(verify_link(s.ctx.settings.public_url, issued.licence_id))
    assert link.path == "/verify"

    # an e-licence's QR link: verified by the registry, shown in full (licence data is public)
    p = await _page(browser, served)
    await p.goto(f"{link.path}?{link.query}")
    await p.page.wait_for_selector("#result[data-run='1']")
    verdict = await p.verdict()
    assert "VALID" in verdict and "NOT VALID" not in verdict, verdict
    statuses = await p.statuses()
    assert all(statuses[c] == "passed" for c in PASSING), statuses
    assert await p.page.get_attribute("#result", "data-source") == "registry"
    assert "营业执照" in await p.text("#cred-type")
    assert await p.text("#cred-issuer") == "广州市市场监督管理局"
    licence_subject = issued.licence["credentialSubject"]
    assert licence_subject["unifiedSocialCreditCode"] in await p.text("#cred-subject")
    assert "广州市示例科技有限公司" in await p.text("#cred-subject")
    assert "法定代表人" in await p.text("#fields") and "张三" in await p.text("#fields")
    await p.shot("qr-licence")

    # English only
    await p.page.click(".langs button[data-lang='en']")
    assert not await p.page.is_visible("#verdict [lang='zh']")
    assert await p.page.is_visible("#verdict [lang='en']")
    await p.shot("qr-licence-english")
    await p.page.click(".langs button[data-lang='both']")

    # a data asset certificate's link: id, type, issuer, status — no subject data
    p2 = await _page(browser, served)
    await p2.goto(f"/verify?credential={issued.certificate_id}")
    await p2.page.wait_for_selector("#result[data-run='1']")
    assert "需持有人出示凭证文件" in await p2.verdict()
    assert await p2.page.get_attribute("#cred-status", "data-status") == "valid"
    assert await p2.text("#cred-issuer") == "广东省政务服务和数据管理局"
    assert await p2.page.is_visible("#summary-only-note")
    assert not await p2.page.is_visible("#checks")
    body = await p2.text("body")
    assert issued.holder_uscc not in body and "佛山" not in body
    await p2.shot("qr-certificate")

    assert await p2.text("#cred-subject") == "不公开 not public"

    # a revoked certificate's link: red, whatever file its holder shows
    await issued.revoke(issued.revocable_id, "holderRequest")
    await p2.goto(f"/verify?credential={issued.revocable_id}")
    await p2.page.wait_for_selector("#result[data-run='1']")
    assert await p2.verdict() == "✗已撤销 REVOKED"
    assert await p2.page.get_attribute("#verdict", "data-valid") == "false"
    await p2.shot("qr-certificate-revoked")

    # an unknown id: a plain "not found"
    await p2.goto("/verify?credential=urn:uuid:00000000-0000-4000-8000-000000000000")
    await p2.page.wait_for_selector("#error[data-run='1']")
    message = await p2.error()
    assert "未找到" in message and "Not found" in message and "no credential" in message, message
    await p2.shot("qr-unknown")
    p.assert_clean()
    p2.assert_clean(expected=("status of 404",))  # the browser logs the unknown id's 404 itself


# -- the public endpoints, no browser --------------------------------------------------------------
def _error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    return body["error"]


async def test_check_endpoint_needs_no_key_and_reports_display_fields(issued):
    from verifier import redact

    c = issued.service.client
    doc = redact(issued.certificate, ["/credentialSubject/valuation/amount"])
    r = await c.post(
        "/verify/check",
        files={
            "credential": ("c.json", as_bytes(doc), "application/json"),
            "dataset": ("d.csv", DATASET, "text/csv"),
        },
        data={
            "relyingParty": issued.relying_party,
            "purpose": "credit-assessment",
            "at": "2026-06-01T00:00:00Z",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["valid"] is True, body
    assert [c["name"] for c in body["checks"]] == [
        "format",
        "integrity",
        "issuer",
        "anchor",
        "status",
        "validity",
        "data",
        "usage",
    ]
    assert all(c["status"] == "passed" for c in body["checks"]), body["checks"]
    assert body["credential"]["issuer"] == "广东省政务服务和数据管理局"
    assert body["redacted"] == ["/credentialSubject/valuation/amount"]
    disclosed = {f["path"]: f["value"] for f in body["disclosed"]}
    assert disclosed["/credentialSubject/recordCount"] == 17520
    assert "/credentialSubject/valuation/amount" not in disclosed
    assert disclosed["/credentialSubject/valuation/currency"] == "CNY"
    assert body["subjectName"] == "佛山市示例制造有限公司"
    assert body["dataset"] == {"size": len(DATASET)}

    # the credential as a text field (pasted) works too; an empty dataset input is "no dataset"
    r = await c.post(
        "/verify/check",
        files={
            "credential": (None, as_bytes(issued.licence)),
            "dataset": ("", b"", "application/octet-stream"),
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["valid"] is True and r.json()["dataset"] is None
    assert {c["name"]: c["status"] for c in r.json()["checks"]}["data"] == "skipped"

    # a JSON object that is not a credential: a result (format red), not an error
    r = await c.post(
        "/verify/check", files={"credential": ("x.json", b'{"hello": "world"}', "application/json")}
    )
    assert r.status_code == 200 and r.json()["valid"] is False
    assert r.json()["checks"][0]["status"] == "failed"


async def test_check_endpoint_refuses_bad_input(issued, monkeypatch):
    from registry.api.routes import pages

    c = issued.service.client
    good = as_bytes(issued.certificate)

    def post(files=None, data=None, **kw):
        return c.post("/verify/check", files=files, data=data, **kw)

    # not a multipart upload
    _error(
        await c.post("/verify/check", json={"credential": issued.certificate}), 415, "unsupported_media_type"
    )
    _error(
        await c.post("/verify/check", content=b"x", headers={"content-type": "multipart/form-data"}),
        400,
        "bad_request",
    )  # no boundary
    _error(
        await c.post(
            "/verify/check",
            content=b"--b\r\nnot a part",
            headers={"content-type": "multipart/form-data; boundary=b"},
        ),
        400,
        "bad_request",
    )
    # no credential / empty / not JSON / not UTF-8 / not an object / lone surrogate / duplicate keys
    _error(await post(data={"purpose": "x"}), 415, "unsupported_media_type")  # url-encoded
    err = _error(await post(files={"purpose": (None, "x")}), 400, "bad_request")
    assert err["details"] == {"field": "credential"}
    _error(await post(files={"credential": ("c.json", b"  \n", "application/json")}), 400, "bad_request")
    err = _error(
        await post(files={"credential": ("c.png", b"\x89PNG\r\n\x1a\n", "image/png")}), 400, "bad_request"
    )
    assert "not valid JSON" in err["message"] and "UTF-8" in err["message"], err
    err = _error(
        await post(files={"credential": ("c.json", b'{"a": ', "application/json")}), 400, "bad_request"
    )
    assert "not valid JSON" in err["message"]
    err = _error(
        await post(files={"credential": ("c.json", b"[1, 2]", "application/json")}), 400, "bad_request"
    )
    assert "not an array" in err["message"]
    _error(
        await post(files={"credential": ("c.json", b'{"a": "\\ud800"}', "application/json")}),
        400,
        "bad_request",
    )
    _error(
        await post(files={"credential": ("c.json", b'{"a": 1, "a": 2}', "application/json")}),
        400,
        "bad_request",
    )
    _error(
        await post(files={"credential": ("c.json", b'{"a": NaN}', "application/json")}), 400, "bad_request"
    )
    # bad fields
    err = _error(
        await post(files={"credential": ("c.json", good, "application/json")}, data={"at": "tomorrow"}),
        400,
        "bad_request",
    )
    assert err["details"] == {"field": "at"}
    err = _error(
        await post(files={"credential": ("c.json", good, "application/json")}, data={"evil": "1"}),
        400,
        "bad_request",
    )
    assert err["details"] == {"field": "evil"}
    _error(
        await post(
            files=[
                ("credential", ("a.json", good, "application/json")),
                ("credential", ("b.json", good, "application/json")),
            ]
        ),
        400,
        "bad_request",
    )
    _error(
        await post(files={"credential": ("c.json", good, "application/json")}, data={"purpose": "p" * 2000}),
        413,
        "payload_too_large",
    )
    _error(
        await post(files={"credential": ("c.json", good, "application/json")}, data={"purpose": b"\xff\xfe"}),
        400,
        "bad_request",
    )
    # too large: the credential (10 MiB), the dataset (its limit, lowered here)
    err = _error(
        await post(files={"credential": ("c.json", b" " * (pages.MAX_CREDENTIAL + 1), "application/json")}),
        413,
        "payload_too_large",
    )
    assert err["details"]["field"] == "credential"
    monkeypatch.setattr(pages, "MAX_DATASET", 1000)
    err = _error(
        await post(
            files={
                "credential": ("c.json", good, "application/json"),
                "dataset": ("d.csv", b"x" * 1001, "text/csv"),
            }
        ),
        413,
        "payload_too_large",
    )
    assert err["details"] == {"field": "dataset", "limit": 1000}
    r = await post(
        files={
            "credential": ("c.json", good, "application/json"),
            "dataset": ("d.csv", b"x" * 1000, "text/csv"),
        }
    )
    assert r.status_code == 200 and {c["name"]: c["status"] for c in r.json()["checks"]}["data"] == "failed"


async def test_page_and_credential_endpoints(issued):
    c = issued.service.client
    r = await c.get("/verify")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    page = r.text
    assert 'data-check="integrity"' in page and "完整性" in page and "Integrity" in page
    assert (
        "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page
    )  # nothing external
    r = await c.get("/verify", params={"credential": '"><script>alert(1)</script>'})
    assert r.status_code == 200 and "<script>alert" not in r.text
    for name, kind in (("verify.js", "javascript"), ("verify.css", "text/css")):
        r = await c.get(f"/verify/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
    _error(await c.get("/verify/static/trace.js"), 404, "not_found")
    _error(await c.get("/verify/static/..%2Fpages.py"), 404, "not_found")

    # the QR endpoint: an e-licence in full, a certificate in summary, no key needed for either
    r = await c.get(f"/verify/credential/{issued.licence_id}")
    assert r.status_code == 200 and r.json()["valid"] is True
    assert r.json()["credential"]["type"] == "BusinessLicence"
    r = await c.get(f"/verify/credential/{issued.certificate_id}")
    assert r.status_code == 200
    assert r.json() == {
        "id": issued.certificate_id,
        "type": "DataAssetCertificate",
        "issuer": "广东省政务服务和数据管理局",
        "status": "valid",
        "source": "registry",
        "summaryOnly": True,
    }
    await issued.revoke(issued.revocable_id)
    assert (await c.get(f"/verify/credential/{issued.revocable_id}")).json()["status"] == "revoked"
    _error(await c.get("/verify/credential/urn:uuid:00000000-0000-4000-8000-000000000000"), 404, "not_found")
    _error(await c.get("/verify/credential/" + "x" * 300), 404, "not_found")


async def test_public_checks_are_rate_limited_per_client(issued):
    """Over CERTLEDGER_PUBLIC_RATE_LIMIT a client gets 429 with Retry-After and the error shape, on
    both public checks (refused requests count too); another client address is not affected; the
    API with a key is not limited; a limit that does not parse is refused at start-up."""
    from pydantic import ValidationError

    from registry.api.ratelimit import PublicRateLimit
    from registry.core.config import Settings

    c, app = issued.service.client, issued.service.app
    app.state.public_limit = PublicRateLimit("3/minute")  # (this test's own app)
    assert (await c.get(f"/verify/credential/{issued.licence_id}")).status_code == 200
    assert (await c.get("/verify/credential/nope")).status_code == 404
    r = await c.post("/verify/check", files={"credential": ("c.json", b"{}", "application/json")})
    assert r.status_code == 200, r.text
    for r in (
        await c.get(f"/verify/credential/{issued.licence_id}"),
        await c.post("/verify/check", files={"credential": ("c.json", b"{}", "application/json")}),
    ):
        body = _error(r, 429, "rate_limited")
        retry = int(r.headers["retry-after"])
        assert 1 <= retry <= 60 and body["details"] == {"limit": "3 per 1 minute", "retryAfter": retry}
        assert "try again in" in body["message"]
    other = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 4711)), base_url=c.base_url
    )
    async with other:
        assert (await other.get(f"/verify/credential/{issued.licence_id}")).status_code == 200
    assert (await c.get("/health")).status_code == 200  # only the public checks count

    app.state.public_limit = PublicRateLimit("off")
    for _ in range(5):
        assert (await c.get(f"/verify/credential/{issued.licence_id}")).status_code == 200
    for bad in ("lots", "5/fortnight", "-1/minute"):
        with pytest.raises(ValidationError, match="is not a rate limit"):
            Settings(public_rate_limit=bad)
