"""The face models: a detector (YuNet from the `yuface` wheel, or dlib's HOG as the fallback) and
dlib's ResNet 128-d encoder (through face_recognition).

One place that knows the models' demands (dlib: C-contiguous RGB uint8; YuNet: BGR) and how photos
are read, so the pipeline, the enrolment and the CLI all see the same boxes and embeddings.
YuNet (libfacedetection, BSD-3-Clause, weights compiled into the wheel: nothing is fetched) finds
faces down to ~20 px on a full 1280x720 frame at ~110 ms on one core; HOG misses faces under
~80 px on a full frame (~55 px once the frame is upsampled) and is only used where the wheel is
missing. Encodings are always computed on the full-resolution image. Pure: no rclpy.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # (top, right, bottom, left) in pixels, face_recognition's order
MAX_PHOTO_SIDE = 1024            # photos are shrunk to this for DETECTION only (encoding: full size)
YUNET_MAX_SIDE = 1280            # YuNet runs on frames up to this side (a 1280x720 camera: as is)
YUNET, HOG = 'yunet', 'hog'
UPSCALE_TO_PX = 0                # faces narrower than this are encoded from an enlarged crop (0: off)
# Every face is encoded twice, as seen and mirrored left-right, and the two embeddings averaged
# (flip test-time augmentation): a face turned a little to one side and the same face turned to the
# other land nearer, so two photos of one person taken from different sides come closer. The same
# in enrolment and live, so gallery rows and probes agree. Chosen on the TUNING identities
# (benches/faces_mirror.py); MIRROR_AVERAGE = False (or FaceModel(mirror=False)) encodes once.
MIRROR_AVERAGE = True
# YuNet's box -> the square box dlib's HOG gives the same face (what dlib's 5-point landmark model
# was trained on): side x1.10 of YuNet's width, centre 0.09 widths lower. Median over the photos of
# the TUNING identities (obama, kit_harington, lin-manuel-miranda) at full resolution;
# benches/faces_walkin.py reports on the other identities.
YUNET_TO_DLIB_SIDE, YUNET_TO_DLIB_DOWN = 1.10, 0.09
DETECTORS = ('auto', YUNET, HOG)
# Enrolment adds a "walk-in" row per photo: the mean encoding of the photo shrunk so the face is as
# wide as the robot first sees a member (these widths), each copy softened (Gaussian blur), noised
# and JPEG-compressed like a store camera's frame (generic settings, not the walk-in bench's own),
# with a fixed seed so an enrolment is reproducible. Chosen on the TUNING identities
# (benches/faces_enrolment_variants.py); WALK_IN_WIDTHS = () turns it off.
WALK_IN_WIDTHS = (36, 44, 52)
WALK_IN_COPIES = 2               # degraded copies per width (different noise)
WALK_IN_BLUR_SIGMA, WALK_IN_NOISE, WALK_IN_JPEG = 0.6, 3.0, 80


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


def dlib_box(box: Box, shape: tuple[int, ...]) -> Box:
    """The square box dlib's landmark model expects for a face YuNet boxed as `box`."""
    top, right, bottom, left = box
    width = right - left
    side = YUNET_TO_DLIB_SIDE * width
    cx, cy = (left + right) / 2.0, (top + bottom) / 2.0 + YUNET_TO_DLIB_DOWN * width
    h, w = shape[:2]
    return (max(0, int(round(cy - side / 2))), min(w, int(round(cx + side / 2))),
            min(h, int(round(cy + side / 2))), max(0, int(round(cx - side / 2))))


class DetectorUnavailable(RuntimeError):
    """The detector asked for is not installed."""


def yunet_available() -> bool:
    try:
        import yuface  # noqa: F401
    except ImportError:
        return False
    return True


def detector_status() -> tuple[str, str]:
    """(detector that runs with detector='auto', one line saying why) for doctor and the logs."""
    if yunet_available():
        from importlib import metadata
        return YUNET, f'YuNet (yuface {metadata.version("yuface")}, BSD-3-Clause, weights in the wheel)'
    return HOG, ("dlib HOG fallback: the yuface wheel is missing (run robot_ws/install.sh); "
                 "faces under ~55 px are not found, members are named nearer (about 2 m)")


