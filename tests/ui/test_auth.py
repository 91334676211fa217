"""Staff login core: the secret file, sessions, and the rate limit against guessing."""
from __future__ import annotations

import pytest

from retail_ui.auth import AuthConfigError, StaffAuth, hash_password, load_secret, password_main


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_hashed_password_logs_in_and_the_session_expires(tmp_path):
    clock = Clock()
    secret = tmp_path / 'staff_secret'
    secret.write_text(hash_password('correct horse', iterations=10_000) + '\n')
    auth = StaffAuth(load_secret(secret), session_ttl_s=60, clock=clock)
    assert not auth.login('10.0.0.5', 'wrong').ok
    result = auth.login('10.0.0.5', 'correct horse')
    assert result.ok and auth.check(result.token)
    assert not auth.check('forged-token') and not auth.check('')
    clock.now += 61
    assert not auth.check(result.token)


def test_wrong_passwords_lock_the_address_out_then_the_window_passes(tmp_path):
    clock = Clock()
    auth = StaffAuth('a-long-plain-store-token', max_failures=3, window_s=100, clock=clock)
    for _ in range(3):
        assert auth.login('1.2.3.4', 'guess').message == 'wrong password'
    locked = auth.login('1.2.3.4', 'a-long-plain-store-token')     # even the right one: locked out
    assert not locked.ok and locked.retry_after_s > 0
    assert auth.login('5.6.7.8', 'a-long-plain-store-token').ok    # another address is not
    clock.now += 101
    assert auth.login('1.2.3.4', 'a-long-plain-store-token').ok


def test_many_addresses_guessing_lock_every_login_out():
    clock = Clock()
    auth = StaffAuth('a-long-plain-store-token', max_failures=2, window_s=100, clock=clock)
    for i in range(10):                                   # 5 x max_failures from 10 addresses
        auth.login(f'10.0.0.{i}', 'guess')
    assert auth.login('10.9.9.9', 'a-long-plain-store-token').retry_after_s > 0


def test_no_secret_refuses_every_login():
    result = StaffAuth(None).login('127.0.0.1', 'anything')
    assert not result.ok and 'no staff password' in result.message


@pytest.mark.parametrize('content, needle', [(None, 'no staff password'), ('short', 'at least'),
                                             ('pbkdf2_sha256$10$zz$zz', 'malformed')])
def test_unusable_secret_files_are_one_line(tmp_path, content, needle):
    path = tmp_path / 'staff_secret'
    if content is not None:
        path.write_text(content)
    with pytest.raises(AuthConfigError, match=needle) as info:
        load_secret(path)
    assert str(path) in str(info.value) and '\n' not in str(info.value)


@pytest.mark.parametrize('hashed', [False, True])
def test_the_platform_token_is_refused_as_staff_secret(tmp_path, hashed):
    token = tmp_path / 'token'
    token.write_text('platform-bearer-token-123\n')
    secret = tmp_path / 'staff_secret'
    secret.write_text(hash_password('platform-bearer-token-123', iterations=10_000) if hashed else 'platform-bearer-token-123')
    with pytest.raises(AuthConfigError, match='platform token'):
        load_secret(secret, token)


def test_password_tool_writes_a_private_hash(tmp_path, monkeypatch, capsys):
    import io
    import stat
    path = tmp_path / 'ui' / 'staff_secret'
    monkeypatch.setattr('sys.stdin', io.StringIO('store-pass-2026\n'))
    assert password_main([str(path), '--stdin']) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert 'store-pass-2026' not in path.read_text()
    assert StaffAuth(load_secret(path)).login('x', 'store-pass-2026').ok
    monkeypatch.setattr('sys.stdin', io.StringIO('short\n'))
    assert password_main([str(tmp_path / 'other'), '--stdin']) == 2


def test_sessions_end_on_logout_and_carry_their_own_csrf_token():
    from retail_ui.auth import StaffAuth
    auth = StaffAuth('store-staff-token-1')
    ended = []
    auth.on_sessions_ended = lambda: ended.append(True)
    a, b = (auth.login('127.0.0.1', 'store-staff-token-1').token for _ in range(2))
    csrf_a, csrf_b = auth.session(a).csrf, auth.session(b).csrf
    assert csrf_a != csrf_b
    table = [(a, csrf_a, True), (a, csrf_b, False), (a, '', False), (a, None, False), ('made-up', csrf_a, False),
             (b, csrf_b, True)]
    for token, csrf, ok in table:
        assert auth.csrf_ok(token, csrf) is ok, (token[:4], csrf)
    assert auth.logout(a) and ended == [True]
    assert not auth.check(a) and not auth.csrf_ok(a, csrf_a) and auth.check(b)
    assert not auth.logout(a) and ended == [True]                  # twice: nothing more to end


