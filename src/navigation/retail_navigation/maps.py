"""Store maps in the ROS map_server format (a YAML file beside a PGM/PNG image).

The YAML keys and the pixel → occupancy rules are those of nav2_map_server, so a map saved on a
robot with a full ROS install (map_saver) loads here unchanged:

- `image` (relative to the YAML file), `resolution` (m/cell), `origin` [x, y, yaw] of the lower-left
  pixel are required; `negate` (0), `occupied_thresh` (0.65), `free_thresh` (0.196) and `mode`
  (`trinary`; `scale`, `raw`) have map_server's usual defaults.
- trinary/scale: p = (255 - mean(RGB)) / 255 (inverted with negate); p > occupied_thresh → 100,
  p < free_thresh → 0, else unknown (-1, trinary) or a linear 1..99 (scale; transparent pixels
  unknown). raw: the pixel value itself, values above 100 unknown.
- Image row 0 is the top of the picture, grid row 0 is the bottom (y = origin y), as in
  nav_msgs/OccupancyGrid, whose `data` is `grid.ravel()`.

A cell is *free* when its value is in [0, OCCUPIED_AT): unknown cells are never free, so a
planner never sends a customer into unmapped space. Pure core: numpy + OpenCV + PyYAML.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

FREE = 0
OCCUPIED = 100
UNKNOWN = -1
OCCUPIED_AT = 50     # grid values at or above this count as obstacles (scale mode's grey levels)
MODES = ('trinary', 'scale', 'raw')


class MapError(ValueError):
    """A map that cannot be used; the message is one line naming the file."""


@dataclass
class StoreMap:
    """An occupancy grid in the map frame. `grid[j, i]`: row j (y), column i (x), int8."""

    grid: np.ndarray
    resolution: float
    origin: tuple[float, float, float]
    source: str = ''

    def __post_init__(self) -> None:
        yaw = self.origin[2]
        self._cos, self._sin = math.cos(yaw), math.sin(yaw)

    @property
    def width(self) -> int:
        return int(self.grid.shape[1])

    @property
    def height(self) -> int:
        return int(self.grid.shape[0])

    @property
    def size_m(self) -> tuple[float, float]:
        return self.width * self.resolution, self.height * self.resolution

    def world_to_cell(self, x: float, y: float) -> tuple[int, int]:
        """(i, j) = (column, row) of the cell holding map point (x, y); may lie outside the grid."""
        dx, dy = x - self.origin[0], y - self.origin[1]
        u = self._cos * dx + self._sin * dy
        v = -self._sin * dx + self._cos * dy
        return math.floor(u / self.resolution), math.floor(v / self.resolution)

    def cell_to_world(self, i: float, j: float) -> tuple[float, float]:
        """Map coordinates of the centre of cell (i, j)."""
        u, v = (i + 0.5) * self.resolution, (j + 0.5) * self.resolution
        return (self.origin[0] + self._cos * u - self._sin * v,
                self.origin[1] + self._sin * u + self._cos * v)

    def in_bounds(self, i: int, j: int) -> bool:
        return 0 <= i < self.width and 0 <= j < self.height

    def value_world(self, x: float, y: float) -> int | None:
        """Grid value at (x, y), None outside the map."""
        i, j = self.world_to_cell(x, y)
        return int(self.grid[j, i]) if self.in_bounds(i, j) else None

    def is_free_world(self, x: float, y: float) -> bool:
        """Known free floor (outside the map and unknown cells are not)."""
        value = self.value_world(x, y)
        return value is not None and 0 <= value < OCCUPIED_AT

    def is_occupied_world(self, x: float, y: float) -> bool:
        """A mapped obstacle (shelf, wall). Unknown cells and the outside are not obstacles:
        callers that must stay on known floor use is_free_world."""
        value = self.value_world(x, y)
        return value is not None and value >= OCCUPIED_AT

    def free_mask(self) -> np.ndarray:
        """bool[h, w]: known free cells."""
        return (self.grid >= 0) & (self.grid < OCCUPIED_AT)


def _error(path: Path, message: str) -> MapError:
    return MapError(f'{path}: {message}')


def _number(meta: dict, key: str, path: Path, default: float | None = None) -> float:
    if key not in meta:
        if default is None:
            raise _error(path, f'missing key {key!r}')
        return default
    value = meta[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _error(path, f'{key} must be a number, got {value!r}')
    return float(value)


def _read_image(image_path: Path, yaml_path: Path) -> np.ndarray:
    import cv2
    if not image_path.is_file():
        raise _error(yaml_path, f'map image {image_path} does not exist')
    pixels = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise _error(yaml_path, f'map image {image_path} is not a readable PGM/PNG picture')
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    if pixels.dtype != np.uint8:
        raise _error(yaml_path, f'map image {image_path} has unsupported pixel type {pixels.dtype}')
    return pixels


def occupancy_from_pixels(pixels: np.ndarray, *, mode: str = 'trinary', negate: bool = False,
                          occupied_thresh: float = 0.65, free_thresh: float = 0.196) -> np.ndarray:
    """map_server's pixel → occupancy rules; returns int8 rows bottom-up (grid row 0 = image bottom)."""
    alpha = None
    if pixels.ndim == 3:
        channels = pixels.shape[2]
        if channels == 4:
            alpha = pixels[:, :, 3]
        # OpenCV gives BGR(A); the mean of the colour channels does not care about their order.
        gray = pixels[:, :, :3].mean(axis=2) if channels >= 3 else pixels[:, :, 0].astype(np.float64)
    else:
        gray = pixels.astype(np.float64)
    if mode == 'raw':
        grid = np.where(gray <= 100, gray, UNKNOWN).astype(np.int8)
    else:
        shade = 255.0 - gray if not negate else gray
        occ = shade / 255.0
        grid = np.full(gray.shape, UNKNOWN, dtype=np.int8)
        grid[occ > occupied_thresh] = OCCUPIED
        grid[occ < free_thresh] = FREE
        if mode == 'scale':
            middle = (occ >= free_thresh) & (occ <= occupied_thresh)
            scaled = 1 + 98 * (occ - free_thresh) / max(occupied_thresh - free_thresh, 1e-9)
            grid[middle] = np.rint(scaled[middle]).astype(np.int8)
            if alpha is not None:
                grid[alpha < 255] = UNKNOWN
    return np.ascontiguousarray(grid[::-1])


