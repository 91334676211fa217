"""The Parquet export is streamed: each batch of store-days is a row group whose bytes are handed
out as soon as it is written (the file is never whole in memory), and the file read back holds
exactly the batches' values, typed (days as dates, undefined rates null)."""
from __future__ import annotations

import io
from datetime import date

import pyarrow.parquet as pq

from retail_platform import funnel, funnel_export


def _batch(first: int, n: int) -> dict[str, list]:
    rows = []
    for i in range(first, first + n):
        counts = {k: i % 7 for k in funnel.COUNTS}
        counts['attributed_revenue_cny'] = i * 1.5
        counts['recommended'] = i % 3           # 0 every third row: conversion undefined
        rows.append({'store_id': f's-{i:03d}', 'day': f'2026-11-{1 + i % 28:02d}',
                     'definitions': funnel.DEFINITIONS, **counts, **funnel.rates(counts)})
    return funnel_export.columns_of(rows)


def test_each_batch_is_a_row_group_sent_as_it_is_written():
    batches = [_batch(0, 40), _batch(40, 40), _batch(80, 5)]
    handed: list[bytes] = []
    read = []

    def source():
        for b in batches:
            read.append(len(handed))            # what had been sent before this batch was read
            yield b
    for chunk in funnel_export.parquet_chunks(source()):
        handed.append(chunk)
    assert read == [0, 1, 2]                    # batch n+1 read after batch n's bytes went out
    assert handed[0].startswith(b'PAR1') and handed[-1].endswith(b'PAR1')
    assert all(handed[:3]) and len(handed) == 4
    table = pq.read_table(io.BytesIO(b''.join(handed)))
    assert pq.ParquetFile(io.BytesIO(b''.join(handed))).num_row_groups == 3
    assert table.schema.field('day').type == 'date32[day]'
    assert table.schema.metadata[b'definitions'] == str(funnel.DEFINITIONS).encode()
    expected = {k: sum((b[k] for b in batches), []) for k in funnel_export.COLUMNS}
    got = table.to_pydict()
    assert got['day'][:2] == [date(2026, 11, 1), date(2026, 11, 2)]
    got['day'] = [d.isoformat() for d in got['day']]
    assert got == expected
    assert got['conversion'][:4] == [None, 1.0, 1.0, None]


def test_no_store_days_is_an_empty_file_with_the_columns():
    data = funnel_export.parquet_of_columns([])
    table = pq.read_table(io.BytesIO(data))
    assert table.num_rows == 0 and table.column_names == funnel_export.COLUMNS
