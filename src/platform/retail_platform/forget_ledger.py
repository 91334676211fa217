"""The forget ledger: every "forget this member" also written outside the database, so that a
database restored from a backup forgets them again before it serves anyone (PIPL: a deletion
reaches the backups).

A restore (a `pg_dump` file, a base backup with its WAL archive up to a point in time, a copy of
the SQLite file) brings back the database as it was, with the members forgotten since then and the
older list of forget requests. The ledger is the chain's record of deletion requests kept beside,
never inside, the database: one JSON line per request (`member_id`, `requested_at`, `requested_by`),
appended under an exclusive lock (several API processes share it) and flushed to disk (fsync)
before the forget is committed in the database, so a forget the platform acknowledged is always in
it. `platform serve` reads it at start and forgets again every id the database does not list as
forgotten (`reapply`); `forget-member` writes it as the API does.

Keep the ledger on storage that is not restored with the database and never replace it with an
older copy (it only grows; a lost ledger is rebuilt from the newest database's forget list plus
the `forget-member --json` answers kept elsewhere). It holds pseudonymous member ids only, the
minimum needed to carry a deletion out again.

Reading is bounded: a line longer than `MAX_LINE` bytes, a line that is not one JSON object with a
valid member id, or text that is not UTF-8 is reported (file and line number) and skipped, never a
traceback; reporting stops after `MAX_PROBLEMS` lines with a count of the rest.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

LEDGER_ENV = 'RETAILBOT_FORGET_LEDGER'
MAX_LINE = 1024
MAX_PROBLEMS = 10


class LedgerError(OSError):
    """The ledger cannot be written or read (one line naming the file)."""


@dataclass(frozen=True)
class LedgerEntry:
    member_id: str
    requested_at: float
    requested_by: str


@dataclass(frozen=True)
class LedgerRead:
    entries: dict[str, LedgerEntry]      # the first request of each member id
    problems: list[str]                  # lines skipped, at most MAX_PROBLEMS plus a count line


def default_for(database: str) -> str | None:
    """The ledger of an SQLite file: beside it (`platform.sqlite3.forgotten.jsonl`), so a copy
    of the file restored over it meets the newer ledger; none for a server database (the chain
    chooses where it lives: --forget-ledger or $RETAILBOT_FORGET_LEDGER)."""
    if '://' in database:
        return None
    return f'{database}.forgotten.jsonl'


class ForgetLedger:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def check_writable(self) -> None:
        """LedgerError when the ledger could not be appended to (checked at start, not at the
        first forget)."""
        self._open_append().close()

    def _open_append(self):
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise LedgerError(f'forget ledger {self.path}: cannot write: {exc.strerror or exc}') from None
        return os.fdopen(fd, 'ab', buffering=0)

    def append(self, member_id: str, requested_at: float, requested_by: str) -> None:
        """The request, durable (fsync) before this returns."""
        line = json.dumps({'member_id': member_id, 'requested_at': requested_at,
                           'requested_by': requested_by[:200]}, ensure_ascii=False) + '\n'
        created = not self.path.exists()
        with self._open_append() as out:
            try:
                fcntl.flock(out.fileno(), fcntl.LOCK_EX)
                size = os.fstat(out.fileno()).st_size
                if size and os.pread(out.fileno(), 1, size - 1) != b'\n':
                    line = '\n' + line      # a write cut short before (disk full, crash): not glued to it
                out.write(line.encode())
                os.fsync(out.fileno())
            except OSError as exc:
                raise LedgerError(f'forget ledger {self.path}: cannot write: {exc.strerror or exc}') from None
        if created:                      # the new file's name durable too
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def size(self) -> int:
        """The ledger's size in bytes (0 when missing)."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def read(self) -> LedgerRead:
        """Every well-formed request; a missing ledger is an empty one."""
        from retail_platform.chain import valid_member_id
        entries: dict[str, LedgerEntry] = {}
        problems: list[str] = []
        skipped = 0

        def skip(number: int, why: str) -> None:
            nonlocal skipped
            skipped += 1
            if len(problems) < MAX_PROBLEMS:
                problems.append(f'{self.path}: line {number}: {why}: skipped')

        try:
            source = open(self.path, 'rb')
        except FileNotFoundError:
            return LedgerRead({}, [])
        except OSError as exc:
            raise LedgerError(f'forget ledger {self.path}: cannot read: {exc.strerror or exc}') from None
        with source:
            number = 0
            while True:
                raw = source.readline(MAX_LINE + 1)
                if not raw:
                    break
                number += 1
                if len(raw) > MAX_LINE and not raw.endswith(b'\n'):
                    while raw and not raw.endswith(b'\n'):      # the rest of the long line
                        raw = source.readline(MAX_LINE + 1)
                    skip(number, f'longer than {MAX_LINE} bytes')
                    continue
                entry = _entry(raw)
                if isinstance(entry, str):
                    skip(number, entry)
                elif not valid_member_id(entry.member_id):
                    skip(number, 'member_id is not a valid member id')
                else:
                    entries.setdefault(entry.member_id, entry)
        if skipped > len(problems):
            problems.append(f'{self.path}: {skipped - len(problems)} more line(s) skipped')
        return LedgerRead(entries, problems)


def _entry(raw: bytes) -> LedgerEntry | str:
    """The line's request, or why it is not one."""
    try:
        value = json.loads(raw.decode('utf-8'))
    except UnicodeDecodeError:
        return 'not UTF-8'
    except ValueError:
        return 'not JSON'
    if not isinstance(value, dict) or not isinstance(value.get('member_id'), str):
        return 'not an object with a member_id'
    at, by = value.get('requested_at'), value.get('requested_by', '')
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at) \
            or not isinstance(by, str):
        return 'requested_at must be a number and requested_by text'
    return LedgerEntry(value['member_id'], float(at), by)
