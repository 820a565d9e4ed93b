"""The web console in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, driven with Selenium WebDriver) against a real `gridsync serve`,
with devices simulated through the generated Python bindings. Screenshots of the
main pages go to target/console-screenshots/."""

import asyncio
import base64
import os
import pathlib
import struct
import tempfile
import time
import zlib

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

import gridsync_ffi as gs

from support import ROOT, SHOTS, admin, browser, click_and_wait, relay, shot, sign_in  # noqa: F401 (fixtures)

PHOTO_PATH = ROOT / "bindings" / "tests" / "python" / "photo.jpg"
PHOTO = PHOTO_PATH.read_bytes()
WORKER = "w-339901001001001"
DISPATCHER = "cd-339901001001"
HANDLER = "h-water-1"
PASSWORD = "wanghu-2026-dispatch"
HANDLER_PASSWORD = "water-2026-handler"


def png(path, width=96, height=64):
    """A small PNG of its own pixels (a photo the phone never took)."""
    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 2 % 256, y * 3 % 256, (x + y) % 256))
        for y in range(height))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return path


def device(relay, user, folder):
    data, url = relay
    code = admin(data, "enroll", "--user", user)
    device_id = gs.new_device_id()
    enrollment = asyncio.run(gs.enroll(url, code, device_id, "pytest"))
    # The device's root key, which a phone keeps in its keystore; these phones live only
    # as long as the test.
    engine = gs.GridEngine.open(os.path.join(folder, f"{user}.db"), enrollment.user, device_id, os.urandom(32))
    engine.load_directory(enrollment.directory_json)
    engine.set_server(url, enrollment.token)
    return engine


def sync(engine):
    asyncio.run(engine.sync(None))


def act(driver, action, **fields):
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


def figure(driver, url, label):
    """One figure from the statistics page's summary table."""
    driver.get(url + "/console/stats")
    for row in driver.find_elements(By.CSS_SELECTOR, "#table-summary tbody tr"):
        cells = row.find_elements(By.TAG_NAME, "td")
        if cells[0].text == label:
            return cells[1].text
    raise AssertionError(f"no figure {label}")


def status(driver):
    return driver.find_element(By.ID, "status").get_attribute("data-status")


def test_a_dispatcher_closes_the_loop_in_the_console_with_devices(relay, browser):
    data, url = relay
    folder = tempfile.mkdtemp()
    worker = device(relay, WORKER, folder)
    handler = device(relay, HANDLER, folder)
    admin(data, "password", "--user", DISPATCHER, stdin=PASSWORD + "\n")

    photo = worker.ingest_photo(PHOTO, "IMG_0001.jpg")
    case_id = worker.report_case(gs.NewCaseRecord(
        title="消防通道被电动车堵塞", description="5号楼东侧消防通道停满电动车",
        category="safety", subcategory="safety.fire_exit", severity="high", grid=None,
        lat=30.2741, lon=120.1551, address="望湖小区5号楼", photos=[photo.hash]))
    sync(worker)

    # Signing in: the console is Chinese by default.
    browser.get(url + "/console")
    assert browser.current_url.endswith("/console/sign-in")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    browser.find_element(By.NAME, "user").send_keys(DISPATCHER)
    browser.find_element(By.NAME, "password").send_keys("wrong-password")
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "用户名或密码错误" in browser.page_source
    sign_in(browser, url, DISPATCHER, PASSWORD)

    assert figure(browser, url, "结案率") == "0.0%"
    browser.get(url + "/console/cases")

    # The board shows the device's report, waiting to be accepted.
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-id="{case_id}"]')
    assert row.find_element(By.CSS_SELECTOR, "td.status").text == "待受理"
    counts = browser.find_element(By.CSS_SELECTOR, 'a[data-status="reported"]').text
    assert counts.endswith("1")
    shot(browser, "01-case-board")

    click_and_wait(browser, row.find_element(By.TAG_NAME, "a"))
    assert status(browser) == "reported"
    thumb = browser.find_element(By.CSS_SELECTOR, "#photos img")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", thumb) > 0, \
        "the device's photo is shown"
    shot(browser, "02-case-detail")
    act(browser, "accept")
    act(browser, "dispatch", dept="water", hours="24")
    assert status(browser) == "dispatched"

    # The department's phone receives the dispatch; the handler reports it handled
    # in the console, with a photo of the cleared exit; the grid worker verifies it
    # on site from her phone.
    sync(handler)
    assert handler.get_case(case_id).status == "dispatched"
    admin(data, "password", "--user", HANDLER, stdin=HANDLER_PASSWORD + "\n")
    sign_in(browser, url, HANDLER, HANDLER_PASSWORD)
    assert browser.find_element(By.CSS_SELECTOR, f'tr[data-id="{case_id}"]')
    browser.get(url + f"/console/cases/{case_id}")
    proof = png(pathlib.Path(folder) / "cleared.png")
    browser.find_element(By.CSS_SELECTOR, "#add-photo input[type=file]").send_keys(str(proof))
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "#add-photo button"))
    assert browser.find_element(By.ID, "flash").text.startswith("操作已完成")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#photos img")) == 2
    act(browser, "feedback", text="已清理通道并张贴告示")
    assert status(browser) == "handled"
    shot(browser, "03a-handler-feedback-with-photo")
    sync(worker)
    photos = worker.get_case(case_id).photos
    assert len(photos) == 2 and photos[0].hash == photo.hash, "the handler's photo reached the phone's case"
    assert worker.act(case_id, gs.CaseAction.VERIFY(passed=True, comment="通道已畅通")) == "verified"
    sync(worker)
    sign_in(browser, url, DISPATCHER, PASSWORD)
    browser.get(url + f"/console/cases/{case_id}")

    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#timeline .label")]
    assert labels == ["发现上报", "受理", "派遣", "处置反馈", "核查通过"], labels
    act(browser, "archive")
    act(browser, "evaluate", satisfaction="5", text="居民回访满意")
    assert status(browser) == "evaluated"
    shot(browser, "03-case-evaluated")

    sync(worker)
    assert worker.get_case(case_id).status == "evaluated"

    # The statistics follow, with charts, and the monthly report prints.
    assert figure(browser, url, "结案率") == "100.0%"
    assert figure(browser, url, "平均满意度") == "5.00"
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart")
    shot(browser, "05-statistics")
    browser.get(url + "/console/report")
    assert "消防通道" not in browser.page_source, "the report has figures, not residents' cases"
    assert "安全生产" in browser.find_element(By.ID, "top-categories").text
    shot(browser, "06-monthly-report")
    pdf = base64.b64decode(browser.print_page())
    assert pdf.startswith(b"%PDF")
    (SHOTS / "monthly-report.pdf").write_bytes(pdf)
    browser.get(url + "/console/devices")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#devices tbody tr")) == 1, "the worker's phone"
    shot(browser, "07-devices")

    # The board's figures follow, and English is one click away.
    browser.get(url + "/console/cases")
    assert browser.find_element(By.CSS_SELECTOR, 'a[data-status="evaluated"]').text.endswith("1")
    assert not browser.find_elements(By.CSS_SELECTOR, 'a[data-status="reported"]')
    click_and_wait(browser, browser.find_element(By.ID, "lang"))
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-id="{case_id}"]')
    assert row.find_element(By.CSS_SELECTOR, "td.status").text == "Evaluated"
    shot(browser, "04-case-board-en")


