"""Store maps in the ROS map_server format (a YAML file beside a PGM/PNG image).

The YAML keys and the pixel → occupancy rules are those of nav2_map_server, so a map saved on a
robot with a full ROS install (map_saver) loads here unchanged:

- `image` (relative to the YAML file), `resolution` (m/cell), `origin` [x, y, yaw] of the lower-left
  pixel are required; `negate` (0), `occupied_thresh` (0.65), `free_thresh` (0.196) and `mode`
  (`trinary`; `scale`, `raw`) have map_server's usual defaults.
- pixels → occupancy as nav2_map_server's map_io.cpp (loadMapFromFile) computes it: each sample
  divided by the file's maximum (255, 65535 for 16 bits, a PGM's own maxval), shade = mean of
  the colour channels, in trinary mode with the opacity averaged in as a fourth channel (so a
  transparent pixel is unknown, never free floor); occ = 1 - shade (negate: shade); trinary:
  occ > occupied_thresh → 100, occ < free_thresh → 0, else unknown (-1); scale: transparent → -1,
  between the thresholds rint((occ - free) / (occupied - free) * 100); raw: round(shade * 255),
  values above 100 unknown. See occupancy_from_shades.
- Image row 0 is the top of the picture, grid row 0 is the bottom (y = origin y), as in
  nav_msgs/OccupancyGrid, whose `data` is `grid.ravel()`.

A cell is *free* when its value is in [0, OCCUPIED_AT): unknown cells are never free, so a
planner never sends a customer into unmapped space. As in map_server, the thresholds decide what
grey means: map_saver's unknown grey 205 has occ 0.196, so a YAML with free_thresh above 0.196
(map_saver's own default is 0.25) reads it as free floor; save_map writes 0.196.
Pure core: numpy + OpenCV + PyYAML.
"""
from __future__ import annotations

import math
import re
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


MAX_CELLS = 25_000_000       # 250 m x 250 m at 5 cm: anything larger is refused as not a store map
_PNM_MAGIC = {b'P1', b'P2', b'P3', b'P4', b'P5', b'P6'}


class _PnmData(ValueError):
    """A PNM header or body that does not hold what it announces."""


def _pnm_tokens(data: bytes, count: int, pos: int) -> tuple[list[int], int]:
    """`count` unsigned decimal header fields after `pos`, skipping whitespace and # comments."""
    values = []
    while len(values) < count:
        while pos < len(data) and (data[pos:pos + 1].isspace() or data[pos:pos + 1] == b'#'):
            if data[pos:pos + 1] == b'#':
                end = data.find(b'\n', pos)
                pos = len(data) if end < 0 else end + 1
            else:
                pos += 1
        start = pos
        while pos < len(data) and data[pos:pos + 1].isdigit():
            pos += 1
        if start == pos:
            raise _PnmData('header is cut short or not numeric')
        values.append(int(data[start:pos]))
    return values, pos


def _read_pnm(data: bytes) -> tuple[np.ndarray, float]:
    """Samples of a PBM/PGM/PPM file (P1-P6) and its maximum value, unscaled.

    OpenCV and Pillow rescale a PGM whose maxval is not 255 to 8 bits with integer rounding;
    map_server (GraphicsMagick, 16-bit quanta) keeps far more, so the samples are read here as
    they are written and scaled by the caller.
    PBM bitmaps come back as 0 black / 1 white with maxval 1 (in the file 1 means black).
    """
    magic = data[:2]
    width, height, maxval, pos = _pnm_header(data, magic)
    channels = 3 if magic in (b'P3', b'P6') else 1
    count = width * height * channels
    if magic in (b'P1', b'P2', b'P3'):
        samples = _plain_samples(data[pos:], magic == b'P1', count)
    elif magic == b'P4':
        samples = _raw_bitmap(data, pos + 1, width, height)     # after the single whitespace byte
    else:
        samples = _raw_samples(data, pos + 1, count, maxval)
    if samples.max(initial=0) > maxval or samples.min(initial=0) < 0:
        raise _PnmData(f'a pixel value is outside 0..{maxval} (the maximum grey value)')
    shape = (height, width, 3) if channels == 3 else (height, width)
    return samples.reshape(shape), float(maxval)


