"""What people stumbled on in the portal's application pages, each checked in Chromium on a
phone-sized screen (the whole transfer is walked in test_walk.py):

* pressing Enter (前往 on a phone keyboard) on a person's page saves that person, and people are
  added and removed one at a time, with a question before removing;
* every error is in the summary and beside its field, the title starts with 错误：, and each
  summary link lands on its field — on the same page or on the page that has it;
* the check page shows the ID numbers the citizen typed, in full, with the declaration;
* deleting a draft asks first and says afterwards that it was deleted;
* /verify with the right number and a wrong code says that they do not match, not 非真实证书.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conftest import PHONE, assert_accessible
from owbrowser.files import make_materials
from owbrowser.person import Person

PASSWORD = "Qingzhou-2026!"
UNIT = "370781001001GB00001F00010101"
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def id_number(prefix17: str) -> str:
    """A valid 18-character ID number (GB 11643 check character) from 17 digits."""
    total = sum(int(d) * w for d, w in zip(prefix17, WEIGHTS))
    return prefix17 + "10X98765432"[total % 11]


CITIZEN = ("孙一一", id_number("37078119850505201"), "13700137001")
SELLER_1 = ("周大山", id_number("37078119600101301"), "1")
SELLER_2 = ("吴小山", id_number("37078119620202402"), "1/2")


def register_and_sign_in(c: Person, stack, name: str, id_no: str, phone: str) -> None:
    page = c.page
    c.open(stack.portal + "/register")
    c.fill(page.get_by_label("姓名"), name)
    c.fill(page.get_by_label("身份证号码"), id_no)
    c.fill(page.get_by_label("手机号码"), phone)
    c.fill(page.locator("#password"), PASSWORD)
    c.fill(page.get_by_label("确认密码"), PASSWORD)
    c.click(page.get_by_role("button", name="注册"))
    c.expect_heading("登录")
    c.fill(page.get_by_label("身份证号码或手机号码"), id_no)
    c.fill(page.get_by_label("密码"), PASSWORD)
    c.press_enter(page.get_by_label("密码"))
    expect(page.get_by_role("navigation")).to_contain_text("我的申请")


def focused_id(c: Person) -> str:
    return c.page.evaluate("() => document.activeElement && document.activeElement.id")


def assert_error_beside(c: Person, field: str) -> None:
    """The field is marked invalid and described by the message beside it; the title says 错误."""
    page = c.page
    assert page.title().startswith("错误："), page.title()
    target = page.locator(f"#{field}")
    expect(target).to_have_attribute("aria-invalid", "true")
    described = target.get_attribute("aria-describedby") or ""
    assert f"{field}-error" in described.split(), described
    expect(page.locator(f"#{field}-error")).to_be_visible()


def person_page(c: Person, link_name: str, who: tuple[str, str, str]) -> None:
    """Adds a person from the parties page: types them in, then presses Enter (前往)."""
    page = c.page
    c.click(page.get_by_role("link", name=link_name, exact=True))
    name, id_no, share = who
    c.fill(page.get_by_label("姓名"), name)
    c.fill(page.get_by_label("身份证号码"), id_no)
    c.fill(page.get_by_label("份额"), share)
    c.press_enter(page.get_by_label("份额"))
    c.expect_heading("买卖双方")


def test_people_errors_check_and_delete(stack, browser, person, tmp_path):
    c = person("citizen-pages", PHONE)
    page = c.page
    name, own_id, phone = CITIZEN
    register_and_sign_in(c, stack, name, own_id, phone)
    c.open(stack.portal + "/apply")
    c.click(page.get_by_role("button", name="开始申请二手房转移登记"))

    # The unit page, Enter pressed before the price is typed: the error is in the summary and
    # beside the field, and the summary's link puts the cursor in the field.
    c.fill(page.get_by_label("不动产单元代码"), UNIT)
    c.press_enter(page.get_by_label("不动产单元代码"))
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    assert_error_beside(c, "price_yuan")
    c.click(summary.get_by_role("link").first)
    assert focused_id(c) == "price_yuan"
    c.shot("unit-error-link-focused")
    c.fill(page.get_by_label("成交价格"), "980000")
    c.press_enter(page.get_by_label("成交价格"))

    # The parties: the citizen is already the first buyer, from the account.
    c.expect_heading("买卖双方")
    buyers = page.locator("section.party-side").nth(1)
    expect(buyers).to_contain_text(name)
    expect(buyers).to_contain_text(own_id)

    # A seller typed without an ID number, Enter pressed in the name: the person's page stays,
    # says what is missing beside the field, and keeps the name.
    c.click(page.get_by_role("link", name="添加出卖人", exact=True))
    c.fill(page.get_by_label("姓名"), SELLER_1[0])
    c.press_enter(page.get_by_label("姓名"))
    assert_error_beside(c, "id_number")
    expect(page.get_by_label("姓名")).to_have_value(SELLER_1[0])
    c.click(page.locator(".error-summary").get_by_role("link").first)
    assert focused_id(c) == "id_number"
    c.fill(page.get_by_label("身份证号码"), SELLER_1[1])
    c.fill(page.get_by_label("份额"), SELLER_1[2])
    c.press_enter(page.get_by_label("份额"))
    c.expect_heading("买卖双方")
    sellers = page.locator("section.party-side").first
    expect(sellers).to_contain_text(SELLER_1[0])

    # A second seller, added by mistake, then removed after the question.
    person_page(c, "再添加一位出卖人", SELLER_2)
    expect(sellers).to_contain_text(SELLER_2[0])
    c.shot("parties-two-sellers")
    c.click(sellers.get_by_role("link", name=re.compile(r"^删除\s*第2位出卖人$")))
    c.expect_heading("删除")
    expect(page.locator("main")).to_contain_text(SELLER_2[0])
    c.click(page.get_by_role("button", name="确认删除"))
    c.expect_heading("买卖双方")
    expect(page.get_by_role("status")).to_be_visible()
    expect(sellers).not_to_contain_text(SELLER_2[0])
    expect(sellers).to_contain_text(SELLER_1[0])
    c.click(page.get_by_role("button", name="保存并继续"))
    c.expect_heading("上传材料")

    # An upload error sits beside that item's own file field, and its link lands there.
    files = make_materials(browser, tmp_path / "materials", UNIT)
    first = page.locator(".panel").filter(has=page.locator("input[type=file]")).first
    c.choose_file(first.locator("input[type=file]"), files["wrong_kind"])
    c.click(first.get_by_role("button", name="上传"))
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    href = summary.get_by_role("link").first.get_attribute("href") or ""
    field = href.split("#", 1)[1]
    assert field.startswith("material_"), href
    assert_error_beside(c, field)
    c.click(summary.get_by_role("link").first)
    assert focused_id(c) == field

    # The check page, with materials missing: the IDs in full, the address of the unit; the
    # summary links to the materials page, to the missing item's field.
    c.click(page.get_by_role("link", name="下一步：核对信息"))
    c.expect_heading("核对信息")
    assert page.title().startswith("错误：")
    main = page.locator("main")
    expect(main).to_contain_text(own_id)
    expect(main).to_contain_text(SELLER_1[1])
    expect(main).to_contain_text("坐落")
    c.shot("check-in-full")
    draft = page.url.split("/check")[0]
    c.click(page.locator(".error-summary a[href*='/materials']").first)
    c.expect_heading("上传材料")
    field = page.url.split("#", 1)[1]
    assert field.startswith("material_"), page.url
    assert focused_id(c) == field

    # Deleting the draft asks first, then says it is done.
    c.open(draft + "/unit")
    c.click(page.get_by_role("link", name="删除这份草稿"))
    c.expect_heading("删除这份草稿？")
    c.click(page.get_by_role("button", name="确认删除草稿"))
    c.expect_heading("我的申请")
    expect(page.get_by_role("status")).to_contain_text("已删除")
    c.shot("draft-deleted")
    assert_accessible(person.findings)


def test_verify_with_a_wrong_code_says_they_do_not_match(stack, person):
    c = person("verify-wrong-code", PHONE)
    page = c.page
    units = stack.seed["units"]
    mine, other = units[0], units[1]
    c.open(stack.portal + "/verify")
    c.fill(page.get_by_label("证书编号"), mine["certificate_number"])
    c.fill(page.get_by_label("验证码"), other["verification_code"])
    c.click(page.get_by_role("button", name="查验", exact=True))
    main = page.locator("main")
    expect(main).to_contain_text("证书编号与验证码不匹配")
    expect(main).not_to_contain_text("非真实证书")
    c.shot("verify-no-match")
    assert_accessible(person.findings)
