"""The store model: one loader for everything a node knows about its store (pure, no rclpy).

A store folder (`store_dir`, installed with the robot or edited by a technician) holds

    map.yaml (+ its image)   map_server map of the floor
    zones.yaml               named places, which categories each product zone holds, tours,
                             and the store's opening hours (optional, default 10:00-22:00)
    catalog.csv              products (retail_common.catalog)
    history.csv              member purchase histories (customer_id,sku,ts,qty,price_cny)
    appointments.json        VIP appointments (optional; normally they come from the platform)

and the sync agent's downlink writes what the online platform sends into `<data_dir>/platform`
(catalog.csv, promotions.json, appointments.json, history.csv, campaigns.json, profiles.json).
`load_store` overlays the second on the first the same way for every node:

- catalog.csv: the platform's copy replaces the store folder's (when it loads);
- promotions.json: a JSON list of `{"sku": ..., "promotion": "text", "priority": number}`;
  each entry sets that product's promotion text ('' ends it) and ranks it (higher first);
- appointments.json: both lists are read, the platform's entry wins for the same appointment id;
- history.csv: the platform's file is the one used (`Store.history_path`);
- campaigns.json: HQ's active campaigns with their matching members (`retail_common.campaigns`).
- profiles.json: returning members' profiles, member id -> what she said on earlier visits
  (`Store.profiles`, retail_common.profiles); only the platform's.
- desired.json: the fleet's desired state the sync agent swapped in (content rolled out from the
  platform); its `content.promotions` ({sku, text}) are applied after promotions.json with its
  rules and rank first, in the document's order (`check_rollout` says what a version would skip);
  its `content.tours` ({name, stops: [{zone, narration: {zh, en}}]}) are read with zones.yaml's
  tour rules (every stop a zone of the store) and come first in `Store.tours` (the tour the
  dialogue offers), replacing a tour of the same name; its `content.greetings`
  (retail_common.greetings) replace the dialogue's built-in first greeting (`Store.greeting`).
  An entry that breaks a rule is reported in `Store.issues` and skipped.

zones.yaml format (map frame, metres / radians):

    frame_id: map
    opening_hours: '10:00-22:00'   # HH:MM-HH:MM, local time; '10:00-01:00' closes after midnight
    zones:
      phones: {kind: product, name_zh: 手机数码区, name_en: Phones & Wearables,
               categories: [phone, smartwatch], pose: [x, y, theta]}
      checkout: {kind: service, name_zh: 收银台, name_en: Checkout, pose: [x, y, theta]}
    tours:
      showroom:
      - {zone: phones, narration: {zh: 这里是手机区……, en: Here are the phones...}}

A tour stop's narration may also be given as `narration_zh` / `narration_en`, or as one text
`narration` (used for both languages).

Error policy (one for all nodes): a store that cannot be used (a broken catalog or zones.yaml)
raises `StoreError` with one line naming the file and the row or key; a bad catalog row, promotion
or appointment is skipped and reported in `Store.issues`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from retail_common.campaigns import FILE as CAMPAIGNS_FILE, Campaign, load_campaigns
from retail_common.catalog import Catalog, CatalogError, Product, load_catalog
from retail_common.greetings import AUDIENCES, fill, parse_greetings
from retail_common.hours import DEFAULT as DEFAULT_HOURS, HoursError, OpeningHours, parse_hours
from retail_common.profiles import MemberProfile, load_profiles

__all__ = [
    'StoreError',
    'Zone',
    'TourStop',
    'Appointment',
    'Store',
    'load_store',
    'parse_zones',
    'load_zones_file',
    'load_appointments',
    'PLATFORM_DIR',
    'ZONE_KINDS',
    'DESIRED_FILE',
    'check_rollout',
    'rollout_promotions',
    'rollout_tours',
    'store_hours',
]

PLATFORM_DIR = 'platform'  # <data_dir>/platform: what the sync downlink writes
ZONE_KINDS = ('product', 'service')
MAX_FILE_BYTES = 64 * 1024 * 1024  # untrusted input: no store file is read beyond this
_ZONE_ID = re.compile(r'^[a-z][a-z0-9_]*$')


class StoreError(ValueError):
    """A store that cannot be used; the message is one line naming the file and the row or key."""


@dataclass(frozen=True)
class Zone:
    """A named place; `pose` = (x, y, theta) in the map frame where the robot stops, facing theta."""

    id: str
    kind: str  # 'product' | 'service'
    name_zh: str
    name_en: str
    pose: tuple[float, float, float]
    categories: tuple[str, ...] = ()  # catalog category ids shown in this zone

    @property
    def label(self) -> str:
        """How staff name it in logs: '手机数码区 (Phones & Wearables)'."""
        return f'{self.name_zh} ({self.name_en})'


@dataclass(frozen=True)
class TourStop:
    zone: str
    narration_zh: str = ''
    narration_en: str = ''

    def narration_in(self, lang: str) -> str:
        """The narration in `lang` ('zh' | 'en'), falling back to the other language."""
        first, second = (
            (self.narration_en, self.narration_zh) if lang == 'en' else (self.narration_zh, self.narration_en)
        )
        return first or second

    @property
    def narration(self) -> str:
        """Backward-compatible single text (Chinese first)."""
        return self.narration_in('zh')


@dataclass(frozen=True)
class Appointment:
    appointment_id: str
    customer_id: str
    name: str
    start: datetime
    end: datetime
    purpose: str
    meeting_point: str  # zone id (default vip_lounge)
    staff: str


@dataclass(frozen=True)
class Store:
    catalog: Catalog
    zones: dict[str, Zone]
    tours: dict[str, tuple[TourStop, ...]]
    appointments: tuple[Appointment, ...] = ()
    history_path: Path | None = None
    map_yaml: Path | None = None
    version: str = ''
    issues: tuple[str, ...] = ()
    frame_id: str = 'map'
    zones_path: Path | None = None
    promotion_rank: dict[str, float] = field(default_factory=dict)  # sku -> priority (higher first)
    campaigns: tuple[Campaign, ...] = ()  # HQ's campaigns (<data_dir>/platform/campaigns.json)
    profiles: dict[str, MemberProfile] = field(default_factory=dict)  # member -> earlier visits
    greetings: dict[str, dict[str, str]] = field(default_factory=dict)  # rolled out: audience -> lang -> text
    opening_hours: OpeningHours = DEFAULT_HOURS  # zones.yaml's opening_hours (retail_common.hours)

    def greeting(self, audience: str, lang: str, **values: object) -> str:
        """The rolled-out greeting for `audience` ('anonymous' | 'member' | 'vip') in `lang`, its
        placeholders filled from `values`; '' when none was rolled out (the built-in one is used)."""
        text = self.greetings.get(audience, {}).get(lang, '')
        if not text:
            return ''
        return fill(text, **{key: values.get(key, '') for key in AUDIENCES.get(audience, ())}).strip()

    def profile_of(self, customer_id: str) -> MemberProfile | None:
        """What a returning member said on earlier visits (retail_common.profiles); None for an
        anonymous customer or a member without one."""
        return self.profiles.get(customer_id) if customer_id else None

    def zone_of(self, product: Product) -> str | None:
        """The zone where `product` is shown: its own `zone` when the store has it, else the zone
        whose `categories` list the product's category, else None."""
        if product.zone in self.zones:
            return product.zone
        return self.zone_for_category(product.category)

    def zone_for_category(self, category: str) -> str | None:
        return next((z.id for z in self.zones.values() if category in z.categories), None)

    def zone_name(self, zone_id: str, lang: str) -> str:
        """The zone's name in `lang` ('en' or else Chinese); an unknown id reads as words."""
        zone = self.zones.get(zone_id)
        if zone is None:
            return zone_id.replace('_', ' ')
        return zone.name_en if lang == 'en' else zone.name_zh

    def promotions(self) -> list[Product]:
        """Products in stock with a promotion, best first (platform priority, then catalog order)."""
        offers = [(index, p) for index, p in enumerate(self.catalog.products) if p.promotion and p.in_stock]
        offers.sort(key=lambda item: (-self.promotion_rank.get(item[1].sku, 0.0), item[0]))
        return [p for _, p in offers]

    def appointments_for(self, customer_id: str, now: datetime) -> list[Appointment]:
        """The customer's appointments on `now`'s day that have not ended, earliest first."""
        if not customer_id:
            return []
        mine = [
            a
            for a in self.appointments
            if a.customer_id == customer_id and a.start.date() == now.date() and _not_before(a.end, now)
        ]
        return sorted(mine, key=lambda a: a.start)


