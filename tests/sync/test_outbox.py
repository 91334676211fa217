"""The outbox core: durability, order, limits with an alarm first, quarantine, privacy."""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys

import pytest

from retail_sync.outbox import Limits, Outbox, OutboxError
from retail_sync.privacy import PrivacyError, check_payload
from sync_support import outbox_status


def test_events_keep_order_ids_and_data(tmp_path):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    first = outbox.append('greeting', {'text': '欢迎光临'}, customer='p-0001')
    second = outbox.append('guide', '{"zone": "phones"}')
    assert second.seq > first.seq and first.event_id != second.event_id
    assert outbox.append('greeting', {'text': '欢迎光临'}, customer='p-0001',
                         event_id=first.event_id) is None           # a retry: stored once
    with pytest.raises(OutboxError, match='other content'):         # same key, other data
        outbox.append('greeting', {'text': 'dup'}, event_id=first.event_id)
    batch = outbox.read_batch(10)
    assert [(e.type, json.loads(e.data)) for e in batch] == [
        ('greeting', {'text': '欢迎光临'}), ('guide', {'zone': 'phones'})]
    assert json.loads(batch[0].to_json())['data'] == {'text': '欢迎光临'}
    outbox.delete([first.seq])
    # Sequence numbers are never reused, even after deletes and a reopen.
    outbox.close()
    reopened = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    assert reopened.append('guide', {}).seq > second.seq
    assert reopened.status()['last_success'] is not None


@pytest.mark.parametrize('data, reason', [
    ('not json', 'not JSON'), ([1, 2], 'JSON object'), ({'embedding': [0.5] * 128}, 'face data'),
])
def test_bad_events_are_refused_and_nothing_stored(tmp_path, data, reason):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    with pytest.raises(OutboxError, match=reason):
        outbox.append('greeting', data)
    with pytest.raises(OutboxError, match='no type'):
        outbox.append('', {})
    assert outbox.pending() == 0


def test_append_survives_kill_9(tmp_path):
    """Every event the writer reported as appended is in the outbox after kill -9."""
    path = tmp_path / 'outbox.sqlite3'
    writer = subprocess.Popen(
        [sys.executable, '-c', f'''
import sys
from retail_sync.outbox import Outbox
outbox = Outbox({str(path)!r}, contract=False)
i = 0
while True:
    event = outbox.append("dialogue_turn", {{"i": i}})
    print(event.event_id, flush=True)
    i += 1
'''], stdout=subprocess.PIPE, text=True)
    acknowledged = [writer.stdout.readline().strip() for _ in range(150)]
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    acknowledged += [line.strip() for line in writer.stdout if line.strip()]
    stored = {e.event_id: json.loads(e.data)['i'] for e in Outbox(path, contract=False).read_batch(100_000)}
    assert set(acknowledged) <= set(stored)
    assert sorted(stored.values()) == list(range(len(stored)))


def test_limits_alarm_before_anything_is_dropped(tmp_path):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', Limits(max_events=100, warn_fraction=0.8), contract=False)
    outbox.append_many([{'type': 'guide', 'data': {'i': i}} for i in range(79)])
    assert outbox.alarm() is None
    outbox.append('guide', {'i': 79})
    assert '80 events waiting, limit 100' in outbox.alarm()
    assert outbox.status()['dropped'] == 0
    outbox.append_many([{'type': 'guide', 'data': {'i': i}} for i in range(80, 110)])
    status = outbox.status()
    assert status['pending'] == 100 and status['dropped'] == 10
    assert json.loads(outbox.read_batch(1)[0].data) == {'i': 10}   # the oldest went first
    assert '10 events already dropped' in status['alarm']


def test_age_limit_alarm_then_drop(tmp_path):
    from test_outbox_faults import FakeClock
    clock = FakeClock()
    outbox = Outbox(tmp_path / 'outbox.sqlite3', Limits(max_age_s=3600, warn_fraction=0.5),
                    clock=clock, contract=False)
    outbox.append('guide', {'i': 0})
    clock.since_boot += 2000
    assert 'oldest event waiting 0.6 h' in outbox.alarm()
    clock.since_boot += 2000
    outbox.append('guide', {'i': 1})
    assert outbox.status()['dropped'] == 1 and outbox.pending() == 1


def test_status_cli_reports_the_alarm(tmp_path):
    path = tmp_path / 'outbox.sqlite3'
    Outbox(path, contract=False).append_many([{'type': 'guide', 'data': {'i': i}} for i in range(9)])
    status = outbox_status(path)
    assert status['pending'] == 9 and status['quarantined'] == 0
    assert status['last_success'] is None and status['oldest_pending_s'] >= 0
    from sync_support import sync_cli
    result = sync_cli('status', '--outbox', str(path), '--max-events', '10')
    assert 'ALARM' in result.stdout and '9 events waiting, limit 10' in result.stdout


def test_quarantine_keeps_the_event_with_its_reason(tmp_path):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    events = outbox.append_many([{'type': 'guide', 'data': {'i': i}} for i in range(3)])
    outbox.quarantine([events[1].seq], 'HTTP 422: bad type')
    assert [json.loads(e.data)['i'] for e in outbox.read_batch(10)] == [0, 2]
    assert outbox.quarantined() == [dict(seq=events[1].seq, event_id=events[1].event_id,
                                         type='guide', reason='HTTP 422: bad type', version=1)]


JPEG = base64.b64encode(b'\xff\xd8\xff\xe0' + bytes(200)).decode()


@pytest.mark.parametrize('payload', [
    {'embedding': [0.1, 0.2]},
    {'customer': {'Face-Image': 'x'}},
    {'vector': [0.01 * i for i in range(128)]},
    {'nested': [{'crop': JPEG}]},
    {'avatar': 'data:image/png;base64,iVBORw0KGgo='},
    {'blob': base64.b64encode(os.urandom(600)).decode()},
])
def test_privacy_guard_refuses_face_data(payload):
    with pytest.raises(PrivacyError):
        check_payload(payload)


def test_privacy_guard_lets_ordinary_events_through():
    check_payload({'text': '我想看看 iPhone 15', 'scores': [0.9, 0.8, 0.4], 'sku': 'AP-IP15',
                   'prices': [5999.0, 6999.0], 'customer': 'p-0042', 'zone': 'phones'})


def test_forgetting_a_member_removes_every_waiting_or_quarantined_event_naming_them(tmp_path):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    outbox.append('greeting', {'text': 'hi'}, customer='m-7')
    outbox.append('vip_checkin', {'member': 'm-7', 'status': 'on_time'})       # named in the data
    kept = [outbox.append('greeting', {'text': 'hi'}, customer='m-70'),       # a longer id
            outbox.append('guide', {'zone': 'tv', 'note': 'm-7 was here'})]   # not as an id
    bad = outbox.append('greeting', {'x': 1}, customer='m-7')
    outbox.quarantine([bad.seq], 'rejected: test')
    assert outbox.forget_customer('m-7') == 3
    assert sorted(e.seq for e in outbox.read_batch(10)) == sorted(e.seq for e in kept)
    assert outbox.quarantined() == [] and outbox.status()['forgotten'] == 3
    assert outbox.forget_customer('m-7') == 0 and outbox.forget_customer('') == 0
