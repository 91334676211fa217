"""Issue 21 items 4, 6 and 7 (robot side): the robot deletes exactly the events the platform
confirms by id, 5xx never quarantines, Retry-After is honoured, `seq_reused` is loud.

The platform here is a real HTTP server on 127.0.0.1 (http.server in a thread) that answers as
each test scripts it, lies included, and keeps what it really stored; every test checks that
no event is lost: each one emitted is stored on that server, still pending, or quarantined
with a reason."""
from __future__ import annotations

import gzip
import json
import random
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from retail_sync.outbox import Outbox
from retail_sync.uploader import (
    DONE,
    UNREACHABLE,
    Uploader,
    UploaderConfig,
    busy_delay,
    parse_retry_after,
)
from sync_support import ROBOT, make_events, sync_cli, write_events

Answer = tuple[int, dict, dict]      # status, headers, JSON body


class ScriptedPlatform:
    """Stores what `answer(events, stored)` decides and answers what it returns."""

    def __init__(self, answer: Callable[[list[dict], dict], Answer]) -> None:
        self.answer = answer
        self.stored: dict[str, dict] = {}
        self.requests: list[tuple[float, dict]] = []
        self.lock = threading.Lock()
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers['Content-Length']))
                body = json.loads(gzip.decompress(raw))
                with platform.lock:
                    platform.requests.append((time.monotonic(), body))
                    status, headers, answer = platform.answer(body['events'], platform.stored)
                data = json.dumps(answer).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.server.server_address[1]}'
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted():
    servers = []

    def start(answer):
        servers.append(ScriptedPlatform(answer))
        return servers[-1]
    yield start
    for server in servers:
        server.close()


def honest(events, stored) -> Answer:
    results = []
    for e in events:
        results.append({'event_id': e['event_id'],
                        'status': 'duplicate' if e['event_id'] in stored else 'accepted'})
        stored[e['event_id']] = e
    return 200, {}, {'acked': len(events), 'results': results}


def store_half(events, stored) -> list[dict]:
    kept = events[::2]
    for e in kept:
        stored[e['event_id']] = e
    return kept


# Each liar stores only every other event of a batch and then answers...
def count_only(events, stored) -> Answer:                 # ...the old answer: a count
    kept = store_half(events, stored)
    return 200, {}, {'acked': len(events), 'stored': len(kept)}


def results_omit_unstored(events, stored) -> Answer:      # ...an inflated count, honest results
    kept = store_half(events, stored)
    return 200, {}, {'acked': len(events), 'results': [
        {'event_id': e['event_id'], 'status': 'accepted'} for e in kept]}


def results_with_unknown_ids(events, stored) -> Answer:   # ...ids that were never sent
    kept = store_half(events, stored)
    return 200, {}, {'acked': len(events), 'results': [
        *({'event_id': e['event_id'], 'status': 'accepted'} for e in kept),
        *({'event_id': f'not-sent-{i}', 'status': 'accepted'} for i in range(len(events)))]}


def results_contradicting(events, stored) -> Answer:      # ...two verdicts for the unstored
    kept = store_half(events, stored)
    ids = {e['event_id'] for e in kept}
    results = []
    for e in events:
        if e['event_id'] in ids:
            results += [{'event_id': e['event_id'], 'status': 'accepted'},
                        {'event_id': e['event_id'], 'status': 'duplicate'}]
        else:
            results += [{'event_id': e['event_id'], 'status': 'rejected', 'reason': 'x'},
                        {'event_id': e['event_id'], 'status': 'accepted'}]
    return 200, {}, {'acked': len(events), 'results': results}


def results_garbled(events, stored) -> Answer:            # ...results of the wrong shape
    store_half(events, stored)
    return 200, {}, {'acked': len(events), 'results': [
        'accepted', None, 7, {'event_id': 5, 'status': 'accepted'},
        *({'event_id': e['event_id'], 'status': 'stored'} for e in events)]}


def results_not_a_list(events, stored) -> Answer:
    store_half(events, stored)
    return 200, {}, {'acked': len(events), 'results': {'all': 'accepted'}}


