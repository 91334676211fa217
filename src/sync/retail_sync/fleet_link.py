"""The robot's side of the fleet over HTTP (no rclpy): heartbeats, staff calls up, staff's
messages down, and the desired state brought to the data dir safely.

Desired state: the document is fetched when a heartbeat's answer names a version the robot does
not run, checked with `retail_sync.fleet.check_desired` (the rules of the robot's own files),
then written to `<data_dir>/desired.json` by temp file, fsync and `os.replace` — a reader sees
the old version or the new one, never half. A refused document leaves the last good one in place
and is reported in the next heartbeat (`desired_error`), which halts the rollout.

Staff messages: the robot keeps a cursor (the last message id it handed to the speech) in
`<data_dir>/.fleet_state.json`, so after a restart it neither repeats nor skips one.

Staff calls: a call is committed to `<data_dir>/fleet_calls.sqlite3` (SQLite, synchronous=FULL)
before `raise_call` returns and stays there until the platform's answer acknowledges it by id
(`{"id": ..., "duplicate": ...}`: the platform stores calls idempotently by call_id, so a call
sent twice across a restart is one call); only then is that call_id deleted. A sync agent
restarted with calls waiting sends them first, oldest first. At most MAX_PENDING_CALLS wait (the
oldest is dropped with a log line when a newer one arrives past that); a call refused as invalid
(422) or as a call_id already used for another call (409) is logged and moved out of the queue
into the file's `refused` table with the platform's reason (the newest MAX_PENDING_CALLS kept;
counted on the agent's diagnostics as `staff_calls_refused`): a customer's request for help is
never deleted without a trace (it was, with one log line, before session 13). A 429 (the
platform folds a robot's calls into its one open call, at most one every few seconds) or 503 keeps
the calls and sends none before its Retry-After (at most MAX_RETRY_AFTER_S).
"""
from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable

import httpx
from pydantic import TypeAdapter, ValidationError

from retail_sync.fleet import (DesiredState, Heartbeat, HeartbeatAnswer, StaffCall,
                               StaffMessage, check_desired)
from retail_sync.transport import capped_request, platform_client, set_token
from retail_sync.downlink import atomic_write
from retail_sync.privacy import ERASING_PRAGMAS

DESIRED_FILE = 'desired.json'
STATE_FILE = '.fleet_state.json'
CALLS_FILE = 'fleet_calls.sqlite3'
MAX_DESIRED_BYTES = 1024 * 1024
MAX_VERSION = 2 ** 31 - 1          # Heartbeat.desired_version's bound
MAX_PENDING_CALLS = 100
MAX_RETRY_AFTER_S = 300.0      # a platform's Retry-After is honoured up to this
DEFAULT_RETRY_S = 5.0          # a 429/503 without one
STAFF_INTENTS = {'answer': 'staff_answer', 'say': 'staff_words'}   # RobotReply.intent
MESSAGES = TypeAdapter(list[StaffMessage])


class LinkError(Exception):
    """The platform could not be reached or answered with an error (one line); `status` is the
    HTTP status (0: unreachable), `retry_after` its Retry-After in seconds (0: none)."""

    def __init__(self, text: str, status: int = 0, retry_after: float = 0.0) -> None:
        super().__init__(text)
        self.status = status
        self.retry_after = retry_after