def _not_before(end: datetime, now: datetime) -> bool:
    if (end.tzinfo is None) != (now.tzinfo is None):
        end, now = end.replace(tzinfo=None), now.replace(tzinfo=None)
    return end >= now


# --- files ------------------------------------------------------------------------------------


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise StoreError(f'{path}: {what} file is {size} bytes, more than the {MAX_FILE_BYTES} allowed')
        return path.read_bytes()
    except FileNotFoundError:
        raise StoreError(f'{path}: {what} file does not exist') from None
    except IsADirectoryError:
        raise StoreError(f'{path}: {what} file is a folder') from None
    except OSError as exc:
        raise StoreError(f'{path}: cannot read the {what} file ({exc.strerror})') from None


def _read_json(path: Path, what: str):
    """A JSON file of the platform's downlink (UTF-8, BOM allowed), bounded like every store file;
    StoreError in one line when it cannot be read or is not JSON (nesting too deep included)."""
    raw = _read_bytes(path, what)
    try:
        return json.loads(raw.decode('utf-8-sig'))
    except UnicodeDecodeError:
        raise StoreError(f'{path}: {what} file is not UTF-8 text') from None
    except ValueError as exc:
        raise StoreError(f'{path}: not JSON ({str(exc).splitlines()[0]})') from None
    except RecursionError:
        raise StoreError(f'{path}: not JSON (nested too deep)') from None


