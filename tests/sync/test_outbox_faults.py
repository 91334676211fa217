"""Outbox faults by kind (issue 12): nothing lost without a word, no bad input blocks the rest,
age never judged by a wall clock the robot may have wrong, full/locked/damaged files said in
one line."""
from __future__ import annotations

import json
import math
import random
import sqlite3

import pytest

from retail_sync.outbox import (MAX_DEPTH, Limits, Outbox, OutboxCorrupt, OutboxError,
                                OutboxFull, OutboxLocked, OutboxMissing, open_or_salvage,
                                prepare_event, salvage)


class FakeClock:
    """(boot id, seconds since boot) under the test's control."""

    def __init__(self, boot: str = 'boot-1', since_boot: float = 100.0) -> None:
        self.boot, self.since_boot = boot, since_boot

    def __call__(self) -> tuple[str, float]:
        return self.boot, self.since_boot


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {'a': value}
    return value


def nested_list(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


NON_FINITE = [float('nan'), float('inf'), float('-inf')]
BAD_EVENTS = {
    **{f'time {v}': {'type': 'greeting', 'data': {}, 'time': v} for v in NON_FINITE},
    **{f'data {v}': {'type': 'greeting', 'data': {'score': v}} for v in NON_FINITE},
    'nan deep in a list': {'type': 'greeting', 'data': {'a': [1, {'b': [float('nan')]}]}},
    'NaN in a JSON text payload': {'type': 'greeting', 'data': '{"x": NaN}'},
    'Infinity in a JSON text payload': {'type': 'greeting', 'data': '{"x": [-Infinity]}'},
    'time is a bool': {'type': 'greeting', 'data': {}, 'time': True},
    'time overflows': {'type': 'greeting', 'data': {}, 'time': 10 ** 400},
    'lone surrogate in event_id': {'type': 'greeting', 'data': {}, 'event_id': '\ud800'},
    'lone surrogate in type': {'type': 'greet\udfff', 'data': {}},
    'lone surrogate in customer': {'type': 'greeting', 'data': {}, 'customer': 'p-\ud83d'},
    'lone surrogate in a value': {'type': 'greeting', 'data': {'text': 'a\ud800b'}},
    'lone surrogate in a key': {'type': 'greeting', 'data': {'\udc00': 1}},
    'lone surrogate escaped in JSON text': {'type': 'greeting', 'data': '{"t": "\\ud800"}'},
    f'data nested {MAX_DEPTH + 1} levels': {'type': 'greeting', 'data': nested(MAX_DEPTH + 1)},
    'data nested 1000 levels': {'type': 'greeting', 'data': nested(1000)},
    'JSON text nested 100000 levels': {'type': 'greeting',
                                       'data': '{"a":' * 100000 + '1' + '}' * 100000},
    'list nested 1000 levels': {'type': 'greeting', 'data': {'a': nested_list(1000)}},
    'NUL in event_id': {'type': 'greeting', 'data': {}, 'event_id': 'e-\x00-1'},
    'NUL in type': {'type': 'greet\x00ing', 'data': {}},
    'event_id of 129 characters': {'type': 'greeting', 'data': {}, 'event_id': 'e' * 129},
    'payload over 256 KiB': {'type': 'greeting', 'data': {'t': 'x' * 300_000}},
}


@pytest.mark.parametrize('name', BAD_EVENTS)
def test_every_bad_event_is_refused_with_a_reason_and_nothing_stored(tmp_path, name):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    with pytest.raises(OutboxError) as refused:
        outbox.append_many([BAD_EVENTS[name]])
    assert str(refused.value)
    assert outbox.pending() == 0
    # ...and the good event behind it is stored.
    assert len(outbox.append_many([{'type': 'greeting', 'data': {'ok': 1}}])) == 1


def test_deepest_allowed_nesting_is_stored(tmp_path):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    assert outbox.append('greeting', nested(MAX_DEPTH)) is not None


def _random_event(rng: random.Random) -> dict:
    def value(depth: int):
        kind = rng.randrange(7 if depth < 4 else 4)
        if kind == 0:
            return rng.choice([0, -1, 2 ** 40, True, None])
        if kind == 1:
            return rng.uniform(-1e9, 1e9)
        if kind == 2:
            return ''.join(rng.choice('ab电视 "\\\n\t\u00e9\U0001F600') for _ in range(rng.randrange(8)))
        if kind == 3:
            return rng.choice(['', 'x'])
        if kind in (4, 5):
            return {f'k{i}{rng.choice("电é")}': value(depth + 1) for i in range(rng.randrange(4))}
        return [value(depth + 1) for _ in range(rng.randrange(4))]
    return {'type': rng.choice(['greeting', 'dialogue_turn', 'guide.outcome']),
            'customer': f'p-{rng.randrange(100)}', 'time': rng.uniform(0, 2e9),
            'event_id': ''.join(rng.choice('e-1电\x00\x01 \u2028\U0001F600') for _ in range(rng.randrange(1, 9))),
            'data': {'v': value(0)}}


def test_property_what_the_outbox_accepts_the_platform_accepts_unchanged():
    """Random events: the outbox's row, sent as the uploader sends it, validates on the
    platform and the platform stores the same data."""
    from retail_sync.outbox import Event
    from retail_platform.app import _validate_event
    rng = random.Random(12)
    for index in range(500):
        event = _random_event(rng)
        try:
            row = prepare_event(event, contract=False)
        except OutboxError:
            continue              # refused at the door: never stored to be refused later
        wire = json.loads(Event(index + 1, *row).to_json())
        stored = _validate_event(wire, 0)
        assert json.loads(stored[5]) == json.loads(row[3]) == event['data']
        assert stored[4] == row[4] and stored[3] == row[2] and stored[0] == row[0]


def test_a_repeated_event_id_is_a_duplicate_or_a_conflict_and_never_spends_a_seq(tmp_path):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    first = prepare_event({'type': 'greeting', 'data': {'n': 1}, 'event_id': 'e-1'}, contract=False)
    result = outbox.append_rows([first])
    assert [e.event_id for e in result.stored] == ['e-1']
    seqs = [result.stored[0].seq]
    for i in range(2, 60):
        again = outbox.append_rows([first])                         # a sender's retry
        assert again.duplicates == ['e-1'] and not again.stored
        other = prepare_event({'type': 'greeting', 'data': {'n': 2}, 'event_id': 'e-1'}, contract=False)
        clash = outbox.append_rows([other])                         # same key, other data
        assert clash.conflicts == ['e-1'] and not clash.stored
        seqs += [e.seq for e in outbox.append_rows(
            [prepare_event({'type': 'guide', 'data': {'i': i}, 'event_id': f'e-{i}'}, contract=False)]).stored]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))         # no gaps
    with pytest.raises(OutboxError, match='other content'):
        outbox.append('greeting', {'n': 3}, event_id='e-1')


