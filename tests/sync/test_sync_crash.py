"""Issue 21 item 6: `sync emit` and `sync run` killed with SIGKILL together, again and again,
on lines that carry neither an event id nor a time. Counted before and after: every line is
on the platform exactly once, nothing is quarantined, the platform's sequence has no holes.
(The bench `benches/sync_crash_bench.py` runs the same with more kills.)"""
from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import time

import pytest

from retail_sync.outbox import Outbox
from rostest_support import console_script, wait_for
from sync_support import ROBOT, TOKEN, outbox_status, sync_cli, write_events


def lines_without_ids(count: int) -> list[dict]:
    return [{'type': 'dialogue_turn', 'customer': f'p-{i % 13}',
             'data': {'i': i, 'text': f'顾客问价格 #{i}', 'score': i / 7}} for i in range(count)]


def on_platform(db) -> int:
    """Events the platform has stored (read straight from its database, read-only)."""
    try:
        connection = sqlite3.connect(f'file:{db}?mode=ro', uri=True, timeout=5)
    except sqlite3.Error:
        return 0
    try:
        return connection.execute('SELECT COUNT(*) FROM events').fetchone()[0]
    except sqlite3.Error:
        return 0
    finally:
        connection.close()


def kill_together(outbox, source, rounds_events: list, platform, rounds: int, seed: int, min_kills: int = 0,
                  min_uploading: int = 0, max_rounds: int = 0) -> tuple[int, int]:
    """Start emit and run together and SIGKILL both once the run has stored something more
    (at a random moment after that); returns (processes killed, rounds with uploads). Goes on
    past `rounds` (up to `max_rounds`) until `min_kills` processes were killed mid-work and
    `min_uploading` rounds uploaded: on a fast machine a process may finish before its kill.
    Round k emits `source` holding `rounds_events[k]` (the last once they run out): each adds
    new lines after the ones before (same file, same line numbers: the same ids), so every round
    has work left however fast the machine drained the earlier ones (with one unchanging file a
    fast machine had nothing left to kill after a few rounds)."""
    rng = random.Random(seed)
    kills = uploading = 0
    for done in range(max(rounds, max_rounds)):
        if done >= rounds and kills >= min_kills and uploading >= min_uploading:
            break
        before = on_platform(platform.db)
        write_events(source, rounds_events[min(done, len(rounds_events) - 1)])
        emit = subprocess.Popen([console_script('retailbot'), 'sync', 'emit', '--event-contracts', 'generic', '--outbox',
                                 str(outbox), '--create', '--robot-id', ROBOT, '--from-file',
                                 str(source)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, 0.5))
        run = subprocess.Popen([console_script('retailbot'), 'sync', 'run', '--outbox', str(outbox),
                                '--platform', platform.url, '--token', TOKEN, '--robot-id', ROBOT,
                                '--once', '--batch-size', '200', '--backoff-max', '0.5'],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda before=before, run=run: on_platform(platform.db) > before
                 or run.poll() is not None,
                 timeout=60, what='the uploader to store something', interval=0.05)
        time.sleep(rng.uniform(0.0, 0.3))
        for proc in (emit, run):
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
            proc.wait()
        uploading += on_platform(platform.db) > before
    return kills, uploading


