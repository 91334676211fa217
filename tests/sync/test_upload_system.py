"""`retailbot sync run` against a real reference platform process: crashes, outages, bad input."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from retail_sync.outbox import Outbox
from rostest_support import console_script, stop_process, wait_for
from sync_support import (ROBOT, TOKEN, emit, free_port, make_events, outbox_status,
                          start_platform, sync_cli)


def run_args(outbox, url, *extra, token=TOKEN):
    return ['run', '--outbox', str(outbox), '--platform', url, '--token', token,
            '--robot-id', ROBOT, '--once', *extra]


def assert_stored_exactly_once(platform, events):
    stored = platform.export()
    by_index = {}
    for event in stored:
        by_index.setdefault(event['data']['i'], []).append(event)
    assert len(stored) == len(events), f'{len(stored)} stored for {len(events)} emitted'
    for expected in events:
        copies = by_index.get(expected['data']['i'], [])
        assert len(copies) == 1, f'event {expected["data"]["i"]} stored {len(copies)} times'
        assert copies[0]['data'] == expected['data'] and copies[0]['type'] == expected['type']
        assert copies[0]['customer'] == expected['customer']
    seqs = [event['seq'] for event in stored]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


@pytest.mark.slow
def test_kill_9_mid_drain_repeatedly_every_event_stored_once(platform, tmp_path):
    outbox = tmp_path / 'outbox.sqlite3'
    events = make_events(30_000)
    emit(outbox, events, tmp_path)
    rng = random.Random(7)
    interrupted = 0
    for _ in range(8):
        proc = subprocess.Popen([console_script('retailbot'), 'sync',
                                 *run_args(outbox, platform.url, '--batch-size', '100')],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        start_pending = outbox_status(outbox)['pending']
        # Kill as soon as this run has made some progress, at a random point of a batch.
        wait_for(lambda: outbox_status(outbox)['pending'] < start_pending or proc.poll() is not None,
                 timeout=30, what='the uploader to make progress')
        time.sleep(rng.uniform(0.0, 0.15))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        pending = outbox_status(outbox)['pending']
        if 0 < pending < len(events):
            interrupted += 1
        if pending == 0:
            break
    assert interrupted >= 2, 'the uploader was never killed mid-drain'
    final = sync_cli(*run_args(outbox, platform.url))
    assert final.returncode == 0, final.stderr
    assert outbox_status(outbox)['pending'] == 0
    assert_stored_exactly_once(platform, events)


class FlakyPlatform:
    """A front for the real platform on 127.0.0.1 that misbehaves on the first requests."""

    def __init__(self, upstream: str, script: list[str], slow_s: float = 1.5) -> None:
        self.script = list(script)
        self.seen: list[tuple[str, float]] = []
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers['Content-Length']))
                mode = flaky.script.pop(0) if flaky.script else 'forward'
                flaky.seen.append((mode, time.monotonic()))
                if mode == '500':
                    return self._answer(500, b'{"detail": "internal error"}')
                if mode == 'garbage':
                    return self._answer(200, b'<html>\x00\xff proxy error')
                answer = httpx.post(upstream + self.path, content=body, timeout=10, headers={
                    k: v for k, v in self.headers.items() if k.lower() != 'host'})
                if mode == 'slow':           # stored upstream, but the ack comes too late
                    time.sleep(slow_s)
                if mode == 'garble_ack':     # stored upstream, the ack is lost in transit
                    return self._answer(200, b'{"ack')
                self._answer(answer.status_code, answer.content)

            def _answer(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header('Content-Length', str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.server.server_address[1]}'
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_500_garbage_slow_and_lost_acks_back_off_then_deliver_once(platform, tmp_path):
    outbox = tmp_path / 'outbox.sqlite3'
    events = make_events(1000)
    emit(outbox, events, tmp_path)
    script = ['500', '500', 'garbage', 'slow', 'garble_ack', '500']
    flaky = FlakyPlatform(platform.url, script)
    try:
        result = sync_cli(*run_args(outbox, flaky.url, '--batch-size', '200', '--timeout', '0.5',
                                    '--backoff-max', '0.8'), timeout=60)
    finally:
        flaky.close()
    assert result.returncode == 0, result.stderr
    assert 'HTTP 500' in result.stderr and 'retrying in' in result.stderr
    assert [mode for mode, _ in flaky.seen[:6]] == script
    # Backoff doubles after each consecutive failure, jittered within [c/2, c]: c = 0.2, 0.4, 0.8.
    times = [t for _, t in flaky.seen]
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2 and gaps[2] >= 0.4, gaps
    assert outbox_status(outbox)['pending'] == 0
    assert_stored_exactly_once(platform, events)


def test_platform_down_at_first_then_delivered(tmp_path):
    outbox = tmp_path / 'outbox.sqlite3'
    events = make_events(300)
    emit(outbox, events, tmp_path)
    port = free_port()
    proc = subprocess.Popen([console_script('retailbot'), 'sync',
                             *run_args(outbox, f'http://127.0.0.1:{port}', '--backoff-max', '0.5')],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    failures = []
    reader = threading.Thread(target=lambda: failures.extend(proc.stderr), daemon=True)
    reader.start()
    wait_for(lambda: len(failures) >= 3, timeout=20, what='three failed attempts while down')
    assert 'platform unreachable' in failures[0]
    assert outbox_status(outbox)['pending'] == 300          # nothing lost while down
    platform = start_platform(tmp_path / 'late.sqlite3', port)
    try:
        assert proc.wait(timeout=30) == 0
        assert_stored_exactly_once(platform, events)
    finally:
        stop_process(proc)
        stop_process(platform.process)


def test_wrong_token_uploads_nothing_loses_nothing_and_fails(platform, tmp_path):
    outbox = tmp_path / 'outbox.sqlite3'
    emit(outbox, make_events(250), tmp_path)
    result = sync_cli(*run_args(outbox, platform.url, token='stolen-or-stale'), timeout=30)
    assert result.returncode == 3
    assert 'refused the token (HTTP 401)' in result.stderr
    assert platform.export() == []
    status = outbox_status(outbox)
    assert status['pending'] == 250 and status['quarantined'] == 0


def test_wrong_platform_url_stops_without_quarantining_anything(platform, tmp_path):
    outbox = tmp_path / 'outbox.sqlite3'
    emit(outbox, make_events(20), tmp_path)
    result = sync_cli(*run_args(outbox, platform.url + '/wrong-prefix'), timeout=30)
    assert result.returncode == 3 and 'check platform_url' in result.stderr
    status = outbox_status(outbox)
    assert status['pending'] == 20 and status['quarantined'] == 0


def test_invalid_events_are_quarantined_and_the_rest_flows(platform, tmp_path):
    outbox = tmp_path / 'outbox.sqlite3'
    bad = {3, 250, 251, 777}
    events = make_events(1000, bad_types=bad)
    emit(outbox, events, tmp_path)
    result = sync_cli(*run_args(outbox, platform.url, '--batch-size', '100'))
    assert result.returncode == 0, result.stderr
    status = outbox_status(outbox)
    assert status['pending'] == 0 and status['quarantined'] == len(bad)
    quarantined = Outbox(outbox, contract=False).quarantined()
    assert all('Bad Type!' in q['reason'] for q in quarantined), [q['reason'] for q in quarantined]
    assert_stored_exactly_once(platform, [e for e in events if e['data']['i'] not in bad])


def test_platform_refuses_face_data_and_unauthenticated_requests(platform):
    with platform.client() as client:
        face = {'events': [{'event_id': 'x1', 'seq': 1, 'type': 'greeting', 'customer': '',
                            'time': 1.0, 'data': {'encoding': [0.1] * 128}}]}
        answer = client.post(f'/v1/robots/{ROBOT}/events', json=face)
        # Answered per event (the rest of a batch would be stored): this one is rejected, with why.
        assert answer.status_code == 200, answer.text
        [result] = answer.json()['results']
        assert result['status'] == 'rejected' and 'face data' in result['reason'], result
        for path in ('/openapi.json', f'/v1/robots/{ROBOT}/downlink', f'/v1/robots/{ROBOT}/appointments'):
            assert httpx.get(platform.url + path).status_code == 401
        assert client.get('/openapi.json').json()['paths'][
            '/v1/robots/{robot_id}/events']['post']
    assert platform.export() == []


def test_sync_now_after_the_network_is_back_does_not_wait_out_the_backoff(tmp_path):
    from retail_sync.uploader import Uploader, UploaderConfig
    port = free_port()
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    events = make_events(3)
    outbox.append_many(events)
    uploader = Uploader(outbox, UploaderConfig(platform_url=f'http://127.0.0.1:{port}', token=TOKEN,
                                               robot_id=ROBOT, backoff_initial_s=120.0, backoff_max_s=120.0))
    stop, wake = threading.Event(), threading.Event()
    thread = threading.Thread(target=uploader.run, args=(stop, wake), daemon=True)
    thread.start()
    platform = None
    try:
        wait_for(lambda: uploader.backoff.failures >= 1, 20, 'an upload failing (platform away)')
        platform = start_platform(tmp_path / 'platform.sqlite3', port)   # the network is back
        wake.set()                                                         # sync now
        wait_for(lambda: outbox.pending() == 0, 20, 'the outbox drained long before the 60-120 s backoff')
        assert_stored_exactly_once(platform, events)
    finally:
        stop.set()
        wake.set()
        thread.join(10)
        outbox.close()
        if platform is not None:
            stop_process(platform.process)


def test_a_reused_idempotency_key_is_quarantined_with_the_platforms_reason(platform, tmp_path):
    """Two outboxes (say, one restored from a backup) send the same event_id with other data:
    the platform rejects that event (`event_id_reused`), the uploader quarantines it with the
    platform's reason and delivers the rest."""
    first, second = tmp_path / 'first.sqlite3', tmp_path / 'second.sqlite3'
    emit(first, [{'type': 'guide', 'event_id': 'k-1', 'data': {'i': 0, 'zone': 'tv'}}], tmp_path)
    assert sync_cli(*run_args(first, platform.url)).returncode == 0
    emit(second, [{'type': 'guide', 'event_id': 'k-1', 'data': {'i': 1, 'zone': 'kitchen'}},
                  {'type': 'guide', 'event_id': 'k-2', 'data': {'i': 2}}], tmp_path)
    result = sync_cli(*run_args(second, platform.url))
    assert result.returncode == 0, result.stderr
    [held] = Outbox(second, contract=False).quarantined()
    assert held['event_id'] == 'k-1' and 'event_id_reused' in held['reason'], held
    stored = {e['event_id']: e['data'] for e in platform.export()}
    assert stored == {'k-1': {'i': 0, 'zone': 'tv'}, 'k-2': {'i': 2}}


