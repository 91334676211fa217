"""Named places of a store (zones.yaml): where the robot stops to present a shelf or a service.

Format (shared with dialogue and recommendation, which map catalog `zone` ids to these):

    frame_id: map
    zones:
      phones: {kind: product, name_zh: 手机数码区, name_en: Phones & Wearables,
               categories: [phone, smartwatch], pose: [x, y, theta]}
      checkout: {kind: service, name_zh: 收银台, name_en: Checkout, pose: [x, y, theta]}
    tours:
      showroom: [{zone: audio_video, narration: tour.audio_video}, ...]

Poses are map-frame metres/radians. Every problem is reported as one line naming the file
and the zone; `check_on_map` tells whether each stop is reachable floor for a robot of a radius.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from retail_navigation.maps import read_store_yaml

KINDS = ('product', 'service')
_ZONE_ID = re.compile(r'^[a-z][a-z0-9_]*$')


class ZoneError(ValueError):
    """A zones file that cannot be used; one line naming the file."""


@dataclass(frozen=True)
class Zone:
    id: str
    kind: str
    name_zh: str
    name_en: str
    pose: tuple[float, float, float]
    categories: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How staff name it in logs: '手机数码区 (Phones & Wearables)'."""
        return f'{self.name_zh} ({self.name_en})'


@dataclass(frozen=True)
class TourStop:
    zone: str
    narration: str


@dataclass
class StoreZones:
    zones: dict[str, Zone]
    tours: dict[str, list[TourStop]]
    frame_id: str = 'map'
    source: str = ''

    def __getitem__(self, zone_id: str) -> Zone:
        return self.zones[zone_id]

    def __contains__(self, zone_id: object) -> bool:
        return zone_id in self.zones

    def zone_for_category(self, category: str) -> Zone | None:
        return next((z for z in self.zones.values() if category in z.categories), None)

    def tour(self, name: str) -> list[TourStop]:
        return self.tours[name]


def _pose(value, where: str) -> tuple[float, float, float]:
    if (not isinstance(value, (list, tuple)) or len(value) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                       for v in value)):
        raise ZoneError(f'{where}: pose must be [x, y, theta] numbers, got {value!r}')
    return float(value[0]), float(value[1]), float(value[2])


def _text(entry: dict, key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ZoneError(f'{where}: {key} must be a non-empty text')
    return value.strip()


def parse_zones(data, source: str = '<zones>') -> StoreZones:
    """Validate a loaded zones document; ZoneError with one line on the first problem."""
    if not isinstance(data, dict) or not isinstance(data.get('zones'), dict) or not data['zones']:
        raise ZoneError(f'{source}: expected a mapping with a non-empty `zones:` mapping')
    frame_id = data.get('frame_id', 'map')
    if not isinstance(frame_id, str) or not frame_id:
        raise ZoneError(f'{source}: frame_id must be a text')
    zones: dict[str, Zone] = {}
    owner_of: dict[str, str] = {}
    for zone_id, entry in data['zones'].items():
        where = f'{source}: zone {zone_id!r}'
        if not isinstance(zone_id, str) or not _ZONE_ID.match(zone_id):
            raise ZoneError(f'{where}: ids are lower-case letters, digits and _')
        if not isinstance(entry, dict):
            raise ZoneError(f'{where}: expected a mapping with kind, name_zh, name_en, pose')
        kind = entry.get('kind')
        if kind not in KINDS:
            raise ZoneError(f'{where}: kind must be product or service, got {kind!r}')
        categories = entry.get('categories', [])
        if not isinstance(categories, list) or not all(isinstance(c, str) and c for c in categories):
            raise ZoneError(f'{where}: categories must be a list of category ids')
        if kind == 'product' and not categories:
            raise ZoneError(f'{where}: a product zone needs its categories')
        for category in categories:
            if category in owner_of:
                raise ZoneError(f'{where}: category {category!r} is already in zone {owner_of[category]!r}')
            owner_of[category] = zone_id
        zones[zone_id] = Zone(id=zone_id, kind=kind, name_zh=_text(entry, 'name_zh', where),
                              name_en=_text(entry, 'name_en', where), pose=_pose(entry.get('pose'), where),
                              categories=tuple(categories))
    tours: dict[str, list[TourStop]] = {}
    raw_tours = data.get('tours', {}) or {}
    if not isinstance(raw_tours, dict):
        raise ZoneError(f'{source}: tours must be a mapping of tour name -> list of stops')
    for name, stops in raw_tours.items():
        where = f'{source}: tour {name!r}'
        if not isinstance(stops, list) or not stops:
            raise ZoneError(f'{where}: expected a non-empty list of {{zone, narration}} stops')
        tour: list[TourStop] = []
        for number, stop in enumerate(stops, 1):
            if not isinstance(stop, dict) or stop.get('zone') not in zones:
                raise ZoneError(f'{where}: stop {number} must name a known zone, got {stop!r}')
            tour.append(TourStop(zone=stop['zone'], narration=_text(stop, 'narration', f'{where} stop {number}')))
        tours[str(name)] = tour
    return StoreZones(zones=zones, tours=tours, frame_id=frame_id, source=source)


def load_zones(path: str | Path) -> StoreZones:
    path = Path(path)
    data = read_store_yaml(path, 'zones', ZoneError)
    return parse_zones(data, source=str(path))


def check_on_map(zones: StoreZones, costmap) -> list[str]:
    """One line per zone whose pose a robot cannot stand on (costmap: retail_navigation.costmap.Costmap)."""
    problems = []
    for zone in zones.zones.values():
        x, y, _ = zone.pose
        reason = costmap.why_blocked(x, y)
        if reason:
            problems.append(f'{zones.source}: zone {zone.id!r} at ({x:.2f}, {y:.2f}): {reason}')
    return problems


def _zone_key(text: str) -> str:
    """How people may write a zone: case, spaces, '_', '-', '&' and 'and' do not matter."""
    key = text.casefold().replace('&', ' and ')
    return re.sub(r'[\s_\-]+|\band\b', '', key)


def find_zone(zones: StoreZones, text: str) -> Zone:
    """The zone a person means by its id or its Chinese or English name, in any case
    ('Phones', 'kitchen', '厨房电器区', 'Kitchen Appliances'). ZoneError naming the closest
    matches when nothing fits."""
    import difflib
    wanted = _zone_key(text)
    names: dict[str, Zone] = {}
    for zone in zones.zones.values():
        for name in (zone.id, zone.name_zh, zone.name_en):
            names.setdefault(_zone_key(name), zone)
    if wanted in names:
        return names[wanted]
    starting = {id(zone): zone for key, zone in names.items() if len(wanted) >= 2 and key.startswith(wanted)}
    if len(starting) == 1:                  # '厨房电器' for '厨房电器区', 'tv' for 'TV & Audio'
        return next(iter(starting.values()))
    labels = {_zone_key(n): n for z in zones.zones.values() for n in (z.id, z.name_zh, z.name_en)}
    close = difflib.get_close_matches(wanted, list(labels), n=3, cutoff=0.6)
    hint = f' (did you mean {" or ".join(repr(labels[c]) for c in close)}?)' if close else \
        f' (zones: {", ".join(sorted(zones.zones))})'
    raise ZoneError(f'{zones.source}: unknown zone {text!r}{hint}')
