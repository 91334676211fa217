"""Fixtures of the screen and console tests: the /ui/server node on a free loopback port, a
headless Chromium (Debian's chromium + chromium-driver) driven by Selenium, a store copy with a
VIP appointment today."""
from __future__ import annotations

import json
import shutil
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'navigation'))
from nav_base_support import base_sim  # noqa: E402,F401 (fixture)
from browser_support import chromium  # noqa: E402
from rostest_support import wait_for  # noqa: E402
from ui_support import DEMO_STORE, STAFF_PASSWORD, free_port, viewport  # noqa: E402


@pytest.fixture
def store(tmp_path) -> Path:
    """The demo store with one VIP appointment today at 15:00, in store hours (customer vip-test-01)."""
    folder = tmp_path / 'store'
    shutil.copytree(DEMO_STORE, folder)
    start = datetime.now().replace(hour=15, minute=0, second=0, microsecond=0)
    (folder / 'appointments.json').write_text(json.dumps([{
        'appointment_id': 'apt-ui-1', 'customer_id': 'vip-test-01', 'name': 'Qiao Wenjing',
        'start': start.isoformat(), 'end': (start + timedelta(hours=1)).isoformat(),
        'purpose': 'home theatre consultation', 'meeting_point': 'vip_lounge', 'staff': 'Manager Zhou'}]))
    return folder


@pytest.fixture
def ui_server(ros_context, spin, store, tmp_path):
    """ui_server(**params) -> (node, base_url): /ui/server on 127.0.0.1:<free port>, staff password set."""
    from rclpy.parameter import Parameter
    from retail_ui.auth import hash_password
    from retail_ui.server_node import UiServerNode
    import httpx

    def _start(**params):
        data = tmp_path / 'data'
        (data / 'ui').mkdir(parents=True, exist_ok=True)
        (data / 'ui' / 'staff_secret').write_text(hash_password(STAFF_PASSWORD, iterations=10_000))
        port = free_port()
        values = {'store_dir': str(store), 'data_dir': str(data), 'port': port, 'max_rate_hz': 20.0, **params}
        node = UiServerNode(context=ros_context, parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
        spin(node)
        url = f'http://127.0.0.1:{port}'

        def up():
            try:
                return httpx.get(url + '/api/screen/state', timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False
        wait_for(up, 10.0, f'the screen server on {url}')
        return node, url
    return _start


@pytest.fixture
def browser():
    """A headless Chromium at 1280x800 with a fresh profile (skips only where it is not installed)."""
    with chromium(1280, 800) as driver:
        viewport(driver, 1280, 800)
        yield driver
