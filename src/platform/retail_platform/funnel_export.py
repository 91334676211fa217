"""The funnel's store-days as files: CSV (text, every spreadsheet) and Parquet (typed columns for
analysts' tools: pandas, DuckDB, Spark), the same columns in the same order (`COLUMNS`).

Parquet is written with pyarrow (pinned in robot_ws/requirements.txt) with an explicit schema:
`day` a date, counts integers (`attributed_revenue_cny` a float), rates floats that are null
when undefined (docs/metrics.md: never 0); the file's metadata carries the definitions version.
"""
from __future__ import annotations

import csv
import io
from datetime import date

from retail_platform import funnel

COLUMNS = ['store_id', 'day', 'definitions', *funnel.COUNTS, *funnel.RATES]
FLOAT_COUNTS = {'attributed_revenue_cny'}


def columns_of(rows: list[dict]) -> dict[str, list]:
    """Rows (dicts with COLUMNS' keys) as columns."""
    return {c: [r.get(c) for r in rows] for c in COLUMNS}


def to_csv(rows: list[dict], header: bool = True) -> str:
    return csv_of_columns(columns_of(rows), header)


def csv_of_columns(columns: dict[str, list], header: bool = True) -> str:
    """COLUMNS as CSV lines (None: an empty field)."""
    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(COLUMNS)
    writer.writerows(['' if v is None else v for v in row]
                     for row in zip(*(columns[c] for c in COLUMNS)))
    return out.getvalue()


def stream_csv(batches, first: str, last: str):
    """A streamed CSV answer of column batches (the header first, then each batch as it
    comes)."""
    from fastapi.responses import StreamingResponse

    def chunks():
        yield csv_of_columns({c: [] for c in COLUMNS})
        for batch in batches:
            yield csv_of_columns(batch, header=False)
    return StreamingResponse(chunks(), media_type=MEDIA['csv'], headers={
        'Content-Disposition': f'attachment; filename="funnel-{first}-{last}.csv"',
        'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff'})


def to_parquet(rows: list[dict]) -> bytes:
    return parquet_of_columns([columns_of(rows)])


def parquet_of_columns(batches) -> bytes:
    """Column batches (COLUMNS' lists) as one Parquet file: pyarrow arrays from the columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    fields = [pa.field('store_id', pa.string(), nullable=False),
              pa.field('day', pa.date32(), nullable=False),
              pa.field('definitions', pa.int32(), nullable=False)]
    fields += [pa.field(c, pa.float64() if c in FLOAT_COUNTS else pa.int64())
               for c in funnel.COUNTS]
    fields += [pa.field(c, pa.float64()) for c in funnel.RATES]
    schema = pa.schema(fields, metadata={'definitions': str(funnel.DEFINITIONS),
                                         'source': 'retail_platform funnel_daily (docs/metrics.md)'})
    tables = []
    for columns in batches:
        columns = dict(columns, day=[date.fromisoformat(d) for d in columns['day']])
        tables.append(pa.Table.from_pydict({c: columns[c] for c in COLUMNS}, schema=schema))
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    out = io.BytesIO()
    pq.write_table(table, out, compression='zstd')
    return out.getvalue()


MEDIA = {'csv': 'text/csv; charset=utf-8', 'parquet': 'application/vnd.apache.parquet'}


def answer(rows: list[dict], kind: str, first: str, last: str):
    """An HTTP answer with the rows as `kind` (csv or parquet), as a download."""
    return answer_columns([columns_of(rows)], kind, first, last)


def answer_columns(batches, kind: str, first: str, last: str):
    """An HTTP answer with column batches as `kind` (csv or parquet), as a download."""
    from fastapi.responses import Response
    content: str | bytes = parquet_of_columns(batches) if kind == 'parquet' else \
        csv_of_columns({c: [] for c in COLUMNS}) + ''.join(csv_of_columns(b, header=False)
                                                           for b in batches)
    return Response(content, media_type=MEDIA[kind], headers={
        'Content-Disposition': f'attachment; filename="funnel-{first}-{last}.{kind}"',
        'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff'})
