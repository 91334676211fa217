"""The store as the dialogue sees it: catalog, zones, tours, promotions and VIP appointments.

The store model is `retail_common.store` (one loader for every node, `load_store`). Until that
module is on this branch, `load_dialogue_store` reads the same files itself into an object with the
same shape (`DialogueStore`: catalog, zones, tours, appointments, version, issues; `zone_of`,
`zone_name`, `promotions`, `appointments_for`), so the dialogue core is written once against the
contract. A bad entry is reported in `issues` and skipped, never fatal.

Also here: reading a customer's name and appointment time from what they say (check-in without a
face).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from retail_common.catalog import Catalog, CatalogError, Product, load_catalog

from .promotions import promotion_value


class StoreLoadError(ValueError):
    """The store cannot be used (missing or unreadable catalog); one line naming the file."""


@dataclass(frozen=True)
class Zone:
    id: str
    kind: str                 # 'product' | 'service'
    name_zh: str
    name_en: str
    pose: tuple[float, float, float] = (0.0, 0.0, 0.0)
    categories: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f'{self.name_zh} / {self.name_en}'


@dataclass(frozen=True)
class TourStop:
    zone: str
    narration_zh: str = ''
    narration_en: str = ''


@dataclass(frozen=True)
class Appointment:
    appointment_id: str
    customer_id: str
    name: str
    start: datetime
    end: datetime
    purpose: str
    meeting_point: str
    staff: str


@dataclass(frozen=True)
class DialogueStore:
    """The shape of retail_common.store.Store that the dialogue uses."""
    catalog: Catalog
    zones: dict[str, Zone] = field(default_factory=dict)
    tours: dict[str, tuple[TourStop, ...]] = field(default_factory=dict)
    appointments: tuple[Appointment, ...] = ()
    version: str = ''
    issues: tuple[str, ...] = ()

    def zone_of(self, product: Product) -> str | None:
        """The product's own zone when the store has it, else the zone listing its category."""
        if product.zone in self.zones:
            return product.zone
        for zone in self.zones.values():
            if product.category in zone.categories:
                return zone.id
        return product.zone or None

    def zone_name(self, zone_id: str, lang: str) -> str:
        zone = self.zones.get(zone_id)
        if zone is None:
            return zone_id.replace('_', ' ')
        return zone.name_en if lang == 'en' else zone.name_zh

    def promotions(self) -> list[Product]:
        """In-stock products with a promotion, best (largest saving for the price) first."""
        offers = [p for p in self.catalog.products if p.promotion and p.in_stock]
        return sorted(offers, key=lambda p: (-promotion_value(p.promotion, p.price_cny), p.sku))

    def appointments_for(self, customer_id: str, now: datetime) -> list[Appointment]:
        return sorted((a for a in self.appointments if a.customer_id == customer_id and a.start.date() == now.date()),
                      key=lambda a: abs(a.start - now))


def load_dialogue_store(store_dir: str | Path, data_dir: str | Path | None = None, *,
                        catalog_path: str | Path | None = None, appointments_path: str | Path | None = None):
    """The store (retail_common.store.load_store when available, which overlays what the sync
    downlinked into <data_dir>/platform); StoreLoadError when unusable. Without the store model,
    `catalog_path`/`appointments_path` (the files a `/sync/data_updates` message named) replace
    the store folder's files."""
    try:
        from retail_common.store import StoreError, load_store
    except ImportError:
        return _load_local(Path(store_dir), catalog_path, appointments_path)
    try:
        return load_store(store_dir, data_dir)
    except StoreError as exc:
        raise StoreLoadError(str(exc)) from None


def _load_local(store_dir: Path, catalog_path=None, appointments_path=None) -> DialogueStore:
    catalog_path = Path(catalog_path or store_dir / 'catalog.csv')
    appointments_path = Path(appointments_path or store_dir / 'appointments.json')
    try:
        catalog = load_catalog(catalog_path)
    except CatalogError as exc:
        raise StoreLoadError(str(exc)) from None
    issues = [f'catalog {catalog.path} {issue}: row skipped' for issue in catalog.issues]
    zones, tours, zone_issues = _load_zones(store_dir / 'zones.yaml')
    appointments, appointment_issues = load_appointments(appointments_path)
    files = [catalog_path, store_dir / 'zones.yaml', appointments_path]
    version = '-'.join(f'{f}:{f.stat().st_mtime_ns}:{f.stat().st_size}' for f in files if f.is_file())
    return DialogueStore(catalog, zones, tours, tuple(appointments), version,
                         tuple(issues + zone_issues + appointment_issues))


