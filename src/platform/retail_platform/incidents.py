"""Incident recordings on the platform: robots upload the MCAP file of an incident (the minute
before and after a bumper hit, a lost robot, a collision-monitor stop, a staff call); the store's
staff and HQ list and download them.

The contract is `retail_common.incidents` (v1): `POST /v1/robots/{robot_id}/incidents` with
the file as the body, `Idempotency-Key` and `Content-Digest: sha-256=:…:` (RFC 9530). The answer
is an `IncidentReceipt`: 201 when stored, 200 (`duplicate`) when the robot already stored that key
with the same bytes; the same key with other bytes is 409, a digest that does not match the body
422, a body that is not a finished MCAP file (no summary) 422, a body over MAX_INCIDENT_BYTES 413.
The bytes are stored in the row, in the same transaction: the receipt means they are committed.

Requests (`IncidentRequests`): the store's staff or HQ ask a robot for its recordings
(`POST /v1/stores/{store_id}/robots/{robot_id}/incident-request`, fleet.py's routes); one open
request per robot (asking again answers the open one); the robot hears of it in its heartbeat's
answer (`incident_request`: the open request's id), uploads with this same path, and reports the
request done in a later heartbeat (`incident_request_done`, with a one-line result).

Tenancy: a robot uploads only for itself (its own store is taken from its registration); staff
with read access to the store (its managers, its region, HQ) list and download; robots do not.
"""
from __future__ import annotations

import hashlib
import io
import json
import struct
import time
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from mcap.exceptions import McapError
from mcap.reader import make_reader
from pydantic import BaseModel

from retail_common.incidents import (MAX_INCIDENT_BYTES, MAX_KEY_CHARS, IncidentReceipt,
                                            content_digest, image_problem, parse_content_digest,
                                            valid_key)
from retail_platform import schema as t
from retail_sync.privacy import find_face_data

MCAP_ERRORS = (McapError, ValueError, EOFError, struct.error, KeyError, IndexError,
               UnicodeDecodeError, OSError, AssertionError)
MAX_REASONS_CHARS = 500


class IncidentInfo(BaseModel):
    id: int
    robot_id: str
    store_id: str
    key: str
    sha256: str
    bytes: int
    reasons: list[str]
    received_at: float


class Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


def incident_reasons(data: bytes) -> list[str]:
    """The reasons an incident recording names (its `incident` metadata record); Refused (422)
    when `data` is not a finished MCAP file (corrupt, truncated, or missing its summary)."""
    try:
        reader = make_reader(io.BytesIO(data))
        summary = reader.get_summary()
        if summary is None:
            raise Refused(422, 'the body is not a finished MCAP file (no summary)')
        _refuse_pictures(summary)
        _refuse_picture_bytes(reader)
        found: list[str] = []
        for record in reader.iter_metadata():
            # a record's values are strings: a base64 or data: image is refused as the privacy
            # guard refuses it in an event (retail_sync.privacy), whatever the record's name
            problem = find_face_data(list(record.metadata.values()), 'values')
            if problem:
                raise Refused(422, f'incident recordings never hold camera images (faces): '
                                   f'metadata record {record.name[:100]!r}: {problem[:200]}')
            if record.name == 'incident' and not found:
                reasons = json.loads(record.metadata.get('reasons', '[]'))
                if isinstance(reasons, list):
                    found = [str(r)[:100] for r in reasons[:20]]
        return found
    except Refused:
        raise
    except MCAP_ERRORS as exc:
        raise Refused(422, f'the body is not a readable MCAP file ({type(exc).__name__})') from None


# The first bytes of a JPEG (JFIF, Exif) or PNG file, and of their base64 text: found in a
# message's bytes, the message carries a picture whatever its type says (a string, a uint8[]).
# Long enough (8-14 bytes) that ordinary sensor data never holds one by chance.
PICTURE_MARKS = (b'\x89PNG\r\n\x1a\n', b'\xff\xd8\xff\xe0\x00\x10JFIF', b'Exif\x00\x00MM\x00*',
                 b'Exif\x00\x00II*\x00', b'iVBORw0KGgo', b'/9j/4AAQSkZJRg', b'data:image/')


