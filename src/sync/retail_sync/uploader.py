"""Uploader: drains the outbox to the platform, batch by batch, deleting only what the platform
confirmed by event_id.

A batch is the oldest pending events (read by cursor, at most `batch_size` and `batch_bytes`, so
memory stays bounded whatever the backlog), sent as gzip-compressed JSON
`{"robot_id", "stream_id", "events": [...]}` to `POST {platform}/v1/robots/{robot_id}/events`
with a bearer token. The platform deduplicates by `event_id`, so a batch re-sent after a crash
between its answer and our delete is harmless: delivery is exactly-once in effect, in sequence
order per robot.

The answer (200) is `{"acked": n, "results": [{"event_id", "status": "accepted" | "duplicate" |
"rejected", "reason"}, ...]}`. Exactly the event_ids answered accepted/duplicate are deleted;
rejected ones go to quarantine with the platform's reason (`seq_reused` also raises the outbox's
alarm); ids the answer does not mention, mentions twice with different verdicts, or that were
not in the batch change nothing — those events stay pending and go again. `acked` is never
trusted on its own: an answer without `results` confirms nothing (logged, retried with backoff).

An answer longer than MAX_ANSWER_BYTES once decoded (a gzip bomb, a proxy's endless page) is
not read further: nothing is deleted, the batch is retried with backoff.

Other answers: 401/403 → AuthError: stop, alarm, outbox untouched (404/405, a wrong platform
URL, and a redirect, never followed, likewise). 429/503 → wait at least the `Retry-After` seconds (capped at an hour), and
otherwise back off. Other 4xx (422 invalid, 409 an event_id already used for other content, 413
too large) → the batch is split in halves until the offending events are alone, and those are
quarantined with the platform's reason, so the rest flows — but only when something else of the
batch was stored: a 4xx to every event alike (a proxy's error page, a platform refusing all) is
not isolated to an event, so nothing is quarantined and the batch is retried with backoff. 5xx never quarantines anything: it is
retried with exponential backoff and jitter; after POISON_AFTER in a row the batch is split so
the events the platform can store get through, while an event it fails on alone stays pending
(and is retried). Anything else (no connection, timeout, a garbled answer) → retry with backoff
and jitter. A partial batch waits for company at most `max_delay_s` of the outbox's own clock (a
wall-clock step never delays uploads).
"""
from __future__ import annotations

import email.utils
import gzip
import json
import math
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import httpx

from retail_sync.outbox import Event, Outbox
from retail_sync.stream import StreamState, write_stream
from retail_sync.transport import answer_chunks, platform_client, set_token

# What `Uploader.run` ended with.
DONE = 'done'                  # the outbox is empty (until_empty) or stop was asked
REFUSED = 'refused'            # the platform refuses us as configured (StopUploads)
UNREACHABLE = 'unreachable'    # no delivery for `give_up_s` (until_empty only)


POISON_AFTER = 3   # HTTP 5xx in a row before a batch is split to get the storable events through
RETRY_AFTER_MAX_S = 3600.0          # a longer Retry-After is taken as this
OK_STATUSES = ('accepted', 'duplicate')
MAX_REASON_CHARS = 300
MAX_ANSWER_BYTES = 4 << 20          # an answer (decoded) longer than this is refused unread (gzip bombs too)


class StopUploads(RuntimeError):
    """The platform refuses us as configured (credentials, URL): retrying cannot help, and
    quarantining would empty the queue for a configuration mistake. Stop and alarm."""


class AuthError(StopUploads):
    """The platform refused our credentials; nothing more is sent until someone fixes them."""


