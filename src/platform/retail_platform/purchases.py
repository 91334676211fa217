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

Idempotent by store and receipt id (a till's receipt number is its store's: receipt 0001 of two
stores are two receipts): a receipt already stored with the same content is `duplicate`; with
other content it is refused (`receipt_id_reused`: a till correction is a new receipt). A bad row
is reported as `FILE:LINE: why` and skipped, the rest is imported; never a traceback. A receipt
is stored whole or not at all: a bad row of a receipt refuses the whole receipt (one more line
naming it), so the corrected file imports it whole. Bounds: a
physical line at most MAX_LINE_CHARS, a receipt at most MAX_LINES lines, ids at most 128
characters, quantities and prices finite and bounded.
"""
from __future__ import annotations

import csv
from collections import OrderedDict
import json
import math
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Callable, Iterable, Iterator

import sqlalchemy as sa
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError

from retail_common.events import MEMBER_ID
from retail_platform import loop_schema as lt
from retail_platform.chain import forget_requests
from retail_platform import schema as t

MAX_LINE_CHARS = 65536      # a JSON-lines receipt of MAX_LINES lines fits in one
MAX_LINES = 500
CHUNK = 500
MAX_REPORTED = 1000       # bad rows kept to list (the rest only counted: memory stays bounded)
DONE_WINDOW = 100_000     # receipt ids remembered to tell a split receipt (older: the store's
                          # receipt_id_reused check still refuses the second part)
CSV_COLUMNS = ('receipt_id', 'store_id', 'time', 'member_id', 'code', 'sku', 'qty', 'price_cny')
ID = r'^[A-Za-z0-9._:/-]{1,128}$'
STORE = r'^[A-Za-z0-9._-]{1,64}$'
CODE = r'^[A-Z0-9]{4,12}$'
EARLIEST, LATEST = 946684800.0, 4102444800.0          # 2000-01-01 .. 2100-01-01


def _a_number(value: object) -> object:
    """A JSON number only: true/false and "5" are not quantities, prices or times (pydantic's lax
    mode would take them as 1 and 5); 5.0 stays the integer 5, as JSON Schema counts it."""
    if isinstance(value, (bool, str)):
        raise ValueError('must be a JSON number, not true/false or text')
    return value


NUMBER = BeforeValidator(_a_number)


class Line(BaseModel):
    model_config = ConfigDict(extra='forbid', frozen=True)
    sku: Annotated[str, StringConstraints(pattern=ID)]
    qty: Annotated[int, NUMBER, Field(ge=-10_000, le=10_000)]   # negative: a return
    price_cny: Annotated[float, NUMBER, Field(ge=0, le=10_000_000, allow_inf_nan=False)]


class Receipt(BaseModel):
    model_config = ConfigDict(extra='forbid', frozen=True)
    receipt_id: Annotated[str, StringConstraints(pattern=ID)]
    store_id: Annotated[str, StringConstraints(pattern=STORE)]
    time: Annotated[float, NUMBER, Field(ge=EARLIEST, le=LATEST, allow_inf_nan=False)]
    member_id: Annotated[str, StringConstraints(pattern=f'^(|{MEMBER_ID[1:-1]})$')] = ''   # events.MEMBER_ID or none
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
    bad: list[BadRow] = field(default_factory=list)     # the first MAX_REPORTED, in file order
    bad_count: int = 0                                   # every bad row, listed or not

    def skip(self, row: BadRow) -> None:
        self.bad_count += 1
        if len(self.bad) < MAX_REPORTED:
            self.bad.append(row)

    def as_dict(self) -> dict:
        return {'stored': self.stored, 'duplicate': self.duplicate, 'bad': self.bad_count,
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
    seen_content = False
    for number, text in _physical_lines(handle, name):
        where = f'{name}:{number}'
        if text is None:
            yield where, BadRow(where, f'line longer than {MAX_LINE_CHARS} characters')
            continue
        if not text.strip():
            continue
        if not seen_content and looks_like_csv(text):
            yield where, BadRow(where, 'this is the CSV header, but the file is read as JSON lines '
                                       '(its name does not end in .csv): rename it to .csv')
            return
        seen_content = True
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            yield where, BadRow(where, f'not JSON ({exc.msg}); expected one receipt object a line')
            continue
        except RecursionError:
            yield where, BadRow(where, 'nested too deeply')
            continue
        except ValueError:      # an integer of more than 4300 digits (Python's limit): was a 500
            yield where, BadRow(where, 'not JSON this platform reads (a number too long)')
            continue
        try:
            yield where, receipt_from_json(obj, zone)
        except RecursionError:
            yield where, BadRow(where, 'nested too deeply')
        except ValueError as exc:          # JSONDecodeError is a ValueError
            yield where, BadRow(where, str(exc).splitlines()[0][:300])


def _header_problem(header: str | None) -> str:
    """Why the first line is not the CSV header, in the words of what the file most likely is."""
    expected = 'header must be ' + ','.join(CSV_COLUMNS)
    if header is None:
        return f'empty file: {expected}'
    for separator, name in ((';', 'semicolons'), ('\t', 'tabs')):
        if tuple(c.strip() for c in header.split(separator)) == CSV_COLUMNS:
            return (f'columns separated by {name} (a spreadsheet exported in another locale?): '
                    f'save it with commas; {expected}')
    return f'{expected}, got {header[:200]!r}'


def _receipt_read(current: dict, start: str) -> Iterator[tuple[str, Receipt | BadRow]]:
    """The receipt read from CSV rows, or why not. A receipt with a bad row is refused whole
    (never stored without a line): its good rows' refusal is one more line naming it."""
    if current.get('broken'):
        if current['lines']:               # rows that would have been stored: say so
            try:
                Receipt.model_validate(current)
            except ValidationError as exc:
                yield start, BadRow(start, _why(exc))
            yield start, BadRow(start, f'receipt {current["receipt_id"][:128]} refused whole: '
                                       f'{current["broken"]} bad row(s) of it; nothing of it imported')
        return
    if not current['lines']:
        return
    try:
        yield start, Receipt.model_validate(current)
    except ValidationError as exc:
        yield start, BadRow(start, _why(exc))


