"""Events the platform rejects (session 13, data loss): quarantined with the reason, and neither
silent nor a dead end. Before: a platform older than the robot (its event types unknown there)
rejected every event; each went to quarantine, `/diagnostics` stayed OK ("0 events waiting"),
`sync status` showed a count and no reason, the payload's version was dropped, and nothing
could send them again once the platform was upgraded: every interaction of the robot lost to
the chain without a word."""
from __future__ import annotations

import json
import sqlite3

from rostest_support import stop_process
from sync_support import ROBOT, emit, free_port, outbox_status, start_platform, sync_cli

from retail_sync.outbox import Outbox, salvage


def _future_events(count: int) -> list[dict]:
    """Events of a payload type this platform does not know yet (a robot updated first)."""
    return [{'type': 'shelf.scan', 'version': 3, 'customer': '', 'event_id': f'scan-{i}',
             'data': {'i': i, 'aisle': 'A3', 'gaps': i % 4}} for i in range(count)]


def _run_once(outbox, platform) -> tuple[int, dict]:
    result = sync_cli('run', '--outbox', str(outbox), '--platform', platform.url, '--token',
                      platform.token, '--robot-id', ROBOT, '--once', '--give-up-after', '30',
                      '--json')
    return result.returncode, json.loads(result.stdout)


def test_rejected_events_are_alarmed_with_their_reason_and_sent_again_once_the_platform_knows_them(tmp_path):
    outbox = tmp_path / 'outbox.sqlite3'
    emit(outbox, _future_events(4), tmp_path)
    old = start_platform(tmp_path / 'platform.sqlite3', free_port(), contracts='strict')
    try:
        code, outcome = _run_once(outbox, old)
    finally:
        stop_process(old.process)
    assert code == 0 and outcome['quarantined'] == 4 and outcome['pending'] == 0
    # what a technician sees: an alarm (so /diagnostics is WARN, not OK) and the reason
    assert outcome['alarm'] and '4 events quarantined, not uploaded' in outcome['alarm']
    assert 'shelf.scan v3' in outcome['alarm'] and 'sync requeue' in outcome['alarm']
    status = outbox_status(outbox)
    assert status['quarantine_reasons'] == [{'reason': status['quarantine_reasons'][0]['reason'],
                                             'events': 4}]
    assert 'events[i]: shelf.scan v3' in status['quarantine_reasons'][0]['reason']
    text = sync_cli('status', '--outbox', str(outbox)).stdout
    assert '4 x rejected by the platform: events[i]: shelf.scan v3' in text and 'ALARM:' in text

    # The platform is upgraded (here: it takes any well-formed type): send them again.
    new = start_platform(tmp_path / 'platform.sqlite3', free_port())
    try:
        again = sync_cli('requeue', '--outbox', str(outbox), '--json')
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout) == {'requeued': 4, 'pending': 4, 'quarantined': 0}
        code, outcome = _run_once(outbox, new)
        assert code == 0 and outcome['uploaded'] == 4 and outcome['alarm'] is None
        stored = new.export()
    finally:
        stop_process(new.process)
    assert sorted(e['event_id'] for e in stored) == [f'scan-{i}' for i in range(4)]
    assert {e['version'] for e in stored} == {3}            # the payload's version kept
    assert sorted(e['seq'] for e in stored) == [1, 2, 3, 4]  # their own numbers: no gap, no reuse
    assert outbox_status(outbox)['quarantined'] == 0


def test_requeue_takes_only_the_reason_asked_and_an_id_pending_again_stays_held(tmp_path):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    events = [outbox.append('shelf.scan', {'i': i}, event_id=f'e{i}') for i in range(4)]
    outbox.quarantine([events[0].seq, events[1].seq], 'rejected by the platform: events[0]: shelf.scan v1: unknown')
    outbox.quarantine([events[2].seq], 'HTTP 413: too large')
    assert outbox.requeue('unknown') == 2
    assert [e.event_id for e in outbox.read_batch(10)] == ['e0', 'e1', 'e3']
    assert [q['event_id'] for q in outbox.quarantined()] == ['e2']


