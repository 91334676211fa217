"""The robot's web server under attack (issue 21 items 9-13), against a real uvicorn server on loopback:
cross-site requests, DNS rebinding, forged X-Forwarded-For, logout and password changes, bodies of
any transfer encoding, stream slot exhaustion, consent from anywhere but the robot's screen."""
from __future__ import annotations

import contextlib
import resource
import select
import socket
import threading
import time

import httpx
import pytest

from rostest_support import wait_for
from web_server import STAFF_TOKEN, start_server

MARK = 'ECHO-MARKER-7731'


@pytest.fixture
def server(tmp_path):
    """server(**create_app kwargs) -> Served: the app on a real uvicorn server; stopped after the test."""
    stops = []

    def _start(**kwargs):
        folder = tmp_path / f'server{len(stops)}'
        folder.mkdir()
        served, stop = start_server(folder, **kwargs)
        stops.append(stop)
        return served
    yield _start
    for stop in stops:
        stop()


def _session(served) -> tuple[httpx.Client, dict]:
    """A browser-like client: the staff cookie in its jar, the CSRF token from the login answer."""
    client = httpx.Client(base_url=served.url, timeout=10)
    answer = served.login(client)
    return client, answer


# --- item 9: Origin, CSRF token, Host, X-Forwarded-For -----------------------------------------

def _origin_cases(port: int):
    own = f'http://127.0.0.1:{port}'
    return [
        ('same origin', {'Origin': own}, 200),
        ('another port of the same host', {'Origin': f'http://127.0.0.1:{port + 1}'}, 403),
        ('localhost for 127.0.0.1', {'Origin': f'http://localhost:{port}'}, 403),
        ('https instead of http', {'Origin': f'https://127.0.0.1:{port}'}, 403),
        ('opaque origin', {'Origin': 'null'}, 403),
        ('another site', {'Origin': 'http://attacker.example'}, 403),
        ('no Origin, same-origin Referer', {'Referer': own + '/console'}, 200),
        ('no Origin, Referer of another port', {'Referer': f'http://127.0.0.1:{port + 1}/x'}, 403),
        ('no Origin, no Referer, staff cookie', {}, 403),
    ]


def test_state_changing_requests_check_the_origin(server):
    served = server()
    client, answer = _session(served)
    expected_resets = 0
    for what, headers, status in _origin_cases(served.port):
        response = client.post('/api/console/reset_safety', headers={**headers, 'X-CSRF-Token': answer['csrf_token']})
        assert response.status_code == status, what
        expected_resets += status == 200
        assert served.actions.resets == expected_resets, what
        said = client.post('/api/screen/say', json={'text': 'hi'},
                           headers={**headers, 'X-Screen-Token': served.app.state.screen_secret})
        assert said.status_code == status, what
    # a script without cookie (bearer token) and without Origin is no browser: no CSRF possible
    bearer = httpx.post(served.url + '/api/console/reset_safety',
                        headers={'Authorization': f'Bearer {answer["token"]}'})
    assert bearer.status_code == 200


def test_cookie_requests_need_the_sessions_csrf_token(server):
    served = server()
    client, answer = _session(served)
    other_client, other = _session(served)
    own = {'Origin': served.url}
    cases = [('no token', {}, 403), ('wrong token', {'X-CSRF-Token': 'x' * 32}, 403),
             ("another session's token", {'X-CSRF-Token': other['csrf_token']}, 403),
             ('the session token', {'X-CSRF-Token': answer['csrf_token']}, 200)]
    served.model.on_staff_request({'reason': 'help at checkout'})
    for what, headers, status in cases:
        for method, path in (('POST', '/api/console/reset_safety'), ('POST', '/api/console/requests/1/ack'),
                             ('DELETE', '/api/console/members/m-1')):
            response = client.request(method, path, headers={**own, **headers})
            assert response.status_code == status, f'{what}: {method} {path}'
    assert served.actions.resets == 1 and served.actions.deleted == ['m-1']
    # a reloaded console page reads its token (GET: a cross-site page cannot read the answer)
    assert client.get('/api/console/session').json()['csrf_token'] == answer['csrf_token']


