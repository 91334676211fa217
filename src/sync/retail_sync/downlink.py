"""The robot's one downlink: versioned snapshots and deltas of its store's data from the chain
platform (`GET /v1/robots/{robot_id}/downlink?since=V`), kept in a local SQLite file
(<data_dir>/downlink.sqlite3) and written out as the files the robot's nodes read (<data_dir>:
catalog.csv, promotions.json, appointments.json, history.csv, profiles.json: consenting members'
profiles from their records, campaigns.json: HQ's campaigns for this store). The sync agent runs it
(`retail_sync.agent_node`) and announces each rewritten file on `/sync/data_updates`
(`take_updates()`).

Guarantees:
- Atomic: an answer is checked whole first (every product a valid catalog row, every list of the
  declared shape, the version not going back, a delta for the version this robot holds and its
  store); only then is it applied in one SQLite transaction together with the new version. A bad
  answer is reported (`SyncOutcome.error`, one line) and the last good state is kept; a crash
  mid-apply rolls back. The files are rewritten from the database (temp file, fsync, rename)
  after each commit and at start-up, so they always show the last committed version.
- Minimised: only members the platform sends for this store are kept, plus members fetched on
  demand (`member()`) when a consenting member is recognised; the cached copy answers while the
  platform is away.
- Forget: a member id in the answer's `forget` list (a tombstone; also after days offline) is
  removed from the local database in the same transaction, then its gallery entry is erased
  through `erase_face` (the perception delete path: GalleryStore.transaction().delete, on the
  robot the faces node's DeleteMember service), whatever else the robot keeps about them through
  `erase_local` (the agent: the outbox's waiting events naming them), and the platform is told
  (`POST /v1/robots/{robot_id}/forgotten/{member_id}`). Until all are done the id stays in
  `pending_forget` (on disk: a restart goes on with it) and is retried on every sync; a member
  pending there is never fetched or served again.
- Moved: an answer for another store than the one held (the robot was moved) is applied only
  as a full snapshot: a delta for another store makes the next request ask for a snapshot.
Pure: no rclpy.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import httpx

from retail_common.catalog import COLUMNS, parse_row
from retail_sync.privacy import ERASING_PRAGMAS, ErasureBusy, erase_wal
from retail_sync.transport import answer_chunks, platform_client, set_token

DB_FILE = 'downlink.sqlite3'
MAX_DOWNLINK_BYTES = 64 * 1024 * 1024   # per answer, after decompression
# The files the nodes read -> the DataUpdate kind announcing a new one.
FILE_KINDS = {'catalog.csv': 'catalog', 'promotions.json': 'promotions',
              'appointments.json': 'appointments', 'history.csv': 'histories',
              'profiles.json': 'profiles', 'campaigns.json': 'campaigns'}
HISTORY_COLUMNS = ('customer_id', 'sku', 'ts', 'qty', 'price_cny')
SECTIONS = (('products', 'sku'), ('promotions', 'id'), ('appointments', 'id'), ('members', 'member_id'))
MAX_ITEMS = 200_000            # per list of one answer


def atomic_write(path: Path, content: bytes) -> None:
    """Write `content` to `path` so that readers and power cuts see old or new, never a mix."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class BadAnswer(ValueError):
    """The platform sent an answer this robot must not apply (one line)."""


@dataclass
class SyncOutcome:
    version: int | None = None       # the version held after this sync
    applied: bool = False            # an answer was applied (snapshot or delta)
    full: bool = False
    changed: dict[str, int] = field(default_factory=dict)   # items upserted/removed per section
    forgotten: list[str] = field(default_factory=list)      # confirmed to the platform now
    error: str | None = None         # kept the last good state because of this


def _items(answer: dict, key: str, check: Callable[[Any, str], None]) -> list:
    value = answer.get(key)
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise BadAnswer(f'{key} must be a list of at most {MAX_ITEMS} items')
    for index, item in enumerate(value):
        check(item, f'{key}[{index}]')
    return value


