"""Navigation's own logic over the store's zones; the zones.yaml format, its checks and the
`Store` model live in `retail_common.store` (one reader, one error policy for every node).

- `check_on_map`: whether each zone's pose is floor a robot can stand on;
- `find_zone`: the zone a person means by its id or its Chinese or English name;
- `load_zones_store`: the `Store` of a zones file given alone (the plan CLI's `--zones`, the
  guide's `zones_yaml`): its zones, tours and frame, no catalog.
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path

from retail_common.catalog import Catalog
from retail_common.store import Store, StoreError, Zone, load_zones_file

__all__ = ['check_on_map', 'find_zone', 'load_zones_store']


def load_zones_store(path: str | Path) -> Store:
    """A `Store` with the zones, tours and frame of the zones.yaml at `path` and an empty catalog;
    StoreError (one line naming the file and key) when the file cannot be used."""
    zones, tours, frame_id = load_zones_file(path)
    return Store(catalog=Catalog(path=''), zones=zones, tours=tours, frame_id=frame_id, zones_path=Path(path))


def check_on_map(store: Store, costmap) -> list[str]:
    """One line per zone whose pose a robot cannot stand on (costmap: retail_navigation.costmap.Costmap)."""
    problems = []
    for zone in store.zones.values():
        x, y, _ = zone.pose
        reason = costmap.why_blocked(x, y)
        if reason:
            problems.append(f'{store.zones_path or "<zones>"}: zone {zone.id!r} at ({x:.2f}, {y:.2f}): {reason}')
    return problems


def _zone_key(text: str) -> str:
    """How people may write a zone: case, spaces, '_', '-', '&' and 'and' do not matter."""
    key = text.casefold().replace('&', ' and ')
    return re.sub(r'[\s_\-]+|\band\b', '', key)


def find_zone(store: Store, text: str) -> Zone:
    """The zone a person means by its id or its Chinese or English name, in any case
    ('Phones', 'kitchen', '厨房电器区', 'Kitchen Appliances'). StoreError naming the closest
    matches when nothing fits."""
    wanted = _zone_key(text)
    names: dict[str, Zone] = {}
    for zone in store.zones.values():
        for name in (zone.id, zone.name_zh, zone.name_en):
            names.setdefault(_zone_key(name), zone)
    if wanted in names:
        return names[wanted]
    starting = {id(zone): zone for key, zone in names.items() if len(wanted) >= 2 and key.startswith(wanted)}
    if len(starting) == 1:                  # '厨房电器' for '厨房电器区', 'tv' for 'TV & Audio'
        return next(iter(starting.values()))
    labels = {_zone_key(n): n for z in store.zones.values() for n in (z.id, z.name_zh, z.name_en)}
    close = difflib.get_close_matches(wanted, list(labels), n=3, cutoff=0.6)
    hint = f' (did you mean {" or ".join(repr(labels[c]) for c in close)}?)' if close else \
        f' (zones: {", ".join(sorted(store.zones))})'
    raise StoreError(f'{store.zones_path or "<zones>"}: unknown zone {text!r}{hint}')
