"""The HQ pages' forms (`POST /hq/stores/{id}/calls/{call}`, `/tasks/{task}`) × every staff role
× own / other store, on a real `serve` process with a client sending what a browser sends (the
session cookie, Origin, the session's CSRF token): admin acts anywhere; a store manager and a
region credential on their stores only (another store is 404, as on the API: not theirs to
see); the analyst reads and never acts (403). A session's CSRF token does not work in another
session; a signed-out session's cookie is dead."""
from __future__ import annotations

import re

import httpx

from loop_support import chain
from platform_support import ADMIN, start_server
from rostest_support import stop_process

CASES = {'admin': (303, 303), 'store_manager': (303, 404), 'region': (303, 404),
         'analyst': (403, 403)}


def _signed_in(url: str, token: str) -> tuple[httpx.Client, str]:
    browser = httpx.Client(base_url=url, timeout=30, headers={'Origin': url})
    assert browser.post('/hq/login', data={'token': token}).status_code == 303
    page = browser.get('/hq/stores/s-1' if 'store' in browser.get('/hq').text else '/hq')
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    return browser, found.group(1) if found else ''


def test_every_staff_role_acts_only_where_the_api_lets_it(tmp_path):
    database = str(tmp_path / 'platform.sqlite3')
    tokens = chain(database)
    tokens['admin'] = ADMIN
    server = start_server(database)
    try:
        calls = {}
        for robot, store, token in (('robot-1', 's-1', tokens['robot']),
                                    ('robot-2', 's-2', tokens['robot_other'])):
            made = server.client(token).post(f'/v1/robots/{robot}/staff-calls', json={
                'call_id': f'c-{robot}', 'reason': 'product_help', 'wanted': 'a kettle'})
            assert made.status_code == 200, made.text
            calls[store] = made.json()['id']
        wrong = []
        for role, (own, other) in CASES.items():
            browser, csrf = _signed_in(server.url, tokens[role])
            for store, status in (('s-1', own), ('s-2', other)):
                answer = browser.post(f'/hq/stores/{store}/calls/{calls[store]}', data={
                    'csrf': csrf, 'kind': 'answer', 'text': f'{role} coming'})
                if answer.status_code != status:
                    wrong.append(f'{role} {store}: {answer.status_code}, expected {status}')
            browser.close()
        assert not wrong, wrong
        # another session's CSRF token, and a signed-out session, are refused
        ann, ann_csrf = _signed_in(server.url, tokens['store_manager'])
        other, other_csrf = _signed_in(server.url, tokens['store_manager'])
        try:
            assert ann_csrf and other_csrf and ann_csrf != other_csrf
            assert ann.post(f'/hq/stores/s-1/calls/{calls["s-1"]}', data={
                'csrf': other_csrf, 'kind': 'close'}).status_code == 403
            cookie = ann.cookies['retail_hq']
            assert ann.post('/hq/logout', data={'csrf': ann_csrf}).status_code == 303
            replay = httpx.post(server.url + f'/hq/stores/s-1/calls/{calls["s-1"]}',
                                cookies={'retail_hq': cookie}, headers={'Origin': server.url},
                                data={'csrf': ann_csrf, 'kind': 'close'})
            assert replay.status_code == 303 and replay.headers['location'] == '/hq/login'
        finally:
            ann.close()
            other.close()
        said = server.client(tokens['robot']).get('/v1/robots/robot-1/staff-messages').json()
        texts = [m['text'] for m in (said['messages'] if isinstance(said, dict) else said)]
        assert sorted(texts) == ['admin coming', 'region coming', 'store_manager coming'], texts
    finally:
        stop_process(server.process)
