"""Till receipts in: `retailbot platform import-purchases` (CSV and JSON lines) and the receipts
API, on SQLite and PostgreSQL. Idempotent by receipt id; every kind of bad row is reported as
FILE:LINE and skipped while the good ones are stored; sizes are bounded."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from loop_support import DAY, chain, receipts_for
from platform_support import ADMIN, platform_cli
from retail_platform.app import create_app

HEADER = 'receipt_id,store_id,time,member_id,code,sku,qty,price_cny\n'
GOOD_CSV = (HEADER
            + 'r-1,s-1,2026-11-02T15:00:00,m-0001,,TV-85,1,9999\n'
            + 'r-1,s-1,2026-11-02T15:00:00,m-0001,,CABLE,2,20\n'
            + 'r-2,s-1,2026-11-02T15:01:00+08:00,,K7Q2,HP-1,1,899.0\n')

# one bad row of each kind: (row, what the report must say)
BAD_CSV_ROWS = [
    ('r-3,s-1,yesterday,,,TV-85,1,10', 'ISO 8601'),
    ('r-4,s-1,2026-11-02T15:00:00,,,TV-85,one,10', 'qty must be a whole number'),
    ('r-5,s-1,2026-11-02T15:00:00,,,TV-85,1,nan', 'price_cny'),
    ('r-6,s-1,2026-11-02T15:00:00,,,TV-85,1,-5', 'price_cny'),
    ('r-7,s-1,2026-11-02T15:00:00,,,TV 85,1,10', 'sku'),
    ('r-8,s-1,2026-11-02T15:00:00,,lowercase,TV-85,1,10', 'code'),
    ('r-9,s-9,2026-11-02T15:00:00,,,TV-85,1,10', 'no store s-9'),
    ('r-10,s-1,2026-11-02T15:00:00,,,TV-85,1', 'columns'),
    ('r-11,s-1,2250-01-01T00:00:00,,,TV-85,1,10', 'between 2000 and 2100'),
    ('r-12,s-1,2026-11-02T15:00:00,m 1,,TV-85,1,10', 'member_id'),
    ('r-13,s-1,2026-11-02T15:00:00,,,TV-85,99999,10', 'qty'),
    ('x' * 9000, 'longer than'),
]


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding='utf-8')
    return path


@pytest.fixture
def database(engine_target):
    chain(engine_target)
    return engine_target


def test_csv_import_stores_receipts_once_and_reports_each_bad_row_by_file_and_line(database, tmp_path):
    rows = [row for row, _ in BAD_CSV_ROWS]
    path = _write(tmp_path, 'till.csv', GOOD_CSV + '\n'.join(rows) + '\n')
    result = platform_cli('import-purchases', '--database', database, str(path), '--json')
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)['stored'] == 2
    problems = result.stderr.splitlines()
    assert 'Traceback' not in result.stderr
    for number, (_, words) in enumerate(BAD_CSV_ROWS, start=5):
        line = next((p for p in problems if p.startswith(f'till.csv:{number}:')), None)
        assert line is not None and words in line, (number, words, problems)
    again = platform_cli('import-purchases', '--database', database, str(path), '--json')
    assert json.loads(again.stdout)['stored'] == 0 and json.loads(again.stdout)['duplicate'] == 2
    changed = _write(tmp_path, 'fix.csv', HEADER + 'r-2,s-1,2026-11-02T15:01:00+08:00,,K7Q2,HP-1,2,899\n')
    refused = platform_cli('import-purchases', '--database', database, str(changed))
    assert refused.returncode == 1 and 'fix.csv:2: receipt_id_reused' in refused.stderr


def test_jsonl_import_and_the_receipts_api(database, tmp_path):
    lines = [json.dumps(r) for r in receipts_for()] + [
        '{"receipt_id": "r-9", "store_id": "s-1", "time": 1.78e9, "lines": []}',
        'not json', '[1, 2]', '{"receipt_id": "r-10"}',
        json.dumps({'receipt_id': 'r-11', 'store_id': 's-1', 'time': 1.78e9,
                    'lines': [{'sku': 'A', 'qty': 1, 'price_cny': 1}] * 501}),
        '[' * 100000]
    path = _write(tmp_path, 'till.jsonl', '\n'.join(lines) + '\n')
    result = platform_cli('import-purchases', '--database', database, str(path), '--json')
    assert json.loads(result.stdout)['stored'] == 3, result.stderr
    for number in range(4, 10):
        assert f'till.jsonl:{number}:' in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr
    with TestClient(create_app(database, ADMIN), raise_server_exceptions=False) as client:
        admin = {'Authorization': f'Bearer {ADMIN}'}
        page = client.get('/v1/stores/s-1/receipts', headers=admin).json()['receipts']
        assert [r['receipt_id'] for r in page] == ['r-1', 'r-2', 'r-3']
        assert page[1]['code'] == 'K7Q2' and page[1]['member_id'] is None
        assert page[1]['lines'][1] == {'sku': 'CABLE', 'qty': 2, 'price_cny': 20.0}


def test_missing_or_unreadable_files_are_one_line_errors(database, tmp_path):
    missing = platform_cli('import-purchases', '--database', database, str(tmp_path / 'no.csv'))
    assert missing.returncode == 2 and missing.stderr.count('\n') == 1
    binary = tmp_path / 'bin.csv'
    binary.write_bytes(HEADER.encode() + b'\xff\xfe\x00garbage\n')
    result = platform_cli('import-purchases', '--database', database, str(binary))
    assert result.returncode == 2 and 'not UTF-8' in result.stderr and 'Traceback' not in result.stderr


RECEIPT_ROLES = {  # role: (POST own store, POST other store, GET own, GET other)
    'robot': (403, 403, 403, 403), 'store_manager': (200, 403, 200, 403),
    'region': (200, 403, 200, 403), 'analyst': (403, 403, 200, 200), 'admin': (200, 200, 200, 200)}


def test_receipts_api_roles_and_bounds(engine_target):
    tokens = chain(engine_target)
    tokens['admin'] = ADMIN
    receipt = receipts_for(DAY)[0]
    with TestClient(create_app(engine_target, ADMIN), raise_server_exceptions=False) as client:
        for role, expected in RECEIPT_ROLES.items():
            auth = {'Authorization': f'Bearer {tokens[role]}'}
            got = []
            for store in ('s-1', 's-2'):
                body = json.dumps(dict(receipt, store_id=store, receipt_id=f'{role}-{store}'))
                got.append(client.post(f'/v1/stores/{store}/receipts', content=body.encode(),
                                       headers=auth).status_code)
            for store in ('s-1', 's-2'):
                got.append(client.get(f'/v1/stores/{store}/receipts', headers=auth).status_code)
            assert tuple(got) == expected, (role, got)
        admin = {'Authorization': f'Bearer {ADMIN}'}
        wrong = client.post('/v1/stores/s-1/receipts', headers=admin,
                            content=json.dumps(dict(receipt, store_id='s-2')).encode()).json()
        assert wrong['bad'] == 1 and 'not s-1' in wrong['problems'][0]
        big = client.post('/v1/stores/s-1/receipts', headers=admin, content=b'x' * (17 << 20))
        assert big.status_code == 413
