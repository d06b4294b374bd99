// The holder page's QR reader: the bank's request QR code, from the camera or a picture of it
// (jsQR, bundled by `make static` into registry/static/holder-scan.js; tests/pages/test_holder_page.py
// rebuilds it and checks the committed file is that build).
import jsQR from "jsqr";

// The text of the QR code in an RGBA image (ImageData's data, width, height), or null.
export function decode(rgba, width, height) {
  const found = jsQR(rgba, width, height, { inversionAttempts: "attemptBoth" });
  return found ? found.data : null;
}
