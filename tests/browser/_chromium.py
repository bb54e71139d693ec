"""Debian's headless Chromium under Selenium, with nothing downloaded at test time.

The browser and its driver come from the system (`apt-get install chromium chromium-driver`):
`/usr/bin/chromium` and `/usr/bin/chromedriver`, or the paths in `ERRLINK_CHROMIUM` and
`ERRLINK_CHROMEDRIVER`. Both paths are given to Selenium, so Selenium Manager has nothing to
look up, and `SE_OFFLINE` forbids it the network anyway.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

CHROMIUM = os.environ.get("ERRLINK_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ERRLINK_CHROMEDRIVER", "/usr/bin/chromedriver")
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


@contextmanager
def headless_chromium() -> Iterator[WebDriver]:
    """A Selenium Chrome driver on a fresh profile, quit and cleaned up afterwards."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).exists():
            raise RuntimeError(f"{path} not found: apt-get install {package}")
    profile = tempfile.mkdtemp(prefix="errlink-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    offline_before = os.environ.get("SE_OFFLINE")
    os.environ["SE_OFFLINE"] = "true"
    try:
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
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
