"""The web app on a real uvicorn server (loopback, free port) without ROS: a recording stand-in for
the robot's actions (unit level: the node's ROS side is tested in test_console_browser.py)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from retail_common.catalog import load_catalog

from rostest_support import wait_for
from ui_support import free_port

CSV = """sku,name_zh,name_en,aliases,category,category_zh,brand,brand_zh,price_cny,zone,stock,tags,promotion
K-1,青松电水壶,Pine Kettle,,kettle,电水壶,pine,青松,199,kitchen,4,,
"""
STAFF_TOKEN = 'store-staff-token-1'


class Actions:
    """Records what the pages asked of the robot."""

    def __init__(self) -> None:
        self.said, self.enrolled, self.resets, self.deleted = [], [], 0, []

    def say(self, text, language, track_id):
        self.said.append((text, language, track_id))

    def reset_safety(self):
        self.resets += 1
        return True, 'cleared'

    def enroll(self, *args):
        self.enrolled.append(args)
        return True, 'Enrolled the person on track %d (consent recorded)' % args[-1]

    def preview_jpeg(self):
        return None

    def members(self):
        return []

    def delete_member(self, customer_id):
        self.deleted.append(customer_id)
        return True, 'deleted'


@dataclass
class Served:
    url: str
    port: int
    app: object
    model: object
    actions: Actions
    auth: object
    audit: list = field(default_factory=list)

    @property
    def origin(self) -> str:
        return self.url

    def login(self, client=None) -> dict:
        """Log in with httpx (same origin); returns the login answer (token, csrf_token)."""
        import httpx
        answer = (client or httpx).post(self.url + '/api/console/login', json={'password': STAFF_TOKEN},
                                        headers={'Origin': self.url})
        assert answer.status_code == 200, answer.text
        return answer.json()


def start_server(tmp_path: Path, secret_file: Path | None = None, **kwargs) -> tuple[Served, callable]:
    import uvicorn
    from retail_ui.auth import StaffAuth
    from retail_ui.model import UiModel
    from retail_ui.web import create_app, server_config
    path = tmp_path / 'catalog.csv'
    path.write_text(CSV, encoding='utf-8')
    actions = Actions()
    audit: list[str] = []
    from retail_common.store import Store
    model = UiModel(Store(catalog=load_catalog(path), zones={}, tours={}), [])
    if secret_file is not None:
        from retail_ui.auth import load_secret
        auth = StaffAuth(load_secret(secret_file), secret_file=secret_file, max_failures=kwargs.pop('max_failures', 5))
    else:
        auth = StaffAuth(STAFF_TOKEN, max_failures=kwargs.pop('max_failures', 5))
    app = create_app(model, actions, auth, audit=audit.append, max_rate_hz=20.0, **kwargs)
    port = free_port()
    server = uvicorn.Server(server_config(app, '127.0.0.1', port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 10, 'the test web server')
    served = Served(f'http://127.0.0.1:{port}', port, app, model, actions, auth, audit)

    def stop() -> None:
        app.state.close()
        server.should_exit = True
        thread.join(timeout=10)
        time.sleep(0)
    return served, stop