def _read_yaml(path: Path, what: str):
    raw = _read_bytes(path, what)
    try:
        return yaml.safe_load(raw.decode('utf-8-sig'))
    except UnicodeDecodeError:
        raise StoreError(f'{path}: {what} file is not UTF-8 text') from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        where = f' line {mark.line + 1}' if mark is not None else ''
        problem = getattr(exc, 'problem', None) or 'invalid YAML'
        raise StoreError(f'{path}{where}: not valid YAML ({problem})') from None


# --- zones.yaml -------------------------------------------------------------------------------


def _pose(value, where: str) -> tuple[float, float, float]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 3
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    ):
        raise StoreError(f'{where}: pose must be [x, y, theta] numbers, got {value!r}')
    return float(value[0]), float(value[1]), float(value[2])


def _text(entry: dict, key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise StoreError(f'{where}: {key} must be a non-empty text')
    return value.strip()


def _optional_text(value, where: str) -> str:
    if value is None:
        return ''
    if not isinstance(value, str):
        raise StoreError(f'{where} must be a text, got {value!r}')
    return value.strip()


def _narration(stop: dict, where: str) -> tuple[str, str]:
    value = stop.get('narration')
    zh = _optional_text(stop.get('narration_zh'), f'{where}: narration_zh')
    en = _optional_text(stop.get('narration_en'), f'{where}: narration_en')
    if isinstance(value, dict):
        unknown = sorted(set(map(str, value)) - {'zh', 'en'})
        if unknown:
            raise StoreError(f'{where}: narration languages are zh and en, got {", ".join(unknown)}')
        zh = zh or _optional_text(value.get('zh'), f'{where}: narration.zh')
        en = en or _optional_text(value.get('en'), f'{where}: narration.en')
    elif value is not None:
        text = _optional_text(value, f'{where}: narration')
        zh, en = zh or text, en or text
    return zh, en


def parse_zones(data, source: str = '<zones>') -> tuple[dict[str, Zone], dict[str, tuple[TourStop, ...]], str]:
    """Validate a loaded zones document: (zones, tours, frame_id); StoreError on the first problem."""
    frame_id = _zones_frame_id(data, source)
    zones: dict[str, Zone] = {}
    owner_of: dict[str, str] = {}
    for zone_id, entry in data['zones'].items():
        where = f'{source}: zone {zone_id!r}'
        if not isinstance(zone_id, str) or not _ZONE_ID.fullmatch(zone_id):
            raise StoreError(f'{where}: ids are lower-case letters, digits and _')
        if not isinstance(entry, dict):
            raise StoreError(f'{where}: expected a mapping with kind, name_zh, name_en, pose')
        kind = entry.get('kind')
        if kind not in ZONE_KINDS:
            raise StoreError(f'{where}: kind must be product or service, got {kind!r}')
        categories = entry.get('categories', []) or []
        if not isinstance(categories, list) or not all(isinstance(c, str) and c for c in categories):
            raise StoreError(f'{where}: categories must be a list of category ids')
        # A product zone without categories holds what the catalog's `zone` column puts there (a
        # brand corner, a shop-in-shop); categories are only the default place of their products.
        for category in categories:
            if category in owner_of:
                raise StoreError(f'{where}: category {category!r} is already in zone {owner_of[category]!r}')
            owner_of[category] = zone_id
        zones[zone_id] = Zone(
            id=zone_id,
            kind=kind,
            name_zh=_text(entry, 'name_zh', where),
            name_en=_text(entry, 'name_en', where),
            pose=_pose(entry.get('pose'), where),
            categories=tuple(categories),
        )
    return zones, _parse_tours(data, zones, source), frame_id


def _zones_frame_id(data, source: str) -> str:
    """The frame of a zones document, after checking it has a non-empty `zones:` mapping."""
    if not isinstance(data, dict) or not isinstance(data.get('zones'), dict) or not data['zones']:
        raise StoreError(f'{source}: expected a mapping with a non-empty `zones:` mapping')
    frame_id = data.get('frame_id', 'map')
    if not isinstance(frame_id, str) or not frame_id:
        raise StoreError(f'{source}: frame_id must be a text')
    return frame_id


def _parse_tours(data: dict, zones: dict[str, Zone], source: str) -> dict[str, tuple[TourStop, ...]]:
    """The `tours:` of a zones document: name -> stops, each stop a known zone with its narration."""
    tours: dict[str, tuple[TourStop, ...]] = {}
    raw_tours = data.get('tours', {}) or {}
    if not isinstance(raw_tours, dict):
        raise StoreError(f'{source}: tours must be a mapping of tour name -> list of stops')
    for name, stops in raw_tours.items():
        where = f'{source}: tour {name!r}'
        if not isinstance(stops, list) or not stops:
            raise StoreError(f'{where}: expected a non-empty list of {{zone, narration}} stops')
        tour: list[TourStop] = []
        for number, stop in enumerate(stops, 1):
            if not isinstance(stop, dict) or not isinstance(stop.get('zone'), str) or stop['zone'] not in zones:
                raise StoreError(f'{where}: stop {number} must name a known zone, got {repr(stop)[:120]}')
            zh, en = _narration(stop, f'{where} stop {number}')
            tour.append(TourStop(zone=stop['zone'], narration_zh=zh, narration_en=en))
        tours[str(name)] = tuple(tour)
    return tours


def store_hours(data, source: str = '<zones>') -> OpeningHours:
    """A zones document's `opening_hours` (retail_common.hours; absent: DEFAULT_HOURS);
    StoreError naming the file and the key when it is not HH:MM-HH:MM."""
    value = data.get('opening_hours') if isinstance(data, dict) else None
    if value is None:
        return DEFAULT_HOURS
    try:
        return parse_hours(value, f'{source}: opening_hours')
    except HoursError as exc:
        raise StoreError(str(exc)) from None


def load_zones_file(path: str | Path) -> tuple[dict[str, Zone], dict[str, tuple[TourStop, ...]], str]:
    """Read and validate a zones.yaml: (zones, tours, frame_id); StoreError (one line) otherwise."""
    path = Path(path)
    return parse_zones(_read_yaml(path, 'zones'), source=str(path))


# --- appointments.json ------------------------------------------------------------------------


MAX_APPOINTMENT_MIN = 24 * 60  # an appointment lasts at most a day


def _from_platform(entry: dict) -> dict:
    """An appointment as the sync downlink stores it (platform: id, customer, time, purpose, note).

    The platform's `note` carries the rest as a JSON object: name, meeting_point, staff and
    duration_min (default 60) or end.
    """
    try:
        note = json.loads(entry.get('note') or '{}')
    except RecursionError:
        raise ValueError('note is nested too deep') from None
    if not isinstance(note, dict):
        raise ValueError('note is not a JSON object')
    start = datetime.fromisoformat(entry['time'])
    minutes = float(note.get('duration_min', 60))
    if not 0 < minutes <= MAX_APPOINTMENT_MIN:
        raise ValueError(f'duration_min must be 0..{MAX_APPOINTMENT_MIN} minutes, got {str(minutes)[:20]}')
    end = note.get('end') or (start + timedelta(minutes=minutes)).isoformat()
    return {
        'appointment_id': entry['id'],
        'customer_id': entry['customer'],
        'name': note['name'],
        'start': entry['time'],
        'end': end,
        'purpose': entry.get('purpose', ''),
        'meeting_point': note.get('meeting_point', ''),
        'staff': note.get('staff', ''),
    }


def load_appointments(path: str | Path | None) -> tuple[list[Appointment], list[str]]:
    """Appointments from a JSON list (the store's own form or the platform's); a missing file is
    no appointments. Returns (appointments, one-line issues of skipped entries)."""
    if not path or not Path(path).is_file():
        return [], []
    path = Path(path)
    try:
        data = _read_json(path, 'appointments')
    except StoreError as exc:
        return [], [f'{exc}; no appointments from it']
    if not isinstance(data, list):
        return [], [f'{path}: expected a JSON list of appointments; none read']
    out, issues = [], []
    for index, entry in enumerate(data):
        try:
            if not isinstance(entry, dict):
                raise ValueError('not a JSON object')
            if 'customer' in entry:
                entry = _from_platform(entry)
            start, end = datetime.fromisoformat(entry['start']), datetime.fromisoformat(entry['end'])
            if (start.tzinfo is None) != (end.tzinfo is None) or end < start:
                raise ValueError('end must be after start (both with or both without a time zone)')
            name = str(entry['name']).strip()
            if not name:
                raise ValueError('empty name')
            out.append(
                Appointment(
                    appointment_id=str(entry['appointment_id']),
                    customer_id=str(entry.get('customer_id', '')),
                    name=name,
                    start=start,
                    end=end,
                    purpose=str(entry.get('purpose', '')),
                    meeting_point=str(entry.get('meeting_point') or 'vip_lounge'),
                    staff=str(entry.get('staff', '')),
                )
            )
        except KeyError as exc:
            issues.append(f'{path}: entry {index}: missing key {exc.args[0]!r}; skipped')
        except (TypeError, ValueError, ArithmeticError) as exc:  # OverflowError: a date past year 9999
            issues.append(
                f'{path}: entry {index}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; skipped'
            )
    return out, issues


# --- promotions.json --------------------------------------------------------------------------


def _apply_promotions(catalog: Catalog, path: Path, issues: list[str]) -> tuple[Catalog, dict[str, float]]:
    try:
        data = _read_json(path, 'promotions')
    except StoreError as exc:
        issues.append(f'{exc}; promotions from the catalog only')
        return catalog, {}
    if not isinstance(data, list):
        issues.append(f'{path}: expected a JSON list of promotions; promotions from the catalog only')
        return catalog, {}
    return _promote(catalog, data, str(path), issues)


def _promote(
    catalog: Catalog, data: list, where_from: str, issues: list[str], rank: dict[str, float] | None = None
) -> tuple[Catalog, dict[str, float]]:
    """promotions.json's rules, one entry at a time: a bad entry is skipped and reported."""
    texts: dict[str, str] = {}
    rank = dict(rank or {})
    for index, entry in enumerate(data):
        where = f'{where_from}: entry {index}'
        if not isinstance(entry, dict) or not isinstance(entry.get('sku'), str):
            issues.append(f'{where}: expected {{"sku": ..., "promotion": ...}}; skipped')
            continue
        sku, text, priority = entry['sku'].strip(), entry.get('promotion', ''), entry.get('priority', 0)
        if sku not in catalog.by_sku:
            issues.append(f'{where}: sku {sku!r} is not in the catalog; skipped')
            continue
        if not isinstance(text, str):
            issues.append(f'{where}: promotion of {sku} must be a text; skipped')
            continue
        if isinstance(priority, bool) or not isinstance(priority, (int, float)) or not math.isfinite(priority):
            issues.append(f'{where}: priority of {sku} must be a number; skipped')
            continue
        texts[sku], rank[sku] = text.strip(), float(priority)
    if not texts:
        return catalog, rank
    # A promotion set by the platform replaces the catalog's, and its English with it.
    products = [replace(p, promotion=texts[p.sku], promotion_en='') if p.sku in texts else p for p in catalog.products]
    return Catalog(path=catalog.path, products=products, issues=list(catalog.issues)), rank


# --- desired.json: content rolled out from the platform's fleet ------------------------------
DESIRED_FILE = 'desired.json'  # <data_dir>/platform/desired.json, swapped in by the sync's fleet link
MAX_ROLLOUT_TOURS = 50  # as the desired state's model allows
ROLLOUT_PRIORITY = 1_000_000.0  # a rolled-out promotion ranks before the downlink's, in its order


def rollout_promotions(content: object) -> list[dict]:
    """A desired state's `content.promotions` ({sku, text, discount}) as promotions.json entries
    ({sku, promotion, priority}), ranked first in the document's order; [] when there are none."""
    promotions = content.get('promotions') if isinstance(content, dict) else None
    if not isinstance(promotions, list):
        return []
    return [
        {'sku': p.get('sku'), 'promotion': p.get('text', ''), 'priority': ROLLOUT_PRIORITY - index}
        if isinstance(p, dict)
        else p
        for index, p in enumerate(promotions)
    ]


def check_rollout(store: Store, content: object, where: str = 'desired state') -> list[str]:
    """What a rolled-out content section would have skipped in `store` (promotions.json's rules:
    a product of the catalog, a text; zones.yaml's tour rules: every stop a zone of the store;
    the greetings' placeholders): [] when every entry would take effect. The sync agent refuses a
    version with any (the last good one stays in use, the problem is reported)."""
    problems: list[str] = []
    _promote(store.catalog, rollout_promotions(content), f'{where}: content.promotions', problems)
    rollout_tours(content, store.zones, f'{where}: content.tours', problems)
    parse_greetings(content, f'{where}: content.greetings', problems)
    return problems


def rollout_tours(
    content: object, zones: dict[str, Zone], where: str, issues: list[str]
) -> dict[str, tuple[TourStop, ...]]:
    """A desired state's `content.tours` ([{name, stops: [{zone, narration}]}]) read with
    zones.yaml's tour rules, in the document's order; a tour with a stop that is no zone of the
    store (or any other problem) is added to `issues` and skipped whole."""
    tours = content.get('tours') if isinstance(content, dict) else None
    if tours is None:
        return {}
    if not isinstance(tours, list):
        issues.append(f'{where}: expected a list of {{name, stops}}; tours not used')
        return {}
    if len(tours) > MAX_ROLLOUT_TOURS:
        issues.append(f'{where}: {len(tours)} tours; the first {MAX_ROLLOUT_TOURS} used')
    out: dict[str, tuple[TourStop, ...]] = {}
    for index, tour in enumerate(tours[:MAX_ROLLOUT_TOURS]):
        name = tour.get('name') if isinstance(tour, dict) else None
        if not isinstance(name, str) or not name.strip():
            issues.append(f'{where}: entry {index}: expected {{"name": ..., "stops": [...]}}; skipped')
            continue
        if name.strip() in out:
            issues.append(f'{where}: entry {index}: a second tour named {name.strip()!r}; skipped')
            continue
        try:
            out.update(_parse_tours({'tours': {name.strip(): tour.get('stops')}}, zones, f'{where}: entry {index}'))
        except StoreError as exc:
            issues.append(f'{exc}; skipped')
    return out


def _apply_rollout(
    catalog: Catalog, rank: dict[str, float], path: Path, issues: list[str]
) -> tuple[Catalog, dict[str, float]]:
    if not path.is_file():
        return catalog, rank
    try:
        data = _read_json(path, 'desired state')
    except StoreError as exc:
        issues.append(f'{exc}; rolled-out content not used')
        return catalog, rank
    content = data.get('content') if isinstance(data, dict) else None
    return _promote(catalog, rollout_promotions(content), f'{path}: content.promotions', issues, rank)


def _rollout_content(platform: Path | None, zones: dict[str, Zone], issues: list[str]) -> tuple[dict, dict]:
    """desired.json's tours and greetings ({}, {} without one); problems are added to `issues`
    (an unreadable file was reported by `_apply_rollout`)."""
    path = platform / DESIRED_FILE if platform is not None else None
    if path is None or not path.is_file():
        return {}, {}
    try:
        data = _read_json(path, 'desired state')
    except StoreError:
        return {}, {}
    content = data.get('content') if isinstance(data, dict) else None
    tours = rollout_tours(content, zones, f'{path}: content.tours', issues)
    return tours, parse_greetings(content, f'{path}: content.greetings', issues)


# --- the loader -------------------------------------------------------------------------------


def _fingerprint(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path).encode() + b'\0')
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b'<absent>')
        digest.update(b'\0')
    return digest.hexdigest()[:16]


