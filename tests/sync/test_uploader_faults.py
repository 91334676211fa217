"""Uploader faults (issues 12, 21): an event the platform fails on (HTTP 500) is never
quarantined and does not block everything behind it, a conflict is quarantined with its reason, a wall-clock step never delays uploads,
and `--once` gives up after a bounded time. The platform here is a stand-in transport (a unit
test); the real platform's answers are tested in test_platform_faults.py."""
from __future__ import annotations

import contextlib
import gzip
import json
import threading
import time

import httpx
import pytest

from retail_sync.outbox import Outbox
from retail_sync.uploader import DONE, UNREACHABLE, Uploader, UploaderConfig
from sync_support import ROBOT, free_port, sync_cli
from test_outbox_faults import FakeClock


class FakePlatform:
    """Stores events; answers 500 to any batch holding a `poison` event, 409 to `clash`."""

    def __init__(self, broken: bool = False) -> None:
        self.stored: dict[str, dict] = {}
        self.broken = broken
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        events = json.loads(gzip.decompress(request.content))['events']
        if self.broken or any(e['data'].get('poison') for e in events):
            return httpx.Response(500, text='Internal Server Error')
        if any(e['data'].get('clash') for e in events):
            return httpx.Response(409, json={'detail': 'event_id already stored with different content'})
        for e in events:
            self.stored[e['event_id']] = e
        return httpx.Response(200, json={'acked': len(events), 'stored': len(events), 'duplicates': 0,
                                         'results': [{'event_id': e['event_id'], 'status': 'accepted'}
                                                     for e in events]})


def uploader_for(outbox, platform, **config) -> Uploader:
    return Uploader(outbox, UploaderConfig(platform_url='http://platform.test', token='t',
                                           robot_id=ROBOT, backoff_initial_s=0.01,
                                           backoff_max_s=0.02, **config),
                    transport=httpx.MockTransport(platform))


@pytest.mark.parametrize('position', [0, 13, 99])
def test_an_event_the_platform_fails_on_stays_pending_and_everything_behind_it_is_delivered(
        tmp_path, position):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    outbox.append_many([{'type': 'guide', 'data': {'i': i, 'poison': i == position}}
                        for i in range(100)])
    platform = FakePlatform()
    uploader = uploader_for(outbox, platform, batch_size=100)
    assert uploader.run(threading.Event(), until_empty=True, give_up_s=1.0) == UNREACHABLE
    assert len(platform.stored) == 99 and outbox.quarantined() == []     # 5xx never quarantines
    [kept] = outbox.read_batch(10)
    assert json.loads(kept.data)['i'] == position
    assert 'HTTP 500' in uploader.last_error


def test_a_platform_failing_on_everything_quarantines_nothing(tmp_path):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    outbox.append_many([{'type': 'guide', 'data': {'i': i}} for i in range(20)])
    uploader = uploader_for(outbox, FakePlatform(broken=True))
    assert uploader.run(threading.Event(), until_empty=True, give_up_s=0.5) == UNREACHABLE
    assert outbox.pending() == 20 and outbox.quarantined() == []
    assert 'HTTP 500' in uploader.last_error


def test_a_conflict_is_quarantined_with_the_platforms_reason(tmp_path):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    outbox.append_many([{'type': 'guide', 'data': {'i': i, 'clash': i == 3}} for i in range(8)])
    platform = FakePlatform()
    assert uploader_for(outbox, platform).run(threading.Event(), until_empty=True) == DONE
    [held] = outbox.quarantined()
    assert held['reason'].startswith('HTTP 409') and 'different content' in held['reason']
    assert len(platform.stored) == 7


@pytest.mark.parametrize('wall_time', [86400.0, 4e9, time.time() + 3600.0], ids=['one day after the epoch', 'year 2096', 'an hour from now'])
def test_a_partial_batch_waits_by_the_outbox_clock_not_the_wall_clock(tmp_path, wall_time):
    clock = FakeClock()
    outbox = Outbox(tmp_path / 'outbox.sqlite3', clock=clock, contract=False)
    outbox.append('guide', {}, time_s=wall_time)          # recorded before a clock step
    platform = FakePlatform()
    uploader = uploader_for(outbox, platform, max_delay_s=2.0, batch_size=500)
    assert uploader.upload_once(flush=False) == 0          # young: waits for company
    clock.since_boot += 2.5
    assert uploader.upload_once(flush=False) == 1          # 2.5 s later, whatever the wall clock
    assert len(platform.stored) == 1