@pytest.mark.slow
def test_emit_and_run_killed_together_lose_nothing_store_nothing_twice(platform, tmp_path):
    outbox = tmp_path / 'outbox.sqlite3'
    per_round, max_rounds = 1_500, 24
    events = lines_without_ids(per_round * max_rounds)
    source = tmp_path / 'day.jsonl'
    kills, uploading = kill_together(outbox, source, [events[:per_round * (k + 1)] for k in range(max_rounds)],
                                     platform, rounds=8, seed=21, min_kills=10,
                                     min_uploading=6, max_rounds=max_rounds)
    assert kills >= 10, f'only {kills} processes were killed mid-work'
    assert uploading >= 6, f'the uploader stored something in only {uploading} rounds'
    # After the crashes: emit once more (as an operator would) and drain.
    write_events(source, events)        # every line, also those of rounds never reached
    again = sync_cli('emit', '--event-contracts', 'generic', '--outbox', str(outbox), '--create', '--robot-id', ROBOT,
                     '--from-file', str(source))
    assert again.returncode == 0, again.stderr
    done = sync_cli('run', '--outbox', str(outbox), '--platform', platform.url, '--token', TOKEN,
                    '--robot-id', ROBOT, '--once')
    assert done.returncode == 0, done.stderr
    status = outbox_status(outbox)
    assert status['pending'] == 0 and status['quarantined'] == 0, status
    stored = platform.export()
    by_line = {}
    for event in stored:
        by_line.setdefault(event['data']['i'], []).append(event)
    assert len(stored) == len(events), f'{len(stored)} stored for {len(events)} lines'
    assert sorted(by_line) == list(range(len(events)))
    seqs = sorted(event['seq'] for event in stored)
    assert seqs == list(range(1, len(events) + 1)), 'the sequence has holes or repeats'


def test_emit_run_twice_on_lines_without_ids_stores_them_once(tmp_path):
    outbox = tmp_path / 'outbox.sqlite3'
    source = write_events(tmp_path / 'day.jsonl', lines_without_ids(50))
    args = ['emit', '--event-contracts', 'generic', '--outbox', str(outbox), '--create', '--robot-id', ROBOT,
            '--from-file', str(source)]
    first, second = sync_cli(*args), sync_cli(*args)
    assert first.returncode == 0 and '50 events added' in first.stdout
    assert second.returncode == 0 and second.stdout.startswith('0 events added'), second.stdout
    assert '50 already stored' in second.stdout
    assert outbox_status(outbox)['pending'] == 50


def test_emit_after_upload_does_not_send_an_event_again(tmp_path):
    """An event already delivered and deleted is remembered: a late re-run stores nothing."""
    path = tmp_path / 'outbox.sqlite3'
    source = write_events(tmp_path / 'day.jsonl', lines_without_ids(20))
    args = ['emit', '--event-contracts', 'generic', '--outbox', str(path), '--create', '--robot-id', ROBOT, '--from-file',
            str(source)]
    assert sync_cli(*args).returncode == 0
    outbox = Outbox(path, contract=False)
    outbox.delete([event.seq for event in outbox.read_batch(100)])     # as after the platform's ack
    outbox.close()
    again = sync_cli(*args)
    assert again.returncode == 0 and again.stdout.startswith('0 events added'), again.stdout
    assert outbox_status(path)['pending'] == 0


def test_the_same_line_in_another_file_or_at_another_line_is_another_event(tmp_path):
    outbox = tmp_path / 'outbox.sqlite3'
    line = lines_without_ids(1)
    for name, events in (('a.jsonl', line), ('b.jsonl', line), ('c.jsonl', line * 2)):
        result = sync_cli('emit', '--event-contracts', 'generic', '--outbox', str(outbox), '--create', '--robot-id', ROBOT,
                          '--from-file', str(write_events(tmp_path / name, events)))
        assert result.returncode == 0, result.stderr
    assert outbox_status(outbox)['pending'] == 4


def test_emit_from_stdin_refuses_lines_without_an_event_id(tmp_path):
    outbox = tmp_path / 'outbox.sqlite3'
    lines = [json.dumps(e) for e in lines_without_ids(2)]
    lines.append(json.dumps({'type': 'greeting', 'event_id': 'g-1', 'data': {}}))
    result = sync_cli('emit', '--event-contracts', 'generic', '--outbox', str(outbox), '--create', '--robot-id', ROBOT,
                      '--from-file', '-', input='\n'.join(lines) + '\n')
    assert result.returncode == 1
    assert result.stderr.count('no event_id (required when reading stdin') == 2
    assert outbox_status(outbox)['pending'] == 1