def _refuse_picture_bytes(reader: Any) -> None:
    """Refused (422) when a message's bytes hold a JPEG or PNG (PICTURE_MARKS)."""
    for _, channel, message in reader.iter_messages():
        data = bytes(message.data)
        for mark in PICTURE_MARKS:
            if mark in data:
                raise Refused(422, f'incident recordings never hold camera images (faces): a '
                                   f'message on channel {channel.topic[:100]!r} holds a JPEG or '
                                   'PNG picture')


def _refuse_pictures(summary: Any) -> None:
    """Refused (422) when the recording could show a face: a channel whose schema is (or holds) a
    camera image type, or an attachment (the robot's recorder writes none; one could be a photo)."""
    for channel in summary.channels.values():
        schema = summary.schemas.get(channel.schema_id)
        # only a ROS 2 message definition (what the robot's recorder writes) can be read for an
        # image type: a channel without one carries bytes that could be a photo
        if schema is None:
            raise Refused(422, f'incident recordings hold ROS 2 messages with their definitions: '
                               f'channel {channel.topic[:100]!r} has no schema (its messages '
                               'could be anything, a photo too)')
        if schema.encoding != 'ros2msg':
            raise Refused(422, f'incident recordings hold ROS 2 messages with their definitions: '
                               f'channel {channel.topic[:100]!r} has a {schema.encoding[:40]!r} '
                               'schema (a picture in it cannot be ruled out)')
        name = schema.name if schema is not None else ''
        text = schema.data.decode('utf-8', 'replace') if schema is not None else ''
        problem = image_problem(name, text)
        if problem:
            raise Refused(422, f'incident recordings never hold camera images (faces): channel '
                               f'{channel.topic[:100]!r} is {problem[:200]}')
    if summary.attachment_indexes:
        raise Refused(422, 'incident recordings carry no attachments (one could be a photo): '
                           f'{len(summary.attachment_indexes)} found')


def _reasons_text(reasons: list[str]) -> str:
    text = json.dumps(reasons, ensure_ascii=False)
    return text if len(text) <= MAX_REASONS_CHARS else json.dumps(reasons[:1], ensure_ascii=False)[:MAX_REASONS_CHARS]


class Incidents:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def store(self, robot_id: str, key: str, data: bytes, digest: bytes,
              now: float | None = None, sent: bytes | None = None) -> tuple[IncidentReceipt, bool]:
        """Store one recording; (receipt, created). Refused with the HTTP status otherwise.
        `digest` is checked against `sent`, the body as it came (RFC 9530: Content-Digest is
        of the content as sent, so of the gzip bytes when the body is gzipped; default `data`);
        the stored sha256 is of the recording itself (`data`)."""
        sha = hashlib.sha256(data)
        if (sha if sent is None else hashlib.sha256(sent)).digest() != digest:
            raise Refused(422, 'Content-Digest does not match the body as sent (sha-256 of its '
                               'bytes, before any Content-Encoding is undone: RFC 9530)')
        reasons = incident_reasons(data)
        now = time.time() if now is None else now
        for _ in range(2):                        # a concurrent first upload of the same key: read it
            with self.engine.begin() as c:
                store_id = c.execute(sa.select(t.robots.c.store_id)
                                     .where(t.robots.c.robot_id == robot_id)).scalar()
                if store_id is None:
                    raise Refused(404, f'robot {robot_id} is not registered at a store')
                old = self._by_key(c, robot_id, key)
                if old is not None:
                    if old.sha256 != sha.hexdigest():
                        raise Refused(409, f'incident {key} was already stored with other content '
                                           f'(id {old.id}); a new recording needs a new key')
                    return self._receipt(old, duplicate=True), False
                try:
                    with c.begin_nested():
                        new_id = c.execute(t.incidents.insert().values(
                            robot_id=robot_id, store_id=store_id, key=key, sha256=sha.hexdigest(),
                            bytes=len(data), reasons=_reasons_text(reasons), received_at=now,
                            content=data).returning(t.incidents.c.id)).scalar_one()
                except sa.exc.IntegrityError:
                    continue
            with self.engine.connect() as c:
                row = c.execute(self._columns().where(t.incidents.c.id == new_id)).one()
            return self._receipt(row, duplicate=False), True
        raise Refused(409, f'incident {key} is being stored by another request')

    @staticmethod
    def _columns() -> sa.Select:
        return sa.select(*(col for col in t.incidents.c if col.name != 'content'))

    def _by_key(self, c: sa.Connection, robot_id: str, key: str) -> Any:
        return c.execute(self._columns().where(t.incidents.c.robot_id == robot_id,
                                               t.incidents.c.key == key)).first()

    @staticmethod
    def _info(row: Any) -> dict:
        return {'id': row.id, 'robot_id': row.robot_id, 'store_id': row.store_id, 'key': row.key,
                'sha256': row.sha256, 'bytes': row.bytes, 'reasons': json.loads(row.reasons or '[]'),
                'received_at': row.received_at}

    def _receipt(self, row: Any, duplicate: bool) -> IncidentReceipt:
        info = self._info(row)
        del info['received_at']
        return IncidentReceipt(**info, duplicate=duplicate)

    def list(self, store_id: str, limit: int = 100, before: int | None = None) -> list[dict]:
        query = self._columns().where(t.incidents.c.store_id == store_id)
        if before is not None:
            query = query.where(t.incidents.c.id < before)
        with self.engine.connect() as c:
            rows = c.execute(query.order_by(t.incidents.c.id.desc()).limit(limit)).all()
        return [self._info(r) for r in rows]

    def content(self, store_id: str, incident_id: int) -> tuple[dict, bytes] | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(t.incidents).where(t.incidents.c.id == incident_id,
                                                         t.incidents.c.store_id == store_id)).first()
        return None if row is None else (self._info(row), bytes(row.content))


