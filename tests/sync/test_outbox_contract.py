"""The outbox checks each event against its declared contract (retail_common.events) when asked
(the sync agent always asks), and keeps the payload's version through to the upload JSON."""
from __future__ import annotations

import json
import sqlite3

import pytest

from retail_common.events import Greeting
from retail_sync.outbox import Outbox, OutboxError, prepare_event


@pytest.mark.parametrize('type_,data,version,says', [
    ('guide_outcome', {'zone': 'tv'}, 1, 'undeclared event type'),
    ('greeting', {'member': True}, 1, 'vip'),
    ('greeting', {'member': True, 'vip': False, 'appointment': False, 'face': 'x'}, 1, 'face'),
    ('greeting', {'member': True, 'vip': False, 'appointment': False}, 7, 'undeclared version 7'),
    ('greeting', {'member': True, 'vip': False, 'appointment': False}, 'two', 'version'),
])
def test_a_contract_checked_outbox_refuses_undeclared_types_and_shapes(tmp_path, type_, data, version, says):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=True)
    with pytest.raises(OutboxError) as caught:
        outbox.append_many([{'type': type_, 'data': data, 'version': version}])
    assert says in str(caught.value) and '\n' not in str(caught.value)
    assert outbox.pending() == 0


def test_the_version_is_stored_and_uploaded_and_absent_means_1(tmp_path):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=True)
    data = Greeting(member=True, vip=False, appointment=True).to_data()
    outbox.append_many([{'type': 'greeting', 'data': data}])
    [event] = outbox.read_batch(10)
    wire = json.loads(event.to_json())
    assert wire['version'] == 1 and wire['data'] == data
    assert prepare_event({'type': 'greeting', 'data': data, 'version': 1}, contract=True)[-1] == 1


def test_an_outbox_written_before_versions_reads_them_as_1(tmp_path):
    path = tmp_path / 'old.sqlite3'
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL, customer TEXT NOT NULL DEFAULT '', data TEXT NOT NULL, time REAL NOT NULL,
            mono REAL NOT NULL DEFAULT 0);
        CREATE TABLE quarantine (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL, type TEXT NOT NULL,
            customer TEXT NOT NULL, data TEXT NOT NULL, time REAL NOT NULL, reason TEXT NOT NULL,
            quarantined_at REAL NOT NULL);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO events (event_id, type, customer, data, time) VALUES ('e-1', 'guide', '', '{}', 1.0);
    """)
    db.close()
    outbox = Outbox(path)
    [event] = outbox.read_batch(10)
    assert event.event_id == 'e-1' and event.version == 1 and json.loads(event.to_json())['version'] == 1


# -- producers: an undeclared type or shape is an error by default --------------------------------
UNDECLARED = [
    ({'type': 'guide_outcome', 'data': {'zone': 'tv'}}, "undeclared event type 'guide_outcome'"),
    ({'type': 'staff_request', 'data': {'reason': 'help', 'robot_pose': [1, 2]}}, 'robot_pose'),
    ({'type': 'greeting', 'data': {'text': 'hello'}}, 'greeting v1'),
]


@pytest.mark.parametrize('event,says', UNDECLARED)
def test_a_default_outbox_refuses_an_undeclared_type_or_shape_in_one_line(tmp_path, event, says):
    outbox = Outbox(tmp_path / 'outbox.sqlite3')          # no argument: contracts are checked
    with pytest.raises(OutboxError) as caught:
        outbox.append(event['type'], event['data'])
    message = str(caught.value)
    assert says in message and '\n' not in message
    if 'undeclared event type' in message:
        assert 'retail_common/events.py' in message       # where the declared types are listed
    assert outbox.pending() == 0
    with pytest.raises(OutboxError):
        prepare_event(dict(event))                        # the default of the row builder too


def test_sync_emit_skips_an_undeclared_event_unless_told_the_events_are_generic(tmp_path):
    from sync_support import ROBOT, sync_cli
    lines = tmp_path / 'events.jsonl'
    declared = {'type': 'greeting', 'event_id': 'e-ok', 'data': Greeting(member=True, vip=False,
                                                                          appointment=False).to_data()}
    lines.write_text('\n'.join(json.dumps(e) for e in [declared, {'type': 'guide_outcome', 'event_id': 'e-bad',
                                                                    'data': {'zone': 'tv'}}]) + '\n')
    outbox = tmp_path / 'outbox.sqlite3'
    strict = sync_cli('emit', '--outbox', str(outbox), '--create', '--robot-id', ROBOT, '--from-file', str(lines))
    assert strict.returncode == 1
    assert "line 2: refused (contract): undeclared event type 'guide_outcome'" in strict.stderr
    assert 'retail_common/events.py' in strict.stderr
    assert Outbox(outbox).pending() == 1
    generic = sync_cli('emit', '--event-contracts', 'generic', '--outbox', str(outbox), '--robot-id', ROBOT,
                       '--from-file', str(lines))
    assert generic.returncode == 0, generic.stderr
    assert Outbox(outbox).pending() == 2
