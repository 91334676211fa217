"""Zones of a store as navigation uses them; the zones.yaml format and its checks live in
`retail_common.store` (one reader, one error policy for every node).

`check_on_map` is navigation's own check: whether each zone's pose is floor a robot can stand on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from retail_common.store import Store, StoreError, TourStop, Zone, load_zones_file
from retail_common.store import parse_zones as _parse_zones

__all__ = ['ZoneError', 'Zone', 'TourStop', 'StoreZones', 'parse_zones', 'load_zones', 'check_on_map']

ZoneError = StoreError      # kept for callers written before retail_common.store; same error


@dataclass
class StoreZones:
    zones: dict[str, Zone]
    tours: dict[str, tuple[TourStop, ...]] = field(default_factory=dict)
    frame_id: str = 'map'
    source: str = ''

    @classmethod
    def of(cls, store: Store) -> 'StoreZones':
        """The zones and tours of a loaded store."""
        return cls(dict(store.zones), dict(store.tours), store.frame_id, str(store.zones_path or ''))

    def __getitem__(self, zone_id: str) -> Zone:
        return self.zones[zone_id]

    def __contains__(self, zone_id: object) -> bool:
        return zone_id in self.zones

    def zone_for_category(self, category: str) -> Zone | None:
        return next((z for z in self.zones.values() if category in z.categories), None)

    def tour(self, name: str) -> tuple[TourStop, ...]:
        return self.tours[name]


def parse_zones(data, source: str = '<zones>') -> StoreZones:
    """Validate a loaded zones document; StoreError with one line on the first problem."""
    zones, tours, frame_id = _parse_zones(data, source)
    return StoreZones(zones, tours, frame_id, source)


def load_zones(path: str | Path) -> StoreZones:
    zones, tours, frame_id = load_zones_file(path)
    return StoreZones(zones, tours, frame_id, str(path))


def check_on_map(zones: StoreZones | Store, costmap) -> list[str]:
    """One line per zone whose pose a robot cannot stand on (costmap: retail_navigation.costmap.Costmap)."""
    if isinstance(zones, Store):
        zones = StoreZones.of(zones)
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
