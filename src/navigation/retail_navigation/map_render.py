"""Pictures of a store map for people: zones with their names, a planned path, the robot.

OpenCV's built-in fonts are ASCII only, so zones are labelled with their English names.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from retail_navigation.maps import OCCUPIED_AT, StoreMap
from retail_common.store import Store

FREE_BGR = (250, 250, 250)
OCCUPIED_BGR = (60, 60, 60)
UNKNOWN_BGR = (190, 190, 190)


def render_map(store_map: StoreMap, zones: Store | None = None, path: list[tuple[float, float]] | None = None,
               *, scale: int | None = None) -> np.ndarray:
    """BGR picture (north up) of the map, its zones and a path; about 1200 px wide by default."""
    import cv2
    grid = store_map.grid
    if scale is None:
        scale = max(1, min(4, -(-1200 // max(store_map.width, 1))))
    image = np.empty(grid.shape + (3,), dtype=np.uint8)
    image[:] = FREE_BGR
    image[grid < 0] = UNKNOWN_BGR
    image[grid >= OCCUPIED_AT] = OCCUPIED_BGR
    image = np.ascontiguousarray(image[::-1])
    if scale > 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)

    def pixel(x: float, y: float) -> tuple[int, int]:
        i, j = store_map.world_to_cell(x, y)
        return int((i + 0.5) * scale), int((store_map.height - 1 - j + 0.5) * scale)

    thickness = max(1, scale)
    if path and len(path) > 1:
        points = np.array([pixel(x, y) for x, y in path], dtype=np.int32)
        cv2.polylines(image, [points], False, (200, 80, 0), thickness + 1, cv2.LINE_AA)
        cv2.circle(image, tuple(points[0]), 4 * thickness, (0, 160, 0), -1, cv2.LINE_AA)
        cv2.circle(image, tuple(points[-1]), 4 * thickness, (0, 0, 220), -1, cv2.LINE_AA)
    if zones is not None:
        for zone in zones.zones.values():
            x, y, theta = zone.pose
            centre = pixel(x, y)
            tip = pixel(x + 0.5 * np.cos(theta), y + 0.5 * np.sin(theta))
            colour = (0, 120, 230) if zone.kind == 'product' else (160, 0, 160)
            cv2.arrowedLine(image, centre, tip, colour, thickness, cv2.LINE_AA, tipLength=0.4)
            cv2.circle(image, centre, 2 * thickness, colour, -1, cv2.LINE_AA)
            cv2.putText(image, zone.name_en, (centre[0] + 4, centre[1] - 4), cv2.FONT_HERSHEY_SIMPLEX,
                        0.3 * thickness, colour, 1, cv2.LINE_AA)
    return image


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Write atomically (a half-written picture never replaces a good one)."""
    import cv2
    path = Path(path)
    tmp = path.with_name(path.name + '.tmp.png')
    if not cv2.imwrite(str(tmp), image):
        raise OSError(f'cannot write picture {path}')
    tmp.replace(path)
    return path