class TransientError(RuntimeError):
    """The platform is away, slow, failing or garbled; try again later (not before
    `retry_after_s` when the platform said so)."""

    def __init__(self, message: str, retry_after_s: float | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.status = status          # the HTTP status that said so (429, 503), if any


class _ServerFailure(TransientError):
    """HTTP 5xx for a part of a batch (an event the platform fails on, or the platform failing)."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date), at most
    RETRY_AFTER_MAX_S; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()[:64]
    try:
        seconds = float(value) if value.isdigit() else None
    except ValueError:
        seconds = None
    if seconds is None:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), RETRY_AFTER_MAX_S)


def busy_delay(asked: float, rng: random.Random | None = None) -> float:
    """How long to wait when the platform asked for `asked` seconds (Retry-After): never less,
    plus a jitter of up to a quarter of it (at least 0.5 s), so robots told the same Retry-After
    (a store's robots, every store draining a backlog at once) do not all come back together."""
    return asked + (rng or random).uniform(0.0, max(0.5, asked / 4))


def answer_results(response: httpx.Response) -> tuple[Any, list]:
    """(acked, results) of a 2xx answer; TransientError (nothing deleted) when it is not a JSON
    object with a list of per-event results."""
    try:
        answer: Any = response.json()
    except ValueError:
        raise TransientError('platform answered 2xx with a garbled body; nothing deleted') from None
    if not isinstance(answer, dict):
        raise TransientError('platform answered 2xx without a JSON object; nothing deleted')
    acked, results = answer.get('acked'), answer.get('results')
    if results is None:
        raise TransientError(f'platform answered acked={acked!r} without per-event results; '
                             f'nothing deleted (events leave only when confirmed by id)')
    if not isinstance(results, list):
        raise TransientError('platform answered with results that are not a list; nothing '
                             'deleted')
    return acked, results


@dataclass
class Verdicts:
    """The platform's per-event results sorted against the batch sent."""
    confirmed: list[int]                     # seq of the events confirmed by id
    rejected: list[tuple[Event, str]]        # (event, reason) rejected by id
    unknown: int                             # entries naming no event of the batch, or no known status
    contradicted: set[str]                   # event ids given both an OK and a rejected verdict
    next_seq: int = 0                        # seq_reused: where the platform says to number on (0: not said)


def _told_next_seq(reason: str, told: object) -> int:
    """The sequence number a `seq_reused` verdict says to continue from (0 for none): 1 to 2**62
    (room left: a lying answer cannot use up the robot's numbers)."""
    if reason.startswith('seq_reused') and isinstance(told, int) and not isinstance(told, bool) \
            and 1 <= told < 2 ** 62:
        return told
    return 0


def sort_verdicts(batch: list[Event], results: list) -> Verdicts:
    """Which events of `batch` the results confirm or reject by id; an event given contradicting
    verdicts is neither (kept pending). At most 4 results an event are read."""
    by_id = {event.event_id: event for event in batch}
    verdicts: dict[str, tuple[str, str]] = {}
    contradicted: set[str] = set()
    unknown = 0
    next_seq = 0
    for item in results[:4 * len(batch) + 16]:
        event_id = item.get('event_id') if isinstance(item, dict) else None
        verdict = item.get('status') if isinstance(item, dict) else None
        if (not isinstance(event_id, str) or event_id not in by_id
                or verdict not in (*OK_STATUSES, 'rejected')):
            unknown += 1
            continue
        ok = verdict in OK_STATUSES
        reason = item.get('reason')
        reason = reason[:MAX_REASON_CHARS] if isinstance(reason, str) else ''
        next_seq = max(next_seq, _told_next_seq(reason, item.get('next_seq')))
        previous = verdicts.get(event_id)
        if previous is not None and (previous[0] in OK_STATUSES) != ok:
            contradicted.add(event_id)
        verdicts[event_id] = (verdict, reason)
    confirmed = [event.seq for event_id, event in by_id.items()
                 if event_id not in contradicted
                 and verdicts.get(event_id, ('',))[0] in OK_STATUSES]
    rejected = [(event, verdicts[event_id][1]) for event_id, event in by_id.items()
                if event_id not in contradicted
                and verdicts.get(event_id, ('',))[0] == 'rejected']
    return Verdicts(confirmed, rejected, unknown, contradicted, next_seq)


@dataclass
class UploaderConfig:
    platform_url: str
    token: str
    robot_id: str
    batch_size: int = 500
    batch_bytes: int = 512 * 1024
    max_delay_s: float = 2.0         # a partial batch waits at most this long for company
    timeout_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 60.0
    ca_file: str = ''                # https: verify against this CA bundle (default: system CAs)
    compress_level: int = 1          # gzip level: 1 is ~3x smaller at little CPU cost
    stream_file: str = ''            # the robot's stream file (see stream.py); '' = none


class Backoff:
    """Exponential backoff with full jitter: delay in [0, min(max, initial * 2**n)]."""

    def __init__(self, initial_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.initial_s, self.max_s = initial_s, max_s
        self.failures = 0
        self.rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.max_s, self.initial_s * (2 ** min(self.failures, 30)))
        self.failures += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0


class Uploader:
    def __init__(self, outbox: Outbox, config: UploaderConfig,
                 log: Callable[[str], None] = lambda message: None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.outbox = outbox
        self.config = config
        self.log = log
        self.backoff = Backoff(config.backoff_initial_s, config.backoff_max_s)
        self.last_error: str | None = None
        self.last_busy = False       # the last failure was the platform's 429/503 (it answered)
        self.auth_failed = False
        self.sent = 0
        self.quarantined = 0
        self.seq_reused = 0
        self._server_failures = 0        # batches answered HTTP 5xx in a row
        self._refused_alone: list[tuple[Event, str]] = []   # events answered 4xx on their own (this batch)
        self._stream_written = -1
        self._client = platform_client(
            config.token, config.ca_file, config.timeout_s,
            headers={'Content-Type': 'application/json', 'Content-Encoding': 'gzip',
                     'User-Agent': 'retailbot-sync/0.1'}, transport=transport)
        self._url = f'{config.platform_url.rstrip("/")}/v1/robots/{config.robot_id}/events'

    def close(self) -> None:
        self._client.close()

    def set_token(self, token: str) -> None:
        """Use a new token (after an auth failure was fixed); uploads may resume."""
        set_token(self._client, token)
        self.auth_failed = False

    # --- one batch -----------------------------------------------------------------------------
    def _before_send(self, batch: list[Event]) -> None:
        """Record the highest sequence number about to go out (outbox, then stream file), so
        an outbox reset can never hand it out again."""
        top = max(event.seq for event in batch)
        self.outbox.note_sent(top)
        if self.config.stream_file and top > self._stream_written:
            try:
                write_stream(Path(self.config.stream_file),
                             StreamState(self.outbox.stream_id, self.outbox.sent_seq()))
                self._stream_written = top
            except OSError as exc:
                if self._stream_written != -2:
                    self.log(f'stream file {self.config.stream_file} cannot be written '
                             f'({exc.strerror}); an outbox reset may reuse sequence numbers')
                self._stream_written = -2

    def _post(self, batch: list[Event]) -> httpx.Response:
        self._before_send(batch)
        body = ('{"robot_id": ' + json.dumps(self.config.robot_id)
                + ', "stream_id": ' + json.dumps(self.outbox.stream_id) + ', "events": ['
                + ','.join(event.to_json() for event in batch) + ']}')
        payload = gzip.compress(body.encode(), compresslevel=self.config.compress_level)
        try:
            with self._client.stream('POST', self._url, content=payload) as response:
                answer = bytearray()
                for chunk in answer_chunks(self._client, response):   # decoded: a gzip bomb stops at the cap
                    answer += chunk
                    if len(answer) > MAX_ANSWER_BYTES:
                        raise TransientError(f'platform answer (HTTP {response.status_code}) longer than '
                                             f'{MAX_ANSWER_BYTES} bytes: not read, nothing deleted')
                headers = [(k, v) for k, v in response.headers.multi_items()
                           if k.lower() not in ('content-encoding', 'content-length', 'transfer-encoding')]
                return httpx.Response(response.status_code, headers=headers, content=bytes(answer),
                                      request=response.request)
        except httpx.HTTPError as exc:
            if 'CERTIFICATE_VERIFY_FAILED' in str(exc):
                raise StopUploads(f'platform certificate not trusted ({exc}); set the CA file; '
                                  'uploads stopped, outbox kept') from None
            raise TransientError(f'platform unreachable: {type(exc).__name__}: {exc}') from None

    def _quarantine(self, event: Event, reason: str) -> None:
        self.outbox.quarantine([event.seq], reason)
        self.quarantined += 1
        self.log(f'event {event.event_id} ({event.type}) quarantined: {reason}')

    def _send(self, batch: list[Event], bisect: bool = False) -> tuple[int, int]:
        """Deliver `batch`; returns (delivered, quarantined). Raises StopUploads/TransientError.
        With `bisect`, a batch answered 5xx is split so what the platform can store gets
        through; the events it fails on stay pending (never quarantined)."""
        response = self._post(batch)
        status = response.status_code
        if status in (401, 403):
            raise AuthError(f'platform refused the token (HTTP {status}); '
                            'uploads stopped, outbox kept')
        if 300 <= status < 400:
            # Never followed (the token would go wherever a proxy points): a platform_url with
            # http:// for https://, or an old address. Retrying cannot help; it was "platform
            # away" for good while the backlog grew.
            where = response.headers.get('location', '')[:200]
            raise StopUploads(f'platform at {self._url} redirects (HTTP {status})'
                              + (f' to {where}' if where else '')
                              + '; set the platform URL to the address it names; uploads stopped, '
                                'outbox kept')
        if status in (404, 405):
            raise StopUploads(f'platform has no events endpoint at {self._url} (HTTP {status}); '
                              'check platform_url; uploads stopped, outbox kept')
        if status in (429, 503):
            wait = parse_retry_after(response.headers.get('retry-after'))
            raise TransientError(f'platform busy (HTTP {status})'
                                 + (f', asked to wait {wait:g} s' if wait is not None else ''),
                                 retry_after_s=wait, status=status)
        if 400 <= status < 500 and status != 408:
            if len(batch) > 1:
                half = len(batch) // 2
                first = self._send(batch[:half], bisect)
                second = self._send(batch[half:], bisect)
                return first[0] + second[0], first[1] + second[1]
            # quarantined only once the rest of the batch got through (upload_once): a 4xx for
            # every event alike (a proxy's 400/403/413 page) is the platform's fault, not the event's
            self._refused_alone.append((batch[0], f'HTTP {status}: {response.text[:MAX_REASON_CHARS]}'))
            return 0, 0
        if 500 <= status < 600:
            if not bisect or len(batch) == 1:
                where = f' on event {batch[0].event_id} (kept pending)' if bisect else ''
                raise _ServerFailure(f'platform answered HTTP {status}{where} '
                                     f'({response.text[:200]})')
            half = len(batch) // 2
            done, failures = [0, 0], 0
            for part in (batch[:half], batch[half:]):
                try:
                    delivered, held = self._send(part, bisect)
                    done[0] += delivered
                    done[1] += held
                except _ServerFailure:
                    failures += 1
            if failures == 2 and not done[0] and not done[1]:
                raise _ServerFailure(f'platform answered HTTP {status} on every part of the batch')
            return done[0], done[1]
        if not 200 <= status < 300:
            raise TransientError(f'platform answered HTTP {status}')
        return self._apply_answer(batch, response)

    def _apply_answer(self, batch: list[Event], response: httpx.Response) -> tuple[int, int]:
        """Delete exactly the events the answer confirms by id; quarantine the rejected ones."""
        acked, results = answer_results(response)
        sorted_out = sort_verdicts(batch, results)
        confirmed, rejected = sorted_out.confirmed, sorted_out.rejected
        if confirmed:
            self.outbox.delete(confirmed)
        reused = [event for event, reason in rejected if reason.startswith('seq_reused')]
        renumbered = 0
        if reused and sorted_out.next_seq > 1:
            # Our stream was lost (a reinstall without the token folder's stream file) or another
            # robot uses our id: number the refused events, and every waiting one up to there,
            # on after what the platform holds, so they are stored instead of held for good.
            renumbered = self.outbox.renumber_through(sorted_out.next_seq - 1)
        for event, reason in rejected:
            if renumbered and reason.startswith('seq_reused'):
                continue
            self._quarantine(event, f'rejected by the platform: {reason or "no reason given"}')
        if reused:
            self._note_seq_reused(reused, renumbered, sorted_out.next_seq)
        self._log_odd_answer(len(batch), sorted_out, acked)
        if renumbered:
            return len(confirmed), len(rejected) - len(reused)
        if not confirmed and not rejected:
            raise TransientError(f'platform confirmed none of the {len(batch)} events sent; '
                                 'all kept pending')
        return len(confirmed), len(rejected)

    def _log_odd_answer(self, sent: int, sorted_out: Verdicts, acked: object) -> None:
        """One line when the answer leaves events unconfirmed, holds unknown or contradicting
        entries, or its `acked` count disagrees (nothing is deleted on its word)."""
        confirmed, rejected = sorted_out.confirmed, sorted_out.rejected
        missing = sent - len(confirmed) - len(rejected)
        if missing or sorted_out.unknown or sorted_out.contradicted or acked != len(confirmed):
            self.log(f'platform answer for {sent} events: {len(confirmed)} confirmed, '
                     f'{len(rejected)} rejected, {missing} not confirmed (kept pending)'
                     + (f', {sorted_out.unknown} unknown entries ignored' if sorted_out.unknown else '')
                     + (f', {len(sorted_out.contradicted)} with contradicting verdicts'
                        if sorted_out.contradicted else '')
                     + (f'; acked={acked!r} not trusted' if acked != len(confirmed) else ''))

    def _probe_beyond(self, batch: list[Event], refused: list[tuple[Event, str]]) -> tuple[int, int]:
        """Every event of the oldest batch was refused alone: is it these events or everything?
        The next pending event after the batch, then the newest, are sent alone. One delivered:
        the refusals were these events' own, and they are quarantined (the caller); else the
        oldest batch would hold every later event for good (attack, session 12). (0, 0) when
        there is none or each is refused too."""
        after = max(e.seq for e in batch)
        probes = self.outbox.read_batch(1, self.config.batch_bytes, after_seq=after)
        newest = self.outbox.read_batch(1, self.config.batch_bytes, after_seq=max(after, self.outbox.last_seq() - 1))
        probes += [e for e in newest if e.seq not in {p.seq for p in probes}]
        for probe in probes:
            self._refused_alone = []
            try:
                delivered, quarantined = self._send([probe])
            except _ServerFailure:
                return 0, 0
            finally:
                also_refused, self._refused_alone = self._refused_alone, []
            if delivered and not also_refused:
                return delivered, quarantined
        return 0, 0

    def _note_seq_reused(self, reused: list[Event], renumbered: int = 0, next_seq: int = 0) -> None:
        self.seq_reused += len(reused)
        detail = (f'seq {reused[0].seq} (event {reused[0].event_id}) and '
                  f'{len(reused) - 1} more refused as seq_reused')
        if renumbered:
            detail += f'; {renumbered} waiting events renumbered from {next_seq} and sent again'
        self.outbox.note_seq_reused(len(reused), detail)
        self.log(f'ERROR: {detail}: another outbox of robot {self.config.robot_id} already '
                 'sent these sequence numbers'
                 + ('' if renumbered else '; events kept in quarantine'))

    def upload_once(self, flush: bool = True) -> int:
        """Send one batch if one is due; returns events delivered or quarantined (0: nothing due).

        Without `flush`, a partial batch waits until its oldest event is `max_delay_s` old.
        """
        batch = self.outbox.read_batch(self.config.batch_size, self.config.batch_bytes)
        if not batch:
            return 0
        if (not flush and len(batch) < self.config.batch_size
                and self.outbox.now() - batch[0].mono < self.config.max_delay_s):
            return 0
        bisect = self._server_failures >= POISON_AFTER
        self._refused_alone = []
        try:
            delivered, quarantined = self._send(batch, bisect)
        except _ServerFailure as exc:
            self._server_failures += 1
            raise TransientError(str(exc)) from None
        self._server_failures = 0
        refused, self._refused_alone = self._refused_alone, []
        if refused and not delivered and not quarantined:
            delivered, quarantined = self._probe_beyond(batch, refused)
        if refused and not delivered and not quarantined:
            raise TransientError(f'platform answered {refused[0][1][:120]} to each of the {len(refused)} events '
                                 'alone: not isolated to an event, nothing quarantined (kept pending)')
        for event, reason in refused:
            self._quarantine(event, reason)
        quarantined += len(refused)
        self.sent += delivered
        if delivered or quarantined:
            self.backoff.reset()
            self.last_error = None
            self.last_busy = False
        return delivered + quarantined

    # --- the loop ------------------------------------------------------------------------------
    def _retry_delay(self, exc: TransientError, asked: float) -> float:
        """How long to wait after `exc` (`asked`: the platform's Retry-After, 0 when none)."""
        if exc.status == 429 and asked > 0:
            # Over a budget (a store's, or the platform's for catching up): the platform said
            # when, so come back then, with jitter; the backoff is not escalated (a backlog
            # refused many times in a row would otherwise wait a minute each).
            return busy_delay(asked, self.backoff.rng)
        delay = self.backoff.next_delay()
        return max(delay, busy_delay(asked, self.backoff.rng)) if asked > 0 else delay

    @staticmethod
    def _pause(delay_s: float, stop: threading.Event, wake: threading.Event) -> None:
        """Back off, but retry at once when woken (`sync now` after the network came back)."""
        deadline = time.monotonic() + delay_s
        while not stop.is_set() and not wake.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            wake.wait(min(left, 0.5))

    def run(self, stop: threading.Event, wake: threading.Event | None = None,
            until_empty: bool = False, idle_s: float = 0.5,
            progress: Callable[[int], None] | None = None,
            give_up_s: float | None = None) -> str:
        """Upload until `stop` (or, with `until_empty`, until the outbox is empty).

        Returns DONE, REFUSED (stopped by the platform's refusal: token, URL, certificate) or,
        with `until_empty` and `give_up_s`, UNREACHABLE when nothing could be delivered for
        `give_up_s` seconds. `wake` flushes at once.
        """
        wake = wake or threading.Event()
        last_progress = time.monotonic()
        while not stop.is_set():
            flush = until_empty or wake.is_set()
            wake.clear()
            try:
                done = self.upload_once(flush=flush)
            except StopUploads as exc:
                self.auth_failed = True
                self.last_error = str(exc)
                self.log(str(exc))
                return REFUSED
            except TransientError as exc:
                self.last_error = str(exc)
                self.last_busy = exc.status in (429, 503)
                waited = time.monotonic() - last_progress
                if until_empty and give_up_s is not None and waited >= give_up_s:
                    return UNREACHABLE
                asked = exc.retry_after_s or 0.0
                delay = self._retry_delay(exc, asked)
                if until_empty and give_up_s is not None:
                    left = max(0.0, give_up_s - waited)
                    if asked > left:           # cannot wait as asked before giving up
                        self.log(f'{exc}; giving up in {left:.1f} s')
                        self._pause(left, stop, threading.Event())
                        return UNREACHABLE if not stop.is_set() else DONE
                    delay = min(delay, left)
                delay = max(delay, asked)
                self.log(f'{exc}; retrying in {delay:.1f} s '
                         f'(attempt {self.backoff.failures})')
                # The platform's Retry-After is waited out even when woken (`sync now`).
                self._pause(asked, stop, threading.Event())
                self._pause(delay - asked, stop, wake)
                continue
            if done:
                last_progress = time.monotonic()
                if progress:
                    progress(done)
                continue
            if until_empty and self.outbox.pending() == 0:
                return DONE
            wake.wait(idle_s)
        return DONE
