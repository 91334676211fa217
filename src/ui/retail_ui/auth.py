"""Staff login for the console: a per-store secret from the robot's data dir, sessions, rate limit.

Pure (no rclpy, no web framework): the web layer asks `StaffAuth.login(client, password)` and
`StaffAuth.check(token)`.

The secret file (default `<data_dir>/ui/staff_secret`, mode 0600) holds either a PBKDF2 hash
written by `retail_ui_staff_password` (`pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>`) or,
for a store that manages its own token, the plain token (at least 12 characters). It is never
the platform's sync token: a secret equal to it is refused (`AuthConfigError`).

Guessing is rate-limited twice: per client address (`max_failures` failures within `window_s`
lock that address out for the rest of the window) and for the whole robot (`5 x max_failures`
failures in the window lock every new login out), so a slow distributed guess gets nowhere
either. A successful login does not clear the robot-wide count. The client address is the real
peer (retail_common/web_guard.py: X-Forwarded-For only from a trusted proxy).

So that guessing cannot lock the store's own staff out (OWASP's "device cookies"), a successful
login also hands the device a signed device token (`LoginResult.device`, kept by the web layer in
a long-lived cookie). A login that presents a valid device token is judged by that device's own
failures only (`max_failures` within `window_s`), never by the address or robot-wide counts that
strangers run up. Device tokens are signed with a key derived from the stored secret: a new staff
password untrusts every device.

Sessions live on the server only: `logout(token)` ends one (its token is refused from then on);
each session has its own CSRF token (`Session.csrf`, checked by `csrf_ok`). With `secret_file`
given, the file is watched: a password changed, set or removed while the robot runs is used by
the next request, and every session of the old password ends.
"""
from __future__ import annotations

import argparse
import functools
import getpass
import hashlib
import hmac
import os
import secrets
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

SCHEME = 'pbkdf2_sha256'
ITERATIONS = 200_000
MIN_SECRET_LEN = 12
MAX_PASSWORD_LEN = 256


class AuthConfigError(Exception):
    """The staff secret cannot be used (missing, too short, unreadable, the platform token)."""


