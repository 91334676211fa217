"""Where frames come from: a camera device, a video file, an RTSP/HTTP stream or an image folder.

The simulator replays a video or a folder of photos in a loop; a real camera can vanish (USB
unplugged, stream dropped), so `CameraSource` reports that and reopens with a back-off instead
of crashing. Unreadable photos in a folder are reported once and skipped. Pure: no rclpy.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from retail_perception.image_convert import MAX_PIXELS, ImageFileError, read_image_file

IMAGE_SUFFIXES = {'.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff'}


class SourceError(Exception):
    """A source that cannot be opened or has stopped delivering frames."""


def describe_source(spec: str) -> str:
    if spec.isdigit():
        return f'camera device {spec}'
    if '://' in spec:
        return f'stream {spec.split("@")[-1]}'  # never log credentials of an RTSP URL
    path = Path(spec)
    return f'image folder {path}' if path.is_dir() else f'video file {path}'


class VideoSource:
    """cv2.VideoCapture on a device index, a file or a URL; files can loop."""

    def __init__(self, spec: str, loop: bool = False, width: int = 0, height: int = 0):
        self.spec, self.loop = spec, loop
        self.is_file = not spec.isdigit() and '://' not in spec
        if self.is_file and not Path(spec).is_file():
            raise SourceError(f'{describe_source(spec)}: no such file')
        self._capture = cv2.VideoCapture(int(spec) if spec.isdigit() else spec)
        if not self._capture.isOpened():
            raise SourceError(f'{describe_source(spec)}: cannot open')
        frame_w = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        frame_h = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        if frame_w * frame_h > MAX_PIXELS:          # from the container header, before any frame
            self._capture.release()
            raise SourceError(f'{describe_source(spec)}: frames too large ({frame_w}x{frame_h} pixels, '
                              f'limit {MAX_PIXELS / 1e6:g} megapixels)')
        if spec.isdigit() and width and height:
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._delivered = 0

    @property
    def fps(self) -> float:
        return float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)

    def read(self) -> np.ndarray:
        ok, frame = self._capture.read()
        if not ok and self.is_file and self.loop and self._delivered:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._capture.read()
        if not ok or frame is None:
            if self.is_file and self._delivered and not self.loop:
                raise EOFError(f'{describe_source(self.spec)}: end of video')
            raise SourceError(f'{describe_source(self.spec)}: no frame (unreadable or disconnected)')
        self._delivered += 1
        return frame

    def release(self) -> None:
        self._capture.release()


class ImageFolderSource:
    """Photos of a folder in name order, each shown for `hold_frames` frames, looping; a photo
    replaced while it is shown (same name, new file) is shown at once."""

    def __init__(self, folder: str | Path, hold_frames: int = 1, loop: bool = True,
                 warn: Callable[[str], None] = lambda message: None):
        self.folder = Path(folder)
        self.paths = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise SourceError(f'image folder {self.folder}: no images')
        self.hold_frames, self.loop, self.warn = max(1, hold_frames), loop, warn
        self._index, self._shown, self._current = 0, 0, None
        self._current_path: Path | None = None
        self._current_stamp: tuple[int, int] | None = None
        self._bad: set[Path] = set()

    fps = 0.0

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int] | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_ino

    def read(self) -> np.ndarray:
        if self._current is not None and self._shown < self.hold_frames:
            if self._stamp(self._current_path) == self._current_stamp:
                self._shown += 1
                return self._current
            self._index -= 1                  # the photo shown was replaced: show the new one now
            self._bad.discard(self._current_path)
        for _ in range(len(self.paths)):
            if self._index >= len(self.paths):
                if not self.loop:
                    raise EOFError(f'image folder {self.folder}: end of images')
                self._index = 0
            path = self.paths[self._index]
            self._index += 1
            if path in self._bad:
                continue
            try:
                frame = read_image_file(path)
            except ImageFileError as exc:
                self._bad.add(path)
                self.warn(f'skipping image: {exc}')
                continue
            self._current, self._shown = frame, 1
            self._current_path, self._current_stamp = path, self._stamp(path)
            return frame
        raise SourceError(f'image folder {self.folder}: no readable images')

    def release(self) -> None:
        self._current = None


def fit_frame(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """`frame` scaled to fit width x height without distorting faces, padded with black."""
    h, w = frame.shape[:2]
    if (w, h) == (width, height):
        return frame
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[top:top + new_h, left:left + new_w] = resized
    return canvas


def open_source(spec: str, *, loop: bool = True, hold_frames: int = 1, width: int = 0,
                height: int = 0, warn: Callable[[str], None] = lambda message: None):
    """A source for `spec`: digits = device index, URL, folder of images, or video file."""
    if not spec:
        raise SourceError('no camera source configured')
    if not spec.isdigit() and '://' not in spec and Path(spec).is_dir():
        return ImageFolderSource(spec, hold_frames, loop, warn)
    return VideoSource(spec, loop, width, height)


@dataclass
class CameraStatus:
    connected: bool
    message: str
    frames: int
    reconnects: int


class CameraSource:
    """A source that survives losing the camera: `read()` returns None while it is away."""

    def __init__(self, spec: str, *, reconnect_s: float = 2.0, clock: Callable[[], float] = time.monotonic,
                 **options):
        self.spec, self.reconnect_s, self.clock, self.options = spec, reconnect_s, clock, options
        self._source = None
        self._next_attempt = 0.0
        self.status = CameraStatus(False, 'not opened yet', 0, 0)
        self.finished = False

    def read(self) -> np.ndarray | None:
        if self.finished:
            return None
        if self._source is None and not self._open():
            return None
        try:
            frame = self._source.read()
        except EOFError as exc:
            self.finished = True
            self.status = CameraStatus(False, str(exc), self.status.frames, self.status.reconnects)
            return None
        except SourceError as exc:
            self._lose(str(exc))
            return None
        self.status.frames += 1
        return frame

    def _open(self) -> bool:
        now = self.clock()
        if now < self._next_attempt:
            return False
        try:
            self._source = open_source(self.spec, **self.options)
        except SourceError as exc:
            self._lose(str(exc))
            return False
        if self.status.frames or self.status.message != 'not opened yet':
            self.status.reconnects += 1
        self.status.connected = True
        self.status.message = f'{describe_source(self.spec)} open'
        return True

    def _lose(self, message: str) -> None:
        if self._source is not None:
            self._source.release()
        self._source = None
        self._next_attempt = self.clock() + self.reconnect_s
        self.status.connected = False
        self.status.message = f'camera lost: {message}; retrying every {self.reconnect_s:g} s'

    def release(self) -> None:
        if self._source is not None:
            self._source.release()
        self._source = None