def test_an_outbox_from_before_keeps_its_quarantine_and_salvage_keeps_versions(tmp_path):
    path = tmp_path / 'outbox.sqlite3'
    outbox = Outbox(path, contract=False)
    event = outbox.append('shelf.scan', {'i': 1}, event_id='old-1')
    outbox.quarantine([event.seq], 'rejected by the platform: no')
    outbox.close()
    with sqlite3.connect(path) as db:        # the quarantine table as it was before session 13
        db.execute('ALTER TABLE quarantine DROP COLUMN version')
        db.execute("UPDATE meta SET value = 'another-boot' WHERE key = 'clock_boot'")
    outbox = Outbox(path, contract=False)
    assert [(q['event_id'], q['version']) for q in outbox.quarantined()] == [('old-1', 1)]
    assert outbox.requeue() == 1 and outbox.read_batch(1)[0].version == 1
    versioned = outbox.append_rows([('v3-1', 'shelf.scan', '', '{"i":2}', 1.0, 3)]).stored[0]
    outbox.quarantine([versioned.seq], 'rejected by the platform: no')
    outbox.close()
    fresh, _ = salvage(path)
    assert [(q['event_id'], q['version']) for q in fresh.quarantined()] == [('v3-1', 3)]


def test_the_agent_reports_quarantined_events_as_a_warning_not_ok(tmp_path):
    from diagnostic_msgs.msg import DiagnosticStatus

    from retail_sync.agent_node import sync_health
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    event = outbox.append('shelf.scan', {'i': 1})
    assert sync_health(outbox.status(), None, None, False, None)[0] == DiagnosticStatus.OK
    outbox.quarantine([event.seq], 'rejected by the platform: events[0]: shelf.scan v1: unknown type')
    level, message = sync_health(outbox.status(), None, None, False, None)
    assert level == DiagnosticStatus.WARN
    assert message.startswith('1 events quarantined, not uploaded (latest reason: rejected by the '
                              'platform: events[i]: shelf.scan v1: unknown type)')


def test_a_technician_discards_what_she_read_and_the_alarm_clears(tmp_path):
    path = tmp_path / 'outbox.sqlite3'
    outbox = Outbox(path, contract=False)
    events = [outbox.append('shelf.scan', {'i': i}, event_id=f'e{i}') for i in range(3)]
    outbox.quarantine([events[0].seq, events[1].seq], 'rejected by the platform: events[0]: junk')
    outbox.close()
    refused = sync_cli('discard', '--outbox', str(path))            # neither --reason nor --all
    assert refused.returncode == 2 and '--reason' in refused.stderr
    done = sync_cli('discard', '--outbox', str(path), '--reason', 'junk', '--json')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {'discarded': 2, 'pending': 1, 'quarantined': 0}
    status = outbox_status(path)
    assert status['discarded'] == 2 and status['alarm'] is None and status['pending'] == 1


def test_the_quarantine_is_bounded_like_the_queue_and_says_what_it_dropped(tmp_path):
    """A platform rejecting every event moved each into quarantine, which had no bound: the
    robot's disk filled and then every new event was refused (kept only in the senders' memory)."""
    from retail_sync.outbox import Limits
    outbox = Outbox(tmp_path / 'outbox.sqlite3', Limits(max_events=5), contract=False)
    for i in range(8):
        event = outbox.append('shelf.scan', {'i': i}, event_id=f'e{i}')
        outbox.quarantine([event.seq], 'rejected by the platform: events[0]: unknown')
    assert [q['event_id'] for q in outbox.quarantined()] == [f'e{i}' for i in range(3, 8)]
    status = outbox.status()
    assert status['dropped'] == 3 and '3 events already dropped' in status['alarm']
    assert '5 events quarantined' in status['alarm']
