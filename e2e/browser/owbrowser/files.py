"""The files a citizen uploads: real PDF and JPEG documents, made by the same Chromium that runs
the suite (print to PDF, a JPEG screenshot), so no image or PDF library is needed and nothing
binary is committed."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser

DOCUMENT = """<!doctype html><html lang="zh-CN"><meta charset="utf-8">
<body style="font-family: sans-serif; margin: 2rem">
<h1 style="font-size: 20px">{title}</h1>
<p>演示材料：本文件由浏览器端到端测试生成，不含真实个人信息。</p>
<table border="1" cellpadding="6"><tr><td>不动产单元</td><td>{unit}</td></tr></table>
</body></html>"""


def make_materials(browser: Browser, folder: Path, unit: str) -> dict[str, Path]:
    """A PDF for each written document and a JPEG for the photographed identity card; and a
    text file, the wrong kind of file a person may pick by mistake."""
    folder.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 600, "height": 400})
    made: dict[str, Path] = {}
    for key, title, kind in [
        ("application_form", "不动产登记申请书", "pdf"),
        ("applicant_identity", "身份证明", "jpg"),
        ("title_certificate", "不动产权证书", "pdf"),
        ("sale_contract", "存量房买卖合同", "pdf"),
        ("tax_receipt", "完税证明", "pdf"),
        ("marital_status", "婚姻状况证明", "jpg"),
    ]:
        page.set_content(DOCUMENT.format(title=title, unit=unit))
        path = folder / f"{title}.{kind}"
        if kind == "pdf":
            page.pdf(path=str(path), format="A4")
            assert path.read_bytes().startswith(b"%PDF-")
        else:
            page.screenshot(path=str(path), type="jpeg", quality=80)
            assert path.read_bytes().startswith(b"\xff\xd8\xff")
        made[key] = path
    page.close()
    wrong = folder / "说明.txt"
    wrong.write_text("这不是扫描件，而是一个文本文件。\n", encoding="utf-8")
    made["wrong_kind"] = wrong
    return made
