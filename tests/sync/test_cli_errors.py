"""`retailbot sync` / `retailbot platform` error paths (issue 17 items 7-8, issue 12 item 10):
one line naming the file or option, a documented exit code, never a traceback."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from datetime import datetime

import pytest

from retail_sync.outbox import Outbox, OutboxFull
from rostest_support import console_script
from sync_support import ROBOT, sync_cli, write_events
from cli_support import not_sqlite, one_line  # noqa: F401 - not_sqlite is a fixture


def retailbot(*args, timeout=60, env=None):
    return subprocess.run([console_script('retailbot'), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_sync_commands_on_a_file_that_is_not_sqlite(tmp_path, not_sqlite):
    events = write_events(tmp_path / 'e.jsonl', [{'type': 'guide', 'data': {}}])
    for args in (['status', '--outbox', str(not_sqlite)],
                 ['emit', '--event-contracts', 'generic', '--outbox', str(not_sqlite), '--robot-id', ROBOT, '--from-file', str(events)],
                 ['run', '--outbox', str(not_sqlite), '--platform', 'http://127.0.0.1:9',
                  '--token', 't', '--robot-id', ROBOT, '--once']):
        one_line(sync_cli(*args), 2, str(not_sqlite))
    assert not_sqlite.read_text().startswith('shopping list')     # untouched


def test_a_mistyped_outbox_is_not_created_without_create(tmp_path):
    events = write_events(tmp_path / 'e.jsonl', [{'type': 'guide', 'data': {}}])
    typo = tmp_path / 'outbx.sqlite3'
    for args in (['status', '--outbox', str(typo)],
                 ['emit', '--event-contracts', 'generic', '--outbox', str(typo), '--robot-id', ROBOT, '--from-file', str(events)],
                 ['run', '--outbox', str(typo), '--platform', 'http://127.0.0.1:9', '--token', 't',
                  '--robot-id', ROBOT, '--once']):
        line = one_line(sync_cli(*args), 2, str(typo))
        assert 'no outbox' in line
    assert not typo.exists()
    created = sync_cli('emit', '--event-contracts', 'generic', '--outbox', str(typo), '--create', '--robot-id', ROBOT,
                       '--from-file', str(events))
    assert created.returncode == 0 and typo.exists()


def test_emit_counts_only_what_it_added_and_says_what_it_skipped(tmp_path):
    outbox = tmp_path / 'outbox.sqlite3'
    lines = [json.dumps({'type': 'greeting', 'data': {'n': 1}, 'event_id': 'a'}),
             '{"type": "greeting", "data": {"n": 2}, "event_id": "b", "time": NaN}',
             json.dumps({'type': 'greeting', 'data': {'n': 3}, 'event_id': 'c'}),
             '{"type": "greeting", "data": {"t": "\\ud800"}, "event_id": "d"}',
             json.dumps({'type': 'greeting', 'data': {'n': 1}, 'event_id': 'a'}),      # repeat
             json.dumps({'type': 'greeting', 'data': {'n': 9}, 'event_id': 'c'}),      # clash
             '{"type": "greeting", "data": ' + '{"a":' * 5000 + '1' + '}' * 5000 + '}']
    source = tmp_path / 'events.jsonl'
    source.write_text('\n'.join(lines) + '\n')
    result = sync_cli('emit', '--event-contracts', 'generic', '--outbox', str(outbox), '--create', '--robot-id', ROBOT,
                      '--from-file', str(source))
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip() == (f'2 events added to {outbox}, 1 already stored (same '
                                     'event_id and content), 4 lines skipped')
    errors = result.stderr.strip().splitlines()
    assert sorted(e.split(':')[0] for e in errors) == ['line 2', 'line 4', 'line 6', 'line 7']
    assert 'Traceback' not in result.stderr
    assert {e.event_id for e in Outbox(outbox, contract=False).read_batch(10)} == {'a', 'c'}


def test_a_locked_outbox_is_one_line_and_its_own_exit_code(tmp_path):
    outbox = tmp_path / 'outbox.sqlite3'
    Outbox(outbox, contract=False).close()
    events = write_events(tmp_path / 'e.jsonl', [{'type': 'guide', 'data': {}}])
    holder = sqlite3.connect(outbox, isolation_level=None)
    holder.execute('BEGIN IMMEDIATE')
    try:
        result = sync_cli('emit', '--event-contracts', 'generic', '--outbox', str(outbox), '--robot-id', ROBOT, '--from-file',
                          str(events), '--lock-wait', '0.5')
    finally:
        holder.execute('ROLLBACK')
        holder.close()
    one_line(result, 4, 'locked by another process', str(outbox))


def test_a_full_disk_is_one_line_and_its_own_exit_code(capsys):
    from retail_sync.cli import _guarded

    def full(_args):
        raise OutboxFull('outbox /data/outbox.sqlite3: disk full — free space on the robot; '
                         'nothing was written')
    import gc
    gc.collect()          # a previous in-process ROS test's leftovers report at collection:
    capsys.readouterr()   # judge only what the command prints
    assert _guarded('emit', full)(None) == 5
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['retailbot sync emit: outbox /data/outbox.sqlite3: disk full — free space on '
                   'the robot; nothing was written']


def test_sync_run_without_a_token_stops_at_start(tmp_path):
    outbox = tmp_path / 'outbox.sqlite3'
    Outbox(outbox, contract=False).append('guide', {})
    env = {k: v for k, v in os.environ.items() if k != 'RETAILBOT_SYNC_TOKEN'}
    base = ['sync', 'run', '--outbox', str(outbox), '--platform', 'http://127.0.0.1:9',
            '--robot-id', ROBOT, '--once']
    one_line(retailbot(*base, env=env, timeout=20), 2, 'no platform token')
    empty = tmp_path / 'token'
    empty.write_text('\n')
    one_line(retailbot(*base, '--token-file', str(empty), env=env, timeout=20), 2, 'is empty')
    one_line(retailbot(*base, '--token-file', str(tmp_path / 'missing'), env=env, timeout=20), 2,
             'cannot read token file')
    bad_id = [a if a != ROBOT else 'robot 1/..' for a in base]
    one_line(retailbot(*bad_id, '--token', 't', env=env, timeout=20), 2, 'robot 1/..')


def test_sync_status_shows_local_iso_times(tmp_path):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    event = outbox.append('guide', {})
    outbox.delete([event.seq])
    outbox.close()
    text = sync_cli('status', '--outbox', str(tmp_path / 'outbox.sqlite3'))
    line = next(l for l in text.stdout.splitlines() if l.startswith('last success: '))
    when = datetime.fromisoformat(line.removeprefix('last success: '))
    assert when.tzinfo is not None and abs(when.timestamp() - datetime.now().timestamp()) < 120
    as_json = json.loads(sync_cli('status', '--outbox', str(tmp_path / 'outbox.sqlite3'),
                                  '--json').stdout)
    assert datetime.fromisoformat(as_json['last_success']) == when


@pytest.mark.parametrize('long_line', [
    'x' * (3 << 20),                                                    # 3 MiB of garbage
    '{"type": "greeting", "data": {"t": "' + 'a' * (3 << 20) + '"}}',   # 3 MiB event
    '\x00' * (5 << 20),                                                  # NULs, no newline until the end
], ids=['garbage', 'huge event', 'nuls'])
def test_emit_reads_an_over_long_line_in_bounded_memory_and_goes_on(tmp_path, long_line):
    """Attack round: `sync emit` read a line whole, however long (`--from-file /dev/zero`: MemoryError)."""
    outbox = tmp_path / 'outbox.sqlite3'
    source = tmp_path / 'events.jsonl'
    source.write_text('\n'.join([json.dumps({'type': 'greeting', 'data': {'n': 1}, 'event_id': 'a'}), long_line,
                                 json.dumps({'type': 'greeting', 'data': {'n': 3}, 'event_id': 'c'})]) + '\n')
    result = sync_cli('emit', '--event-contracts', 'generic', '--outbox', str(outbox), '--create', '--robot-id', ROBOT, '--from-file', str(source))
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().startswith('line 2: longer than') and 'Traceback' not in result.stderr
    assert {e.event_id for e in Outbox(outbox, contract=False).read_batch(10)} == {'a', 'c'}


def test_emit_from_an_endless_line_stops_reading_with_one_line(tmp_path):
    outbox = tmp_path / 'outbox.sqlite3'
    result = sync_cli('emit', '--event-contracts', 'generic', '--outbox', str(outbox), '--create', '--robot-id', ROBOT, '--from-file', '/dev/zero',
                      timeout=120)
    assert result.returncode == 1, result.stderr
    assert 'stopped reading there' in result.stderr and 'Traceback' not in result.stderr
    assert '0 events added' in result.stdout


@pytest.mark.parametrize('args, option', [
    (['run', '--platform', 'http://127.0.0.1:9', '--token', 't', '--once', '--give-up-after', '2',
      '--batch-size', '0'], '--batch-size'),       # hung for ever: batches of nothing, never "unreachable"
    (['run', '--platform', 'http://127.0.0.1:9', '--token', 't', '--once', '--batch-size', '-1'],
     '--batch-size'),
    (['run', '--platform', 'http://127.0.0.1:9', '--token', 't', '--once', '--batch-size', '20000'],
     '--batch-size'),                               # the platform refuses more than 10000 a batch
    (['emit', '--event-contracts', 'generic', '--from-file', 'EVENTS', '--max-events', '0'],
     '--max-events'),                               # said "1 events added" and dropped it
    (['emit', '--event-contracts', 'generic', '--from-file', 'EVENTS', '--max-events', '-5'],
     '--max-events'),
])
def test_a_batch_size_or_limit_that_would_hang_or_drop_is_refused_naming_the_option(tmp_path, args, option):
    """Session 13: `sync run --once --batch-size 0` never ended (no batch, so no failure to give
    up on); `sync emit --max-events 0` stored each event and dropped it at once."""
    events = write_events(tmp_path / 'e.jsonl', [{'type': 'guide', 'data': {}, 'event_id': 'g-1'}])
    outbox = tmp_path / 'outbox.sqlite3'
    Outbox(outbox, contract=False).append('guide', {}, event_id='g-0')
    args = [str(events) if a == 'EVENTS' else a for a in args]
    result = sync_cli(args[0], '--outbox', str(outbox), '--robot-id', ROBOT, *args[1:], timeout=30)
    assert result.returncode == 2 and option in result.stderr and 'Traceback' not in result.stderr
    assert Outbox(outbox, contract=False).pending() == 1           # nothing dropped, nothing sent
