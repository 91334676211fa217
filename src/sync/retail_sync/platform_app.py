"""The reference platform: the online side of the sync, for development, tests and the demo.

The real platform implements the same API (see the OpenAPI document at `/openapi.json`):
  POST /v1/robots/{robot_id}/events        gzip/plain JSON batch; dedup by event_id; ack count
  GET  /v1/catalog | /v1/promotions | /v1/histories | /v1/robots/{robot_id}/appointments
                                           with ETag / If-None-Match (304)
  PUT  /v1/admin/catalog | /v1/admin/promotions | /v1/admin/histories    upload new data
  POST /v1/admin/appointments              create a VIP appointment
Every endpoint, the OpenAPI document included, needs `Authorization: Bearer <token>`.
Storage is one SQLite file (WAL).
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import sqlite3
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Iterator

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from pydantic import BaseModel, Field

from retail_sync.privacy import find_face_data

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
"""
EVENT_TYPE = re.compile(r'^[a-z][a-z0-9_.]{0,63}$')
MAX_BATCH_BYTES = 16 * 1024 * 1024
DOCUMENT_MEDIA = {'catalog': 'text/csv; charset=utf-8', 'histories': 'text/csv; charset=utf-8',
                  'promotions': 'application/json'}
HISTORY_COLUMNS = ('customer_id', 'sku', 'ts', 'qty', 'price_cny')


class Appointment(BaseModel):
    robot_id: str = Field(description='robot (store) that greets the customer')
    customer: str = Field(description='pseudonymous member id, e.g. m-000001')
    time: str = Field(description='ISO 8601 local time of the appointment')
    purpose: str = ''
    note: str = ''