@pytest.mark.parametrize('host, allowed, status', [
    ('attacker.example', (), 421),
    ('attacker.example:{port}', (), 421),
    ('127.0.0.1.attacker.example:{port}', (), 421),
    ('localhost.:{port}', (), 421),
    ('127.0.0.1:{port}', (), 200),
    ('localhost:{port}', (), 200),
    ('robot-07.store.lan:{port}', (), 421),
    ('robot-07.store.lan:{port}', ('robot-07.store.lan',), 200),
    ('', (), 421),
])
def test_dns_rebinding_host_names_are_refused(server, host, allowed, status):
    from retail_common.web_guard import Site
    served = server(site=Site.make('127.0.0.1', allowed_hosts=allowed))
    value = host.format(port=served.port)
    for method, path in (('GET', '/api/screen/state'), ('GET', '/'), ('POST', '/api/screen/say')):
        response = _raw(served.port, f'{method} {path} HTTP/1.1\r\nHost: {value}\r\nOrigin: http://{value}\r\n'
                                     f'X-Screen-Token: {served.app.state.screen_secret}\r\n'
                                     'Content-Type: application/json\r\nContent-Length: 13\r\nConnection: close\r\n\r\n'
                                     '{"text":"hi"}')
        assert response.startswith(f'HTTP/1.1 {status}'), (method, path, response[:80])
    assert len(served.actions.said) == (1 if status == 200 else 0)


def _raw(port: int, request: str) -> str:
    with socket.create_connection(('127.0.0.1', port), timeout=10) as s:
        s.sendall(request.encode('latin-1'))
        data = b''
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode('utf-8', 'replace')


def test_forged_x_forwarded_for_does_not_escape_the_lockout_or_the_audit_log(server):
    served = server(max_failures=2)
    for i in range(3):
        httpx.post(served.url + '/api/console/login', json={'password': 'guess'},
                   headers={'X-Forwarded-For': f'198.51.100.{i}', 'Origin': served.url})
    locked = httpx.post(served.url + '/api/console/login', json={'password': STAFF_TOKEN},
                        headers={'X-Forwarded-For': '203.0.113.9', 'Origin': served.url})
    assert locked.status_code == 429
    assert served.audit and all('198.51.100' not in line and '203.0.113' not in line for line in served.audit)
    assert any('127.0.0.1' in line for line in served.audit)


def test_the_staff_tablet_that_logged_in_before_is_not_locked_out_by_guessing(server):
    """Guessing from many addresses locks new devices out (429), never the device whose cookie
    says it logged in before; a logout keeps the device cookie."""
    from retail_common.web_guard import Site
    served = server(site=Site.make('127.0.0.1', trusted_proxies=['127.0.0.1']), max_failures=2)
    tablet = httpx.Client(base_url=served.url, headers={'Origin': served.url})
    first = tablet.post('/api/console/login', json={'password': STAFF_TOKEN})
    assert first.status_code == 200 and tablet.cookies.get('retail_staff_device')
    tablet.post('/api/console/logout', headers={'x-csrf-token': first.json()['csrf_token']})
    for i in range(12):                                   # a distributed guess
        httpx.post(served.url + '/api/console/login', json={'password': 'guess'},
                   headers={'X-Forwarded-For': f'198.51.100.{i}', 'Origin': served.url})
    stranger = httpx.post(served.url + '/api/console/login', json={'password': STAFF_TOKEN},
                          headers={'X-Forwarded-For': '203.0.113.9', 'Origin': served.url})
    assert stranger.status_code == 429
    assert tablet.post('/api/console/login', json={'password': STAFF_TOKEN}).status_code == 200
    tablet.close()


def test_x_forwarded_for_counts_only_from_a_trusted_proxy(server):
    from retail_common.web_guard import Site
    served = server(site=Site.make('127.0.0.1', trusted_proxies=['127.0.0.1']), max_failures=2)
    for _ in range(2):
        httpx.post(served.url + '/api/console/login', json={'password': 'guess'},
                   headers={'X-Forwarded-For': '203.0.113.7', 'Origin': served.url})
    assert any('203.0.113.7' in line for line in served.audit)
    assert httpx.post(served.url + '/api/console/login', json={'password': STAFF_TOKEN},
                      headers={'X-Forwarded-For': '203.0.113.7', 'Origin': served.url}).status_code == 429
    assert httpx.post(served.url + '/api/console/login', json={'password': STAFF_TOKEN},
                      headers={'X-Forwarded-For': '203.0.113.8', 'Origin': served.url}).status_code == 200


