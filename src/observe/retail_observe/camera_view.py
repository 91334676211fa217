"""The low-rate camera view Foxglove shows: faces blurred unless a staff member is logged in. Pure.

`CameraView.frame(t, bgr, staff_logged_in)` decides per camera frame: `None` (too soon after the
last one sent: at most one per `period_s`; or no face detector, or detection failed: never an
unblurred face by accident), else the JPEG bytes to send. Faces are pixelated (blocks of
`BLOCKS` across a face, then blurred) over their box grown by `MARGIN` on every side: what is
left cannot be recognised or re-sharpened. With a staff member logged in on the console (the
console's session state, `staff_logged_in`) the frame is sent as it is.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # (top, right, bottom, left), as the face model gives them
BLOCKS = 6
MARGIN = 0.25
MAX_SIDE = 640  # the view is shrunk to at most this width/height (low rate, low bandwidth)


def grow(box: Box, shape: tuple[int, ...], margin: float = MARGIN) -> Box:
    top, right, bottom, left = box
    dy, dx = int((bottom - top) * margin), int((right - left) * margin)
    return max(0, top - dy), min(shape[1], right + dx), min(shape[0], bottom + dy), max(0, left - dx)


def blur_faces(bgr: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """A copy of `bgr` with every box (grown by MARGIN) pixelated and blurred."""
    out = bgr.copy()
    for box in boxes:
        top, right, bottom, left = grow(box, bgr.shape)
        if bottom - top < 2 or right - left < 2:
            continue
        face = out[top:bottom, left:right]
        small = cv2.resize(face, (BLOCKS, BLOCKS), interpolation=cv2.INTER_AREA)
        blocky = cv2.resize(small, (right - left, bottom - top), interpolation=cv2.INTER_NEAREST)
        k = max(3, ((min(right - left, bottom - top) // BLOCKS) | 1))
        out[top:bottom, left:right] = cv2.GaussianBlur(blocky, (k, k), 0)
    return out


def shrink(bgr: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    scale = max_side / max(bgr.shape[:2])
    if scale >= 1.0:
        return bgr
    return cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


class CameraView:
    def __init__(
        self, detect: Callable[[np.ndarray], list[Box]] | None, period_s: float = 1.0, jpeg_quality: int = 70
    ) -> None:
        self.detect = detect  # BGR image -> face boxes; None: no detector (frames are dropped)
        self.period_s = period_s
        self.jpeg_quality = jpeg_quality
        self.last_sent = float('-inf')
        self.dropped_no_detector = 0
        self.blurred_faces = 0

    def frame(self, t: float, bgr: np.ndarray, staff_logged_in: bool) -> bytes | None:
        if t - self.last_sent < self.period_s:
            return None
        view = shrink(bgr)
        if not staff_logged_in:
            if self.detect is None:
                self.dropped_no_detector += 1
                return None
            try:
                boxes = self.detect(view)
            except Exception:  # noqa: BLE001 - a detector failure drops the frame: never unblurred
                self.dropped_no_detector += 1
                return None
            view = blur_faces(view, boxes)
            self.blurred_faces += len(boxes)
        ok, jpeg = cv2.imencode('.jpg', view, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            return None
        self.last_sent = t
        return jpeg.tobytes()
