"""From camera frames to customers: detect, track, identify by voting, estimate where they are.

Encoding a face costs ~20-50 ms on the robot's CPU and detecting ~110 ms (YuNet on a full
1280x720 frame, so faces of 3-4 m are found; HOG, the fallback, on a frame shrunk x0.5), so the
pipeline follows each person as a track and encodes a track only once its face is large enough for
the encoder to be reliable (`min_identify_px`), then every `encode_every_unknown` frames until it
is identified, then now and then to re-check — not every frame. Faces smaller than that are
followed (appeared, positions for the guide) but never named: their votes would be guesses. A track becomes a member only after several agreeing matches (threshold for East Asian
faces <= 0.5 plus a best-vs-second margin), which keeps look-alikes from being greeted by the
wrong name. Unknown people's encodings live only in memory while they are in view (for
enrolment at the robot) and are never stored. Pure: no rclpy.
"""
from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Callable, Protocol

import cv2
import numpy as np

from retail_perception.face_model import Box, to_rgb
from retail_perception.gallery import Gallery, Match

APPEARED, IDENTIFIED, APPROACHING, LEFT = 'appeared', 'identified', 'approaching', 'left'


@dataclass(frozen=True)
class PipelineConfig:
    detect_scale: float = 0.0          # detection runs on the frame shrunk by this factor
                                       # (0: the detector's own default, YuNet 1.0, HOG 0.5)
    full_detect_every: int = 3         # the whole frame is searched every this many frames; in
                                       # between only the regions around live tracks are (cheaper;
                                       # a newcomer is found at the next full search)
    roi_margin: float = 1.0            # region searched around a track: its box grown by this many
                                       # face widths on every side (at least roi_min_px)
    roi_min_px: int = 48
    min_identify_px: int = 35          # faces narrower than this are tracked, not encoded/named
    match_threshold: float = 0.5       # max embedding distance to accept a member
    match_margin: float = 0.05         # best member must beat the next one by this much
    votes_needed: int = 2              # encodings of the track behind a decision (at least)
    evidence_frames: int = 3           # a track is named from the MEAN of its last this many
                                       # encodings (threshold and margin on the mean); 0: the older
                                       # rule, `votes_needed` single-frame matches agreeing
    small_face_px: int = 0             # faces narrower than this (and >= min_identify_px) are named by
                                       # the stricter small-face rule below (0: one rule at every size)
    small_face_threshold: float = 0.0  # its threshold (0: match_threshold)
    small_face_margin: float = 0.0     # its margin (0: match_margin)
    small_face_evidence_frames: int = 0  # its evidence: the mean of this many encodings, all of them
                                       # needed before a decision (0: evidence_frames / votes_needed)
    encode_every_unknown: int = 1      # frames between encodings while a track is unnamed
    refresh_every: int = 10            # frames between re-checks of a named track
    jump_ratio: float = 1.2            # face size changing this much in one frame (or the face
                                       # moving by half its width): maybe someone else, check now
    min_hits: int = 2                  # detections before a track is announced (filters flukes)
    max_missed: int = 8                # frames a track survives without a detection
    max_missed_s: float = 0.0          # ... or seconds (0: off; needs process(now_s=)), for cameras
                                       # whose frames arrive slowly: a person is gone after this long
    min_iou: float = 0.2               # box overlap to continue a track
    identify: bool = True              # False = anonymous mode: no encoding, no identities
    horizontal_fov_rad: float = math.radians(70.0)  # only until the camera's calibration is known:
    camera_fx_px: float = 0.0          # focal length from camera_info's K (0: use horizontal_fov_rad)
    camera_cx_px: float = 0.0          # principal point x from camera_info's K
    camera_width_px: int = 0           # width of the images camera_info describes (rescaled to frames)
    face_width_m: float = 0.15         # typical width of a detected face box
    approach_distance_m: float = 2.0   # closer than this (and growing, centred) = approaching
    approach_growth: float = 1.15      # face width growth over the window
    approach_window: int = 10          # observations compared for growth
    approach_max_bearing_rad: float = 0.35
    keep_encodings: int = 5            # recent encodings a track keeps (for enrolment)
    same_person_max: float = 0.6       # a track whose new encoding is further than this from its
                                       # last one is a different person in the same place: split


