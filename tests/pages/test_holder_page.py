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
    # (a locator, not wait_for_function: the page's CSP forbids the eval Playwright polls a string with)
    await page.locator("#holder-error-message", has_text="cannot load the request").wait_for()
    await _shot(page, "holder-refused")


@pytest.mark.parametrize(
    "name, global_name",
    [("holder-crypto", "certledgerHolderCrypto"), ("holder-scan", "certledgerHolderScan")],
)
def test_the_committed_bundles_are_the_builds_of_their_sources(tmp_path, name, global_name):
    """registry/static/<name>.js is what `make static` builds from scripts/js/<name>.mjs."""
    esbuild = ROOT / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        pytest.skip("no node_modules (npm ci): cannot rebuild the bundle")
    out = tmp_path / f"{name}.js"
    subprocess.run(
        [
            str(esbuild),
            f"scripts/js/{name}.mjs",
            "--bundle",
            "--format=iife",
            f"--global-name={global_name}",
            "--minify",
            "--target=es2020",
            "--legal-comments=eof",
            f"--outfile={out}",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == (ROOT / "registry" / "static" / f"{name}.js").read_bytes()


def _qr_image(text: str, size: int = 360):
    """An RGB picture of a QR code of ``text``, on a white field (a photo of the bank's screen)."""
    import qrcode
    from PIL import Image

    code = qrcode.make(text, box_size=6, border=4).convert("RGB")
    field = Image.new("RGB", (640, 480), "white")
    code = code.resize((size, size))
    field.paste(code, ((640 - size) // 2, (480 - size) // 2))
    return field


def _y4m(image, path: Path, frames: int = 5) -> Path:
    """A YUV4MPEG2 (4:2:0) file of ``image``: what Chromium's fake camera plays."""
    ycc = image.convert("YCbCr")
    w, h = ycc.size
    y, cb, cr = ycc.split()
    half = (w // 2, h // 2)
    frame = b"FRAME\n" + y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    path.write_bytes(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode() + frame * frames)
    return path


async def test_the_request_qr_is_read_from_a_picture_and_from_the_camera(holder_world, browser, tmp_path):
    """The holder page reads the bank's request QR from a picture of it, and from the camera (Chromium's
    fake camera playing a video of the QR code), and loads the request it links to."""
    s, srv, files, bank = holder_world
    opened = (
        await s.client.post("/verify/requests", json={"audience": bank, "purpose": "credit-assessment"})
    ).json()
    link = _local(srv.base, opened["holderLink"])
    picture = tmp_path / "request-qr.png"
    _qr_image(link).save(picture)

    page = await (await browser.new_context()).new_page()
    await page.goto(srv.base + "/holder")
    await page.set_input_files("#qr-image", str(picture))
    await page.wait_for_selector("#request-summary:not([hidden])")
    assert await page.text_content("#req-audience") == bank
    assert await page.input_value("#request-text") == link

    # a picture without a QR code is named
    blank = tmp_path / "blank.png"
    _qr_image("x").crop((0, 0, 40, 40)).save(blank)
    await page.set_input_files("#qr-image", str(blank))
    await page.wait_for_selector("#holder-error:not([hidden])")
    assert "no QR code" in await page.text_content("#holder-error")

    from playwright.async_api import async_playwright

    from tests.support.services import CHROMIUM, CHROMIUM_ARGS

    video = _y4m(_qr_image(link), tmp_path / "camera.y4m")
    async with async_playwright() as pw:
        camera_browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                *CHROMIUM_ARGS,
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={video}",
            ],
        )
        try:
            cam = await (await camera_browser.new_context(permissions=["camera"])).new_page()
            await cam.goto(srv.base + "/holder")
            await cam.click("#scan-camera")
            await cam.wait_for_selector("#request-summary:not([hidden])", timeout=20000)
            assert await cam.text_content("#req-audience") == bank
            assert await cam.is_hidden("#scan-video")  # the camera is released once read
            await _shot(cam, "holder-scanned")
        finally:
            await camera_browser.close()


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
