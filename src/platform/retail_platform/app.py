"""The chain platform's HTTP API (FastAPI), over PostgreSQL or SQLite (retail_platform.storage).

  POST /v1/robots/{robot_id}/events   gzip/plain JSON batch; an answer per event: accepted /
                                      duplicate / rejected with a reason (Contracts 2)
  GET  /v1/robots/{robot_id}/appointments             the appointments of the robot's store
  POST /v1/stores/{store_id}/appointments             an appointment at a store
  GET  /v1/stores, /v1/stores/{store_id}/events       stores and a store's events (staff)
  POST /v1/admin/stores, POST /v1/admin/appointments, GET /v1/admin/flags
  /v1/robots/{robot_id}/downlink (the robot's only downlink: products, promotions, members),
  products, promotions, members, forget: see chain_api
  GET  /v1/health (alive), /v1/ready (database reachable and migrated), /metrics (Prometheus)
Every endpoint but health and readiness needs `Authorization: Bearer <token>`. Roles: robot
(its own events, its store's data), store_manager (its stores), region (the stores of its
region), analyst (reads everything, writes nothing), admin (everything; the `serve` credential
is an admin). Tokens are stored as SHA-256 hashes and looked up in the database on every request
(revocation holds at once on every API process); the serve credential is compared in constant
time.

Limits on untrusted input (all answered with one JSON line, never a 500):
  request body            MAX_BATCH_BYTES (16 MiB) for events, MAX_DOCUMENT_BYTES (32 MiB) for
                          the products upload, MAX_SMALL_BODY (64 KiB) for small JSON bodies; checked
                          on Content-Length before reading and while streaming (413)
  Content-Encoding        on every body, in read_limited: gzip decompressed in steps, stopped
                          past MAX_DECOMPRESSED (64 MiB) for events and past the endpoint's body
                          limit elsewhere (413); identity as is; any other encoding 415
  events per batch        MAX_BATCH_EVENTS (10 000, the uploader's largest batch_size; 413)
  each event              outbox rules: finite numbers, valid Unicode, data nested at most
                          MAX_DEPTH levels and at most MAX_DATA_BYTES, seq < 2^63, ids of at most
                          128 characters: a bad event is `rejected` with the reason, the others
                          of its batch are stored
The database unreachable (restarting, refusing connections, disk full) is 503 with Retry-After;
a store over its ingest budget is 429 with Retry-After, and so is a backlog's large batch when the
platform's catch-up budget is spent (live batches never draw on it: catching up is paced so that
live uploads go first; Storage.admit_catch_up).
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import os
import re
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

import pydantic_core
import sqlalchemy as sa
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field, ValidationError

from retail_common.events import event_time_problem, member_id_problem, validate_event
from retail_platform.background import Background
from retail_platform.retention import Retention, prune_pass
from retail_platform.storage import (Backpressure, Budget, CatchUpRefused, Credential, EventRow,
                                     Refused, Rejected, Revoked, Storage, who_did)
from retail_sync.outbox import MAX_DATA_BYTES, MAX_DEPTH, MAX_ID_CHARS, check_tree
from retail_sync.privacy import MAX_FLOAT_ARRAY, find_face_data
from retail_sync.transport import ROBOT_ID, valid_robot_id

EVENT_TYPE = re.compile(r'^[a-z][a-z0-9_.]{0,63}$')
MAX_SEQ = 2 ** 63 - 1
MAX_VERSION = 1000
MAX_BATCH_BYTES = 16 * 1024 * 1024
MAX_DECOMPRESSED = 64 * 1024 * 1024
MAX_BATCH_EVENTS = 10_000
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
MAX_SMALL_BODY = 64 * 1024
RETRY_AFTER_DB_S = 5
UPLOADER_CACHE_S = 60.0        # a robot's credential kept for uploads (revocation checked anyway)
UPLOADER_CACHE_SIZE = 100_000
# A batch whose decoded body is larger than this is a backlog draining (the uploader's batches of
# 500 events are ~150 KB; a live robot's few events a few KB): at most LARGE_AT_ONCE of them are
# stored at a time in one API process, the others wait before taking a thread, a database
# connection or the interpreter's lock, so a live batch is never queued behind a whole drain.
LARGE_BATCH_BYTES = 64 * 1024
LARGE_AT_ONCE = 1
# Catch-up pacing: a large batch first draws its events from the platform's catch-up budget
# (Budget.catch_up_rate, a bucket in the database shared by every API process); when it is spent
# the batch is answered 429 + Retry-After before it is parsed or stored (live batches never draw
# on it), so a chain's backlogs together take a bounded share of the server. The refusals are
# logged as one line per CATCH_UP_LOG_S per process (a drain is refused many times a second).
CATCH_UP_LOG_S = 10.0
LOG = logging.getLogger('retail_platform')     # one line per refusal (503, 429) on stderr
STORE_ID = ROBOT_ID       # the same shape: letters, digits, . _ -; at most 64
NO_NUL = r'^[^\x00]*$'    # PostgreSQL text cannot hold NUL: refused on both engines
APPOINTMENT_TIME = (r'^(19[7-9]\d|20\d\d)-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ]([01]\d|2[0-3]):[0-5]\d'
                    r'(:[0-5]\d(\.\d{1,6})?)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?$')


class Appointment(BaseModel):
    model_config = {'extra': 'forbid'}
    robot_id: str | None = Field(None, pattern=ROBOT_ID.pattern,
                                 description='robot that greets the customer (its store is used)')
    store_id: str | None = Field(None, pattern=STORE_ID.pattern, description='store of the visit')
    customer: str = Field(min_length=1, max_length=MAX_ID_CHARS, pattern=NO_NUL,
                          description='pseudonymous member id, e.g. m-000001')
    time: str = Field(max_length=64, pattern=APPOINTMENT_TIME,
                      description='ISO 8601 local time of the appointment (YYYY-MM-DDTHH:MM[:SS], an '
                                  'optional offset), between 1970 and 2099: a booking no clock can hold '
                                  '(9999-12-31T23:30 overflowed the robots\' end time) is refused here')
    purpose: str = Field('', max_length=1000, pattern=NO_NUL)
    note: str = Field('', max_length=4000, pattern=NO_NUL)


class StoreIn(BaseModel):
    model_config = {'extra': 'forbid'}
    id: str = Field(pattern=STORE_ID.pattern)
    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    region_id: str | None = Field(None, pattern=STORE_ID.pattern)


class EventIn(BaseModel):
    """One event as the robot's uploader sends it (the server checks each event itself and
    answers `rejected` with the reason for a bad one, never failing the batch)."""
    event_id: str = Field(min_length=1, max_length=MAX_ID_CHARS, pattern=NO_NUL,
                          description='idempotency key')
    seq: int = Field(ge=0, le=MAX_SEQ, description='the robot\'s sequence number, never reused')
    type: str = Field(pattern=EVENT_TYPE.pattern)
    version: int = Field(1, ge=1, le=MAX_VERSION, description='version of the type\'s payload')
    customer: str = Field('', max_length=MAX_ID_CHARS, pattern=NO_NUL,
                          description='pseudonymous customer id')
    time: float = Field(description='event time, seconds since 1970 (the robot\'s clock)')
    data: dict[str, Any] = Field(description=f'payload, at most {MAX_DATA_BYTES} bytes as JSON '
                                             f'and {MAX_DEPTH} levels; never face data')


class EventBatch(BaseModel):
    events: list[EventIn] = Field(max_length=MAX_BATCH_EVENTS)


class EventResult(BaseModel):
    event_id: Any = Field(description='the event\'s id as sent (null when it had none)')
    status: Literal['accepted', 'duplicate', 'rejected']
    reason: str | None = Field(None, description='why (rejected only)')
    next_seq: int | None = Field(None, description='seq_reused only: the first sequence number '
                                 'after every one the platform holds for this robot (a robot '
                                 'whose stream was lost numbers the refused events on from there)')


class EventsAnswer(BaseModel):
    acked: int = Field(description='accepted + duplicate: the events the robot may delete')
    stored: int
    duplicates: int
    rejected: int
    results: list[EventResult] = Field(description='one per event of the batch, in order')


class Problem(BaseModel):
    detail: str


# What kind of database trouble an answer may name (the first words found in the driver's
# line, lower case). The driver's line itself names the database's address, port, files and
# tables: it goes to the platform's log, never into an answer (anyone may read a 503, also
# with a wrong token: checking a token reads the database; /v1/ready needs none).
OUTAGE_KINDS = (
    (('no space left', 'disk is full', 'disk full', 'could not extend', 'could not write'),
     'the database\'s disk is full'),
    (('read-only', 'readonly'), 'the database is read-only'),
    (('too many clients', 'too many connections', 'connection slots'),
     'the database has no free connection'),
    (('starting up', 'shutting down', 'in recovery', 'terminating connection',
      'administrator command'), 'the database is restarting'),
    (('timeout', 'timed out', 'canceling statement'), 'the database did not answer in time'),
    (('locked', 'busy'), 'the database is busy (locked)'),
    (('refused', 'could not connect', 'connection failed', 'closed the connection',
      'connection is closed', 'server closed', 'connection lost', 'no such host',
      'could not translate host', 'unable to open'), 'the database refused or lost the connection'),
)


def driver_line(exc: BaseException) -> str:
    """The database driver's first line about `exc` (for the platform's log only)."""
    lines = str(getattr(exc, 'orig', None) or exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


def outage_words(exc: BaseException) -> str:
    """What kind of database trouble `exc` is, in words that name no address, file or table."""
    text = driver_line(exc).lower()
    if isinstance(exc, sa.exc.TimeoutError):          # the connection pool's wait
        return 'the database did not answer in time'
    for words, kind in OUTAGE_KINDS:
        if any(w in text for w in words):
            return kind
    return 'the database answered with an error'


def a_credential(role: str) -> str:
    """'an analyst credential', 'a store manager credential': a role in a refusal's words."""
    words = role.replace('_', ' ')
    return f'{"an" if words[:1] in "aeiou" else "a"} {words} credential'


