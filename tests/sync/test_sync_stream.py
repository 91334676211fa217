"""Issue 21 item 7 (robot side): after an outbox reset the robot goes on numbering after what
the platform may have seen (the stream file beside the token), never reusing a number; each
outbox's stream id goes with every batch (test_upload_acks.py)."""
from __future__ import annotations

import json

from retail_sync.outbox import Outbox
from retail_sync.stream import (
    StreamState,
    link_stream,
    read_stream,
    stream_file_for,
    write_stream,
)
from sync_support import ROBOT, TOKEN, outbox_status, sync_cli, write_events


def test_joining_a_stream_renumbers_waiting_and_quarantined_events_in_order(tmp_path):
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    outbox.append_many([{'type': 'guide', 'event_id': f'e-{i}', 'data': {'i': i}} for i in range(5)])
    outbox.quarantine([2], 'refused')          # e-1
    assert outbox.join_stream('a' * 32, after_seq=100) == 5
    assert [(e.seq, e.event_id) for e in outbox.read_batch(10)] == [
        (101, 'e-0'), (103, 'e-2'), (104, 'e-3'), (105, 'e-4')]
    assert [(q['seq'], q['event_id']) for q in outbox.quarantined()] == [(102, 'e-1')]
    assert outbox.append('guide', {'i': 5}).seq == 106
    assert outbox.stream_id == 'a' * 32


def test_a_stream_is_joined_only_by_an_outbox_that_never_sent(tmp_path):
    stream = tmp_path / 'sync-stream.json'
    write_stream(stream, StreamState('b' * 32, 40))
    outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
    outbox.append('guide', {'i': 0})
    outbox.note_sent(1)
    note = link_stream(outbox, stream)
    assert 'has its own stream' in note
    assert [e.seq for e in outbox.read_batch(10)] == [1]
    assert read_stream(stream).stream_id == outbox.stream_id      # the file follows the outbox


def test_a_bad_stream_file_is_reported_and_replaced(tmp_path):
    stream = tmp_path / 'sync-stream.json'
    for content in (b'{"stream_id": "x"', b'\xff\xfe', json.dumps({'stream_id': '../x', 'last_seq': 1}).encode(),
                    json.dumps({'stream_id': 'abc', 'last_seq': -1}).encode(), b'[' * 100_000):
        stream.write_bytes(content)
        outbox = Outbox(tmp_path / 'outbox.sqlite3', contract=False)
        note = link_stream(outbox, stream)
        assert note.startswith(f'stream file {stream} is not valid'), note
        assert read_stream(stream) == StreamState(outbox.stream_id, 0)
        outbox.close()


def run_once(outbox, platform, token_file):
    result = sync_cli('run', '--outbox', str(outbox), '--platform', platform.url, '--token-file',
                      str(token_file), '--robot-id', ROBOT, '--once')
    assert result.returncode == 0, result.stderr
    return result


def emit_lines(outbox, path, start, count):
    events = [{'type': 'guide', 'event_id': f'ev-{i}', 'data': {'i': i}}
              for i in range(start, start + count)]
    result = sync_cli('emit', '--event-contracts', 'generic', '--outbox', str(outbox), '--create', '--robot-id', ROBOT,
                      '--from-file', str(write_events(path, events)))
    assert result.returncode == 0, result.stderr


def test_after_an_outbox_reset_the_robot_numbers_on_after_the_platform(platform, tmp_path):
    token = tmp_path / 'sync' / 'token'
    token.parent.mkdir()
    token.write_text(TOKEN + '\n')
    outbox = tmp_path / 'sync' / 'outbox.sqlite3'
    emit_lines(outbox, tmp_path / 'a.jsonl', 0, 10)
    run_once(outbox, platform, token)
    stream = read_stream(stream_file_for(token, ROBOT))
    first_stream = outbox_status(outbox)['stream_id']
    assert stream == StreamState(first_stream, 10)
    # The outbox is reset (deleted with its WAL); new events are recorded before the next run.
    for suffix in ('', '-wal', '-shm'):
        outbox.with_name(outbox.name + suffix).unlink(missing_ok=True)
    emit_lines(outbox, tmp_path / 'b.jsonl', 10, 5)
    result = run_once(outbox, platform, token)
    assert 'continues the robot\'s sequence after 10' in result.stderr
    assert '5 waiting events renumbered' in result.stderr
    stored = platform.export()
    assert [e['seq'] for e in stored] == list(range(1, 16))
    assert [e['data']['i'] for e in stored] == list(range(15))
    assert outbox_status(outbox)['stream_id'] == first_stream
    assert read_stream(stream_file_for(token, ROBOT)).last_seq == 15


def test_delivered_ids_are_remembered_within_their_bounds(tmp_path):
    from retail_sync.outbox import Limits
    from test_outbox_faults import FakeClock
    clock = FakeClock()
    outbox = Outbox(tmp_path / 'outbox.sqlite3', Limits(delivered_max=5, delivered_age_s=3600.0),
                    clock=clock, contract=False)
    events = outbox.append_many([{'type': 'guide', 'event_id': f'e-{i}', 'data': {'i': i}}
                                 for i in range(8)])
    outbox.delete([e.seq for e in events])
    # The newest 5 are remembered: a late retry of one is a duplicate and spends no number.
    assert outbox.append('guide', {'i': 7}, event_id='e-7') is None
    assert outbox.append('guide', {'i': 0}, event_id='e-0') is not None      # forgotten
    clock.since_boot += 3601.0
    outbox.delete([outbox.append('guide', {}, event_id='late').seq])          # forgets by age
    assert outbox.append('guide', {'i': 7}, event_id='e-7') is not None


def test_after_a_reinstall_that_lost_the_stream_file_new_events_are_numbered_on_and_stored(platform, tmp_path):
    """Session 13: a reinstall that lost the token folder too starts a new stream at 1; the
    platform refused each of its numbers it already held as `seq_reused`, and those events were
    held in quarantine for good (as many as the robot had ever sent: weeks of a store's
    interactions). The platform now says where to number on; the robot renumbers and they are
    stored, the ERROR stays until someone looks (two robots with one id also end here)."""
    outbox = tmp_path / 'outbox.sqlite3'
    tokens = []
    for install in ('first', 'second'):
        (tmp_path / install).mkdir()
        tokens.append(tmp_path / install / 'token')
        tokens[-1].write_text(TOKEN + '\n')
    emit_lines(outbox, tmp_path / 'a.jsonl', 0, 10)
    run_once(outbox, platform, tokens[0])
    for suffix in ('', '-wal', '-shm'):                      # reinstalled: outbox and stream gone
        outbox.with_name(outbox.name + suffix).unlink(missing_ok=True)
    emit_lines(outbox, tmp_path / 'b.jsonl', 10, 5)
    run_once(outbox, platform, tokens[1])
    stored = platform.export()
    assert [e['data']['i'] for e in stored] == list(range(15))          # nothing held back
    assert [e['seq'] for e in stored] == list(range(1, 16))             # numbered on, no reuse
    status = outbox_status(outbox)
    assert status['pending'] == 0 and status['quarantined'] == 0
    assert status['seq_reused'] == 5 and 'already used by another outbox' in status['alarm']
    emit_lines(outbox, tmp_path / 'c.jsonl', 15, 1)                       # and later ones go on
    run_once(outbox, platform, tokens[1])
    assert [e['seq'] for e in platform.export()][-1] == 16
