"""Screenshots of the robot's screen and the staff console at key moments of the store day.

The store day calls `ScreenCamera.shot(name, ...)` when something worth showing happens (the
attract loop, the VIP welcome, recommendation cards, the route while guiding, the console with a
bumper stop); each shot waits until the live page shows what is expected, then writes
`<out_dir>/<name>.png`. The pages are opened once in a headless Chromium (Debian's `chromium`
and `chromium-driver`, installed by robot_ws/install.sh) and stay live, as on the robot.

Nothing here may stop the store day: a missing browser or a page that never shows the expected
text is reported (returned as the reason, and in `problems`) and the day goes on.

    camera = ScreenCamera('http://127.0.0.1:8090', Path('out/demo/screens'), staff_password='...')
    camera.shot('vip_welcome', until_css='#welcome.vip')
    camera.shot('console_bumper_stop', page='console', until_text=('#safety', 'STOPPED'))
    camera.close()
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM = ('/usr/bin/chromium', '/usr/bin/chromium-browser')
CHROMEDRIVER = ('/usr/bin/chromedriver', '/usr/lib/chromium/chromedriver')
FLAGS = (
    '--headless=new',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-dev-shm-usage',
)


def staff_secret_for_demo(data_dir: Path, password: str) -> Path:
    """Write `<data_dir>/ui/staff_secret` (hashed, mode 0600) so the console can be opened."""
    from retail_ui.auth import hash_password

    path = Path(data_dir) / 'ui' / 'staff_secret'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(hash_password(password) + '\n', encoding='utf-8')
    path.chmod(0o600)
    return path


def set_viewport(driver, width: int, height: int) -> None:
    """Make the page area exactly width x height CSS pixels (a window size includes the browser's frame)."""
    driver.execute_cdp_cmd(
        'Emulation.setDeviceMetricsOverride',
        {'width': width, 'height': height, 'deviceScaleFactor': 1, 'mobile': False},
    )


class ScreenCamera:
    def __init__(
        self,
        base_url: str,
        out_dir: str | Path,
        *,
        staff_password: str = '',
        language: str = 'zh',
        size: tuple[int, int] = (1280, 800),
    ) -> None:
        self.base_url = base_url.rstrip('/')
        self.out_dir = Path(out_dir)
        self.staff_password = staff_password
        self.language = language
        self.size = size
        self.problems: list[str] = []
        self._drivers: dict[str, Any] = {}
        self._profiles: list[str] = []
        self._unavailable: str | None = None

    def _driver(self, page: str):
        if page in self._drivers:
            return self._drivers[page]
        chromium = next((p for p in CHROMIUM if Path(p).exists()), None)
        driver_path = next((p for p in CHROMEDRIVER if Path(p).exists()), None)
        if chromium is None or driver_path is None:
            raise RuntimeError('headless Chromium is not installed (Debian packages chromium, chromium-driver)')
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        profile = tempfile.mkdtemp(prefix='retail-demo-chromium-')
        self._profiles.append(profile)
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in FLAGS + (f'--window-size={self.size[0]},{self.size[1]}', f'--user-data-dir={profile}'):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        driver.set_page_load_timeout(20)
        set_viewport(driver, *self.size)
        if page == 'console':
            driver.get(self.base_url + '/console')
            self._until(driver, lambda d: d.find_element('id', 'password').is_displayed(), 10)
            driver.find_element('id', 'password').send_keys(self.staff_password)
            driver.find_element('id', 'login-button').click()
            if not self._until(driver, lambda d: d.find_element('id', 'dashboard').is_displayed(), 10):
                driver.quit()
                raise RuntimeError('the staff console did not accept the demo staff password')
        else:
            driver.get(f'{self.base_url}/?lang={self.language}')
        self._drivers[page] = driver
        return driver

    @staticmethod
    def _until(driver, condition, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if condition(driver):
                    return True
            except Exception:  # element not there yet / redrawn: look again
                pass
            time.sleep(0.1)
        return False

    def shot(
        self,
        name: str,
        *,
        page: str = 'screen',
        until_css: str = '',
        until_text: tuple[str, str] | None = None,
        timeout: float = 10.0,
    ) -> Path | str:
        """Save `<out_dir>/<name>.png` of `page` ('screen' or 'console') once `until_css` matches a
        visible element and `until_text` (css, text) is shown; returns the file, or the reason it was not saved."""
        if self._unavailable:
            return self._unavailable
        try:
            driver = self._driver(page)
        except Exception as exc:  # no browser, no selenium, console refused: tell, go on
            self._unavailable = f'screenshots off: {exc}'.splitlines()[0]
            self.problems.append(self._unavailable)
            return self._unavailable

        def ready(d) -> bool:
            if until_css and not any(e.is_displayed() for e in d.find_elements('css selector', until_css)):
                return False
            if until_text:
                css, text = until_text
                return text in d.execute_script(
                    'return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText).join(" ")', css
                )
            return True

        if not self._until(driver, ready, timeout):
            reason = f'{name}: the {page} did not show {until_css or ""} {until_text or ""} within {timeout:g} s'
            self.problems.append(reason)
            return reason
        time.sleep(0.3)  # let the last update paint
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f'{name}.png'
        driver.save_screenshot(str(path))
        return path

    def close(self) -> None:
        for driver in self._drivers.values():
            try:
                driver.quit()
            except Exception:
                pass
        self._drivers.clear()
        for profile in self._profiles:
            shutil.rmtree(profile, ignore_errors=True)
