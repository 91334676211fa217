"""The reference platform under bad input and wrong credentials (issue 12 items 1-3, 6): every
bad event is a 4xx naming it, nothing is acked that is not stored, one bad request never wedges
the next ones, bodies are limited before and while they are read, and a robot's token opens only
that robot's endpoints."""
from __future__ import annotations

import gzip
import json
import socket
import time

import pytest
from fastapi.testclient import TestClient

from retail_sync.platform_app import (MAX_BATCH_BYTES, MAX_DECOMPRESSED, create_app, export_events,
                                      issue_token, revoke_tokens)
from sync_support import gzip_bomb

ADMIN = 'admin-secret'
ROBOT = 'robot-a'


@pytest.fixture
def app_db(tmp_path):
    return tmp_path / 'platform.sqlite3'


@pytest.fixture
def client(app_db):
    with TestClient(create_app(app_db, ADMIN), raise_server_exceptions=False) as test_client:
        test_client.headers['Authorization'] = f'Bearer {ADMIN}'
        yield test_client


def event(i: int, **changes) -> dict:
    base = {'event_id': f'e-{i}', 'seq': i, 'type': 'greeting', 'customer': 'p-1',
            'time': 1.7e9 + i, 'data': {'i': i}}
    base.update(changes)
    return base


def post(client, events, robot=ROBOT, raw: bytes | None = None, **headers):
    body = raw if raw is not None else json.dumps({'events': events}).encode()
    return client.post(f'/v1/robots/{robot}/events', content=body,
                       headers={'Content-Type': 'application/json', **headers})


def deep(levels: int) -> str:
    return '{"a":' * levels + '1' + '}' * levels


# Raw JSON texts, since json.dumps cannot write some of them (lone surrogates are written as
# the escape "\ud800", exactly what a buggy client sends).
BAD_BATCHES = {
    'time NaN': '{"events": [{"event_id": "b", "seq": 1, "type": "greeting", "time": NaN, "data": {}}]}',
    'time Infinity': '{"events": [{"event_id": "b", "seq": 1, "type": "greeting", "time": Infinity, "data": {}}]}',
    'time 1e400': '{"events": [{"event_id": "b", "seq": 1, "type": "greeting", "time": 1e400, "data": {}}]}',
    'time huge integer': '{"events": [{"event_id": "b", "seq": 1, "type": "greeting", "time": 1' + '0' * 400 + ', "data": {}}]}',
    'NaN in data': '{"events": [{"event_id": "b", "seq": 1, "type": "greeting", "time": 1, "data": {"x": [NaN]}}]}',
    'lone surrogate event_id': '{"events": [{"event_id": "\\ud800", "seq": 1, "type": "greeting", "time": 1, "data": {}}]}',
    'lone surrogate customer': '{"events": [{"event_id": "b", "seq": 1, "type": "greeting", "customer": "\\udfff", "time": 1, "data": {}}]}',
    'lone surrogate text': '{"events": [{"event_id": "b", "seq": 1, "type": "greeting", "time": 1, "data": {"t": "x\\ud800"}}]}',
    'lone surrogate key': '{"events": [{"event_id": "b", "seq": 1, "type": "greeting", "time": 1, "data": {"\\ud800": 1}}]}',
    'seq 2^63': '{"events": [{"event_id": "b", "seq": 9223372036854775808, "type": "greeting", "time": 1, "data": {}}]}',
    'seq 10^30': '{"events": [{"event_id": "b", "seq": 1000000000000000000000000000000, "type": "greeting", "time": 1, "data": {}}]}',
    'seq -1': '{"events": [{"event_id": "b", "seq": -1, "type": "greeting", "time": 1, "data": {}}]}',
    'seq true': '{"events": [{"event_id": "b", "seq": true, "type": "greeting", "time": 1, "data": {}}]}',
    'seq 1.5': '{"events": [{"event_id": "b", "seq": 1.5, "type": "greeting", "time": 1, "data": {}}]}',
    'data nested 33': '{"events": [{"event_id": "b", "seq": 1, "type": "greeting", "time": 1, "data": ' + deep(33) + '}]}',
    'data nested 1000': '{"events": [{"event_id": "b", "seq": 1, "type": "greeting", "time": 1, "data": ' + deep(1000) + '}]}',
    'data nested 100000': '{"events": [{"event_id": "b", "seq": 1, "type": "greeting", "time": 1, "data": ' + deep(100000) + '}]}',
    'customer too long': '{"events": [{"event_id": "b", "seq": 1, "type": "greeting", "customer": "' + 'c' * 200 + '", "time": 1, "data": {}}]}',
    'not JSON': '{"events": [',
    'not UTF-8': b'{"events": ["\xff"]}',
}


