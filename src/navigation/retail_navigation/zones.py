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