def test_events_recorded_while_the_clock_read_1970_are_not_expired_when_it_is_right(tmp_path):
    clock = FakeClock()
    limits = Limits(max_age_s=3600.0)
    outbox = Outbox(tmp_path / 'outbox.sqlite3', limits, clock=clock, contract=False)
    for i in range(5):
        outbox.append('greeting', {'i': i}, time_s=86400.0 + i)     # wall clock: 2 January 1970
    clock.since_boot += 60.0                                        # NTP fixed the clock
    outbox.append('greeting', {'i': 5})                             # now 2026: an append runs limits
    assert outbox.pending() == 6
    assert outbox.status()['oldest_pending_s'] == pytest.approx(60.0)
    assert outbox.alarm() is None
    # Age is robot running time: past the limit they do go, counted.
    clock.since_boot += 3601.0
    outbox.append('greeting', {'i': 6})
    assert outbox.pending() == 1 and outbox.status()['dropped'] == 6


def test_the_outbox_clock_continues_across_reboots_and_never_goes_back(tmp_path):
    path = tmp_path / 'outbox.sqlite3'
    clock = FakeClock('boot-1', since_boot=5000.0)
    outbox = Outbox(path, Limits(max_age_s=3600.0), clock=clock, contract=False)
    outbox.append('greeting', {'i': 0})
    clock.since_boot += 1000.0
    outbox.append('greeting', {'i': 1})
    outbox.close()
    clock.boot, clock.since_boot = 'boot-2', 3.0                    # rebooted: boot clock restarts
    outbox = Outbox(path, Limits(max_age_s=3600.0), clock=clock, contract=False)
    age = outbox.status()['oldest_pending_s']
    assert 1000.0 <= age < 1010.0                                   # not negative, not wall time
    clock.since_boot += 2700.0
    outbox.append('greeting', {'i': 2})                             # 3700 s since the first: dropped
    assert outbox.pending() == 2 and outbox.status()['dropped'] == 1


