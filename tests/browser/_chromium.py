"""Debian's headless Chromium under Selenium, with nothing downloaded at test time.

The browser and its driver come from the system (`apt-get install chromium chromium-driver`,
which `scripts/test.sh` does when it runs as root): `chromium` and `chromedriver` on the PATH,
or the paths in `ERRLINK_CHROMIUM` and `ERRLINK_CHROMEDRIVER`. Both paths are given to Selenium,
so Selenium Manager has nothing to look up, and `SE_OFFLINE` forbids it the network anyway.

Without them the browser tests are skipped, with the reason in pytest's summary; with
``ERRLINK_REQUIRE_BROWSER=1`` (CI) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

REQUIRE_BROWSER = "ERRLINK_REQUIRE_BROWSER"
# Headless as root in a container: no sandbox, no GPU, and nothing that phones home.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--window-size=1280,1600",
)


def _find(command: str, variable: str, package: str) -> tuple[str | None, str]:
    """The executable's path, or None and why it was not found."""
    given = os.environ.get(variable)
    if given:
        if os.path.isfile(given) and os.access(given, os.X_OK):
            return given, ""
        return None, f"{variable}={given} is not an executable file"
    found = shutil.which(command)
    if found:
        return found, ""
    return None, f"no {command} on the PATH (Debian package {package}; or set {variable})"


def chromium_paths() -> tuple[str, str]:
    """The browser and its driver; skips the calling test (or fails it, when
    ``ERRLINK_REQUIRE_BROWSER=1``) if either is missing."""
    chromium, chromium_missing = _find("chromium", "ERRLINK_CHROMIUM", "chromium")
    driver, driver_missing = _find("chromedriver", "ERRLINK_CHROMEDRIVER", "chromium-driver")
    if chromium is not None and driver is not None:
        return chromium, driver
    missing = "; ".join(m for m in (chromium_missing, driver_missing) if m)
    reason = f"BROWSER TEST NOT RUN: {missing}. As root, `bash scripts/test.sh` installs them."
    if os.environ.get(REQUIRE_BROWSER) == "1":
        pytest.fail(f"{reason} ({REQUIRE_BROWSER}=1 makes this a failure)", pytrace=False)
    pytest.skip(reason)


@contextmanager
def headless_chromium() -> Iterator[WebDriver]:
    """A Selenium Chrome driver on a fresh profile, quit and cleaned up afterwards."""
    chromium, chromedriver = chromium_paths()
    profile = tempfile.mkdtemp(prefix="errlink-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    offline_before = os.environ.get("SE_OFFLINE")
    os.environ["SE_OFFLINE"] = "true"
    try:
        driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
        try:
            driver.set_page_load_timeout(30)
            yield driver
        finally:
            driver.quit()
    finally:
        if offline_before is None:
            os.environ.pop("SE_OFFLINE", None)
        else:
            os.environ["SE_OFFLINE"] = offline_before
        shutil.rmtree(profile, ignore_errors=True)