@pytest.mark.parametrize('peer, forwarded, trusted, expected', [
    ('127.0.0.1', '203.0.113.7', (), '127.0.0.1'),
    ('10.0.0.5', '203.0.113.7', ('127.0.0.1',), '10.0.0.5'),
    ('127.0.0.1', '203.0.113.7', ('127.0.0.1',), '203.0.113.7'),
    ('127.0.0.1', '198.51.100.1, 203.0.113.7', ('127.0.0.1',), '203.0.113.7'),     # right-most untrusted
    ('127.0.0.1', '203.0.113.7, 10.0.0.2', ('127.0.0.1', '10.0.0.2'), '203.0.113.7'),
    ('127.0.0.1', '', ('127.0.0.1',), '127.0.0.1'),
])
def test_client_address_table(peer, forwarded, trusted, expected):
    from retail_common.web_guard import client_address
    assert client_address(peer, forwarded, frozenset(trusted)) == expected


# --- item 10: logout and password changes end sessions -----------------------------------------

def _stream_lines(response, until: float):
    for line in response.iter_lines():
        yield line
        if time.monotonic() > until:
            return


@pytest.mark.parametrize('how', ['cookie', 'bearer'])
def test_logout_ends_the_session_and_its_open_stream(server, how):
    served = server()
    client, answer = _session(served)
    auth = {'Authorization': f'Bearer {answer["token"]}'} if how == 'bearer' else {}
    headers = {**auth, 'Origin': served.url, 'X-CSRF-Token': answer['csrf_token']}
    ended = threading.Event()
    lines = []

    def watch():
        with httpx.Client(timeout=30) as c:
            cookies = {'retail_staff': answer['token']} if how == 'cookie' else {}
            with c.stream('GET', served.url + '/api/console/stream', headers=auth, cookies=cookies) as response:
                assert response.status_code == 200
                for line in response.iter_lines():
                    lines.append(line)
        ended.set()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    wait_for(lambda: any(line.startswith('data:') for line in lines), 10, 'the console stream')
    assert client.post('/api/console/logout', headers=headers).status_code == 200
    assert ended.wait(5), 'the open console stream of the ended session must close'
    for check in (client.get('/api/console/state', headers=auth),
                  httpx.get(served.url + '/api/console/state', headers={'Authorization': f'Bearer {answer["token"]}'}),
                  httpx.get(served.url + '/api/console/state', cookies={'retail_staff': answer['token']})):
        assert check.status_code == 401


def test_a_password_changed_while_running_is_used_at_once_and_ends_old_sessions(server, tmp_path):
    from retail_ui.auth import hash_password
    secret = tmp_path / 'staff_secret'
    secret.write_text(hash_password('first-password-1', iterations=10_000))
    served = server(secret_file=secret)

    def login(password):
        return httpx.post(served.url + '/api/console/login', json={'password': password},
                          headers={'Origin': served.url})
    first = login('first-password-1')
    assert first.status_code == 200
    token = first.json()['token']
    bearer = {'Authorization': f'Bearer {token}'}
    assert httpx.get(served.url + '/api/console/state', headers=bearer).status_code == 200
    ended = threading.Event()

    def watch():
        with httpx.stream('GET', served.url + '/api/console/stream', headers=bearer, timeout=30) as response:
            assert response.status_code == 200
            for _ in response.iter_lines():
                pass
        ended.set()
    threading.Thread(target=watch, daemon=True).start()
    wait_for(lambda: served.app.state.slots.open_count() == 1, 10, 'the console stream open')
    secret.write_text(hash_password('second-password-2', iterations=10_000))
    assert httpx.get(served.url + '/api/console/state', headers=bearer).status_code == 401
    assert ended.wait(5), "the stream of a session of the old password must close"
    assert login('first-password-1').status_code == 401
    assert login('second-password-2').status_code == 200
    secret.unlink()                                            # removed: the console locks
    assert login('second-password-2').status_code == 401