@pytest.mark.parametrize('name', BAD_BATCHES)
def test_a_bad_event_is_refused_and_the_next_good_one_is_stored(client, app_db, name):
    raw = BAD_BATCHES[name]
    response = post(client, None, raw=raw if isinstance(raw, bytes) else raw.encode())
    assert 400 <= response.status_code < 500 and response.status_code != 409, response.text
    good = post(client, [event(7)])
    assert good.status_code == 200 and good.json() == {
        'acked': 1, 'stored': 1, 'duplicates': 0,
        'results': [{'event_id': 'e-7', 'status': 'accepted'}]}
    assert [e['event_id'] for e in export_events(app_db, ROBOT)] == ['e-7']


def test_acked_means_stored_and_same_key_with_other_data_is_a_conflict(client, app_db):
    first = post(client, [event(1), event(2)])
    assert first.json() == {'acked': 2, 'stored': 2, 'duplicates': 0, 'results': [
        {'event_id': 'e-1', 'status': 'accepted'}, {'event_id': 'e-2', 'status': 'accepted'}]}
    assert post(client, [event(1)]).json() == {'acked': 1, 'stored': 0, 'duplicates': 1, 'results': [
        {'event_id': 'e-1', 'status': 'duplicate'}]}
    for change in ({'data': {'i': 99}}, {'type': 'guide'}, {'customer': 'p-2'}, {'time': 5.0}):
        clash = post(client, [event(3), event(1, **change)])
        assert clash.status_code == 409 and 'e-1' in clash.json()['detail'], change
    # A conflicting batch stores nothing at all, and nothing wedges.
    assert [e['event_id'] for e in export_events(app_db, ROBOT)] == ['e-1', 'e-2']
    assert post(client, [event(3)]).json()['stored'] == 1
    # Within one batch too.
    assert post(client, [event(4), event(4, data={'x': 1})]).status_code == 409


def test_a_failing_transaction_is_rolled_back_on_the_shared_connection(client, app_db):
    storage = client.app.state.storage
    calls = []
    original = storage.db

    class Exploding:
        """The connection, failing once in the middle of an INSERT."""

        def __getattr__(self, name):
            return getattr(original, name)

        def execute(self, sql, *args):
            if sql.startswith('INSERT INTO events') and not calls:
                calls.append(sql)
                raise RuntimeError('boom')
            return original.execute(sql, *args)
    storage.db = Exploding()
    assert post(client, [event(1), event(2)]).status_code == 500
    assert not original.in_transaction
    assert post(client, [event(3)]).json()['stored'] == 1
    assert [e['event_id'] for e in export_events(app_db, ROBOT)] == ['e-3']


def test_a_gzip_bomb_is_stopped_at_the_limit_without_expanding_it(client):
    bomb = gzip_bomb(1 << 30)                                   # 1 GiB of zeros
    assert len(bomb) < 2 * 1024 * 1024
    started = time.monotonic()
    response = post(client, None, raw=bomb, **{'Content-Encoding': 'gzip'})
    assert response.status_code == 413 and str(MAX_DECOMPRESSED) in response.json()['detail']
    assert time.monotonic() - started < 20          # only the first 64 MiB are ever inflated
    good = gzip.compress(json.dumps({'events': [event(1)]}).encode())
    assert post(client, None, raw=good, **{'Content-Encoding': 'gzip'}).json()['stored'] == 1
    for broken in (b'not gzip at all', good[:-12]):
        assert post(client, None, raw=broken, **{'Content-Encoding': 'gzip'}).status_code == 400


