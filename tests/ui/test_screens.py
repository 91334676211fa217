"""The store day's screenshots (retail_demo.screens) of the live screen and console."""
from __future__ import annotations

from ui_support import STAFF_PASSWORD


def test_screenshots_of_the_screen_and_the_console_are_saved(ui_server, browser, tmp_path):
    from retail_demo.screens import ScreenCamera
    node, url = ui_server()
    camera = ScreenCamera(url, tmp_path / 'screens', staff_password=STAFF_PASSWORD)
    try:
        attract = camera.shot('attract', until_css='#attract-cards .card')
        console = camera.shot('console', page='console', until_text=('#safety', 'unknown'))
        missing = camera.shot('never', until_text=('#welcome', 'nobody says this'), timeout=0.5)
    finally:
        camera.close()
    for path in (attract, console):
        assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert 'did not show' in missing and camera.problems == [missing]


def test_without_a_browser_the_day_goes_on(tmp_path, monkeypatch):
    from retail_demo import screens
    monkeypatch.setattr(screens, 'CHROMIUM', (str(tmp_path / 'no-chromium'),))
    camera = screens.ScreenCamera('http://127.0.0.1:9', tmp_path)
    assert 'not installed' in camera.shot('attract') and 'not installed' in camera.shot('again')
    assert len(camera.problems) == 1