@dataclass
class Identity:
    customer_id: str
    name: str
    vip: bool
    confidence: float


@dataclass
class Track:
    track_id: int
    box: Box
    created_frame: int
    hits: int = 1
    missed: int = 0
    last_seen_s: float | None = None
    last_encoded: int = -10 ** 9
    widths: deque = field(default_factory=lambda: deque(maxlen=30))
    encodings: deque = field(default_factory=deque)
    votes: Counter = field(default_factory=Counter)
    evidence: deque = field(default_factory=deque)      # last encodings behind the mean
    vote_distances: dict = field(default_factory=dict)
    identity: Identity | None = None
    announced: bool = False
    approached: bool = False
    distance_m: float = 0.0
    bearing_rad: float = 0.0
    face_crop: tuple | None = None     # (BGR crop, box in it) of the widest face encoded (for enrolment)

    @property
    def seen_now(self) -> bool:
        return self.missed == 0


def walk_in_rows(model, face_crop: tuple | None) -> np.ndarray | None:
    """The walk-in row (1, 128) of a track's kept face (`Track.face_crop`) for an enrolment at the
    robot, as `retailbot faces enroll` adds one per photo; None without a kept face, with walk-in
    rows off (face_model.WALK_IN_WIDTHS empty) or with a model that cannot make one."""
    from retail_perception import face_model
    make = getattr(model, 'walk_in_encoding', None)
    if face_crop is None or make is None or not face_model.WALK_IN_WIDTHS:
        return None
    crop, box = face_crop
    return np.asarray(make(crop, box), np.float32).reshape(1, -1)


@dataclass(frozen=True)
class FaceEvent:
    kind: str
    track_id: int
    box: Box
    distance_m: float
    bearing_rad: float
    customer_id: str = ''
    name: str = ''
    vip: bool = False
    confidence: float = 0.0
    frame: int = -1                    # index of the frame that caused the event (0 = first)


MIN_FRAME_SIDE = 16      # a frame narrower or lower than this holds no face (and the detector cannot read it)


class Detector(Protocol):
    def detect(self, rgb: np.ndarray, scale: float = 1.0) -> list[Box]: ...
    def encode(self, rgb: np.ndarray, boxes: list[Box]) -> np.ndarray: ...


def identify_rule(config: PipelineConfig, width_px: float) -> tuple[float, float, int, int]:
    """(threshold, margin, evidence frames, encodings needed) that decide on a face `width_px` wide;
    evidence frames 0: too small to be encoded or named (narrower than `min_identify_px`)."""
    if not config.identify or width_px < config.min_identify_px:
        return config.match_threshold, config.match_margin, 0, 0
    frames, votes = config.evidence_frames, max(1, config.votes_needed)
    if width_px < config.small_face_px:
        if config.small_face_evidence_frames > 0:
            frames = config.small_face_evidence_frames
            votes = max(votes, frames)
        return (config.small_face_threshold or config.match_threshold,
                config.small_face_margin or config.match_margin, frames, votes)
    return config.match_threshold, config.match_margin, frames, votes


def focal_length_px(image_width: int, horizontal_fov_rad: float) -> float:
    return (image_width / 2.0) / math.tan(horizontal_fov_rad / 2.0)


def camera_intrinsics(image_width: int, config: PipelineConfig) -> tuple[float, float]:
    """(fx, cx) in pixels of a frame `image_width` wide: from the calibration (camera_info's K,
    rescaled when frames are resized) when known, else from the assumed horizontal field of view."""
    if config.camera_fx_px > 0 and config.camera_width_px > 0:
        ratio = image_width / config.camera_width_px
        cx = config.camera_cx_px if config.camera_cx_px > 0 else config.camera_width_px / 2.0
        return config.camera_fx_px * ratio, cx * ratio
    return focal_length_px(image_width, config.horizontal_fov_rad), image_width / 2.0


def face_distance_m(box: Box, image_width: int, config: PipelineConfig) -> float:
    """Pinhole estimate: a face of known width covering `width` pixels."""
    width = max(1, box[1] - box[3])
    return config.face_width_m * camera_intrinsics(image_width, config)[0] / width


