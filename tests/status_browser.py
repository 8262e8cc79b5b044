"""A real headless Chromium for the status-page tests (Debian's ``chromium``
and ``chromium-driver``, driven by selenium).

Where Chromium is missing the tests skip with the reason -- unless
REQUIRE_TEST_SERVICES=1 (CI sets it, and .ci/run installs the packages), which
makes a missing browser a failure.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from conftest import REQUIRED

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

T = TypeVar("T")


def _require_chromium() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if not missing:
        return
    message = f"{' and '.join(missing)} not found (apt-get install chromium chromium-driver)"
    if REQUIRED:
        pytest.fail(f"{message}; REQUIRE_TEST_SERVICES=1 says it must be there", pytrace=False)
    pytest.skip(message)


@contextmanager
def chromium(*, javascript: bool = True) -> Iterator[Any]:
    """A headless Chromium with a fresh profile, quit when the block ends."""
    _require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="csonboard-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=900,1000",
        "--lang=en-GB",
    ):
        options.add_argument(argument)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def eventually(check: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except Exception:  # noqa: BLE001 -- the page may be mid-update; look again
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout} s")
        time.sleep(0.1)


def page_text(driver: Any, selector: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, selector).text)


def stage_words(driver: Any) -> dict[str, str]:
    """Each stage's label -> the words saying its state, as the page shows them."""
    from selenium.webdriver.common.by import By

    return {
        item.find_element(By.CSS_SELECTOR, ".stage__label").text: item.find_element(
            By.CSS_SELECTOR, ".stage__state"
        ).text
        for item in driver.find_elements(By.CSS_SELECTOR, ".stage")
    }


def is_shown(driver: Any, selector: str) -> bool:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return bool(found) and bool(found[0].is_displayed())