@dataclass
class LargeBatches:
    """One API process's large batches taking turns (LARGE_AT_ONCE at a time); `waiting`: how
    many wait for their turn."""
    turns: asyncio.Semaphore
    waiting: int = 0


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode('utf-8', 'surrogatepass')).hexdigest()


def validate_payload(type_: str, version: int, data: dict) -> None:
    """The single hook for typed events: EventContractError (a ValueError, one line) when `data`
    is not a declared payload of `type_` at `version` (retail_common.events, the same contracts
    the robot's outbox checks before it stores an event)."""
    validate_event(type_, data, version)


# --- untrusted input -------------------------------------------------------------------------
def _text(value: Any, name: str, bad, max_chars: int = MAX_ID_CHARS, min_chars: int = 0) -> str:
    if not isinstance(value, str) or not min_chars <= len(value) <= max_chars:
        raise bad(f'{name} must be a string of {min_chars}-{max_chars} characters')
    try:
        value.encode('utf-8')
    except UnicodeEncodeError:
        raise bad(f'{name} is not valid Unicode (lone surrogate)') from None
    if '\x00' in value:                    # PostgreSQL text cannot hold NUL: one rule, both engines
        raise bad(f'{name} contains a NUL character')
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
    if not isinstance(kind, str) or not EVENT_TYPE.fullmatch(kind):
        raise bad(f'type {kind!r} must match {EVENT_TYPE.pattern}')
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        raise bad('time must be a number (seconds since 1970)')
    try:
        when = float(when)
    except OverflowError:
        raise bad('time is out of range') from None
    if not math.isfinite(when):
        raise bad('time must be a finite number')
    if (problem := event_time_problem(when)) is not None:
        raise bad(problem)
    customer = _text(event.get('customer') or '', 'customer', bad)
    if customer and (problem := member_id_problem(customer)) is not None:
        raise bad(f'customer: {problem}')
    data = event.get('data')
    if not isinstance(data, dict):
        raise bad('data must be an object')
    text = _clean_text(data)
    if text is None:                        # the exact checks, with the reason
        check_tree(data, 'data', MAX_DEPTH, error=bad)
        face = find_face_data(data, 'data')
        if face:
            raise bad(f'face data is never accepted: {face}')
        text = canonical_json(data)
    if len(text.encode()) > MAX_DATA_BYTES:
        raise bad(f'data is more than {MAX_DATA_BYTES} bytes')
    return (event_id, seq, kind, customer, when, text, time.time())


