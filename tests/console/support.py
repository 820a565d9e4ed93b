"""What the console's browser tests share: a real `gridsync serve` on a loopback
port, headless Chromium (desktop- or phone-sized), `gridsync admin`, screenshots,
and waiting for the page a click leads to."""

import os
import pathlib
import subprocess
import tempfile

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = pathlib.Path(__file__).resolve().parents[2]
GRIDSYNC = os.environ.get("GRIDSYNC_BIN", str(ROOT / "target" / "debug" / "gridsync"))
SHOTS = ROOT / "target" / "console-screenshots"


@pytest.fixture()
def relay():
    """A relay on a fresh data folder: (its folder, its URL)."""
    data = tempfile.mkdtemp()
    proc = subprocess.Popen(
        [GRIDSYNC, "serve", "--listen", "127.0.0.1:0", "--data", data],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "GRIDSYNC_LOG": "warn"},
    )
    line = proc.stdout.readline().strip()
    assert line.startswith("gridsync listening on "), line
    yield data, line.removeprefix("gridsync listening on ")
    proc.terminate()
    proc.wait(timeout=10)


def chromium(args=(), mobile=None):
    """Headless Chromium (Debian's, driven by its chromedriver); `mobile` is
    Chromium's mobile emulation (device metrics and user agent)."""
    options = webdriver.ChromeOptions()
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--lang=zh-CN", *args]:
        options.add_argument(arg)
    if mobile is not None:
        options.add_experimental_option("mobileEmulation", mobile)
    options.binary_location = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
    service = webdriver.ChromeService(
        executable_path=os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture()
def browser():
    """A command-centre desk's browser window."""
    driver = chromium(["--window-size=1280,1000"])
    yield driver
    driver.quit()


def admin(data, *args, stdin=None):
    return subprocess.run([GRIDSYNC, "admin", "--data", data, *args], input=stdin,
                          check=True, capture_output=True, text=True).stdout.strip()


def shot(driver, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def click_and_wait(driver, element, timeout=30):
    """Click what leads to a new page, and wait until that page has replaced this one."""
    old = driver.find_element(By.TAG_NAME, "html")
    element.click()

    def replaced(_):
        # Chromium reports an element of a page that is gone either as stale or as
        # "does not belong to the document", depending on when it is asked.
        try:
            old.is_enabled()
            return False
        except WebDriverException:
            return True

    WebDriverWait(driver, timeout).until(replaced)
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script("return document.readyState") == "complete")


def sign_in(driver, url, user, password):
    driver.delete_all_cookies()
    driver.get(url + "/console/sign-in")
    driver.find_element(By.NAME, "user").send_keys(user)
    driver.find_element(By.NAME, "password").send_keys(password)
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert driver.current_url.endswith("/console/cases"), driver.current_url
