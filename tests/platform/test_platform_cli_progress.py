"""`retailbot platform import-purchases` shows its progress (bytes read of the file) on stderr
when stderr is a terminal or --progress asks for it, one line per refresh in a log; stdout (what
--json scripts read) is the same either way, and without --progress a pipe gets no progress."""
from __future__ import annotations

import json

from loop_support import chain
from platform_support import platform_cli

HEADER = 'receipt_id,store_id,time,member_id,code,sku,qty,price_cny\n'


def _receipts(path, first: int, count: int):
    rows = [f'r-{i},s-1,2026-11-02T15:{i % 60:02d}:00,,,TV-85,1,9999\n'
            for i in range(first, first + count)]
    path.write_text(HEADER + ''.join(rows), encoding='utf-8')
    return path


def test_progress_on_stderr_only_when_asked_and_json_unchanged(engine_target, tmp_path):
    chain(engine_target)
    plain = platform_cli('import-purchases', str(_receipts(tmp_path / 'a.csv', 0, 2500)),
                         '--database', engine_target, '--json')
    assert plain.returncode == 0, plain.stderr
    assert plain.stderr == '', 'no progress in a pipe unless --progress'
    big = _receipts(tmp_path / 'b.csv', 10_000, 2500)
    shown = platform_cli('import-purchases', str(big), '--database', engine_target, '--json',
                         '--progress')
    assert shown.returncode == 0, shown.stderr
    # stdout: exactly the one JSON line, the same shape as without --progress
    assert len(shown.stdout.splitlines()) == 1
    before, after = json.loads(plain.stdout), json.loads(shown.stdout)
    assert after.keys() == before.keys() and after == dict(before, stored=2500) \
        and before['stored'] == 2500
    lines = shown.stderr.splitlines()
    assert lines and '\r' not in shown.stderr, shown.stderr
    assert all(line.startswith('b.csv') for line in lines), lines
    assert '100%' in lines[-1], lines[-1]
