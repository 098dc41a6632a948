"""Reading a QR code shown on a page, as a phone camera does: the code the page draws (its SVG,
or its image) is drawn again at camera size, with a white quiet zone, in a blank page of the same
browser and decoded by jsQR (from the npm registry). Nothing is taken from the page's text."""

from __future__ import annotations

import base64
from pathlib import Path

from playwright.sync_api import Browser, Locator

JSQR = Path(__file__).resolve().parents[1] / "node_modules" / "jsqr" / "dist" / "jsQR.js"

SEE_AND_DECODE = """async (src) => {
    const img = new Image();
    img.src = src;
    await img.decode();
    const size = 600, pad = 60;
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = size + 2 * pad;
    const ctx = canvas.getContext('2d');
    ctx.imageSmoothingEnabled = false;
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(img, pad, pad, size, size);
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const found = jsQR(data.data, data.width, data.height);
    return {text: found ? found.data : null, png: canvas.toDataURL('image/png')};
}"""


def read(browser: Browser, code: Locator, keep: Path) -> str:
    """The text of the QR code shown by `code` (an `<svg>` or `<img>` on a page); the picture
    the camera saw is kept at `keep`."""
    if not JSQR.is_file():
        raise AssertionError(f"{JSQR} is missing: run `npm ci` in e2e/browser")
    if code.evaluate("e => e.tagName.toLowerCase()") == "svg":
        svg = code.evaluate(
            "e => { const c = e.cloneNode(true);"
            " c.setAttribute('xmlns', 'http://www.w3.org/2000/svg');"
            " return new XMLSerializer().serializeToString(c); }"
        )
        src = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    else:
        src = code.evaluate("e => e.currentSrc || e.src")
    camera = browser.new_page()
    try:
        camera.add_script_tag(content=JSQR.read_text())
        seen = camera.evaluate(SEE_AND_DECODE, src)
    finally:
        camera.close()
    keep.write_bytes(base64.b64decode(seen["png"].split(",", 1)[1]))
    if not seen["text"]:
        raise AssertionError(f"the QR code on the page could not be read (see {keep})")
    return seen["text"]