def test_a_password_set_while_running_is_taken_without_a_restart(server, tmp_path):
    from retail_ui.auth import StaffAuth, hash_password
    secret = tmp_path / 'later' / 'staff_secret'
    auth = StaffAuth(None, secret_file=secret)
    assert not auth.login('127.0.0.1', 'a-new-password-9').ok
    secret.parent.mkdir()
    secret.write_text(hash_password('a-new-password-9', iterations=10_000))
    assert auth.login('127.0.0.1', 'a-new-password-9').ok


# --- item 11: bodies bounded however they arrive; 422 never echoes ------------------------------

def _chunked(port: int, path: str, total: int, chunk: int, headers: str = '') -> tuple[str, int]:
    """Send up to `total` bytes chunked; stop when the server answers. (status line, bytes sent)."""
    with socket.create_connection(('127.0.0.1', port), timeout=20) as s:
        s.sendall((f'POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n'
                   f'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n{headers}\r\n').encode())
        sent = 0
        piece = f'{chunk:x}\r\n'.encode() + b'{' * chunk + b'\r\n'
        try:
            while sent < total:
                s.sendall(piece)
                sent += chunk
                if select.select([s], [], [], 0)[0]:
                    break
            else:
                s.sendall(b'0\r\n\r\n')
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.settimeout(10)
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            data = b''
    return data.split(b'\r\n', 1)[0].decode('latin-1'), sent


@pytest.mark.parametrize('path', ['/api/console/login', '/api/screen/say', '/api/screen/consent',
                                  '/api/console/enroll'])
@pytest.mark.parametrize('total, chunk', [(20_000, 4096), (20_000, 1), (64 * 1024 * 1024, 65536)])
def test_chunked_bodies_stop_at_the_limit(server, path, total, chunk):
    served = server()
    if chunk == 1:
        total = 17_000                                         # 17,000 one-byte chunks
    status, sent = _chunked(served.port, path, total, chunk)
    assert status.startswith('HTTP/1.1 413'), (status, sent)
    # answered long before the client was done (what was sent beyond 16 KiB sits in socket buffers)
    assert sent < 16 * 1024 * 1024, f'the server read on after the limit ({sent} bytes sent)'


def test_a_huge_chunked_body_does_not_grow_the_servers_memory(server):
    served = server()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for path in ('/api/console/login', '/api/screen/say'):
        status, _ = _chunked(served.port, path, 64 * 1024 * 1024, 65536)
        assert status.startswith('HTTP/1.1 413')
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 32, f'the server grew by {grown_mib:.0f} MiB'


def test_a_declared_length_over_the_limit_is_refused_before_reading(server):
    served = server()
    response = _raw(served.port, f'POST /api/screen/say HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n'
                                 f'Content-Length: {300 * 1024 * 1024}\r\nConnection: close\r\n\r\n')
    assert response.startswith('HTTP/1.1 413')


@pytest.mark.parametrize('path, body', [
    ('/api/screen/say', {'text': MARK * 20}),
    ('/api/screen/say', {'text': 'hi', 'language': MARK}),
    ('/api/console/login', {'password': MARK * 20}),
    ('/api/console/login', {'pass': MARK}),
    ('/api/screen/consent', {'request_id': MARK, 'agree': True}),
    ('/api/screen/say', f'{{"text": "{MARK}'),                  # broken JSON
])
def test_the_422_answer_never_echoes_the_body(server, path, body):
    served = server()
    kwargs = {'content': body} if isinstance(body, str) else {'json': body}
    response = httpx.post(served.url + path, headers={'Origin': served.url, 'Content-Type': 'application/json'},
                          **kwargs)
    assert response.status_code == 422, response.text
    assert MARK not in response.text and response.json()['detail'][0]['msg']


# --- item 12: stream slots -----------------------------------------------------------------------

def _open_stream(client: httpx.Client, url: str, stack: contextlib.ExitStack, **kwargs) -> int:
    response = stack.enter_context(client.stream('GET', url, **kwargs))
    return response.status_code


