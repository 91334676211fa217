"""A store's product catalog (CSV), shared by the dialogue and the recommendation.

Columns: sku,name_zh,name_en,aliases,category,category_zh,brand,brand_zh,price_cny,zone,stock,tags,promotion
and, optionally, promotion_en (the promotion in English). `aliases` and `tags` are `|`-separated.
A bad row is reported with its line number and skipped, so one typo in a catalog never takes the
robot's answers down.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

COLUMNS = (
    'sku',
    'name_zh',
    'name_en',
    'aliases',
    'category',
    'category_zh',
    'brand',
    'brand_zh',
    'price_cny',
    'zone',
    'stock',
    'tags',
    'promotion',
    'promotion_en',
)
REQUIRED = ('sku', 'name_zh', 'name_en', 'category', 'brand', 'price_cny', 'zone', 'stock')
CONSUMABLE_TAG = 'consumable'
_CATEGORY_ID = re.compile(r'^[a-z][a-z0-9_]*$')


class CatalogError(Exception):
    """The catalog as a whole cannot be used (missing file, wrong header)."""


@dataclass(frozen=True)
class Product:
    sku: str
    name_zh: str
    name_en: str
    aliases: tuple[str, ...]
    category: str
    category_zh: str
    brand: str
    brand_zh: str
    price_cny: float
    zone: str
    stock: int
    tags: tuple[str, ...]
    promotion: str
    promotion_en: str = ''  # optional column: the promotion in English

    @property
    def in_stock(self) -> bool:
        return self.stock > 0

    @property
    def consumable(self) -> bool:
        return CONSUMABLE_TAG in self.tags


@dataclass(frozen=True)
class CatalogIssue:
    line: int
    message: str

    def __str__(self) -> str:
        return f'line {self.line}: {self.message}'


@dataclass
class Catalog:
    path: str
    products: list[Product] = field(default_factory=list)
    issues: list[CatalogIssue] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.by_sku = {p.sku: p for p in self.products}

    def __len__(self) -> int:
        return len(self.products)

    def categories(self) -> dict[str, str]:
        """category id -> Chinese category name."""
        return {p.category: p.category_zh for p in self.products}

    def brands(self) -> dict[str, str]:
        """brand -> Chinese brand name."""
        return {p.brand: p.brand_zh for p in self.products}


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split('|') if part.strip())


def parse_row(row: dict[str, str]) -> Product:
    """Turn one CSV row into a Product; raises ValueError naming the bad field."""
    values = {k: (row.get(k) or '').strip() for k in COLUMNS}
    for name in REQUIRED:
        if not values[name]:
            raise ValueError(f'empty {name}')
    if not _CATEGORY_ID.fullmatch(values['category']):
        raise ValueError(f"category {values['category']!r} is not a snake_case id")
    try:
        price = float(values['price_cny'])
    except ValueError:
        raise ValueError(f"price_cny {values['price_cny']!r} is not a number") from None
    if not price >= 0 or price == float('inf'):
        raise ValueError(f"price_cny {values['price_cny']!r} must be a non-negative number")
    try:
        stock = int(values['stock'])
    except ValueError:
        raise ValueError(f"stock {values['stock']!r} is not a whole number") from None
    if stock < 0:
        raise ValueError(f'stock {stock} is negative')
    return Product(
        sku=values['sku'],
        name_zh=values['name_zh'],
        name_en=values['name_en'],
        aliases=_split(values['aliases']),
        category=values['category'],
        category_zh=values['category_zh'] or values['category'],
        brand=values['brand'],
        brand_zh=values['brand_zh'] or values['brand'],
        price_cny=price,
        zone=values['zone'],
        stock=stock,
        tags=_split(values['tags']),
        promotion=values['promotion'],
        promotion_en=values['promotion_en'],
    )


def open_store_csv(path: Path, what: str, error: type[Exception]):
    """Open a store CSV (BOM-tolerant); `error` names `what` and the path when it cannot be read."""
    try:
        return path.open(newline='', encoding='utf-8-sig')
    except FileNotFoundError:
        raise error(f'{what} {path}: no such file') from None
    except OSError as exc:
        raise error(f'{what} {path}: cannot read ({exc.strerror})') from None


def load_catalog(path: str | Path) -> Catalog:
    """Read a catalog CSV; bad rows land in `Catalog.issues` (with line numbers) and are skipped."""
    path = Path(path)
    handle = open_store_csv(path, 'catalog', CatalogError)
    products: list[Product] = []
    issues: list[CatalogIssue] = []
    seen: dict[str, int] = {}
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise CatalogError(f"catalog {path}: header lacks column(s) {', '.join(missing)}")
        try:
            for row in reader:
                line = reader.line_num
                if None in row:
                    issues.append(CatalogIssue(line, 'more fields than columns'))
                    continue
                try:
                    product = parse_row(row)
                except ValueError as exc:
                    issues.append(CatalogIssue(line, str(exc)))
                    continue
                if product.sku in seen:
                    issues.append(
                        CatalogIssue(line, f'duplicate sku {product.sku} (first on line {seen[product.sku]})')
                    )
                    continue
                seen[product.sku] = line
                products.append(product)
        except (csv.Error, UnicodeDecodeError) as exc:
            issues.append(CatalogIssue(reader.line_num, f'unreadable: {exc}; rest of file skipped'))
    return Catalog(path=str(path), products=products, issues=issues)