def _csv_row(text: str | None) -> list[str] | str:
    """A physical line's CSV fields, or why it has none."""
    if text is None:
        return f'line longer than {MAX_LINE_CHARS} characters'
    if not text.strip():
        return []
    try:
        return next(csv.reader([text]))
    except csv.Error as exc:
        return f'not CSV: {exc}'


def _of_receipt(row: list[str], current: dict | None) -> bool:
    """Whether a row (of any width) names the receipt being read."""
    return current is not None and bool(row) and row[0].strip() == current['receipt_id']


def read_csv(handle, name: str, zone) -> Iterator[tuple[str, Receipt | BadRow]]:
    """Receipts from CSV rows (one row per line; the rows of a receipt consecutive)."""
    lines = _physical_lines(handle, name)
    header_number, header = next(lines, (0, None))
    if header is None or tuple(c.strip() for c in next(csv.reader([header]), [])) != CSV_COLUMNS:
        yield f'{name}:1', BadRow(f'{name}:1', _header_problem(header))
        return
    current: dict | None = None
    start = ''
    bad_ids: set[tuple[str, str]] = set()
    # the last DONE_WINDOW (store, receipt) keys (bounded)
    done: OrderedDict[tuple[str, str], None] = OrderedDict()

    def finished(key: tuple[str, str]) -> None:
        done[key] = None
        if len(done) > DONE_WINDOW:
            done.popitem(last=False)

    def finish() -> Iterator[tuple[str, Receipt | BadRow]]:
        if current is not None:
            yield from _receipt_read(current, start)

    def broken() -> None:
        if current is not None:
            current['broken'] = current.get('broken', 0) + 1

    for number, text in lines:
        where = f'{name}:{number}'
        row = _csv_row(text)
        if row == []:                      # a blank line
            continue
        if isinstance(row, str):
            broken()                       # it may be a row of the receipt being read
            yield where, BadRow(where, row)
            continue
        if len(row) != len(CSV_COLUMNS):
            if _of_receipt(row, current):
                broken()                   # a row of the receipt being read
            yield where, BadRow(where, f'{len(row)} columns, expected {len(CSV_COLUMNS)}')
            continue
        values = dict(zip(CSV_COLUMNS, (v.strip() for v in row)))
        rid = values['receipt_id']
        key = (values['store_id'], rid)           # a receipt number is its store's
        if current is None or key != (current['store_id'], current['receipt_id']):
            yield from finish()
            if current is not None:
                finished((current['store_id'], current['receipt_id']))
            current = None
            if key in done:
                bad_ids.add(key)
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
                finished(key)
                continue
        elif (values['store_id'], values['member_id'], values['code']) != \
                (current['store_id'], current['member_id'], current['code']):
            broken()
            yield where, BadRow(where, f'receipt {rid[:128]}: store, member or code differs '
                                       'from its first row')
            continue
        try:
            qty = int(values['qty'])
            price = float(values['price_cny'])
        except ValueError:
            broken()
            yield where, BadRow(where, 'qty must be a whole number and price_cny a number')
            continue
        if len(current['lines']) >= MAX_LINES:
            broken()
            yield where, BadRow(where, f'receipt {rid[:128]} has more than {MAX_LINES} lines')
            continue
        current['lines'].append({'sku': values['sku'], 'qty': qty, 'price_cny': price})
    yield from finish()


