"""Members' purchase history (CSV `customer_id,sku,ts,qty,price_cny`), held as columns.

The history comes from the platform through the sync and can be a million rows, so it is kept
as numpy columns rather than one object per row. A bad row is reported with its line number and
skipped; rows naming a sku the catalog does not have are reported (one summary line) and skipped,
because nothing can be learned about or recommended for a product the store does not list.

A row with a negative quantity is a return: it removes the purchase it returns (the same
customer's latest purchase of that sku at or before the return), so nothing is learned from,
and no reason is given about ("because you bought …"), a product the customer brought back. A
return with no purchase before it is reported and skipped.
"""
from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Container, Iterable, Iterator

import numpy as np

from retail_common.catalog import open_store_csv

COLUMNS = ('customer_id', 'sku', 'ts', 'qty', 'price_cny')


class HistoryError(Exception):
    """The history as a whole cannot be used (missing file, wrong header)."""


@dataclass(frozen=True)
class HistoryIssue:
    line: int  # 0 for issues about the file as a whole (e.g. unknown skus)
    message: str

    def __str__(self) -> str:
        return f'line {self.line}: {self.message}' if self.line else self.message


@dataclass(frozen=True)
class Purchase:
    customer_id: str
    sku: str
    ts: float  # seconds since the epoch (UTC)
    qty: int
    price_cny: float


@dataclass
class History:
    """Purchases as parallel columns, in file order."""

    customer_ids: list[str] = field(default_factory=list)
    skus: list[str] = field(default_factory=list)
    ts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    qty: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    price_cny: np.ndarray = field(default_factory=lambda: np.zeros(0))
    issues: list[HistoryIssue] = field(default_factory=list)
    path: str = ''

    def __len__(self) -> int:
        return len(self.skus)

    def __iter__(self) -> Iterator[Purchase]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, i: int) -> Purchase:
        return Purchase(self.customer_ids[i], self.skus[i], float(self.ts[i]), int(self.qty[i]),
                        float(self.price_cny[i]))

    @classmethod
    def from_purchases(cls, purchases: Iterable[Purchase], path: str = '') -> 'History':
        rows = list(purchases)
        return cls(customer_ids=[p.customer_id for p in rows], skus=[p.sku for p in rows],
                   ts=np.array([p.ts for p in rows], dtype=np.float64),
                   qty=np.array([p.qty for p in rows], dtype=np.int32),
                   price_cny=np.array([p.price_cny for p in rows], dtype=np.float64), path=path)

    def select(self, rows: np.ndarray) -> 'History':
        """A history of the rows at the given indices (or boolean mask)."""
        index = np.arange(len(self))[rows]
        return History(customer_ids=[self.customer_ids[i] for i in index],
                       skus=[self.skus[i] for i in index], ts=self.ts[index], qty=self.qty[index],
                       price_cny=self.price_cny[index], path=self.path)

    @property
    def latest_ts(self) -> float:
        return float(self.ts.max()) if len(self) else 0.0


