"""The funnel's store-days as files: CSV (text, every spreadsheet) and Parquet (typed columns for
analysts' tools: pandas, DuckDB, Spark), the same columns in the same order (`COLUMNS`).

Parquet is written with pyarrow (pinned in robot_ws/requirements.txt) with an explicit schema:
`day` a date, counts integers (`attributed_revenue_cny` a float), rates floats that are null
when undefined (docs/metrics.md: never 0); the file's metadata carries the definitions version.
Both are streamed (`answer_columns`): the CSV a batch of lines at a time, the Parquet file a row
group per batch of store-days, written and sent as the rows are read (memory bounded by one
batch), then its footer. The batches come from `hq.export_batches` (a small first batch, then
larger ones), for the pages and the API alike.
"""
from __future__ import annotations

import csv
import io
from typing import Iterator

from retail_platform import funnel

COLUMNS = ['store_id', 'day', 'definitions', *funnel.COUNTS, *funnel.RATES]
FLOAT_COUNTS = {'attributed_revenue_cny'}


def columns_of(rows: list[dict]) -> dict[str, list]:
    """Rows (dicts with COLUMNS' keys) as columns."""
    return {c: [r.get(c) for r in rows] for c in COLUMNS}


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
        try:
            yield csv_of_columns({c: [] for c in COLUMNS})
            for batch in batches:
                yield csv_of_columns(batch, header=False)
        finally:
            _close(batches)
    return StreamingResponse(chunks(), media_type=MEDIA['csv'], headers={
        'Content-Disposition': f'attachment; filename="funnel-{first}-{last}.csv"',
        'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff'})


def parquet_schema():
    """The file's typed columns (COLUMNS), with the definitions version in its metadata."""
    import pyarrow as pa
    fields = [pa.field('store_id', pa.string(), nullable=False),
              pa.field('day', pa.date32(), nullable=False),
              pa.field('definitions', pa.int32(), nullable=False)]
    fields += [pa.field(c, pa.float64() if c in FLOAT_COUNTS else pa.int64())
               for c in funnel.COUNTS]
    fields += [pa.field(c, pa.float64()) for c in funnel.RATES]
    return pa.schema(fields, metadata={'definitions': str(funnel.DEFINITIONS),
                                       'source': 'retail_platform funnel_daily (docs/metrics.md)'})


def _table(columns: dict[str, list], schema):
    """One batch of columns as a pyarrow table of `schema` (days parsed by Arrow, not Python)."""
    import pyarrow as pa
    days = pa.array(columns['day'], pa.string()).cast(pa.date32())
    arrays = [days if c == 'day' else pa.array(columns[c], schema.field(c).type) for c in COLUMNS]
    return pa.Table.from_arrays(arrays, schema=schema)


class _Sink:
    """Where the Parquet writer writes: the bytes written since the last `take`."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False
        self.dropping = False

    def write(self, data) -> int:
        chunk = bytes(data)
        if not self.dropping:
            self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out = b''.join(self.parts)
        self.parts.clear()
        return out

    def discard(self) -> None:
        """From now on what is written is dropped (a failed file's footer)."""
        self.parts.clear()
        self.dropping = True


def parquet_chunks(batches) -> Iterator[bytes]:
    """Column batches as one Parquet file, streamed: each batch a row group, its bytes handed
    out as soon as it is written (memory bounded by one batch, not the file), then the footer.

    The footer (the row groups' metadata, ending in PAR1) is handed out only after the last
    batch: when reading or converting a batch fails, the exception goes on and what was handed
    out is a file without a footer, which no Parquet reader opens (served: the HTTP answer ends
    without its last chunk, so the client sees the transfer fail too)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    schema = parquet_schema()
    sink = _Sink()
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode='w'), schema, compression='zstd')
    try:
        for columns in batches:
            if columns and len(columns['store_id']):
                writer.write_table(_table(columns, schema))
                yield sink.take()
    except BaseException:
        sink.discard()          # the writer's footer, written as it closes, is never handed out
        raise
    finally:
        writer.close()
        _close(batches)
    yield sink.take()


def _close(batches) -> None:
    """End the batches' source now (its database connection and cursor back to the pool), not
    whenever the garbage collector gets to it: after a failure or a client gone mid-stream the
    traceback keeps the suspended generator, and with it the connection, alive."""
    close = getattr(batches, 'close', None)
    if close is not None:
        close()


def parquet_of_columns(batches) -> bytes:
    """Column batches (COLUMNS' lists) as one Parquet file."""
    return b''.join(parquet_chunks(batches))


def stream_parquet(batches, first: str, last: str):
    """A streamed Parquet answer of column batches (a row group per batch, as it comes)."""
    from fastapi.responses import StreamingResponse
    return StreamingResponse(parquet_chunks(batches), media_type=MEDIA['parquet'], headers={
        'Content-Disposition': f'attachment; filename="funnel-{first}-{last}.parquet"',
        'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff'})


MEDIA = {'csv': 'text/csv; charset=utf-8', 'parquet': 'application/vnd.apache.parquet'}


def answer_columns(batches, kind: str, first: str, last: str):
    """An HTTP answer with column batches as `kind` (csv or parquet), as a download streamed
    a batch at a time."""
    return stream_parquet(batches, first, last) if kind == 'parquet' else \
        stream_csv(batches, first, last)