@pytest.mark.parametrize('change', ['new password', 'file removed', 'unusable file', 'same password rewritten'])
def test_a_watched_password_file_ends_sessions_when_the_password_changes(tmp_path, change):
    from retail_ui.auth import StaffAuth, hash_password, load_secret
    path = tmp_path / 'staff_secret'
    path.write_text(hash_password('old-password-1', iterations=10_000))
    auth = StaffAuth(load_secret(path), secret_file=path)
    token = auth.login('127.0.0.1', 'old-password-1').token
    assert auth.check(token)
    if change == 'new password':
        path.write_text(hash_password('new-password-2', iterations=10_000))
    elif change == 'file removed':
        path.unlink()
    elif change == 'unusable file':
        path.write_text('short')
    else:
        path.write_text(path.read_text() + '\n')
    assert auth.check(token) is (change == 'same password rewritten')
    assert auth.login('127.0.0.2', 'old-password-1').ok is (change == 'same password rewritten')
    assert auth.login('127.0.0.3', 'new-password-2').ok is (change == 'new password')


def test_a_device_that_logged_in_before_is_not_locked_out_by_strangers_guessing():
    """OWASP device cookies: 5 x max_failures wrong guesses from many addresses lock new devices
    out, not the staff tablet that logged in before; its own wrong guesses still lock it."""
    clock = Clock()
    auth = StaffAuth('a-long-plain-store-token', max_failures=2, window_s=100, clock=clock)
    tablet = auth.login('10.0.0.50', 'a-long-plain-store-token')
    assert tablet.ok and tablet.device
    for i in range(10):                                   # a distributed guess: robot-wide lockout
        auth.login(f'10.0.0.{i}', 'guess')
    assert auth.login('10.9.9.9', 'a-long-plain-store-token').retry_after_s > 0
    again = auth.login('10.0.0.50', 'a-long-plain-store-token', tablet.device)
    assert again.ok and again.device == tablet.device
    # the same address without the device token is a stranger
    assert auth.login('10.0.0.50', 'a-long-plain-store-token').retry_after_s > 0


@pytest.mark.parametrize('device', ['', 'x', '0' * 32 + '.' + '0' * 32, 'a' * 5000,
                                    '0123456789abcdef0123456789abcdef.forged', '..', 'é' * 40 + '.x'])
def test_a_forged_or_malformed_device_token_is_a_stranger(device):
    clock = Clock()
    auth = StaffAuth('a-long-plain-store-token', max_failures=1, window_s=100, clock=clock)
    for i in range(5):
        auth.login(f'10.0.0.{i}', 'guess')
    assert auth.login('10.9.9.9', 'a-long-plain-store-token', device).retry_after_s > 0


def test_a_known_device_is_locked_by_its_own_wrong_passwords_and_a_new_password_untrusts_it(tmp_path):
    clock = Clock()
    secret = tmp_path / 'staff_secret'
    secret.write_text('a-long-plain-store-token\n')
    auth = StaffAuth(load_secret(secret), max_failures=2, window_s=100, clock=clock, secret_file=secret)
    device = auth.login('10.0.0.50', 'a-long-plain-store-token').device
    for _ in range(2):
        assert auth.login('10.0.0.50', 'guess', device).message == 'wrong password'
    assert auth.login('10.0.0.50', 'a-long-plain-store-token', device).retry_after_s > 0
    assert auth.login('10.0.0.51', 'a-long-plain-store-token').ok     # the address count is untouched
    clock.now += 101
    secret.write_text('another-long-store-token\n')
    for i in range(10):
        auth.login(f'10.0.0.{i}', 'guess')
    assert auth.login('10.0.0.50', 'another-long-store-token', device).retry_after_s > 0


def test_logged_in_is_the_console_session_state_login_logout_expiry():
    """What the robot's other nodes learn (/ui/staff_session): true only while a session is live."""
    clock = Clock()
    auth = StaffAuth('a-long-plain-store-token', session_ttl_s=60, clock=clock)
    assert not auth.logged_in()
    first = auth.login('10.0.0.5', 'a-long-plain-store-token')
    second = auth.login('10.0.0.6', 'a-long-plain-store-token')
    assert auth.logged_in()
    auth.logout(first.token)
    assert auth.logged_in()          # the other staff member is still logged in
    auth.logout(second.token)
    assert not auth.logged_in()
    auth.login('10.0.0.5', 'a-long-plain-store-token')
    clock.now += 61
    assert not auth.logged_in()      # expired: faces are blurred again