# Every face-data key of retail_sync.privacy contains one of these once lower-cased (its
# normalisation only lower-cases and turns runs of '-' and white space into '_'). The last two:
# privacy's data:image test ignores case the way re.IGNORECASE does, which also matches 'i' with
# the dotless i (U+0131) and the dotted capital I (U+0130, lower-cased to i + U+0307), which
# str.lower() does not turn into 'i' ('data:\u0131mage/' passed this test and not privacy's).
_FACE_WORDS = ('embedding', 'encoding', 'descriptor', 'face', 'landmark', 'image', 'photo',
               'snapshot', 'jpeg', 'jpg', 'png', 'frame', 'data:image/', '\u0131', '\u0307')
# A run of 64 characters a base64 image could be made of (white space escaped by JSON included).
# (Searched only from the start of a run: each character is looked at a bounded number of times.)
_BASE64_RUN = re.compile(r'(?<![A-Za-z0-9+/=\s_\\-])[A-Za-z0-9+/=\s_\\-]{64}')
# pydantic_core.to_json writes what json.dumps(ensure_ascii=False, separators=(',', ':')) writes
# except for floats below 1e-4 in magnitude ('1e-7' for '1e-07', '0.00001' for '1e-05') and
# non-finite ones ('NaN', 'Infinity', which json.dumps refuses with allow_nan=False): a text
# holding none of these is the canonical text itself (tests/platform/test_ingest_validation.py
# compares the two on every float form and on random text).
_NOT_DUMPS_TEXT = ('e-', '0.0000', 'NaN', 'Infinity')


def _has_face_word(lowered: str) -> bool:
    """Whether one of _FACE_WORDS is in `lowered` (written out: a generator over the tuple
    cost ~1 µs an event; tests/platform/test_ingest_validation.py checks the two agree)."""
    return ('embedding' in lowered or 'encoding' in lowered or 'descriptor' in lowered
            or 'face' in lowered or 'landmark' in lowered or 'image' in lowered
            or 'photo' in lowered or 'snapshot' in lowered or 'jpeg' in lowered
            or 'jpg' in lowered or 'png' in lowered or 'frame' in lowered
            or 'data:image/' in lowered or '\u0131' in lowered or '\u0307' in lowered)


def canonical_json(data: Any) -> str:
    """The canonical JSON text of `data` (a decoded JSON value), as stored and compared for
    duplicates: `json.dumps(data, ensure_ascii=False, separators=(',', ':'), allow_nan=False)`,
    computed by pydantic_core's serialiser (Rust, ~8x faster) whenever its text is the same.
    As json.dumps: ValueError for a non-finite number; a lone surrogate is written as it is
    (the text then fails to encode)."""
    try:
        text = pydantic_core.to_json(data).decode()
    except (ValueError, RecursionError):       # lone surrogate, too deep: json.dumps says why
        text = ''
    if not text or 'e-' in text or '0.0000' in text or 'NaN' in text or 'Infinity' in text:
        # (_NOT_DUMPS_TEXT, written out: a generator over the tuple cost ~1 µs an event)
        text = json.dumps(data, ensure_ascii=False, separators=(',', ':'), allow_nan=False)
    return text


def _clean_text(data: dict) -> str | None:
    """The canonical JSON text of `data` when cheap tests on the text prove that the exact
    checks (check_tree: finite numbers, valid Unicode, depth; find_face_data) would all pass;
    None when they must run (they then give the reason). Sufficient conditions only: every
    float is written with '.', 'e+' or 'e-'; a container is a '{' or '['; a lone surrogate fails
    the encoding; a face key or a data:image string contains one of _FACE_WORDS; a base64 image
    string is a run of at least 64 base64 characters. Ingest spent most of its CPU walking each
    event's tree twice; this is one C-speed pass over the text."""
    try:
        text = canonical_json(data)
        text.encode('utf-8')
    except (ValueError, TypeError, RecursionError):     # non-finite, surrogate, not JSON
        return None
    if text.count('{') + text.count('[') > MAX_DEPTH:
        return None
    if text.count('.') + text.count('e+') + text.count('e-') >= MAX_FLOAT_ARRAY:
        return None
    lowered = text.lower()
    if _has_face_word(lowered) or _BASE64_RUN.search(text):
        return None
    return text


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


CONTENT_ENCODINGS = ('gzip', 'x-gzip', 'identity')    # what read_limited decodes (else 415)
# A body must keep coming: no byte for BODY_IDLE_S, or the whole body not there within
# max(BODY_MIN_S, limit / BODY_MIN_RATE) seconds, is 408 and the connection closed (one token
# could otherwise hold API connections open for ever with bodies that never end).
BODY_IDLE_S = 30.0
BODY_MIN_S = 60.0
BODY_MIN_RATE = 64 * 1024          # bytes/s: 64 MB of incident in ~17 min on a poor store link
BODY_IDLE_ENV = 'RETAILBOT_PLATFORM_BODY_IDLE_S'     # tests shorten it


def batch_events(body: bytes) -> int:
    """How many events a decoded batch holds, counted without parsing it (its `"event_id"`
    keys; at least 1): what a catch-up batch draws from the budget before it is parsed."""
    return max(1, body.count(b'"event_id"'))


def _gzip_size(body: bytes) -> int:
    """The inflated size a gzip body declares (its last member's ISIZE trailer, modulo 2^32):
    what decides whether an events batch is large (LARGE_BATCH_BYTES) before it is inflated.
    Only a scheduling hint: the inflation itself is bounded by gunzip_limited."""
    return int.from_bytes(body[-4:], 'little') if len(body) >= 18 else len(body)


