"""The robot's stream of sequence numbers, kept apart from the outbox so an outbox reset cannot
make the robot number events the platform already has.

Each outbox has a random `stream_id` (made when it is created) and hands out sequence numbers
that only grow. Before a batch is sent, the highest number in it is written to the stream file
(`<token folder>/sync-stream.<robot id>.json`, replaced atomically) together with the stream id,
so the file always covers every number the platform may have seen. When an outbox is reset (the
file deleted or replaced) the new outbox joins that stream: it takes its id and numbers on after
the recorded one — its waiting events are renumbered when it has never sent anything, which is
safe because no one has seen their numbers. A reinstall that lost the token folder too cannot
know: it starts a new stream, the stream id sent with every batch tells the platform so, and a
number the platform already holds comes back `rejected` with reason `seq_reused` (see the
uploader), which the robot reports as an ERROR and keeps the events in quarantine.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from retail_sync.outbox import Outbox

MAX_STREAM_FILE = 4096


@dataclass(frozen=True)
class StreamState:
    stream_id: str
    last_seq: int       # the highest sequence number that may have reached the platform


def stream_file_for(token_file: str | Path, robot_id: str) -> Path:
    """Where a robot's stream file lives: beside its token (kept when the outbox is reset)."""
    return Path(token_file).parent / f'sync-stream.{robot_id}.json'


def read_stream(path: str | Path) -> StreamState | None:
    """The stream file's content; None when missing. ValueError (one line) when it is bad."""
    path = Path(path)
    try:
        with open(path, 'rb') as handle:
            raw = handle.read(MAX_STREAM_FILE + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f'stream file {path}: {exc.strerror}') from None
    try:
        if len(raw) > MAX_STREAM_FILE:
            raise ValueError('too large')
        content = json.loads(raw)
        stream_id, last_seq = content['stream_id'], content['last_seq']
        if not (isinstance(stream_id, str) and 0 < len(stream_id) <= 64 and stream_id.isalnum()):
            raise ValueError('bad stream_id')
        if isinstance(last_seq, bool) or not isinstance(last_seq, int) or not 0 <= last_seq < 2 ** 63:
            raise ValueError('bad last_seq')
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ValueError(f'stream file {path} is not valid ({exc}); it is ignored') from None
    return StreamState(stream_id, last_seq)


def write_stream(path: str | Path, state: StreamState) -> None:
    """Replace the stream file atomically (temp file, fsync, rename, folder fsync). OSError."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix='.sync-stream-', dir=path.parent)
    try:
        with os.fdopen(fd, 'w') as handle:
            json.dump({'stream_id': state.stream_id, 'last_seq': state.last_seq}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def link_stream(outbox: Outbox, path: str | Path) -> str | None:
    """Make `outbox` continue the robot's stream recorded at `path` (see the module docstring)
    and record the outbox's stream there; returns a one-line note of what was done, or None."""
    try:
        state = read_stream(path)
    except ValueError as exc:
        note: str | None = str(exc)
        state = None
    else:
        note = None
    if state is not None:
        if state.stream_id == outbox.stream_id:
            outbox.continue_stream(state.stream_id, state.last_seq)
        elif outbox.sent_seq() == 0:
            moved = outbox.join_stream(state.stream_id, state.last_seq)
            note = (f'outbox {outbox.path} continues the robot\'s sequence after '
                    f'{state.last_seq} (stream file {path})'
                    + (f'; {moved} waiting events renumbered' if moved else ''))
        else:
            note = (f'outbox {outbox.path} has its own stream {outbox.stream_id}, not the one in '
                    f'{path} ({state.stream_id}); the platform will refuse reused numbers')
    last = max(outbox.sent_seq(), state.last_seq if state and state.stream_id == outbox.stream_id
               else 0)
    try:
        write_stream(path, StreamState(outbox.stream_id, last))
    except OSError as exc:
        note = f'stream file {path} cannot be written ({exc.strerror}); an outbox reset may ' \
               'reuse sequence numbers'
    return note
