"""The robot's outbox: every interaction event, durable until the platform has acknowledged it.

SQLite in WAL mode with `synchronous=FULL`: `append` returns only after the WAL frame is fsynced,
so an event acknowledged to its publisher survives `kill -9` *and* power loss (NORMAL would only
survive process crashes: a power cut could lose the last transactions since the checkpoint). The
cost is one fsync per commit, which is why bulk writers use `append_many` (one transaction).

Each event has a type, a pseudonymous customer id, a JSON object payload, a time, a unique
idempotency key (`event_id`, the platform deduplicates on it) and a sequence number that only ever
grows for this robot and has no gaps made by retries: an event_id already stored is looked up
first and never reaches the INSERT (SQLite's AUTOINCREMENT spends a number even on an ignored
insert). Events leave only by `delete` (after the platform's ack), `quarantine` (rejected by the
platform, kept with the reason) or by the limits: when the outbox holds more than `max_events` or
events older than `max_age_s`, the oldest are dropped — and well before that, from
`warn_fraction` of either limit, `alarm()` says so, so a technician can act first.

Age never trusts the wall clock (a board without a real-time clock boots in 1970; NTP may step
the clock back by an hour): each event also carries the outbox's own clock, `CLOCK_BOOTTIME`
plus an offset kept in the file, which only moves forward and continues across reboots from the
last value written. The event's wall-clock `time` is data for the platform, nothing more.

Everything the outbox accepts, the platform accepts too (up to the event type, which the platform
checks): finite numbers only, valid Unicode only, `data` nested at most `MAX_DEPTH` levels and at
most `MAX_DATA_BYTES` long, ids and customers of at most 128 characters.

Storage failures are `OutboxUnavailable` with one line in a technician's words: `OutboxFull`
(disk full), `OutboxLocked` (another process holds the write lock), `OutboxCorrupt` (not an
SQLite file or a damaged one: `salvage` sets it aside and keeps what can still be read).
"""
from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from retail_common.events import EventContractError, event_time_problem, member_id_problem, validate_event
from retail_sync.privacy import ERASING_PRAGMAS, PrivacyError, check_payload, erase_wal

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    customer TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL,
    time REAL NOT NULL,
    mono REAL NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 1,
    digest TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS quarantine (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    customer TEXT NOT NULL,
    data TEXT NOT NULL,
    time REAL NOT NULL,
    reason TEXT NOT NULL,
    quarantined_at REAL NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS delivered (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    digest TEXT NOT NULL,
    mono REAL NOT NULL
);
"""
MAX_DATA_BYTES = 256 * 1024
MAX_DEPTH = 32                 # nesting of `data` (objects and lists); the platform has the same
MAX_ID_CHARS = 128             # event_id and customer
_BATCH_INDEX = re.compile(r'events\[\d+\]')    # a platform reason's place in its batch
EVENT_COLUMNS = 'seq, event_id, type, customer, data, time, version, mono'


class OutboxError(ValueError):
    """An event was refused (bad JSON, face data, missing type, ...); nothing was stored."""


class OutboxUnavailable(RuntimeError):
    """The outbox file cannot be used right now; the message is one line naming the file."""


class OutboxFull(OutboxUnavailable):
    """The disk (or the file's page limit) is full: nothing was written."""


class OutboxLocked(OutboxUnavailable):
    """Another process held the write lock for longer than the busy timeout."""


class OutboxCorrupt(OutboxUnavailable):
    """The file is not an SQLite database, is damaged, or is some other program's database."""


class OutboxMissing(OutboxUnavailable):
    """No outbox at that path and creating one was not asked for."""


FULL_BELOW_BYTES = 256 * 1024   # an I/O error with less free space than this is a full disk


def disk_full(path: Path | str) -> bool:
    """True when the filesystem holding `path` has (almost) no space left for us."""
    folder = Path(path).parent
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < FULL_BELOW_BYTES or stats.f_favail == 0


def translate_error(exc: BaseException, path: Path | str) -> OutboxUnavailable:
    """The one-line outbox error for an SQLite (or OS) error, by its result code, not its text.
    SQLite reports a full disk met while creating or growing the `-wal`/`-shm` files (e.g. at
    start) as an I/O error or "unable to open": those are told apart by the free space left."""
    if isinstance(exc, OSError):
        code = 13 if exc.errno in (errno.ENOSPC, errno.EDQUOT) else 10
    else:
        code = (getattr(exc, 'sqlite_errorcode', None) or 0) & 0xFF
    if code in (10, 14) and disk_full(path):
        code = 13
    if code == 13:          # SQLITE_FULL
        return OutboxFull(f'outbox {path}: disk full — free space on the robot; '
                          'nothing was written')
    if code in (5, 6):      # SQLITE_BUSY, SQLITE_LOCKED
        return OutboxLocked(f'outbox {path} is locked by another process (the sync agent or '
                            'another retailbot sync command); try again when it is done')
    if code in (11, 26):    # SQLITE_CORRUPT, SQLITE_NOTADB
        return OutboxCorrupt(f'outbox {path} is damaged or not an outbox ({exc})')
    if code == 14:          # SQLITE_CANTOPEN
        return OutboxUnavailable(f'outbox {path} cannot be opened (missing folder or no '
                                 'permission)')
    if code == 8:           # SQLITE_READONLY
        return OutboxUnavailable(f'outbox {path} is read-only (read it with `retailbot sync '
                                 'status`; nothing can be stored there)')
    if code == 10:          # SQLITE_IOERR
        return OutboxUnavailable(f'outbox {path}: disk I/O error ({exc})')
    return OutboxUnavailable(f'outbox {path}: {exc}')


@dataclass(frozen=True)
class Event:
    seq: int
    event_id: str
    type: str
    customer: str
    data: str          # the JSON object as stored (validated on the way in)
    time: float        # wall clock when recorded (seconds since 1970), as data for the platform
    version: int = 1   # of the payload's contract (retail_common.events)
    mono: float = 0.0  # the outbox's own clock when recorded (see the module docstring)

    def to_json(self) -> str:
        """The event as the platform receives it; `data` is spliced in without re-parsing."""
        head = json.dumps({'event_id': self.event_id, 'seq': self.seq, 'type': self.type,
                           'version': self.version, 'customer': self.customer, 'time': self.time},
                          ensure_ascii=False, allow_nan=False)
        return f'{head[:-1]}, "data": {self.data}}}'


@dataclass(frozen=True)
class Limits:
    max_events: int = 1_000_000
    max_age_s: float = 30 * 86400.0     # of the outbox's own clock (robot running time)
    warn_fraction: float = 0.8
    # Ids of delivered events are remembered (so a late retry or re-run is not sent again)
    # for this long of robot running time and at most this many (~150 bytes each).
    delivered_age_s: float = 7 * 86400.0
    delivered_max: int = 200_000


@dataclass
class AppendResult:
    """What `append_rows` did: events stored, event_ids already stored with the same content
    (a retry), and event_ids already stored with different content (refused)."""
    stored: list[Event] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


def _reject_constant(name: str) -> Any:
    raise OutboxError(f'{name} is not a number JSON allows (numbers must be finite)')


def _check_text(value: str, where: str) -> None:
    try:
        value.encode('utf-8')
    except UnicodeEncodeError:
        raise OutboxError(f'{where}: text is not valid Unicode (lone surrogate)') from None


def check_tree(value: Any, where: str = 'data', max_depth: int = MAX_DEPTH,
               error: Callable[[str], Exception] = OutboxError) -> None:
    """Raise `error` unless `value` (decoded JSON) has only finite numbers, valid Unicode text
    (keys included) and at most `max_depth` levels of nesting. Iterative: no recursion limit."""
    stack = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            if depth >= max_depth:
                raise error(f'{path}: nested more than {max_depth} levels')
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        raise error(f'{path}: key {key!r} is not text')
                    try:
                        key.encode('utf-8')
                    except UnicodeEncodeError:
                        raise error(f'{path}: a key is not valid Unicode (lone surrogate)') from None
                    stack.append((child, f'{path}.{key}', depth + 1))
            else:
                stack.extend((child, f'{path}[{i}]', depth + 1) for i, child in enumerate(item))
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise error(f'{path}: {item} is not a finite number')
        elif isinstance(item, str):
            try:
                item.encode('utf-8')
            except UnicodeEncodeError:
                raise error(f'{path}: text is not valid Unicode (lone surrogate)') from None
        elif item is not None and not isinstance(item, (bool, int)):
            raise error(f'{path}: {type(item).__name__} is not JSON')


def _version(value: Any) -> int:
    if value is None or value == '':
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise OutboxError(f'version {value!r} is not a whole number from 1 to 1000')
    return value


def _encode_data(data: Any, kind: str | None = None, version: int = 1) -> str:
    if isinstance(data, (str, bytes)):
        if len(data) > MAX_DATA_BYTES:
            raise OutboxError(f'payload is {len(data)} characters, more than {MAX_DATA_BYTES} bytes')
        try:
            data = json.loads(data, parse_constant=_reject_constant)
        except RecursionError:
            raise OutboxError(f'payload: nested more than {MAX_DEPTH} levels') from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise OutboxError(f'payload is not JSON: {exc}') from None
    if not isinstance(data, dict):
        raise OutboxError(f'payload must be a JSON object, not {type(data).__name__}')
    check_tree(data, 'data')
    try:
        check_payload(data)
    except PrivacyError as exc:
        raise OutboxError(f'refused (privacy): {exc}') from None
    if kind is not None:
        try:
            validate_event(kind, data, version)
        except EventContractError as exc:
            raise OutboxError(f'refused (contract): {exc}') from None
    text = json.dumps(data, ensure_ascii=False, separators=(',', ':'), allow_nan=False)
    size = len(text.encode())
    if size > MAX_DATA_BYTES:
        raise OutboxError(f'payload is {size} bytes, more than {MAX_DATA_BYTES}')
    return text


def _short_text(value: Any, name: str) -> str:
    text = '' if value is None else str(value)
    if len(text) > MAX_ID_CHARS:
        raise OutboxError(f'{name} is {len(text)} characters, more than {MAX_ID_CHARS}')
    _check_text(text, name)
    if '\x00' in text:     # the platform refuses it (PostgreSQL text cannot hold NUL): refused here
        raise OutboxError(f'{name} contains a NUL character')
    return text


def prepare_event(event: dict, contract: bool = True) -> tuple:
    """Validate one event dict (type, data, optional customer/event_id/time/version) into a row
    (event_id, type, customer, data, time, version); raises OutboxError saying what is wrong.

    The payload must match its declared type and version (`retail_common.events.validate_event`;
    an undeclared type is refused in one line naming it and where the types are declared), after
    the generic rules (JSON, bounds, privacy). `contract=False` is the explicit escape hatch for
    what must store events of no declared shape: the salvage of rows already stored, and the
    outbox's own mechanics tests and benches (`Outbox(contract=False)`,
    `sync emit --event-contracts generic`)."""
    kind = _short_text(event.get('type'), 'type').strip()
    if not kind:
        raise OutboxError('event has no type')
    raw_time = event.get('time')
    if raw_time is None or raw_time == '':
        when = time.time()
    else:
        if isinstance(raw_time, bool):
            raise OutboxError(f'time {raw_time!r} is not a number')
        try:
            when = float(raw_time)
        except (TypeError, ValueError, OverflowError):
            raise OutboxError(f'time {raw_time!r} is not a number') from None
        if not math.isfinite(when):
            raise OutboxError(f'time {raw_time!r} is not a finite number')
        if (problem := event_time_problem(when)) is not None:
            raise OutboxError(problem)
    event_id = _short_text(event.get('event_id'), 'event_id') or str(uuid.uuid4())
    version = _version(event.get('version'))
    customer = _short_text(event.get('customer'), 'customer')
    if customer and (problem := member_id_problem(customer)) is not None:
        raise OutboxError(f'customer {customer[:40]!r}: {problem}')
    return (event_id, kind, customer,
            _encode_data(event.get('data', {}), kind if contract else None, version), when, version)


def content_digest(kind: str, customer: str, data: str) -> str:
    """What identifies an event's content for idempotency (its time is data, not identity)."""
    return hashlib.sha256(json.dumps([kind, customer, data], ensure_ascii=False)
                          .encode('utf-8', 'surrogatepass')).hexdigest()[:32]


def _boot_id() -> str:
    try:
        return Path('/proc/sys/kernel/random/boot_id').read_text().strip()
    except OSError:
        return ''


def system_clock() -> tuple[str, float]:
    """(boot id, seconds since boot including suspend): never steps, never goes back."""
    return _boot_id(), time.clock_gettime(time.CLOCK_BOOTTIME)


def _is_outbox(db: sqlite3.Connection) -> bool:
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return not (tables - {'sqlite_sequence'}) or 'events' in tables


class Outbox:
    """Durable FIFO of events; safe to share between threads and between processes.

    `create=False` refuses a path with no file (OutboxMissing); `busy_timeout_s` is how long a
    write waits for another process's lock before OutboxLocked; `clock` returns (boot id,
    seconds since boot) and is replaceable in tests. `readonly=True` opens for reading only and
    writes nothing at all, not even the `-wal`/`-shm` files, so an outbox on a read-only
    filesystem (a copy, a failed disk remounted read-only) can still be inspected.
    """

    def __init__(self, path: str | Path, limits: Limits = Limits(), *, create: bool = True,
                 busy_timeout_s: float = 30.0,
                 clock: Callable[[], tuple[str, float]] = system_clock,
                 contract: bool = True, readonly: bool = False) -> None:
        self.path = Path(path)
        self.limits = limits
        self.contract = contract
        self._clock = clock
        self._lock = threading.Lock()
        self.readonly = readonly
        if readonly:
            self._open_readonly(busy_timeout_s)
            return
        if not self.path.exists():
            if not create:
                raise OutboxMissing(f'no outbox at {self.path}')
            if not self.path.parent.is_dir():
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise OutboxUnavailable(f'outbox {self.path}: cannot create its folder: '
                                            f'{exc.strerror}') from None
        elif self.path.is_dir():
            raise OutboxUnavailable(f'outbox {self.path} is a folder, not a file')
        try:
            self._db = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None,
                                       check_same_thread=False)
        except sqlite3.Error as exc:
            raise translate_error(exc, self.path) from None
        try:
            self._db.execute('PRAGMA journal_mode=WAL')
            self._db.execute('PRAGMA synchronous=FULL')
            for pragma in ERASING_PRAGMAS:
                self._db.execute(pragma)
            if not _is_outbox(self._db):
                raise OutboxCorrupt(f'{self.path} is an SQLite database of another program, '
                                    'not an outbox')
            if self._ready():
                self._offset = float(self._meta('clock_offset'))
            else:
                with self._txn():
                    for statement in SCHEMA.split(';'):
                        if statement.strip():
                            self._db.execute(statement)
                    self._offset = self._start_clock()
                    self._migrate()
        except sqlite3.Error as exc:
            self._db.close()
            raise translate_error(exc, self.path) from None
        except OutboxUnavailable:
            self._db.close()
            raise

    def _open_readonly(self, busy_timeout_s: float) -> None:
        if not self.path.exists():
            raise OutboxMissing(f'no outbox at {self.path}')
        if self.path.is_dir():
            raise OutboxUnavailable(f'outbox {self.path} is a folder, not a file')
        uri = self.path.resolve().as_uri()
        # mode=ro reads the WAL too (it must exist or be creatable); on a read-only filesystem
        # after a clean close there is no WAL, and immutable=1 reads the file as it is.
        for options in ('mode=ro', 'mode=ro&immutable=1'):
            try:
                self._db = sqlite3.connect(f'{uri}?{options}', uri=True, timeout=busy_timeout_s,
                                           isolation_level=None, check_same_thread=False)
            except sqlite3.Error as exc:
                error: BaseException = exc
                continue
            try:
                outbox = _is_outbox(self._db)
                columns = {row[1] for row in self._db.execute('PRAGMA table_info(events)')}
            except sqlite3.Error as exc:
                self._db.close()
                error = exc
                continue
            if not outbox:
                self._db.close()
                raise OutboxCorrupt(f'{self.path} is an SQLite database of another program, '
                                    'not an outbox')
            if 'mono' not in columns:
                self._db.close()
                raise OutboxUnavailable(f'outbox {self.path} is from an older version; open it '
                                        'once writable to update it')
            boot, since_boot = self._clock()
            if boot and self._meta('clock_boot') == boot and self._meta('clock_offset'):
                self._offset = float(self._meta('clock_offset'))
            else:
                self._offset = float(self._meta('clock_last') or 0.0) - since_boot
            return
        code = (getattr(error, 'sqlite_errorcode', None) or 0) & 0xFF
        if code in (11, 26):
            raise OutboxCorrupt(f'outbox {self.path} is damaged or not an outbox ({error})')
        raise OutboxUnavailable(f'outbox {self.path} cannot be read ({error})')

    # --- plumbing ------------------------------------------------------------------------------
    @contextmanager
    def _txn(self) -> Iterator[None]:
        """One write transaction; SQLite errors become OutboxUnavailable. The caller holds
        `_lock` (or is the constructor)."""
        try:
            self._db.execute('BEGIN IMMEDIATE')
            try:
                yield
                self._db.execute('COMMIT')
            except BaseException:
                if self._db.in_transaction:   # SQLite may have rolled back already (disk full)
                    try:
                        self._db.execute('ROLLBACK')
                    except sqlite3.Error:
                        pass
                raise
        except sqlite3.Error as exc:
            raise translate_error(exc, self.path) from None

    @contextmanager
    def _read(self) -> Iterator[None]:
        with self._lock:
            try:
                yield
            except sqlite3.Error as exc:
                raise translate_error(exc, self.path) from None

    def _ready(self) -> bool:
        """The file has today's schema and its clock was started in this boot: opening it needs
        no write (so `status` works while another process holds the write lock)."""
        columns = {row[1] for row in self._db.execute('PRAGMA table_info(events)')}
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master "
                                                      "WHERE type='table'")}
        boot = self._clock()[0]
        held = {row[1] for row in self._db.execute('PRAGMA table_info(quarantine)')}
        return ('mono' in columns and 'version' in columns and 'digest' in columns and 'delivered' in tables
                and 'version' in held
                and bool(boot)
                and self._meta('clock_boot') == boot and self._meta('clock_offset') is not None
                and self._meta('stream_id') is not None)

    def _migrate(self) -> None:
        """Outboxes written before the outbox clock existed get its column (age 0 from now)."""
        columns = {row[1] for row in self._db.execute('PRAGMA table_info(events)')}
        if 'mono' not in columns:
            self._db.execute('ALTER TABLE events ADD COLUMN mono REAL NOT NULL DEFAULT 0')
            self._db.execute('UPDATE events SET mono = ?', (self.now(),))
        if 'version' not in columns:       # outboxes written before payloads had versions: 1
            self._db.execute('ALTER TABLE events ADD COLUMN version INTEGER NOT NULL DEFAULT 1')
        if 'digest' not in columns:     # content digests came with the delivered-id memory
            self._db.execute("ALTER TABLE events ADD COLUMN digest TEXT NOT NULL DEFAULT ''")
        held = {row[1] for row in self._db.execute('PRAGMA table_info(quarantine)')}
        if 'version' not in held:       # quarantined events keep their payload's version (session 13)
            self._db.execute('ALTER TABLE quarantine ADD COLUMN version INTEGER NOT NULL DEFAULT 1')
        self._db.execute('DROP INDEX IF EXISTS events_by_time')
        self._db.execute('CREATE INDEX IF NOT EXISTS events_by_mono ON events (mono)')
        if self._meta('stream_id') is None:
            # This outbox's stream of sequence numbers; a reset or reinstall starts another.
            self._set_meta('stream_id', uuid.uuid4().hex)

    def _start_clock(self) -> float:
        """The offset of the outbox clock for this boot: continue from the last value written
        when the machine rebooted since (time spent powered off is not counted)."""
        boot, since_boot = self._clock()
        if boot and self._meta('clock_boot') == boot and self._meta('clock_offset') is not None:
            return float(self._meta('clock_offset'))
        last = float(self._meta('clock_last') or 0.0)
        offset = last - since_boot
        self._set_meta('clock_boot', boot)
        self._set_meta('clock_offset', repr(offset))
        self._set_meta('clock_last', repr(last))
        return offset

    def now(self) -> float:
        """The outbox clock: seconds of robot running time, never going back."""
        return self._offset + self._clock()[1]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- writing -------------------------------------------------------------------------------
    def append(self, type: str, data: Any, customer: str = '', event_id: str = '',
               time_s: float | None = None) -> Event | None:
        """Validate and commit one event; returns it once it is on disk (None: this event_id
        was already stored with the same content, e.g. a publisher's retry). OutboxError when
        refused (also: the event_id was already used for different content)."""
        result = self.append_rows([prepare_event(dict(type=type, data=data, customer=customer,
                                                      event_id=event_id, time=time_s),
                                                 self.contract)])
        if result.conflicts:
            raise OutboxError(f'event_id {result.conflicts[0]} already stored with other content')
        return result.stored[0] if result.stored else None

    def append_many(self, events: Iterable[dict]) -> list[Event]:
        """Commit several events in one transaction (all or none); each dict has type and data,
        optionally customer, event_id and time. Returns the events newly stored."""
        return self.append_rows([prepare_event(event, self.contract) for event in events]).stored

    def append_rows(self, rows: list[tuple]) -> AppendResult:
        """Commit rows made by `prepare_event` in one transaction. An event_id already stored —
        pending, quarantined, or delivered and confirmed by the platform (remembered for
        `limits.delivered_age_s` of robot time, at most `limits.delivered_max` of them) — is a duplicate
        when type, customer and data match, else a conflict; neither is written nor spends a
        sequence number (so a sender's retry or a re-run of `emit` after a crash never sends
        an event twice under two numbers)."""
        result = AppendResult()
        seen: dict[str, str] = {}
        with self._lock, self._txn():
            mono = self.now()
            for row in rows:
                event_id = row[0]
                digest = content_digest(*row[1:4])
                known = seen.get(event_id)
                if known is None:
                    found = self._db.execute('SELECT type, customer, data FROM events '
                                             'WHERE event_id = ?', (event_id,)).fetchone()
                    if found is None:
                        found = self._db.execute('SELECT type, customer, data FROM quarantine '
                                                 'WHERE event_id = ?', (event_id,)).fetchone()
                    if found is not None:
                        known = content_digest(*found)
                    else:
                        found = self._db.execute('SELECT digest FROM delivered WHERE event_id = ?',
                                                 (event_id,)).fetchone()
                        known = found[0] if found else None
                if known is None:
                    cursor = self._db.execute(
                        'INSERT INTO events (event_id, type, customer, data, time, version, mono, digest) '
                        'VALUES (?, ?, ?, ?, ?, ?, ?, ?)', (*row, mono, digest))
                    result.stored.append(Event(cursor.lastrowid, *row, mono))
                    seen[event_id] = digest
                elif known == digest:
                    result.duplicates.append(event_id)
                else:
                    result.conflicts.append(event_id)
            self._set_meta('clock_last', repr(mono))
            self._enforce_limits(mono)
        return result

    def _enforce_limits(self, now: float) -> None:
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
        cutoff = now - self.limits.max_age_s
        oldest = self._db.execute('SELECT MIN(mono) FROM events').fetchone()[0]
        if oldest is not None and oldest < cutoff:
            dropped += self._db.execute('DELETE FROM events WHERE mono < ?', (cutoff,)).rowcount
        if dropped:
            total = int(self._meta('dropped') or 0) + dropped
            self._set_meta('dropped', str(total))

    # --- reading and removing ------------------------------------------------------------------
    def read_batch(self, limit: int, max_bytes: int = 1 << 20, after_seq: int = 0) -> list[Event]:
        """The oldest pending events after `after_seq`, at most `limit` and about `max_bytes`."""
        with self._read():
            cursor = self._db.execute(
                f'SELECT {EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?',
                (after_seq, limit))
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
        """Remove events the platform confirmed (by id), remember their ids as delivered (so a
        late retry of one is recognised, see `append_rows`) and note the time of this success."""
        with self._lock, self._txn():
            now = self.now()
            for start in range(0, len(seqs), 500):
                chunk = seqs[start:start + 500]
                marks = ",".join("?" * len(chunk))
                self._db.execute(
                    'INSERT OR REPLACE INTO delivered (seq, event_id, digest, mono) '
                    f"SELECT seq, event_id, digest, ? FROM events WHERE seq IN ({marks}) "
                    "AND digest != ''", (now, *chunk))
                rows = self._db.execute(      # events stored before digests were kept
                    f"SELECT seq, event_id, type, customer, data FROM events WHERE seq IN "
                    f"({marks}) AND digest = ''", chunk).fetchall()
                self._db.executemany(
                    'INSERT OR REPLACE INTO delivered (seq, event_id, digest, mono) '
                    'VALUES (?, ?, ?, ?)',
                    [(row[0], row[1], content_digest(*row[2:5]), now) for row in rows])
            removed = self._delete(seqs)
            self._forget_delivered(now)
            self._set_meta('last_success', repr(time.time()))
            self._set_meta('last_success_mono', repr(now))
            top = max(seqs, default=0)
            if top > int(self._meta('delivered_seq') or 0):
                self._set_meta('delivered_seq', str(top))
        return removed

    def _forget_delivered(self, now: float) -> None:
        """Delivered ids are remembered for `limits.delivered_age_s`, at most
        `limits.delivered_max` of them (the newest)."""
        # Oldest first, a bounded step per call (no index on mono: fewer pages per commit).
        cutoff = now - self.limits.delivered_age_s
        oldest = self._db.execute('SELECT mono FROM delivered ORDER BY seq LIMIT 1').fetchone()
        if oldest is not None and oldest[0] < cutoff:
            self._db.execute('DELETE FROM delivered WHERE seq IN (SELECT seq FROM delivered '
                             'ORDER BY seq LIMIT 20000) AND mono < ?', (cutoff,))
        low, high = self._db.execute('SELECT MIN(seq), MAX(seq) FROM delivered').fetchone()
        if low is not None and high - low + 1 > self.limits.delivered_max:
            excess = self._count('delivered') - self.limits.delivered_max
            if excess > 0:
                self._db.execute('DELETE FROM delivered WHERE seq IN (SELECT seq FROM delivered '
                                 'ORDER BY seq LIMIT ?)', (excess,))

    # --- the stream of sequence numbers ---------------------------------------------------------
    @property
    def stream_id(self) -> str:
        """A random id made when this outbox was created (or continued from the robot's stream
        file, see `stream.py`): sent with every batch, so the platform tells a reset or
        reinstalled robot's numbers apart from the ones it already has."""
        with self._read():
            return self._meta('stream_id') or ''

    def last_seq(self) -> int:
        """The highest sequence number this outbox has handed out (0: none yet)."""
        with self._read():
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'"
                                   ).fetchone()
            return int(row[0]) if row else 0

    def delivered_seq(self) -> int:
        """The highest sequence number the platform has confirmed (0: none yet)."""
        with self._read():
            return int(self._meta('delivered_seq') or 0)

    def sent_seq(self) -> int:
        """The highest sequence number this outbox ever sent (0: it never sent anything)."""
        with self._read():
            return int(self._meta('sent_seq') or 0)

    def note_sent(self, seq: int) -> None:
        """Record, before a batch goes out, the highest sequence number in it."""
        if seq <= self.sent_seq():
            return
        with self._lock, self._txn():
            self._set_meta('sent_seq', str(seq))

    def join_stream(self, stream_id: str, after_seq: int) -> int:
        """Join another outbox's stream (this one never sent anything): take its id and number
        every event, waiting or quarantined, after `after_seq`, in the same order. Returns how
        many events were renumbered."""
        with self._lock, self._txn():
            if self._meta('sent_seq'):
                raise OutboxError('this outbox has sent events under its own stream')
            lows = [self._db.execute(f'SELECT MIN(seq) FROM {table}').fetchone()[0]
                    for table in ('events', 'quarantine')]
            low = min((value for value in lows if value is not None), default=0)
            moved = 0
            if low and low <= after_seq:
                shift = after_seq - low + 1
                for table in ('events', 'quarantine'):
                    # Through negative numbers: no two rows share a key mid-update.
                    self._db.execute(f'UPDATE {table} SET seq = -seq')
                    moved += self._db.execute(f'UPDATE {table} SET seq = ? - seq',
                                              (shift,)).rowcount
            top = max(after_seq, self._db.execute('SELECT MAX(seq) FROM events').fetchone()[0] or 0,
                      self._db.execute('SELECT MAX(seq) FROM quarantine').fetchone()[0] or 0)
            if self._db.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'events'",
                                (top,)).rowcount == 0:
                self._db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)",
                                 (top,))
            self._set_meta('stream_id', stream_id)
        return moved

    def continue_stream(self, stream_id: str, after_seq: int) -> None:
        """Continue a stream another outbox of this robot started (an outbox reset): take its
        id when this outbox is fresh, and never hand out a number up to `after_seq` again."""
        with self._lock, self._txn():
            fresh = not self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'"
                                         ).fetchone()
            if fresh and stream_id:
                self._set_meta('stream_id', stream_id)
            if after_seq > 0:
                if self._db.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) "
                                    "WHERE name = 'events'", (after_seq,)).rowcount == 0:
                    self._db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES "
                                     "('events', ?)", (after_seq,))

    def renumber_through(self, after: int) -> int:
        """Give every waiting event numbered up to `after` a new number after it (in their
        order), and hand out no number up to `after` again: the platform holds those numbers from
        another stream of this robot id (a reinstall that lost the stream file, two robots with
        one id) and said so (`seq_reused`, with where to number on). The number renumbered."""
        with self._lock, self._txn():
            if self._db.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'events'",
                                (after,)).rowcount == 0:
                self._db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)", (after,))
            columns = 'event_id, type, customer, data, time, version, mono, digest'
            moved = 0
            while rows := self._db.execute(f'SELECT seq, {columns} FROM events WHERE seq <= ? '
                                           'ORDER BY seq LIMIT 5000', (after,)).fetchall():
                self._delete([row[0] for row in rows])      # (bounded memory: 5000 at a time)
                self._db.executemany(f'INSERT INTO events ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                                     [row[1:] for row in rows])
                moved += len(rows)
        return moved

    def note_seq_reused(self, count: int, detail: str) -> None:
        """The platform refused events because it already holds their sequence numbers from
        another stream of this robot id: kept (quarantined) and alarmed until cleared."""
        with self._lock, self._txn():
            total = int(self._meta('seq_reused') or 0) + count
            self._set_meta('seq_reused', str(total))
            self._set_meta('seq_reused_detail', detail[:300])

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
        with self._lock, self._txn():
            for start in range(0, len(seqs), 500):
                chunk = seqs[start:start + 500]
                self._db.execute(
                    'INSERT OR REPLACE INTO quarantine (seq, event_id, type, customer, data, time, '
                    'reason, quarantined_at, version) SELECT seq, event_id, type, customer, data, '
                    f'time, ?, ?, version FROM events WHERE seq IN ({",".join("?" * len(chunk))})',
                    [reason, now, *chunk])
            moved = self._delete(seqs)
            self._bound_quarantine()
        return moved

    def _bound_quarantine(self) -> None:
        """The quarantine holds at most `limits.max_events` (a platform rejecting everything
        must not fill the robot's disk, which would then refuse every new event): beyond, the
        oldest quarantined are dropped and counted in meta `dropped`. The quarantine is an alarm
        from its first event (see `alarm`), so a technician hears of it long before."""
        low, high = self._db.execute('SELECT MIN(seq), MAX(seq) FROM quarantine').fetchone()
        if low is None or high - low + 1 <= self.limits.max_events:
            return
        excess = self._count('quarantine') - self.limits.max_events
        if excess > 0:
            dropped = self._db.execute('DELETE FROM quarantine WHERE seq IN (SELECT seq FROM quarantine '
                                       'ORDER BY seq LIMIT ?)', (excess,)).rowcount
            self._set_meta('dropped', str(int(self._meta('dropped') or 0) + dropped))

    def requeue(self, reason_contains: str = '') -> int:
        """Put quarantined events (those whose reason contains `reason_contains`; all when
        empty) back in the queue with their sequence numbers, payload versions and content, to
        be sent again once what refused them is fixed (the platform upgraded to know their type,
        a configuration corrected). An event_id pending meanwhile stays quarantined. The number
        put back."""
        with self._lock, self._txn():
            now = self.now()
            rows = self._db.execute(
                'SELECT seq, event_id, type, customer, data, time, version FROM quarantine '
                'WHERE instr(reason, ?) > 0 ORDER BY seq', (reason_contains,)).fetchall()
            moved = []
            for row in rows:
                cursor = self._db.execute(
                    'INSERT OR IGNORE INTO events (seq, event_id, type, customer, data, time, '
                    'version, mono, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
                    (*row, now, content_digest(*row[2:5])))
                if cursor.rowcount:
                    moved.append(row[0])
            for start in range(0, len(moved), 500):
                chunk = moved[start:start + 500]
                self._db.execute(f'DELETE FROM quarantine WHERE seq IN ({",".join("?" * len(chunk))})',
                                 chunk)
            if moved and int(self._meta('seq_reused') or 0) and not self._db.execute(
                    "SELECT 1 FROM quarantine WHERE instr(reason, 'seq_reused') > 0 LIMIT 1").fetchone():
                self._set_meta('seq_reused', '0')      # none held any more: a new refusal alarms again
                self._set_meta('seq_reused_detail', '')
        return len(moved)

    def discard_quarantined(self, reason_contains: str) -> int:
        """Delete quarantined events whose reason contains `reason_contains` (a technician's
        decision, after reading them: `retailbot sync discard`; '' is every one). Counted in
        meta `discarded`; the write-ahead log is emptied as after a forget. The number deleted."""
        with self._lock, self._txn():
            removed = self._db.execute('DELETE FROM quarantine WHERE instr(reason, ?) > 0',
                                       (reason_contains,)).rowcount
            if removed:
                self._set_meta('discarded', str(int(self._meta('discarded') or 0) + removed))
                if int(self._meta('seq_reused') or 0) and not self._db.execute(
                        "SELECT 1 FROM quarantine WHERE instr(reason, 'seq_reused') > 0 LIMIT 1").fetchone():
                    self._set_meta('seq_reused', '0')
                    self._set_meta('seq_reused_detail', '')
        return removed

    def quarantine_reasons(self, limit: int = 5) -> list[tuple[str, int]]:
        """The most common reasons of the quarantined events, (reason, events), the most
        frequent first; a batch index in a platform's reason (`events[12]: ...`) is read as
        `events[i]`, so one cause is one line. Reads at most 10 000 distinct reasons."""
        with self._read():
            rows = self._db.execute('SELECT reason, COUNT(*) FROM quarantine GROUP BY reason '
                                    'ORDER BY 2 DESC LIMIT 10000').fetchall()
        counts: dict[str, int] = {}
        for reason, count in rows:
            key = _BATCH_INDEX.sub('events[i]', reason)
            counts[key] = counts.get(key, 0) + count
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]

    def forget_customer(self, customer: str) -> int:
        """Remove every waiting or quarantined event naming `customer` (as the event's customer,
        or its id as a JSON string anywhere in its data): a member the platform asked to forget.
        Their sequence numbers become holes, counted in meta `forgotten`; the write-ahead log is
        emptied (privacy.erase_wal: ErasureBusy while a reader holds it). The number removed."""
        if not customer:
            return 0
        needle = json.dumps(customer, ensure_ascii=False)
        with self._lock, self._txn():
            removed = 0
            for table in ('events', 'quarantine'):
                removed += self._db.execute(
                    f'DELETE FROM {table} WHERE customer = ? OR instr(data, ?) > 0',
                    (customer, needle)).rowcount
            if removed:
                self._set_meta('forgotten', str(int(self._meta('forgotten') or 0) + removed))
        with self._lock:
            erase_wal(self._db, f'outbox {self.path}')   # no copy of the member's rows left in its -wal
        return removed

    def quarantined(self) -> list[dict]:
        with self._read():
            rows = self._db.execute('SELECT seq, event_id, type, reason, version FROM quarantine '
                                    'ORDER BY seq').fetchall()
        return [dict(seq=r[0], event_id=r[1], type=r[2], reason=r[3], version=r[4]) for r in rows]

    # --- state ---------------------------------------------------------------------------------
    def _count(self, table: str) -> int:
        return self._db.execute(f'SELECT COUNT(*) FROM {table}').fetchone()[0]

    def _meta(self, key: str) -> str | None:
        row = self._db.execute('SELECT value FROM meta WHERE key = ?', (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)', (key, value))

    def pending(self) -> int:
        with self._read():
            return self._count('events')

    def status(self) -> dict:
        """{"pending", "quarantined", "oldest_pending_s", "last_success", "last_success_age_s",
        "dropped", "alarm"}; ages are of the outbox clock, `last_success` is wall-clock time."""
        with self._read():
            pending = self._count('events')
            quarantined = self._count('quarantine')
            oldest = self._db.execute('SELECT MIN(mono) FROM events').fetchone()[0]
            last_success = self._meta('last_success')
            last_success_mono = self._meta('last_success_mono')
            dropped = int(self._meta('dropped') or 0)
            forgotten = int(self._meta('forgotten') or 0)
            discarded = int(self._meta('discarded') or 0)
            seq_reused = int(self._meta('seq_reused') or 0)
            seq_reused_detail = self._meta('seq_reused_detail') or ''
            stream_id = self._meta('stream_id') or ''
            latest = self._db.execute('SELECT reason FROM quarantine ORDER BY seq DESC LIMIT 1'
                                      ).fetchone() if quarantined else None
        now = self.now()
        status = {'pending': pending, 'quarantined': quarantined,
                  'oldest_pending_s': round(max(0.0, now - oldest), 3) if oldest is not None else None,
                  'last_success': float(last_success) if last_success else None,
                  'last_success_age_s': (round(max(0.0, now - float(last_success_mono)), 1)
                                         if last_success_mono else None),
                  'dropped': dropped, 'forgotten': forgotten, 'discarded': discarded,
                  'seq_reused': seq_reused,
                  'seq_reused_detail': seq_reused_detail, 'stream_id': stream_id,
                  'quarantine_latest': latest[0] if latest else ''}
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
        lines = []
        if problems:
            lines.append('outbox near its limits — upload soon or events will be dropped: '
                         + '; '.join(problems))
        held = status.get('quarantined') or 0
        if held:
            # rejected by the platform: not uploaded, and never sent again on their own
            latest = _BATCH_INDEX.sub('events[i]', status.get('quarantine_latest') or '')[:200]
            lines.append(f'{held} events quarantined, not uploaded (latest reason: {latest or "?"}); '
                         'see `retailbot sync status`, and once the cause is fixed send them '
                         'again with `retailbot sync requeue`')
        if status.get('seq_reused'):
            lines.append(f'{status["seq_reused"]} events refused by the platform: their sequence '
                         'numbers were already used by another outbox of this robot id (a reset, '
                         'a reinstall, or two robots with one id); they were numbered on after the platform\'s '
                         'and sent again where it said how, else kept in quarantine — '
                         'check the robot id and its token')
        return ' | '.join(lines) or None


# --- a damaged outbox -------------------------------------------------------------------------
@dataclass(frozen=True)
class Salvage:
    set_aside: Path        # where the damaged file now is
    salvaged: int          # pending events copied into the fresh outbox
    reason: str

    def message(self) -> str:
        why = f' ({self.reason})' if self.reason else ''
        return (f'outbox was damaged{why}: set aside as {self.set_aside}, '
                f'{self.salvaged} waiting events salvaged, a fresh outbox started')


def _readable_rows(db: sqlite3.Connection, table: str, columns: str) -> Iterator[tuple]:
    """Every row of `table` that can still be read, walking the keys in ranges and stepping
    over damaged ones."""
    try:
        high = db.execute(f'SELECT MAX(seq) FROM {table}').fetchone()[0] or 0
    except sqlite3.Error:
        try:
            high = int(db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
                       .fetchone()[0])
        except (sqlite3.Error, TypeError):
            return
    step = 1000
    for low in range(0, high + 1, step):
        try:
            rows = db.execute(f'SELECT {columns} FROM {table} WHERE seq >= ? AND seq < ?',
                              (low, low + step)).fetchall()
        except sqlite3.Error:
            rows = []
            for seq in range(low, low + step):
                try:
                    rows.extend(db.execute(f'SELECT {columns} FROM {table} WHERE seq = ?',
                                           (seq,)).fetchall())
                except sqlite3.Error:
                    continue
        yield from rows


def salvage(path: str | Path, limits: Limits = Limits(), reason: str = '',
            clock: Callable[[], tuple[str, float]] = system_clock) -> tuple[Outbox, Salvage]:
    """Set a damaged outbox aside (renamed with its -wal/-shm, never deleted), start a fresh
    one at `path` and copy into it every pending and quarantined event that can still be read,
    with their sequence numbers; later events continue after the highest one seen."""
    path = Path(path)
    aside = _set_aside(path)
    rows = _read_damaged(aside)
    outbox = Outbox(path, limits, clock=clock)
    copied = _copy_salvaged(outbox, rows)
    return outbox, Salvage(aside, copied, reason)


def _set_aside(path: Path) -> Path:
    """Rename a damaged outbox (and its -wal/-shm) to `<name>.damaged-<time>[-n]`; the new name."""
    stamp = time.strftime('%Y%m%dT%H%M%S')
    aside = path.with_name(f'{path.name}.damaged-{stamp}')
    counter = 1
    while aside.exists():
        counter += 1
        aside = path.with_name(f'{path.name}.damaged-{stamp}-{counter}')
    os.replace(path, aside)
    for suffix in ('-wal', '-shm'):
        side = Path(str(path) + suffix)
        if side.exists():
            os.replace(side, Path(str(aside) + suffix))
    return aside


@dataclass
class _Salvaged:
    """What could still be read of a damaged outbox."""
    pending: list[tuple] = field(default_factory=list)
    held: list[tuple] = field(default_factory=list)
    delivered: list[tuple] = field(default_factory=list)
    stream_id: str = ''
    top: int = 0                              # the highest sequence number handed out


def _read_damaged(aside: Path) -> _Salvaged:
    """Every row of a damaged outbox that can still be read (nothing of one that is no database)."""
    found = _Salvaged()
    try:
        old = sqlite3.connect(f'file:{aside}?mode=ro', uri=True, timeout=1.0)
        try:
            # A truncated file (power cut, a copy cut short) lists tables whose root page is past
            # its end: SQLite refuses the whole schema, and so every row, unless the schema's
            # errors are ignored (read-only: nothing is written to the damaged file).
            old.execute('PRAGMA writable_schema = ON')
            columns = [row[1] for row in old.execute('PRAGMA table_info(events)')]
            mono = 'mono' if 'mono' in columns else '0'
            version = 'version' if 'version' in columns else '1'
            found.pending = list(_readable_rows(old, 'events', f'seq, event_id, type, customer, data, '
                                                               f'time, {mono}, {version}'))
            held = _scalar(old, 'SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?', 0, int,
                           ('quarantine', 'version'))
            found.held = _optional_rows(old, 'quarantine', 'seq, event_id, type, customer, data, '
                                                           'time, reason, quarantined_at, '
                                        + ('version' if held else '1'))
            found.delivered = _optional_rows(old, 'delivered', 'seq, event_id, digest, mono')
            found.stream_id = _scalar(old, "SELECT value FROM meta WHERE key = 'stream_id'", '')
            found.top = _scalar(old, "SELECT seq FROM sqlite_sequence WHERE name = 'events'", 0, int)
        finally:
            old.close()
    except sqlite3.Error:
        pass                                  # not a database at all: nothing to salvage
    return found


def _optional_rows(db: sqlite3.Connection, table: str, columns: str) -> list[tuple]:
    try:
        return list(_readable_rows(db, table, columns))
    except sqlite3.Error:
        return []


def _scalar(db: sqlite3.Connection, query: str, default: Any, convert: Callable[[Any], Any] = lambda v: v,
            parameters: tuple = ()) -> Any:
    """The first column of the first row of `query` (converted), `default` when it cannot be read."""
    try:
        return convert(db.execute(query, parameters).fetchone()[0])
    except (sqlite3.Error, TypeError):
        return default


def _copy_salvaged(outbox: Outbox, rows: _Salvaged) -> int:
    """Copy the salvaged rows into a fresh outbox (damaged events are left out); how many
    pending events were copied. Sequence numbers go on after the highest one seen."""
    copied = 0
    with outbox._lock, outbox._txn():
        now = outbox.now()
        for row in rows.pending:
            try:
                prepare_event(dict(event_id=row[1], type=row[2], customer=row[3], data=row[4],
                                   time=row[5], version=row[7]), contract=False)
            except (OutboxError, TypeError):
                continue                      # a damaged row is not sent to the platform
            cursor = outbox._db.execute(
                'INSERT OR IGNORE INTO events (seq, event_id, type, customer, data, time, mono, '
                'version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                (*row[:6], min(float(row[6] or 0), now), row[7]))
            copied += cursor.rowcount
        for row in rows.held:
            outbox._db.execute('INSERT OR IGNORE INTO quarantine (seq, event_id, type, customer, data, '
                               'time, reason, quarantined_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
                               row)
        for row in rows.delivered:
            outbox._db.execute('INSERT OR IGNORE INTO delivered (seq, event_id, digest, mono) '
                               'VALUES (?, ?, ?, ?)', (*row[:3], min(float(row[3] or 0), now)))
        if isinstance(rows.stream_id, str) and rows.stream_id:
            outbox._set_meta('stream_id', rows.stream_id[:64])    # the same stream goes on
        top = max([rows.top, *(row[0] for row in rows.pending), *(row[0] for row in rows.held),
                   *(row[0] for row in rows.delivered)])
        if top:
            outbox._db.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'events'",
                               (top,))
            if not outbox._db.execute("SELECT 1 FROM sqlite_sequence WHERE name = 'events'").fetchone():
                outbox._db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)",
                                   (top,))
    return copied


def open_or_salvage(path: str | Path, limits: Limits = Limits(),
                    clock: Callable[[], tuple[str, float]] = system_clock
                    ) -> tuple[Outbox, Salvage | None]:
    """The outbox at `path`; a damaged one is set aside and salvaged (see `salvage`)."""
    try:
        return Outbox(path, limits, clock=clock), None
    except OutboxCorrupt as exc:
        return salvage(path, limits, reason=str(exc), clock=clock)
