"""The registry in the console, in headless Chromium against a real `gridsync serve`:
a roster uploaded with a bad row answers with the Chinese row-by-row report and
imports nothing, a good one imports; search by two Chinese characters and by the last
digits of an ID number (posted, never in the URL); a person's full ID number for the
community dispatcher (recorded in the audit log) and masked for the town dispatcher;
visit coverage; the masked export; a department handler refused. Needs no bindings:
everything is done through the console and `gridsync admin`."""

import pathlib
import tempfile
import urllib.request

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from support import admin, browser, click_and_wait, relay, shot, sign_in  # noqa: F401 (fixtures)

GRID = "339901001001001"
COMMUNITY = "cd-339901001001"
TOWN = "td-339901001"
HANDLER = "h-water-1"
PASSWORD = "registry-2026-pass"
HEADER = "网格编码,地址,姓名,性别,身份证号,联系电话,与户主关系,特殊人群,备注"


def resident_id(n, male=True):
    """A valid 18-digit ID number (GB 11643 check digit)."""
    first17 = f"330106{1940 + n}0315{n % 10}{n % 10}{1 if male else 2}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(c) * w for c, w in zip(first17, weights))
    return first17 + "10X98765432"[total % 11]


ZHANG = resident_id(1)
LI = resident_id(2, male=False)
WANG = resident_id(3)


def upload(driver, url, path):
    driver.get(url + "/console/registry/import")
    form = driver.find_element(By.ID, "import-form")
    form.find_element(By.NAME, "file").send_keys(str(path))
    click_and_wait(driver, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))


def search(driver, url, **fields):
    driver.get(url + "/console/registry")
    form = driver.find_element(By.ID, "registry-search")
    for name, value in fields.items():
        element = form.find_element(By.NAME, name)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            element.send_keys(value)
    click_and_wait(driver, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    # Posted: what was typed is in no URL.
    assert driver.current_url.endswith("/console/registry/search"), driver.current_url
    return [row.text for row in driver.find_elements(By.CSS_SELECTOR, "#persons tr")[1:]]


def roster(folder, name, rows):
    path = pathlib.Path(folder) / name
    path.write_text("\ufeff" + HEADER + "\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def test_roster_upload_search_detail_coverage_and_masked_export(relay, browser):
    data, url = relay
    for user in [COMMUNITY, TOWN, HANDLER]:
        admin(data, "password", "--user", user, stdin=PASSWORD + "\n")
    folder = tempfile.mkdtemp()
    good = [
        f"{GRID},望湖小区3号楼2单元301,张建国,男,{ZHANG},13812345678,户主,独居老人,",
        f"{GRID},望湖小区3号楼2单元301,李秀英,女,{LI},,配偶,,",
        f"{GRID},望湖小区5号楼101,王建平,,{WANG},,户主,低保,",
    ]
    bad_id = ZHANG[:17] + ("1" if ZHANG[17] != "1" else "2")
    bad = roster(folder, "坏名册.csv", [good[0], f"{GRID},望湖小区3号楼2单元301,李秀英,女,{bad_id},,配偶,贫困户,"])

    sign_in(browser, url, COMMUNITY, PASSWORD)
    upload(browser, url, bad)
    report = browser.find_element(By.ID, "import-report").text
    shot(browser, "registry-import-report")
    assert "未导入任何数据" in report, report
    assert "第 3 行「身份证号」" in report and "校验位" in report, report
    assert "第 3 行「特殊人群」" in report, report
    assert bad_id not in browser.page_source and ZHANG not in browser.page_source
    # Nothing was imported, not even the good first row.
    browser.get(url + "/console/registry")
    assert browser.find_elements(By.ID, "no-results")

    upload(browser, url, roster(folder, "花名册.csv", good))
    done = browser.find_element(By.ID, "import-done").text
    assert "新建 2 户、3 人" in done, done
    upload(browser, url, roster(folder, "花名册.csv", good))
    assert "3 人无变化" in browser.find_element(By.ID, "import-done").text

    # Search by two Chinese characters, and by the last four digits of an ID number.
    rows = search(browser, url, name="建国")
    assert len(rows) == 1 and "张建国" in rows[0], rows
    assert ZHANG[:4] + "**********" + ZHANG[14:] in rows[0] and ZHANG not in rows[0]
    rows = search(browser, url, id_suffix=WANG[-4:])
    assert len(rows) == 1 and "王建平" in rows[0], rows
    search(browser, url, address="5号楼")
    assert "望湖小区5号楼101" in browser.find_element(By.ID, "households").text
    shot(browser, "registry-search")

    # The person in full for the community dispatcher, recorded in the audit log.
    search(browser, url, name="张建国")
    click_and_wait(browser, browser.find_element(By.LINK_TEXT, "张建国"))
    person_url = browser.current_url
    assert browser.find_element(By.ID, "id-number").text == ZHANG
    assert browser.find_element(By.ID, "phone").text == "13812345678"
    assert "审计" in browser.find_element(By.ID, "identity-note").text
    shot(browser, "registry-person-full")
    audit = admin(data, "audit")
    doc_id = person_url.rsplit("/", 1)[1]
    assert f"{COMMUNITY}\tidentity_view\t{doc_id}" in audit, audit
    assert ZHANG not in audit and "13812345678" not in audit

    # The household: members and head.
    click_and_wait(browser, browser.find_element(By.LINK_TEXT, "望湖小区3号楼2单元301"))
    assert browser.find_element(By.ID, "head").text == "张建国"
    assert "李秀英" in browser.find_element(By.ID, "persons").text

    # Coverage for this month: the grid's two households, none visited yet.
    browser.get(url + "/console/registry/coverage")
    cells = browser.find_element(By.CSS_SELECTOR, "#coverage-grids tr:nth-child(2)").text
    assert "望湖社区第1网格" in cells and " 2 0 " in f" {cells} ", cells
    browser.get(url + "/console/registry/follow-up?due=1")
    follow = browser.find_element(By.ID, "follow-up").text
    assert "张建国" in follow and "王建平" in follow and "从未走访" in follow
    shot(browser, "registry-follow-up")

    # The export: masked, scoped to the dispatcher's region.
    cookie = browser.get_cookie("gs_session")["value"]
    request = urllib.request.Request(url + "/console/registry/export.csv",
                                     headers={"Cookie": f"gs_session={cookie}"})
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 200
        assert "attachment" in answer.headers["Content-Disposition"]
        exported = answer.read().decode("utf-8-sig")
    assert exported.count("\n") == 4, exported
    for number in [ZHANG, LI, WANG, "13812345678"]:
        assert number not in exported
    assert ZHANG[:4] + "**********" + ZHANG[14:] in exported and "138****5678" in exported

    # The town dispatcher sees the same person masked.
    sign_in(browser, url, TOWN, PASSWORD)
    browser.get(person_url)
    assert browser.find_element(By.ID, "id-number").text == ZHANG[:4] + "**********" + ZHANG[14:]
    assert browser.find_element(By.ID, "phone").text == "138****5678"
    assert ZHANG not in browser.page_source
    shot(browser, "registry-person-masked")

    # A department handler sees none of it.
    sign_in(browser, url, HANDLER, PASSWORD)
    assert not browser.find_elements(By.LINK_TEXT, "人口与房屋")
    for path in ["/console/registry", person_url.removeprefix(url), "/console/registry/export.csv"]:
        browser.get(url + path)
        assert "部门处置人员不能查看网格基础信息" in browser.page_source, path
        assert ZHANG[14:] not in browser.page_source
