"""The transfer of a second-hand home, end to end, as people do it in a browser.

A citizen on a phone-sized screen (390×844) registers, signs in, applies with real PDF and JPEG
files, makes the mistakes people make and fixes them, and submits. Registrars at 1280×800 sign in
with password and TOTP, each landing on the queue of their own stage, and take the case through
受理, 审核, 登簿, 缮证 and 发证: 审核 and 登簿 with the registrar's opinion (required), 登簿 and 发证
after a confirmation page; the 审核 registrar opens the photographed ID card in the browser and
shows the parties' ID numbers in full to compare. The citizen sees
the timeline, downloads the e-certificate, opens its print page and follows the QR code's link;
/verify says the new certificate is valid and the seller's old one cancelled.

The walk runs twice: with JavaScript, checking every page with axe-core; and with JavaScript
disabled (a second unit, the other district's staff). The citizen's part is counted (pages,
fields, clicks) and the figures written to target/browser-artifacts/.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from urllib.parse import urljoin

import pytest
from playwright.sync_api import expect

from conftest import DESKTOP, PHONE, assert_accessible
from owbrowser.files import make_materials
from owbrowser import qr
from owbrowser.person import Person

PASSWORD = "Qingzhou-2026!"
# A crossing of the ferry takes a few seconds on an idle machine; far longer when the disk is
# busy with other jobs. Wait long rather than fail a correct run.
PATIENCE_S = 180

WALKS = {
    "javascript": dict(
        javascript=True,
        district="370781",
        unit="370781001001GB00001F00010101",
        buyer=("张小三", "370781199001012347", "13800138000"),
    ),
    "no-javascript": dict(
        javascript=False,
        district="370702",
        unit="370702003002GB00012F00020301",
        buyer=("钱多多", "370702199503153187", "13900139000"),
    ),
}


STEP_NAMES = {
    "受理": "accepted",
    "审核通过": "reviewed",
    "登簿": "recorded",
    "缮证": "certificate-prepared",
    "发证（办结）": "issued",
}


def with_wrong_check_digit(id_number: str) -> str:
    last = id_number[-1]
    return id_number[:-1] + ("0" if last != "0" else "1")


def reload_until(person: Person, predicate, what: str) -> None:
    """Reloads the page, as a person waiting for news does, until `predicate()` holds."""
    deadline = time.monotonic() + PATIENCE_S
    while not predicate():
        assert time.monotonic() < deadline, f"waited {PATIENCE_S} s for {what}"
        time.sleep(1)
        person.page.reload()
        person.page.wait_for_load_state("load")


@pytest.mark.parametrize("walk", list(WALKS))
def test_transfer_walk(walk, stack, browser, person, artifacts, tmp_path):
    w = WALKS[walk]
    unit = stack.unit(w["unit"])
    name, id_number, phone = w["buyer"]
    files = make_materials(browser, tmp_path / "materials", unit["unit_code"])

    citizen = person("citizen", PHONE, javascript=w["javascript"])
    application_no = citizen_applies(citizen, stack, unit, name, id_number, phone, files)
    figures = citizen.write_metrics("walk-metrics")
    print(f"\n[{walk}] citizen's application walk: {json.dumps(figures, ensure_ascii=False)}")

    registrars_decide(person, stack, w, application_no)

    citizen_gets_certificate(citizen, browser, stack, unit, application_no)
    assert_accessible(person.findings)


def citizen_applies(c: Person, stack, unit, name, id_number, phone, files) -> str:
    page = c.page
    c.open(stack.portal + "/")
    c.shot("portal-home")

    # Register, with the two mistakes people make: a mistyped ID number, a password typed twice
    # differently. The page says what is wrong, keeps what was right, and the person fixes it.
    c.click(page.get_by_role("navigation").get_by_role("link", name="注册"))
    c.expect_heading("注册")
    c.fill(page.get_by_label("姓名"), name)
    c.fill(page.get_by_label("身份证号码"), with_wrong_check_digit(id_number))
    c.fill(page.get_by_label("手机号码"), phone)
    c.fill(page.get_by_label("密码", exact=False).first, PASSWORD)
    c.fill(page.get_by_label("确认密码"), PASSWORD + "x")
    c.click(page.get_by_role("button", name="注册"))
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("身份证")
    assert "请求无法确认" not in c.main_text() and "其他网站" not in c.main_text()
    c.shot("register-errors")
    expect(page.get_by_label("姓名")).to_have_value(name)
    c.retype(page.get_by_label("身份证号码"), id_number)
    c.retype(page.locator("#password"), PASSWORD)
    c.retype(page.get_by_label("确认密码"), PASSWORD)
    c.click(page.get_by_role("button", name="注册"))
    c.expect_heading("登录")
    expect(page.get_by_role("status")).to_contain_text("注册信息已提交")
    c.shot("registered")

    # Sign in, pressing Enter in the password field.
    c.fill(page.get_by_label("身份证号码或手机号码"), id_number)
    c.fill(page.get_by_label("密码"), PASSWORD)
    c.press_enter(page.get_by_label("密码"))
    expect(page.get_by_role("navigation")).to_contain_text("我的申请")
    c.shot("signed-in")

    # Start a transfer application from the home page.
    c.click(page.get_by_role("link", name="不动产登记网上一窗办事平台"))
    c.click(page.get_by_role("link", name="在线申请"))
    c.shot("apply-guide")
    c.click(page.get_by_role("button", name="开始申请二手房转移登记"))

    # The unit and the price: forgetting the price is refused with a message, then fixed.
    c.fill(page.get_by_label("不动产单元代码"), unit["unit_code"])
    c.click(page.get_by_role("button", name="保存并继续"))
    expect(page.locator(".error-summary")).to_be_visible()
    c.shot("unit-price-missing")
    c.fill(page.get_by_label("成交价格"), "1280000")
    c.click(page.get_by_role("button", name="保存并继续"))

    # The parties, one person per page: the citizen is already the first buyer (filled from
    # the account); each seller as on the certificate is added on a page of their own and saved
    # by pressing Enter (前往 on a phone keyboard).
    c.expect_heading("买卖双方")
    buyers = page.locator("section.party-side").nth(1)
    expect(buyers).to_contain_text(name)
    expect(buyers).to_contain_text(id_number)
    c.shot("parties-buyer-from-account")
    sellers = unit["holders"]
    for i, holder in enumerate(sellers):
        add = "添加出卖人" if i == 0 else "再添加一位出卖人"
        c.click(page.get_by_role("link", name=add, exact=True))
        c.fill(page.get_by_label("姓名"), holder["name"])
        c.fill(page.get_by_label("身份证号码"), holder["id_number"])
        c.fill(page.get_by_label("份额"), holder["share"])
        c.press_enter(page.get_by_label("份额"))
        c.expect_heading("买卖双方")
        expect(page.locator("section.party-side").first).to_contain_text(holder["name"])
    c.shot("parties-filled")
    c.click(page.get_by_role("button", name="保存并继续"))

    # The materials: first a text file picked by mistake (refused, nothing kept), then a real
    # PDF or JPEG for every item.
    c.expect_heading("上传材料")
    first = page.locator(".panel").filter(has=page.locator("input[type=file]")).first
    c.choose_file(first.locator("input[type=file]"), files["wrong_kind"])
    c.click(first.get_by_role("button", name="上传"))
    expect(page.locator(".error-summary")).to_be_visible()
    c.shot("materials-wrong-file")
    codes = [
        "application_form",
        "applicant_identity",
        "title_certificate",
        "sale_contract",
        "tax_receipt",
        "marital_status",
    ]
    for code in codes:
        field = page.locator(f"input[type=file][name={code}]")
        panel = page.locator(".panel").filter(has=field)
        c.choose_file(field, files[code])
        c.click(panel.get_by_role("button", name="上传"))
        expect(page.locator(".panel").filter(has=page.locator(f"input[name={code}]"))).to_contain_text(
            files[code].name
        )
    c.shot("materials-uploaded")
    c.click(page.get_by_role("link", name="下一步：核对信息"))
    c.expect_heading("核对信息")
    # The citizen sees the ID numbers as typed, in full, and the unit's address.
    main = page.locator("main")
    expect(main).to_contain_text("坐落")
    expect(main).to_contain_text(id_number)
    for holder in sellers:
        expect(main).to_contain_text(holder["id_number"])
    c.shot("check")
    c.tick(page.get_by_label("本人已阅读并同意以上承诺"))
    c.click(page.get_by_role("button", name="确认提交"))
    # The confirmation panel: the number, what happens next, the time limit, how to hear.
    c.expect_heading("申请已提交")
    panel = page.locator(".confirmation-panel")
    expect(panel).to_be_visible()
    number = panel.locator(".application-no").inner_text().strip()
    match = re.fullmatch(r"[0-9A-Z-]{8,}", number)
    assert match, f"no application number in the confirmation panel: {number!r}"
    for words in ["接下来会怎样", "30个工作日", "如何得到通知"]:
        expect(main).to_contain_text(words)
    c.shot("submitted")
    return match.group(0)


def sign_in_staff(person, stack, district: str, role: str, javascript: bool) -> Person:
    staff = stack.staff(district, role)
    r = person(f"registrar-{role}", DESKTOP, javascript=javascript)
    page = r.page
    r.open(stack.office + "/login")
    r.fill(page.get_by_label("用户名"), staff["username"])
    r.fill(page.get_by_label("密码"), staff["password"])
    r.click(page.get_by_role("button", name="下一步"))
    r.fill(page.get_by_label(re.compile("动态口令|验证码")), stack.totp_code(staff))
    r.click(page.get_by_role("button", name="登录"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("业务队列")
    return r


# The queue each role lands on after signing in: its own stage(s), not 已提交.
OWN_QUEUE = {
    "accept": "待受理",
    "review": "待审核",
    "record": "待登簿",
    "certificate": "待缮证",
}
# The registrar's opinion on each step that requires one (审核意见, 登簿意见).
OPINIONS = {
    "review": ("审核意见", "申请材料齐全，身份证明与申请人一致，同意登簿。"),
    "record": ("登簿意见", "经核对登记簿与规则检查，同意登簿。"),
}
# The steps that cannot be undone answer with a confirmation page first (登簿, 发证).
CONFIRMED = {"登簿", "发证（办结）"}


def registrars_decide(person, stack, w, application_no: str) -> None:
    steps = [
        ("accept", "accept", "受理", "accepted"),
        ("review", "review", "审核通过", "reviewed"),
        ("record", "record", "登簿", "recorded"),
        ("certificate", "prepare", "缮证", "certificate_prepared"),
        ("certificate", "issue", "发证（办结）", "completed"),
    ]
    signed_in: dict[str, Person] = {}
    for role, code, button, status in steps:
        if role not in signed_in:
            signed_in[role] = sign_in_staff(person, stack, w["district"], role, w["javascript"])
            # Each registrar lands on the queue of their own stage.
            expect(signed_in[role].page.locator("#queue-heading")).to_contain_text(OWN_QUEUE[role])
        r = signed_in[role]
        page = r.page
        on_case = application_no in page.get_by_role("heading", level=1).inner_text()
        if not on_case:
            # The case is in this registrar's own queue, without looking through 全部业务.
            menu = page.get_by_role("navigation", name="主菜单")
            r.click(menu.get_by_role("link", name="业务队列"))
            case_link = page.get_by_role("link", name=application_no)
            reload_until(r, lambda: case_link.count() > 0, f"{application_no} in the queue")
            row = page.locator(f"tr[data-case='{application_no}']")
            expect(row).to_contain_text(OWN_QUEUE[role])
            expect(row).not_to_contain_text(w["buyer"][1])
            r.shot(f"queue-{role}")
            r.click(case_link)
        if role == "accept":
            r.shot("case-received")
        if role == "review":
            registrar_checks_identity(r, w)
        if role == "record":
            expect(page.locator("#rules-ok")).to_be_visible()
        form = page.locator(f"#action-{code}")
        submit = form.get_by_role("button", name=re.compile("^" + re.escape(button) + "…?$"))
        if role in OPINIONS:
            label, text = OPINIONS[role]
            # The opinion is required: without it the form is not sent and nothing happens.
            r.click(submit)
            expect(page.locator("#case-status")).not_to_have_attribute("data-status", status)
            r.fill(form.get_by_label(label), text)
        r.click(submit)
        if button in CONFIRMED:
            # A page of its own, working without JavaScript, says what cannot be undone.
            expect(page.locator("#confirm-heading")).to_contain_text("确认" + button)
            expect(page.locator("#case-status")).to_have_count(0)
            r.shot(f"confirm-{STEP_NAMES[button]}")
            r.click(page.get_by_role("button", name="确认" + button))
        expect(page.locator("#case-status")).to_have_attribute("data-status", status)
        expect(page.locator(".notice.error")).to_have_count(0)
        if role in OPINIONS:
            label, text = OPINIONS[role]
            history = page.locator(".timeline .opinion").filter(has_text=label)
            expect(history).to_contain_text(text)
        r.shot(f"case-{STEP_NAMES[button]}")


def registrar_checks_identity(r: Person, w) -> None:
    """The district's registrar opens the photographed ID card in the browser (inline, sandboxed,
    with its real name) and shows the parties' ID numbers in full to compare them."""
    page = r.page
    _, id_number, _ = w["buyer"]
    ids = page.locator(".party-id")
    expect(ids.first).to_be_visible()
    assert id_number not in page.locator("main").inner_text(), "the ID number is shown unmasked"

    card = page.locator("a.material", has_text="身份证明.jpg")
    expect(card).to_have_attribute("target", "_blank")
    with page.context.expect_event(
        "response", predicate=lambda resp: "/materials/" in resp.url
    ) as answered, page.context.expect_page() as opened:
        card.click()
    response = answered.value
    headers = response.headers
    assert response.status == 200, response.status
    assert headers["content-type"] == "image/jpeg", headers
    assert headers["content-disposition"].startswith("inline; "), headers
    # The real file name, 身份证明.jpg, percent-encoded.
    real_name = "filename*=UTF-8''%E8%BA%AB%E4%BB%BD%E8%AF%81%E6%98%8E.jpg"
    assert real_name in headers["content-disposition"], headers
    assert "sandbox" in headers["content-security-policy"], headers
    assert headers["x-content-type-options"] == "nosniff", headers
    viewer = opened.value
    viewer.wait_for_load_state("load")
    # Chromium shows the picture itself, not a download.
    expect(viewer.locator("img")).to_have_count(1)
    viewer.screenshot(path=str(r.artifacts / "material-inline.png"))
    viewer.close()

    # A PDF opens in the browser as well; a download would say attachment.
    pdf = page.locator("a.material", has_text="存量房买卖合同.pdf")
    expect(pdf).not_to_have_attribute("download", "")
    answer = page.request.get(urljoin(page.url, pdf.get_attribute("href")))
    assert answer.headers["content-type"] == "application/pdf", answer.headers
    assert answer.headers["content-disposition"].startswith("inline; "), answer.headers

    r.click(page.locator("#show-full-ids"))
    expect(page.locator("#ids-full")).to_be_visible()
    expect(ids.filter(has_text=id_number)).to_have_count(1)
    r.shot("ids-full")
    r.click(page.get_by_role("link", name="恢复遮蔽显示"))
    expect(page.locator("#show-full-ids")).to_be_visible()


