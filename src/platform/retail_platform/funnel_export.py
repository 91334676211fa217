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


def to_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(['' if r.get(c) is None else r.get(c) for c in COLUMNS])
    return out.getvalue()


def to_parquet(rows: list[dict]) -> bytes:
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
    columns = {c: [r.get(c) for r in rows] for c in COLUMNS}
    columns['day'] = [date.fromisoformat(d) for d in columns['day']]
    table = pa.Table.from_pydict(columns, schema=schema)
    out = io.BytesIO()
    pq.write_table(table, out, compression='zstd')
    return out.getvalue()


MEDIA = {'csv': 'text/csv; charset=utf-8', 'parquet': 'application/vnd.apache.parquet'}


def answer(rows: list[dict], kind: str, first: str, last: str):
    """An HTTP answer with the rows as `kind` (csv or parquet), as a download."""
    from fastapi.responses import Response
    content: str | bytes = to_csv(rows) if kind == 'csv' else to_parquet(rows)
    return Response(content, media_type=MEDIA[kind], headers={
        'Content-Disposition': f'attachment; filename="funnel-{first}-{last}.{kind}"',
        'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff'})