@pytest.mark.parametrize('forwarded', [False, True])
def test_anonymous_streams_cannot_lock_out_the_robot_screen_or_the_console(server, forwarded):
    """32 idle anonymous streams (one address, or 32 addresses behind a trusted proxy)."""
    from retail_common.web_guard import Site
    served = server(site=Site.make('127.0.0.1', trusted_proxies=['127.0.0.1'] if forwarded else []))
    _, answer = _session(served)
    screen_token = served.app.state.screen_secret
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(httpx.Client(timeout=10, limits=httpx.Limits(max_connections=100)))
        statuses = [_open_stream(client, served.url + '/api/screen/stream', stack,
                                 headers={'X-Forwarded-For': f'10.0.0.{i}'} if forwarded else {})
                    for i in range(32)]
        assert statuses.count(200) == (16 if forwarded else 4), statuses
        assert set(statuses) == {200, 503}
        assert _open_stream(client, served.url + f'/api/screen/stream?screen={screen_token}', stack) == 200
        assert _open_stream(client, served.url + '/api/console/stream', stack,
                            headers={'Authorization': f'Bearer {answer["token"]}'}) == 200
        # a wrong screen secret is just another anonymous viewer
        assert _open_stream(client, served.url + '/api/screen/stream?screen=guess', stack,
                            headers={'X-Forwarded-For': '10.0.0.1'} if forwarded else {}) == 503


def test_an_idle_anonymous_stream_is_closed_and_its_slot_freed(server):
    served = server(public_stream_max_s=1.0)
    started = time.monotonic()
    with httpx.stream('GET', served.url + '/api/screen/stream', timeout=10) as response:
        assert response.status_code == 200
        for _ in response.iter_lines():
            pass
    assert time.monotonic() - started < 6
    wait_for(lambda: served.app.state.slots.open_count() == 0, 5, 'the slot freed')


def test_stream_slots_table():
    from retail_ui.streams import PUBLIC, SCREEN, STAFF, Budget, StreamSlots
    slots = StreamSlots({SCREEN: Budget(1, 1), STAFF: Budget(2, 1), PUBLIC: Budget(3, 2)})
    assert [slots.acquire(PUBLIC, 'a') for _ in range(3)] == ['', '', slots.acquire(PUBLIC, 'a')] != ['', '', '']
    assert slots.acquire(PUBLIC, 'b') == '' and slots.acquire(PUBLIC, 'c') != ''
    assert slots.acquire(STAFF, 's1') == '' and slots.acquire(STAFF, 's1') != '' and slots.acquire(STAFF, 's2') == ''
    assert slots.acquire(SCREEN, 'robot') == '' and slots.acquire(SCREEN, 'robot') != ''
    slots.release(PUBLIC, 'a')
    assert slots.acquire(PUBLIC, 'c') == ''


# --- item 13: consent only on the robot's own screen; staff enrolment works ----------------------

def test_no_page_carries_the_screen_secret(server):
    """Not even to a loopback client: a browser behind an SSH tunnel to the robot is one too."""
    from retail_common.web_guard import Site
    served = server(site=Site.make('127.0.0.1', trusted_proxies=['127.0.0.1']))
    secret = served.app.state.screen_secret
    for path in ('/', '/?screen=', '/console', '/static/screen.js', '/static/screen.html', '/api/screen/state',
                 '/api/screen/config', '/api/openapi.json'):
        for headers in ({}, {'X-Forwarded-For': '192.168.1.50'}):
            assert secret not in httpx.get(served.url + path, headers=headers).text, path


def _staff_enrol(served, answer, **body):
    return httpx.post(served.url + '/api/console/enroll',
                      json={'customer_id': 'm-42', 'display_name': 'Ms Lin', **body},
                      headers={'Authorization': f'Bearer {answer["token"]}', 'Origin': served.url})