def _load_catalog(path: Path) -> Catalog:
    try:
        return load_catalog(path)
    except CatalogError as exc:
        raise StoreError(str(exc)) from None
    except UnicodeDecodeError:
        raise StoreError(f'catalog {path}: not UTF-8 text') from None


def load_store(store_dir: str | Path, data_dir: str | Path | None = None) -> Store:
    """Read the store folder and overlay `<data_dir>/platform` (see the module docstring).

    Raises StoreError (one line, naming the file and key) when the store cannot be used: a
    missing or broken zones.yaml, an unreadable catalog (wrong header, not UTF-8). No catalog at
    all is an empty catalog and an issue. Skipped rows are listed in `Store.issues`.
    """
    store_dir = Path(store_dir).expanduser()
    platform = Path(data_dir).expanduser() / PLATFORM_DIR if data_dir else None
    if not store_dir.is_dir():
        raise StoreError(f'{store_dir}: store folder does not exist')
    issues: list[str] = []
    sources = [
        store_dir / name for name in ('map.yaml', 'zones.yaml', 'catalog.csv', 'history.csv', 'appointments.json')
    ]
    if platform is not None:
        sources += [
            platform / name
            for name in (
                'catalog.csv',
                'promotions.json',
                'appointments.json',
                'history.csv',
                CAMPAIGNS_FILE,
                'profiles.json',
                DESIRED_FILE,
            )
        ]
    version = _fingerprint(sources)

    zones_path = store_dir / 'zones.yaml'
    zones_data = _read_yaml(zones_path, 'zones')
    zones, tours, frame_id = parse_zones(zones_data, source=str(zones_path))
    opening_hours = store_hours(zones_data, str(zones_path))
    catalog, rank = _store_catalog(store_dir, platform, issues)
    rolled_tours, greetings = _rollout_content(platform, zones, issues)
    tours = {**rolled_tours, **{name: stops for name, stops in tours.items() if name not in rolled_tours}}
    unplaced = sorted(
        {
            p.category
            for p in catalog.products
            if p.zone not in zones and not any(p.category in z.categories for z in zones.values())
        }
    )
    for category in unplaced:
        issues.append(f'{zones_path}: no zone lists category {category!r} and its products name no zone of the store')
    appointments = _store_appointments(store_dir, platform, zones, zones_path, issues)
    history = next(
        (
            candidate
            for candidate in ([platform / 'history.csv'] if platform else []) + [store_dir / 'history.csv']
            if candidate.is_file()
        ),
        None,
    )
    campaigns: tuple[Campaign, ...] = ()
    profiles: dict[str, MemberProfile] = {}
    if platform is not None:
        campaigns, problems = load_campaigns(platform / CAMPAIGNS_FILE)
        issues += problems
        profiles, problems = load_profiles(platform / 'profiles.json')
        issues += problems
    map_yaml = store_dir / 'map.yaml'
    return Store(
        catalog=catalog,
        zones=zones,
        tours=tours,
        appointments=appointments,
        history_path=history,
        map_yaml=map_yaml if map_yaml.is_file() else None,
        version=version,
        issues=tuple(issues),
        frame_id=frame_id,
        zones_path=zones_path,
        promotion_rank=rank,
        campaigns=campaigns,
        profiles=profiles,
        greetings=greetings,
        opening_hours=opening_hours,
    )


