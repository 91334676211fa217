"""Till receipts into the platform (`retailbot platform import-purchases`, `POST
/v1/stores/{id}/receipts`): the chain's purchases keep members' histories and the funnel's
`purchased` current without a robot's help.

Two file formats, chosen by the file's suffix (`.csv`; `.jsonl`/`.ndjson`/`.json`):

* CSV, one row per receipt line, header `receipt_id,store_id,time,member_id,code,sku,qty,price_cny`
  (`member_id` and `code` may be empty); the rows of one receipt are consecutive.
* JSON lines, one receipt per line: `{"receipt_id", "store_id", "time", "member_id" (or null),
  "code" (optional), "lines": [{"sku", "qty", "price_cny"}]}`.

`time` is ISO 8601 (without an offset it is the chain's local time, `funnel.CHAIN_ZONE`) or
seconds since 1970. `member_id` is the member's pseudonymous id (never a name or a phone number:
the same ids the robots upload); `code` is the code the robot's screen showed an anonymous
customer (docs/metrics.md, "purchased").

Idempotent by receipt id: a receipt already stored with the same content is `duplicate`; with
other content it is refused (`receipt_id_reused`: a till correction is a new receipt). A bad row
is reported as `FILE:LINE: why` and skipped, the rest is imported; never a traceback. Bounds: a
physical line at most MAX_LINE_CHARS, a receipt at most MAX_LINES lines, ids at most 128
characters, quantities and prices finite and bounded.
"""
from __future__ import annotations

import csv
import json
import math
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Iterable, Iterator

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from retail_platform import loop_schema as lt
from retail_platform.chain import forget_requests
from retail_platform import schema as t

MAX_LINE_CHARS = 8192
MAX_LINES = 500
CHUNK = 500
CSV_COLUMNS = ('receipt_id', 'store_id', 'time', 'member_id', 'code', 'sku', 'qty', 'price_cny')
ID = r'^[A-Za-z0-9._:/-]{1,128}$'
STORE = r'^[A-Za-z0-9._-]{1,64}$'
CODE = r'^[A-Z0-9]{4,12}$'
EARLIEST, LATEST = 946684800.0, 4102444800.0          # 2000-01-01 .. 2100-01-01


class Line(BaseModel):
    model_config = ConfigDict(extra='forbid', frozen=True)
    sku: Annotated[str, StringConstraints(pattern=ID)]
    qty: Annotated[int, Field(ge=-10_000, le=10_000)]          # negative: a return
    price_cny: Annotated[float, Field(ge=0, le=10_000_000, allow_inf_nan=False)]


class Receipt(BaseModel):
    model_config = ConfigDict(extra='forbid', frozen=True)
    receipt_id: Annotated[str, StringConstraints(pattern=ID)]
    store_id: Annotated[str, StringConstraints(pattern=STORE)]
    time: Annotated[float, Field(ge=EARLIEST, le=LATEST, allow_inf_nan=False)]
    member_id: Annotated[str, StringConstraints(pattern=r'^(|[A-Za-z0-9._:-]{1,128})$')] = ''
    code: Annotated[str, StringConstraints(pattern=r'^(|[A-Z0-9]{4,12})$')] = ''
    lines: Annotated[list[Line], Field(min_length=1, max_length=MAX_LINES)]

    @property
    def total(self) -> float:
        return round(sum(line.qty * line.price_cny for line in self.lines), 2)

    def lines_json(self) -> str:
        return json.dumps([line.model_dump() for line in self.lines], separators=(',', ':'))


@dataclass(frozen=True)
class BadRow:
    where: str            # FILE:LINE
    why: str

    def __str__(self) -> str:
        return f'{self.where}: {self.why}'


@dataclass
class ImportResult:
    stored: int = 0
    duplicate: int = 0
    bad: list[BadRow] = field(default_factory=list)
    touched: set[tuple[str, float]] = field(default_factory=set)   # (store, time) stored now

    def as_dict(self) -> dict:
        return {'stored': self.stored, 'duplicate': self.duplicate, 'bad': len(self.bad),
                'problems': [str(b) for b in self.bad[:100]]}


def parse_time(value: object, zone) -> float:
    """Seconds since 1970 from an ISO 8601 text (naive = `zone`) or a number; ValueError."""
    if isinstance(value, bool):
        raise ValueError('time must be ISO 8601 or seconds since 1970')
    if isinstance(value, (int, float)):
        when = float(value)
    elif isinstance(value, str) and len(value) <= 40:
        text = value.strip()
        if re.fullmatch(r'\d{9,11}(\.\d{1,6})?', text):
            when = float(text)
        else:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f'time {value!r} is not ISO 8601') from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
            when = moment.timestamp()
    else:
        raise ValueError('time must be ISO 8601 or seconds since 1970')
    if not math.isfinite(when) or not EARLIEST <= when <= LATEST:
        raise ValueError(f'time {value!r} is not between 2000 and 2100')
    return when