def _pnm_header(data: bytes, magic: bytes) -> tuple[int, int, int, int]:
    """(width, height, maxval, offset after the header) of a PNM file, each checked."""
    bitmap = magic in (b'P1', b'P4')
    fields, pos = _pnm_tokens(data, 2 if bitmap else 3, 2)
    width, height = fields[0], fields[1]
    maxval = 1 if bitmap else fields[2]
    if width <= 0 or height <= 0:
        raise _PnmData(f'size {width} x {height}')
    if width * height > MAX_CELLS:
        raise _PnmData(f'{width} x {height} pixels is more than the {MAX_CELLS} a store map may have')
    if not 0 < maxval < 65536:
        raise _PnmData(f'maximum grey value {maxval} is outside 1..65535')
    return width, height, maxval, pos


def _plain_samples(body: bytes, bitmap: bool, count: int) -> np.ndarray:
    """The first `count` samples of a plain (ASCII) PNM body (P1 bitmaps: 1 white, 0 black)."""
    if bitmap:   # P1 samples may be written without separators
        digits = bytes(c for c in body if c in b'01')
        if len(digits) < count:
            raise _PnmData('image data is cut short')
        return 1 - (np.frombuffer(digits[:count], np.uint8) - ord('0')).astype(np.int32)
    text = re.sub(rb'#[^\n]*', b' ', body)
    try:
        samples = np.array(text.split()[:count], dtype=np.int64)
    except ValueError:
        raise _PnmData('image data is not numeric') from None
    if samples.size < count:
        raise _PnmData('image data is cut short')
    return samples


def _raw_bitmap(data: bytes, pos: int, width: int, height: int) -> np.ndarray:
    """The samples of a raw PBM (P4) body at `pos` (1 white, 0 black)."""
    row_bytes = (width + 7) // 8
    if len(data) < pos + row_bytes * height:
        raise _PnmData('image data is cut short')
    raw = np.frombuffer(data, np.uint8, count=row_bytes * height, offset=pos)
    bits = np.unpackbits(raw.reshape(height, row_bytes), axis=1)[:, :width]
    return 1 - bits.astype(np.int32)


def _raw_samples(data: bytes, pos: int, count: int, maxval: int) -> np.ndarray:
    """`count` samples of a raw PGM/PPM (P5/P6) body at `pos`: 8 bits, or 16 big-endian above 255."""
    dtype = np.dtype(np.uint8) if maxval < 256 else np.dtype('>u2')
    if len(data) < pos + count * dtype.itemsize:
        raise _PnmData('image data is cut short')
    return np.frombuffer(data, dtype, count=count, offset=pos).astype(np.int32)


