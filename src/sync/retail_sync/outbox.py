"""The robot's outbox: every interaction event, durable until the platform has acknowledged it.

SQLite in WAL mode with `synchronous=FULL`: `append` returns only after the WAL frame is fsynced,
so an event acknowledged to its publisher survives `kill -9` *and* power loss (NORMAL would only
survive process crashes: a power cut could lose the last transactions since the checkpoint). The
cost is one fsync per commit, which is why bulk writers use `append_many` (one transaction).

Each event has a type, a pseudonymous customer id, a JSON object payload, a time, a unique
idempotency key (`event_id`, the platform deduplicates on it) and a sequence number that only ever
grows for this robot (AUTOINCREMENT never reuses a number, even after deletes), so the platform can
order a robot's events. Events leave only by `delete` (after the platform's ack), `quarantine`
(rejected by the platform, kept with the reason) or by the limits: when the outbox holds more than
`max_events` or events older than `max_age_s`, the oldest are dropped — and well before that,
from `warn_fraction` of either limit, `alarm()` says so, so a technician can act first.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from retail_sync.privacy import PrivacyError, check_payload

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    customer TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (time);
CREATE TABLE IF NOT EXISTS quarantine (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    customer TEXT NOT NULL,
    data TEXT NOT NULL,
    time REAL NOT NULL,
    reason TEXT NOT NULL,
    quarantined_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
MAX_DATA_BYTES = 256 * 1024


class OutboxError(ValueError):
    """An event was refused (bad JSON, face data, missing type); nothing was stored."""


@dataclass(frozen=True)
class Event:
    seq: int
    event_id: str
    type: str
    customer: str
    data: str          # the JSON object as stored (validated on the way in)
    time: float

    def to_json(self) -> str:
        """The event as the platform receives it; `data` is spliced in without re-parsing."""
        head = json.dumps({'event_id': self.event_id, 'seq': self.seq, 'type': self.type,
                           'customer': self.customer, 'time': self.time}, ensure_ascii=False)
        return f'{head[:-1]}, "data": {self.data}}}'


@dataclass(frozen=True)
class Limits:
    max_events: int = 1_000_000
    max_age_s: float = 30 * 86400.0
    warn_fraction: float = 0.8


def _encode_data(data: Any) -> str:
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise OutboxError(f'payload is not JSON: {exc}') from None
    if not isinstance(data, dict):
        raise OutboxError(f'payload must be a JSON object, not {type(data).__name__}')
    try:
        check_payload(data)
    except PrivacyError as exc:
        raise OutboxError(f'refused (privacy): {exc}') from None
    text = json.dumps(data, ensure_ascii=False, separators=(',', ':'))
    if len(text.encode()) > MAX_DATA_BYTES:
        raise OutboxError(f'payload is {len(text.encode())} bytes, more than {MAX_DATA_BYTES}')
    return text


def prepare_event(event: dict) -> tuple:
    """Validate one event dict (type, data, optional customer/event_id/time) into a row;
    raises OutboxError saying what is wrong."""
    kind = str(event.get('type') or '').strip()
    if not kind:
        raise OutboxError('event has no type')
    try:
        when = float(event.get('time') or time.time())
    except (TypeError, ValueError):
        raise OutboxError(f'time {event.get("time")!r} is not a number') from None
    return (str(event.get('event_id') or uuid.uuid4()), kind, str(event.get('customer') or ''),
            _encode_data(event.get('data', {})), when)


class Outbox:
    """Durable FIFO of events; safe to share between threads and between processes."""

    def __init__(self, path: str | Path, limits: Limits = Limits()) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.limits = limits
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute('PRAGMA journal_mode=WAL')
        self._db.execute('PRAGMA synchronous=FULL')
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- writing -------------------------------------------------------------------------------
    def append(self, type: str, data: Any, customer: str = '', event_id: str = '',
               time_s: float | None = None) -> Event | None:
        """Validate and commit one event; returns it once it is on disk (None: this event_id
        was already stored, e.g. a publisher's retry)."""
        stored = self.append_many([dict(type=type, data=data, customer=customer,
                                        event_id=event_id, time=time_s)])
        return stored[0] if stored else None

    def append_many(self, events: Iterable[dict]) -> list[Event]:
        """Commit several events in one transaction (all or none); each dict has type and data,
        optionally customer, event_id and time."""
        return self.append_rows([prepare_event(event) for event in events])

    def append_rows(self, rows: list[tuple]) -> list[Event]:
        """Commit rows made by `prepare_event` in one transaction; returns the events stored."""
        stored = []
        with self._lock:
            self._db.execute('BEGIN IMMEDIATE')
            try:
                for row in rows:
                    cursor = self._db.execute(
                        'INSERT OR IGNORE INTO events (event_id, type, customer, data, time) '
                        'VALUES (?, ?, ?, ?, ?)', row)
                    if cursor.rowcount:   # a repeated event_id is the same event: keep the first
                        stored.append(Event(cursor.lastrowid, *row))
                self._enforce_limits()
                self._db.execute('COMMIT')
            except BaseException:
                self._db.execute('ROLLBACK')
                raise
        return stored

    def _enforce_limits(self) -> None:
        """Drop what is over the limits (oldest first); counted in meta `dropped`."""
        dropped = 0
        low, high = self._db.execute('SELECT MIN(seq), MAX(seq) FROM events').fetchone()
        # high - low + 1 bounds the count from above (both O(log n)); count only near the limit.
        if low is not None and high - low + 1 > self.limits.max_events:
            excess = self._count('events') - self.limits.max_events
            if excess > 0:
                dropped += self._db.execute(
                    'DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?)',
                    (excess,)).rowcount
        cutoff = time.time() - self.limits.max_age_s
        oldest = self._db.execute('SELECT MIN(time) FROM events').fetchone()[0]
        if oldest is not None and oldest < cutoff:
            dropped += self._db.execute('DELETE FROM events WHERE time < ?', (cutoff,)).rowcount
        if dropped:
            total = int(self._meta('dropped') or 0) + dropped
            self._set_meta('dropped', str(total))

    # --- reading and removing ------------------------------------------------------------------
    def read_batch(self, limit: int, max_bytes: int = 1 << 20, after_seq: int = 0) -> list[Event]:
        """The oldest pending events after `after_seq`, at most `limit` and about `max_bytes`."""
        with self._lock:
            cursor = self._db.execute(
                'SELECT seq, event_id, type, customer, data, time FROM events WHERE seq > ? '
                'ORDER BY seq LIMIT ?', (after_seq, limit))
            batch: list[Event] = []
            size = 0
            for row in cursor:
                size += len(row[4]) + 120
                if batch and size > max_bytes:
                    break
                batch.append(Event(*row))
            cursor.close()
        return batch

    def delete(self, seqs: list[int]) -> int:
        """Remove acknowledged events and note the time of this success."""
        with self._lock:
            self._db.execute('BEGIN IMMEDIATE')
            removed = self._delete(seqs)
            self._set_meta('last_success', repr(time.time()))
            self._db.execute('COMMIT')
        return removed

    def _delete(self, seqs: list[int]) -> int:
        removed = 0
        for start in range(0, len(seqs), 500):
            chunk = seqs[start:start + 500]
            removed += self._db.execute(
                f'DELETE FROM events WHERE seq IN ({",".join("?" * len(chunk))})', chunk).rowcount
        return removed

    def quarantine(self, seqs: list[int], reason: str) -> int:
        """Move events the platform refused out of the queue, keeping them with the reason."""
        now = time.time()
        with self._lock:
            self._db.execute('BEGIN IMMEDIATE')
            for start in range(0, len(seqs), 500):
                chunk = seqs[start:start + 500]
                self._db.execute(
                    'INSERT OR REPLACE INTO quarantine (seq, event_id, type, customer, data, time, '
                    'reason, quarantined_at) SELECT seq, event_id, type, customer, data, time, ?, ? '
                    f'FROM events WHERE seq IN ({",".join("?" * len(chunk))})',
                    [reason, now, *chunk])
            moved = self._delete(seqs)
            self._db.execute('COMMIT')
        return moved

    def quarantined(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute('SELECT seq, event_id, type, reason FROM quarantine '
                                    'ORDER BY seq').fetchall()
        return [dict(seq=r[0], event_id=r[1], type=r[2], reason=r[3]) for r in rows]

    # --- state ---------------------------------------------------------------------------------
    def _count(self, table: str) -> int:
        return self._db.execute(f'SELECT COUNT(*) FROM {table}').fetchone()[0]

    def _meta(self, key: str) -> str | None:
        row = self._db.execute('SELECT value FROM meta WHERE key = ?', (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)', (key, value))

    def pending(self) -> int:
        with self._lock:
            return self._count('events')

    def status(self) -> dict:
        """{"pending", "quarantined", "oldest_pending_s", "last_success", "dropped", "alarm"}."""
        with self._lock:
            pending = self._count('events')
            quarantined = self._count('quarantine')
            oldest = self._db.execute('SELECT MIN(time) FROM events').fetchone()
            last_success = self._meta('last_success')
            dropped = int(self._meta('dropped') or 0)
        oldest_s = round(max(0.0, time.time() - oldest[0]), 3) if oldest[0] is not None else None
        status = {'pending': pending, 'quarantined': quarantined, 'oldest_pending_s': oldest_s,
                  'last_success': float(last_success) if last_success else None,
                  'dropped': dropped}
        status['alarm'] = self.alarm(status)
        return status

    def alarm(self, status: dict | None = None) -> str | None:
        """A one-line warning when the outbox nears (or passed) a limit, else None."""
        status = status or self.status()
        limits = self.limits
        problems = []
        if status['pending'] >= limits.warn_fraction * limits.max_events:
            problems.append(f'{status["pending"]} events waiting, limit {limits.max_events}')
        oldest = status['oldest_pending_s']
        if oldest is not None and oldest >= limits.warn_fraction * limits.max_age_s:
            problems.append(f'oldest event waiting {oldest / 3600:.1f} h, '
                            f'limit {limits.max_age_s / 3600:.1f} h')
        if status.get('dropped'):
            problems.append(f'{status["dropped"]} events already dropped')
        if not problems:
            return None
        return ('outbox near its limits — upload soon or events will be dropped: '
                + '; '.join(problems))