def test_staff_enrolment_waits_for_the_customers_consent_on_the_screen(server):
    served = server()
    _, answer = _session(served)
    assert _staff_enrol(served, answer).status_code == 409                   # nobody in front
    served.model.on_customer('appeared', 7)
    assert _staff_enrol(served, answer, consent_ref='PAPER-1').status_code == 422   # consent is not staff's to give
    started = _staff_enrol(served, answer)
    assert started.status_code == 202
    request_id = started.json()['request_id']
    assert served.actions.enrolled == []
    assert httpx.get(served.url + '/api/screen/state').json()['consent_request'] == {'id': request_id, 'track_id': 7}
    agreed = httpx.post(served.url + '/api/screen/consent', json={'request_id': request_id, 'agree': True},
                        headers={'Origin': served.url, 'X-Screen-Token': served.app.state.screen_secret})
    assert agreed.status_code == 200, agreed.text
    [(customer_id, name, vip, consent, track)] = served.actions.enrolled
    assert (customer_id, name, vip, track) == ('m-42', 'Ms Lin', False, 7) and consent.startswith('screen-')
    console = httpx.get(served.url + '/api/console/state',
                        headers={'Authorization': f'Bearer {answer["token"]}'}).json()
    assert console['enrolment']['state'] == 'enrolled' and console['person_in_front'] == 7
    assert httpx.get(served.url + '/api/screen/state').json()['consent_request'] is None
    # answered once only
    again = httpx.post(served.url + '/api/screen/consent', json={'request_id': request_id, 'agree': True},
                       headers={'Origin': served.url, 'X-Screen-Token': served.app.state.screen_secret})
    assert again.json()['success'] is False and len(served.actions.enrolled) == 1
    assert all('m-42' not in line and 'Ms Lin' not in line for line in served.audit)


@pytest.mark.parametrize('what, headers, forwarded, status', [
    ('no screen secret', {}, '', 403),
    ('a guessed secret', {'X-Screen-Token': 'guess'}, '', 403),
    ('the secret relayed from the network by a proxy', {'X-Screen-Token': None}, '192.168.1.50', 403),
    ('the robot screen', {'X-Screen-Token': None}, '', 200),
])
def test_consent_is_accepted_only_from_the_robot_screen(server, what, headers, forwarded, status):
    from retail_common.web_guard import Site
    served = server(site=Site.make('127.0.0.1', trusted_proxies=['127.0.0.1']))
    _, answer = _session(served)
    served.model.on_customer('appeared', 3)
    request_id = _staff_enrol(served, answer).json()['request_id']
    headers = {k: (served.app.state.screen_secret if v is None else v) for k, v in headers.items()}
    if forwarded:
        headers['X-Forwarded-For'] = forwarded
    response = httpx.post(served.url + '/api/screen/consent', json={'request_id': request_id, 'agree': True},
                          headers={'Origin': served.url, **headers})
    assert response.status_code == status, what
    assert len(served.actions.enrolled) == (1 if status == 200 else 0), what


@pytest.mark.parametrize('what, step, state', [
    ('the customer declines', 'decline', 'declined'),
    ('another person stepped in front', 'switch', 'failed'),
    ('nobody answered in time', 'wait', 'expired'),
])
def test_an_enrolment_without_a_yes_from_the_person_in_front_enrols_nobody(server, what, step, state):
    served = server(consent_ttl_s=0.5)
    _, answer = _session(served)
    served.model.on_customer('appeared', 5)
    request_id = _staff_enrol(served, answer).json()['request_id']
    if step == 'switch':
        served.model.on_customer('left', 5)
        served.model.on_customer('appeared', 6)
    if step == 'wait':
        time.sleep(0.7)
    httpx.post(served.url + '/api/screen/consent', json={'request_id': request_id, 'agree': step != 'decline'},
               headers={'Origin': served.url, 'X-Screen-Token': served.app.state.screen_secret})
    assert served.actions.enrolled == [], what
    console = httpx.get(served.url + '/api/console/state',
                        headers={'Authorization': f'Bearer {answer["token"]}'}).json()
    assert console['enrolment']['state'] == state, what


