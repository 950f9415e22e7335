"""Browser tests: Debian's headless Chromium driven by Selenium against a live server, with a real Celery
worker and the testbed's nodes behind it.

Every page the test visits is screenshotted; when a test fails, the screenshots are written to
$CCP_SCREENSHOT_DIR (default var/test-screenshots/<test>/) and the folder is named in the failure report
(CCP_SCREENSHOTS_ALWAYS=1 writes them for passing tests too).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.testbed.fixtures import unavailable
from tests.testbed.tenant_fixtures import (  # noqa: F401 - fixtures shared
    celery_worker_thread,
    make_tenant,
    testbed_node,
    testbed_release,
)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
REPO = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 1366, 900  # the screen the changelists must fit


def screenshot_dir(test_name: str) -> Path:
    base = Path(os.environ.get("CCP_SCREENSHOT_DIR") or REPO / "var" / "test-screenshots")
    return base / re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)


class Browser:
    """A thin layer over the WebDriver: visits and clicks take a screenshot, waits poll with a deadline."""

    def __init__(self, driver, base_url: str):
        self.driver = driver
        self.base_url = base_url
        self.shots: list[tuple[str, bytes]] = []

    # pages
    def get(self, path: str) -> None:
        self.driver.get(self.base_url + path)
        self.shot()

    def shot(self, name: str = "") -> None:
        label = name or self.driver.title or self.driver.current_url
        self.shots.append((label, self.driver.get_screenshot_as_png()))

    @property
    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.base_url)

    def text(self, css: str = "body") -> str:
        return self.driver.find_element("css selector", css).text

    def find(self, css: str):
        return self.driver.find_element("css selector", css)

    def find_all(self, css: str) -> list:
        return self.driver.find_elements("css selector", css)

    def has(self, css: str) -> bool:
        return bool(self.find_all(css))

    # forms
    def fill(self, name: str, value: str) -> None:
        field = self.find(f'[name="{name}"]')
        field.clear()
        field.send_keys(value)

    def select(self, name: str, visible_text: str) -> None:
        from selenium.webdriver.support.select import Select

        Select(self.find(f'select[name="{name}"]')).select_by_visible_text(visible_text)

    def click(self, css: str) -> None:
        self.find(css).click()
        self.shot()

    def click_text(self, text: str) -> None:
        """Click the link or button whose visible text (or value) is `text`."""
        xpath = (
            f'//a[normalize-space()="{text}"] | //button[normalize-space()="{text}"] '
            f'| //input[(@type="submit" or @type="button") and @value="{text}"]'
        )
        self.driver.find_element("xpath", xpath).click()
        self.shot()

    def wait_for(
        self, check: Callable[[], object], timeout: float = 60, reload: bool = False, what: str = ""
    ) -> object:
        """Poll `check` until it returns something truthy (reloading the page between tries when asked)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = check()
            except Exception:  # noqa: BLE001 - an element not there yet is a "not yet"
                result = None
            if result:
                return result
            if time.monotonic() > deadline:
                self.shot("timeout " + what)
                raise AssertionError(f"waited {timeout:.0f} s for {what or check}; page: {self.path}\n{self.text()}")
            time.sleep(0.5)
            if reload:
                self.driver.refresh()

    def wait_text(self, text: str, timeout: float = 60, reload: bool = False, css: str = "body") -> None:
        self.wait_for(lambda: text in self.text(css), timeout, reload, what=f"{text!r} on the page")
        self.shot()


def chromium_problem() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).exists():
            return f"{path} is missing (apt-get install {package}; tests/testbed/install.sh does)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (requirements-dev.txt)"
    return None


@pytest.fixture(scope="session")
def chromium_driver() -> Iterator[object]:
    problem = chromium_problem()
    if problem:
        unavailable(problem)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in CI
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--disable-extensions",
        f"--window-size={WIDTH},{HEIGHT}",
        "--lang=en-GB",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def browser(chromium_driver, live_server, request) -> Iterator[Browser]:
    chromium_driver.delete_all_cookies()
    page = Browser(chromium_driver, live_server.url)
    request.node._browser = page
    yield page


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    page: Browser | None = getattr(item, "_browser", None)
    keep = report.failed or os.environ.get("CCP_SCREENSHOTS_ALWAYS", "") == "1"  # e.g. to look at the pages
    if page is not None and keep and report.when in ("call", "setup") and (report.when == "call" or report.failed):
        folder = screenshot_dir(item.nodeid)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            page.shot("at failure" if report.failed else "at the end")
        except Exception:  # noqa: BLE001 - the browser may be the thing that failed
            pass
        for number, (label, png) in enumerate(page.shots, start=1):
            name = re.sub(r"[^A-Za-z0-9_.-]+", "-", label)[:60].strip("-")
            (folder / f"{number:02d}-{name}.png").write_bytes(png)
        report.sections.append(("browser screenshots", f"{len(page.shots)} screenshots of this test in {folder}"))
        print(f"\nbrowser screenshots: {folder}")
    return report
