"""The camera's intrinsics as sensor_msgs/CameraInfo publishes them: from a calibration file or,
without one, from the horizontal field of view of the camera's data sheet. Pure: no rclpy.

A calibration file is the YAML that ROS's camera_calibration writes (camera_info_manager's
format): image_width, image_height, camera_matrix {rows: 3, cols: 3, data: [9 numbers]},
optional distortion_model / distortion_coefficients. Frames published at another size (the
camera node's width/height fit, with black padding) get K rescaled and shifted to match, so the
faces node's distances and bearings use the focal length of the frames it actually sees.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

MAX_FILE_BYTES = 64 * 1024


class CalibrationError(ValueError):
    """A calibration file that cannot be used (named, with the key at fault)."""


@dataclass(frozen=True)
class Intrinsics:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion_model: str = 'plumb_bob'
    d: tuple[float, ...] = ()

    @property
    def k(self) -> list[float]:
        return [self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0]

    @property
    def horizontal_fov_deg(self) -> float:
        return math.degrees(2 * math.atan2(self.width / 2.0, self.fx))

    def for_frame(self, width: int, height: int, fitted: bool) -> Intrinsics:
        """These intrinsics for frames of width x height: the camera's own frames scaled to that
        size (`fitted`: scaled to fit and padded, as camera_source.fit_frame does)."""
        if (width, height) == (self.width, self.height):
            return self
        if fitted:
            scale = min(width / self.width, height / self.height)
            left = (width - round(self.width * scale)) // 2
            top = (height - round(self.height * scale)) // 2
            return Intrinsics(width, height, self.fx * scale, self.fy * scale, self.cx * scale + left,
                              self.cy * scale + top, self.distortion_model, self.d)
        sx, sy = width / self.width, height / self.height
        return Intrinsics(width, height, self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy,
                          self.distortion_model, self.d)


def from_fov(width: int, height: int, horizontal_fov_deg: float) -> Intrinsics:
    """Square pixels, principal point in the centre, focal length from the field of view."""
    if not 1.0 <= horizontal_fov_deg < 180.0:
        raise CalibrationError(f'horizontal field of view {horizontal_fov_deg} deg: expected 1-179')
    fx = (width / 2.0) / math.tan(math.radians(horizontal_fov_deg) / 2.0)
    return Intrinsics(width, height, fx, fx, width / 2.0, height / 2.0)


def _read_yaml(path: Path) -> dict:
    """The file's YAML mapping, bounded in size; CalibrationError when it is not one."""
    import yaml
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise CalibrationError(f'{path}: larger than {MAX_FILE_BYTES // 1024} kB, not a calibration file')
        data = yaml.safe_load(path.read_text(encoding='utf-8'))
    except OSError as exc:
        raise CalibrationError(f'{path}: cannot read ({exc.strerror})') from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CalibrationError(f'{path}: not YAML ({str(exc).splitlines()[0]})') from None
    if not isinstance(data, dict):
        raise CalibrationError(f'{path}: expected a mapping (camera_calibration format)')
    return data


def _number(path: Path, value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CalibrationError(f'{path}: {key} must be a finite number, got {value!r}')
    return float(value)


def _image_size(path: Path, data: dict) -> tuple[int, int]:
    """image_width and image_height: positive whole numbers."""
    width, height = (_number(path, data.get(k), k) for k in ('image_width', 'image_height'))
    if width < 1 or height < 1 or width != int(width) or height != int(height):
        raise CalibrationError(f'{path}: image_width/image_height must be positive whole numbers')
    return int(width), int(height)


def _camera_matrix(path: Path, data: dict) -> list[float]:
    """camera_matrix.data: 9 finite numbers (row-major K) with positive fx and fy."""
    matrix = data.get('camera_matrix')
    values = matrix.get('data') if isinstance(matrix, dict) else None
    if not isinstance(values, list) or len(values) != 9:
        raise CalibrationError(f'{path}: camera_matrix.data must be a list of 9 numbers')
    k = [_number(path, v, 'camera_matrix.data') for v in values]
    if k[0] <= 0 or k[4] <= 0:
        raise CalibrationError(f'{path}: camera_matrix fx and fy must be positive')
    return k


def _distortion(path: Path, data: dict) -> tuple[str, tuple[float, ...]]:
    """distortion_model (default plumb_bob) and distortion_coefficients.data (up to 14 numbers)."""
    dist = data.get('distortion_coefficients')
    d_values = dist.get('data', []) if isinstance(dist, dict) else []
    if not isinstance(d_values, list) or len(d_values) > 14:
        raise CalibrationError(f'{path}: distortion_coefficients.data must be a list of up to 14 numbers')
    d = tuple(_number(path, v, 'distortion_coefficients.data') for v in d_values)
    model = data.get('distortion_model', 'plumb_bob')
    if not isinstance(model, str) or len(model) > 64:
        raise CalibrationError(f'{path}: distortion_model must be a short text')
    return model, d


def load_calibration(path: str | Path) -> Intrinsics:
    """Intrinsics of a camera_calibration YAML file; CalibrationError naming file and key."""
    path = Path(path)
    data = _read_yaml(path)
    width, height = _image_size(path, data)
    k = _camera_matrix(path, data)
    model, d = _distortion(path, data)
    return Intrinsics(width, height, k[0], k[4], k[2], k[5], model, d)