def test_an_outbox_from_before_the_outbox_clock_is_migrated_without_dropping(tmp_path):
    path = tmp_path / 'outbox.sqlite3'
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL, customer TEXT NOT NULL DEFAULT '', data TEXT NOT NULL,
            time REAL NOT NULL);
        CREATE INDEX events_by_time ON events (time);
        INSERT INTO events (event_id, type, data, time) VALUES ('old-1', 'greeting', '{}', 10.0);
    """)
    db.close()
    outbox = Outbox(path, Limits(max_age_s=3600.0), contract=False)
    outbox.append('guide', {})
    assert [e.event_id for e in outbox.read_batch(10)][0] == 'old-1'


def test_a_full_disk_says_disk_full_and_keeps_what_was_stored(tmp_path):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    outbox.append('greeting', {'i': 0})
    pages = outbox._db.execute('PRAGMA page_count').fetchone()[0]
    outbox._db.execute(f'PRAGMA max_page_count = {pages + 2}')
    with pytest.raises(OutboxFull, match='disk full') as full:
        for i in range(200):
            outbox.append_many([{'type': 'greeting', 'data': {'t': '顾客 询问 ' * 3000, 'i': i}}])
    assert 'rollback' not in str(full.value) and '\n' not in str(full.value)
    assert outbox.read_batch(1)[0].data == '{"i":0}'
    outbox._db.execute('PRAGMA max_page_count = 1073741823')
    assert outbox.append('greeting', {'i': 'after'}) is not None      # works again


def test_a_locked_outbox_is_one_error_after_the_busy_timeout(tmp_path):
    path = tmp_path / 'outbox.sqlite3'
    Outbox(path, contract=False).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute('BEGIN IMMEDIATE')
    try:
        outbox = Outbox(path, busy_timeout_s=0.2, contract=False)
        with pytest.raises(OutboxLocked, match='locked by another process'):
            outbox.append('greeting', {})
    finally:
        holder.execute('ROLLBACK')
    assert outbox.append('greeting', {}) is not None


@pytest.mark.parametrize('content', [b'this is not a database' * 100, b'SQLite format 3\0' + b'\xff' * 4000])
def test_a_file_that_is_not_an_outbox_is_refused_then_set_aside_by_open_or_salvage(tmp_path, content):
    path = tmp_path / 'outbox.sqlite3'
    path.write_bytes(content)
    with pytest.raises(OutboxCorrupt):
        Outbox(path, contract=False)
    outbox, report = open_or_salvage(path)
    assert report is not None and report.salvaged == 0
    assert report.set_aside.read_bytes() == content                 # kept, never deleted
    assert 'set aside' in report.message() and str(report.set_aside) in report.message()
    greeting = {'member': False, 'vip': False, 'appointment': False}     # a salvaged outbox checks contracts
    assert outbox.append('greeting', greeting) is not None and outbox.pending() == 1


def test_another_programs_database_is_never_written_to(tmp_path):
    path = tmp_path / 'other.sqlite3'
    db = sqlite3.connect(path)
    db.execute('CREATE TABLE customers (id INTEGER)')
    db.commit()
    db.close()
    with pytest.raises(OutboxCorrupt, match='another program'):
        Outbox(path, contract=False)
    tables = sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [('customers',)]


def test_missing_outbox_without_create(tmp_path):
    with pytest.raises(OutboxMissing):
        Outbox(tmp_path / 'typo.sqlite3', create=False, contract=False)
    assert not (tmp_path / 'typo.sqlite3').exists()


def test_a_damaged_outbox_is_salvaged_row_by_row_and_sequence_numbers_go_on(tmp_path):
    path = tmp_path / 'outbox.sqlite3'
    outbox = Outbox(path, contract=False)
    for start in range(0, 3000, 500):
        outbox.append_many([{'type': 'guide', 'data': {'i': i, 'pad': 'p' * 200}}
                            for i in range(start, start + 500)])
    outbox.quarantine([1], 'HTTP 422: test')
    top = outbox.read_batch(1, after_seq=2998)[0].seq
    outbox.close()
    raw = bytearray(path.read_bytes())
    page = 4096
    pages = len(raw) // page
    for number in range(pages // 3, pages // 3 + 4):                 # wreck 4 pages mid-file
        raw[number * page:(number + 1) * page] = b'\xa5' * page
    path.write_bytes(bytes(raw))

    fresh, report = salvage(path, reason='test')
    assert 2000 < report.salvaged < 2999, report                      # most rows back, not all
    assert report.set_aside.exists() and report.set_aside != path
    rows = fresh.read_batch(5000, max_bytes=1 << 30)
    assert len(rows) == report.salvaged
    indices = [json.loads(e.data)['i'] for e in rows]
    assert indices == sorted(indices)                                 # order kept
    assert all(e.seq == json.loads(e.data)['i'] + 1 for e in rows)    # seqs kept
    assert fresh.quarantined()[0]['reason'] == 'HTTP 422: test'
    assert fresh.append('greeting', {'member': False, 'vip': False, 'appointment': False}).seq > top  # never reused


@pytest.mark.parametrize('kept', [0.9, 0.5, 0.2])
def test_a_truncated_outbox_gives_back_every_event_before_the_cut(tmp_path, kept):
    """A file cut short (power lost while a copy or a restore ran, a full disk) lists tables whose
    root page is past its end: SQLite refused the whole schema, and salvage gave back 0 events of
    a file 90 % intact (session 12 note)."""
    path = tmp_path / 'outbox.sqlite3'
    outbox = Outbox(path, contract=False)
    for start in range(0, 3000, 500):
        outbox.append_many([{'type': 'guide', 'data': {'i': i, 'pad': 'p' * 200}}
                            for i in range(start, start + 500)])
    outbox.close()
    size = path.stat().st_size
    with open(path, 'r+b') as stream:
        stream.truncate(int(size * kept))

    fresh, report = salvage(path, reason='truncated')
    rows = fresh.read_batch(5000, max_bytes=1 << 30)
    indices = [json.loads(e.data)['i'] for e in rows]
    # Each event's row is ~300 bytes: what lay on the pages before the cut comes back, in order
    # (a B-tree's page split puts a few rows on a page further on).
    assert 0.8 * kept * 3000 < len(rows) <= kept * 3000, (len(rows), kept)
    assert indices == sorted(indices) and all(e.seq == i + 1 for e, i in zip(rows, indices))
    assert fresh.append('greeting', {'member': False, 'vip': False, 'appointment': False}).seq > 3000


def test_the_largest_finite_numbers_and_1970_times_are_kept():
    """Refusing non-finite numbers refuses nothing finite: 1e308 and time 0 go through as is."""
    row = prepare_event({'type': 'greeting', 'data': {'x': 1e308}, 'time': 0}, contract=False)
    assert math.isfinite(row[4]) and json.loads(row[3]) == {'x': 1e308}