async def read_limited(request: Request, limit: int, expanded: int | None = None,
                       sent: list[bytes] | None = None, inflate: bool = True) -> bytes:
    """The request body, decoded as its Content-Encoding says: the one place every endpoint
    that takes a body reads it. Refused with 413 when Content-Length says it is too large
    (before reading anything) or when the streamed bytes pass `limit`; a gzip body is
    decompressed in steps (gunzip_limited) and refused with 413 once it expands past `expanded`
    (default: `limit`); 415 for any other encoding (one line naming the ones accepted).
    `sent`: a list the body as sent (still encoded) is appended to (what RFC 9530's
    Content-Digest is computed over). `inflate=False`: a gzip body is returned as sent (the
    caller inflates it with gunzip_limited, as the events upload does on its worker thread)."""
    encoding = request.headers.get('content-encoding', '').strip().lower()
    if encoding not in ('', *CONTENT_ENCODINGS):
        raise HTTPException(415, f'Content-Encoding {encoding[:40]!r} is not accepted; '
                                 f'send the body plain or as gzip')
    declared = request.headers.get('content-length')
    if declared is not None:
        try:
            if int(declared) > limit:
                raise HTTPException(413, f'body of {declared} bytes; the limit is {limit}')
        except ValueError:
            raise HTTPException(400, 'bad Content-Length') from None
    coding = request.headers.get('transfer-encoding')
    if coding is not None and coding.strip().lower() != 'chunked':
        # RFC 9112 6.1: a transfer coding the server does not understand is answered 501
        # (compression goes in Content-Encoding, which read_limited decodes)
        raise HTTPException(501, f'Transfer-Encoding {coding[:40]!r} is not supported: send the '
                                 'body chunked or with Content-Length, compressed with '
                                 'Content-Encoding: gzip', headers={'Connection': 'close'})
    chunks = bytearray()
    idle_s = float(os.environ.get(BODY_IDLE_ENV, BODY_IDLE_S))
    deadline = time.monotonic() + max(BODY_MIN_S, limit / BODY_MIN_RATE, idle_s)
    stream = request.stream().__aiter__()
    while True:
        wait_s = min(idle_s, deadline - time.monotonic())
        try:
            async with asyncio.timeout(max(wait_s, 0.001)):      # no task per chunk
                chunk = await stream.__anext__()
        except StopAsyncIteration:
            break
        except asyncio.TimeoutError:
            raise HTTPException(408, 'the body stopped coming (no byte for '
                                     f'{idle_s:g} s, or not all there in time)',
                                headers={'Connection': 'close'}) from None
        chunks += chunk
        if len(chunks) > limit:
            raise HTTPException(413, f'body larger than the limit of {limit} bytes')
    if sent is not None:
        sent.append(bytes(chunks))
    if encoding in ('gzip', 'x-gzip') and inflate:
        return await run_in_threadpool(gunzip_limited, bytes(chunks),
                                       limit if expanded is None else expanded)
    return bytes(chunks)


def parse_json(body: bytes) -> Any:
    """The value json.loads gives for `body`, parsed by pydantic_core.from_json (jiter, ~3x
    faster) where it parses: where it gives a value, it is json.loads' one (NaN and Infinity,
    big integers, duplicate keys: the last); what it refuses (a lone surrogate escape, nesting
    past its 200 levels, a byte-order mark, bad JSON) goes to json.loads, which then answers as
    it always did (a value, ValueError or RecursionError)."""
    try:
        return pydantic_core.from_json(body)
    except ValueError:
        return json.loads(body)


def decode_batch(body: bytes, contracts: bool = True) -> list[EventRow | Rejected]:
    """A decoded events body as rows to store and Rejected events (check_event), or
    HTTPException: 400 not JSON, 422 not `{"events": [...]}` or nested too deeply, 413 too many
    events."""
    try:
        batch = parse_json(body)
    except RecursionError:
        raise HTTPException(422, f'body nested too deeply (data at most {MAX_DEPTH} levels)') from None
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, 'body is not JSON') from None
    events = batch.get('events') if isinstance(batch, dict) else None
    if not isinstance(events, list):
        raise HTTPException(422, 'body must be {"events": [...]}')
    if len(events) > MAX_BATCH_EVENTS:
        raise HTTPException(413, f'{len(events)} events in one batch; at most {MAX_BATCH_EVENTS}')
    return [check_event(event, index, contracts) for index, event in enumerate(events)]


def check_event(event: Any, index: int, contracts: bool = True) -> EventRow | Rejected:
    """One event of a batch: a row to store, or Rejected with the reason. `contracts`: the
    payload must also be a declared type at its version (retail_common.events); without it only
    the generic outbox rules apply (as `retailbot sync emit` and `Outbox.append` do)."""
    try:
        event_id, seq, kind, customer, when, text, _ = _validate_event(event, index)
    except HTTPException as exc:
        given = event.get('event_id') if isinstance(event, dict) else None
        if not (isinstance(given, str) and len(given) <= MAX_ID_CHARS and _encodable(given)):
            given = None
        return Rejected(given, str(exc.detail))
    version = event.get('version', 1)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        return Rejected(event_id, f'events[{index}]: version must be an integer from 1 to '
                                  f'{MAX_VERSION}')
    try:
        if contracts:
            validate_payload(kind, version, event['data'])
    except ValueError as exc:
        return Rejected(event_id, f'events[{index}]: {kind} v{version}: '
                                  f'{str(exc).splitlines()[0] if str(exc) else "invalid"}')
    return EventRow(event_id, seq, kind, version, customer, when, text)


def _encodable(text: str) -> bool:
    try:
        text.encode('utf-8')
        return True
    except UnicodeEncodeError:
        return False


# --- command-line helpers (retailbot platform ...) -------------------------------------------
def export_events(target: str | Path, robot_id: str) -> Iterator[dict]:
    """A robot's stored events in sequence order (for `retailbot platform export`)."""
    storage = Storage(str(target), pool_size=1)
    try:
        yield from storage.export(robot_id)
    finally:
        storage.close()


# --- the app ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Caller:
    credential: Credential

    @property
    def role(self) -> str:
        return self.credential.role

    @property
    def admin(self) -> bool:
        return self.credential.role == 'admin'

    @property
    def robot_id(self) -> str | None:
        return self.credential.robot_id


def _responses(*codes: int) -> dict:
    if 413 in codes:    # an endpoint that reads a body (read_limited) also answers these two
        codes = (*codes, 408, 501)
    words = {304: 'not modified (If-None-Match matched the ETag)', 400: 'not JSON / not gzip',
             401: 'missing or wrong bearer token', 403: 'this credential may not do that',
             404: 'no such robot, store or document', 408: 'body not sent within the time '
             'allowed', 409: 'already exists',
             413: 'body, decompressed body or batch too large',
             415: 'Content-Encoding other than gzip or identity',
             422: 'invalid body or parameter', 429: 'over an ingest budget: the store\'s, or '
             'the platform\'s for catching up (a backlog batch; Retry-After: seconds)',
             501: 'a Transfer-Encoding other than chunked',
             503: 'database unavailable (Retry-After: seconds)'}
    return {code: {'description': words[code],
                   **({'model': Problem} if code != 304 else {})} for code in codes}


