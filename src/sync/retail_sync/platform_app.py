"""The reference platform: the online side of the sync, for development, tests and the demo.

The real platform implements the same API (see the OpenAPI document at `/openapi.json`):
  POST /v1/robots/{robot_id}/events        gzip/plain JSON batch; dedup by event_id; ack count;
                                           409 when an event_id comes back with other content
  GET  /v1/catalog | /v1/promotions | /v1/histories | /v1/robots/{robot_id}/appointments
                                           with ETag / If-None-Match (304)
  PUT  /v1/admin/catalog | /v1/admin/promotions | /v1/admin/histories    upload new data
  POST /v1/admin/appointments              create a VIP appointment
Every endpoint, the OpenAPI document included, needs `Authorization: Bearer <token>`: the admin
token (given to `platform serve`) opens everything; a robot's token (issued with `retailbot
platform token issue`, stored here only as a SHA-256 hash) opens that robot's events and
appointments and the store's shared data (catalog, promotions, histories), nothing else.
Tokens are compared in constant time.

Limits on untrusted input (all answered with one JSON line, never a 500):
  request body            MAX_BATCH_BYTES (16 MiB) for events, MAX_DOCUMENT_BYTES (32 MiB) for
                          admin uploads, MAX_SMALL_BODY (64 KiB) for appointments; checked on
                          Content-Length before reading and while streaming (413)
  gzip                    decompressed in steps, stopped past MAX_DECOMPRESSED (64 MiB, 413)
  events per batch        MAX_BATCH_EVENTS (10 000, the uploader's largest batch_size; 413)
  each event              outbox rules: finite numbers, valid Unicode, data nested at most
                          MAX_DEPTH levels and at most MAX_DATA_BYTES, seq < 2^63, ids of at most
                          128 characters (422 naming the event)
Parsing, checking and storing run on worker threads, so `/v1/health` answers meanwhile.
Storage is one SQLite file (WAL); every transaction is rolled back on any error, so one bad
request never wedges the shared connection.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import math
import re
import secrets
import sqlite3
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, ValidationError

from retail_sync.outbox import MAX_DATA_BYTES, MAX_DEPTH, MAX_ID_CHARS, check_tree
from retail_sync.privacy import find_face_data
from retail_sync.transport import ROBOT_ID, valid_robot_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    robot_id TEXT NOT NULL, event_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,
    customer TEXT NOT NULL, time REAL NOT NULL, data TEXT NOT NULL, received_at REAL NOT NULL,
    PRIMARY KEY (robot_id, event_id)
);
CREATE TABLE IF NOT EXISTS documents (
    kind TEXT PRIMARY KEY, content BLOB NOT NULL, media_type TEXT NOT NULL, etag TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS appointments (
    id INTEGER PRIMARY KEY AUTOINCREMENT, robot_id TEXT NOT NULL, customer TEXT NOT NULL,
    time TEXT NOT NULL, purpose TEXT NOT NULL, note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS robot_tokens (
    token_hash TEXT PRIMARY KEY, robot_id TEXT NOT NULL, issued_at REAL NOT NULL,
    revoked_at REAL
);
"""
EVENT_TYPE = re.compile(r'^[a-z][a-z0-9_.]{0,63}$')
MAX_SEQ = 2 ** 63 - 1
MAX_BATCH_BYTES = 16 * 1024 * 1024
MAX_DECOMPRESSED = 64 * 1024 * 1024
MAX_BATCH_EVENTS = 10_000
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
MAX_SMALL_BODY = 64 * 1024
DOCUMENT_MEDIA = {'catalog': 'text/csv; charset=utf-8', 'histories': 'text/csv; charset=utf-8',
                  'promotions': 'application/json'}
HISTORY_COLUMNS = ('customer_id', 'sku', 'ts', 'qty', 'price_cny')


class Appointment(BaseModel):
    robot_id: str = Field(pattern=ROBOT_ID.pattern,
                          description='robot (store) that greets the customer')
    customer: str = Field(min_length=1, max_length=MAX_ID_CHARS,
                          description='pseudonymous member id, e.g. m-000001')
    time: str = Field(max_length=64, description='ISO 8601 local time of the appointment')
    purpose: str = Field('', max_length=1000)
    note: str = Field('', max_length=4000)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode('utf-8', 'surrogatepass')).hexdigest()


