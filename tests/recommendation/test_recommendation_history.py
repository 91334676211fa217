from __future__ import annotations

from pathlib import Path

import pytest

from retail_recommendation.history import (History, HistoryError, Purchase, load_history, parse_ts,
                                           write_history)

DATA = Path(__file__).resolve().parent.parent / "data" / "recommendation"


def test_good_rows_are_loaded_in_file_order(tiny):
    _, history, _ = tiny
    assert history.customer_ids[:3] == ['m-1', 'm-1', 'm-2']
    assert history.skus[0] == 'HW-P1'
    assert history[0].ts == parse_ts('2025-05-01T02:00:00Z')  # +08:00 read correctly
    assert history.customer_ids[-1] == 'm-5'
    assert len(history) == 9


def test_bad_rows_are_reported_with_their_line_numbers(tiny):
    _, history, _ = tiny
    by_line = {issue.line: issue.message for issue in history.issues}
    assert "ts 'yesterday' is not an ISO 8601 time" == by_line[10]
    assert by_line[11].startswith('qty 0')
    assert 'must be a non-negative number' in by_line[12]
    assert by_line[14] == 'empty customer_id'
    assert by_line[15] == '4 fields, expected 5'
    assert 'm-bad' not in history.customer_ids


def test_skus_not_in_the_catalog_are_reported_once_and_skipped(tiny):
    _, history, _ = tiny
    summary = [str(i) for i in history.issues if i.line == 0]
    assert summary == ['1 row(s) name 1 sku(s) not in the catalog (NOPE-1)']
    assert 'NOPE-1' not in history.skus


def test_without_a_catalog_every_well_formed_row_is_kept():
    history = load_history(DATA / 'history.csv')
    assert 'NOPE-1' in history.skus


def test_a_missing_file_or_header_is_one_clear_error(tmp_path):
    with pytest.raises(HistoryError, match='no such file'):
        load_history(tmp_path / 'nope.csv')
    bad = tmp_path / 'bad.csv'
    bad.write_text('customer,sku\nm-1,X\n', encoding='utf-8')
    with pytest.raises(HistoryError, match='header lacks column'):
        load_history(bad)


def test_write_then_load_round_trips(tmp_path):
    rows = [Purchase('m-9', 'A', parse_ts('2026-01-02T03:04:05Z'), 2, 9.5),
            Purchase('m-8', 'B', parse_ts('2026-02-02'), 1, 100.0)]
    write_history(tmp_path / 'h.csv', rows)
    loaded = load_history(tmp_path / 'h.csv')
    assert list(loaded) == rows
    assert not loaded.issues
    assert not (tmp_path / 'h.csv.tmp').exists()


def test_select_keeps_columns_aligned(tiny):
    _, history, _ = tiny
    picked = history.select(history.qty > 1)
    assert isinstance(picked, History)
    assert list(picked) == [p for p in history if p.qty > 1]


def test_a_gzip_history_reads_like_the_csv_and_a_broken_one_is_one_error(tmp_path):
    import gzip
    text = (DATA / 'history.csv').read_text(encoding='utf-8')
    with gzip.open(tmp_path / 'h.csv.gz', 'wt', encoding='utf-8') as handle:
        handle.write(text)
    plain, packed = load_history(DATA / 'history.csv'), load_history(tmp_path / 'h.csv.gz')
    assert list(packed) == list(plain) and [str(i) for i in packed.issues] == [str(i) for i in plain.issues]
    (tmp_path / 'broken.csv.gz').write_bytes(b'not gzip at all')
    with pytest.raises(HistoryError, match=r'history .*broken.csv.gz: cannot read'):
        load_history(tmp_path / 'broken.csv.gz')
    with pytest.raises(HistoryError, match='no such file'):
        load_history(tmp_path / 'missing.csv.gz')
    truncated = gzip.compress(text.encode())[:-30]
    (tmp_path / 'cut.csv.gz').write_bytes(truncated)
    cut = load_history(tmp_path / 'cut.csv.gz')
    assert any('unreadable' in str(i) for i in cut.issues)


def _write(tmp_path, rows):
    path = tmp_path / 'history.csv'
    path.write_text('customer_id,sku,ts,qty,price_cny\n' + '\n'.join(rows) + '\n', encoding='utf-8')
    return path


@pytest.mark.parametrize('rows,left', [
    # a phone bought then returned: nothing left of it
    (['m-1,HW-P1,2025-05-01T10:00:00Z,1,5999', 'm-1,HW-P1,2025-05-03T10:00:00Z,-1,5999'], []),
    # the return listed before the purchase in the file (exports are not always in time order)
    (['m-1,HW-P1,2025-05-03T10:00:00Z,-1,5999', 'm-1,HW-P1,2025-05-01T10:00:00Z,1,5999'], []),
    # two bought, one returned: one left
    (['m-1,HW-P1,2025-05-01T10:00:00Z,2,5999', 'm-1,HW-P1,2025-05-03T10:00:00Z,-1,5999'], [('HW-P1', 1)]),
    # bought twice, the later one returned: the earlier purchase stays
    (['m-1,HW-P1,2024-01-01T10:00:00Z,1,5999', 'm-1,HW-P1,2025-05-01T10:00:00Z,1,5999',
      'm-1,HW-P1,2025-05-03T10:00:00Z,-1,5999'], [('HW-P1', 1)]),
    # another customer's return or another product's return touches nothing of m-1's
    (['m-1,HW-P1,2025-05-01T10:00:00Z,1,5999', 'm-2,HW-P1,2025-05-03T10:00:00Z,-1,5999',
      'm-1,HW-W1,2025-05-03T10:00:00Z,-1,999'], [('HW-P1', 1)]),
    # a return before the purchase returns nothing (reported)
    (['m-1,HW-P1,2025-05-03T10:00:00Z,1,5999', 'm-1,HW-P1,2025-05-01T10:00:00Z,-1,5999'], [('HW-P1', 1)]),
])
def test_a_return_removes_the_purchase_it_returns(tmp_path, rows, left):
    history = load_history(_write(tmp_path, rows))
    assert [(p.sku, p.qty) for p in history if p.customer_id == 'm-1'] == left
    assert all(p.qty > 0 for p in history)


def test_a_return_without_a_purchase_is_reported(tmp_path):
    history = load_history(_write(tmp_path, ['m-1,HW-P1,2025-05-01T10:00:00Z,-1,5999']))
    assert len(history) == 0
    assert any('matches no purchase' in str(i) and 'HW-P1' in str(i) for i in history.issues)