def parse_ts(text: str) -> float:
    """ISO 8601 (`2026-03-01T14:05:00+08:00`, `...Z`, or a date); naive times are taken as UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def format_ts(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def _parse_row(row: list[str]) -> tuple[str, str, float, int, float]:
    customer, sku, ts_text, qty_text, price_text = (v.strip() for v in row)
    if not customer:
        raise ValueError('empty customer_id')
    if not sku:
        raise ValueError('empty sku')
    try:
        ts = parse_ts(ts_text)
    except ValueError:
        raise ValueError(f'ts {ts_text!r} is not an ISO 8601 time') from None
    try:
        qty = int(qty_text)
    except ValueError:
        raise ValueError(f'qty {qty_text!r} is not a whole number') from None
    if qty == 0:
        raise ValueError('qty 0: a purchase is at least 1, a return (negative) at most -1')
    try:
        price = float(price_text)
    except ValueError:
        raise ValueError(f'price_cny {price_text!r} is not a number') from None
    if not 0 <= price < float('inf'):
        raise ValueError(f'price_cny {price_text!r} must be a non-negative number')
    return customer, sku, ts, qty, price


def _open(path: Path):
    """The CSV as text; a `.gz` file (a compressed export) is decompressed on the fly."""
    if path.suffix != '.gz':
        return open_store_csv(path, 'history', HistoryError)
    try:
        with gzip.open(path, 'rb') as probe:  # a file that is not gzip fails here, with one line
            probe.read(1)
        return gzip.open(path, 'rt', newline='', encoding='utf-8-sig')
    except FileNotFoundError:
        raise HistoryError(f'history {path}: no such file') from None
    except OSError as exc:
        raise HistoryError(f'history {path}: cannot read ({exc})') from None


def load_history(path: str | Path, known_skus: Container[str] | None = None) -> History:
    """Read a history CSV (or .csv.gz); bad rows and unknown skus land in `History.issues` and are skipped."""
    path = Path(path)
    handle = _open(path)
    customers: list[str] = []
    skus: list[str] = []
    ts: list[float] = []
    qty: list[int] = []
    price: list[float] = []
    issues: list[HistoryIssue] = []
    unknown: dict[str, int] = {}
    with handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise HistoryError(f"history {path}: header lacks column(s) {', '.join(missing)}")
        columns = [header.index(c) for c in COLUMNS]
        width = len(header)
        try:
            for row in reader:
                if not row:
                    continue
                if len(row) != width:
                    issues.append(HistoryIssue(reader.line_num,
                                               f'{len(row)} fields, expected {width}'))
                    continue
                try:
                    c, s, t, q, p = _parse_row([row[i] for i in columns])
                except ValueError as exc:
                    issues.append(HistoryIssue(reader.line_num, str(exc)))
                    continue
                if known_skus is not None and s not in known_skus:
                    unknown[s] = unknown.get(s, 0) + 1
                    continue
                customers.append(c)
                skus.append(s)
                ts.append(t)
                qty.append(q)
                price.append(p)
        except (csv.Error, UnicodeDecodeError, OSError, EOFError) as exc:
            issues.append(HistoryIssue(reader.line_num, f'unreadable: {exc}; rest of file skipped'))
    customers, skus, ts, qty, price = _apply_returns(customers, skus, ts, qty, price, issues)
    if unknown:
        listed = ', '.join(sorted(unknown)[:5]) + (', …' if len(unknown) > 5 else '')
        issues.append(HistoryIssue(0, f'{sum(unknown.values())} row(s) name {len(unknown)} sku(s) '
                                      f'not in the catalog ({listed})'))
    return History(customer_ids=customers, skus=skus, ts=np.array(ts, dtype=np.float64),
                   qty=np.array(qty, dtype=np.int32), price_cny=np.array(price, dtype=np.float64),
                   issues=issues, path=str(path))


def _apply_returns(customers: list[str], skus: list[str], ts: list[float], qty: list[int], price: list[float],
                   issues: list[HistoryIssue]) -> tuple[list[str], list[str], list[float], list[int], list[float]]:
    """Net returns (negative qty) against the purchases they return; only purchases remain."""
    if all(q > 0 for q in qty):
        return customers, skus, ts, qty, price
    left = list(qty)
    bought: dict[tuple[str, str], list[int]] = {}
    for i in sorted(range(len(qty)), key=lambda i: ts[i]):
        if qty[i] > 0:
            bought.setdefault((customers[i], skus[i]), []).append(i)
    for r in sorted((i for i in range(len(qty)) if qty[i] < 0), key=lambda i: ts[i]):
        left[r] = 0
        owed = -qty[r]
        for i in reversed(bought.get((customers[r], skus[r]), [])):      # the latest purchase first
            if owed == 0:
                break
            if ts[i] <= ts[r] and left[i] > 0:
                taken = min(owed, left[i])
                left[i] -= taken
                owed -= taken
        if owed:
            issues.append(HistoryIssue(0, f'return of {owed} x {skus[r]} by {customers[r]} at {format_ts(ts[r])} '
                                          'matches no purchase before it; skipped'))
    keep = [i for i in range(len(qty)) if left[i] > 0]
    return ([customers[i] for i in keep], [skus[i] for i in keep], [ts[i] for i in keep], [left[i] for i in keep],
            [price[i] for i in keep])


def write_history(path: str | Path, history: Iterable[Purchase]) -> None:
    """Write purchases as a history CSV (atomically: a reader never sees half a file)."""
    path = Path(path)
    tmp = path.with_name(path.name + '.tmp')
    with tmp.open('w', newline='', encoding='utf-8') as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for p in history:
            writer.writerow((p.customer_id, p.sku, format_ts(p.ts), p.qty, f'{p.price_cny:.2f}'))
    tmp.replace(path)
