"""Small store maps drawn for the navigation tests (not the demo store): asymmetric rooms with shelves."""
from __future__ import annotations

import numpy as np

from retail_navigation.maps import FREE, OCCUPIED, StoreMap


def box_map(width_m: float = 10.0, height_m: float = 8.0, res: float = 0.05,
            shelves: tuple[tuple[float, float, float, float], ...] = ((2.0, 2.0, 4.5, 2.6), (6.0, 4.0, 6.6, 7.0),
                                                                      (1.0, 5.5, 3.0, 6.0), (7.5, 1.0, 8.5, 2.0)),
            origin=(-0.5, -0.25, 0.0)) -> StoreMap:
    """Walls around [0, width] x [0, height] (map frame, metres) and the given shelves as rectangles."""
    ox, oy, _ = origin
    w = int(round((width_m - ox + 0.5) / res))
    h = int(round((height_m - oy + 0.5) / res))
    grid = np.full((h, w), -1, dtype=np.int8)

    def paint(x0, y0, x1, y1, value):
        i0, i1 = int(np.floor((x0 - ox) / res)), int(np.ceil((x1 - ox) / res))
        j0, j1 = int(np.floor((y0 - oy) / res)), int(np.ceil((y1 - oy) / res))
        grid[max(j0, 0):max(j1, 0), max(i0, 0):max(i1, 0)] = value

    paint(-0.1, -0.1, width_m + 0.1, height_m + 0.1, OCCUPIED)
    paint(0.0, 0.0, width_m, height_m, FREE)
    for rect in shelves:
        paint(*rect, OCCUPIED)
    return StoreMap(grid=grid, resolution=res, origin=origin, source='test box map')
