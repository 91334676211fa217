"""The one headless Chromium of the page tests (Debian's chromium + chromium-driver, driven by
Selenium): the robot's screens and console (tests/ui) and the platform's HQ pages use it."""
from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest


@contextmanager
def chromium(width: int = 1280, height: int = 800, page_timeout_s: float = 20,
             missing: str = 'skip') -> Iterator:
    """A headless Chromium at width x height with a fresh profile. Where Chromium is not
    installed: pytest.skip (missing='skip') or pytest.fail (missing='fail')."""
    from retail_demo.screens import CHROMEDRIVER, CHROMIUM, FLAGS
    binary = next((p for p in CHROMIUM if Path(p).exists()), None)
    driver_path = next((p for p in CHROMEDRIVER if Path(p).exists()), None)
    if binary is None or driver_path is None:
        words = ('headless Chromium is not installed on this machine (robot_ws/install.sh '
                 'installs the Debian packages chromium and chromium-driver)')
        (pytest.fail if missing == 'fail' else pytest.skip)(words)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    profile = tempfile.mkdtemp(prefix='retail-chromium-')
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS + (f'--window-size={width},{height}', f'--user-data-dir={profile}'):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(page_timeout_s)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