def _text_id(item: Any, where: str) -> None:
    if not isinstance(item, str) or not 0 < len(item) <= 128:
        raise BadAnswer(f'{where} must be an id of 1-128 characters')


def _product(item: Any, where: str) -> None:
    if not isinstance(item, dict) or not all(isinstance(item.get(k, ''), str) for k in COLUMNS):
        raise BadAnswer(f'{where} must be an object of catalog text columns')
    try:
        parse_row(item)
    except ValueError as exc:
        raise BadAnswer(f'{where} ({item.get("sku")!r}): {exc}') from None


def _keyed(key: str, kind: type) -> Callable[[Any, str], None]:
    def check(item: Any, where: str) -> None:
        if not isinstance(item, dict) or not isinstance(item.get(key), kind) \
                or isinstance(item.get(key), bool):
            raise BadAnswer(f'{where} must be an object with {key}')
    return check


def _member(item: Any, where: str) -> None:
    _keyed('member_id', str)(item, where)
    history = item.get('history')
    if not isinstance(history, list) or not all(isinstance(p, dict) for p in history):
        raise BadAnswer(f'{where}: history must be a list of purchases')
    if item.get('profile') is not None and not isinstance(item['profile'], dict):
        raise BadAnswer(f'{where}: profile must be an object')


def check_answer(answer: Any, held_version: int | None, held_store: str | None) -> dict:
    """The answer when it may be applied to what this robot holds; BadAnswer otherwise."""
    if not isinstance(answer, dict):
        raise BadAnswer('the answer is not a JSON object')
    version, full, store = answer.get('version'), answer.get('full'), answer.get('store_id')
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise BadAnswer('version must be a whole number')
    if not isinstance(full, bool) or not isinstance(store, str) or not store:
        raise BadAnswer('full and store_id are missing')
    if not full:
        if held_version is None or answer.get('since') != held_version:
            raise BadAnswer(f'a delta since {answer.get("since")!r} for a robot holding version '
                            f'{held_version}')
        if store != held_store:
            raise BadAnswer(f'a delta for store {store} while holding store {held_store}')
    if held_version is not None and version < held_version and store == held_store:
        raise BadAnswer(f'version {version} is older than the held {held_version}')
    _items(answer, 'products', _product)
    _items(answer, 'promotions', _keyed('id', str))
    _items(answer, 'appointments', _keyed('id', int))
    _items(answer, 'members', _member)
    for key in ('products_removed', 'promotions_removed', 'appointments_removed',
                'members_removed', 'forget'):
        _items(answer, key, _text_id)
    if answer.get('campaigns') is not None and not isinstance(answer['campaigns'], dict):
        raise BadAnswer('campaigns must be an object (the section of retail_common.campaigns)')
    return answer