class FleetLink:
    def __init__(self, platform_url: str, token: str, robot_id: str, data_dir: str | Path,
                 ca_file: str = '', client: httpx.Client | None = None,
                 log: Callable[[str], None] = print) -> None:
        self.base = platform_url.rstrip('/') + f'/v1/robots/{robot_id}'
        self.client = client or platform_client(token, ca_file, timeout_s=10.0)
        self.data_dir = Path(data_dir)
        self.log = log
        self.calls = CallQueue(self.data_dir / CALLS_FILE, log)
        self.calls_not_before = 0.0          # monotonic: a 429/503's Retry-After on staff calls
        state = self._read_state()
        self.cursor = int(state.get('cursor', 0))
        self.desired_version = int(state.get('desired_version', 0))
        self.desired_error = ''
        self.refused_version = 0
        self.incident_done = int(state.get('incident_done', 0))
        self.incident_result = str(state.get('incident_result', ''))[:300]

    def set_token(self, token: str) -> None:
        set_token(self.client, token)

    def close(self) -> None:
        self.client.close()
        self.calls.close()

    # --- HTTP ---------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """The platform's answer, read (decoded) up to MAX_DESIRED_BYTES + 1 bytes and no further:
        a longer one (a gzip bomb too) is cut there, so it fails its checks instead of filling
        the robot's memory (the whole body was read before its size was looked at)."""
        try:
            response = capped_request(self.client, method, self.base + path, MAX_DESIRED_BYTES, **kwargs)
        except httpx.HTTPError as exc:
            raise LinkError(f'platform unreachable: {type(exc).__name__}: {exc}') from None
        if response.status_code >= 400:
            try:
                detail = str(response.json().get('detail', ''))[:200]
            except (ValueError, AttributeError):
                detail = response.text[:200]
            raise LinkError(f'{method} {path}: {response.status_code} {detail}',
                            response.status_code, _retry_after(response))
        return response

    def heartbeat(self, beat: Heartbeat) -> HeartbeatAnswer:
        beat = beat.model_copy(update={'desired_version': self.desired_version,
                                       'desired_error': self.desired_error,
                                       'desired_refused': self.refused_version
                                       if self.desired_error else 0,
                                       'incident_request_done': self.incident_done,
                                       'incident_result': self.incident_result})
        response = self._request('POST', '/heartbeat', content=beat.model_dump_json(),
                                 headers={'Content-Type': 'application/json'})
        try:
            return HeartbeatAnswer.model_validate_json(response.content)
        except ValidationError as exc:
            raise LinkError(f'heartbeat answer not understood: {exc.errors()[0]["msg"]}') from None

    def raise_call(self, call: StaffCall) -> None:
        """Keep the call durably until the platform acknowledges it (see the module's notes)."""
        self.calls.add(call)

    def send_calls(self) -> int:
        """Send the waiting staff calls, oldest first; returns how many the platform took. A
        call is deleted only once the platform's answer names its id (or refused it as invalid).
        A 429 or 503 (the platform folds a robot's repeated calls into its open one at most
        every few seconds; or it is busy) stops sending until its Retry-After has passed: the
        calls stay, nothing is sent before then."""
        if time.monotonic() < self.calls_not_before:
            return 0
        sent = 0
        for call in self.calls.waiting():
            try:
                response = self._request('POST', '/staff-calls', content=call.model_dump_json(),
                                         headers={'Content-Type': 'application/json'})
            except LinkError as exc:
                if exc.status in (429, 503):
                    wait = min(MAX_RETRY_AFTER_S, exc.retry_after or DEFAULT_RETRY_S)
                    self.calls_not_before = time.monotonic() + wait
                    raise
                if exc.status not in (409, 422):          # invalid, id reused
                    raise
                self.log(f'staff call {call.call_id} refused by the platform: {exc}; kept in '
                         f'{CALLS_FILE} (refused)')
                self.calls.refuse(call.call_id, str(exc))
                continue
            try:
                acknowledged = isinstance(response.json().get('id'), int)
            except (ValueError, AttributeError):
                acknowledged = False
            if not acknowledged:
                raise LinkError(f'staff call {call.call_id}: the platform\'s answer names no id')
            self.calls.remove(call.call_id)
            sent += 1
        return sent

    def messages(self) -> list[StaffMessage]:
        """Staff's messages after the cursor (the caller speaks them, then `spoken(id)`)."""
        response = self._request('GET', '/staff-messages', params={'after': self.cursor})
        try:
            return MESSAGES.validate_json(response.content[:MAX_DESIRED_BYTES])
        except ValidationError as exc:
            raise LinkError(f'staff messages not understood: {exc.errors()[0]["msg"]}') from None

    def spoken(self, message_id: int) -> None:
        self.cursor = max(self.cursor, message_id)
        self._write_state()

    # --- desired state ------------------------------------------------------------------------
    def apply_desired(self, version: int,
                      apply_settings: Callable[[DesiredState], str] | None = None) -> bool:
        """Fetch, check and swap in `version`; True when it is now in use. `apply_settings`
        (the running nodes' live parameters, all or nothing) runs after the checks and before the
        swap; a problem it returns refuses the version like a failed check. A refused version is
        remembered (not fetched again until the platform names another)."""
        if version == self.desired_version or version == self.refused_version or version <= 0:
            return False
        response = self._request('GET', '/desired')
        named = response.headers.get('x-desired-version', '').strip()
        got = version
        if named:       # the version the platform sends now (a rollout may have moved on)
            if not (named.isascii() and named.isdigit() and 0 < int(named) <= MAX_VERSION):
                # kept, this number would go out in every heartbeat and have each refused
                return self._refuse(version, f'X-Desired-Version {named[:20]!r} is not a '
                                             f'version number (1 to {MAX_VERSION})')
            got = int(named)
        content = response.content
        if len(content) > MAX_DESIRED_BYTES:
            return self._refuse(got, f'document of {len(content)} bytes; at most {MAX_DESIRED_BYTES}')
        document, problem = check_desired(content)
        if document is None:
            return self._refuse(got, problem)
        if apply_settings is not None:
            problem = apply_settings(document)
            if problem:
                return self._refuse(got, problem)
        _atomic_write(self.data_dir / DESIRED_FILE, document.model_dump_json(indent=1).encode())
        self.desired_version, self.desired_error, self.refused_version = got, '', 0
        self._write_state()
        return True

    def _refuse(self, version: int, reason: str) -> bool:
        self.refused_version = version
        self.desired_error = f'v{version}: {reason}'[:300]
        self.log(f'desired state v{version} refused, keeping v{self.desired_version}: {reason}')
        return False

    def incident_request_done(self, request_id: int, result: str) -> None:
        """A request to upload the incident recordings was carried out (reported in the next
        heartbeats; remembered across restarts so it is not carried out twice)."""
        self.incident_done = max(self.incident_done, request_id)
        self.incident_result = result.replace('\x00', '')[:300]
        self._write_state()

    # --- the state file -----------------------------------------------------------------------
    def _read_state(self) -> dict:
        try:
            state = json.loads((self.data_dir / STATE_FILE).read_text())
            return state if isinstance(state, dict) else {}
        except (OSError, ValueError):
            return {}

    def _write_state(self) -> None:
        _atomic_write(self.data_dir / STATE_FILE, json.dumps(
            {'cursor': self.cursor, 'desired_version': self.desired_version,
             'incident_done': self.incident_done, 'incident_result': self.incident_result}).encode())