LIARS = {'count only (acked 100, stored 50)': count_only,
         'results omit the unstored': results_omit_unstored,
         'results with unknown ids': results_with_unknown_ids,
         'contradicting verdicts': results_contradicting,
         'garbled results': results_garbled,
         'results not a list': results_not_a_list}


def uploader_for(outbox: Outbox, url: str, **config) -> Uploader:
    return Uploader(outbox, UploaderConfig(platform_url=url, token='t', robot_id=ROBOT,
                                           backoff_initial_s=0.01, backoff_max_s=0.05, **config))


def fill(outbox: Outbox, count: int) -> set[str]:
    return {e.event_id for e in outbox.append_many(make_events(count))}


def lost(emitted: set[str], platform: ScriptedPlatform, outbox: Outbox) -> set[str]:
    pending = {e.event_id for e in outbox.read_batch(1_000_000, 1 << 30)}
    held = {q['event_id'] for q in outbox.quarantined()}
    return emitted - set(platform.stored) - pending - held


@pytest.mark.parametrize('liar', LIARS)
def test_a_lying_platform_loses_nothing_and_the_honest_one_then_gets_everything(
        tmp_path, scripted, liar):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    emitted = fill(outbox, 400)
    platform = scripted(LIARS[liar])
    uploader = uploader_for(outbox, platform.url, batch_size=100)
    uploader.run(threading.Event(), until_empty=True, give_up_s=1.0)
    assert len(platform.requests) >= 4
    assert lost(emitted, platform, outbox) == set()
    assert outbox.quarantined() == []
    assert outbox.pending() >= 400 - len(platform.stored)
    platform.answer = honest
    assert uploader.run(threading.Event(), until_empty=True, give_up_s=10) == DONE
    assert set(platform.stored) == emitted and outbox.pending() == 0


def test_an_answer_without_results_deletes_nothing_and_says_why(tmp_path, scripted):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    write_events(tmp_path / 'events.jsonl', make_events(400))
    assert sync_cli('emit', '--event-contracts', 'generic', '--outbox', str(outbox.path), '--robot-id', ROBOT, '--from-file',
                    str(tmp_path / 'events.jsonl')).returncode == 0
    platform = scripted(count_only)
    result = sync_cli('run', '--outbox', str(outbox.path), '--platform', platform.url, '--token',
                      't', '--robot-id', ROBOT, '--once', '--batch-size', '100',
                      '--give-up-after', '1', '--backoff-max', '0.2', timeout=60)
    assert result.returncode == 6, result.stderr
    assert 'without per-event results; nothing deleted' in result.stderr
    assert 'Traceback' not in result.stderr
    assert outbox.pending() == 400           # 200 of them are stored: none lost, none deleted


def test_rejected_events_are_quarantined_with_the_reason_and_the_rest_deleted(tmp_path, scripted):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    emitted = fill(outbox, 10)

    def answer(events, stored) -> Answer:
        results = []
        for e in events:
            if e['data']['i'] in (3, 7):
                results.append({'event_id': e['event_id'], 'status': 'rejected',
                                'reason': 'unknown event type guide_v9'})
            else:
                stored[e['event_id']] = e
                results.append({'event_id': e['event_id'], 'status': 'accepted'})
        return 200, {}, {'acked': 8, 'results': results}
    platform = scripted(answer)
    assert uploader_for(outbox, platform.url).run(threading.Event(), until_empty=True) == DONE
    held = outbox.quarantined()
    assert [h['reason'] for h in held] == ['rejected by the platform: unknown event type guide_v9'] * 2
    assert len(platform.stored) == 8 and outbox.pending() == 0
    assert lost(emitted, platform, outbox) == set()


def seq_reused_through(last: int, rejection: dict, acked: int):
    """A platform answer that rejects every event numbered up to `last` with `rejection`
    (reason, next_seq) and stores the others."""
    def answer(events, stored) -> Answer:
        results = []
        for e in events:
            if e['seq'] <= last:
                results.append({'event_id': e['event_id'], 'status': 'rejected', **rejection})
            else:
                stored[e['event_id']] = e
                results.append({'event_id': e['event_id'], 'status': 'accepted'})
        return 200, {}, {'acked': acked, 'results': results}
    return answer


