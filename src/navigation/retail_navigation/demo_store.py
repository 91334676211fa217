"""The demo store's floor plan, drawn from rectangles in metres so it renders at any resolution.

A 30 m x 20 m electronics store (inside the outer walls), map frame origin at its south-west
inner corner, x east, y north:

- south: entrance doors (x 8-11) and exit doors (x 22-26), the service desk by the entrance,
  three checkout counters before the exit;
- middle: phone display tables, gondola shelves for computers / cameras & gaming and for
  audio-video / home care, kitchen islands and a wall shelf on the east wall, pillars;
- north: large appliances along the north wall, the restroom corridor (north-west, its rooms are
  not mapped), the VIP lounge (north-east room with a door);
- the robot's dock against the west wall.

Outside the walls (0.5 m) is unknown space, as map_saver writes it. `config/stores/demo/make_map.py`
writes the committed map; the planner benchmark renders the same store at finer resolutions.
"""
from __future__ import annotations

import numpy as np

from retail_navigation.maps import FREE, OCCUPIED, UNKNOWN, StoreMap

WIDTH_M, HEIGHT_M = 30.0, 20.0
MARGIN_M = 0.5          # unknown band outside the outer walls
WALL_M = 0.2

Rect = tuple[float, float, float, float]     # x0, y0, x1, y1 in metres

# Outer walls with the two door gaps in the south wall.
WALLS: list[Rect] = [
    (-WALL_M, -WALL_M, 8.0, 0.0), (11.0, -WALL_M, 22.0, 0.0), (26.0, -WALL_M, WIDTH_M + WALL_M, 0.0),
    (-WALL_M, HEIGHT_M, WIDTH_M + WALL_M, HEIGHT_M + WALL_M),
    (-WALL_M, 0.0, 0.0, HEIGHT_M), (WIDTH_M, 0.0, WIDTH_M + WALL_M, HEIGHT_M),
    # restroom block (x 0-5, y 14-20): corridor x 1.6-3.0 from y 14 to its end wall at y 18
    (0.0, 14.0, 1.6, 14.2), (3.0, 14.0, 5.0, 14.2), (4.8, 14.0, 5.0, HEIGHT_M),
    (1.4, 14.0, 1.6, 18.2), (3.0, 14.0, 3.2, 18.2), (1.4, 18.0, 3.2, 18.2),
    # VIP lounge (x 22-30, y 14-20), door x 24.0-25.6 in its south wall
    (22.0, 14.0, 22.2, HEIGHT_M), (22.0, 14.0, 24.0, 14.2), (25.6, 14.0, WIDTH_M, 14.2),
]

FURNITURE: dict[str, list[Rect]] = {
    'service desk': [(1.0, 2.8, 4.0, 3.4)],
    'checkout counters': [(19.5, 2.5, 21.5, 3.1), (23.0, 2.5, 25.0, 3.1), (26.5, 2.5, 28.5, 3.1)],
    'phone tables': [(5.5, 7.0, 9.5, 8.0), (5.5, 10.0, 9.5, 11.0)],
    'accessory wall shelf': [(0.0, 8.0, 0.6, 13.5)],
    'computer and camera gondolas': [(11.5, 6.5, 16.0, 7.3), (11.5, 9.3, 16.0, 10.1), (11.5, 12.1, 16.0, 12.9)],
    'audio-video and home care gondolas': [(17.5, 6.5, 22.0, 7.3), (17.5, 9.3, 22.0, 10.1), (17.5, 12.1, 22.0, 12.9)],
    'kitchen islands and wall shelf': [(24.5, 8.0, 27.5, 9.0), (24.5, 11.0, 27.5, 12.0), (29.2, 5.0, WIDTH_M, 13.0)],
    'large appliance displays': [(6.0, 18.8, 20.5, HEIGHT_M), (8.0, 15.5, 10.0, 16.5), (13.5, 15.5, 15.5, 16.5)],
    'pillars': [(10.5, 4.5, 11.0, 5.0), (16.5, 4.5, 17.0, 5.0), (10.5, 14.0, 11.0, 14.5), (16.5, 14.0, 17.0, 14.5)],
    'lounge sofa and table': [(24.0, 18.8, 28.0, 19.6), (25.0, 16.6, 26.6, 17.4)],
}

# Mapped as unknown: the restroom rooms behind the corridor walls (staff never mapped them).
UNMAPPED: list[Rect] = [(0.0, 14.2, 1.4, HEIGHT_M), (3.2, 14.2, 4.8, HEIGHT_M), (1.4, 18.2, 3.2, HEIGHT_M)]


def _paint(grid: np.ndarray, rect: Rect, value: int, resolution: float) -> None:
    """Fill the cells whose centres lie inside rect (grid row 0 = y -MARGIN_M)."""
    x0, y0, x1, y1 = rect
    i0 = int(np.ceil((x0 + MARGIN_M) / resolution - 0.5))
    i1 = int(np.floor((x1 + MARGIN_M) / resolution - 0.5))
    j0 = int(np.ceil((y0 + MARGIN_M) / resolution - 0.5))
    j1 = int(np.floor((y1 + MARGIN_M) / resolution - 0.5))
    grid[max(j0, 0):max(j1 + 1, 0), max(i0, 0):max(i1 + 1, 0)] = value


def demo_store_map(resolution: float = 0.05) -> StoreMap:
    """The demo store rendered at `resolution` m/cell (0.05 → 620 x 420 cells)."""
    width = int(round((WIDTH_M + 2 * MARGIN_M) / resolution))
    height = int(round((HEIGHT_M + 2 * MARGIN_M) / resolution))
    grid = np.full((height, width), UNKNOWN, dtype=np.int8)
    _paint(grid, (0.0, 0.0, WIDTH_M, HEIGHT_M), FREE, resolution)
    for rect in UNMAPPED:
        _paint(grid, rect, UNKNOWN, resolution)
    for rect in WALLS + [r for rects in FURNITURE.values() for r in rects]:
        _paint(grid, rect, OCCUPIED, resolution)
    return StoreMap(grid=grid, resolution=resolution, origin=(-MARGIN_M, -MARGIN_M, 0.0), source='demo store')