def read_store_yaml(path: Path, what: str, error: type[Exception]):
    """Parse a store YAML file; `error` gets one line naming the file (missing, not YAML)."""
    if not path.is_file():
        raise error(f'{path}: {what} file does not exist')
    try:
        return yaml.safe_load(path.read_text(encoding='utf-8'))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise error(f'{path}: not valid YAML ({first_line})') from None


def load_map(yaml_path: str | Path) -> StoreMap:
    """Load a map_server YAML + image. MapError (one line, naming the file) on any problem."""
    path = Path(yaml_path)
    meta = read_store_yaml(path, 'map', MapError)
    if not isinstance(meta, dict):
        raise _error(path, 'expected a mapping with image, resolution, origin, ...')
    image = meta.get('image')
    if not isinstance(image, str) or not image.strip():
        raise _error(path, "missing key 'image' (the map picture, PGM or PNG)")
    resolution = _number(meta, 'resolution', path)
    if resolution <= 0:
        raise _error(path, f'resolution must be > 0 m/cell, got {resolution}')
    origin = meta.get('origin')
    if (not isinstance(origin, (list, tuple)) or len(origin) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                       for v in origin)):
        raise _error(path, f'origin must be [x, y, yaw] numbers, got {origin!r}')
    negate = meta.get('negate', 0)
    if negate not in (0, 1, True, False):
        raise _error(path, f'negate must be 0 or 1, got {negate!r}')
    occupied_thresh = _number(meta, 'occupied_thresh', path, 0.65)
    free_thresh = _number(meta, 'free_thresh', path, 0.196)
    if not 0.0 <= free_thresh <= occupied_thresh <= 1.0:
        raise _error(path, f'need 0 <= free_thresh ({free_thresh}) <= occupied_thresh ({occupied_thresh}) <= 1')
    mode = meta.get('mode', 'trinary')
    if mode not in MODES:
        raise _error(path, f'mode must be one of {", ".join(MODES)}, got {mode!r}')
    image_path = Path(image).expanduser()
    if not image_path.is_absolute():
        image_path = path.parent / image_path
    pixels = _read_image(image_path, path)
    grid = occupancy_from_pixels(pixels, mode=mode, negate=bool(negate),
                                 occupied_thresh=occupied_thresh, free_thresh=free_thresh)
    return StoreMap(grid=grid, resolution=resolution,
                    origin=(float(origin[0]), float(origin[1]), float(origin[2])), source=str(path))


def save_map(store_map: StoreMap, yaml_path: str | Path, image_name: str | None = None) -> Path:
    """Write a trinary map_server pair (what map_saver writes): free 254, occupied 0, unknown 205."""
    import cv2
    path = Path(yaml_path)
    image_name = image_name or path.with_suffix('.pgm').name
    pixels = np.full(store_map.grid.shape, 205, dtype=np.uint8)
    pixels[(store_map.grid >= 0) & (store_map.grid < OCCUPIED_AT)] = 254
    pixels[store_map.grid >= OCCUPIED_AT] = 0
    image_path = path.parent / image_name
    tmp_image = image_path.with_name(image_path.name + '.tmp' + image_path.suffix)
    if not cv2.imwrite(str(tmp_image), pixels[::-1]):
        raise MapError(f'{image_path}: cannot write the map image')
    tmp_image.replace(image_path)
    ox, oy, oyaw = (float(v) for v in store_map.origin)
    text = (f'image: {image_name}\nmode: trinary\nresolution: {store_map.resolution}\n'
            f'origin: [{ox}, {oy}, {oyaw}]\nnegate: 0\noccupied_thresh: 0.65\nfree_thresh: 0.196\n')
    tmp_yaml = path.with_name(path.name + '.tmp')
    tmp_yaml.write_text(text, encoding='utf-8')
    tmp_yaml.replace(path)
    return path