def test_seq_reused_is_kept_and_reported_loudly_in_status(tmp_path, scripted):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    fill(outbox, 6)
    # another outbox of this robot id already sent 1-3
    platform = scripted(seq_reused_through(3, {'reason': 'seq_reused'}, acked=3))
    logged: list[str] = []
    uploader = Uploader(outbox, UploaderConfig(platform_url=platform.url, token='t',
                                               robot_id=ROBOT), log=logged.append)
    assert uploader.run(threading.Event(), until_empty=True) == DONE
    assert len(outbox.quarantined()) == 3 and uploader.seq_reused == 3
    assert any(line.startswith('ERROR: seq 1 ') for line in logged)
    status = outbox.status()
    assert status['seq_reused'] == 3 and 'sequence numbers were already used' in status['alarm']
    outbox.close()
    shown = sync_cli('status', '--outbox', str(tmp_path / 'outbox.sqlite3'))
    assert shown.returncode == 0 and 'ERROR: 3 events refused' in shown.stdout
    assert 'ALARM:' in shown.stdout
    as_json = json.loads(sync_cli('status', '--outbox', str(tmp_path / 'outbox.sqlite3'),
                                  '--json').stdout)
    assert as_json['seq_reused'] == 3 and as_json['stream_id']


@pytest.mark.parametrize('told', [True, '9', -1, 0, 2 ** 62, 1.5e3])
def test_a_next_seq_that_is_no_usable_number_renumbers_nothing(tmp_path, scripted, told):
    """seq_reused with a next_seq the robot cannot use (not an integer, out of range, or so high
    that a lying platform could use up the robot's numbers) is the old answer: kept in quarantine."""
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    fill(outbox, 2)
    platform = scripted(lambda events, stored: (200, {}, {'acked': 0, 'results': [
        {'event_id': e['event_id'], 'status': 'rejected', 'reason': 'seq_reused', 'next_seq': told}
        for e in events]}))
    uploader = Uploader(outbox, UploaderConfig(platform_url=platform.url, token='t', robot_id=ROBOT))
    assert uploader.upload_once() == 2
    assert [q['seq'] for q in outbox.quarantined()] == [1, 2] and outbox.pending() == 0
    assert outbox.last_seq() == 2


def test_seq_reused_with_next_seq_renumbers_from_there_and_stores(tmp_path, scripted):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    fill(outbox, 6)
    # another outbox of this robot id sent 1-100
    platform = scripted(seq_reused_through(100, {'reason': 'seq_reused: seq held', 'next_seq': 101}, acked=0))
    uploader = Uploader(outbox, UploaderConfig(platform_url=platform.url, token='t', robot_id=ROBOT))
    assert uploader.run(threading.Event(), until_empty=True, give_up_s=30) == DONE
    assert sorted(e['seq'] for e in platform.stored.values()) == list(range(101, 107))
    assert [e['data']['i'] for e in sorted(platform.stored.values(), key=lambda e: e['seq'])] == \
        list(range(6))                                      # in their order
    assert outbox.quarantined() == [] and outbox.status()['seq_reused'] == 6
    assert outbox.append('guide', {'i': 99}).seq == 107


def test_every_batch_carries_the_outbox_stream_id(tmp_path, scripted):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    fill(outbox, 30)
    platform = scripted(honest)
    uploader_for(outbox, platform.url, batch_size=10).run(threading.Event(), until_empty=True)
    streams = {body['stream_id'] for _, body in platform.requests}
    assert streams == {outbox.stream_id} and len(outbox.stream_id) == 32
    assert outbox.sent_seq() == 30


def test_a_flaky_platform_quarantines_nothing_and_delivers_everything(tmp_path, scripted):
    """70 % of requests answered HTTP 500 (seeded): nothing is ever quarantined."""
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    emitted = fill(outbox, 300)
    rng = random.Random(21)

    def flaky(events, stored) -> Answer:
        if rng.random() < 0.7:
            return 500, {}, {'detail': 'Internal Server Error'}
        return honest(events, stored)
    platform = scripted(flaky)
    uploader = uploader_for(outbox, platform.url, batch_size=20)
    assert uploader.run(threading.Event(), until_empty=True, give_up_s=60) == DONE
    assert outbox.quarantined() == [] and uploader.quarantined == 0
    assert set(platform.stored) == emitted
    assert sum(1 for _, body in platform.requests) > 30     # it really was flaky