@pytest.mark.parametrize('what, head, body', [
    ('gzip then chunked transfer coding', 'Transfer-Encoding: gzip, chunked\r\n',
     b'4000\r\n' + b'{' * 0x4000 + b'\r\n'),
    ('chunked with a huge chunk size', 'Transfer-Encoding: chunked\r\n', b'fffffffffff\r\n' + b'{' * 70000),
    ('both a length and chunked', 'Content-Length: 10\r\nTransfer-Encoding: chunked\r\n',
     b'4000\r\n' + b'{' * 0x4000 + b'\r\n'),
])
def test_other_transfer_encodings_are_refused_or_bounded(server, what, head, body):
    served = server()
    with socket.create_connection(('127.0.0.1', served.port), timeout=10) as s:
        s.sendall((f'POST /api/screen/say HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n'
                   f'Content-Type: application/json\r\n{head}\r\n').encode() + body)
        try:
            answer = s.recv(4096).split(b'\r\n', 1)[0].decode('latin-1')
        except ConnectionResetError:
            answer = 'reset'
    assert answer == 'reset' or answer.split()[1] in ('400', '413', '501'), (what, answer)
    assert served.actions.said == [], what


def test_a_compressed_body_is_never_inflated(server):
    """A gzip bomb (64 MiB of zeros in ~64 KiB) sent with Content-Encoding: gzip is taken as bytes."""
    import gzip
    served = server()
    bomb = gzip.compress(b'0' * (64 * 1024 * 1024), compresslevel=9)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    response = httpx.post(served.url + '/api/screen/say', content=bomb,
                          headers={'Content-Encoding': 'gzip', 'Content-Type': 'application/json'})
    assert response.status_code in (413, 422), response.status_code
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 32


def test_a_live_page_that_stops_reading_loses_its_stream_and_slot():
    """A client whose socket buffers are full blocks the server's send: after send_timeout_s the
    stream ends and its slot is released (unit level: a send that never completes)."""
    import asyncio
    from retail_ui.web import LiveResponse
    released = []

    async def body():
        try:
            while True:
                yield 'data: {}\n\n'
        finally:
            released.append(True)

    async def blocked_send(message):
        if message['type'] == 'http.response.body':
            await asyncio.Event().wait()                       # the client never reads

    async def run():
        response = LiveResponse(body(), media_type='text/event-stream', send_timeout_s=0.2)
        await asyncio.wait_for(response.stream_response(blocked_send), 5)
    started = time.monotonic()
    asyncio.run(run())
    assert time.monotonic() - started < 2 and released == [True]


@pytest.mark.parametrize('host, ok', [
    ('127.0.0.1', True), ('127.0.0.1:8090', True), ('localhost:8090', True), ('LOCALHOST:8090', True),
    ('[::1]:8090', True), ('192.168.1.23:8090', True),              # the address the connection came in on
    ('192.168.1.99:8090', False), ('attacker.example', False), ('localhost.attacker.example', False),
    ('localhost:80x', False), ('', False), ('a' * 300, False), ('127.0.0.1@attacker.example', False),
])
def test_host_header_table(host, ok):
    from retail_common.web_guard import Site, host_allowed
    assert host_allowed(host, Site.make('0.0.0.0'), server_address='192.168.1.23') is ok, host


@pytest.mark.parametrize('headers, refused', [
    ({'origin': 'http://127.0.0.1:8090'}, False),
    ({'origin': 'HTTP://127.0.0.1:8090'}, False),
    ({'origin': 'http://127.0.0.1:8091'}, True),
    ({'origin': 'http://127.0.0.1'}, True),
    ({'origin': 'null'}, True),
    ({'origin': ''}, True),
    ({'origin': 'http://127.0.0.1:8090', 'referer': 'http://attacker.example/'}, False),   # Origin decides
    ({'referer': 'http://127.0.0.1:8090/console?x=1'}, False),
    ({'referer': 'http://127.0.0.1:8090.attacker.example/'}, True),
    ({'referer': 'not a url'}, True),
    ({'cookie': 'retail_staff=abc'}, True),
    ({'cookie': 'other=1'}, False),
    ({}, False),
])
def test_origin_table(headers, refused):
    from retail_common.web_guard import origin_refusal
    assert bool(origin_refusal(headers, '127.0.0.1:8090', 'retail_staff')) is refused, headers


# --- a request head is due within a time (attack, session 12: slowloris) ------------------------