AUTH = (401, 403, 422, 503)


def create_app(target: str | Path, token: str, budget: Budget = Budget(),
               pool_size: int = 16, migrate: bool = True, contracts: bool = True,
               member_window_s: float | None = None,
               retention: Retention = Retention(),
               funnel_refresh_s: float = 10.0, forget_ledger: str | None = None,
               ledger_check_s: float = 60.0) -> FastAPI:
    """The platform app over `target` (a postgresql:// URL or an SQLite file); `token` is the
    admin credential (ValueError when empty). DatabaseError when the database cannot be used
    or is behind the schema head and `migrate` is False. `forget_ledger`: the file every forget
    is also written to (retail_platform.forget_ledger); None: the target's default (beside an
    SQLite file, none for PostgreSQL), '': none. With `migrate` (one process, no `serve` parent
    that did it) the ledger's forgets the database lacks are carried out again first; every
    `ledger_check_s` the database is checked for a restore made while serving (Chain.check_restored)."""
    from retail_platform.database import DatabaseError, revision_state, upgrade
    if not token:
        raise ValueError('the admin token must not be empty')
    if not LOG.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter('platform: %(message)s'))
        LOG.addHandler(handler)
        LOG.setLevel(logging.INFO)
        LOG.propagate = False
    storage = Storage(str(target), pool_size=pool_size, budget=budget)
    try:
        if migrate:
            upgrade(storage.engine)
        else:
            state = revision_state(storage.engine)
            if state.problem():
                raise DatabaseError(state.problem())
    except BaseException:
        storage.close()
        raise
    admin_digest = hashlib.sha256(token.encode()).digest()

    def caller(request: Request) -> Caller:
        scheme, _, given = request.headers.get('authorization', '').partition(' ')
        given = given.strip()
        if scheme.lower() == 'bearer' and given:
            if hmac.compare_digest(hashlib.sha256(given.encode('utf-8', 'surrogatepass')).digest(),
                                   admin_digest):
                return Caller(Credential('admin'))
            credential = storage.credential(given)
            if credential is not None:
                return Caller(credential)
        raise HTTPException(401, 'missing or wrong bearer token',
                            headers={'WWW-Authenticate': 'Bearer'})

    def roles(*allowed: str):
        def check(who: Caller = Depends(caller)) -> Caller:
            if who.role not in allowed:
                raise HTTPException(403, f'{a_credential(who.role)} may not do this')
            return who
        return check

    def robot_scope(robot_id: str, who: Caller = Depends(caller)) -> str:
        if not valid_robot_id(robot_id):     # 404, not 422: an uploader must never quarantine
            raise HTTPException(404, f'no robot {robot_id[:80]!r}: ids match {ROBOT_ID.pattern}')
        if who.admin:
            return robot_id
        if who.robot_id != robot_id:
            raise HTTPException(403, f'{a_credential(who.role)} may not act for robot {robot_id}')
        return robot_id

    def store_access(store_id: str, who: Caller, write: bool) -> None:
        if not STORE_ID.fullmatch(store_id):      # whole: `$` matches before a final newline
            raise HTTPException(404, f'no store {store_id[:80]!r}')
        exists, region = storage.store_region(store_id)
        if not exists:
            raise HTTPException(404, f'no store {store_id[:80]!r}')
        c = who.credential
        allowed = (c.role == 'admin' or (c.role == 'analyst' and not write)
                   or (c.role == 'store_manager' and store_id in c.stores)
                   or (c.role == 'region' and region is not None and region == c.region)
                   or (c.role == 'robot' and not write and c.store_id == store_id))
        if not allowed:
            raise HTTPException(403, f'{a_credential(c.role)} may not '
                                     f'{"change" if write else "read"} store {store_id}\'s data')

    def store_reader(store_id: str, who: Caller = Depends(caller)) -> str:
        store_access(store_id, who, write=False)
        return store_id

    def store_writer(store_id: str, who: Caller = Depends(caller)) -> str:
        store_access(store_id, who, write=True)
        return store_id

    background = Background(LOG)       # every background task, registered below

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await background.start()
        watcher = asyncio.create_task(fleet_module.watch_loop(app.state.fleet.pulse))
        try:
            yield
        finally:
            watcher.cancel()
            await background.stop()

    app = FastAPI(title='Retailbot chain platform', version='2', openapi_url=None, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description='Events ingest, per-store downlink and credentials of the chain. '
                              'Every endpoint but /v1/health and /v1/ready needs a bearer token.')
    app.state.storage = storage
    app.state.background = background

    async def database_down(request: Request, exc: Exception) -> JSONResponse:
        detail = 'database unavailable: ' + outage_words(exc)
        LOG.warning('%s %s: 503 %s (Retry-After %d s): %s', request.method, request.url.path,
                    detail, RETRY_AFTER_DB_S, driver_line(exc))
        return JSONResponse({'detail': detail}, status_code=503,
                            headers={'Retry-After': str(RETRY_AFTER_DB_S)})

    unavailable: list[type[Exception]] = [sa.exc.OperationalError, sa.exc.InterfaceError,
                                          sa.exc.TimeoutError]
    if storage.postgresql:       # the COPY path talks to psycopg directly
        import psycopg
        unavailable += [psycopg.OperationalError, psycopg.InterfaceError]
    for kind in unavailable:
        app.add_exception_handler(kind, database_down)

    @app.exception_handler(sa.exc.IntegrityError)
    async def lost_a_race(request: Request, exc: sa.exc.IntegrityError) -> JSONResponse:
        """A write that lost a race on a unique key to a concurrent request (PostgreSQL: two
        requests creating one store or group at once): 409, one line, never a 500."""
        detail = 'conflicting concurrent change, try again'    # the key's name: the log only
        LOG.warning('%s %s: 409 %s: %s', request.method, request.url.path, detail,
                    driver_line(exc))
        return JSONResponse({'detail': detail}, status_code=409, headers={'Retry-After': '1'})

    @app.exception_handler(Backpressure)
    async def over_budget(request: Request, exc: Backpressure) -> JSONResponse:
        LOG.warning('%s %s: 429 %s', request.method, request.url.path, exc)
        return JSONResponse({'detail': str(exc)}, status_code=429,
                            headers={'Retry-After': str(exc.retry_after)})

    paced = {'since': 0.0, 'count': 0}        # catch-up refusals not logged yet (this process)

    @app.exception_handler(CatchUpRefused)
    async def catching_up(request: Request, exc: CatchUpRefused) -> JSONResponse:
        paced['count'] += 1
        now = time.monotonic()
        if now - paced['since'] >= CATCH_UP_LOG_S:
            LOG.warning('%s %s: 429 %s (%d catch-up batch(es) asked to wait in this process '
                        'since the last such line)', request.method, request.url.path, exc,
                        paced['count'])
            paced['since'], paced['count'] = now, 0
        return JSONResponse({'detail': str(exc)}, status_code=429,
                            headers={'Retry-After': str(exc.retry_after)})

    plain_openapi = app.openapi

    def openapi_with_event_models() -> dict:
        if app.openapi_schema is None:
            document = plain_openapi()
            batch = EventBatch.model_json_schema(ref_template='#/components/schemas/{model}')
            components = document.setdefault('components', {}).setdefault('schemas', {})
            components.update(batch.pop('$defs', {}))
            components['EventBatch'] = batch
            for methods in document.get('paths', {}).values():     # read_limited's answers
                for operation in methods.values():
                    if isinstance(operation, dict) and 'requestBody' in operation:
                        answers = operation.setdefault('responses', {})
                        for code, answer in _responses(413, 415).items():
                            answers.setdefault(str(code), {
                                'description': answer['description'], 'content': {
                                    'application/json': {'schema': {
                                        '$ref': '#/components/schemas/Problem'}}}})
            app.openapi_schema = document
        return app.openapi_schema
    app.openapi = openapi_with_event_models

    @app.get('/openapi.json', include_in_schema=False, dependencies=[Depends(caller)])
    def openapi() -> dict:
        return app.openapi()

    @app.get('/v1/health', summary='The process is alive (no token needed)')
    def health() -> dict:
        return {'ok': True}

    @app.get('/v1/ready', summary='The database answers and is at the schema head (no token)',
             responses=_responses(503))
    def ready() -> JSONResponse:
        try:
            state = revision_state(storage.engine)
        except sa.exc.SQLAlchemyError as exc:
            LOG.warning('GET /v1/ready: 503: %s', driver_line(exc))
            return JSONResponse({'ready': False, 'detail': outage_words(exc)},
                                status_code=503, headers={'Retry-After': str(RETRY_AFTER_DB_S)})
        detail = state.problem()
        if detail:
            return JSONResponse({'ready': False, 'detail': detail}, status_code=503,
                                headers={'Retry-After': str(RETRY_AFTER_DB_S)})
        return JSONResponse({'ready': True, 'schema': state.current})

    # Uploads skip the separate credential read: a robot's credential is kept in this process
    # for at most UPLOADER_CACHE_S, and the ingest transaction itself checks, in its first
    # statement, that the token is still not revoked (revocation holds at once on every process;
    # a revoked token's batch is rolled back and answered 401). Other endpoints read it per request.
    uploaders: dict[str, tuple[float, Credential]] = {}
    large = app.state.large_batches = LargeBatches(asyncio.Semaphore(LARGE_AT_ONCE))

    async def uploader(robot_id: str, request: Request) -> tuple[str, str | None]:
        """(robot id, the hash of the token the ingest transaction must find not revoked; None
        for the admin credential). A coroutine: a kept credential costs no worker thread (a
        plain function dependency is run on one, a thread hop per upload); the credential's
        read from the database, when not kept, runs on one."""
        scheme, _, given = request.headers.get('authorization', '').partition(' ')
        given = given.strip()
        digest = token_hash(given) if scheme.lower() == 'bearer' and given else None
        kept = uploaders.get(digest) if digest else None
        if kept is not None and kept[0] > time.monotonic():
            credential = kept[1]
        else:
            credential = (await run_in_threadpool(caller, request)).credential
            if credential.role == 'robot' and digest:
                if len(uploaders) >= UPLOADER_CACHE_SIZE:
                    uploaders.clear()
                uploaders[digest] = (time.monotonic() + UPLOADER_CACHE_S, credential)
        robot_id = robot_scope(robot_id, Caller(credential))
        return robot_id, (digest if credential.role == 'robot' else None)

    def store_batch(robot_id: str, body: bytes, gzipped: bool, token: str | None = None,
                    timing: list[float] | None = None) -> dict:
        if timing is not None:
            timing.append(time.perf_counter())          # when a worker thread took it
        if gzipped:
            body = gunzip_limited(body)
        items = decode_batch(body, contracts)
        try:                                            # the store's budget checked inside
            outcome = storage.store_events(robot_id, items, token)
        except Revoked:
            uploaders.pop(token or '', None)
            raise HTTPException(401, 'missing or wrong bearer token',
                                headers={'WWW-Authenticate': 'Bearer'}) from None
        return {'acked': outcome.accepted + outcome.duplicate, 'stored': outcome.accepted,
                'duplicates': outcome.duplicate, 'rejected': outcome.rejected,
                'results': outcome.results}

    def admit_catch_up(body: bytes, gzipped: bool) -> tuple[bytes, bool]:
        """A large batch's draw on the platform's catch-up budget: (the body inflated, False)
        when admitted; CatchUpRefused (429 + Retry-After) when the budget is spent."""
        if gzipped:
            body = gunzip_limited(body)
        events = batch_events(body)
        wait = storage.admit_catch_up(events)
        if wait:
            raise CatchUpRefused(events, wait)
        return body, False

    @app.post('/v1/robots/{robot_id}/events', response_model=EventsAnswer,
              summary='Store a batch of a robot\'s events (idempotent by event_id; an answer '
                      'per event)',
              description='Body: `{"events": [...]}`, plain or `Content-Encoding: gzip`. Each '
                          'event is answered `accepted` (stored now), `duplicate` (stored '
                          'before with the same content) or `rejected` with a reason '
                          '(invalid, `event_id_reused`, `seq_reused`); the robot deletes '
                          'exactly the accepted and duplicate ids. Only after the answer is '
                          'the data durable (fsynced / committed). The answer\'s '
                          '`Server-Timing` header says where the time went (ms): `read` the '
                          'body, `turn` a large batch\'s catch-up check and wait for its turn, '
                          '`queue` waiting for a worker thread, `store` checking and storing, '
                          '`total`. A large (backlog) batch over the platform\'s catch-up '
                          'budget is answered 429 + Retry-After before it is stored.',
              responses={200: {'description': 'an answer per event', 'headers': {
                  'Server-Timing': {'description': 'where the time went, ms: read, turn, queue, '
                                                   'store, total', 'schema': {'type': 'string'}}}},
                  **_responses(400, 401, 403, 404, 413, 422, 429, 503)},
              openapi_extra={'requestBody': {'required': True, 'content': {
                  'application/json': {'schema': {'$ref': '#/components/schemas/EventBatch'}}}}})
    async def post_events(request: Request,
                          who: tuple[str, str | None] = Depends(uploader)) -> Response:
        began = time.perf_counter()
        # gzip is inflated (gunzip_limited, the same bound) on the worker thread that stores
        # the batch: one thread hop per upload, not two
        body = await read_limited(request, MAX_BATCH_BYTES, MAX_DECOMPRESSED, inflate=False)
        gzipped = request.headers.get('content-encoding', '').strip().lower() in ('gzip', 'x-gzip')
        read = time.perf_counter()
        timing: list[float] = []
        if len(body) <= LARGE_BATCH_BYTES and (not gzipped or _gzip_size(body) <= LARGE_BATCH_BYTES):
            turn = read
            answer = await run_in_threadpool(store_batch, who[0], body, gzipped, who[1], timing)
        else:                                           # a drain's batch: paced, then in turn
            if storage.budget.catch_up_rate > 0:
                body, gzipped = await run_in_threadpool(admit_catch_up, body, gzipped)
            large.waiting += 1
            try:
                await large.turns.acquire()
            finally:
                large.waiting -= 1
            turn = time.perf_counter()
            try:
                answer = await run_in_threadpool(store_batch, who[0], body, gzipped, who[1], timing)
            finally:
                large.turns.release()
        done = time.perf_counter()
        taken = timing[0] if timing else turn
        # The answer is built here in EventsAnswer's shape (tests check it against the model):
        # returned as it is, not validated and re-encoded field by field per event (that was a
        # fifth of an API process's CPU per batch of 500), and written by pydantic_core's
        # serialiser (JSONResponse's json.dumps took ~5x its time).
        return Response(pydantic_core.to_json(answer), media_type='application/json', headers={
            'Server-Timing': f'read;dur={1000 * (read - began):.1f}, turn;dur='
                             f'{1000 * (turn - read):.1f}, queue;dur={1000 * (taken - turn):.1f}, '
                             f'store;dur={1000 * (done - taken):.1f}, '
                             f'total;dur={1000 * (done - began):.1f}'})

    @app.get('/v1/robots/{robot_id}/appointments',
             summary='VIP appointments at the robot\'s store',
             responses={200: {'description': 'JSON list', 'content': {'application/json': {
                 'schema': {'type': 'array', 'items': {'type': 'object'}}}}},
                 **_responses(304, 401, 403, 404, 503)})
    def get_appointments(request: Request, robot_id: str = Depends(robot_scope)) -> Response:
        content = json.dumps(storage.appointments(robot_id), ensure_ascii=False).encode()
        etag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
        if request.headers.get('if-none-match') == etag:
            return Response(status_code=304, headers={'ETag': etag})
        return Response(content, media_type='application/json', headers={'ETag': etag})

    async def small_json(request: Request, model: type[BaseModel], what: str) -> Any:
        body = await read_limited(request, MAX_SMALL_BODY)
        try:
            value = model.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = '.'.join(str(part) for part in first.get('loc', ()))
            raise HTTPException(422, f'{what} refused: {where}: {first.get("msg")}') from None
        check_tree(value.model_dump(), what, 2,
                   error=lambda message: HTTPException(422, f'{what} refused: {message}'))
        for key, field in value.model_dump().items():
            if isinstance(field, str) and '\x00' in field:
                raise HTTPException(422, f'{what} refused: {key} contains a NUL character')
        return value

    def body_of(model: type[BaseModel]) -> dict:
        return {'requestBody': {'required': True, 'content': {'application/json': {
            'schema': model.model_json_schema()}}}}

    @app.post('/v1/admin/appointments', dependencies=[Depends(roles('admin'))],
              summary='Create a VIP appointment (admin; robot_id or store_id)',
              responses=_responses(401, 403, 404, 413, 422, 503), openapi_extra=body_of(Appointment))
    async def post_appointment(request: Request) -> dict:
        a = await small_json(request, Appointment, 'appointment')
        if a.store_id is not None and not storage.store_region(a.store_id)[0]:
            raise HTTPException(404, f'no store {a.store_id!r}')
        return {'id': await run_in_threadpool(app.state.chain.add_appointment, a.store_id,
                                              a.robot_id, a.customer, a.time, a.purpose, a.note)}

    @app.post('/v1/stores/{store_id}/appointments',
              summary='Create a VIP appointment at a store',
              responses=_responses(401, 403, 404, 413, 422, 503), openapi_extra=body_of(Appointment))
    async def post_store_appointment(request: Request,
                                     store_id: str = Depends(store_writer)) -> dict:
        a = await small_json(request, Appointment, 'appointment')
        return {'id': await run_in_threadpool(app.state.chain.add_appointment, store_id, None,
                                              a.customer, a.time, a.purpose, a.note)}

    @app.get('/v1/stores', summary='The stores this credential may see',
             responses=_responses(401, 403, 503))
    def list_stores(who: Caller = Depends(caller)) -> list[dict]:
        c = who.credential
        stores = storage.stores()
        if c.role in ('admin', 'analyst'):
            return stores
        if c.role == 'region':
            return [s for s in stores if s['region_id'] == c.region]
        if c.role == 'store_manager':
            return [s for s in stores if s['id'] in c.stores]
        raise HTTPException(403, f'{a_credential(c.role)} may not list stores')

    @app.post('/v1/admin/stores', dependencies=[Depends(roles('admin'))],
              summary='Add a store (admin)', responses=_responses(401, 403, 404, 409, 413, 422, 503),
              openapi_extra=body_of(StoreIn))
    async def add_store(request: Request) -> dict:
        s = await small_json(request, StoreIn, 'store')
        try:
            await run_in_threadpool(storage.add_store, s.id, s.name, s.region_id)
        except Refused as exc:
            code = 404 if str(exc).startswith('no region') else 409
            raise HTTPException(code, str(exc)) from None
        return {'id': s.id}

    @app.get('/v1/stores/{store_id}/events', summary='A store\'s events stored after a cursor, in '
             'commit order (staff; not robots)', responses=_responses(401, 403, 404, 422, 503))
    def store_events(store_id: str = Depends(store_reader), who: Caller = Depends(caller),
                     after: str = Query('', max_length=200, pattern=r'^[0-9A-Za-z._:-]*$',
                                        description='cursor: `next` of the previous page (empty: '
                                                    'from the start); a position in commit order'),
                     limit: int = Query(1000, ge=1, le=10000)) -> dict:
        if who.role == 'robot':
            raise HTTPException(403, 'a robot credential may not read events')
        try:
            events, following = storage.store_events_page(store_id, after, limit)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return {'events': events, 'next': following}

    # --- fleet: heartbeats, tasks, staff calls (fleet.py); desired-state rollouts (rollouts.py)
    from retail_platform import fleet as fleet_module, rollouts as rollouts_module

    def visible_stores(who: Caller) -> list[str] | None:
        c = who.credential
        if c.role in ('admin', 'analyst'):
            return None
        if c.role == 'region':
            return [s['id'] for s in storage.stores() if s['region_id'] == c.region]
        if c.role == 'store_manager':
            return sorted(c.stores)
        raise HTTPException(403, f'{a_credential(c.role)} may not read the fleet')

    fleet = fleet_module.Fleet(storage.engine)
    app.state.fleet = fleet
    app.state.rollouts = rollouts_module.Rollouts(storage.engine)
    fleet_deps = fleet_module.Deps(caller, robot_scope, store_reader, store_writer, _responses,
                                   read_limited, visible_stores,
                                   lambda who: who_did(who.credential))
    fleet_module.add_routes(app, fleet, fleet_deps)
    background.add('fleet sweep', fleet_module.SWEEP_S, fleet_module.sweep_logged(fleet),
                   period=lambda: fleet.sweep_every_s)
    rollouts_module.add_routes(app, app.state.rollouts, fleet_deps, roles('admin'),
                               roles('admin', 'analyst'))

    @app.get('/v1/admin/flags', dependencies=[Depends(roles('admin', 'analyst'))],
             summary='What the platform flagged (sequence reuse, replaced tokens)',
             responses=_responses(401, 403, 503))
    def get_flags() -> list[dict]:
        return storage.flags()

    @app.get('/metrics', dependencies=[Depends(roles('admin', 'analyst'))],
             summary='Prometheus metrics (text format)', response_class=PlainTextResponse,
             responses=_responses(401, 403, 503))
    def metrics() -> PlainTextResponse:
        lines = []
        families = (('accepted', 'retailbot_events_accepted_total', 'counter',
                     'events stored'),
                    ('duplicate', 'retailbot_events_duplicate_total', 'counter',
                     'events answered duplicate'),
                    ('rejected', 'retailbot_events_rejected_total', 'counter',
                     'events rejected'),
                    ('last_seen', 'retailbot_store_last_seen_seconds', 'gauge',
                     'time of the store\'s last upload (seconds since 1970)'),
                    ('last_lag_s', 'retailbot_store_ingest_lag_seconds', 'gauge',
                     'now minus the newest event time of the store\'s last upload'))
        stats = storage.stats()
        for key, name, kind, words in families:
            lines += [f'# HELP {name} {words}', f'# TYPE {name} {kind}']
            lines += [f'{name}{{store="{_label(s["store_id"])}"}} {float(s[key])!r}' for s in stats]
        lines += fleet_module.metrics_lines(fleet, _label)
        return PlainTextResponse('\n'.join(lines) + '\n',
                                 media_type='text/plain; version=0.0.4; charset=utf-8')

    # The chain's store data and downlink (products, promotions, members, forget): chain_api.
    from retail_platform.chain import DEFAULT_MEMBER_WINDOW_S, Chain
    from retail_platform.chain_api import add_chain_routes
    from retail_platform.forget_ledger import ForgetLedger, default_for
    ledger_path = default_for(str(target)) if forget_ledger is None else forget_ledger
    app.state.chain = Chain(storage.engine, DEFAULT_MEMBER_WINDOW_S if member_window_s is None
                            else member_window_s, ledger=ForgetLedger(ledger_path) if ledger_path else None)
    if migrate:
        again, problems = app.state.chain.reapply_ledger()
        for line in problems:
            LOG.warning(line)
        if again:
            LOG.warning(f'forget ledger {ledger_path}: {len(again)} member(s) forgotten again '
                        '(the database did not list them: restored from a backup?)')
    add_chain_routes(app, app.state.chain, caller, roles, robot_scope, store_access)
    from retail_platform import loop_api, pages        # receipts, funnel, profiles, HQ pages
    loop_api.register(app, storage, caller, store_reader, store_writer, read_limited, _responses)
    pages.register(app, storage, admin_digest)
    # Incident recordings robots upload (MCAP), listed and downloaded by the store's staff.
    from retail_platform import incidents as incidents_module
    app.state.incidents = incidents_module.Incidents(storage.engine)
    app.state.incident_requests = incidents_module.IncidentRequests(storage.engine)
    incidents_module.add_routes(app, app.state.incidents, caller, robot_scope, store_reader,
                                read_limited, _responses)
    from retail_platform import campaigns_api          # HQ's campaigns, robots' offers
    campaigns_api.register(app, app.state.chain, storage, caller, roles, robot_scope)
    from retail_platform.funnel import SPACING as FUNNEL_SPACING
    from retail_platform.funnel import refresh_once     # the funnel's rollups, off the request path
    background.add('funnel refresh', funnel_refresh_s,
                   lambda: refresh_once(storage.engine, spacing=FUNNEL_SPACING))
    if app.state.chain.ledger is not None:
        def ledger_check() -> None:
            again = app.state.chain.check_restored()
            if again:
                LOG.warning(f'forget ledger {ledger_path}: {len(again)} member(s) forgotten again '
                            '(the database lost their forget while serving: restored from a backup?)')
        app.state.chain.watch_restores()
        background.add('forget ledger check', ledger_check_s, ledger_check, at_start=False, jitter=0.2)
    background.add('pruner', retention.every_s,
                   lambda: prune_pass(storage.engine, app.state.chain, retention),
                   at_start=False, jitter=0.1)
    return app


def _label(value: str) -> str:
    return value.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')
