"""The trace page shows the rules (FORMAT.md §11.2) in headless Chromium: the rule applied to each
flow, the annual totals per exporter against each threshold, the split flagged, the rule table
with its sources, and the zh / en switch (kept across pages, as on the verify page)."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.flows import declaration
from tests.support.services import CHROMIUM, require_service
from tests.support.services import CHROMIUM_ARGS as ARGS

pytestmark = [pytest.mark.chain, pytest.mark.browser, pytest.mark.anyio, pytest.mark.sqlite_only]


async def test_rules_on_the_trace_page(world):
    require_service(CHROMIUM.exists(), "no Chromium at /usr/bin/chromium")
    import uvicorn
    from playwright.async_api import async_playwright

    from ledger_node.node import free_port

    w, s = world, world.service
    ids = []
    for _ in range(4):  # 1.2 million people in four standard-contract flows of 300,000
        r = await s.client.post(
            "/v1/flows",
            headers=s.h(w.gz_key),
            json=declaration(
                w.credential_id,
                importer=w.hk,
                to="HK",
                frm="440100",
                personalInformation=True,
                personalInformationSubjects=300_000,
            ),
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["flowId"])
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
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                await page.goto(f"{base}/trace")
                await page.fill("input[name=api_key]", w.regulator_key)
                await page.click("#signin button")
                await page.wait_for_selector("#exporter-totals")
                # the split: flagged on the fourth flow, the rule applied in each row
                kinds = await page.eval_on_selector_all(
                    "#violations li", "els => els.map(e => e.dataset.kind)"
                )
                assert kinds == ["threshold_split"]
                rules = await page.eval_on_selector_all(
                    "tr.flow-row .rule", "els => els.map(e => e.dataset.rule)"
                )
                assert rules == ["annual-100000"] * 3 + ["annual-1000000"]
                assert (
                    await page.get_attribute(f"tr.flow-row[data-flow-id='{ids[3]}'] .rule", "data-covered")
                    == "0"
                )
                # the annual totals against each threshold
                row = "#exporter-totals tr.exporter-total"
                assert await page.locator(row).count() == 1
                assert "1,200,000" in await page.text_content(row)
                reached = await page.eval_on_selector_all(
                    f"{row} td[data-reached='1']", "els => els.map(e => e.dataset.threshold)"
                )
                assert reached == ["annual-100000", "annual-1000000"]
                # the rule table, each rule with its article
                await page.click("#rule-table summary")
                assert "art. 7(2)" in await page.text_content("#rule-table tr[data-rule='annual-1000000']")
                # zh / en: both by default, then English only, kept after a reload, then 中文 only
                zh = "#exporter-totals th span[lang=zh] >> nth=0"
                en = "#exporter-totals th span[lang=en] >> nth=0"
                assert await page.is_visible(zh) and await page.is_visible(en)
                await page.click(".langs button[data-lang=en]")
                assert not await page.is_visible(zh) and await page.is_visible(en)
                assert await page.evaluate("document.documentElement.lang") == "en"
                await page.reload()
                assert not await page.is_visible(zh) and await page.is_visible(en)
                await page.click(".langs button[data-lang=zh]")
                assert await page.is_visible(zh) and not await page.is_visible(en)
                assert await page.get_attribute(".langs button[data-lang=zh]", "aria-pressed") == "true"
                assert not errors, errors
            finally:
                await browser.close()
    finally:
        server.should_exit = True
        await serving
