"""Headless Chromium driven by Selenium against a live server (pytest-django's `live_server`).

Chromium and its WebDriver come from Debian's packages (scripts/install_browser.sh, run by `make test`). Without
them a run outside CI skips these tests with the command to run; in CI (CI set) it fails, so they are never
silently skipped there. Each test's screenshots go to tests/browser/screenshots/ (gitignored; CI keeps them as
artifacts).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
WINDOW = (1400, 1000)


@pytest.fixture(scope="session")
def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver_path:
        reason = "Chromium or chromedriver missing: run scripts/install_browser.sh"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    options = Options()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


class Browser:
    """The driver, the live server's address and a screenshot helper, for one test."""

    def __init__(self, driver, base_url: str, test_name: str):
        self.driver = driver
        self.base_url = base_url
        self.test_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)

    def get(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{self.test_name}--{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def log_in(self, username: str, password: str) -> None:
        from selenium.webdriver.common.by import By

        self.get("/admin/login/")
        self.driver.find_element(By.NAME, "username").send_keys(username)
        self.driver.find_element(By.NAME, "password").send_keys(password)
        self.submit(self.driver.find_element(By.CSS_SELECTOR, "input[type=submit], button[type=submit]"))
        if "/admin/login/" in self.driver.current_url:
            raise AssertionError(f"login as {username} failed: {self.text()[:300]}")

    def submit(self, button) -> None:
        """Click a submit button and wait for the next page (its old page gone, the new one loaded)."""
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        button.click()
        WebDriverWait(self.driver, 15).until(expected_conditions.staleness_of(button))
        WebDriverWait(self.driver, 15).until(lambda d: d.execute_script("return document.readyState") == "complete")

    def text(self) -> str:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.TAG_NAME, "body").text


@pytest.fixture
def browser(chromium, live_server, request):
    chromium.delete_all_cookies()
    yield Browser(chromium, live_server.url, request.node.name)
    chromium.delete_all_cookies()
