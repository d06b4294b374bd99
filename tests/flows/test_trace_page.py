"""The regulator's trace page in headless Chromium: sign in, load the Guangzhou scenario's trace,
violations highlighted in graph and table, client-side filters, an edge's link to its chain
transaction, no request leaving the registry; a screenshot under test-artifacts/flows/."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.flows import ARTIFACTS, run_scenario
from tests.support.services import CHROMIUM, require_service
from tests.support.services import CHROMIUM_ARGS as ARGS

pytestmark = [pytest.mark.chain, pytest.mark.browser, pytest.mark.anyio, pytest.mark.sqlite_only]


async def test_trace_page_in_chromium(world):
    require_service(CHROMIUM.exists(), "no Chromium at /usr/bin/chromium")
    import uvicorn
    from playwright.async_api import async_playwright

    from ledger_node.node import free_port

    w, s = world, world.service
    ids = await run_scenario(w)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(s.app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                requests: list[str] = []
                page.on("request", lambda req: requests.append(req.url))
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                failed: list[tuple[int, str]] = []
                page.on("response", lambda r: failed.append((r.status, r.url)) if r.status >= 400 else None)

                # not signed in: the sign-in form; an exporter's key is refused
                await page.goto(f"{base}/trace")
                await page.fill("input[name=api_key]", w.gz_key)
                await page.click("#signin button")
                assert "not a regulator" in await page.text_content(".error")
                await page.fill("input[name=api_key]", w.regulator_key)
                await page.click("#signin button")
                await page.wait_for_selector("#filters")

                # load the asset's trace through the filter form
                await page.fill("input[name=asset]", w.credential_id)
                await page.click("#filters button")
                await page.wait_for_selector("#trace")
                assert await page.text_content("#n-flows") == "4"
                assert await page.text_content("#n-violations") == "4"
                assert await page.locator("svg .edge").count() == 4
                red = await page.eval_on_selector_all(
                    "svg .edge.violation", "els => els.map(e => e.dataset.flowId)"
                )
                assert sorted(map(int, red)) == sorted([ids["f1"], ids["f2"], ids["f4"]])
                colour = await page.eval_on_selector(
                    f"svg .edge[data-flow-id='{ids['f1']}'] path", "p => p.getAttribute('stroke')"
                )
                assert colour == "#d32f2f"
                assert await page.locator("tr.flow-row.violation").count() == 3
                kinds = await page.eval_on_selector_all(
                    "#violations li", "els => els.map(e => e.dataset.kind)"
                )
                assert sorted(kinds) == sorted(
                    [
                        "certificate_revoked",
                        "certificate_revoked",
                        "payload_digest_mismatch",
                        "parent_rejected",
                    ]
                )
                assert await page.is_visible("#client-filters")
                assert await page.text_content("#shown-count [lang=en]") == "4 of 4 flows shown"
                await page.screenshot(path=str(ARTIFACTS / "trace-page.png"), full_page=True)

                # the zh / en switch (static/lang.js, the verify page's): one language at a time, kept on reload
                await page.click(".langs button[data-lang=zh]")
                assert await page.get_attribute("html", "class") == "lang-zh"
                assert await page.get_attribute("html", "lang") == "zh-Hans-CN"
                assert await page.text_content("#shown-count [lang=zh]") == "显示 4 / 4 条流动"
                assert not await page.is_visible("#shown-count [lang=en]")
                assert await page.is_visible("#flows th >> text=适用规则")
                assert not await page.is_visible("#flows th >> text=rule applied")
                assert await page.get_attribute(".langs button[data-lang=zh]", "aria-pressed") == "true"
                await page.reload()
                assert await page.get_attribute("html", "class") == "lang-zh"
                await page.screenshot(path=str(ARTIFACTS / "trace-page-zh.png"), full_page=True)
                await page.click(".langs button[data-lang=en]")
                assert await page.get_attribute("html", "lang") == "en"
                assert not await page.is_visible("#flows th >> text=适用规则")
                assert await page.is_visible("#flows th >> text=rule applied")
                assert await page.is_visible("header >> text=Sign out")
                await page.screenshot(path=str(ARTIFACTS / "trace-page-en.png"), full_page=True)
                await page.click(".langs button[data-lang=both]")
                assert await page.is_visible("#flows th >> text=适用规则")
                assert await page.is_visible("#flows th >> text=rule applied")

                # client-side filters: violations only; then hide approved; then search
                await page.check("#violations-only")
                assert await page.text_content("#shown-count [lang=en]") == "3 of 4 flows shown"
                assert await page.locator("svg .edge:visible").count() == 3
                assert not await page.is_visible(f"tr.flow-row[data-flow-id='{ids['f3']}']")
                await page.uncheck("input[data-filter-status][value=approved]")
                assert await page.text_content("#shown-count [lang=en]") == "1 of 4 flows shown"
                assert await page.is_visible(f"tr.flow-row[data-flow-id='{ids['f4']}']")
                await page.uncheck("#violations-only")
                await page.check("input[data-filter-status][value=approved]")
                await page.fill("#search", "Singapore Analytics Pte".replace("Singapore ", "Example "))
                assert await page.text_content("#shown-count [lang=en]") == "1 of 4 flows shown"
                await page.fill("#search", "")
                await page.screenshot(path=str(ARTIFACTS / "trace-page-filtered.png"))

                # server-side filters: a jurisdiction; a bad code gets a clear message
                await page.goto(f"{base}/trace?jurisdiction=SG")
                assert await page.locator("svg .edge").count() == 1
                resp = await page.goto(f"{base}/trace?jurisdiction=XX")
                assert resp.status == 400 and "not a known jurisdiction" in await page.text_content(
                    "#trace-error"
                )

                # an edge links to its chain transaction, decoded from the chain
                await page.goto(f"{base}/trace?asset={w.credential_id}")
                async with page.expect_navigation():
                    await page.click(f"svg .edge[data-flow-id='{ids['f3']}'] text")
                assert "/trace/tx/0x" in page.url
                assert await page.locator("table[data-event=FlowDeclared]").count() == 1
                assert "CN-GD" in await page.text_content("table[data-event=FlowDeclared]")
                await page.screenshot(path=str(ARTIFACTS / "trace-tx.png"))

                # exports with the session cookie
                export = await page.context.request.get(f"{base}/trace/export.csv?table=violations")
                assert export.ok
                csv_text = await export.text()
                assert (
                    csv_text.splitlines()[0] == "flowId,kind,source,message,flows"
                    and len(csv_text.splitlines()) == 5
                )

                # the only failed loads are the two refusals this test provoked (403 sign-in, 400 filter)
                assert sorted(st for st, _ in failed) == [400, 403], failed
                assert not [m for m in errors if "Failed to load resource" not in m], errors
                assert all(u.startswith(base) for u in requests), [
                    u for u in requests if not u.startswith(base)
                ]
            finally:
                await browser.close()
    finally:
        server.should_exit = True
        await serving