def not_utf8(path: Path, step: int = 1 << 20) -> str | None:
    """None when the file is UTF-8 throughout (read in steps, memory bounded); else one line
    `FILE:LINE: not UTF-8 ...` naming the first bad line and byte. Checked before anything is
    stored, so a file exported as GBK is refused whole, not imported up to its first Chinese
    name."""
    import codecs
    decoder = codecs.getincrementaldecoder('utf-8')()
    line, offset = 1, 0
    with open(path, 'rb') as handle:
        while True:
            chunk = handle.read(step)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                good = chunk[:max(0, exc.start)]
                at = offset + max(0, exc.start)
                line += good.count(b'\n')
                return (f'{path.name}:{line}: not UTF-8 (byte {at} of the file; '
                        'a spreadsheet saved as GBK/ANSI?): save the file as UTF-8; nothing was '
                        'imported')
            if not chunk:
                return None
            line += chunk.count(b'\n')
            offset += len(chunk)


PROGRESS_EVERY = 1000      # receipts/bad rows between two calls of read_file's `progress`


def read_file(path: Path, zone, progress: Callable[[int], None] | None = None
              ) -> Iterator[tuple[str, Receipt | BadRow]]:
    """Receipts of a CSV or JSON-lines file (UTF-8, with or without the byte-order mark a
    spreadsheet writes); OSError / UnicodeDecodeError surface to the CLI (check `not_utf8` first).
    `progress(bytes read so far)` is called every PROGRESS_EVERY items and at the end."""
    suffix = path.suffix.lower()
    reader = read_csv if suffix == '.csv' else read_jsonl
    with open(path, encoding='utf-8-sig', newline='') as handle:
        if progress is None:
            yield from reader(handle, path.name, zone)
            return
        for count, item in enumerate(reader(handle, path.name, zone), start=1):
            yield item
            if count % PROGRESS_EVERY == 0:
                progress(handle.buffer.tell())
        progress(handle.buffer.tell())


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
            ids = {r.receipt_id for _, r in batch}       # a receipt number is its store's
            stored = {(row.store_id, row.receipt_id): row for row in c.execute(
                sa.select(lt.receipts).where(lt.receipts.c.receipt_id.in_(ids)))}
            named = {r.member_id for _, r in batch if r.member_id}
            forgotten = {row.member_id for row in c.execute(
                sa.select(forget_requests.c.member_id)
                .where(forget_requests.c.member_id.in_(named)))} if named else set()
            fresh = []
            for where, r in batch:
                if not known_stores[r.store_id]:
                    result.skip(BadRow(where, f'no store {r.store_id}'))
                    continue
                member = '' if r.member_id in forgotten else r.member_id   # kept without her id
                row = dict(receipt_id=r.receipt_id, store_id=r.store_id, time=r.time,
                           customer=member, code=r.code, lines=r.lines_json(),
                           total_cny=r.total, imported_at=now)
                known = stored.get((r.store_id, r.receipt_id))
                if known is not None:
                    same = (known.time, known.customer, known.code, known.lines) \
                        == (r.time, member, r.code, row['lines'])
                    if same:
                        result.duplicate += 1
                    else:
                        result.skip(BadRow(where, f'receipt_id_reused: receipt '
                                              f'{r.receipt_id} of store {r.store_id} '
                                              'was imported with other content'))
                    continue
                stored[(r.store_id, r.receipt_id)] = _Seen(r.store_id, r.time, member, r.code, row['lines'])
                fresh.append(row)
            if fresh:
                c.execute(lt.receipts.insert(), fresh)
            result.stored += len(fresh)
        batch.clear()

    for where, item in items:
        if isinstance(item, BadRow):
            result.skip(item)
            continue
        if only_store is not None and item.store_id != only_store:
            result.skip(BadRow(where, f'receipt of store {item.store_id}, not {only_store}'))
            continue
        batch.append((where, item))
        if len(batch) >= CHUNK:
            flush()
    flush()
    listed = len(result.bad)
    result.bad = in_file_order(result.bad)
    result.bad_count -= listed - len(result.bad)         # a problem reported twice counts once
    return result


def in_file_order(bad: list[BadRow]) -> list[BadRow]:
    """Each problem once, in the order of its line in the file (a chunk's store checks run after
    the reader's own checks of later lines)."""
    def line(row: BadRow) -> int:
        number = row.where.rpartition(':')[2]
        return int(number) if number.isdigit() else 0
    return sorted(dict.fromkeys(bad), key=line)


def looks_like_csv(text: str) -> bool:
    """True when the first non-empty line of `text` is the CSV header (a CSV file sent where JSON
    lines are expected)."""
    for first in text.splitlines()[:50]:
        if first.strip():
            return first.replace(' ', '').lstrip('\ufeff').startswith(','.join(CSV_COLUMNS[:2]))
    return False


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