@pytest.mark.parametrize('opening', [b'GET /api/screen/state HTTP/1.1\r\nHost: 127.0.0.1\r\n', b''])
def test_a_head_sent_a_byte_at_a_time_or_never_is_408_and_closed(server, monkeypatch, opening):
    """400 connections each sending a header byte a second (or opened and left silent) held their
    sockets for ever and took the touch screen away once the robot's file limit was reached."""
    from retail_common.http_limits import BoundedH11Protocol
    monkeypatch.setattr(BoundedH11Protocol, 'head_timeout_s', 2.0)
    served = server()
    sock = socket.create_connection(('127.0.0.1', served.port), timeout=10)
    sock.sendall(opening)
    started, answer = time.monotonic(), b''
    while time.monotonic() - started < 20 and not answer:
        try:
            if opening:
                sock.sendall(b'X')                   # a header that never ends
        except OSError:
            break
        if select.select([sock], [], [], 0.5)[0]:
            answer = sock.recv(4096) or b'<closed>'
    sock.close()
    assert answer.startswith(b'HTTP/1.1 408 '), answer[:200]
    assert time.monotonic() - started < 15
    with httpx.Client(base_url=served.url, timeout=10) as client:   # the screen is served as before
        assert client.get('/api/screen/state').status_code == 200
        time.sleep(3)                                              # idle longer than the head bound
        assert client.get('/api/screen/state').status_code == 200


def test_deleting_a_member_never_deletes_another_by_a_cut_id(server):
    """Attack round s13: DELETE /api/console/members/{id} cut the id to 64 characters before
    asking perception, so deleting `<64 characters>x` (an id no enrolment can make) erased the
    member whose id is its first 64 characters. An id that is not an enrolment id (1-64 letters,
    digits, `_ . : -`) is now 404 and nothing is asked of the robot."""
    served = server()
    client, answer = _session(served)
    own = {'Origin': served.url, 'X-CSRF-Token': answer['csrf_token']}
    kept = 'm' * 64
    for wrong in (kept + 'x', kept + '0' * 100, 'm 1', 'm%2F1'):
        response = client.delete(f'/api/console/members/{wrong}', headers=own)
        assert response.status_code == 404, (wrong, response.text)
    assert served.actions.deleted == []
    assert client.delete(f'/api/console/members/{kept}', headers=own).status_code == 200
    assert served.actions.deleted == [kept]


@pytest.mark.parametrize('trusted', [True, False])
def test_the_console_behind_a_tls_proxy_signs_in_with_a_secure_cookie(server, trusted):
    """Attack round s13: behind a reverse proxy that terminates TLS (its address in
    trusted_proxies), the browser's Origin is https://..., which the guard compared with http://
    + Host: every console login and action was 403, and the session cookie never had Secure. The
    scheme a trusted proxy reports (X-Forwarded-Proto) now counts, as its X-Forwarded-For does;
    from anyone else the header is ignored (a forged https changes nothing)."""
    from retail_common.web_guard import Site
    served = server(site=Site.make('127.0.0.1', trusted_proxies=['127.0.0.1'] if trusted else []))
    https = 'https://' + served.url.split('://', 1)[1]
    proxied = {'Origin': https, 'X-Forwarded-Proto': 'https', 'X-Forwarded-For': '10.1.2.3'}
    with httpx.Client(base_url=served.url, timeout=10) as client:
        answer = client.post('/api/console/login', json={'password': STAFF_TOKEN}, headers=proxied)
        if not trusted:
            assert answer.status_code == 403, answer.text
            plain = client.post('/api/console/login', json={'password': STAFF_TOKEN},
                                headers={'Origin': served.url, 'X-Forwarded-Proto': 'https'})
            assert plain.status_code == 200 and 'secure' not in plain.headers['set-cookie'].lower()
            return
        assert answer.status_code == 200, answer.text
        cookies = answer.headers.get_list('set-cookie')
        assert all('secure' in c.lower() for c in cookies), cookies
        reset = client.post('/api/console/reset_safety', cookies={'retail_staff': answer.json()['token']},
                            headers={**proxied, 'X-CSRF-Token': answer.json()['csrf_token']})
        assert reset.status_code == 200, reset.text
        # the plain-http origin is another origin now
        other = client.post('/api/console/reset_safety', cookies={'retail_staff': answer.json()['token']},
                            headers={**proxied, 'Origin': served.url, 'X-CSRF-Token': answer.json()['csrf_token']})
        assert other.status_code == 403