def hash_password(password: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """`pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>` for `password`."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac('sha256', password.encode('utf-8'), salt, iterations)
    return f'{SCHEME}${iterations}${salt.hex()}${digest.hex()}'


def _matches(stored: str, password: str) -> bool:
    if stored.startswith(SCHEME + '$'):
        _, iterations, salt, digest = stored.split('$')
        candidate = hashlib.pbkdf2_hmac('sha256', password.encode('utf-8'), bytes.fromhex(salt), int(iterations))
        return hmac.compare_digest(candidate.hex(), digest)
    return hmac.compare_digest(stored.encode('utf-8'), password.encode('utf-8'))


def load_secret(path: str | os.PathLike, platform_token_file: str | os.PathLike | None = None) -> str:
    """The stored staff secret (hash or plain token); raises AuthConfigError with one line."""
    path = Path(path)
    try:
        text = path.read_text(encoding='utf-8').strip()
    except FileNotFoundError:
        raise AuthConfigError(f'no staff password at {path}: set one with `retail_ui_staff_password {path}`') from None
    except OSError as exc:
        raise AuthConfigError(f'staff password file {path}: {exc.strerror}') from None
    if text.startswith(SCHEME + '$'):
        parts = text.split('$')
        try:
            ok = len(parts) == 4 and int(parts[1]) >= 10_000 and bytes.fromhex(parts[2]) and bytes.fromhex(parts[3])
        except ValueError:
            ok = False
        if not ok:
            raise AuthConfigError(f'staff password file {path}: malformed {SCHEME} hash')
    elif len(text) < MIN_SECRET_LEN:
        raise AuthConfigError(f'staff password file {path}: a plain token must have at least {MIN_SECRET_LEN} characters')
    if platform_token_file:
        try:
            token = Path(platform_token_file).read_text(encoding='utf-8').strip()
        except OSError:
            token = ''
        if token and (text == token or (text.startswith(SCHEME + '$') and _matches(text, token))):
            raise AuthConfigError(f'staff password file {path}: is the platform token ({platform_token_file}); '
                                  'the console needs its own staff password')
    return text


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    token: str = ''
    retry_after_s: float = 0.0    # > 0: rate-limited, try again after this long
    message: str = ''
    device: str = ''              # on success: the device token to keep (see the module text)


def _locked(method):
    """Run a StaffAuth method under its lock (the web server calls from threads and the event loop)."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return wrapper


@dataclass
class Session:
    expiry: float                 # clock time
    csrf: str                     # per-session token every state-changing console request carries


class StaffAuth:
    """Checks staff passwords, hands out sessions (token + CSRF token), and rate-limits guessing.

    `secret`: what `load_secret` returned, or None (no password configured: every login refused).
    `secret_file`: when given, the file is watched: a password changed or set while the robot runs
    is used from the next request on, and every session opened under the old one ends (a removed
    or unusable file locks the console, also ending every session). `on_sessions_ended()` is
    called whenever sessions end other than by expiry (logout, password change).
    """

    def __init__(self, secret: str | None, *, max_failures: int = 5, window_s: float = 300.0,
                 session_ttl_s: float = 8 * 3600.0, clock: Callable[[], float] = time.monotonic,
                 secret_file: str | os.PathLike | None = None,
                 platform_token_file: str | os.PathLike | None = None) -> None:
        self.secret = secret
        self.max_failures = max_failures
        self.window_s = window_s
        self.session_ttl_s = session_ttl_s
        self.clock = clock
        self.secret_file = Path(secret_file) if secret_file else None
        self.platform_token_file = platform_token_file
        self.secret_error = ''
        self._lock = threading.RLock()
        self._signature = self._file_signature()
        self._failures: dict[str, deque[float]] = {}
        self._all_failures: deque[float] = deque()
        self._device_failures: dict[str, deque[float]] = {}
        self._sessions: dict[str, Session] = {}
        self.on_sessions_ended: Callable[[], None] = lambda: None

    def _file_signature(self) -> tuple | None:
        if self.secret_file is None:
            return None
        try:
            st = self.secret_file.stat()
        except OSError:
            return ('missing',)
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    @_locked
    def refresh(self) -> None:
        """Re-read the secret file if it changed; a change ends every session."""
        signature = self._file_signature()
        if signature is None or signature == self._signature:
            return
        self._signature = signature
        try:
            secret: str | None = load_secret(self.secret_file, self.platform_token_file)
            self.secret_error = ''
        except AuthConfigError as exc:
            secret, self.secret_error = None, str(exc)
        if secret != self.secret or secret is None:
            self.secret = secret
            if self._sessions:
                self._sessions.clear()
                self.on_sessions_ended()

    def _recent(self, times: deque[float], now: float) -> deque[float]:
        while times and now - times[0] > self.window_s:
            times.popleft()
        return times

    @_locked
    def retry_after(self, client: str) -> float:
        """Seconds this client must wait before trying again (0: may try now)."""
        now = self.clock()
        mine = self._recent(self._failures.get(client, deque()), now)
        everyone = self._recent(self._all_failures, now)
        waits = [0.0]
        if len(mine) >= self.max_failures:
            waits.append(mine[-self.max_failures] + self.window_s - now)
        if len(everyone) >= 5 * self.max_failures:
            waits.append(everyone[-5 * self.max_failures] + self.window_s - now)
        return max(waits)

    def _device_signature(self, nonce: str) -> str:
        key = hashlib.sha256(b'retail-console-device\0' + (self.secret or '').encode('utf-8')).digest()
        return hmac.new(key, nonce.encode('ascii'), hashlib.sha256).hexdigest()[:32]

    def _trusted_device(self, device: str | None) -> str:
        """The nonce of a valid device token ('' when absent, malformed, forged or of an old secret)."""
        if self.secret is None or not device or len(device) > 100 or device.count('.') != 1:
            return ''
        nonce, signature = device.split('.')
        if len(nonce) != 32 or not all(c in '0123456789abcdef' for c in nonce):
            return ''
        return nonce if hmac.compare_digest(signature, self._device_signature(nonce)) else ''

    def _new_device(self) -> str:
        nonce = secrets.token_hex(16)
        return f'{nonce}.{self._device_signature(nonce)}'

    @_locked
    def device_retry_after(self, nonce: str) -> float:
        now = self.clock()
        mine = self._recent(self._device_failures.get(nonce, deque()), now)
        if len(mine) >= self.max_failures:
            return mine[-self.max_failures] + self.window_s - now
        return 0.0

    def _count_failure(self, client: str, device_nonce: str) -> None:
        now = self.clock()
        if device_nonce:                                    # a known device: only its own count
            self._device_failures.setdefault(device_nonce, deque()).append(now)
            if len(self._device_failures) > 10_000:
                self._device_failures = {k: v for k, v in self._device_failures.items() if self._recent(v, now)}
            return
        self._failures.setdefault(client, deque()).append(now)
        self._all_failures.append(now)
        if len(self._failures) > 10_000:               # bounded memory under a flood of addresses
            self._failures = {k: v for k, v in self._failures.items() if self._recent(v, now)}

    @_locked
    def login(self, client: str, password: str, device: str | None = None) -> LoginResult:
        """Check `password` from `client` (its address) on a device that may carry a device token."""
        self.refresh()
        device_nonce = self._trusted_device(device)
        wait = self.device_retry_after(device_nonce) if device_nonce else self.retry_after(client)
        if wait > 0:
            return LoginResult(False, retry_after_s=wait, message='too many wrong passwords: try again later')
        if self.secret is None:
            return LoginResult(False, message='no staff password is set on this robot')
        if not password or len(password) > MAX_PASSWORD_LEN or not _matches(self.secret, password):
            self._count_failure(client, device_nonce)
            return LoginResult(False, message='wrong password')
        if device_nonce:
            self._device_failures.pop(device_nonce, None)
        else:
            self._failures.pop(client, None)
        token = secrets.token_urlsafe(32)
        now = self.clock()
        self._sessions = {t: s for t, s in self._sessions.items() if s.expiry >= now}
        self._sessions[token] = Session(now + self.session_ttl_s, secrets.token_urlsafe(24))
        return LoginResult(True, token=token, device=device if device_nonce and device else self._new_device())

    @_locked
    def session(self, token: str | None) -> Session | None:
        """The live session of `token` (None: unknown, ended or expired)."""
        self.refresh()
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        if self.clock() > session.expiry:
            del self._sessions[token]
            return None
        return session

    def check(self, token: str | None) -> bool:
        return self.session(token) is not None

    @_locked
    def csrf_ok(self, token: str | None, csrf: str | None) -> bool:
        session = self.session(token)
        return session is not None and bool(csrf) and hmac.compare_digest(session.csrf.encode(), (csrf or '').encode())

    @_locked
    def logged_in(self) -> bool:
        """True while at least one staff session is live (the console's session state)."""
        self.refresh()
        now = self.clock()
        return any(s.expiry >= now for s in self._sessions.values())

    @_locked
    def logout(self, token: str | None) -> bool:
        """End the session of `token` on the server (True if there was one)."""
        ended = self._sessions.pop(token or '', None) is not None
        if ended:
            self.on_sessions_ended()
        return ended


def password_main(argv: list[str] | None = None) -> int:
    """`retail_ui_staff_password FILE`: store a hashed staff password for the console (mode 0600)."""
    parser = argparse.ArgumentParser(prog='retail_ui_staff_password',
                                     description="Set the store staff's console password (stored hashed).")
    parser.add_argument('file', help='the staff secret file, e.g. <data_dir>/ui/staff_secret')
    parser.add_argument('--stdin', action='store_true', help='read the password from standard input')
    args = parser.parse_args(argv)
    password = sys.stdin.readline().rstrip('\n') if args.stdin else getpass.getpass('New staff password: ')
    if len(password) < 8:
        print('retail_ui_staff_password: the password needs at least 8 characters', file=sys.stderr)
        return 2
    path = Path(args.file)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w', encoding='utf-8') as handle:
        handle.write(hash_password(password) + '\n')
    print(f'staff password stored in {path}')
    return 0
