"""首次登记 on the portal, in Chromium on a phone-sized screen, as a citizen with a survey file
from the surveyor goes through it:

* the apply page offers 首次登记 beside the transfer; the unit step asks for the district (no unit
  code: the surveyor assigns it), the parties step for the applicants only;
* a 界址点坐标 TXT with a garbage line is refused on upload with the line number (第N行) beside
  the survey item, and nothing is kept;
* a parcel over 6 km² is refused online with the message to bring it to the counter;
* the surveyor's good file, in GBK as surveyors' tools write it, is accepted and listed.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conftest import PHONE, assert_accessible
from owbrowser.person import Person
from test_portal_pages import id_number, register_and_sign_in

CITIZEN = ("钱二二", id_number("37078119880808202"), "13700137002")
SURVEY_ITEM = "不动产权籍调查表、宗地图及宗地界址点坐标"


def boundary_txt(width_m: float, height_m: float, garbage: bool = False) -> str:
    """A one-parcel 界址点坐标 TXT (domain facts §3.8): zone 38, a rectangle of the given size."""
    north, east = 3_380_000.0, 38_500_000.0
    hectares = width_m * height_m / 10_000
    points = [
        (north, east),
        (north, east + width_m),
        (north - height_m, east + width_m),
        (north - height_m, east),
    ]
    lines = [
        "[属性描述]",
        "格式版本号=1.01版本",
        "坐标系=2000国家大地坐标系",
        "几度分带=3",
        "投影类型=高斯克吕格",
        "计量单位=米",
        "带号=38",
        "[地块坐标]",
        f"5,{hectares:.4f},D001,示范新建地块,面,,070101,0701,@",
    ]
    for i, (x, y) in enumerate(points + points[:1]):
        lines.append(f"J{i % 4 + 1},1,{x:.3f},{y:.3f}")
        if garbage and i == 1:
            lines.append("这一行不是界址点")
    return "\r\n".join(lines) + "\r\n"


def survey_panel(c: Person):
    page = c.page
    return page.locator(".panel").filter(has=page.get_by_role("heading", name=re.compile(SURVEY_ITEM)))


def upload_survey(c: Person, path) -> None:
    panel = survey_panel(c)
    c.choose_file(panel.locator("input[type=file]"), path)
    c.click(panel.get_by_role("button", name="上传"))


def test_first_registration_with_a_survey_file(stack, person, tmp_path):
    c = person("citizen-first-registration", PHONE)
    page = c.page
    name, own_id, phone = CITIZEN
    register_and_sign_in(c, stack, name, own_id, phone)

    # The apply page offers both businesses; the citizen starts the first registration.
    c.open(stack.portal + "/apply")
    expect(page.get_by_role("button", name="开始申请二手房转移登记")).to_be_visible()
    c.click(page.get_by_role("button", name=re.compile(r"^开始申请.*首次登记$")))

    # No unit code: the district of the new building, then the applicants only.
    c.expect_heading("不动产信息")
    expect(page.get_by_label("不动产单元代码")).to_have_count(0)
    page.get_by_label("不动产所在区县").select_option("370781")
    c.click(page.get_by_role("button", name="保存并继续"))
    c.expect_heading(re.compile("权利人"))
    expect(page.locator("main")).to_contain_text(name)
    expect(page.get_by_role("link", name=re.compile("出卖人"))).to_have_count(0)
    c.shot("applicants-only")
    c.click(page.get_by_role("button", name="保存并继续"))
    c.expect_heading("上传材料")

    # A garbage line: refused with its line number beside the survey item; nothing is listed.
    bad = tmp_path / "界址点坐标-有误.txt"
    bad.write_text(boundary_txt(100, 50, garbage=True), encoding="utf-8")
    upload_survey(c, bad)
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text(re.compile(r"第\d+行"))
    assert page.title().startswith("错误："), page.title()
    expect(survey_panel(c).locator("li")).to_have_count(0)
    c.shot("survey-line-number")

    # Over 6 km²: not online — to the counter.
    huge = tmp_path / "界址点坐标-大宗地.txt"
    huge.write_text(boundary_txt(3000, 2500), encoding="utf-8")
    upload_survey(c, huge)
    expect(page.locator(".error-summary")).to_contain_text("登记窗口")
    expect(survey_panel(c).locator("li")).to_have_count(0)
    c.shot("survey-counter-only")

    # The surveyor's file, GBK-encoded: accepted and listed under the item.
    good = tmp_path / "界址点坐标.txt"
    good.write_bytes(boundary_txt(100, 50).encode("gbk"))
    upload_survey(c, good)
    expect(survey_panel(c).locator("li")).to_have_count(1)
    expect(survey_panel(c)).to_contain_text("界址点坐标.txt")
    c.shot("survey-accepted")
    assert_accessible(person.findings)
