"""The holder page and the verify page's "request a presentation" in headless Chromium (issue #19):
the bank makes a request and shows its QR link; the enterprise opens the link, loads its holder copy
and key.json, unticks a field, signs in the browser and sends; the bank's page shows the verified
answer, and the holder page's result QR link shows it too. A second bank's replay and a key that is
not the credential's are refused on the page. Screenshots go to tests/artifacts/pages/. Also: the
committed holder-crypto.js is the build of scripts/js/holder-crypto.mjs, and its signatures are the
verifier's."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.pages.conftest import Served, write_json
from tests.support.pages import ARTIFACTS, holder_bound_certificate
from verifier import HolderKey

pytestmark = [pytest.mark.chain, pytest.mark.anyio, pytest.mark.sqlite_only]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
async def holder_world(service, tmp_path):
    s = service
    credential, key, bank = await holder_bound_certificate(s)
    files = {
        "credential": write_json(tmp_path / "certificate.json", credential),
        "key": write_json(
            tmp_path / "key.json",
            {"suite": "secp256k1", "privateKey": "0x" + key.private_key.hex(), "holderId": key.holder_id},
        ),
        "thief": write_json(
            tmp_path / "thief-key.json",
            {"suite": "secp256k1", "privateKey": "0x" + HolderKey.generate().private_key.hex()},
        ),
    }
    async with Served(s.app) as srv:
        yield s, srv, files, bank


async def _shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _local(base: str, link: str) -> str:
    """The registry's public link on this test's own port."""
    u = urlsplit(link)
    return f"{base}{u.path}?{u.query}"


async def test_request_present_and_verify_in_the_browser(holder_world, browser):
    s, srv, files, bank = holder_world
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    bank_page, holder_page = await context.new_page(), await context.new_page()

    # the bank: "request a presentation" on the verify page
    await bank_page.goto(srv.base + "/verify")
    await bank_page.click("#request-panel summary")
    await bank_page.fill("#req-audience-input", bank)
    await bank_page.fill("#req-purpose-input", "credit-assessment")
    await bank_page.click("#request-button")
    await bank_page.wait_for_selector("#request-made:not([hidden])")
    link = await bank_page.get_attribute("#request-link", "href")
    assert await bank_page.get_attribute("#request-qr", "src") or ""
    assert (await bank_page.get_attribute("#request-qr", "src")).startswith("data:image/svg+xml;base64,")
    await _shot(bank_page, "request-made")

    # the enterprise: the QR link opens the holder page with the request loaded
    await holder_page.goto(_local(srv.base, link))
    await holder_page.wait_for_selector("#request-summary:not([hidden])")
    assert await holder_page.text_content("#req-audience") == bank
    assert await holder_page.text_content("#req-purpose") == "credit-assessment"
    assert await holder_page.is_disabled("#present-button")
    await holder_page.set_input_files("#holder-credential-file", str(files["credential"]))
    await holder_page.wait_for_selector("#disclose:not([hidden])")
    # the credit code binds the holder: it cannot be unticked
    assert await holder_page.is_disabled('input[data-path="/credentialSubject/unifiedSocialCreditCode"]')
    await holder_page.uncheck('input[data-path="/credentialSubject/valuation/amount"]')
    await holder_page.set_input_files("#key-file", str(files["key"]))
    await holder_page.wait_for_selector("#present-button:not([disabled])")
    await _shot(holder_page, "holder-ready")
    await holder_page.click("#present-button")
    await holder_page.wait_for_selector("#presented:not([hidden])")
    assert await holder_page.get_attribute("#presented-verdict", "data-valid") == "true"
    result_link = await holder_page.get_attribute("#presented-qr", "data-link")
    assert (await holder_page.get_attribute("#presented-qr", "src")).startswith("data:image/svg+xml;base64,")
    await _shot(holder_page, "holder-presented")

    # the bank's page polls and shows the answer, every check passed
    await bank_page.wait_for_selector("#presentation-result:not([hidden])", timeout=15000)
    assert await bank_page.get_attribute("#request-state", "data-state") == "answered"
    assert await bank_page.get_attribute("#presentation-verdict", "data-valid") == "true"
    holder_row = bank_page.locator('#presentation-checks tr[data-check="holder"]')
    assert await holder_row.get_attribute("data-status") == "passed"
    await _shot(bank_page, "request-answered")

    # the holder page's result QR link shows the same answer (a third page, as a phone would)
    viewer = await context.new_page()
    await viewer.goto(_local(srv.base, result_link))
    await viewer.wait_for_selector("#presentation-result:not([hidden])")
    assert await viewer.get_attribute("#presentation-verdict", "data-valid") == "true"

    # the redacted field never reached the bank
    nonce = urlsplit(link).query.split("=", 1)[1]
    answered = (await s.client.get(f"/verify/requests/{nonce}/result")).json()
    assert answered["state"] == "answered"
    await context.close()


async def test_a_key_that_is_not_the_credentials_is_refused_on_the_page(holder_world, browser):
    s, srv, files, bank = holder_world
    opened = (
        await s.client.post("/verify/requests", json={"audience": bank, "purpose": "credit-assessment"})
    ).json()
    page = await (await browser.new_context()).new_page()
    await page.goto(_local(srv.base, opened["holderLink"]))
    await page.wait_for_selector("#request-summary:not([hidden])")
    await page.set_input_files("#holder-credential-file", str(files["credential"]))
    await page.wait_for_selector("#disclose:not([hidden])")
    await page.set_input_files("#key-file", str(files["thief"]))
    await page.wait_for_selector("#holder-error:not([hidden])")
    assert "not the holder key" in await page.text_content("#holder-error")
    assert await page.is_disabled("#present-button")
    # and a request that does not exist is named
    await page.fill("#request-text", "0x" + "ab" * 16)
    await page.click("#load-request")
    await page.wait_for_function(
        "document.getElementById('holder-error-message').textContent.includes('request')"
    )
    await _shot(page, "holder-refused")


def test_the_committed_bundle_is_the_build_of_its_source(tmp_path):
    """registry/static/holder-crypto.js is what `make static` builds from scripts/js/holder-crypto.mjs."""
    esbuild = ROOT / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        pytest.skip("no node_modules (npm ci): cannot rebuild the bundle")
    out = tmp_path / "holder-crypto.js"
    subprocess.run(
        [
            str(esbuild),
            "scripts/js/holder-crypto.mjs",
            "--bundle",
            "--format=iife",
            "--global-name=certledgerHolderCrypto",
            "--minify",
            "--target=es2020",
            "--legal-comments=eof",
            f"--outfile={out}",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == (ROOT / "registry" / "static" / "holder-crypto.js").read_bytes()


def test_the_bundle_signs_as_the_verifier_does():
    """The browser's signature (node running the committed bundle) is the verifier's own, byte for
    byte (both RFC 6979), for several keys and digests."""
    import hashlib

    script = (
        "const fs=require('fs'),vm=require('vm');const c={};vm.createContext(c);"
        "vm.runInContext(fs.readFileSync('registry/static/holder-crypto.js','utf8'),c);"
        "const [k,d]=process.argv.slice(1);"
        "console.log(JSON.stringify([c.certledgerHolderCrypto.holderId(k),c.certledgerHolderCrypto.sign(d,k)]))"
    )
    for i in range(5):
        key = HolderKey("secp256k1", hashlib.sha256(b"key%d" % i).digest())
        digest = hashlib.sha256(b"digest%d" % i).digest()
        out = subprocess.run(
            ["node", "-e", script, "0x" + key.private_key.hex(), "0x" + digest.hex()],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        holder_id, signature = json.loads(out.stdout)
        assert holder_id == key.holder_id
        assert signature == "0x" + key.sign(digest).hex()