def test_sync_run_once_against_an_unreachable_platform_gives_up_in_bounded_time(tmp_path):
    outbox = tmp_path / 'outbox.sqlite3'
    Outbox(outbox, contract=False).append('guide', {})
    started = time.monotonic()
    result = sync_cli('run', '--outbox', str(outbox), '--platform', f'http://127.0.0.1:{free_port()}',
                      '--token', 't', '--robot-id', ROBOT, '--once', '--give-up-after', '2',
                      '--backoff-max', '0.5', timeout=60)
    assert result.returncode == 6, result.stderr
    assert time.monotonic() - started < 30
    last = result.stderr.strip().splitlines()[-1]
    assert 'unreachable' in last and '1 events kept' in last
    assert 'Traceback' not in result.stderr


@pytest.mark.parametrize('kind', ['gzip bomb', 'plain huge', 'huge 500'])
def test_a_huge_answer_is_not_read_into_memory_and_deletes_nothing(tmp_path, kind):
    """Attack round: the answer's size was unbounded (httpx reads and gunzips all of it)."""
    from retail_sync.uploader import MAX_ANSWER_BYTES, TransientError
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    outbox.append_many([{'type': 'guide', 'data': {'i': i}} for i in range(5)])
    filler = b' ' * (MAX_ANSWER_BYTES + 1024)

    def platform(request: httpx.Request) -> httpx.Response:
        ids = [e['event_id'] for e in json.loads(gzip.decompress(request.content))['events']]
        answer = json.dumps({'acked': 5, 'results': [{'event_id': i, 'status': 'accepted'} for i in ids]}).encode()
        body = answer[:-1] + filler + b'}'
        if kind == 'gzip bomb':
            return httpx.Response(200, content=gzip.compress(body), headers={'Content-Encoding': 'gzip'})
        return httpx.Response(500 if kind == 'huge 500' else 200, content=body)
    uploader = uploader_for(outbox, platform)
    with pytest.raises(TransientError, match='longer than'):
        uploader.upload_once()
    assert outbox.pending() == 5 and outbox.quarantined() == []


def test_an_answer_under_the_cap_still_confirms_by_id(tmp_path):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    outbox.append_many([{'type': 'guide', 'data': {'i': i}} for i in range(5)])

    def platform(request: httpx.Request) -> httpx.Response:
        ids = [e['event_id'] for e in json.loads(gzip.decompress(request.content))['events']]
        body = json.dumps({'acked': 5, 'results': [{'event_id': i, 'status': 'accepted'} for i in ids]})
        return httpx.Response(200, content=gzip.compress(body.encode()), headers={'Content-Encoding': 'gzip'})
    assert uploader_for(outbox, platform).upload_once() == 5
    assert outbox.pending() == 0


@pytest.mark.parametrize('status, body', [
    (400, '<html><body>Bad Request (proxy)</body></html>'), (403, 'forbidden by policy'),
    (413, '<html>413 Request Entity Too Large</html>'), (422, '{"detail": "invalid"}'),
    (409, '{"detail": "conflict"}'),
])
@pytest.mark.parametrize('count', [1, 2, 37])
def test_a_4xx_to_every_event_alike_quarantines_nothing(tmp_path, status, body, count):
    """Attack round: a proxy (or a platform) answering the same 4xx to everything made the bisection
    quarantine the whole backlog for good, one event at a time."""
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    outbox.append_many([{'type': 'guide', 'data': {'i': i}} for i in range(count)])
    uploader = uploader_for(outbox, lambda request: httpx.Response(status, text=body))
    if status == 403:       # refused credentials stop the uploads as before
        assert uploader.run(threading.Event(), until_empty=True, give_up_s=0.5) != DONE
    else:
        assert uploader.run(threading.Event(), until_empty=True, give_up_s=0.5) == UNREACHABLE
        assert 'not isolated' in uploader.last_error
    assert outbox.pending() == count and outbox.quarantined() == []


def test_an_event_refused_alone_is_quarantined_once_the_others_got_through(tmp_path):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    outbox.append_many([{'type': 'guide', 'data': {'i': 0, 'clash': True}}])
    platform = FakePlatform()
    uploader = uploader_for(outbox, platform)
    assert uploader.run(threading.Event(), until_empty=True, give_up_s=0.3) == UNREACHABLE
    assert outbox.pending() == 1 and outbox.quarantined() == []          # alone: not known to be the event's fault
    outbox.append_many([{'type': 'guide', 'data': {'i': 1}}])
    assert uploader.run(threading.Event(), until_empty=True, give_up_s=2.0) == DONE
    [held] = outbox.quarantined()
    assert held['reason'].startswith('HTTP 409') and len(platform.stored) == 1