class Storage:
    """The platform's SQLite file, shared by the request threads."""

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute('PRAGMA journal_mode=WAL')
        self.db.execute('PRAGMA synchronous=NORMAL')
        self.db.executescript(SCHEMA)

    def store_events(self, robot_id: str, events: list[tuple]) -> int:
        with self._lock:
            before = self.db.total_changes
            self.db.execute('BEGIN IMMEDIATE')
            self.db.executemany('INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                                [(robot_id, *event) for event in events])
            self.db.execute('COMMIT')
            return self.db.total_changes - before

    def put_document(self, kind: str, content: bytes) -> str:
        etag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
        with self._lock:
            self.db.execute('INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?)',
                            (kind, content, DOCUMENT_MEDIA[kind], etag, time.time()))
        return etag

    def document(self, kind: str) -> tuple[bytes, str, str] | None:
        with self._lock:
            row = self.db.execute('SELECT content, media_type, etag FROM documents WHERE kind = ?',
                                  (kind,)).fetchone()
        return row

    def add_appointment(self, appointment: Appointment) -> int:
        with self._lock:
            return self.db.execute(
                'INSERT INTO appointments (robot_id, customer, time, purpose, note) '
                'VALUES (?, ?, ?, ?, ?)', (appointment.robot_id, appointment.customer,
                                           appointment.time, appointment.purpose,
                                           appointment.note)).lastrowid

    def appointments(self, robot_id: str) -> list[dict]:
        with self._lock:
            rows = self.db.execute('SELECT id, customer, time, purpose, note FROM appointments '
                                   'WHERE robot_id = ? ORDER BY time, id', (robot_id,)).fetchall()
        return [dict(id=r[0], customer=r[1], time=r[2], purpose=r[3], note=r[4]) for r in rows]


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


def _validate_event(event: Any, index: int) -> tuple:
    """One event of a batch as a row, or HTTPException(422) saying what is wrong."""
    def bad(message: str) -> HTTPException:
        return HTTPException(422, f'events[{index}]: {message}')
    if not isinstance(event, dict):
        raise bad('not an object')
    event_id, seq, kind = event.get('event_id'), event.get('seq'), event.get('type')
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 128:
        raise bad('event_id must be a string of 1-128 characters')
    if not isinstance(seq, int) or seq < 0:
        raise bad('seq must be a non-negative integer')
    if not isinstance(kind, str) or not EVENT_TYPE.match(kind):
        raise bad(f'type {kind!r} must match {EVENT_TYPE.pattern}')
    if not isinstance(event.get('time'), (int, float)):
        raise bad('time must be a number (seconds since 1970)')
    data = event.get('data')
    if not isinstance(data, dict):
        raise bad('data must be an object')
    face = find_face_data(data, 'data')
    if face:
        raise bad(f'face data is never accepted: {face}')
    return (event_id, seq, kind, str(event.get('customer') or ''), float(event['time']),
            json.dumps(data, ensure_ascii=False, separators=(',', ':')), time.time())


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
    except (StopIteration, UnicodeDecodeError):
        raise HTTPException(422, 'histories refused: empty or not UTF-8') from None
    if tuple(header) != HISTORY_COLUMNS:
        raise HTTPException(422, f'histories refused: header must be {",".join(HISTORY_COLUMNS)}')


def _check_promotions(content: bytes) -> None:
    try:
        promotions = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(422, 'promotions refused: not JSON') from None
    if not isinstance(promotions, list) or not all(isinstance(p, dict) for p in promotions):
        raise HTTPException(422, 'promotions refused: must be a JSON list of objects')


CHECKS = {'catalog': _check_catalog, 'histories': _check_histories,
          'promotions': _check_promotions}


def create_app(db_path: str | Path, token: str) -> FastAPI:
    storage = Storage(db_path)

    def authorised(request: Request) -> None:
        if request.headers.get('authorization', '') != f'Bearer {token}':
            raise HTTPException(401, 'missing or wrong bearer token',
                                headers={'WWW-Authenticate': 'Bearer'})

    app = FastAPI(title='Retailbot reference platform', version='1', openapi_url=None,
                  docs_url=None, redoc_url=None, dependencies=[Depends(authorised)])

    @app.get('/openapi.json', include_in_schema=False)
    def openapi() -> dict:
        return app.openapi()

    @app.get('/v1/health')
    def health() -> dict:
        return {'ok': True}

    @app.post('/v1/robots/{robot_id}/events',
              summary='Store a batch of a robot\'s events (idempotent by event_id)')
    async def post_events(robot_id: str, request: Request) -> dict:
        body = await request.body()
        if len(body) > MAX_BATCH_BYTES:
            raise HTTPException(413, 'batch too large')
        if request.headers.get('content-encoding', '').lower() == 'gzip':
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError, zlib.error):
                raise HTTPException(400, 'body is not valid gzip') from None
        try:
            batch = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise HTTPException(400, 'body is not JSON') from None
        events = batch.get('events') if isinstance(batch, dict) else None
        if not isinstance(events, list):
            raise HTTPException(422, 'body must be {"events": [...]}')
        rows = [_validate_event(event, index) for index, event in enumerate(events)]
        stored = storage.store_events(robot_id, rows)
        return {'acked': len(rows), 'stored': stored, 'duplicates': len(rows) - stored}

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
    def get_appointments(robot_id: str, request: Request) -> Response:
        content = json.dumps(storage.appointments(robot_id), ensure_ascii=False).encode()
        etag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
        if request.headers.get('if-none-match') == etag:
            return Response(status_code=304, headers={'ETag': etag})
        return Response(content, media_type='application/json', headers={'ETag': etag})

    @app.put('/v1/admin/{kind}', summary='Upload a catalog, promotions or histories '
             '(unchecked=true stores it as is, to test robots\' own validation)')
    async def put_document(kind: str, request: Request, unchecked: bool = False) -> dict:
        if kind not in CHECKS:
            raise HTTPException(404, f'unknown document {kind!r}; one of {", ".join(CHECKS)}')
        return upload_document(kind, await request.body(), unchecked)

    @app.post('/v1/admin/appointments', summary='Create a VIP appointment')
    def post_appointment(appointment: Appointment) -> dict:
        return {'id': storage.add_appointment(appointment)}

    return app