def _why(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    where = '.'.join(str(p) for p in first.get('loc', ())) or 'receipt'
    return f'{where}: {first.get("msg", "invalid")}'


def receipt_from_json(obj: object, zone) -> Receipt:
    """A receipt from one decoded JSON line; ValueError (one line) when it is not one."""
    if not isinstance(obj, dict):
        raise ValueError('a receipt must be a JSON object')
    obj = dict(obj)
    obj['time'] = parse_time(obj.get('time'), zone)
    obj['member_id'] = obj.get('member_id') or ''
    obj['code'] = obj.get('code') or ''
    try:
        return Receipt.model_validate(obj)
    except ValidationError as exc:
        raise ValueError(_why(exc)) from None


def _physical_lines(handle, name: str) -> Iterator[tuple[int, str | None]]:
    """(line number, text) of each line, text None for a line over MAX_LINE_CHARS (its rest is
    skipped without holding it in memory)."""
    number = 0
    while True:
        text = handle.readline(MAX_LINE_CHARS + 1)
        if not text:
            return
        number += 1
        if len(text) > MAX_LINE_CHARS and not text.endswith('\n'):
            while True:
                rest = handle.readline(MAX_LINE_CHARS)
                if not rest or rest.endswith('\n'):
                    break
            yield number, None
            continue
        yield number, text.rstrip('\r\n')


def read_jsonl(handle, name: str, zone) -> Iterator[tuple[str, Receipt | BadRow]]:
    for number, text in _physical_lines(handle, name):
        where = f'{name}:{number}'
        if text is None:
            yield where, BadRow(where, f'line longer than {MAX_LINE_CHARS} characters')
            continue
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
            yield where, receipt_from_json(obj, zone)
        except RecursionError:
            yield where, BadRow(where, 'nested too deeply')
        except ValueError as exc:          # JSONDecodeError is a ValueError
            yield where, BadRow(where, str(exc).splitlines()[0][:300])


def read_csv(handle, name: str, zone) -> Iterator[tuple[str, Receipt | BadRow]]:
    """Receipts from CSV rows (one row per line; the rows of a receipt consecutive)."""
    lines = _physical_lines(handle, name)
    header_number, header = next(lines, (0, None))
    if header is None or tuple(c.strip() for c in next(csv.reader([header]), [])) != CSV_COLUMNS:
        yield f'{name}:1', BadRow(f'{name}:1', 'header must be ' + ','.join(CSV_COLUMNS))
        return
    current: dict | None = None
    start = ''
    bad_ids: set[str] = set()
    done: set[str] = set()

    def finish() -> Iterator[tuple[str, Receipt | BadRow]]:
        if current is None:
            return
        try:
            yield start, Receipt.model_validate(current)
        except ValidationError as exc:
            yield start, BadRow(start, _why(exc))

    for number, text in lines:
        where = f'{name}:{number}'
        if text is None:
            yield where, BadRow(where, f'line longer than {MAX_LINE_CHARS} characters')
            continue
        if not text.strip():
            continue
        try:
            row = next(csv.reader([text]))
        except csv.Error as exc:
            yield where, BadRow(where, f'not CSV: {exc}')
            continue
        if len(row) != len(CSV_COLUMNS):
            yield where, BadRow(where, f'{len(row)} columns, expected {len(CSV_COLUMNS)}')
            continue
        values = dict(zip(CSV_COLUMNS, (v.strip() for v in row)))
        rid = values['receipt_id']
        if current is None or rid != current['receipt_id']:
            yield from finish()
            if current is not None:
                done.add(current['receipt_id'])
            current = None
            if rid in done:
                bad_ids.add(rid)
                yield where, BadRow(where, f'receipt {rid[:128]} continues after other receipts '
                                           '(its rows must be consecutive)')
                continue
            try:
                current = {'receipt_id': rid, 'store_id': values['store_id'],
                           'time': parse_time(values['time'], zone),
                           'member_id': values['member_id'], 'code': values['code'], 'lines': []}
                start = where
            except ValueError as exc:
                yield where, BadRow(where, str(exc))
                done.add(rid)
                continue
        elif (values['store_id'], values['member_id'], values['code']) != \
                (current['store_id'], current['member_id'], current['code']):
            yield where, BadRow(where, f'receipt {rid[:128]}: store, member or code differs '
                                       'from its first row')
            continue
        try:
            qty = int(values['qty'])
            price = float(values['price_cny'])
        except ValueError:
            yield where, BadRow(where, 'qty must be a whole number and price_cny a number')
            continue
        if len(current['lines']) >= MAX_LINES:
            yield where, BadRow(where, f'receipt {rid[:128]} has more than {MAX_LINES} lines')
            continue
        current['lines'].append({'sku': values['sku'], 'qty': qty, 'price_cny': price})
    yield from finish()


def read_file(path: Path, zone) -> Iterator[tuple[str, Receipt | BadRow]]:
    """Receipts of a CSV or JSON-lines file; OSError / UnicodeDecodeError surface to the CLI."""
    suffix = path.suffix.lower()
    reader = read_csv if suffix == '.csv' else read_jsonl
    with open(path, encoding='utf-8', newline='') as handle:
        yield from reader(handle, path.name, zone)


def store_receipts(engine: sa.Engine, items: Iterable[tuple[str, Receipt | BadRow]],
                   only_store: str | None = None) -> ImportResult:
    """Store receipts in chunks (one transaction each): idempotent by receipt id."""
    result = ImportResult()
    batch: list[tuple[str, Receipt]] = []
    known_stores: dict[str, bool] = {}

    def flush() -> None:
        if not batch:
            return
        now = time.time()
        with engine.begin() as c:
            for store in {r.store_id for _, r in batch} - set(known_stores):
                known_stores[store] = c.execute(sa.select(t.stores.c.id)
                                                .where(t.stores.c.id == store)).first() is not None
            ids = [r.receipt_id for _, r in batch]
            stored = {row.receipt_id: row for row in c.execute(
                sa.select(lt.receipts).where(lt.receipts.c.receipt_id.in_(ids)))}
            named = {r.member_id for _, r in batch if r.member_id}
            forgotten = {row.member_id for row in c.execute(
                sa.select(forget_requests.c.member_id)
                .where(forget_requests.c.member_id.in_(named)))} if named else set()
            fresh = []
            for where, r in batch:
                if not known_stores[r.store_id]:
                    result.bad.append(BadRow(where, f'no store {r.store_id}'))
                    continue
                member = '' if r.member_id in forgotten else r.member_id   # kept without her id
                row = dict(receipt_id=r.receipt_id, store_id=r.store_id, time=r.time,
                           customer=member, code=r.code, lines=r.lines_json(),
                           total_cny=r.total, imported_at=now)
                known = stored.get(r.receipt_id)
                if known is not None:
                    same = (known.store_id, known.time, known.customer, known.code, known.lines) \
                        == (r.store_id, r.time, member, r.code, row['lines'])
                    if same:
                        result.duplicate += 1
                    else:
                        result.bad.append(BadRow(where, f'receipt_id_reused: receipt '
                                                        f'{r.receipt_id} was imported with other '
                                                        'content'))
                    continue
                stored[r.receipt_id] = _Seen(r.store_id, r.time, member, r.code, row['lines'])
                fresh.append(row)
                result.touched.add((r.store_id, r.time))
            if fresh:
                c.execute(lt.receipts.insert(), fresh)
            result.stored += len(fresh)
        batch.clear()

    for where, item in items:
        if isinstance(item, BadRow):
            result.bad.append(item)
            continue
        if only_store is not None and item.store_id != only_store:
            result.bad.append(BadRow(where, f'receipt of store {item.store_id}, not {only_store}'))
            continue
        batch.append((where, item))
        if len(batch) >= CHUNK:
            flush()
    flush()
    return result


@dataclass(frozen=True)
class _Seen:
    store_id: str
    time: float
    customer: str
    code: str
    lines: str


def receipts_page(engine: sa.Engine, store_id: str, start: float, end: float,
                  limit: int) -> list[dict]:
    """A store's receipts with time in [start, end), oldest first."""
    r = lt.receipts.c
    with engine.connect() as c:
        rows = c.execute(sa.select(lt.receipts).where(r.store_id == store_id, r.time >= start,
                                                      r.time < end)
                         .order_by(r.time, r.receipt_id).limit(limit)).all()
    return [{'receipt_id': x.receipt_id, 'store_id': x.store_id, 'time': x.time,
             'member_id': x.customer or None, 'code': x.code or None,
             'lines': json.loads(x.lines), 'total_cny': x.total_cny} for x in rows]