def test_a_whole_oldest_batch_refused_alone_does_not_hold_the_events_behind_it(tmp_path):
    """Attack (session 12): 20 events each refused alone (409), then 5 good ones, batches of 10:
    the oldest batch was "a 4xx to every event alike" round after round and the good ones behind
    it were never tried. The next event alone tells the events' fault from the platform's."""
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    outbox.append_many([{'type': 'guide', 'data': {'i': i, 'clash': True}} for i in range(20)]
                       + [{'type': 'guide', 'data': {'i': 20 + i}} for i in range(5)])
    platform = FakePlatform()
    uploader = uploader_for(outbox, platform, batch_size=10)
    assert uploader.run(threading.Event(), until_empty=True, give_up_s=5.0) == DONE
    assert len(platform.stored) == 5 and outbox.pending() == 0
    assert len(outbox.quarantined()) == 20 and all(q['reason'].startswith('HTTP 409') for q in outbox.quarantined())


def test_a_platform_trickling_its_answer_does_not_hold_the_uploader(tmp_path):
    """Attack (session 12): an answer sent a byte every 0.5 s (each read within the timeout) held
    one upload for as long as the server liked; now the body is read within 3 read timeouts."""
    import socket
    from retail_sync.uploader import TransientError
    done_trickling = threading.Event()
    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen(1)

    def serve():
        conn, _ = server.accept()
        conn.recv(1 << 20)
        conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n')
        end = time.monotonic() + 30
        try:
            while time.monotonic() < end:
                conn.sendall(b' ')
                time.sleep(0.5)
        except OSError:
            pass                                   # the robot hung up: what we want
        done_trickling.set()
        conn.close()
    threading.Thread(target=serve, daemon=True).start()
    outbox = Outbox(tmp_path / 'o.sqlite3')
    outbox.append('greeting', {'member': False, 'vip': False, 'appointment': False})
    uploader = Uploader(outbox, UploaderConfig(f'http://127.0.0.1:{server.getsockname()[1]}', 't', ROBOT,
                                               timeout_s=1.0))
    with pytest.raises(TransientError, match='not complete within 3 s'):
        uploader.upload_once()
    assert not done_trickling.is_set()              # given up while the platform was still trickling
    assert outbox.pending() == 1                    # nothing deleted
    server.close()


@contextlib.contextmanager
def answering(status: int, headers: dict[str, str], body: bytes = b'', posted: list | None = None):
    """A real HTTP server on loopback answering every POST with `status`, `headers`, `body`
    (the paths posted to are appended to `posted`); yields its base URL."""
    import http.server

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_POST(self):                                  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers.get('content-length', 0)))
            if posted is not None:
                posted.append(self.path)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value.replace('{path}', self.path))
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f'http://127.0.0.1:{server.server_port}'
    finally:
        server.shutdown()
        server.server_close()


def test_sync_run_once_against_a_busy_platform_says_busy_not_unreachable(tmp_path):
    """A platform that answers 429 with a Retry-After beyond --give-up-after is busy, not
    unreachable: the line and the JSON outcome say so (a technician would chase the network)."""
    outbox = tmp_path / 'outbox.sqlite3'
    Outbox(outbox, contract=False).append('guide', {})
    with answering(429, {'Retry-After': '600', 'Content-Type': 'application/json'},
                   b'{"detail": "catching up is paced"}') as platform:
        for extra in ([], ['--json']):
            result = sync_cli('run', '--outbox', str(outbox), '--platform', platform, '--token', 't',
                              '--robot-id', ROBOT, '--once', '--give-up-after', '1', *extra, timeout=60)
            assert result.returncode == 6, result.stderr
            last = result.stderr.strip().splitlines()[-1]
            assert 'busy' in last and 'unreachable' not in last and 'HTTP 429' in last, last
            assert '1 events kept' in last
            if extra:
                assert json.loads(result.stdout)['outcome'] == 'busy'


@pytest.mark.parametrize('status', [301, 302, 307, 308])
def test_a_platform_url_that_redirects_stops_uploads_naming_where_to(tmp_path, status):
    """Session 13: an http:// URL for an https:// platform (or an old address) was 'platform
    unreachable' after --give-up-after, and the agent said 'platform away' for good while the
    backlog grew; the redirect is never followed (the token would go where a proxy points)."""
    posted: list[str] = []
    outbox = tmp_path / 'outbox.sqlite3'
    Outbox(outbox, contract=False).append('guide', {})
    with answering(status, {'Location': 'https://platform.example.com{path}'}, posted=posted) as platform:
        result = sync_cli('run', '--outbox', str(outbox), '--platform', platform, '--token', 't',
                          '--robot-id', ROBOT, '--once', '--give-up-after', '30', '--json', timeout=60)
    assert result.returncode == 3, result.stderr
    assert json.loads(result.stdout)['outcome'] == 'refused' and json.loads(result.stdout)['pending'] == 1
    assert f'redirects (HTTP {status}) to https://platform.example.com/v1/robots/{ROBOT}/events' in result.stderr
    assert len(posted) == 1                          # not followed, not hammered
