"""`retailbot recommend` and `retailbot recommend eval` as a technician runs them."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from rostest_support import console_script

DATA = Path(__file__).resolve().parent.parent / 'data' / 'recommendation'
CATALOG, HISTORY = str(DATA / 'catalog.csv'), str(DATA / 'history.csv')


def retailbot(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([console_script('retailbot'), *args], capture_output=True, text=True,
                          timeout=timeout)


def test_json_has_one_line_per_customer_in_the_documented_shape():
    result = retailbot('recommend', '--catalog', CATALOG, '--history', HISTORY,
                       '--customers', 'm-1,m-2,nobody', '--k', '2', '--json')
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line['customer_id'] for line in lines] == ['m-1', 'm-2', 'nobody']
    for line in lines:
        assert len(line['items']) == 2
        for item in line['items']:
            assert {'sku', 'score', 'reason', 'reason_zh', 'reason_en'} <= set(item)
            assert item['reason'] == item['reason_zh']
    assert lines[1]['items'][0]['sku'] == 'HP-INK1'


def test_constraints_from_the_command_line():
    result = retailbot('recommend', '--catalog', CATALOG, '--history', HISTORY, '--customers', 'm-1',
                       '--k', '5', '--category', 'phone', '--brand', 'xiaomi', '--min-price', '1000',
                       '--max-price', '3000', '--json', '--language', 'en')
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)['items']
    assert [i['sku'] for i in items] == ['MI-R1']
    assert items[0]['reason'] == items[0]['reason_en']


def test_bad_rows_are_skipped_with_a_message_naming_the_line():
    result = retailbot('recommend', '--catalog', CATALOG, '--history', HISTORY, '--customers', 'm-1',
                       '--k', '1', '--category', 'phone', '--max-price', '3000')
    assert result.returncode == 0
    assert f"{CATALOG}: line 15: price_cny 'cheap' is not a number (skipped)" in result.stderr
    assert f'{CATALOG}: line 16: stock -1 is negative (skipped)' in result.stderr
    assert f"{HISTORY}: line 10: ts 'yesterday' is not an ISO 8601 time (skipped)" in result.stderr
    assert 'not in the catalog (NOPE-1)' in result.stderr
    assert 'Traceback' not in result.stderr
    assert result.stdout.startswith('m-1 (2 products bought)')
    assert '因为您购买过华为' in result.stdout


@pytest.mark.parametrize('args, message', [
    (['--catalog', 'nope.csv', '--history', HISTORY, '--customers', 'm-1'], 'catalog nope.csv: no such file'),
    (['--catalog', CATALOG, '--history', 'nope.csv', '--customers', 'm-1'], 'history nope.csv: no such file'),
    (['--catalog', CATALOG, '--history', HISTORY], '--customers is required'),
    (['--catalog', CATALOG, '--history', HISTORY, '--customers', 'm-1', '--k', '0'], '--k must be at least 1'),
])
def test_unusable_input_exits_2_with_one_line(args, message):
    result = retailbot('recommend', *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_shows_both_forms():
    result = retailbot('recommend', '--help')
    assert result.returncode == 0
    assert '{eval}' in result.stdout and '--customers' in result.stdout and '--max-price' in result.stdout


@pytest.mark.slow
def test_eval_on_a_planted_store_beats_both_baselines(planted_files):
    args = ('recommend', 'eval', '--catalog', str(planted_files / 'catalog.csv'),
            '--history', str(planted_files / 'history.csv'), '--k', '10')
    result = retailbot(*args, '--json')
    assert result.returncode == 0, result.stderr
    rows = {r['method']: r for r in map(json.loads, result.stdout.splitlines())}
    hybrid, best, als = rows['hybrid'], rows['best sellers'], rows['ALS (implicit)']
    assert hybrid['members'] == best['members'] == als['members'] > 500
    assert hybrid['hr'] >= 2 * best['hr'], rows
    assert hybrid['hr'] > als['hr'] and hybrid['ndcg'] > als['ndcg'], rows
    assert hybrid['coverage'] > best['coverage']

    table = retailbot(*args)
    assert table.returncode == 0, table.stderr
    for word in ('hybrid', 'best sellers', 'ALS (implicit)', 'HR@10', 'NDCG@10', 'coverage'):
        assert word in table.stdout
