"""The platform under bad input and wrong credentials, on SQLite and PostgreSQL alike: a bad
event is rejected with its reason while the rest of its batch is stored, nothing is acked that is
not stored, one bad request never wedges the next ones, bodies are limited before and while they
are read, and a robot's token opens only that robot's endpoints."""
from __future__ import annotations

import gzip
import json
import socket
import time

import pytest
from fastapi.testclient import TestClient

from platform_support import ADMIN, start_server
from retail_platform.app import MAX_BATCH_BYTES, MAX_DECOMPRESSED, create_app, export_events
from retail_platform.storage import Refused, Storage
from rostest_support import stop_process

ROBOT = 'robot-a'


def gzip_bomb(expands_to: int = 1 << 30) -> bytes:
    member = gzip.compress(b'\0' * (16 << 20), compresslevel=9)
    return member * max(1, expands_to // (16 << 20))


@pytest.fixture
def client(engine_target):
    with TestClient(create_app(engine_target, ADMIN), raise_server_exceptions=False) as test_client:
        test_client.headers['Authorization'] = f'Bearer {ADMIN}'
        yield test_client
        test_client.app.state.storage.close()


def event(i: int, **changes) -> dict:
    base = {'event_id': f'e-{i}', 'seq': i, 'type': 'guide', 'customer': 'p-1',
            'time': 1.7e9 + i, 'data': {'zone': 'kitchen', 'status': 'ended', 'stops_visited': i}}
    base.update(changes)
    return base


def post(client, events, robot=ROBOT, raw: bytes | None = None, **headers):
    body = raw if raw is not None else json.dumps({'events': events}).encode()
    return client.post(f'/v1/robots/{robot}/events', content=body,
                       headers={'Content-Type': 'application/json', **headers})


def statuses(response) -> list[str]:
    return [r['status'] for r in response.json()['results']]


def stored_ids(target, robot=ROBOT) -> list[str]:
    return [e['event_id'] for e in export_events(target, robot)]


def deep(levels: int) -> str:
    return '{"a":' * levels + '1' + '}' * levels


# One bad event in a batch of three: raw JSON texts, since json.dumps cannot write some of them.
BAD_EVENTS = {
    'time NaN': '{"event_id": "b", "seq": 5, "type": "greeting", "time": NaN, "data": {}}',
    'time Infinity': '{"event_id": "b", "seq": 5, "type": "greeting", "time": Infinity, "data": {}}',
    'time 1e400': '{"event_id": "b", "seq": 5, "type": "greeting", "time": 1e400, "data": {}}',
    'time huge integer': '{"event_id": "b", "seq": 5, "type": "greeting", "time": 1' + '0' * 400 + ', "data": {}}',
    'NaN in data': '{"event_id": "b", "seq": 5, "type": "greeting", "time": 1, "data": {"x": [NaN]}}',
    'lone surrogate event_id': '{"event_id": "\\ud800", "seq": 5, "type": "greeting", "time": 1, "data": {}}',
    'lone surrogate customer': '{"event_id": "b", "seq": 5, "type": "greeting", "customer": "\\udfff", "time": 1, "data": {}}',
    'lone surrogate text': '{"event_id": "b", "seq": 5, "type": "greeting", "time": 1, "data": {"t": "x\\ud800"}}',
    'lone surrogate key': '{"event_id": "b", "seq": 5, "type": "greeting", "time": 1, "data": {"\\ud800": 1}}',
    'seq 2^63': '{"event_id": "b", "seq": 9223372036854775808, "type": "greeting", "time": 1, "data": {}}',
    'seq -1': '{"event_id": "b", "seq": -1, "type": "greeting", "time": 1, "data": {}}',
    'seq true': '{"event_id": "b", "seq": true, "type": "greeting", "time": 1, "data": {}}',
    'seq 1.5': '{"event_id": "b", "seq": 1.5, "type": "greeting", "time": 1, "data": {}}',
    'version 0': '{"event_id": "b", "seq": 5, "type": "greeting", "version": 0, "time": 1, "data": {}}',
    'version text': '{"event_id": "b", "seq": 5, "type": "greeting", "version": "2", "time": 1, "data": {}}',
    'bad type': '{"event_id": "b", "seq": 5, "type": "Bad Type!", "time": 1, "data": {}}',
    'data a list': '{"event_id": "b", "seq": 5, "type": "greeting", "time": 1, "data": []}',
    'data nested 33': '{"event_id": "b", "seq": 5, "type": "greeting", "time": 1, "data": ' + deep(33) + '}',
    'face embedding': '{"event_id": "b", "seq": 5, "type": "greeting", "time": 1, "data": {"embedding": [' + ','.join(['0.1'] * 128) + ']}}',
    'customer too long': '{"event_id": "b", "seq": 5, "type": "greeting", "customer": "' + 'c' * 200 + '", "time": 1, "data": {}}',
    'no event_id': '{"seq": 5, "type": "greeting", "time": 1, "data": {}}',
    'undeclared type': '{"event_id": "b", "seq": 5, "type": "teleport", "time": 1, "data": {}}',
    'undeclared version': '{"event_id": "b", "seq": 5, "type": "guide", "version": 7, "time": 1, "data": {"zone": "k", "status": "ended"}}',
    'payload field wrong': '{"event_id": "b", "seq": 5, "type": "guide", "time": 1, "data": {"zone": "k", "status": "flying"}}',
    'payload unknown key': '{"event_id": "b", "seq": 5, "type": "guide", "time": 1, "data": {"zone": "k", "status": "ended", "i": 1}}',
    'not an object': '17',
    'NUL in event_id': '{"event_id": "b\\u0000c", "seq": 5, "type": "greeting", "time": 1, "data": {}}',
    'NUL in customer': '{"event_id": "b", "seq": 5, "type": "greeting", "customer": "p\\u0000", "time": 1, "data": {}}',
}


@pytest.mark.parametrize('name', BAD_EVENTS)
def test_a_bad_event_is_rejected_with_its_reason_and_the_others_are_stored(client, engine_target, name):
    raw = '{"events": [' + json.dumps(event(1)) + ', ' + BAD_EVENTS[name] + ', ' + \
        json.dumps(event(2)) + ']}'
    response = post(client, None, raw=raw.encode())
    assert response.status_code == 200, response.text
    answer = response.json()
    assert statuses(response) == ['accepted', 'rejected', 'accepted']
    assert answer['acked'] == 2 and answer['rejected'] == 1
    assert answer['results'][1]['reason'].startswith('events[1]'), answer['results'][1]
    assert answer['results'][0]['event_id'] == 'e-1' and answer['results'][2]['event_id'] == 'e-2'
    assert stored_ids(engine_target) == ['e-1', 'e-2']


BAD_BATCHES = {
    'not JSON': (b'{"events": [', 400),
    'not UTF-8': (b'{"events": ["\xff"]}', 400),
    'no events list': (b'{"evts": []}', 422),
    'a list': (b'[]', 422),
    'nested 100000': (b'{"events": [' + deep(100000).encode() + b']}', 422),
}


@pytest.mark.parametrize('name', BAD_BATCHES)
def test_a_bad_batch_is_refused_whole_and_the_next_is_stored(client, engine_target, name):
    raw, code = BAD_BATCHES[name]
    assert post(client, None, raw=raw).status_code == code
    good = post(client, [event(7)])
    assert good.status_code == 200 and statuses(good) == ['accepted'] and good.json()['acked'] == 1
    assert stored_ids(engine_target) == ['e-7']


def test_acked_means_stored_duplicates_and_reused_ids(client, engine_target):
    first = post(client, [event(1), event(2)])
    assert first.json()['acked'] == 2 and statuses(first) == ['accepted', 'accepted']
    again = post(client, [event(1)])
    assert again.json()['acked'] == 1 and statuses(again) == ['duplicate']
    for change in ({'data': {'zone': 'phones', 'status': 'ended'}}, {'customer': 'p-2'},
                   {'time': 5.0}):
        clash = post(client, [event(3, seq=100 + len(change)), event(1, **change)])
        assert statuses(clash)[1] == 'rejected', change
        assert clash.json()['results'][1]['reason'].startswith('event_id_reused'), change
    # Within one batch too: the first wins, the second is rejected.
    inner = post(client, [event(4), event(4, data={'zone': 'tv', 'status': 'started'})])
    assert statuses(inner) == ['accepted', 'rejected']
    stored = export_events(engine_target, ROBOT)
    assert [e['data']['stops_visited'] for e in stored if e['event_id'] == 'e-1'] == [1]


def test_a_reused_sequence_number_is_rejected_and_flagged(client, engine_target):
    assert statuses(post(client, [event(1), event(2)])) == ['accepted', 'accepted']
    # An outbox reset: new event ids, the same sequence numbers.
    reset = post(client, [event(101, seq=1), event(102, seq=2), event(103, seq=3)])
    assert statuses(reset) == ['rejected', 'rejected', 'accepted']
    assert all(r['reason'].startswith('seq_reused') for r in reset.json()['results'][:2])
    # ...told where to number on: after every seq held, this batch's accepted 3 included
    assert [r.get('next_seq') for r in reset.json()['results']] == [4, 4, None]
    # Within a batch.
    inner = post(client, [event(10), event(11, seq=10)])
    assert statuses(inner) == ['accepted', 'rejected']
    flags = client.get('/v1/admin/flags').json()
    assert sum(f['kind'] == 'seq_reused' for f in flags) == 3
    assert stored_ids(engine_target) == ['e-1', 'e-2', 'e-103', 'e-10']


def test_a_failing_transaction_is_rolled_back_and_nothing_is_acked(client, engine_target,
                                                                  monkeypatch):
    storage = client.app.state.storage
    original = storage._insert_events
    calls = []

    def exploding(connection, fresh, *rest):
        if not calls:
            calls.append(1)
            original(connection, fresh, *rest)   # written, then the transaction fails
            raise RuntimeError('boom')
        return original(connection, fresh, *rest)
    monkeypatch.setattr(storage, '_insert_events', exploding)
    assert post(client, [event(1), event(2)]).status_code == 500
    assert stored_ids(engine_target) == []
    assert statuses(post(client, [event(3)])) == ['accepted']
    assert stored_ids(engine_target) == ['e-3']


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
    assert client.put('/v1/products', content=b' ' * (33 * 1024 * 1024)).status_code == 413
    assert client.post('/v1/admin/appointments', content=b' ' * (65 * 1024)).status_code == 413
    bad = client.post('/v1/admin/appointments', json={'robot_id': '../x', 'customer': 'm-1',
                                                      'time': '2026-01-01T10:00'})
    assert bad.status_code == 422 and 'robot_id' in bad.json()['detail']
    for field in ('customer', 'time', 'purpose', 'note'):      # PostgreSQL text holds no NUL
        body = dict({'customer': 'm-1', 'time': '2026-01-01T10:00'}, **{field: 'a\x00b'})
        nul = client.post('/v1/admin/appointments', json=body)
        assert nul.status_code == 422 and field in nul.json()['detail'], field
    assert client.post('/v1/admin/stores', json={'id': 's-9', 'name': 'x\x00'}).status_code == 422
    for when in ('9999-12-31T23:30:00', '1900-01-01T10:00', 'tomorrow at ten', '2026-13-01T10:00', '2026-01-01'):
        # attack (session 12): a booking no clock could hold was stored and crashed the store's robots
        refused = client.post('/v1/admin/appointments', json={'customer': 'm-1', 'time': when})
        assert refused.status_code == 422 and 'time' in refused.json()['detail'], when
    deep_promotion = client.put('/v1/promotions/p-deep', content=(
        '{"scope": "chain", "content": ' + deep(2000) + '}').encode())
    assert deep_promotion.status_code == 422 and 'nested' in deep_promotion.json()['detail']


@pytest.fixture
def server(engine_target):
    server = start_server(engine_target)
    yield server
    stop_process(server.process)


def test_content_length_is_refused_before_the_body_is_read(server):
    """A real server: the 413 arrives although the announced 100 MB never come."""
    host, port = server.url.removeprefix('http://').split(':')
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall((f'POST /v1/robots/{ROBOT}/events HTTP/1.1\r\nHost: x\r\n'
                      f'Authorization: Bearer {server.token}\r\n'
                      'Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n').encode())
        answer = sock.recv(4096).decode()
    assert answer.startswith('HTTP/1.1 413'), answer


def test_the_real_server_keeps_storing_after_bad_requests(server):
    with server.client() as client:
        for raw, _code in BAD_BATCHES.values():
            assert 400 <= client.post(f'/v1/robots/{ROBOT}/events', content=raw).status_code < 500
        ok = client.post(f'/v1/robots/{ROBOT}/events', json={'events': [event(1)]})
        assert ok.json()['stored'] == 1
    assert [e['event_id'] for e in server.export(ROBOT)] == ['e-1']


def test_robot_tokens_open_only_their_robots_endpoints(client, engine_target):
    storage = Storage(engine_target)
    try:
        storage.add_store('s1', 'Store one')
        token_a = storage.issue_robot_token('robot-a', 's1')
        token_b = storage.issue_robot_token('robot-b', 's1')
        # A second token for a robot that has one is refused (two robots, one id), unless replaced.
        with pytest.raises(Refused, match='already has an active token'):
            storage.issue_robot_token('robot-a', 's1')
    finally:
        storage.close()
    assert token_a != token_b and len(token_a) >= 32
    assert client.post('/v1/admin/appointments', json={
        'robot_id': 'robot-a', 'customer': 'm-1', 'time': '2026-01-01T10:00'}).status_code == 200

    def as_robot(token):
        return {'Authorization': f'Bearer {token}'}
    a = as_robot(token_a)
    assert post(client, [event(1)], robot='robot-a', **a).status_code == 200
    assert post(client, [event(2)], robot='robot-b', **a).status_code == 403
    assert client.get('/v1/robots/robot-a/appointments', headers=a).status_code == 200
    assert client.get('/v1/robots/robot-b/appointments', headers=a).status_code == 403
    assert client.get('/v1/robots/robot-a/downlink', headers=a).status_code == 200
    assert client.get('/v1/robots/robot-b/downlink', headers=a).status_code == 403
    for method, path, body in (('put', '/v1/products', {'products': []}),
                               ('put', '/v1/promotions/p-1', {'scope': 'chain', 'content': {}}),
                               ('post', '/v1/admin/appointments', {'robot_id': 'robot-a',
                                'customer': 'm-1', 'time': '2026-01-01T10:00'})):
        assert getattr(client, method)(path, json=body, headers=a).status_code == 403, path
    assert post(client, [event(3)], robot='robot-b').status_code == 200     # admin: everything
    for header in ('Bearer nope', 'Bearer ', 'Basic ' + token_a, token_a, ''):
        assert client.get('/v1/robots/robot-a/downlink',
                          headers={'Authorization': header}).status_code == 401
    storage = Storage(engine_target)
    try:
        assert storage.revoke_robot('robot-a') == 1          # revoked at once
        token_a2 = storage.issue_robot_token('robot-a', 's1')
    finally:
        storage.close()
    assert post(client, [event(4)], robot='robot-a', **a).status_code == 401
    assert post(client, [event(4)], robot='robot-a', **as_robot(token_a2)).status_code == 200
    assert post(client, [event(5)], robot='robot-b', **as_robot(token_b)).status_code == 200


@pytest.mark.parametrize('robot_id', ['a b', '..', '-x', 'x' * 65, 'robot%2F1', 'r\u00e9'])
def test_robot_ids_are_validated(client, robot_id):
    response = post(client, [event(1)], robot=robot_id)
    assert response.status_code == 404, (robot_id, response.status_code)   # never quarantined


def test_generic_mode_checks_only_the_outbox_rules(tmp_path):
    with TestClient(create_app(tmp_path / 'p.sqlite3', ADMIN, contracts=False)) as client:
        client.headers['Authorization'] = f'Bearer {ADMIN}'
        answer = post(client, [event(1, type='teleport', data={'free': 'form'}),
                               event(2, data={'embedding': [0.1] * 128})])
        assert statuses(answer) == ['accepted', 'rejected']       # face data: never
        client.app.state.storage.close()


def test_an_empty_admin_token_is_refused(tmp_path):
    with pytest.raises(ValueError):
        create_app(tmp_path / 'x.sqlite3', '')
