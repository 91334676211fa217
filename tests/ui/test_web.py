"""The web layer on its own (FastAPI TestClient, a recording stand-in for the robot's actions)."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from retail_common.catalog import load_catalog
from retail_common.store import Store
from retail_ui.auth import StaffAuth
from retail_common.web_guard import Site
from retail_ui.model import UiModel
from retail_ui.web import create_app

CSV = """sku,name_zh,name_en,aliases,category,category_zh,brand,brand_zh,price_cny,zone,stock,tags,promotion
K-1,青松电水壶,Pine Kettle,,kettle,电水壶,pine,青松,199,kitchen,4,,
"""


class Actions:
    def __init__(self) -> None:
        self.said, self.enrolled, self.resets = [], [], 0

    def say(self, text, language, track_id):
        self.said.append((text, language, track_id))

    def reset_safety(self):
        self.resets += 1
        return False, 'bumper still pressed'

    def enroll(self, *args):
        self.enrolled.append(args)
        return True, 'enrolled'

    def preview_jpeg(self):
        return None

    def members(self):
        return []

    def delete_member(self, customer_id):
        return False, f'no member {customer_id}'


@pytest.fixture
def client(tmp_path):
    path = tmp_path / 'catalog.csv'
    path.write_text(CSV, encoding='utf-8')
    actions = Actions()
    audit: list[str] = []
    app = create_app(UiModel(Store(catalog=load_catalog(path), zones={}, tours={}), []), actions,
                     StaffAuth('store-staff-token-1', max_failures=2), audit=audit.append,
                     site=Site.make(allowed_hosts=['testserver']))
    with TestClient(app, headers={'Origin': 'http://testserver'}) as c:
        c.actions, c.audit = actions, audit
        yield c


def test_pages_and_assets_are_served_from_the_package_under_a_strict_policy(client):
    for path in ('/', '/console', '/static/screen.js', '/static/console.js', '/static/common.js', '/static/style.css'):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "default-src 'self'" in response.headers['content-security-policy']
    assert 'http://' not in client.get('/').text and 'https://' not in client.get('/console').text   # no CDN


def test_a_touch_becomes_an_utterance_with_size_limits(client):
    screen = TestClient(client.app, headers={'Origin': 'http://testserver',
                                             'X-Screen-Token': client.app.state.screen_secret},
                        client=('127.0.0.1', 50000))          # the robot's own screen (its kiosk)
    assert screen.post('/api/screen/say', json={'text': '  where   is it ', 'language': 'en'}).status_code == 200
    assert client.actions.said == [('where is it', 'en', 0)]
    assert screen.post('/api/screen/say', json={'text': 'x' * 201}).status_code == 422
    assert screen.post('/api/screen/say', json={'text': 'hi', 'language': 'fr'}).status_code == 422
    assert screen.post('/api/screen/say', content=b'{"text": "' + b'a' * 20000 + b'"}',
                       headers={'content-type': 'application/json'}).status_code == 413


@pytest.mark.parametrize('peer, token', [
    (('testclient', 50000), None), (('192.168.1.50', 40000), None), (('192.168.1.50', 40000), 'secret'),
    (('127.0.0.1', 50000), None), (('127.0.0.1', 50000), 'wrong'), (('127.0.0.1', 50000), ''),
], ids=['no token', 'network', 'network with the secret', 'loopback no token', 'wrong token', 'empty token'])
def test_typed_words_come_only_from_the_robots_own_screen(client, peer, token):
    """Attack round (issue 21, item 13's kind): anyone on the network could POST /api/screen/say
    "remember me" then "yes": the dialogue took it as the shopper in front consenting to enrolment."""
    secret = client.app.state.screen_secret
    headers = {'Origin': 'http://testserver'}
    if token is not None:
        headers['X-Screen-Token'] = secret if token == 'secret' else token
    remote = TestClient(client.app, headers=headers, client=peer)
    for text in ('remember me', 'yes, I agree'):
        answer = remote.post('/api/screen/say', json={'text': text, 'language': 'en'})
        assert answer.status_code == 403 and "robot's own screen" in answer.json()['message']
    assert client.actions.said == []


def test_console_needs_a_login_and_logs_staff_actions(client):
    assert client.post('/api/console/reset_safety').status_code == 401
    assert client.post('/api/console/login', json={'password': 'nope'}).status_code == 401
    login = client.post('/api/console/login', json={'password': 'store-staff-token-1'})
    assert login.status_code == 200
    assert client.post('/api/console/reset_safety').status_code == 403     # the cookie alone is not enough
    client.headers['X-CSRF-Token'] = login.json()['csrf_token']
    reset = client.post('/api/console/reset_safety')                       # the cookie carries the session
    assert reset.status_code == 200 and reset.json() == {'success': False, 'message': 'bumper still pressed'}
    assert any('safety reset by staff session' in line and 'refused' in line for line in client.audit)
    assert client.post('/api/console/requests/7/ack').status_code == 404
    assert client.post('/api/console/requests/7/later').status_code == 404


def test_staff_enrolment_takes_a_pseudonymous_id_and_no_consent_of_its_own(client):
    login = client.post('/api/console/login', json={'password': 'store-staff-token-1'})
    client.headers['X-CSRF-Token'] = login.json()['csrf_token']
    body = {'customer_id': 'm-1', 'display_name': 'Mr Fang', 'vip': False}
    assert client.post('/api/console/enroll', json={**body, 'consent_ref': 'C-1'}).status_code == 422
    assert client.post('/api/console/enroll', json={**body, 'customer_id': '138 0000 0000'}).status_code == 422
    assert client.post('/api/console/enroll', json=body).status_code == 409          # nobody in front
    assert client.actions.enrolled == []


def test_login_guessing_is_rate_limited(client):
    for _ in range(2):
        client.post('/api/console/login', json={'password': 'guess'})
    locked = client.post('/api/console/login', json={'password': 'store-staff-token-1'})
    assert locked.status_code == 429 and int(locked.headers['retry-after']) > 0