@pytest.mark.parametrize('status', [500, 502, 504])
def test_an_event_the_platform_always_fails_on_is_never_quarantined(tmp_path, scripted, status):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    emitted = fill(outbox, 40)

    def fails_on_one(events, stored) -> Answer:
        if any(e['data']['i'] == 17 for e in events):
            return status, {}, {'detail': 'boom'}
        return honest(events, stored)
    platform = scripted(fails_on_one)
    uploader = uploader_for(outbox, platform.url, batch_size=40)
    assert uploader.run(threading.Event(), until_empty=True, give_up_s=1.5) == UNREACHABLE
    assert outbox.quarantined() == [] and outbox.pending() == 1
    assert len(platform.stored) == 39 and lost(emitted, platform, outbox) == set()


@pytest.mark.parametrize('status', [429, 503])
def test_retry_after_is_waited_out(tmp_path, scripted, status):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    fill(outbox, 5)
    answers = iter([(status, {'Retry-After': '1'}, {'detail': 'slow down'})])

    def busy_once(events, stored) -> Answer:
        return next(answers, None) or honest(events, stored)
    platform = scripted(busy_once)
    uploader = uploader_for(outbox, platform.url)      # its own backoff is 0.01-0.05 s
    wake = threading.Event()
    wake.set()                                          # a `sync now` does not skip it either
    assert uploader.run(threading.Event(), wake, until_empty=True, give_up_s=30) == DONE
    first, second = platform.requests[0][0], platform.requests[1][0]
    assert second - first >= 1.0
    assert outbox.pending() == 0 and outbox.quarantined() == []


def test_a_busy_platforms_retry_after_gets_jitter_and_never_less():
    rng = random.Random(7)
    for asked in (1.0, 2.0, 8.0, 60.0):
        delays = [busy_delay(asked, rng) for _ in range(200)]
        assert min(delays) >= asked
        assert max(delays) <= asked + max(0.5, asked / 4)
        # spread: robots told the same Retry-After do not come back together
        assert max(delays) - min(delays) > 0.6 * max(0.5, asked / 4)


def test_repeated_429s_are_waited_as_asked_without_escalating_the_backoff(tmp_path, scripted):
    """A backlog paced by the platform (429 + Retry-After again and again) waits what it is
    told plus jitter each time; the exponential backoff (here up to 30 s) is not stacked on it."""
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    emitted = fill(outbox, 5)
    answers = iter([(429, {'Retry-After': '1'}, {'detail': 'catching up is paced'})] * 4)

    def paced(events, stored) -> Answer:
        return next(answers, None) or honest(events, stored)
    platform = scripted(paced)
    log: list[str] = []
    uploader = Uploader(outbox, UploaderConfig(platform_url=platform.url, token='t',
                                               robot_id=ROBOT, backoff_initial_s=4.0,
                                               backoff_max_s=30.0), log=log.append)
    assert uploader.run(threading.Event(), until_empty=True, give_up_s=60) == DONE
    waits = [float(line.split('retrying in ')[1].split(' s')[0]) for line in log
             if 'HTTP 429' in line]
    assert len(waits) == 4 and all(1.0 <= wait <= 1.55 for wait in waits), log
    times = [when for when, _ in platform.requests]
    assert all(later - earlier >= 1.0 for earlier, later in zip(times, times[1:]))
    assert lost(emitted, platform, outbox) == set() and outbox.pending() == 0


@pytest.mark.parametrize('header, expected', [
    ('3', 3.0), ('0', 0.0), ('  12 ', 12.0), ('99999999', 3600.0),
    ('Wed, 21 Oct 2015 07:28:00 GMT', 0.0), ('', None), ('soon', None), ('-5', None),
    ('1e400', None), ('NaN', None), ('x' * 10_000, None)])
def test_retry_after_values(header, expected):
    assert parse_retry_after(header) == expected


def test_a_retry_after_date_in_the_future_is_seconds_from_now():
    from email.utils import formatdate
    now = time.time()
    assert 58 <= parse_retry_after(formatdate(now + 60, usegmt=True), now=now) <= 60