def add_routes(app: FastAPI, incidents: Incidents, caller, robot_scope, store_reader,
               read_limited, responses) -> None:
    upload_body = {'requestBody': {'required': True, 'content': {'application/octet-stream': {
        'schema': {'type': 'string', 'format': 'binary', 'maxLength': MAX_INCIDENT_BYTES}}}}}

    def staff_only(who) -> None:
        if who.role == 'robot':
            raise HTTPException(403, 'a robot credential may not read incident recordings')

    @app.post('/v1/robots/{robot_id}/incidents', status_code=201, response_model=IncidentReceipt,
              summary='Upload an incident recording (MCAP; retail_observe.incident_upload v1; '
                      'idempotent by Idempotency-Key, checked against Content-Digest)',
              responses={200: {'description': 'already stored (same key, same bytes): duplicate',
                               'model': IncidentReceipt},
                         **responses(400, 401, 403, 404, 409, 413, 422, 503)},
              openapi_extra=upload_body)
    async def upload_incident(request: Request, response: Response,
                              robot_id: str = Depends(robot_scope),
                              idempotency_key: str = Header(
                                  alias='Idempotency-Key', min_length=1, max_length=MAX_KEY_CHARS,
                                  pattern=r'^[A-Za-z0-9_][A-Za-z0-9._-]*$',
                                  description='the recording\'s name (a re-upload uses the same)'),
                              digest_header: str = Header(
                                  alias='Content-Digest', min_length=1, max_length=200,
                                  pattern=r'^sha-256=:[A-Za-z0-9+/]{43}=:$',
                                  description='RFC 9530: sha-256 of the body as sent '
                                              '(of the gzip bytes when gzipped)')) -> IncidentReceipt:
        if not valid_key(idempotency_key):
            raise HTTPException(422, 'Idempotency-Key: 1-128 letters, digits, ".", "_" or "-"')
        digest = parse_content_digest(digest_header)
        if digest is None:
            raise HTTPException(422, 'Content-Digest: expected sha-256=:<base64 of 32 bytes>:')
        sent: list[bytes] = []
        data = await read_limited(request, MAX_INCIDENT_BYTES, sent=sent)
        try:
            receipt, created = await run_in_threadpool(incidents.store, robot_id, idempotency_key,
                                                       data, digest, None, sent[0])
        except Refused as exc:
            raise HTTPException(exc.status, str(exc)) from None
        response.status_code = 201 if created else 200
        return receipt

    @app.get('/v1/stores/{store_id}/incidents', response_model=list[IncidentInfo],
             summary='A store\'s incident recordings, newest first (staff and HQ; not robots)',
             responses=responses(401, 403, 404, 422, 503))
    def list_incidents(store_id: str = Depends(store_reader), who=Depends(caller),
                       limit: int = Query(100, ge=1, le=1000),
                       before: int | None = Query(None, ge=1, le=2 ** 31 - 1,
                                                  description='only ids below this (paging)')) -> list[dict]:
        staff_only(who)
        return incidents.list(store_id, limit, before)

    @app.get('/v1/stores/{store_id}/incidents/{incident_id}',
             summary='Download an incident recording (MCAP; Content-Digest: its sha-256)',
             response_class=Response,
             responses={200: {'description': 'the MCAP file',
                              'content': {'application/octet-stream': {
                                  'schema': {'type': 'string', 'format': 'binary'}}}},
                        **responses(401, 403, 404, 422, 503)})
    def download_incident(incident_id: int = Path(ge=1, le=2 ** 31 - 1),
                          store_id: str = Depends(store_reader), who=Depends(caller)) -> Response:
        staff_only(who)
        found = incidents.content(store_id, incident_id)
        if found is None:
            raise HTTPException(404, f'no incident {incident_id} at store {store_id}')
        info, data = found
        return Response(data, media_type='application/octet-stream', headers={
            'Content-Digest': content_digest(data),
            'Content-Disposition': f'attachment; filename="{info["robot_id"]}-{info["key"]}.mcap"'})


