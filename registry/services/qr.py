"""QR codes for e-licences: a link to the registry's verify page for the credential."""

from __future__ import annotations

import io
from urllib.parse import quote


def verify_link(public_url: str, credential_id: str) -> str:
    return f"{public_url.rstrip('/')}/verify?credential={quote(credential_id, safe='')}"


def qr_png(link: str) -> bytes:
    import qrcode

    img = qrcode.make(link, error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=4)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def qr_svg(link: str) -> bytes:
    import qrcode
    import qrcode.image.svg

    img = qrcode.make(link, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=4)
    buf = io.BytesIO()
    img.save(buf)
    return buf.getvalue()
