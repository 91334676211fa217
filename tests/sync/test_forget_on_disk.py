"""Attack (session 12): "forget this member" deleted her rows, and SQLite's write-ahead log kept
copies of them (outbox: her id after 3,000 more events; downlink: her cached profile), readable
with `strings` on the robot's disk after the platform was told she was erased. Now every robot
database deletes with secure_delete and a forget empties the log (privacy.erase_wal)."""
from __future__ import annotations

import os
import sqlite3

import pytest

from retail_sync.downlink import SECTIONS, StoreDownlink
from retail_sync.outbox import Outbox
from retail_sync.privacy import ErasureBusy, erase_wal

GREETING = {'member': False, 'vip': False, 'appointment': False}


def _traces(path, needle: bytes) -> dict[str, int]:
    """How often `needle` is in the database file and its -wal / -shm (what `strings` would find)."""
    return {p.name: p.read_bytes().count(needle) for p in path.parent.glob(path.name + '*') if p.is_file()}


def test_a_forgotten_member_leaves_no_trace_in_the_outbox_files(tmp_path):
    path = tmp_path / 'outbox.sqlite3'
    outbox = Outbox(path)
    outbox.append_many([{'type': 'greeting', 'data': GREETING} for _ in range(5000)])    # an offline day
    outbox.append('greeting', {**GREETING, 'member': True}, customer='m-SECRET42')
    outbox.delete([e.seq for e in outbox.read_batch(10000, 1 << 40)][:-1])              # uploaded
    assert any(_traces(path, b'm-SECRET42').values())                                   # the test can fail
    assert outbox.forget_customer('m-SECRET42') == 1
    for _ in range(300):                                                                 # the robot goes on
        outbox.append('greeting', GREETING)
    assert not any(_traces(path, b'm-SECRET42').values()), _traces(path, b'm-SECRET42')
    assert outbox.pending() == 300


def test_a_forgotten_members_cached_profile_leaves_no_trace_in_the_downlink_files(tmp_path):
    downlink = StoreDownlink('http://127.0.0.1:9', '', 'robot-01', tmp_path)

    def answer(version, members=(), forget=()):
        body = {'version': version, 'full': False, 'store_id': 's-1', 'since': version - 1, 'forget': list(forget)}
        for table, _ in SECTIONS:
            body[table], body[f'{table}_removed'] = [], []
        body['members'] = list(members)
        return body
    downlink._apply(answer(1, [{'member_id': 'm-SECRET42', 'consent': 'C-1', 'home_store': 's-1', 'history': [],
                                'profile': {'said': 'phone 13800138000'}}]))
    path = tmp_path / 'downlink.sqlite3'
    assert any(_traces(path, b'13800138000').values())
    downlink._apply(answer(2, forget=['m-SECRET42']))
    assert downlink.rows('members') == []
    assert not any(_traces(path, b'13800138000').values()), _traces(path, b'13800138000')


def test_a_reader_holding_the_log_makes_the_erasure_wait(tmp_path):
    """The forget is confirmed only once the log is empty: a reader in the middle of a read
    keeps it, and the erasure says so (the agent retries at the next sync)."""
    path = tmp_path / 'db.sqlite3'
    db = sqlite3.connect(path, isolation_level=None)
    db.execute('PRAGMA journal_mode=WAL')
    db.execute('CREATE TABLE t (x TEXT)')
    db.execute("INSERT INTO t VALUES ('m-SECRET42')")
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute('BEGIN')
    reader.execute('SELECT * FROM t').fetchall()                 # a read transaction on the log
    db.execute('DELETE FROM t')
    with pytest.raises(ErasureBusy):
        erase_wal(db, 'db')
    reader.execute('COMMIT')
    erase_wal(db, 'db')
    assert os.path.getsize(str(path) + '-wal') == 0