class CallQueue:
    """Staff calls waiting for the platform's acknowledgement, in SQLite on the robot (the
    robot's durable store, like the outbox): a row per call_id, committed before `add` returns,
    deleted by call_id only. Thread-safe (the ROS callback adds, the fleet thread sends)."""

    def __init__(self, path: Path, log: Callable[[str], None] = print) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.lock = threading.Lock()
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute('PRAGMA journal_mode=WAL')
        self.db.execute('PRAGMA synchronous=FULL')
        for pragma in ERASING_PRAGMAS:
            self.db.execute(pragma)
        self.db.execute('CREATE TABLE IF NOT EXISTS calls (seq INTEGER PRIMARY KEY AUTOINCREMENT, '
                        'call_id TEXT NOT NULL UNIQUE, body TEXT NOT NULL)')
        self.db.execute('CREATE TABLE IF NOT EXISTS refused (seq INTEGER PRIMARY KEY AUTOINCREMENT, '
                        'call_id TEXT NOT NULL, body TEXT NOT NULL, reason TEXT NOT NULL, '
                        'refused_at REAL NOT NULL)')

    def add(self, call: StaffCall) -> None:
        with self.lock:
            self.db.execute('INSERT OR IGNORE INTO calls (call_id, body) VALUES (?, ?)',
                            (call.call_id, call.model_dump_json()))
            over = self.db.execute('SELECT call_id FROM calls ORDER BY seq DESC LIMIT -1 OFFSET ?',
                                   (MAX_PENDING_CALLS,)).fetchall()
            for (call_id,) in over:
                self.db.execute('DELETE FROM calls WHERE call_id = ?', (call_id,))
        for (call_id,) in over:
            self.log(f'staff call {call_id} dropped: {MAX_PENDING_CALLS} newer calls wait for '
                     f'the platform')

    def waiting(self) -> list[StaffCall]:
        with self.lock:
            rows = self.db.execute('SELECT call_id, body FROM calls ORDER BY seq').fetchall()
        calls = []
        for call_id, body in rows:
            try:
                calls.append(StaffCall.model_validate_json(body))
            except ValidationError as exc:       # a row this version cannot read: report, skip
                self.log(f'staff call {call_id} in {CALLS_FILE} unreadable, dropped: '
                         f'{exc.errors()[0]["msg"]}')
                self.remove(call_id)
        return calls

    def remove(self, call_id: str) -> None:
        with self.lock:
            self.db.execute('DELETE FROM calls WHERE call_id = ?', (call_id,))

    def refuse(self, call_id: str, reason: str) -> None:
        """Move a call the platform refused out of the queue, kept with the reason (the newest
        MAX_PENDING_CALLS refused calls are kept)."""
        with self.lock:
            self.db.execute('BEGIN IMMEDIATE')
            try:
                self.db.execute('INSERT INTO refused (call_id, body, reason, refused_at) SELECT '
                                'call_id, body, ?, ? FROM calls WHERE call_id = ?',
                                (reason[:300], time.time(), call_id))
                self.db.execute('DELETE FROM calls WHERE call_id = ?', (call_id,))
                self.db.execute('DELETE FROM refused WHERE seq IN (SELECT seq FROM refused ORDER BY '
                                'seq DESC LIMIT -1 OFFSET ?)', (MAX_PENDING_CALLS,))
                self.db.execute('COMMIT')
            except BaseException:
                self.db.execute('ROLLBACK')
                raise

    def refused(self) -> list[dict]:
        """The calls the platform refused, oldest first: {"call_id", "reason", "refused_at"}."""
        with self.lock:
            rows = self.db.execute('SELECT call_id, reason, refused_at FROM refused ORDER BY seq').fetchall()
        return [dict(call_id=r[0], reason=r[1], refused_at=r[2]) for r in rows]

    def refused_count(self) -> int:
        with self.lock:
            return int(self.db.execute('SELECT count(*) FROM refused').fetchone()[0])

    def __len__(self) -> int:
        with self.lock:
            return int(self.db.execute('SELECT count(*) FROM calls').fetchone()[0])

    def close(self) -> None:
        with self.lock:
            self.db.close()