def _load_zones(path: Path) -> tuple[dict[str, Zone], dict[str, tuple[TourStop, ...]], list[str]]:
    if not path.is_file():
        return {}, {}, [f'zones {path}: no such file; zone names are the zone ids']
    try:
        data = yaml.safe_load(path.read_text(encoding='utf-8')) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return {}, {}, [f'zones {path}: unreadable ({str(exc).splitlines()[0]})']
    zones, tours, issues = {}, {}, []
    for zone_id, info in (data.get('zones') or {}).items():
        if not isinstance(info, dict):
            issues.append(f'zones {path}: zone {zone_id} is not a mapping: skipped')
            continue
        pose = tuple(float(v) for v in (info.get('pose') or (0, 0, 0)))[:3]
        zones[str(zone_id)] = Zone(str(zone_id), str(info.get('kind') or 'product'),
                                   str(info.get('name_zh') or zone_id), str(info.get('name_en') or zone_id),
                                   pose, tuple(str(c) for c in info.get('categories') or ()))
    for name, stops in (data.get('tours') or {}).items():
        parsed = []
        for stop in stops or ():
            if isinstance(stop, dict) and str(stop.get('zone')) in zones:
                parsed.append(TourStop(str(stop['zone']), str(stop.get('narration_zh') or ''),
                                       str(stop.get('narration_en') or '')))
            else:
                issues.append(f'zones {path}: tour {name}: stop {stop!r} skipped (not a zone of the store)')
        if parsed:
            tours[str(name)] = tuple(parsed)
    return zones, tours, issues


def load_appointments(path: str | Path | None) -> tuple[list[Appointment], list[str]]:
    """Appointments from a JSON list; returns (appointments, one-line issues of skipped entries)."""
    if not path or not Path(path).is_file():
        return [], []
    try:
        data = json.loads(Path(path).read_text(encoding='utf-8'))
    except (OSError, ValueError) as exc:
        return [], [f'appointments {path}: unreadable ({exc})']
    if not isinstance(data, list):
        return [], [f'appointments {path}: expected a JSON list']
    out, issues = [], []
    for index, entry in enumerate(data):
        try:
            entry = _from_platform(entry) if isinstance(entry, dict) and 'customer' in entry else entry
            out.append(Appointment(
                appointment_id=str(entry['appointment_id']), customer_id=str(entry.get('customer_id', '')),
                name=str(entry['name']), start=datetime.fromisoformat(entry['start']),
                end=datetime.fromisoformat(entry['end']), purpose=str(entry.get('purpose', '')),
                meeting_point=str(entry.get('meeting_point') or 'vip_lounge'), staff=str(entry.get('staff', ''))))
        except (KeyError, TypeError, ValueError) as exc:
            issues.append(f'appointments {path}: entry {index} skipped ({exc!r})')
    return out, issues


def _from_platform(entry: dict) -> dict:
    """An appointment as the sync downlink stores it (platform: id, customer, time, purpose, note).

    The platform's `note` carries the rest as a JSON object: name, meeting_point, staff and
    duration_min (default 60) or end.
    """
    note = json.loads(entry.get('note') or '{}')
    if not isinstance(note, dict):
        raise ValueError('note is not a JSON object')
    start = datetime.fromisoformat(entry['time'])
    end = note.get('end') or (start + timedelta(minutes=float(note.get('duration_min', 60)))).isoformat()
    return {'appointment_id': entry['id'], 'customer_id': entry['customer'], 'name': note['name'],
            'start': entry['time'], 'end': end, 'purpose': entry.get('purpose', ''),
            'meeting_point': note.get('meeting_point', ''), 'staff': note.get('staff', '')}


_ZH_NUM = {'一': 1, '二': 2, '两': 2, '三': 3, '四': 4, '五': 5, '六': 6, '七': 7, '八': 8, '九': 9, '十': 10,
           '十一': 11, '十二': 12}


def parse_clock(text: str) -> tuple[int, int] | None:
    """A time of day said by a customer: 三点, 两点半, 下午3点, 2:30, 4 pm, at 3. Store hours assumed."""
    match = re.search(r'(\d{1,2})[:：.](\d{2})', text)
    hour = minute = None
    if match:
        hour, minute = int(match.group(1)), int(match.group(2))
    else:
        match = re.search(r'(十[一二]?|[一二两三四五六七八九]|\d{1,2})\s*点\s*(半|一刻|(\d{1,2})分?)?', text)
        if match:
            token = match.group(1)
            hour = int(token) if token.isdigit() else _ZH_NUM[token]
            extra = match.group(2) or ''
            minute = 30 if extra == '半' else 15 if extra == '一刻' else int(match.group(3) or 0)
        else:
            match = re.search(r'\b(?:at|for)\s+(\d{1,2})\b|\b(\d{1,2})\s*(?:am|pm|o\'?clock)\b', text, re.I)
            if not match:
                match = re.search(r'\b(?:at|for)\s+(ten|eleven|twelve|one|two|three|four|five|six|seven|eight|nine)\b', text, re.I)
                if not match:
                    return None
                words = 'one two three four five six seven eight nine ten eleven twelve'.split()
                hour, minute = words.index(match.group(1).lower()) + 1, 0
            else:
                hour, minute = int(match.group(1) or match.group(2)), 0
    if re.search(r'下午|晚上|pm', text, re.I) and hour < 12:
        hour += 12
    elif hour < 8:
        hour += 12          # "三点" in a shop means 15:00
    return (hour, minute) if 0 <= hour < 24 and 0 <= minute < 60 else None


def parse_name(text: str) -> str | None:
    match = re.search(r'(?:我是|我叫|我姓|名字是)\s*([\u4e00-\u9fff]{1,3}?)(?=[，,。\s]|预约|约|来|$)', text)
    if match:
        return match.group(1)
    match = re.search(r"(?:my name is|name is|name's|this is|i am|i'm)\s+([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)", text)
    return match.group(1) if match else None
