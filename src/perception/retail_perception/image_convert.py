"""sensor_msgs/Image <-> numpy, because cv_bridge is not available in the pip environment.

Pure: works on the message's fields (height, width, encoding, step, data), so it is tested
without ROS; `to_image_msg`/`from_image_msg` are the thin adapters the nodes use.
"""
from __future__ import annotations

import array
from typing import Any

import numpy as np

# encoding -> channels (all 8-bit: byte order does not matter, is_bigendian is irrelevant)
CHANNELS = {'bgr8': 3, 'rgb8': 3, 'mono8': 1, 'bgra8': 4, 'rgba8': 4}


class ImageConversionError(ValueError):
    """An image message that cannot be turned into pixels (wrong size, unknown encoding)."""


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