def test_the_map_shows_the_grids_the_cases_and_a_patrol_track(relay, browser):
    data, url = relay
    worker = device(relay, WORKER, tempfile.mkdtemp())
    admin(data, "password", "--user", DISPATCHER, stdin=PASSWORD + "\n")
    for title, lat, lon, severity in [("消防通道堵塞", 30.2741, 120.1551, "high"),
                                      ("路灯损坏", 30.2748, 120.1538, "normal"),
                                      ("垃圾堆放", 30.2712, 120.1560, "low")]:
        worker.report_case(gs.NewCaseRecord(
            title=title, description=title, category="city", subcategory=None,
            severity=severity, grid=None, lat=lat, lon=lon, address="望湖小区", photos=[]))
    patrol = worker.start_patrol()
    now = int(time.time() * 1000)
    worker.add_track_points(patrol, [
        gs.TrackPointRecord(at_ms=now + i * 30_000, lat=30.2731 + i * 0.0001, lon=120.1530 + i * 0.00015)
        for i in range(30)])
    sync(worker)

    sign_in(browser, url, DISPATCHER, PASSWORD)
    browser.get(url + "/console/map")
    svg = browser.find_element(By.ID, "map")
    grids = svg.find_elements(By.CSS_SELECTOR, "path.grid")
    assert len(grids) >= 8, "every grid of the community"
    # Drawn, not just present: the map has a size, and the busiest grid is shaded.
    assert svg.size["width"] > 500 and svg.size["height"] > 100
    busiest = svg.find_element(By.CSS_SELECTOR, 'path.grid[data-grid="339901001001001"]')
    assert busiest.get_attribute("data-cases") == "3" and busiest.get_attribute("fill") != "#f4f6f8"
    markers = svg.find_elements(By.CSS_SELECTOR, "circle.case")
    assert len(markers) == 3 and all(m.is_displayed() for m in markers)
    # The markers sit inside the shaded grid's drawn box.
    box = busiest.rect
    for m in markers[:2]:
        r = m.rect
        cx, cy = r["x"] + r["width"] / 2, r["y"] + r["height"] / 2
        assert box["x"] - 5 <= cx <= box["x"] + box["width"] + 5, (box, r)
    shot(browser, "08-map")

    # Filtered like the board, and a worker's track for today (UTC+8).
    Select(browser.find_element(By.NAME, "severity")).select_by_value("high")
    Select(browser.find_element(By.NAME, "worker")).select_by_value(WORKER)
    # The day the patrol started (not today's, which may have turned since).
    day = time.strftime("%Y-%m-%d", time.gmtime(now / 1000 + 8 * 3600))
    browser.execute_script(
        "document.querySelector('input[name=day]').value = arguments[0]", day)
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "circle.case")) == 1
    track = browser.find_element(By.CSS_SELECTOR, "polyline.track")
    assert track.size["width"] > 10
    assert "30 个定位点" in browser.find_element(By.ID, "track-summary").text
    shot(browser, "09-map-track")
