"""The face models (dlib HOG detector + ResNet 128-d encoder, through face_recognition).

One place that knows dlib's demands (C-contiguous RGB uint8) and how photos are read, so the
pipeline, the enrolment and the CLI all see the same boxes and embeddings. Pure: no rclpy.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # (top, right, bottom, left) in pixels, face_recognition's order
MAX_PHOTO_SIDE = 1024            # enrolment/identify photos are shrunk to this for detection


class ImageReadError(ValueError):
    """A photo that cannot be decoded (missing, corrupt, not an image)."""


class EnrollmentError(ValueError):
    """A photo that cannot be used to enrol a member (no face, or several)."""


def _api():
    with warnings.catch_warnings():  # face_recognition_models imports the deprecated pkg_resources
        warnings.simplefilter('ignore')
        import face_recognition
    return face_recognition


def load_bgr(path: str | Path) -> np.ndarray:
    """Decode a photo as BGR uint8; ImageReadError naming the file if it cannot be read, is too
    large (pixel limit checked on the header, before decoding) or is not an image."""
    from retail_perception.image_convert import ImageFileError, read_image_file
    try:
        return read_image_file(path)
    except ImageFileError as exc:
        raise ImageReadError(str(exc)) from None


def to_rgb(frame_bgr: np.ndarray) -> np.ndarray:
    """C-contiguous RGB copy, the only layout dlib 20 accepts."""
    return cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)


class FaceModel:
    """Detection and encoding; boxes are always in the coordinates of the image given."""

    def __init__(self, upsample: int = 1):
        self.upsample = upsample
        self._fr = _api()

    def detect(self, rgb: np.ndarray, scale: float = 1.0) -> list[Box]:
        """Face boxes of `rgb`, detected on a copy shrunk by `scale` (cheaper, misses tiny faces)."""
        small = rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale,
                                                     interpolation=cv2.INTER_AREA)
        boxes = self._fr.face_locations(small, self.upsample, model='hog')
        if scale == 1.0:
            return [tuple(map(int, b)) for b in boxes]
        h, w = rgb.shape[:2]
        return [(max(0, int(t / scale)), min(w, int(r / scale)), min(h, int(b / scale)),
                 max(0, int(l / scale))) for t, r, b, l in boxes]

    def encode(self, rgb: np.ndarray, boxes: list[Box]) -> np.ndarray:
        """(len(boxes), 128) float32 embeddings of the faces in `boxes`."""
        if not boxes:
            return np.zeros((0, 128), np.float32)
        encodings = self._fr.face_encodings(rgb, known_face_locations=list(boxes))
        return np.asarray(encodings, dtype=np.float32).reshape(-1, 128)

    def faces_in_photo(self, bgr: np.ndarray) -> tuple[list[Box], np.ndarray]:
        """Boxes (in the photo's own pixels) and embeddings of every face in a still photo."""
        scale = min(1.0, MAX_PHOTO_SIDE / max(bgr.shape[:2]))
        rgb = to_rgb(bgr if scale == 1.0 else cv2.resize(bgr, None, fx=scale, fy=scale,
                                                         interpolation=cv2.INTER_AREA))
        boxes = self.detect(rgb)
        encodings = self.encode(rgb, boxes)
        if scale != 1.0:
            boxes = [tuple(int(v / scale) for v in b) for b in boxes]
        return boxes, encodings

    def enrollment_encoding(self, path: str | Path) -> np.ndarray:
        """The one face of an enrolment photo; refuses photos with no face or several faces."""
        boxes, encodings = self.faces_in_photo(load_bgr(path))
        if not boxes:
            raise EnrollmentError(f'{path}: no face found')
        if len(boxes) > 1:
            raise EnrollmentError(f'{path}: {len(boxes)} faces found; an enrolment photo must show '
                                  'only the member')
        return encodings[0]