def _retry_after(response: httpx.Response) -> float:
    """Retry-After in seconds (a number; an HTTP date or garbage: 0), bounded."""
    try:
        value = float(response.headers.get('retry-after', '0'))
    except ValueError:
        return 0.0
    return min(MAX_RETRY_AFTER_S, value) if math.isfinite(value) and value > 0 else 0.0


def _atomic_write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, content)


def call_from_request(stamp_ns: int, track_id: int, reason: str, looking_for: str,
                      product: str, zone: str, language: str,
                      pose: tuple[float, float] | None, place: str = '') -> StaffCall:
    """A StaffCall from a retail_interfaces/StaffRequest's fields (bounded, never refused)."""
    usable = pose is not None and all(math.isfinite(v) and abs(v) <= 1e5 for v in pose)
    code = ''.join(ch for ch in reason.lower() if ch.isascii() and (ch.isalnum() or ch == '_'))
    return StaffCall(call_id=f'{stamp_ns}-{max(0, track_id)}', reason=code[:48],
                     wanted=looking_for.replace('\x00', '')[:300],
                     product=product.replace('\x00', '')[:300],
                     zone=zone.replace('\x00', '')[:128],
                     x=pose[0] if usable else None, y=pose[1] if usable else None,
                     language=language if language in ('zh', 'en') else '',
                     place=place.replace('\x00', '')[:300])


PLACE_WITHIN_M = 6.0     # nearer than this to a zone's stop: "at" it; else "n m from" it


def place_of(zones: dict, pose: tuple[float, float] | None) -> str:
    """Where the robot is in the store's words: its nearest zone's name as staff know it
    (retail_common.store.Zone.label, '手机数码区 (Phones & Wearables)'), '12 m from ...' when
    that zone is farther than PLACE_WITHIN_M; '' without a usable pose or zones."""
    if pose is None or not zones or not all(math.isfinite(v) for v in pose):
        return ''
    distance, zone = min(((math.hypot(z.pose[0] - pose[0], z.pose[1] - pose[1]), z)
                          for z in zones.values()), key=lambda item: item[0])
    return zone.label if distance <= PLACE_WITHIN_M else f'{distance:.0f} m from {zone.label}'


FRAMING = {'zh': ({'answer': '店员用{other}回复您：', 'say': '店员用{other}对您说：'},
                  {'en': '英文', 'zh': '中文'}),
           'en': ({'answer': 'A member of staff answered you in {other}:',
                   'say': 'A member of staff says to you in {other}:'},
                  {'zh': 'Chinese', 'en': 'English'})}


def text_language(text: str) -> str:
    """'zh' when the text has Chinese characters, else 'en' (the two languages of the store)."""
    return 'zh' if any('\u3400' <= ch <= '\u9fff' or '\uf900' <= ch <= '\ufaff' for ch in text) \
        else 'en'


def staff_replies(message: StaffMessage, default_language: str = 'zh') -> list[tuple[str, str, str]]:
    """What the robot says for a staff message, as (text, language, RobotReply.intent): staff's
    text in the customer's language as is (an answer: intent staff_answer; typed words:
    staff_words); typed in the other language, a framing sentence in the customer's language
    first, then staff's text in its own language as staff's words (marked as staff's on the
    screen, spoken by the TTS in its language) — never labelled with a language it is not in."""
    customer = message.language if message.language in ('zh', 'en') else default_language
    written = text_language(message.text)
    if written == customer:
        return [(message.text, customer, STAFF_INTENTS[message.kind])]
    sentences, names = FRAMING[customer]
    framing = sentences[message.kind].format(other=names[written])
    return [(framing, customer, 'staff_answer'), (message.text, written, 'staff_words')]
