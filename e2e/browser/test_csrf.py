"""Forms and request forgery, in a real browser: the portal's own register and login forms work
in an unmodified Chromium (which posts them with the Origin the referrer policy allows), and the
same forms posted from another site are refused."""

from __future__ import annotations

from playwright.sync_api import expect

from conftest import PHONE

PASSWORD = "Weicheng-2026!"
# A demo buyer of the seeding that no walk registers.
NAME, ID_NUMBER, PHONE_NUMBER = "李小四", "370781199202021266", "13700137000"
FORGED = "请求来自其他网站"


def test_register_and_login_in_chromium(stack, person):
    c = person("citizen", PHONE)
    page = c.page
    posts = []
    page.on(
        "request",
        lambda r: posts.append(r.headers.get("origin")) if r.method == "POST" else None,
    )
    c.open(stack.portal + "/register")
    c.fill(page.get_by_label("姓名"), NAME)
    c.fill(page.get_by_label("身份证号码"), ID_NUMBER)
    c.fill(page.get_by_label("手机号码"), PHONE_NUMBER)
    c.fill(page.locator("#password"), PASSWORD)
    c.fill(page.get_by_label("确认密码"), PASSWORD)
    c.click(page.get_by_role("button", name="注册"))
    assert "请求无法确认" not in c.main_text() and FORGED not in c.main_text(), (c.main_text(), posts)
    expect(page.get_by_role("status")).to_contain_text("注册信息已提交")
    c.fill(page.get_by_label("身份证号码或手机号码"), PHONE_NUMBER)
    c.fill(page.get_by_label("密码"), PASSWORD)
    c.click(page.get_by_role("button", name="登录"))
    assert FORGED not in c.main_text(), c.main_text()
    expect(page.get_by_role("button", name="退出登录")).to_be_visible()
    c.shot("signed-in")
    # The browser named this site as the forms' origin (not "null").
    assert posts and all(o == stack.portal for o in posts), posts


def test_a_form_posted_from_another_site_is_refused(stack, person):
    """A page on another site that posts the portal's login form: the browser sends that site's
    origin, and the portal refuses the request whatever the form carries."""
    c = person("visitor", PHONE)
    page = c.page
    attacker = "http://attacker.invalid/"
    forged_form = f"""<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>优惠活动</title>
    <form method="post" action="{stack.portal}/login">
      <input name="login" value="{ID_NUMBER}"><input name="password" value="{PASSWORD}">
      <input name="csrf" value="guessed"><button type="submit">领取</button>
    </form></html>"""
    page.route(attacker, lambda route: route.fulfill(content_type="text/html", body=forged_form))
    # The visitor has the portal open in the same browser (so it holds its cookies).
    c.open(stack.portal + "/login")
    c.check_a11y = False  # the other site's page is not ours to check
    c.open(attacker)
    c.click(page.get_by_role("button", name="领取"))
    expect(page.locator("main")).to_contain_text(FORGED)
    c.shot("forged-login-refused")