def face_bearing_rad(box: Box, image_width: int, config: PipelineConfig) -> float:
    """Angle of the face centre from the optical axis, positive to the robot's left (REP-103)."""
    centre_x = (box[1] + box[3]) / 2.0
    fx, cx = camera_intrinsics(image_width, config)
    return math.atan2(cx - centre_x, fx)


def iou(a: Box, b: Box) -> float:
    top, right, bottom, left = max(a[0], b[0]), min(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])
    inter = max(0, right - left) * max(0, bottom - top)
    area = lambda x: max(0, x[1] - x[3]) * max(0, x[2] - x[0])  # noqa: E731
    union = area(a) + area(b) - inter
    return inter / union if union else 0.0


class FacePipeline:
    """Feed frames in order with `process`; get the live tracks and the events they caused."""

    def __init__(self, model: Detector, gallery_source: Callable[[], Gallery] | Gallery | None,
                 config: PipelineConfig = PipelineConfig()):
        self.model = model
        self.config = config
        self._gallery_source = gallery_source
        self.tracks: dict[int, Track] = {}
        self.frame_index = -1
        self._next_id = 1
        self._pending_events: list[FaceEvent] = []
        self.last_boxes: list[Box] = []    # the boxes detected in the last frame processed

    def gallery(self) -> Gallery | None:
        source = self._gallery_source
        return source() if callable(source) else source

    def process(self, frame_bgr: np.ndarray, now_s: float | None = None) -> list[FaceEvent]:
        """Run one frame through detection, tracking, identification; return its events.

        `now_s` (a monotonic time of the frame) enables the `max_missed_s` rule."""
        self.frame_index += 1
        self._pending_events = []
        if frame_bgr.ndim != 3 or min(frame_bgr.shape[:2]) < MIN_FRAME_SIDE:
            rgb, boxes = np.zeros((MIN_FRAME_SIDE, MIN_FRAME_SIDE, 3), np.uint8), []   # no face: tracks age as usual
        else:
            rgb = to_rgb(frame_bgr)
            boxes = self._detect(rgb)
        width = rgb.shape[1]
        self.last_boxes = boxes
        self._associate(boxes)
        for track in self.tracks.values():
            if track.seen_now:
                track.last_seen_s = now_s
                track.distance_m = face_distance_m(track.box, width, self.config)
                track.bearing_rad = face_bearing_rad(track.box, width, self.config)
        if self.config.identify:
            self._identify(rgb)
        events: list[FaceEvent] = []
        for track in list(self.tracks.values()):
            if self._gone(track, now_s):
                del self.tracks[track.track_id]
                if track.announced:
                    events.append(self._event(LEFT, track))
                continue
            if not track.seen_now:
                continue
            if not track.announced and track.hits >= self.config.min_hits:
                track.announced = True
                events.append(self._event(APPEARED, track))
                if track.identity is not None:
                    events.append(self._event(IDENTIFIED, track))
            if track.announced and not track.approached and self._is_approaching(track):
                track.approached = True
                events.append(self._event(APPROACHING, track))
        return self._pending_events + events

    def _detect(self, rgb: np.ndarray) -> list[Box]:
        """The whole frame every `full_detect_every` frames (or when nobody is being followed),
        else only the regions around the live tracks, their boxes mapped back to the frame."""
        scale = self.config.detect_scale or getattr(self.model, 'default_scale', 1.0)
        every = max(1, self.config.full_detect_every)
        if every == 1 or self.frame_index % every == 0 or not self.tracks:
            return self.model.detect(rgb, scale)
        found: list[Box] = []
        for region in self._regions(rgb.shape):
            top, right, bottom, left = region
            for t, r, b, lft in self.model.detect(np.ascontiguousarray(rgb[top:bottom, left:right]), scale):
                box = (t + top, r + left, b + top, lft + left)
                if all(iou(box, other) < 0.5 for other in found):
                    found.append(box)
        return found

    def _regions(self, shape: tuple[int, ...]) -> list[Box]:
        """Regions around live tracks, overlapping ones merged (one search per region)."""
        h, w = shape[:2]
        regions: list[list[int]] = []
        for track in self.tracks.values():
            top, right, bottom, left = track.box
            pad = max(self.config.roi_min_px, int(self.config.roi_margin * max(1, right - left)))
            box = [max(0, top - pad), min(w, right + pad), min(h, bottom + pad), max(0, left - pad)]
            for other in regions:
                if box[3] < other[1] and other[3] < box[1] and box[0] < other[2] and other[0] < box[2]:
                    other[:] = [min(box[0], other[0]), max(box[1], other[1]),
                                max(box[2], other[2]), min(box[3], other[3])]
                    break
            else:
                regions.append(box)
        return [(r[0], r[1], r[2], r[3]) for r in regions if r[1] > r[3] and r[2] > r[0]]

    def _gone(self, track: Track, now_s: float | None) -> bool:
        if track.missed > self.config.max_missed:
            return True
        timed = self.config.max_missed_s > 0 and now_s is not None and track.last_seen_s is not None
        return timed and track.missed >= 2 and now_s - track.last_seen_s > self.config.max_missed_s

    def flush(self) -> list[FaceEvent]:
        """End of stream: every announced track leaves."""
        events = [self._event(LEFT, t) for t in self.tracks.values() if t.announced]
        self.tracks.clear()
        return events

    # --- tracking ------------------------------------------------------------------------------
    def _associate(self, boxes: list[Box]) -> None:
        pairs = sorted(((iou(t.box, b), tid, i) for tid, t in self.tracks.items()
                        for i, b in enumerate(boxes)), reverse=True)
        used_tracks: set[int] = set()
        used_boxes: set[int] = set()
        for overlap, tid, i in pairs:
            if overlap < self.config.min_iou or tid in used_tracks or i in used_boxes:
                continue
            used_tracks.add(tid)
            used_boxes.add(i)
            track = self.tracks[tid]
            if self._jumped(track.box, boxes[i]):
                track.last_encoded = -10 ** 9
            track.box, track.missed = boxes[i], 0
            track.hits += 1
            track.widths.append(boxes[i][1] - boxes[i][3])
        for tid, track in self.tracks.items():
            if tid not in used_tracks:
                track.missed += 1
        for i, box in enumerate(boxes):
            if i not in used_boxes:
                self._new_track(box)

    def _split(self, track: Track) -> Track:
        """Someone else now stands where `track` was: it leaves, a new track starts here."""
        del self.tracks[track.track_id]
        if track.announced:
            self._pending_events.append(self._event(LEFT, track))
        successor = self._new_track(track.box)
        successor.distance_m, successor.bearing_rad = track.distance_m, track.bearing_rad
        return successor

    def _new_track(self, box: Box) -> Track:
        track = Track(self._next_id, box, self.frame_index, encodings=deque(maxlen=self.config.keep_encodings))
        track.widths.append(box[1] - box[3])
        self.tracks[track.track_id] = track
        self._next_id += 1
        return track

    def _jumped(self, old: Box, new: Box) -> bool:
        old_width, new_width = max(1, old[1] - old[3]), max(1, new[1] - new[3])
        shift = abs((old[1] + old[3]) - (new[1] + new[3])) / 2 + abs((old[0] + old[2]) - (new[0] + new[2])) / 2
        return (max(new_width / old_width, old_width / new_width) >= self.config.jump_ratio
                or shift > 0.5 * old_width)

    # --- identification ------------------------------------------------------------------------
    def _due(self, track: Track) -> bool:
        if track.box[1] - track.box[3] < self.config.min_identify_px:
            return False
        every = self.config.refresh_every if track.identity else self.config.encode_every_unknown
        return track.seen_now and self.frame_index - track.last_encoded >= every

    def _identify(self, rgb: np.ndarray) -> None:
        due = [t for t in self.tracks.values() if self._due(t)]
        if not due:
            return
        encodings = self.model.encode(rgb, [t.box for t in due])
        gallery = self.gallery()
        for track, encoding in zip(due, encodings):
            if track.encodings and np.linalg.norm(track.encodings[-1] - encoding) > self.config.same_person_max:
                track = self._split(track)
            track.last_encoded = self.frame_index
            track.encodings.append(encoding)
            self._keep_crop(track, rgb)
            if gallery is None or not len(gallery):
                continue
            if self.config.evidence_frames > 0:
                self._accumulate(track, encoding, gallery)
                continue
            match = gallery.search(encoding, self.config.match_threshold, self.config.match_margin)
            self._vote(track, match, gallery)

    def _keep_crop(self, track: Track, rgb: np.ndarray) -> None:
        """Keep (in memory, while the track lasts) the widest face encoded so far with a face
        width of context: an enrolment at the robot derives its walk-in row from it
        (face_model.walk_in_encoding). Never written anywhere."""
        if self.config.keep_encodings <= 0:
            return
        top, right, bottom, left = track.box
        width = right - left
        if track.face_crop is not None and width <= track.face_crop[1][1] - track.face_crop[1][3]:
            return
        h, w = rgb.shape[:2]
        y0, x0 = max(0, top - width), max(0, left - width)
        y1, x1 = min(h, bottom + width), min(w, right + width)
        crop = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2BGR)
        track.face_crop = (crop, (top - y0, right - x0, bottom - y0, left - x0))

    def _accumulate(self, track: Track, encoding: np.ndarray, gallery: Gallery) -> None:
        """Name the track from the mean of its last encodings: one frame's noise (blur, a turned
        head, a few pixels of a far face) is averaged out instead of voted on, and the same
        threshold and margin decide on the mean."""
        keep = max(self.config.evidence_frames, self.config.small_face_evidence_frames)
        if track.evidence.maxlen != keep:
            track.evidence = deque(track.evidence, maxlen=keep)
        track.evidence.append(encoding)
        threshold, margin, frames, votes = identify_rule(self.config, track.box[1] - track.box[3])
        if frames <= 0 or len(track.evidence) < votes:
            return
        mean = np.mean(np.stack(list(track.evidence)[-frames:]), axis=0)
        match = gallery.search(mean, threshold, margin)
        if match.customer_id is None or match.customer_id not in gallery.members:
            return
        confidence = max(0.0, min(1.0, 1.0 - match.distance / (2 * self.config.match_threshold)))
        member = gallery.members[match.customer_id]
        changed = track.identity is None or track.identity.customer_id != match.customer_id
        track.identity = Identity(match.customer_id, member.name, member.vip, confidence)
        if changed and track.announced:
            self._pending_events.append(self._event(IDENTIFIED, track))

    def _vote(self, track: Track, match: Match, gallery: Gallery) -> None:
        if match.customer_id is None:
            return
        cid = match.customer_id
        track.votes[cid] += 1
        track.vote_distances.setdefault(cid, deque(maxlen=5)).append(match.distance)
        leader, count = track.votes.most_common(1)[0]
        others = sum(track.votes.values()) - count
        if count < self.config.votes_needed or count <= others or leader not in gallery.members:
            return
        mean_distance = float(np.mean(track.vote_distances[leader]))
        confidence = max(0.0, min(1.0, 1.0 - mean_distance / (2 * self.config.match_threshold)))
        member = gallery.members[leader]
        changed = track.identity is None or track.identity.customer_id != leader
        track.identity = Identity(leader, member.name, member.vip, confidence)
        if changed and track.announced:
            self._pending_events.append(self._event(IDENTIFIED, track))

    # --- approach ------------------------------------------------------------------------------
    def _is_approaching(self, track: Track) -> bool:
        window = self.config.approach_window
        if len(track.widths) < window:
            return False
        recent = list(track.widths)[-window:]
        grown = np.mean(recent[-3:]) / max(1.0, np.mean(recent[:3]))
        return (grown >= self.config.approach_growth
                and track.distance_m <= self.config.approach_distance_m
                and abs(track.bearing_rad) <= self.config.approach_max_bearing_rad)

    def _event(self, kind: str, track: Track) -> FaceEvent:
        identity = track.identity
        return FaceEvent(kind, track.track_id, track.box, track.distance_m, track.bearing_rad,
                         *(() if identity is None else
                           (identity.customer_id, identity.name, identity.vip, identity.confidence)),
                         frame=self.frame_index)