class FaceModel:
    """Detection and encoding; boxes are always in the coordinates of the image given.

    `detector`: 'auto' (YuNet when its wheel is installed, else HOG), 'yunet' or 'hog'.
    `default_scale` is the shrink factor the pipeline detects at by default: YuNet sees the full
    frame (small far faces are the point), HOG a frame shrunk x0.5 (its cost on a full frame)."""

    def __init__(self, upsample: int = 1, detector: str = 'auto', min_confidence: float = 0.8,
                 upscale_to_px: int = UPSCALE_TO_PX, mirror: bool | None = None):
        if detector not in DETECTORS:
            raise ValueError(f'detector must be one of {", ".join(DETECTORS)}, not {detector!r}')
        if detector == 'auto':
            detector = YUNET if yunet_available() else HOG
        elif detector == YUNET and not yunet_available():
            raise DetectorUnavailable('detector yunet: the yuface wheel is not installed (robot_ws/install.sh)')
        self.detector = detector
        self.upsample = upsample
        self.min_confidence = min_confidence
        self.upscale_to_px = upscale_to_px
        self.mirror = MIRROR_AVERAGE if mirror is None else mirror
        self.default_scale = 1.0 if detector == YUNET else 0.5
        self._fr = _api()

    def detect(self, rgb: np.ndarray, scale: float = 1.0) -> list[Box]:
        """Face boxes of `rgb`, detected on a copy shrunk by `scale` (cheaper, misses tiny faces)."""
        if self.detector == YUNET:       # bounded cost: never more than YUNET_MAX_SIDE
            scale = min(scale, YUNET_MAX_SIDE / max(rgb.shape[:2]))
        small = rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale,
                                                     interpolation=cv2.INTER_AREA)
        boxes = self._yunet(small) if self.detector == YUNET else [
            (int(t), int(r), int(b), int(lft))
            for t, r, b, lft in self._fr.face_locations(small, self.upsample, model='hog')]
        if scale == 1.0:
            return boxes
        h, w = rgb.shape[:2]
        return [(max(0, int(t / scale)), min(w, int(r / scale)), min(h, int(b / scale)),
                 max(0, int(l / scale))) for t, r, b, l in boxes]

    def _yunet(self, rgb: np.ndarray) -> list[Box]:
        import yuface
        h, w = rgb.shape[:2]
        with warnings.catch_warnings():  # yuface warns about frames over 960 px (speed, not accuracy)
            warnings.simplefilter('ignore')
            confs, boxes, _ = yuface.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), conf=self.min_confidence)
        found = []
        for x, y, bw, bh in np.asarray(boxes, dtype=np.int64).reshape(-1, 4):
            top, left = max(0, int(y)), max(0, int(x))
            bottom, right = min(h, int(y + bh)), min(w, int(x + bw))
            if right - left >= 4 and bottom - top >= 4:
                found.append((top, right, bottom, left))
        return found

    def encode(self, rgb: np.ndarray, boxes: list[Box]) -> np.ndarray:
        """(len(boxes), 128) float32 embeddings of the faces in `boxes`.

        YuNet's boxes are first mapped to the square boxes dlib's landmark model was trained on
        (`dlib_box`); a face narrower than `upscale_to_px` is encoded from a crop around it
        enlarged (bicubic) to that width, so the 5-point landmarks that align the face before
        encoding are placed on more than a handful of pixels. With `mirror` each face's embedding
        is the mean of the face's and its left-right mirror image's (MIRROR_AVERAGE)."""
        if not boxes:
            return np.zeros((0, 128), np.float32)
        fitted: list[Box] = [dlib_box(b, rgb.shape) if self.detector == YUNET else (b[0], b[1], b[2], b[3])
                             for b in boxes]
        out = self._encode_fitted(rgb, fitted)
        if self.mirror:
            for i, box in enumerate(fitted):
                crop, inner = self._mirrored_crop(rgb, box)
                out[i] = (out[i] + self._encode_fitted(crop, [inner])[0]) / 2.0
        return out

    def _encode_fitted(self, rgb: np.ndarray, fitted: list[Box]) -> np.ndarray:
        out = np.zeros((len(fitted), 128), np.float32)
        direct = [i for i, b in enumerate(fitted) if b[1] - b[3] >= self.upscale_to_px]
        if direct:
            out[direct] = np.asarray(self._fr.face_encodings(
                rgb, known_face_locations=[fitted[i] for i in direct]), np.float32).reshape(-1, 128)
        for i, box in enumerate(fitted):
            if i not in direct:
                out[i] = self._encode_upscaled(rgb, box)
        return out

    def _encode_upscaled(self, rgb: np.ndarray, box: Box) -> np.ndarray:
        top, right, bottom, left = box
        width = max(1, right - left)
        factor = self.upscale_to_px / width
        h, w = rgb.shape[:2]
        y0, y1 = max(0, top - width), min(h, bottom + width)      # a face width of context
        x0, x1 = max(0, left - width), min(w, right + width)
        crop = cv2.resize(rgb[y0:y1, x0:x1], None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        inner = (int((top - y0) * factor), int((right - x0) * factor), int((bottom - y0) * factor),
                 int((left - x0) * factor))
        encoding = self._fr.face_encodings(np.ascontiguousarray(crop), known_face_locations=[inner])
        return np.asarray(encoding[0], np.float32)

    @staticmethod
    def _mirrored_crop(rgb: np.ndarray, box: Box) -> tuple[np.ndarray, Box]:
        """A crop around `box` with a face width of context on every side (what dlib's landmarks
        and its 150x150 aligned chip need), mirrored left-right, and the box inside it."""
        top, right, bottom, left = box
        width = max(1, right - left)
        h, w = rgb.shape[:2]
        y0, y1 = max(0, top - width), min(h, bottom + width)
        x0, x1 = max(0, left - width), min(w, right + width)
        crop = np.ascontiguousarray(rgb[y0:y1, x0:x1, :][:, ::-1])
        cw = x1 - x0
        return crop, (top - y0, cw - (left - x0), bottom - y0, cw - (right - x0))

    def faces_in_photo(self, bgr: np.ndarray) -> tuple[list[Box], np.ndarray]:
        """Boxes and embeddings of every face in a still photo, both from the photo's own pixels:
        detection may run on a copy shrunk to MAX_PHOTO_SIDE, encoding always at full resolution
        (a shrunk 45 px face loses what tells members apart)."""
        rgb = to_rgb(bgr)
        boxes = self.detect(rgb, min(1.0, MAX_PHOTO_SIDE / max(bgr.shape[:2])))
        return boxes, self.encode(rgb, boxes)

    def enrollment_encoding(self, path: str | Path) -> np.ndarray:
        """The one face of an enrolment photo; refuses photos with no face or several faces."""
        return self._enrollment_face(path)[2]

    def enrollment_encodings(self, path: str | Path, walk_in: bool = True) -> np.ndarray:
        """The gallery rows of one enrolment photo: its full-resolution encoding and, with
        `walk_in` (and WALK_IN_WIDTHS set), the `walk_in_encoding` of the same face. (1|2, 128)."""
        bgr, box, encoding = self._enrollment_face(path)
        if not walk_in or not WALK_IN_WIDTHS:
            return encoding[None, :]
        return np.stack([encoding, self.walk_in_encoding(bgr, box)])

    def _enrollment_face(self, path: str | Path) -> tuple[np.ndarray, Box, np.ndarray]:
        bgr = load_bgr(path)
        boxes, encodings = self.faces_in_photo(bgr)
        if not boxes:
            raise EnrollmentError(f'{path}: no face found')
        if len(boxes) > 1:
            raise EnrollmentError(f'{path}: {len(boxes)} faces found; an enrolment photo must show '
                                  'only the member')
        return bgr, boxes[0], encodings[0]

    def walk_in_encoding(self, bgr: np.ndarray, box: Box, widths: tuple[int, ...] = WALK_IN_WIDTHS,
                         copies: int = WALK_IN_COPIES, seed: int = 7) -> np.ndarray:
        """The mean encoding of the face in `box` (detector coordinates of `bgr`) as a far camera
        sees it: the image shrunk so the face is each of `widths` px wide, blurred, noised and
        JPEG-compressed (`copies` times per width), re-detected in the small copy (the scaled box
        where the detector misses it) and encoded there. A member's far, soft frames land nearer
        this row than their sharp photo (the encoder drifts as faces shrink); it is one more row
        of the same member, searched like any other (nearest row)."""
        rng = np.random.default_rng(seed)
        top, right, bottom, left = box
        rows = []
        for width in widths:
            scale = width / max(1, right - left)
            for _ in range(copies):
                rgb, small_box = self._far_copy(bgr, (top, right, bottom, left), scale, rng)
                rows.append(self.encode(rgb, [small_box])[0])
        return np.mean(rows, axis=0).astype(np.float32)

    def _far_copy(self, bgr: np.ndarray, box: Box, scale: float, rng) -> tuple[np.ndarray, Box]:
        pad = 48                                # grey border: room for the detector around a small face
        small = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        canvas = np.full((small.shape[0] + 2 * pad, small.shape[1] + 2 * pad, 3), 128, np.uint8)
        canvas[pad:pad + small.shape[0], pad:pad + small.shape[1]] = small
        soft = cv2.GaussianBlur(canvas, (0, 0), WALK_IN_BLUR_SIGMA)
        noisy = np.clip(soft.astype(np.float32) + rng.normal(0, WALK_IN_NOISE, soft.shape), 0, 255).astype(np.uint8)
        _, jpeg = cv2.imencode('.jpg', noisy, [cv2.IMWRITE_JPEG_QUALITY, WALK_IN_JPEG])
        rgb = to_rgb(np.asarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR)))
        top, right, bottom, left = (int(round(v * scale)) + pad for v in box)
        found = [b for b in self.detect(rgb) if left <= (b[1] + b[3]) / 2 <= right and top <= (b[0] + b[2]) / 2 <= bottom]
        return rgb, found[0] if found else (top, right, bottom, left)