def read_map_image(image_path: Path, yaml_path: Path | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """A map picture as map_server sees it: (colour, alpha), both float64 in 0..1.

    colour: [h, w] mean of the colour channels (grey images: the grey value), each sample divided
    by the file's maximum (255 for 8 bits, 65535 for 16 bits, the PGM's maxval for PNM files,
    via a rounded 16-bit quantum as map_server's GraphicsMagick Q16 stores it);
    alpha: [h, w] opacity (1 opaque) when the picture has an alpha channel, else None. Palette and
    1/2/4-bit PNGs are expanded by the decoder. MapError naming the YAML file on any problem.
    """
    import cv2
    where = yaml_path or image_path
    if not image_path.is_file():
        raise _error(where, f'map image {image_path} does not exist')
    try:
        with image_path.open('rb') as handle:
            head = handle.read(2)
    except OSError as exc:
        raise _error(where, f'map image {image_path} cannot be read ({exc.strerror})') from None
    if head in _PNM_MAGIC:
        try:
            samples, maxval = _read_pnm(image_path.read_bytes())
        except _PnmData as exc:
            raise _error(where, f'map image {image_path} is not a readable PGM: {exc}') from None
        # map_server's GraphicsMagick (Q16) holds each sample as a 16-bit quantum, rounded.
        quanta = np.floor(samples * (65535.0 / maxval) + 0.5)
        colour = quanta.mean(axis=2) if quanta.ndim == 3 else quanta
        return colour / 65535.0, None
    pixels = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise _error(where, f'map image {image_path} is not a readable PGM/PNG picture')
    if pixels.dtype not in (np.uint8, np.uint16):
        raise _error(where, f'map image {image_path} has unsupported pixel type {pixels.dtype}')
    if pixels.shape[0] * pixels.shape[1] > MAX_CELLS:
        raise _error(where, f'map image {image_path} has more than the {MAX_CELLS} pixels a store map may have')
    return split_pixels(pixels, float(np.iinfo(pixels.dtype).max))


def split_pixels(pixels: np.ndarray, maxval: float) -> tuple[np.ndarray, np.ndarray | None]:
    """(colour mean, alpha) in 0..1 of decoded pixels [h, w] or [h, w, channels] (grey, grey+alpha,
    BGR, BGRA); see read_map_image."""
    values = pixels.astype(np.float64) / maxval
    if values.ndim == 2:
        return values, None
    channels = values.shape[2]
    if channels == 1:
        return values[:, :, 0], None
    if channels == 2:
        return values[:, :, 0], values[:, :, 1]
    # OpenCV gives BGR(A); the mean of the colour channels does not care about their order.
    return values[:, :, :3].mean(axis=2), (values[:, :, 3] if channels >= 4 else None)


def occupancy_from_shades(colour: np.ndarray, alpha: np.ndarray | None = None, *, mode: str = 'trinary',
                          negate: bool = False, occupied_thresh: float = 0.65,
                          free_thresh: float = 0.196) -> np.ndarray:
    """nav2_map_server's loadMapFromFile rules on (colour, alpha) from read_map_image; returns int8
    rows bottom-up (grid row 0 = image bottom).

    shade: the colour mean; in trinary mode a picture with alpha averages the opacity in as a
    fourth channel, (R + G + B + A) / 4, so a transparent pixel is dark-ish and unknown.
    occ = shade if negate else 1 - shade.
    trinary: occ > occupied_thresh -> 100, occ < free_thresh -> 0, else -1.
    scale: any transparency -> -1, then as trinary, between the thresholds
    rint((occ - free) / (occupied - free) * 100).
    raw: round(shade * 255) when in 0..100, else -1 (negate and alpha are ignored).
    One deliberate departure: a fully transparent pixel is never free (map_server would call it
    free with negate or a free_thresh above 0.25); it is unknown, so unmapped space is never driven.
    """
    if mode == 'trinary' and alpha is not None:
        shade = (3.0 * colour + alpha) / 4.0
    else:
        shade = colour
    if mode == 'raw':
        value = np.floor(shade * 255.0 + 0.5)          # std::round: halves away from zero
        grid = np.where((value >= 0) & (value <= 100), value, UNKNOWN).astype(np.int8)
        return np.ascontiguousarray(grid[::-1])
    occ = shade if negate else 1.0 - shade
    grid = np.full(shade.shape, UNKNOWN, dtype=np.int8)
    grid[occ > occupied_thresh] = OCCUPIED
    grid[occ < free_thresh] = FREE
    if mode == 'scale':
        middle = (occ >= free_thresh) & (occ <= occupied_thresh)
        span = occupied_thresh - free_thresh
        if span > 0:
            scaled = np.rint((occ - free_thresh) / span * 100.0)     # std::rint: halves to even
            grid[middle] = scaled[middle].astype(np.int8)
        if alpha is not None:
            grid[alpha < 1.0] = UNKNOWN
    elif alpha is not None:
        grid[(alpha <= 0.0) & (grid == FREE)] = UNKNOWN
    return np.ascontiguousarray(grid[::-1])


def occupancy_from_pixels(pixels: np.ndarray, *, mode: str = 'trinary', negate: bool = False,
                          occupied_thresh: float = 0.65, free_thresh: float = 0.196,
                          maxval: float | None = None) -> np.ndarray:
    """occupancy_from_shades on decoded integer pixels (grey, grey+alpha, BGR, BGRA); `maxval`
    defaults to the largest value of the dtype (255 for uint8, 65535 for uint16)."""
    if maxval is None:
        maxval = float(np.iinfo(pixels.dtype).max) if np.issubdtype(pixels.dtype, np.integer) else 255.0
    colour, alpha = split_pixels(pixels, maxval)
    return occupancy_from_shades(colour, alpha, mode=mode, negate=negate,
                                 occupied_thresh=occupied_thresh, free_thresh=free_thresh)


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
    colour, alpha = read_map_image(image_path, path)
    grid = occupancy_from_shades(colour, alpha, mode=mode, negate=bool(negate),
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
