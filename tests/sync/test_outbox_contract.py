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
