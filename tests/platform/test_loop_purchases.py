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
    ('x' * 70000, 'longer than'),
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


def test_a_receipt_number_is_its_stores(engine_target, tmp_path):
    """Attack round: receipts were keyed by receipt_id alone. Two stores' tills both print receipt
    0001: the second store's was refused as `receipt_id_reused` (its purchase lost to the funnel
    and the member's history), and a store manager could block another store's receipts by
    importing its numbers first. A receipt is now (store, number): each store's is stored, each
    is still idempotent, a changed one still refused."""
    tokens = chain(engine_target)
    receipt = dict(receipts_for(DAY)[0], receipt_id='0001')
    with TestClient(create_app(engine_target, ADMIN), raise_server_exceptions=False) as client:
        def post(store: str, token: str, **change) -> dict:
            answer = client.post(f'/v1/stores/{store}/receipts',
                                 headers={'Authorization': f'Bearer {token}'},
                                 content=json.dumps(dict(receipt, store_id=store, **change)).encode())
            assert answer.status_code == 200, answer.text
            return answer.json()
        # the manager of s-1 imports s-1's receipt 0001 first (or squats s-2's number)
        assert post('s-1', tokens['store_manager'])['stored'] == 1
        # s-2's own receipt 0001, other lines: stored, not refused
        other_lines = [{'sku': 'KETTLE', 'qty': 1, 'price_cny': 199.0}]
        assert post('s-2', ADMIN, lines=other_lines) == {'stored': 1, 'duplicate': 0, 'bad': 0,
                                                         'problems': []}
        assert post('s-2', ADMIN, lines=other_lines)['duplicate'] == 1        # idempotent
        changed = post('s-2', ADMIN, lines=[{'sku': 'KETTLE', 'qty': 2, 'price_cny': 199.0}])
        assert changed['bad'] == 1 and 'receipt_id_reused' in changed['problems'][0]
        admin = {'Authorization': f'Bearer {ADMIN}'}
        for store, sku in (('s-1', receipt['lines'][0]['sku']), ('s-2', 'KETTLE')):
            page = client.get(f'/v1/stores/{store}/receipts', headers=admin).json()['receipts']
            assert [(r['receipt_id'], r['lines'][0]['sku']) for r in page] == [('0001', sku)]
    # a chain-wide CSV export with both stores' receipt 0002, one after the other
    path = _write(tmp_path, 'chain.csv', HEADER
                  + '0002,s-1,2026-11-02T15:00:00,,,TV-85,1,9999\n'
                  + '0002,s-2,2026-11-02T15:05:00,,,HP-1,1,899\n'
                  + '0002,s-2,2026-11-02T15:05:00,,,CABLE,1,20\n')
    result = platform_cli('import-purchases', '--database', engine_target, str(path), '--json')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)['stored'] == 2


def test_a_number_too_long_to_read_is_a_bad_line_not_a_500(engine_target, tmp_path):
    """Attack round: a JSON line with an integer of 5 000 digits made json.loads raise a plain
    ValueError (Python's 4 300-digit limit), which the reader did not catch: the receipts API
    answered 500 and the import stopped with a traceback. Now it is a bad line like any other."""
    chain(engine_target)
    good = json.dumps(dict(receipts_for(DAY)[0], receipt_id='long-ok'))
    long_number = ('{"receipt_id": "long-1", "store_id": "s-1", "time": "2026-11-02T15:00:00", '
                   '"lines": [{"sku": "A", "qty": ' + '9' * 5000 + ', "price_cny": 1}]}')
    with TestClient(create_app(engine_target, ADMIN), raise_server_exceptions=False) as client:
        answer = client.post('/v1/stores/s-1/receipts', headers={'Authorization': f'Bearer {ADMIN}'},
                             content=(long_number + '\n' + good).encode())
    assert answer.status_code == 200, answer.text
    assert answer.json()['stored'] == 1 and 'body:1: not JSON' in answer.json()['problems'][0]
    path = _write(tmp_path, 'long.jsonl', long_number + '\n')
    result = platform_cli('import-purchases', '--database', engine_target, str(path))
    assert result.returncode == 1 and 'long.jsonl:1: not JSON' in result.stderr
    assert 'Traceback' not in result.stderr


@pytest.mark.parametrize('field, value, refused', [
    ('qty', True, True), ('qty', '5', True), ('qty', 5.5, True), ('qty', 5.0, False), ('qty', 5, False),
    ('price_cny', False, True), ('price_cny', '5', True), ('price_cny', 5, False),
    ('price_cny', 5.5, False),
])
def test_a_quantity_or_price_is_a_json_number_not_true_or_text(field, value, refused):
    """Attack round (fault 13): `"qty": true` and `"qty": "5"` were taken as 1 and 5 (pydantic's
    lax mode); a till's JSON with them is a bad line. 5.0 is the integer 5 (JSON Schema)."""
    from retail_platform.purchases import receipt_from_json
    line = {'sku': 'A', 'qty': 1, 'price_cny': 10.0, field: value}
    obj = {'receipt_id': 'r-1', 'store_id': 's-1', 'time': 1.78e9, 'lines': [line]}
    if refused:
        with pytest.raises(ValueError, match=f'lines.0.{field}'):
            receipt_from_json(obj, None)
    else:
        assert getattr(receipt_from_json(obj, None).lines[0], field) == value


def test_a_receipt_is_stored_whole_or_not_at_all(database, tmp_path):
    """A bad row refuses its whole receipt (a receipt stored without a line would have a wrong
    total and could never be corrected: the corrected file would be `receipt_id_reused`)."""
    first = _write(tmp_path, 'part.csv', HEADER
                   + 'p1,s-1,2026-11-02T15:00:00,,,SP-AF6,1,399\n'
                   + 'p1,s-1,2026-11-02T15:00:00,,,MI-TVS65,x,2999\n'
                   + 'p2,s-1,2026-11-02T15:05:00,,,SP-AF6,1,399\n')
    result = platform_cli('import-purchases', '--database', database, str(first), '--json')
    assert result.returncode == 1 and json.loads(result.stdout)['stored'] == 1, result.stderr
    assert 'part.csv:3: qty must be a whole number' in result.stderr
    assert 'part.csv:2: receipt p1 refused whole: 1 bad row(s) of it' in result.stderr
    fixed = _write(tmp_path, 'fixed.csv', HEADER
                   + 'p1,s-1,2026-11-02T15:00:00,,,SP-AF6,1,399\n'
                   + 'p1,s-1,2026-11-02T15:00:00,,,MI-TVS65,1,2999\n')
    again = platform_cli('import-purchases', '--database', database, str(fixed), '--json')
    assert again.returncode == 0 and json.loads(again.stdout)['stored'] == 1, again.stderr
    long_one = _write(tmp_path, 'long.jsonl', json.dumps(
        {'receipt_id': 'j-500', 'store_id': 's-1', 'time': '2026-11-02T16:00:00',
         'lines': [{'sku': f'SKU-{n:04d}-LONG-NAME', 'qty': 1, 'price_cny': 1.5} for n in range(500)]}) + '\n')
    assert platform_cli('import-purchases', '--database', database, str(long_one)).returncode == 0