def _store_catalog(store_dir: Path, platform: Path | None, issues: list[str]) -> tuple[Catalog, dict[str, float]]:
    """The catalog in use (the platform's, else the store folder's, else an empty one) with the
    platform's promotions applied, and the promotions' rank; problems are added to `issues`."""
    catalog = None
    if platform is not None and (platform / 'catalog.csv').is_file():
        try:
            catalog = _load_catalog(platform / 'catalog.csv')
        except StoreError as exc:
            issues.append(f'{exc}; using the store folder\'s catalog')
    if catalog is None and not (store_dir / 'catalog.csv').exists():
        # A store folder with map and zones only (the catalog comes from the platform): usable
        # for guiding; the nodes that sell report the empty catalog.
        catalog = Catalog(path=str(store_dir / 'catalog.csv'))
        issues.append(f'catalog {store_dir / "catalog.csv"}: no such file (and none from the platform yet)')
    if catalog is None:
        catalog = _load_catalog(store_dir / 'catalog.csv')
    issues += [f'{catalog.path}: {issue}; skipped' for issue in catalog.issues]
    rank: dict[str, float] = {}
    if platform is not None and (platform / 'promotions.json').is_file():
        catalog, rank = _apply_promotions(catalog, platform / 'promotions.json', issues)
    if platform is not None:
        catalog, rank = _apply_rollout(catalog, rank, platform / DESIRED_FILE, issues)
    return catalog, rank


def _store_appointments(
    store_dir: Path, platform: Path | None, zones: dict[str, Zone], zones_path: Path, issues: list[str]
) -> tuple[Appointment, ...]:
    """The store folder's and the platform's appointments (the platform's win by id), by start;
    a meeting point that is no zone is added to `issues`."""
    appointments: dict[str, Appointment] = {}
    for path in [store_dir / 'appointments.json'] + ([platform / 'appointments.json'] if platform else []):
        found, problems = load_appointments(path)
        issues += problems
        for appointment in found:
            appointments[appointment.appointment_id] = appointment
    for appointment in appointments.values():
        if appointment.meeting_point not in zones:
            issues.append(
                f'appointment {appointment.appointment_id}: meeting point '
                f'{appointment.meeting_point!r} is not a zone of {zones_path}'
            )
    return tuple(sorted(appointments.values(), key=lambda a: (a.start.isoformat(), a.appointment_id)))
