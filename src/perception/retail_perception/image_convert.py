"""Images in and out: photo files (size-checked before decoding) and sensor_msgs/Image <-> numpy
(cv_bridge is not available in the pip environment).

Pure: works on files and on the message's fields (height, width, encoding, step, data), so it is
tested without ROS; `to_image_msg`/`from_image_msg` are the thin adapters the nodes use.
"""
from __future__ import annotations

import array
from pathlib import Path
from typing import Any

import numpy as np

# encoding -> channels (all 8-bit: byte order does not matter, is_bigendian is irrelevant)
CHANNELS = {'bgr8': 3, 'rgb8': 3, 'mono8': 1, 'bgra8': 4, 'rgba8': 4}


MAX_PIXELS = 64_000_000          # a 64-megapixel photo decodes to ~190 MB of BGR; larger is refused
MAX_SIDE = 16384                 # a frame's width or height (and at least 1)
MAX_FILE_BYTES = 64 * 1024 * 1024


class ImageConversionError(ValueError):
    """An image message that cannot be turned into pixels (wrong size, unknown encoding)."""


class ImageFileError(ValueError):
    """A photo file that is not read: missing, too large, corrupt or not an image."""


def image_file_size(path: str | Path, data: bytes) -> tuple[int, int]:
    """(width, height) from the image header alone (Pillow reads no pixels for this)."""
    import io
    from PIL import Image, UnidentifiedImageError
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)   # we apply our own limit
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ImageFileError(f'{path}: not a readable image (corrupt or unsupported format)') from None
    except Image.DecompressionBombError as exc:    # Pillow's own guard on the header (> 2x its limit)
        import re
        count = re.search(r'\((\d+) pixels\)', str(exc))
        size = f'{int(count.group(1)) / 1e6:g} megapixels' if count else 'too many pixels'
        raise ImageFileError(f'{path}: image too large ({size}, limit {MAX_PIXELS / 1e6:g} megapixels); '
                             'refused before decoding') from None


def read_image_file(path: str | Path, max_pixels: int = MAX_PIXELS,
                    max_bytes: int = MAX_FILE_BYTES) -> np.ndarray:
    """Decode a photo file as BGR uint8 (EXIF rotation applied), refusing files over `max_bytes`
    and images over `max_pixels` from their header, before any pixel is decoded.

    Raises ImageFileError naming the file: missing, too large, corrupt or not an image.
    """
    import cv2
    path = Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ImageFileError(f'{path}: not a file')
        if size > max_bytes:
            raise ImageFileError(f'{path}: file too large ({size / 1e6:.0f} MB; limit {max_bytes / 1e6:.0f} MB)')
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageFileError(f'{path}: no such file') from None
    except OSError as exc:
        raise ImageFileError(f'{path}: cannot read ({exc.strerror})') from None
    if not data:
        raise ImageFileError(f'{path}: empty file')
    width, height = image_file_size(path, data)
    if width * height > max_pixels:
        raise ImageFileError(f'{path}: image too large ({width}x{height} pixels, limit '
                             f'{max_pixels / 1e6:g} megapixels); refused before decoding')
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageFileError(f'{path}: not a readable image (corrupt or unsupported format)')
    return image


def encode_fields(frame: np.ndarray, encoding: str = 'bgr8') -> tuple[int, int, str, int, bytes]:
    """(height, width, encoding, step, data) of an 8-bit frame; 2-D arrays are mono8."""
    if frame.dtype != np.uint8:
        raise ImageConversionError(f'only 8-bit images are supported, got {frame.dtype}')
    if frame.ndim == 2:
        encoding = 'mono8'
    channels = 1 if frame.ndim == 2 else frame.shape[2]
    if CHANNELS.get(encoding) != channels:
        raise ImageConversionError(f'{channels}-channel frame cannot be sent as {encoding}')
    frame = np.ascontiguousarray(frame)
    height, width = frame.shape[:2]
    return height, width, encoding, width * channels, frame.tobytes()


def decode_fields(height: int, width: int, encoding: str, step: int, data: Any) -> np.ndarray:
    """A BGR (3-channel) uint8 array from an image message's fields, honouring row padding."""
    channels = CHANNELS.get(encoding)
    if channels is None:
        raise ImageConversionError(f'unsupported image encoding {encoding!r} '
                                   f'(supported: {", ".join(CHANNELS)})')
    if not 1 <= height <= MAX_SIDE or not 1 <= width <= MAX_SIDE or height * width > MAX_PIXELS:
        raise ImageConversionError(f'image of {width}x{height} pixels: each side must be 1..{MAX_SIDE} '
                                   f'and the whole at most {MAX_PIXELS / 1e6:g} megapixels')
    row = width * channels
    if step < row:
        raise ImageConversionError(f'step {step} is shorter than a row of {width} {encoding} pixels')
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size < step * height:
        raise ImageConversionError(f'image data has {buffer.size} bytes, expected {step * height}')
    pixels = buffer[:step * height].reshape(height, step)[:, :row].reshape(height, width, channels)
    if encoding == 'bgr8':
        return np.ascontiguousarray(pixels)
    if encoding == 'rgb8':
        return np.ascontiguousarray(pixels[:, :, ::-1])
    if encoding == 'mono8':
        return np.ascontiguousarray(np.repeat(pixels, 3, axis=2))
    if encoding == 'bgra8':
        return np.ascontiguousarray(pixels[:, :, :3])
    return np.ascontiguousarray(pixels[:, :, 2::-1])  # rgba8


def to_image_msg(frame: np.ndarray, stamp: Any = None, frame_id: str = '', encoding: str = 'bgr8'):
    """A sensor_msgs/Image carrying `frame`."""
    from sensor_msgs.msg import Image
    height, width, encoding, step, data = encode_fields(frame, encoding)
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=0, step=step)
    msg.data = array.array('B', data)
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg


def from_image_msg(msg) -> np.ndarray:
    """BGR pixels of a sensor_msgs/Image."""
    return decode_fields(msg.height, msg.width, msg.encoding, msg.step, msg.data)