def test_the_platform_answers_health_while_it_refuses_a_gzip_bomb(platform):
    from sync_support import gzip_bomb
    bomb = gzip_bomb(1 << 30)
    answers: list[int] = []

    def send_bomb():
        with platform.client() as client:
            answers.append(client.post(f'/v1/robots/{ROBOT}/events', content=bomb,
                                       headers={'Content-Encoding': 'gzip'}).status_code)
    thread = threading.Thread(target=send_bomb)
    thread.start()
    with platform.client() as client:
        healthy = 0
        while thread.is_alive() and healthy < 5:
            if client.get('/v1/health', timeout=5).status_code == 200:
                healthy += 1
    thread.join(timeout=60)
    assert answers == [413]
    with platform.client() as client:
        assert client.get('/v1/health').status_code == 200
        ok = client.post(f'/v1/robots/{ROBOT}/events', json={'events': [{
            'event_id': 'after-bomb', 'seq': 1, 'type': 'guide', 'time': 1.0, 'data': {}}]})
        assert ok.json()['stored'] == 1


def test_sync_run_stopped_by_sigterm_exits_143(tmp_path):
    outbox = tmp_path / 'outbox.sqlite3'
    Outbox(outbox, contract=False).append('guide', {})
    proc = subprocess.Popen([console_script('retailbot'), 'sync', 'run', '--outbox', str(outbox),
                             '--platform', f'http://127.0.0.1:{free_port()}', '--token', TOKEN,
                             '--robot-id', ROBOT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    wait_for(lambda: proc.poll() is not None or 'retrying' in (proc.stderr.readline() or ''),
             timeout=30, what='the uploader to retry')
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 143
    assert Outbox(outbox, contract=False).pending() == 1
