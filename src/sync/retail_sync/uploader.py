"""Uploader: drains the outbox to the platform, batch by batch, deleting only what was acked.

A batch is the oldest pending events (read by cursor, at most `batch_size` and `batch_bytes`, so
memory stays bounded whatever the backlog), sent as gzip-compressed JSON to
`POST {platform}/v1/robots/{robot_id}/events` with a bearer token. The platform deduplicates by
`event_id`, so a batch re-sent after a crash between its ack and our delete is harmless: delivery
is exactly-once in effect, in sequence order per robot.

Responses: 2xx with a matching ack → delete. 401/403 → AuthError: stop, alarm, outbox untouched
(404/405, a wrong platform URL, likewise). Other 4xx (422 invalid, 409 an event_id already used
for other content, 413 too large) → the batch is split in halves until the offending events are
alone, and those are quarantined with the platform's reason, so the rest flows. HTTP 500 is
retried with backoff; after POISON_AFTER in a row the batch is split the same way: when some
events of it are stored and one alone still fails, that one is a poison event (it breaks the
platform) and is quarantined with the reason; when every part fails, the platform itself is
failing and the batch is retried. Anything else (no
connection, timeout, 502/503/504, a garbled answer) → retry with exponential backoff and full
jitter. A partial batch waits for company at most `max_delay_s` of the outbox's own clock (a
wall-clock step never delays uploads).
"""
from __future__ import annotations

import gzip
import json
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable

import httpx

from retail_sync.outbox import Event, Outbox
from retail_sync.transport import platform_client, set_token

# What `Uploader.run` ended with.
DONE = 'done'                  # the outbox is empty (until_empty) or stop was asked
REFUSED = 'refused'            # the platform refuses us as configured (StopUploads)
UNREACHABLE = 'unreachable'    # no delivery for `give_up_s` (until_empty only)


POISON_AFTER = 3   # HTTP 500s in a row before a batch is split to look for a poison event


class StopUploads(RuntimeError):
    """The platform refuses us as configured (credentials, URL): retrying cannot help, and
    quarantining would empty the queue for a configuration mistake. Stop and alarm."""


class AuthError(StopUploads):
    """The platform refused our credentials; nothing more is sent until someone fixes them."""


class TransientError(RuntimeError):
    """The platform is away, slow, failing or garbled; try again later."""


class _ServerFailure(TransientError):
    """HTTP 500 for a part of a batch (a poison event, or the platform failing)."""


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


class Backoff:
    """Exponential backoff with full jitter: delay in [0, min(max, initial * 2**n)]."""

    def __init__(self, initial_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.initial_s, self.max_s = initial_s, max_s
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.max_s, self.initial_s * (2 ** min(self.failures, 30)))
        self.failures += 1
        return self._rng.uniform(ceiling / 2, ceiling)

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
        self.auth_failed = False
        self.sent = 0
        self.quarantined = 0
        self._server_failures = 0        # batches answered HTTP 500 in a row
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
    def _post(self, batch: list[Event]) -> httpx.Response:
        body = ('{"robot_id": ' + json.dumps(self.config.robot_id) + ', "events": ['
                + ','.join(event.to_json() for event in batch) + ']}')
        payload = gzip.compress(body.encode(), compresslevel=self.config.compress_level)
        try:
            return self._client.post(self._url, content=payload)
        except httpx.HTTPError as exc:
            if 'CERTIFICATE_VERIFY_FAILED' in str(exc):
                raise StopUploads(f'platform certificate not trusted ({exc}); set the CA file; '
                                  'uploads stopped, outbox kept') from None
            raise TransientError(f'platform unreachable: {type(exc).__name__}: {exc}') from None

    def _quarantine(self, event: Event, reason: str) -> None:
        self.outbox.quarantine([event.seq], reason)
        self.quarantined += 1
        self.log(f'event {event.event_id} ({event.type}) quarantined: {reason}')

    def _send(self, batch: list[Event], poison: list, bisect: bool = False) -> tuple[int, int]:
        """Deliver `batch`; returns (delivered, quarantined). Raises AuthError/TransientError.
        With `bisect`, a batch answered HTTP 500 is split to find the events the platform fails
        on; those are added to `poison` as (event, reason) for the caller to judge."""
        response = self._post(batch)
        status = response.status_code
        if status in (401, 403):
            raise AuthError(f'platform refused the token (HTTP {status}); '
                            'uploads stopped, outbox kept')
        if status in (404, 405):
            raise StopUploads(f'platform has no events endpoint at {self._url} (HTTP {status}); '
                              'check platform_url; uploads stopped, outbox kept')
        if 400 <= status < 500 and status not in (408, 429):
            if len(batch) > 1:
                half = len(batch) // 2
                first = self._send(batch[:half], poison, bisect)
                second = self._send(batch[half:], poison, bisect)
                return first[0] + second[0], first[1] + second[1]
            self._quarantine(batch[0], f'HTTP {status}: {response.text[:300]}')
            return 0, 1
        if status == 500:
            reason = f'HTTP 500: {response.text[:300]}'
            if not bisect:
                raise _ServerFailure(f'platform answered HTTP 500 ({response.text[:200]})')
            if len(batch) == 1:
                poison.append((batch[0], reason))
                raise _ServerFailure(f'platform failed (HTTP 500) on event {batch[0].event_id}')
            half = len(batch) // 2
            done, failures = [0, 0], 0
            for part in (batch[:half], batch[half:]):
                try:
                    delivered, held = self._send(part, poison, bisect)
                    done[0] += delivered
                    done[1] += held
                except _ServerFailure:
                    failures += 1
            if failures == 2 and not done[0]:
                raise _ServerFailure('platform failed (HTTP 500) on every part of the batch')
            return done[0], done[1]
        if not 200 <= status < 300:
            raise TransientError(f'platform answered HTTP {status}')
        try:
            acked = response.json()['acked']
        except (ValueError, KeyError, TypeError):
            raise TransientError('platform answered 2xx without a valid ack') from None
        if acked != len(batch):
            raise TransientError(f'platform acked {acked!r} of {len(batch)} events')
        self.outbox.delete([event.seq for event in batch])
        return len(batch), 0

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
        poison: list = []
        bisect = self._server_failures >= POISON_AFTER
        try:
            delivered, quarantined = self._send(batch, poison, bisect)
        except _ServerFailure as exc:
            self._server_failures += 1
            if bisect:
                raise TransientError(f'platform failed (HTTP 500) on all {len(batch)} events '
                                     'sent') from None
            raise TransientError(str(exc)) from None
        self._server_failures = 0
        if poison and delivered:
            # Other events went through: these alone break the platform. Keep them aside.
            for event, reason in poison:
                self._quarantine(event, f'platform fails on this event: {reason}')
            quarantined += len(poison)
        self.sent += delivered
        if delivered or quarantined:
            self.backoff.reset()
            self.last_error = None
        return delivered + quarantined

    # --- the loop ------------------------------------------------------------------------------
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
                waited = time.monotonic() - last_progress
                if until_empty and give_up_s is not None and waited >= give_up_s:
                    return UNREACHABLE
                delay = self.backoff.next_delay()
                if until_empty and give_up_s is not None:
                    delay = min(delay, max(0.0, give_up_s - waited))
                self.log(f'{exc}; retrying in {delay:.1f} s '
                         f'(attempt {self.backoff.failures})')
                self._pause(delay, stop, wake)
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
