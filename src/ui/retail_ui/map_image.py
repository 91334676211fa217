"""The store map (a nav_msgs/OccupancyGrid's cells) as a PNG for the pages, north up.

Cells follow map_server's convention: -1 unknown, 0 free .. 100 occupied, row 0 at the map
origin (the bottom of the picture). The pages draw the route, the robot and people on top in
map metres, using `info` (width, height in cells, resolution in m/cell, origin [x, y] in m).
"""
from __future__ import annotations

import numpy as np

FREE = 255
OCCUPIED = 70
UNKNOWN = 205
OCCUPIED_AT = 65


class MapImageError(ValueError):
    """The grid does not match its declared size."""


def grid_to_png(cells: np.ndarray | bytes | list[int], width: int, height: int) -> bytes:
    """PNG bytes (8-bit grey) of a width x height occupancy grid given row-major from the origin."""
    import cv2
    grid = np.frombuffer(bytes(np.asarray(cells, dtype=np.int8).tobytes()), dtype=np.int8)
    if width <= 0 or height <= 0 or grid.size != width * height:
        raise MapImageError(f'map grid has {grid.size} cells, expected {width} x {height}')
    grid = grid.reshape(height, width)
    image = np.full(grid.shape, FREE, dtype=np.uint8)
    image[grid < 0] = UNKNOWN
    image[grid >= OCCUPIED_AT] = OCCUPIED
    ok, png = cv2.imencode('.png', np.ascontiguousarray(image[::-1]))
    if not ok:
        raise MapImageError('map could not be encoded as PNG')
    return png.tobytes()


def map_info(width: int, height: int, resolution: float, origin_x: float, origin_y: float) -> dict:
    return {'width': width, 'height': height, 'resolution': resolution, 'origin': [origin_x, origin_y],
            'width_m': round(width * resolution, 3), 'height_m': round(height * resolution, 3)}