class IncidentRequests:
    """Staff's requests that a robot upload its incident recordings (one open per robot)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def request(self, store_id: str, robot_id: str, who: str, now: float | None = None) -> dict | None:
        """The robot's open request (made now when none is open); None when the robot is not
        registered at `store_id`."""
        now = time.time() if now is None else now
        r = t.incident_requests.c
        with self.engine.begin() as c:
            at = c.execute(sa.select(t.robots.c.store_id).where(t.robots.c.robot_id == robot_id)).scalar()
            if at != store_id:
                return None
            row = c.execute(sa.select(t.incident_requests).where(
                r.robot_id == robot_id, r.done_at.is_(None)).order_by(r.id.desc())).first()
            if row is None:
                new_id = c.execute(t.incident_requests.insert().values(
                    robot_id=robot_id, store_id=store_id, requested_by=who[:200],
                    requested_at=now).returning(r.id)).scalar_one()
                row = c.execute(sa.select(t.incident_requests).where(r.id == new_id)).one()
        return _request(row)

    def on_heartbeat(self, robot_id: str, done: int, result: str, now: float | None = None) -> int:
        """Mark the robot's requests up to `done` done (with `result`); returns the open request
        the robot should carry out (0: none)."""
        now = time.time() if now is None else now
        r = t.incident_requests.c
        with self.engine.begin() as c:
            if done > 0:
                c.execute(t.incident_requests.update().where(
                    r.robot_id == robot_id, r.id <= done, r.done_at.is_(None)).values(
                    done_at=now, result=result[:300]))
            return int(c.execute(sa.select(sa.func.max(r.id)).where(
                r.robot_id == robot_id, r.done_at.is_(None))).scalar() or 0)

    def list(self, store_id: str, limit: int = 50) -> list[dict]:
        r = t.incident_requests.c
        with self.engine.connect() as c:
            rows = c.execute(sa.select(t.incident_requests).where(r.store_id == store_id)
                             .order_by(r.id.desc()).limit(limit)).all()
        return [_request(row) for row in rows]


def _request(row: Any) -> dict:
    return {'id': row.id, 'robot_id': row.robot_id, 'store_id': row.store_id,
            'requested_by': row.requested_by, 'requested_at': row.requested_at,
            'state': 'open' if row.done_at is None else 'done', 'done_at': row.done_at,
            'result': row.result}