def test_bodies_over_the_limits_are_refused(client):
    big = b'x' * (MAX_BATCH_BYTES + 1)
    assert post(client, None, raw=big).status_code == 413
    assert post(client, [event(i) for i in range(10_001)]).status_code == 413

    def chunks():                                  # no Content-Length: counted while streaming
        for _ in range(17):
            yield b' ' * (1 << 20)
    response = client.post(f'/v1/robots/{ROBOT}/events', content=chunks())
    assert response.status_code == 413
    assert client.put('/v1/admin/promotions', content=b' ' * (33 * 1024 * 1024)).status_code == 413
    assert client.post('/v1/admin/appointments', content=b' ' * (65 * 1024)).status_code == 413
    bad = client.post('/v1/admin/appointments', json={'robot_id': '../x', 'customer': 'm-1',
                                                      'time': '2026-01-01T10:00'})
    assert bad.status_code == 422 and 'robot_id' in bad.json()['detail']
    deep_promotions = client.put('/v1/admin/promotions', content=('[' + deep(2000) + ']').encode())
    assert deep_promotions.status_code == 422


def test_content_length_is_refused_before_the_body_is_read(platform):
    """A real server: the 413 arrives although the announced 100 MB never come."""
    host, port = platform.url.removeprefix('http://').split(':')
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall((f'POST /v1/robots/{ROBOT}/events HTTP/1.1\r\nHost: x\r\n'
                      f'Authorization: Bearer {platform.token}\r\n'
                      'Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n').encode())
        answer = sock.recv(4096).decode()
    assert answer.startswith('HTTP/1.1 413'), answer


def test_the_real_server_keeps_storing_after_bad_requests(platform):
    with platform.client() as client:
        for raw in list(BAD_BATCHES.values())[:12]:
            data = raw if isinstance(raw, bytes) else raw.encode()
            response = client.post(f'/v1/robots/{ROBOT}/events', content=data)
            assert 400 <= response.status_code < 500, response.text
        ok = client.post(f'/v1/robots/{ROBOT}/events', json={'events': [event(1)]})
        assert ok.json()['stored'] == 1
    assert [e['event_id'] for e in platform.export(ROBOT)] == ['e-1']


def test_robot_tokens_open_only_their_robots_endpoints(client, app_db):
    token_a = issue_token(app_db, 'robot-a')
    token_b = issue_token(app_db, 'robot-b')
    assert token_a != token_b and len(token_a) >= 32
    assert token_a not in app_db.read_bytes().decode('latin-1')        # only its hash is stored
    assert client.put('/v1/admin/catalog?unchecked=true', content=b'sku\n').status_code == 200
    assert client.post('/v1/admin/appointments', json={
        'robot_id': 'robot-a', 'customer': 'm-1', 'time': '2026-01-01T10:00'}).status_code == 200

    def as_robot(token):
        return {'Authorization': f'Bearer {token}'}
    a = as_robot(token_a)
    assert post(client, [event(1)], robot='robot-a', **a).status_code == 200
    assert post(client, [event(2)], robot='robot-b', **a).status_code == 403
    assert client.get('/v1/robots/robot-a/appointments', headers=a).status_code == 200
    assert client.get('/v1/robots/robot-b/appointments', headers=a).status_code == 403
    assert client.get('/v1/catalog', headers=a).status_code == 200
    assert client.get('/v1/health', headers=a).status_code == 200
    for method, path in (('put', '/v1/admin/catalog'), ('put', '/v1/admin/promotions'),
                         ('post', '/v1/admin/appointments')):
        assert getattr(client, method)(path, content=b'[]', headers=a).status_code == 403
    # The admin token opens everything, robots' endpoints included.
    assert post(client, [event(3)], robot='robot-b').status_code == 200
    # Wrong, empty, other-scheme tokens.
    for header in ('Bearer nope', 'Bearer ', 'Basic ' + token_a, token_a, ''):
        assert client.get('/v1/health', headers={'Authorization': header}).status_code == 401
    # Revoked at once.
    assert revoke_tokens(app_db, 'robot-a') == 1
    assert post(client, [event(4)], robot='robot-a', **a).status_code == 401
    assert post(client, [event(5)], robot='robot-b', **as_robot(token_b)).status_code == 200


@pytest.mark.parametrize('robot_id', ['a b', '..', '-x', 'x' * 65, 'robot%2F1', 'r\u00e9'])
def test_robot_ids_are_validated(client, robot_id):
    response = post(client, [event(1)], robot=robot_id)
    assert response.status_code == 404, (robot_id, response.status_code)   # never quarantined


def test_an_empty_admin_token_is_refused(app_db):
    with pytest.raises(ValueError):
        create_app(app_db, '')
