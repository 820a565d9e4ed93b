"""The resident channel in headless Chromium against a real `gridsync serve`, in a
phone-sized window with a WeChat-like user agent: a resident reports with a photo
and the phone's position (the page's own script does the proof of work), the
community dispatcher accepts it, the loop runs in the console, the resident follows
it with the tracking code and scores it; then a bounded burst from the same phone
meets the rate limit with its Chinese message. Needs no bindings."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from support import ROOT, admin, chromium, click_and_wait, relay, shot, sign_in  # noqa: F401 (relay is a fixture)

PHOTO = ROOT / "bindings" / "tests" / "python" / "photo.jpg"
HERE = (30.2741, 120.1551)  # in grid 339901001001001
DISPATCHER = "cd-339901001001"
HANDLER = "h-water-1"
WORKER = "w-339901001001001"
PASSWORD = "resident-2026-pass"
WECHAT = ("Mozilla/5.0 (Linux; Android 10; M2006C3LC) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Version/4.0 Chrome/86.0.4240.99 XWEB/4317 MMWEBSDK/20220903 Mobile Safari/537.36 "
          "MicroMessenger/8.0.28.2240(0x28001C35) WeChat/arm64 Weixin NetType/4G Language/zh_CN")


@pytest.fixture()
def phone():
    driver = chromium(mobile={
        "deviceMetrics": {"width": 360, "height": 740, "pixelRatio": 2.0},
        "userAgent": WECHAT,
    })
    yield driver
    driver.quit()


def act(driver, url, case, action, **fields):
    driver.get(f"{url}/console/cases/{case}")
    form = driver.find_element(By.CSS_SELECTOR, f'form[data-action="{action}"]')
    for name, value in fields.items():
        element = form.find_element(By.NAME, name)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)
    click_and_wait(driver, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert driver.find_element(By.ID, "flash").text.startswith("操作已完成")


def fill_report(driver, url, description, locate=False, photo=None):
    driver.get(url + "/r")
    form = driver.find_element(By.ID, "report")
    Select(form.find_element(By.NAME, "category")).select_by_value("livelihood")
    form.find_element(By.NAME, "description").send_keys(description)
    if locate:
        driver.find_element(By.ID, "locate").click()
        WebDriverWait(driver, 15).until(
            lambda d: d.find_element(By.ID, "where").text.startswith("已定位"))
    else:
        Select(form.find_element(By.NAME, "grid")).select_by_value("339901001001001")
    if photo:
        form.find_element(By.ID, "photo1").send_keys(str(photo))
    form.find_element(By.NAME, "phone").send_keys("13800001234")
    return form


def test_a_resident_reports_follows_and_scores_from_a_phone(relay, phone):
    data, url = relay
    for user in [DISPATCHER, HANDLER, WORKER]:
        admin(data, "password", "--user", user, stdin=PASSWORD + "\n")
    phone.execute_cdp_cmd("Browser.grantPermissions",
                          {"origin": url, "permissions": ["geolocation"]})
    phone.execute_cdp_cmd("Emulation.setGeolocationOverride",
                          {"latitude": HERE[0], "longitude": HERE[1], "accuracy": 20})

    form = fill_report(phone, url, "小区3号楼楼道水管漏水，已经两天了", locate=True, photo=PHOTO)
    # Fits a phone's width: nothing wider than the window.
    assert phone.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth")
    shot(phone, "resident-report")
    click_and_wait(phone, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    code = phone.find_element(By.ID, "code").text
    assert len(code) == 14 and code[4] == "-", phone.page_source
    shot(phone, "resident-receipt")

    # The community dispatcher finds it on her board, marked as a resident's.
    sign_in(phone, url, DISPATCHER, PASSWORD)
    row = phone.find_element(By.CSS_SELECTOR, "[data-id]")
    case = row.get_attribute("data-id")
    assert "居民上报" in row.text
    phone.get(f"{url}/console/cases/{case}")
    assert "339901001001001" in phone.page_source or "第1网格" in phone.page_source
    act(phone, url, case, "accept")
    act(phone, url, case, "dispatch", dept="water", hours="24")
    sign_in(phone, url, HANDLER, PASSWORD)
    act(phone, url, case, "feedback", text="已更换水管接头")
    sign_in(phone, url, WORKER, PASSWORD)
    act(phone, url, case, "verify", passed="1", text="复查不漏了")
    sign_in(phone, url, DISPATCHER, PASSWORD)
    act(phone, url, case, "archive")
    phone.delete_all_cookies()

    # The resident follows it with the code: steps and times, no names.
    phone.get(url + "/r/track")
    phone.find_element(By.NAME, "code").send_keys(code)
    click_and_wait(phone, phone.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert phone.current_url.endswith("/r/track"), "the code is posted, not in the URL"
    steps = phone.find_element(By.ID, "steps").text
    for step in ["已收到上报", "社区已受理", "已派遣至职能部门处置", "现场核查通过", "已办结"]:
        assert step in steps, steps
    for private in ["崔宏建", "石子然", "熊雨", "水管接头", "13800001234"]:
        assert private not in phone.page_source
    shot(phone, "resident-progress")
    evaluate = phone.find_element(By.ID, "evaluate")
    Select(evaluate.find_element(By.NAME, "satisfaction")).select_by_value("5")
    evaluate.find_element(By.NAME, "comment").send_keys("修得很快")
    click_and_wait(phone, evaluate.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "感谢您的评价" in phone.page_source
    assert phone.find_element(By.ID, "status").text == "已评价"

    # The dispatcher sees the loop's evaluation step.
    sign_in(phone, url, DISPATCHER, PASSWORD)
    phone.get(f"{url}/console/cases/{case}")
    assert "回访评价" in phone.page_source or "evaluate" in phone.page_source
    phone.delete_all_cookies()

    # A bounded burst from the same phone: four reports are left of the five, the
    # next is refused with the reason, in Chinese.
    answers = []
    for n in range(5):
        form = fill_report(phone, url, f"第{n + 1}处路灯不亮，晚上很黑")
        click_and_wait(phone, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
        answers.append(phone.page_source)
    assert all("已收到您的上报" in a for a in answers[:4])
    assert "您提交得太频繁了" in answers[4]
    shot(phone, "resident-rate-limited")


def test_a_resident_without_a_position_taps_her_grid_on_the_map(relay, phone):
    """No GPS: the resident shows her community's map of grids and taps grid 2;
    the report's position is a point inside it, and the case lands there."""
    data, url = relay
    admin(data, "password", "--user", DISPATCHER, stdin=PASSWORD + "\n")
    phone.get(url + "/r")
    form = phone.find_element(By.ID, "report")
    Select(form.find_element(By.NAME, "category")).select_by_value("livelihood")
    form.find_element(By.NAME, "description").send_keys("路口井盖松动，车辆经过有响声")
    assert not phone.find_element(By.CSS_SELECTOR, 'div.pick[data-community="339901001001"]').is_displayed()
    Select(phone.find_element(By.ID, "mapc")).select_by_value("339901001001")
    community = phone.find_element(By.CSS_SELECTOR, 'div.pick[data-community="339901001001"]')
    assert community.is_displayed()
    assert not phone.find_element(By.CSS_SELECTOR, 'div.pick[data-community="339901001002"]').is_displayed()
    # Fits a phone's width with the map open.
    assert phone.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth")
    grid = community.find_element(By.CSS_SELECTOR, 'path[data-grid="339901001001002"]')
    phone.execute_script("arguments[0].scrollIntoView({block: 'center'})", grid)
    grid.click()
    assert phone.find_element(By.ID, "where").text == "已在地图上选定位置：望湖社区第2网格"
    lat = float(form.find_element(By.NAME, "lat").get_attribute("value"))
    lon = float(form.find_element(By.NAME, "lon").get_attribute("value"))
    assert 30.2 < lat < 30.3 and 120.1 < lon < 120.3, (lat, lon)
    assert form.find_element(By.NAME, "grid").get_attribute("value") == "339901001001002"
    marker = community.find_element(By.TAG_NAME, "circle")
    assert marker.get_attribute("visibility") == "visible", "a marker where she tapped"
    shot(phone, "resident-map-pick")
    click_and_wait(phone, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "已收到您的上报" in phone.page_source, phone.page_source

    # The relay placed it by the point: in grid 2, with the tapped position.
    sign_in(phone, url, DISPATCHER, PASSWORD)
    case = phone.find_element(By.CSS_SELECTOR, "[data-id]").get_attribute("data-id")
    phone.get(f"{url}/console/cases/{case}")
    assert "望湖社区第2网格" in phone.page_source
    assert f"({lat:.5f}, {lon:.5f})" in phone.page_source