def citizen_gets_certificate(c: Person, browser, stack, unit, application_no: str) -> None:
    page = c.page
    c.click(page.get_by_role("navigation").get_by_role("link", name="我的申请"))
    c.click(page.get_by_role("link", name=application_no))
    timeline = page.locator(".timeline")
    reload_until(c, lambda: "办结" in timeline.inner_text(), "the timeline to reach 办结")
    for step in ["受理", "审核", "登簿", "缮证", "办结"]:
        expect(timeline).to_contain_text(step)
    # The back office's receipt is its own step, not a supplement with a "reason".
    expect(timeline).to_contain_text("登记机构已收到")
    expect(timeline).not_to_contain_text("补正")
    expect(timeline).not_to_contain_text("原因")
    c.shot("timeline-done")

    c.click(page.get_by_role("navigation").get_by_role("link", name="我的证书"))
    download_link = page.get_by_role("link", name="电子证照文件")
    reload_until(c, lambda: download_link.count() > 0, "the certificate")
    c.shot("certificates")
    with page.expect_download() as download:
        c.click(download_link.first)
    certificate = json.loads(Path(download.value.path()).read_text())
    certificate_number = find_certificate_number(certificate)
    assert certificate_number != unit["certificate_number"]
    expect(page.locator("main")).to_contain_text(certificate_number)

    # The e-certificate as a PDF a phone can open, with the signed file inside: /verify takes it.
    with page.expect_download() as download:
        c.click(page.get_by_role("link", name="PDF 电子证书").first)
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF-"), pdf[:16]
    assert download.value.suggested_filename.endswith(".pdf"), download.value.suggested_filename
    pdf_file = c.artifacts / "certificate.pdf"
    pdf_file.write_bytes(pdf)

    c.click(page.get_by_role("link", name="查看 / 打印").first)
    c.shot("certificate-print")
    expect(page.locator("main, body").first).to_contain_text(certificate_number)
    # On a phone the whole certificate shows: nothing is wider than the screen.
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, f"the certificate page is {overflow} px wider than the phone"
    sheet = page.locator(".sheet").bounding_box()
    assert sheet and sheet["x"] >= 0 and sheet["x"] + sheet["width"] <= PHONE["width"] + 1, sheet
    # The QR code, read off the screen as a phone camera reads it, leads to /verify.
    link = qr.read(browser, page.locator(".qr svg, .qr img").first, c.artifacts / "qr-seen.png")
    assert link.startswith(stack.portal + "/verify"), f"the QR code says {link!r}"
    c.open(link)
    expect(page.locator("main")).to_contain_text("有效")
    expect(page.locator("main")).to_contain_text(certificate_number)
    c.shot("verify-new-valid")

    # The seller's old certificate, checked by hand with its number and verification code.
    c.open(stack.portal + "/verify")
    c.fill(page.get_by_label("证书编号"), unit["certificate_number"])
    c.fill(page.get_by_label("验证码"), unit["verification_code"])
    c.click(page.get_by_role("button", name="查验", exact=True))
    expect(page.locator("main")).to_contain_text("已注销")
    c.shot("verify-old-cancelled")

    # The PDF, uploaded as a bank or a notary would check it.
    c.open(stack.portal + "/verify")
    c.choose_file(page.get_by_label("电子证书文件"), pdf_file)
    c.click(page.get_by_role("button", name="上传查验"))
    expect(page.locator("main")).to_contain_text("有效")
    expect(page.locator("main")).to_contain_text(certificate_number)
    c.shot("verify-pdf-valid")


def find_certificate_number(document) -> str:
    """The certificate number in a downloaded e-certificate file (wherever the format keeps it)."""
    text = json.dumps(document, ensure_ascii=False)
    match = re.search(r"[\u4e00-\u9fa5]\(\d{4}\)[^\"]*?第\d{7}号", text)
    assert match, "no certificate number in the downloaded e-certificate"
    return match.group(0)