class Storage:
    """The platform's SQLite file, shared by the request threads. Raises sqlite3.Error (e.g.
    DatabaseError for a file that is not a database) when it cannot be opened."""

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            self.db.execute('PRAGMA journal_mode=WAL')
            self.db.execute('PRAGMA synchronous=NORMAL')
            for statement in SCHEMA.split(';'):
                if statement.strip():
                    self.db.execute(statement)
        except BaseException:
            self.db.close()
            raise

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def _write(self, work):
        """Run `work()` in one transaction; any exception rolls it back and is re-raised."""
        with self._lock:
            self.db.execute('BEGIN IMMEDIATE')
            try:
                result = work()
                self.db.execute('COMMIT')
                return result
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute('ROLLBACK')
                raise

    def store_events(self, robot_id: str, events: list[tuple]) -> list[str]:
        """Store new events, skip exact repeats; returns each event's status ('accepted' or
        'duplicate'), in order. EventConflict (and nothing stored) when an event_id is known
        with other type/customer/time/data."""
        def work() -> list[str]:
            statuses = []
            for index, event in enumerate(events):
                event_id, _seq, kind, customer, when, data, _received = event
                known = self.db.execute(
                    'SELECT type, customer, time, data FROM events WHERE robot_id = ? AND '
                    'event_id = ?', (robot_id, event_id)).fetchone()
                if known is None:
                    self.db.execute('INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                                    (robot_id, *event))
                    statuses.append('accepted')
                elif tuple(known) != (kind, customer, when, data):
                    raise EventConflict(index, event_id)
                else:
                    statuses.append('duplicate')
            return statuses
        return self._write(work)

    def put_document(self, kind: str, content: bytes) -> str:
        etag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
        self._write(lambda: self.db.execute('INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?)',
                                            (kind, content, DOCUMENT_MEDIA[kind], etag, time.time())))
        return etag

    def document(self, kind: str) -> tuple[bytes, str, str] | None:
        with self._lock:
            return self.db.execute('SELECT content, media_type, etag FROM documents WHERE kind = ?',
                                   (kind,)).fetchone()

    def add_appointment(self, appointment: Appointment) -> int:
        return self._write(lambda: self.db.execute(
            'INSERT INTO appointments (robot_id, customer, time, purpose, note) '
            'VALUES (?, ?, ?, ?, ?)', (appointment.robot_id, appointment.customer,
                                       appointment.time, appointment.purpose,
                                       appointment.note)).lastrowid)

    def appointments(self, robot_id: str) -> list[dict]:
        with self._lock:
            rows = self.db.execute('SELECT id, customer, time, purpose, note FROM appointments '
                                   'WHERE robot_id = ? ORDER BY time, id', (robot_id,)).fetchall()
        return [dict(id=r[0], customer=r[1], time=r[2], purpose=r[3], note=r[4]) for r in rows]

    def robot_for_token(self, token: str) -> str | None:
        """The robot a (not revoked) robot token belongs to, else None."""
        with self._lock:
            row = self.db.execute('SELECT robot_id FROM robot_tokens WHERE token_hash = ? AND '
                                  'revoked_at IS NULL', (token_hash(token),)).fetchone()
        return row[0] if row else None


class EventConflict(Exception):
    def __init__(self, index: int, event_id: str) -> None:
        super().__init__(f'events[{index}]: event_id {event_id!r} was already stored with '
                         'different content (an idempotency key is used once)')


# --- robot credentials (for `retailbot platform token ...`) ----------------------------------
def issue_token(db_path: str | Path, robot_id: str) -> str:
    """A new robot token bound to `robot_id` (only its hash is stored); ValueError for a bad id."""
    if not valid_robot_id(robot_id):
        raise ValueError(f'robot id {robot_id!r} must match {ROBOT_ID.pattern}')
    token = secrets.token_urlsafe(32)
    storage = Storage(db_path)
    try:
        storage._write(lambda: storage.db.execute(
            'INSERT INTO robot_tokens VALUES (?, ?, ?, NULL)', (token_hash(token), robot_id,
                                                              time.time())))
    finally:
        storage.close()
    return token


def revoke_tokens(db_path: str | Path, robot_id: str) -> int:
    """Revoke every token of `robot_id`; returns how many were active."""
    storage = Storage(db_path)
    try:
        return storage._write(lambda: storage.db.execute(
            'UPDATE robot_tokens SET revoked_at = ? WHERE robot_id = ? AND revoked_at IS NULL',
            (time.time(), robot_id)).rowcount)
    finally:
        storage.close()


def list_tokens(db_path: str | Path) -> list[dict]:
    """Every robot token: robot_id, a short fingerprint of its hash, issued_at, revoked_at."""
    storage = Storage(db_path)
    try:
        with storage._lock:
            rows = storage.db.execute('SELECT robot_id, token_hash, issued_at, revoked_at FROM '
                                      'robot_tokens ORDER BY robot_id, issued_at').fetchall()
    finally:
        storage.close()
    return [dict(robot_id=r[0], fingerprint=r[1][:12], issued_at=r[2], revoked_at=r[3])
            for r in rows]


def export_events(db_path: str | Path, robot_id: str) -> Iterator[dict]:
    """A robot's stored events in sequence order (for `retailbot platform export`)."""
    db = sqlite3.connect(f'file:{db_path}?mode=ro', uri=True)
    try:
        for row in db.execute('SELECT event_id, seq, type, customer, time, data, received_at '
                              'FROM events WHERE robot_id = ? ORDER BY seq', (robot_id,)):
            yield {'event_id': row[0], 'seq': row[1], 'type': row[2], 'customer': row[3],
                   'time': row[4], 'data': json.loads(row[5]), 'received_at': row[6]}
    finally:
        db.close()


# --- untrusted input -------------------------------------------------------------------------
def _text(value: Any, name: str, bad, max_chars: int = MAX_ID_CHARS, min_chars: int = 0) -> str:
    if not isinstance(value, str) or not min_chars <= len(value) <= max_chars:
        raise bad(f'{name} must be a string of {min_chars}-{max_chars} characters')
    try:
        value.encode('utf-8')
    except UnicodeEncodeError:
        raise bad(f'{name} is not valid Unicode (lone surrogate)') from None
    return value


def _validate_event(event: Any, index: int) -> tuple:
    """One event of a batch as a row, or HTTPException(422) saying what is wrong."""
    def bad(message: str) -> HTTPException:
        return HTTPException(422, f'events[{index}]: {message}')
    if not isinstance(event, dict):
        raise bad('not an object')
    event_id = _text(event.get('event_id'), 'event_id', bad, min_chars=1)
    seq, kind, when = event.get('seq'), event.get('type'), event.get('time')
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
        raise bad(f'seq must be an integer from 0 to {MAX_SEQ}')
    if not isinstance(kind, str) or not EVENT_TYPE.match(kind):
        raise bad(f'type {kind!r} must match {EVENT_TYPE.pattern}')
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        raise bad('time must be a number (seconds since 1970)')
    try:
        when = float(when)
    except OverflowError:
        raise bad('time is out of range') from None
    if not math.isfinite(when):
        raise bad('time must be a finite number')
    customer = _text(event.get('customer') or '', 'customer', bad)
    data = event.get('data')
    if not isinstance(data, dict):
        raise bad('data must be an object')
    check_tree(data, 'data', MAX_DEPTH, error=bad)
    face = find_face_data(data, 'data')
    if face:
        raise bad(f'face data is never accepted: {face}')
    text = json.dumps(data, ensure_ascii=False, separators=(',', ':'), allow_nan=False)
    if len(text.encode()) > MAX_DATA_BYTES:
        raise bad(f'data is more than {MAX_DATA_BYTES} bytes')
    return (event_id, seq, kind, customer, when, text, time.time())


def gunzip_limited(body: bytes, limit: int = MAX_DECOMPRESSED) -> bytes:
    """Decompress a gzip body in steps of 1 MiB, refusing (413) as soon as the output passes
    `limit` — a small bomb never expands in memory. 400 for a body that is not gzip."""
    out = bytearray()
    data = body
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            while True:
                chunk = inflater.decompress(data, 1 << 20)
                out += chunk
                if len(out) > limit:
                    raise HTTPException(413, f'body expands to more than {limit} bytes')
                data = inflater.unconsumed_tail
                if inflater.eof or (not chunk and not data):
                    break
        except zlib.error:
            raise HTTPException(400, 'body is not valid gzip') from None
        if not inflater.eof:
            raise HTTPException(400, 'gzip body is cut short')
        data = inflater.unused_data.lstrip(b'\0')      # concatenated gzip members, padding
    return bytes(out)


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 when Content-Length says it is too large (before
    reading anything) or when the streamed bytes pass `limit`."""
    declared = request.headers.get('content-length')
    if declared is not None:
        try:
            if int(declared) > limit:
                raise HTTPException(413, f'body of {declared} bytes; the limit is {limit}')
        except ValueError:
            raise HTTPException(400, 'bad Content-Length') from None
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise HTTPException(413, f'body larger than the limit of {limit} bytes')
    return bytes(chunks)


def _check_catalog(content: bytes) -> None:
    import tempfile

    from retail_common.catalog import CatalogError, load_catalog
    with tempfile.NamedTemporaryFile(suffix='.csv') as tmp:
        tmp.write(content)
        tmp.flush()
        try:
            catalog = load_catalog(tmp.name)
        except (CatalogError, UnicodeDecodeError) as exc:
            raise HTTPException(422, f'catalog refused: {exc}') from None
    if not catalog.products:
        raise HTTPException(422, 'catalog refused: no valid products')
    if catalog.issues:
        raise HTTPException(422, f'catalog refused: {len(catalog.issues)} bad rows, first: '
                                 f'{catalog.issues[0]}')


def _check_histories(content: bytes) -> None:
    try:
        header = next(csv.reader(io.StringIO(content.decode('utf-8'))))
    except (StopIteration, UnicodeDecodeError, csv.Error):
        raise HTTPException(422, 'histories refused: empty or not UTF-8 CSV') from None
    if tuple(header) != HISTORY_COLUMNS:
        raise HTTPException(422, f'histories refused: header must be {",".join(HISTORY_COLUMNS)}')


def _check_promotions(content: bytes) -> None:
    try:
        promotions = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise HTTPException(422, 'promotions refused: not JSON') from None
    if not isinstance(promotions, list) or not all(isinstance(p, dict) for p in promotions):
        raise HTTPException(422, 'promotions refused: must be a JSON list of objects')
    check_tree(promotions, 'promotions', MAX_DEPTH,
               error=lambda message: HTTPException(422, f'promotions refused: {message}'))


CHECKS = {'catalog': _check_catalog, 'histories': _check_histories,
          'promotions': _check_promotions}


@dataclass(frozen=True)
class Caller:
    admin: bool
    robot_id: str | None = None


def create_app(db_path: str | Path, token: str) -> FastAPI:
    """The platform app over the SQLite file `db_path`; `token` is the admin credential
    (ValueError when empty). sqlite3.Error when `db_path` cannot be used."""
    if not token:
        raise ValueError('the admin token must not be empty')
    storage = Storage(db_path)
    admin_digest = hashlib.sha256(token.encode()).digest()

    def caller(request: Request) -> Caller:
        scheme, _, given = request.headers.get('authorization', '').partition(' ')
        given = given.strip()
        if scheme.lower() == 'bearer' and given:
            if hmac.compare_digest(hashlib.sha256(given.encode('utf-8', 'surrogatepass')).digest(),
                                   admin_digest):
                return Caller(admin=True)
            robot = storage.robot_for_token(given)
            if robot is not None:
                return Caller(admin=False, robot_id=robot)
        raise HTTPException(401, 'missing or wrong bearer token',
                            headers={'WWW-Authenticate': 'Bearer'})

    def admin_only(who: Caller = Depends(caller)) -> Caller:
        if not who.admin:
            raise HTTPException(403, 'this endpoint needs the admin credential')
        return who

    def robot_scope(robot_id: str, who: Caller = Depends(caller)) -> str:
        if not valid_robot_id(robot_id):     # 404, not 422: an uploader must never quarantine
            raise HTTPException(404, f'no robot {robot_id!r}: ids match {ROBOT_ID.pattern}')
        if not who.admin and who.robot_id != robot_id:
            raise HTTPException(403, f'this token belongs to robot {who.robot_id}, '
                                     f'not {robot_id}')
        return robot_id

    app = FastAPI(title='Retailbot reference platform', version='1', openapi_url=None,
                  docs_url=None, redoc_url=None, dependencies=[Depends(caller)])
    app.state.storage = storage

    @app.get('/openapi.json', include_in_schema=False)
    def openapi() -> dict:
        return app.openapi()

    @app.get('/v1/health')
    def health() -> dict:
        return {'ok': True}

    def store_batch(robot_id: str, body: bytes, gzipped: bool) -> dict:
        if gzipped:
            body = gunzip_limited(body)
        try:
            batch = json.loads(body)
        except RecursionError:
            raise HTTPException(422, f'body nested too deeply (data at most {MAX_DEPTH} levels)') from None
        except (ValueError, UnicodeDecodeError):
            raise HTTPException(400, 'body is not JSON') from None
        events = batch.get('events') if isinstance(batch, dict) else None
        if not isinstance(events, list):
            raise HTTPException(422, 'body must be {"events": [...]}')
        if len(events) > MAX_BATCH_EVENTS:
            raise HTTPException(413, f'{len(events)} events in one batch; at most {MAX_BATCH_EVENTS}')
        rows = [_validate_event(event, index) for index, event in enumerate(events)]
        try:
            statuses = storage.store_events(robot_id, rows)
        except EventConflict as exc:
            raise HTTPException(409, str(exc)) from None
        stored = statuses.count('accepted')
        # Contract (sync <-> platform): one result per event, in order; the robot deletes
        # exactly the event_ids answered accepted/duplicate.
        return {'acked': len(rows), 'stored': stored, 'duplicates': len(rows) - stored,
                'results': [{'event_id': row[0], 'status': status}
                            for row, status in zip(rows, statuses)]}

    @app.post('/v1/robots/{robot_id}/events',
              summary='Store a batch of a robot\'s events (idempotent by event_id)')
    async def post_events(request: Request, robot_id: str = Depends(robot_scope)) -> dict:
        body = await read_limited(request, MAX_BATCH_BYTES)
        gzipped = request.headers.get('content-encoding', '').lower() == 'gzip'
        return await run_in_threadpool(store_batch, robot_id, body, gzipped)

    def serve_document(kind: str, request: Request) -> Response:
        document = storage.document(kind)
        if document is None:
            raise HTTPException(404, f'no {kind} uploaded yet')
        content, media_type, etag = document
        if request.headers.get('if-none-match') == etag:
            return Response(status_code=304, headers={'ETag': etag})
        return Response(content, media_type=media_type, headers={'ETag': etag})

    def upload_document(kind: str, content: bytes, unchecked: bool) -> dict:
        if not unchecked:
            CHECKS[kind](content)
        return {'kind': kind, 'etag': storage.put_document(kind, content)}

    @app.get('/v1/catalog', summary='The store catalog (CSV, retail_common.catalog columns)')
    def get_catalog(request: Request) -> Response:
        return serve_document('catalog', request)

    @app.get('/v1/promotions', summary='Current promotions (JSON list)')
    def get_promotions(request: Request) -> Response:
        return serve_document('promotions', request)

    @app.get('/v1/histories', summary='Member purchase histories (CSV: ' + ','.join(HISTORY_COLUMNS) + ')')
    def get_histories(request: Request) -> Response:
        return serve_document('histories', request)

    @app.get('/v1/robots/{robot_id}/appointments', summary='VIP appointments for a robot')
    def get_appointments(request: Request, robot_id: str = Depends(robot_scope)) -> Response:
        content = json.dumps(storage.appointments(robot_id), ensure_ascii=False).encode()
        etag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
        if request.headers.get('if-none-match') == etag:
            return Response(status_code=304, headers={'ETag': etag})
        return Response(content, media_type='application/json', headers={'ETag': etag})

    @app.put('/v1/admin/{kind}', dependencies=[Depends(admin_only)],
             summary='Upload a catalog, promotions or histories (admin; at most 32 MiB; '
                     'unchecked=true stores it as is, to test robots\' own validation)')
    async def put_document(kind: str, request: Request, unchecked: bool = False) -> dict:
        if kind not in CHECKS:
            raise HTTPException(404, f'unknown document {kind!r}; one of {", ".join(CHECKS)}')
        content = await read_limited(request, MAX_DOCUMENT_BYTES)
        return await run_in_threadpool(upload_document, kind, content, unchecked)

    @app.post('/v1/admin/appointments', dependencies=[Depends(admin_only)],
              summary='Create a VIP appointment (admin; JSON body: robot_id, customer, time, '
                      'purpose, note)',
              openapi_extra={'requestBody': {'required': True, 'content': {
                  'application/json': {'schema': Appointment.model_json_schema()}}}})
    async def post_appointment(request: Request) -> dict:
        body = await read_limited(request, MAX_SMALL_BODY)
        try:
            appointment = Appointment.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = '.'.join(str(part) for part in first.get('loc', ()))
            raise HTTPException(422, f'appointment refused: {where}: {first.get("msg")}') from None
        check_tree(appointment.model_dump(), 'appointment', 2,
                   error=lambda message: HTTPException(422, f'appointment refused: {message}'))
        return {'id': await run_in_threadpool(storage.add_appointment, appointment)}

    return app
