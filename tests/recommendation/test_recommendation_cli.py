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


def test_exclude_owned_gives_the_discovery_list():
    import csv
    with open(HISTORY, newline='', encoding='utf-8') as handle:
        owned: dict[str, set[str]] = {}
        for row in csv.DictReader(handle):
            owned.setdefault(row.get('customer_id', ''), set()).add(row.get('sku', ''))
    members = sorted(c for c in owned if c.startswith('m-'))[:5]
    plain = retailbot('recommend', '--catalog', CATALOG, '--history', HISTORY, '--customers', ','.join(members),
                      '--k', '30', '--json')
    result = retailbot('recommend', '--catalog', CATALOG, '--history', HISTORY, '--customers', ','.join(members),
                       '--k', '30', '--json', '--exclude-owned')
    assert result.returncode == 0 and plain.returncode == 0, result.stderr
    again = 0
    for line, plain_line in zip(map(json.loads, result.stdout.splitlines()), map(json.loads, plain.stdout.splitlines())):
        skus = {item['sku'] for item in line['items']}
        assert skus and not skus & owned[line['customer_id']], line
        again += len({item['sku'] for item in plain_line['items']} & owned[line['customer_id']])
    assert again > 0  # without the flag, re-bought products (the ink) do come back
    assert '--exclude-owned' in retailbot('recommend', '--help').stdout


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


RETAIL = Path(__file__).resolve().parent.parent / 'data' / 'retail'
PEERS = ('popularity (distinct buyers)', 'item-kNN (cosine)', 'EASE', 'ALS (implicit)')
DISCOVERY_PEERS = ('popularity, owned masked', 'EASE, owned masked')


@pytest.mark.slow
def test_eval_on_a_planted_store_puts_the_hybrid_ahead_of_every_peer(planted_files):
    args = ('recommend', 'eval', '--catalog', str(planted_files / 'catalog.csv'),
            '--history', str(planted_files / 'history.csv'), '--k', '10')
    result = retailbot(*args, '--json')
    assert result.returncode == 0, result.stderr
    rows = {r['method']: r for r in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == {*PEERS, 'hybrid', *DISCOVERY_PEERS, 'hybrid discovery'}
    hybrid = rows['hybrid']
    # discovery: the next product never bought before, the same run, owned products masked
    discovery = rows['hybrid discovery']
    assert discovery['question'] == 'never bought' and hybrid['question'] == 'next purchase'
    assert all(rows[p]['members'] == discovery['members'] > 300 for p in DISCOVERY_PEERS)
    assert discovery['hr'] > max(rows[p]['hr'] for p in DISCOVERY_PEERS), rows
    assert hybrid['owned_durables'] == 0 and discovery['owned_slots'] == 0
    assert 0 < hybrid['owned_slots'] < hybrid['slots']  # the planted consumables come back
    assert all(rows[p]['members'] == hybrid['members'] > 500 for p in PEERS)
    assert hybrid['hr'] >= 2 * rows['popularity (distinct buyers)']['hr'], rows
    assert all(hybrid['hr'] > rows[p]['hr'] for p in PEERS), rows
    assert 'weights:' in hybrid['settings'] and 'validation recall@10' in hybrid['validation']

    table = retailbot(*args)
    assert table.returncode == 0, table.stderr
    for word in (*PEERS, 'hybrid', 'HR@10', 'NDCG@10', 'coverage', 'settings chosen by validation: weights:',
                 *DISCOVERY_PEERS, 'hybrid discovery', 'the next product never bought before',
                 "robot's list: 0 owned durable(s)"):
        assert word in table.stdout


@pytest.mark.slow
def test_eval_time_split_on_real_purchases_reads_gzip(tmp_path):
    """A month of the UCI Online Retail history (CC BY 4.0, tests/data/retail), split in time."""
    import gzip
    with gzip.open(RETAIL / 'history.csv.gz', 'rt', encoding='utf-8') as handle:
        lines = [line for line in handle if line[:1] == 'c' or '2011-03' in line.split(',')[2][:7]]
    lines.append('bad-row,only,three\n')
    history = tmp_path / 'march.csv.gz'
    with gzip.open(history, 'wt', encoding='utf-8') as handle:
        handle.writelines(lines)
    args = ('recommend', 'eval', '--catalog', str(RETAIL / 'catalog.csv'), '--history', str(history),
            '--split', 'time', '--cutoff', '2011-03-22')
    result = retailbot(*args, '--json')
    assert result.returncode == 0, result.stderr
    assert f'{history}: line {len(lines)}: 3 fields, expected 5 (skipped)' in result.stderr
    rows = {r['method']: r for r in map(json.loads, result.stdout.splitlines())}
    assert rows['hybrid']['split'] == 'time' and rows['hybrid']['members'] > 100
    # three weeks of training history: ahead of popularity and item-kNN (the bench compares all
    # peers on the full history)
    assert rows['hybrid']['hr'] > max(rows[p]['hr'] for p in PEERS[:2]), rows


@pytest.mark.parametrize('extra, message', [
    (('--split', 'time'), '--split time needs --cutoff DATE'),
    (('--split', 'time', '--cutoff', 'soon'), "--cutoff 'soon' is not an ISO 8601 date"),
    (('--cutoff', '2026-01-01'), '--cutoff needs --split time'),
    (('--split', 'time', '--cutoff', '2030-01-01'), 'no member bought both before and after it'),
])
def test_eval_split_arguments_are_checked(extra, message):
    result = retailbot('recommend', 'eval', '--catalog', CATALOG, '--history', HISTORY, *extra)
    assert result.returncode == 2
    assert message in result.stderr and 'Traceback' not in result.stderr
