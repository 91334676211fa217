"""The Parquet export is streamed: each batch of store-days is a row group whose bytes are handed
out as soon as it is written (the file is never whole in memory), and the file read back holds
exactly the batches' values, typed (days as dates, undefined rates null). The batches start
small (the first bytes wait for EXPORT_FIRST store-days only); a failure mid-stream leaves no
footer, so neither the client nor a Parquet reader takes the part for a file."""
from __future__ import annotations

import io
from datetime import date

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from platform_support import start_server
from retail_platform import funnel, funnel_export, hq
from retail_platform import loop_schema as lt
from retail_platform.database import upgrade
from retail_platform.storage import Storage


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


def test_a_failure_mid_stream_hands_out_no_footer():
    """A batch that cannot be read (the database gone, a broken row) after the first: the
    exception goes on and the bytes already handed out are not a file any reader opens."""
    handed: list[bytes] = []

    def source():
        yield _batch(0, 40)
        yield _batch(40, 40)
        raise OSError('the database went away')
    with pytest.raises(OSError, match='went away'):
        for chunk in funnel_export.parquet_chunks(source()):
            handed.append(chunk)
    assert len(handed) == 2 and handed[0].startswith(b'PAR1')
    assert not handed[-1].endswith(b'PAR1')          # no footer
    with pytest.raises(pa.ArrowInvalid):
        pq.ParquetFile(io.BytesIO(b''.join(handed)))


# --- the served export, both engines -------------------------------------------------------------
GOOD = 3_500            # store-days: more than the first batch and the next (1 000, 2 000)
RANGE = {'from': '2026-09-01', 'to': '2026-09-30'}


def _store_days(target: str, n: int) -> list[dict]:
    """n store-days of random counts written straight into the HQ summaries (what the pages and
    the export read), over ceil(n / 30) stores."""
    import random
    rng = random.Random(n)
    rows = []
    for i in range(n):
        counts = {k: rng.randrange(0, 3) for k in funnel.COUNTS}
        counts['attributed_revenue_cny'] = round(rng.random() * 900, 2) if i % 4 else 0
        rows.append({'store_id': f's-{i // 30:04d}', 'day': f'2026-09-{1 + i % 30:02d}',
                     'definitions': funnel.DEFINITIONS, **counts})
    storage = Storage(target)
    try:
        with storage.engine.begin() as c:
            c.execute(lt.hq_store_days.insert(), rows)
    finally:
        storage.close()
    return [{**r, **funnel.rates(r)} for r in rows]


def _expected_csv(rows: list[dict]) -> str:
    return funnel_export.csv_of_columns(funnel_export.columns_of(rows))


def test_export_batches_come_small_first_then_larger_in_order(engine_target):
    upgrade_target(engine_target)
    rows = _store_days(engine_target, GOOD)
    storage = Storage(engine_target)
    try:
        batches = list(hq.export_batches(storage.engine, hq.Scope(), RANGE['from'], RANGE['to']))
        small = list(hq.export_batches(storage.engine, hq.Scope(), RANGE['from'], RANGE['to'],
                                       batch=400, first_batch=100))
    finally:
        storage.close()
    assert [len(b['store_id']) for b in batches] == [1000, 2000, 500]
    assert [len(b['store_id']) for b in small] == [100, 200] + [400] * 8
    joined = {c: sum((b[c] for b in small), []) for c in funnel_export.COLUMNS}
    assert joined == {c: sum((b[c] for b in batches), []) for c in funnel_export.COLUMNS}
    assert funnel_export.csv_of_columns(joined) == _expected_csv(rows)


def test_the_served_export_streams_the_same_rows_and_a_failure_is_not_a_file(engine_target):
    """Through a real `platform serve`: the Parquet file read back holds exactly the store-days
    (typed, rates null when undefined) and the CSV the same; then a store-day that cannot be
    converted (a day that is not a date) in the second batch: the answer began (200, the first
    row group sent) and ends without its last chunk, so the client's read fails, and the bytes
    it got are no Parquet file."""
    upgrade_target(engine_target)
    rows = _store_days(engine_target, GOOD)
    server = start_server(engine_target, '--funnel-refresh-s', '0')
    try:
        with server.client() as admin:
            got = admin.get('/v1/funnel/export', params={**RANGE, 'format': 'parquet'})
            assert got.status_code == 200, got.text
            parquet = pq.ParquetFile(io.BytesIO(got.content))
            assert parquet.num_row_groups == 3
            table = parquet.read()
            assert table.num_rows == GOOD and table.schema.field('day').type == 'date32[day]'
            back = table.to_pydict()
            back['day'] = [d.isoformat() for d in back['day']]
            assert back == funnel_export.columns_of(rows)
            assert None in back['conversion']            # undefined rates are null, never 0
            text = admin.get('/v1/funnel/export', params={**RANGE, 'format': 'csv'}).text
            assert text == _expected_csv(rows)
        storage = Storage(engine_target)
        try:
            with storage.engine.begin() as c:         # sorts last: in the second batch
                c.execute(lt.hq_store_days.insert(), [{
                    'store_id': 'zz-broken', 'day': '2026-09-1x', 'definitions': 2,
                    **{k: 1 for k in funnel.COUNTS}}])
        finally:
            storage.close()
        with server.client() as admin:
            received = bytearray()
            with pytest.raises(httpx.RemoteProtocolError):
                with admin.stream('GET', '/v1/funnel/export',
                                  params={**RANGE, 'format': 'parquet'}) as answer:
                    assert answer.status_code == 200
                    for chunk in answer.iter_raw():
                        received += chunk
            assert received.startswith(b'PAR1') and not received.endswith(b'PAR1')
            with pytest.raises(pa.ArrowInvalid):
                pq.ParquetFile(io.BytesIO(bytes(received)))
            assert admin.get('/v1/ready').status_code == 200        # the server goes on
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)


def upgrade_target(target: str) -> None:
    storage = Storage(target)
    try:
        upgrade(storage.engine)
    finally:
        storage.close()
