"""Issue 21 item 8: a really full disk (a tiny tmpfs) is "disk full", exit 5, from the start;
an outbox on a read-only filesystem can still be read by `sync status`. These mount real
filesystems, so they need root (skipped otherwise)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from retail_sync.outbox import Outbox, OutboxFull, OutboxUnavailable
from sync_support import ROBOT, sync_cli, write_events

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='mounting a filesystem needs root')


def mount(path: Path, *options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(['mount', '-t', 'tmpfs', '-o', ','.join(options), 'tmpfs', str(path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f'cannot mount a tmpfs here: {done.stderr.strip()}')


def remount_readonly(path: Path) -> None:
    subprocess.run(['mount', '-o', 'remount,ro', str(path)], check=True, capture_output=True)


@pytest.fixture
def small_fs(tmp_path):
    where = tmp_path / 'fs'
    mount(where, 'size=1m', 'mode=0755')
    yield where
    subprocess.run(['umount', '-l', str(where)], capture_output=True, check=False)


def fill_up(folder: Path) -> None:
    """Take every free byte of the filesystem."""
    with open(folder / 'filler', 'wb', buffering=0) as handle:
        try:
            while True:
                handle.write(b'\0' * 4096)
        except OSError:
            pass
        try:
            os.fsync(handle.fileno())
        except OSError:
            pass


def seed(path: Path, count: int, close: bool = True) -> None:
    outbox = Outbox(path, contract=False)
    outbox.append_many([{'type': 'greeting', 'event_id': f'e-{i}', 'data': {'i': i}}
                        for i in range(count)])
    if close:
        outbox.close()


def test_a_full_disk_at_start_is_disk_full_exit_5_not_an_io_error(small_fs, tmp_path):
    outbox = small_fs / 'outbox.sqlite3'
    seed(outbox, 5)
    fill_up(small_fs)
    events = write_events(tmp_path / 'events.jsonl', [{'type': 'greeting', 'event_id': 'new',
                                                       'data': {'t': 'x' * 2000}}])
    for command in (['emit', '--event-contracts', 'generic', '--outbox', str(outbox), '--robot-id', ROBOT, '--from-file',
                     str(events)],
                    ['run', '--outbox', str(outbox), '--platform', 'http://127.0.0.1:9',
                     '--token', 't', '--robot-id', ROBOT, '--once', '--give-up-after', '1']):
        result = sync_cli(*command, timeout=60)
        assert result.returncode == 5, (command[0], result.returncode, result.stderr)
        [line] = result.stderr.strip().splitlines()[-1:]
        assert 'disk full' in line and str(outbox) in line and 'Traceback' not in result.stderr
    # A new outbox on the full disk as well.
    fresh = sync_cli('emit', '--event-contracts', 'generic', '--outbox', str(small_fs / 'new.sqlite3'), '--create', '--robot-id',
                     ROBOT, '--from-file', str(events))
    assert fresh.returncode == 5 and 'disk full' in fresh.stderr, fresh.stderr
    # What was stored is still there and readable.
    status = sync_cli('status', '--outbox', str(outbox), '--json')
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)['pending'] == 5
    (small_fs / 'filler').unlink()
    assert Outbox(outbox, contract=False).append('greeting', {'i': 'after'}) is not None


def test_a_full_disk_while_writing_is_outbox_full(small_fs):
    outbox = Outbox(small_fs / 'outbox.sqlite3', contract=False)
    with pytest.raises(OutboxFull, match='disk full'):
        for i in range(2000):
            outbox.append_many([{'type': 'greeting', 'data': {'t': '顾客 ' * 2000, 'i': i}}])
    assert outbox.pending() > 0


@pytest.mark.parametrize('left_by', ['a clean close', 'a crash (WAL left behind)'])
def test_sync_status_reads_an_outbox_on_a_read_only_filesystem(small_fs, left_by):
    outbox = small_fs / 'outbox.sqlite3'
    if left_by == 'a clean close':
        seed(outbox, 7)
    else:
        code = ('import os, sys; sys.path[:0] = sys.argv[2:]; from retail_sync.outbox import Outbox; '
                'o = Outbox(sys.argv[1], contract=False); '
                'o.append_many([{"type": "greeting", "data": {"i": i}} for i in range(7)]); '
                'os._exit(0)')
        subprocess.run([sys.executable, '-c', code, str(outbox), *sys.path], check=True)
        assert Path(str(outbox) + '-wal').exists()
    remount_readonly(small_fs)
    result = sync_cli('status', '--outbox', str(outbox), '--json')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)['pending'] == 7
    plain = sync_cli('status', '--outbox', str(outbox))
    assert plain.returncode == 0 and 'pending: 7' in plain.stdout
    # Writing there is one clear line, not a traceback.
    events = write_events(small_fs.parent / 'events.jsonl',
                          [{'type': 'greeting', 'event_id': 'x', 'data': {}}])
    emit = sync_cli('emit', '--event-contracts', 'generic', '--outbox', str(outbox), '--robot-id', ROBOT, '--from-file', str(events))
    assert emit.returncode == 2 and 'Traceback' not in emit.stderr
    assert str(outbox) in emit.stderr and len(emit.stderr.strip().splitlines()) == 1


def test_readonly_open_changes_nothing(tmp_path):
    path = tmp_path / 'outbox.sqlite3'
    seed(path, 3)
    before = path.read_bytes()
    outbox = Outbox(path, readonly=True, contract=False)
    assert outbox.status()['pending'] == 3
    with pytest.raises(OutboxUnavailable, match='read-only'):
        outbox.append('greeting', {})
    outbox.close()
    assert path.read_bytes() == before