class StoreDownlink:
    def __init__(self, platform_url: str, token: str, robot_id: str, data_dir: str | Path,
                 ca_file: str = '', timeout_s: float = 15.0, max_bytes: int = MAX_DOWNLINK_BYTES,
                 erase_face: Callable[[str], bool] | None = None,
                 erase_local: Callable[[str], str] | None = None) -> None:
        """`erase_face(member_id)`: erase the member's gallery entry; True when there was one,
        False when there was none; raises when it could not be done (retried). `erase_local`:
        erase whatever else the robot keeps about them; a few words saying what (for the
        platform's confirmation); raises when it could not be done (retried)."""
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.robot_id = robot_id
        self.max_bytes = max_bytes
        self.erase_face = erase_face
        self.erase_local = erase_local
        self.forget_error: str | None = None     # the last erase that failed (None: all done)
        self._updates: dict[str, str] = {}       # DataUpdate kind -> file rewritten, not yet taken
        self._base = platform_url.rstrip('/')
        self._client = platform_client(token, ca_file, timeout_s)
        self.db = sqlite3.connect(self.data_dir / DB_FILE, isolation_level=None,
                                  check_same_thread=False)
        self.db.execute('PRAGMA journal_mode=WAL')
        self.db.execute('PRAGMA synchronous=FULL')
        for pragma in ERASING_PRAGMAS:
            self.db.execute(pragma)
        for table, key in SECTIONS:
            self.db.execute(f'CREATE TABLE IF NOT EXISTS {table} ({key} TEXT PRIMARY KEY, row TEXT NOT NULL'
                            + (', fetched_at REAL' if table == 'members' else '') + ')')
        self.db.execute('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)')
        self.db.execute('CREATE TABLE IF NOT EXISTS pending_forget (member_id TEXT PRIMARY KEY, '
                        'erased INTEGER NOT NULL DEFAULT 0)')
        self.write_files()

    def close(self) -> None:
        self._client.close()
        self.db.close()

    def set_token(self, token: str) -> None:
        set_token(self._client, token)

    # --- what is held --------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self.db.execute('SELECT value FROM meta WHERE key = ?', (key,)).fetchone()
        return row[0] if row else None

    @property
    def version(self) -> int | None:
        value = self._meta('version')
        return int(value) if value is not None else None

    @property
    def store_id(self) -> str | None:
        return self._meta('store_id')

    def rows(self, table: str) -> list[dict]:
        key = dict(SECTIONS)[table]
        return [json.loads(r[0]) for r in self.db.execute(f'SELECT row FROM {table} ORDER BY {key}')]

    def pending_forget(self) -> list[str]:
        return [r[0] for r in self.db.execute('SELECT member_id FROM pending_forget ORDER BY member_id')]

    def cached(self, member_id: str) -> bool:
        """The member's record is held here (sent for this store or fetched before)."""
        return self.db.execute('SELECT 1 FROM members WHERE member_id = ?', (member_id,)).fetchone() is not None

    def take_updates(self) -> dict[str, str]:
        """{DataUpdate kind: path} of the files rewritten since the last call."""
        updates, self._updates = self._updates, {}
        return updates

    # --- sync ----------------------------------------------------------------------------
    def _get(self, path: str, params: dict | None = None) -> tuple[int, Any]:
        with self._client.stream('GET', self._base + path, params=params) as response:
            if response.status_code != 200:
                return response.status_code, None
            body = bytearray()
            for chunk in answer_chunks(self._client, response):   # decoded: the limit holds after gzip
                body += chunk
                if len(body) > self.max_bytes:
                    raise BadAnswer(f'answer larger than {self.max_bytes} bytes')
        try:
            return 200, json.loads(bytes(body))
        except (ValueError, RecursionError):
            raise BadAnswer('the answer is not JSON') from None

    def sync(self) -> SyncOutcome:
        """Confirm pending forgets, fetch the delta (or a snapshot) and apply it atomically."""
        outcome = SyncOutcome(version=self.version)
        held, store = self.version, self.store_id
        try:
            outcome.forgotten = self._finish_forgets()
            for attempt in range(2):
                params = {'since': held} if held is not None and attempt == 0 else None
                status, answer = self._get(f'/v1/robots/{self.robot_id}/downlink', params)
                if status != 200:
                    outcome.error = f'HTTP {status}; keeping version {held}'
                    return outcome
                if isinstance(answer, dict) and answer.get('full') is False \
                        and answer.get('store_id') != store:
                    continue                        # moved to another store: ask for a snapshot
                break
            check_answer(answer, held, store)
            outcome.changed = self._apply(answer)
        except BadAnswer as exc:
            outcome.error = f'bad downlink answer: {exc}; keeping version {held}'
            return outcome
        except httpx.HTTPError as exc:
            outcome.error = f'platform unreachable ({type(exc).__name__}); keeping version {held}'
            return outcome
        outcome.applied, outcome.full, outcome.version = True, bool(answer['full']), answer['version']
        self.write_files()
        try:
            outcome.forgotten += self._finish_forgets()
        except httpx.HTTPError:
            pass                                    # confirmed at the next sync
        return outcome

    def _apply(self, answer: dict) -> dict[str, int]:
        changed: dict[str, int] = {}
        db = self.db
        db.execute('BEGIN IMMEDIATE')
        try:
            if answer['full']:
                for table, _ in SECTIONS:
                    db.execute(f'DELETE FROM {table}')
            forgotten = set(answer['forget']) | set(self.pending_forget())
            for table, key in SECTIONS:
                items = [item for item in answer[table]
                         if not (table == 'members' and item['member_id'] in forgotten)]
                if table == 'members':
                    db.executemany('INSERT OR REPLACE INTO members (member_id, row, fetched_at) '
                                   'VALUES (?, ?, NULL)',
                                   [(str(i[key]), json.dumps(i, ensure_ascii=False)) for i in items])
                else:
                    db.executemany(f'INSERT OR REPLACE INTO {table} ({key}, row) VALUES (?, ?)',
                                   [(str(i[key]), json.dumps(i, ensure_ascii=False)) for i in items])
                removed = answer[f'{table}_removed']
                db.executemany(f'DELETE FROM {table} WHERE {key} = ?', [(k,) for k in removed])
                changed[table] = len(items) + len(removed)
            for member_id in answer['forget']:
                db.execute('DELETE FROM members WHERE member_id = ?', (member_id,))
                db.execute('INSERT OR IGNORE INTO pending_forget (member_id) VALUES (?)', (member_id,))
            changed['forget'] = len(answer['forget'])
            db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (str(answer['version']),))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('store_id', ?)", (answer['store_id'],))
            if isinstance(answer.get('campaigns'), dict):   # HQ's campaigns: the whole state each time
                db.execute("INSERT OR REPLACE INTO meta VALUES ('campaigns', ?)",
                           (json.dumps(answer['campaigns'], ensure_ascii=False),))
            db.execute('COMMIT')
        except BaseException:
            db.execute('ROLLBACK')
            raise
        if answer['forget']:
            with contextlib.suppress(ErasureBusy):        # retried before the forget is confirmed
                erase_wal(db, f'{self.data_dir / DB_FILE}')
        return changed

    def _finish_forgets(self) -> list[str]:
        """Erase each pending member's gallery entry and local traces, then confirm to the
        platform (by id); what fails stays pending and is retried at the next sync."""
        done = []
        failed = []
        for member_id, erased in self.db.execute(
                'SELECT member_id, erased FROM pending_forget ORDER BY member_id').fetchall():
            detail = 'cache deleted'
            if not erased:
                try:
                    if self.erase_face is not None:
                        had_face = self.erase_face(member_id)
                        detail += ', gallery entry erased' if had_face else ', no gallery entry'
                    if self.erase_local is not None:
                        detail += f', {self.erase_local(member_id)}'
                except Exception as exc:  # noqa: BLE001 - retried at the next sync
                    failed.append(f'a member to forget is not erased yet: {exc}')
                    continue
                self.db.execute('UPDATE pending_forget SET erased = 1 WHERE member_id = ?', (member_id,))
            try:                                      # the cached copy gone from the -wal too
                erase_wal(self.db, f'{self.data_dir / DB_FILE}')
            except ErasureBusy as exc:
                failed.append(f'a member to forget is not erased yet: {exc}')
                continue
            response = self._client.post(
                f'{self._base}/v1/robots/{self.robot_id}/forgotten/{quote(member_id, safe="")}',
                json={'detail': detail[:200]})
            if response.status_code in (200, 404):            # 404: the platform has no request
                self.db.execute('DELETE FROM pending_forget WHERE member_id = ?', (member_id,))
                done.append(member_id)
            else:
                failed.append(f'the platform did not take a forget confirmation: HTTP {response.status_code}')
        self.forget_error = failed[0] if failed else None
        return done

    # --- members on demand ---------------------------------------------------------------
    def member(self, member_id: str) -> dict | None:
        """A recognised consenting member's record: fetched from the platform (and cached), or
        the cached copy while the platform is away; None for a member to forget or unknown."""
        if self.db.execute('SELECT 1 FROM pending_forget WHERE member_id = ?', (member_id,)).fetchone():
            return None
        try:
            status, record = self._get(f'/v1/robots/{self.robot_id}/members/{quote(member_id, safe="")}')
        except (httpx.HTTPError, BadAnswer):
            status, record = 0, None
        if status == 200:
            try:
                _member(record, 'member')
            except BadAnswer:
                status = 0
        if status == 200:
            record = {k: record[k] for k in ('member_id', 'consent', 'home_store', 'history', 'profile')
                      if k in record}
            self.db.execute('INSERT OR REPLACE INTO members (member_id, row, fetched_at) VALUES (?, ?, ?)',
                            (member_id, json.dumps(record, ensure_ascii=False), time.time()))
            self.write_files()
            return record
        if status == 404:                   # no (longer a) consenting member
            self.db.execute('DELETE FROM members WHERE member_id = ?', (member_id,))
            self.write_files()
            return None
        row = self.db.execute('SELECT row FROM members WHERE member_id = ?', (member_id,)).fetchone()
        return json.loads(row[0]) if row else None

    # --- the files the robot reads -------------------------------------------------------
    def write_files(self) -> None:
        """catalog.csv (when the platform sent products), promotions.json, appointments.json,
        history.csv from the committed database; a file is rewritten only when it differs."""
        if self.version is None:
            return
        products = self.rows('products')
        if products:
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction='ignore', lineterminator='\n')
            writer.writeheader()
            writer.writerows(products)
            self._write('catalog.csv', out.getvalue().encode())
        self._write('promotions.json', json.dumps(self.rows('promotions'), ensure_ascii=False).encode())
        self._write('appointments.json', json.dumps(self.rows('appointments'), ensure_ascii=False).encode())
        out = io.StringIO()
        writer = csv.writer(out, lineterminator='\n')
        writer.writerow(HISTORY_COLUMNS)
        for m in self.rows('members'):
            for p in m.get('history', []):
                writer.writerow([m['member_id'], p.get('sku', ''), p.get('ts', ''), p.get('qty', ''),
                                 p.get('price_cny', '')])
        self._write('history.csv', out.getvalue().encode())
        # what returning members said on earlier visits (retail_common.profiles reads it)
        said = {m['member_id']: m['profile'] for m in self.rows('members')
                if isinstance(m.get('profile'), dict)}
        self._write('profiles.json', json.dumps(said, ensure_ascii=False, sort_keys=True).encode())
        self._write_campaigns()

    def _write_campaigns(self) -> None:
        """campaigns.json: the last answer's campaigns section (retail_common.campaigns reads and
        checks it), without members this robot was asked to forget; rewritten only when it changed."""
        raw = self._meta('campaigns')
        if raw is None:
            return
        section = json.loads(raw)
        # when the platform answered: it changes with every answer, so it is left out, or every
        # sync would rewrite an unchanged section and every node of the robot reload its store
        section.pop('at', None)
        gone = set(self.pending_forget())
        if gone and isinstance(section.get('active'), list):
            for campaign in section['active']:
                if isinstance(campaign, dict) and isinstance(campaign.get('members'), list):
                    campaign['members'] = [m for m in campaign['members'] if m not in gone]
        self._write('campaigns.json', json.dumps(section, ensure_ascii=False, sort_keys=True).encode())

    def _write(self, name: str, content: bytes) -> None:
        path = self.data_dir / name
        try:
            if path.read_bytes() == content:
                return
        except OSError:
            pass
        atomic_write(path, content)
        self._updates[FILE_KINDS.get(name, name)] = str(path)
