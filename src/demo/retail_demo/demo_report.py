"""What the demo leaves behind for people: the transcript, summary.json and the path picture.

Pure (no rclpy): the demo hands over what it recorded; this module only words and draws it.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from retail_navigation.frames import transform_point


class Transcript:
    """Who said or did what, when: printed as it happens and kept for transcript.txt."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self.start = time.monotonic()
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def say(self, who: str, text: str) -> None:
        line = f'[{time.monotonic() - self.start:6.1f} s] {who}: {text}'
        with self._lock:
            self.lines.append(line)
            self.out.write(line + '\n')
            self.out.flush()

    def section(self, title: str) -> None:
        with self._lock:
            self.lines.append(f'\n== {title} ==')
            self.out.write(f'\n== {title} ==\n')
            self.out.flush()

    def write(self, path: Path) -> None:
        path.write_text('\n'.join(self.lines) + '\n', encoding='utf-8')


@dataclass
class Expectations:
    """The scenario's checks: each one held or not, with what was seen."""

    wording: dict[str, str]
    results: dict[str, tuple[bool, str]] = field(default_factory=dict)

    def check(self, key: str, ok: bool, detail: str = '') -> bool:
        self.results[key] = (bool(ok), detail)
        return bool(ok)

    def failed(self) -> list[str]:
        """Plain-words lines for every expectation that did not hold (unchecked ones included)."""
        out = []
        for key, words in self.wording.items():
            ok, detail = self.results.get(key, (False, 'not reached'))
            if not ok:
                out.append(f'NOT MET: {words}' + (f' — {detail}' if detail else ''))
        return out

    def to_json(self) -> list[dict]:
        return [
            {
                'name': key,
                'expectation': words,
                'ok': self.results.get(key, (False, ''))[0],
                'detail': self.results.get(key, (False, 'not reached'))[1],
            }
            for key, words in self.wording.items()
        ]


def compose(origin: tuple[float, float, float], x: float, y: float) -> tuple[float, float]:
    """A point of the odometry frame in the map, odometry having started at `origin` (map pose)."""
    return transform_point(origin, (x, y))


def localisation_error_max(
    truth: list[tuple[float, float, float]], believed: list[tuple[float, float, float]]
) -> float | None:
    """Largest distance [m] between a believed pose (t, x, y) and the ground truth (t, x, y) nearest
    in time (within 0.1 s); None without pairs. Both lists in time order (ROS stamps, seconds)."""
    if not truth or not believed:
        return None
    import bisect

    times = [t for t, _, _ in truth]
    worst = None
    for t, x, y in believed:
        k = bisect.bisect_left(times, t)
        near = min((c for c in (k - 1, k) if 0 <= c < len(times)), key=lambda c: abs(times[c] - t))
        if abs(times[near] - t) > 0.1:
            continue
        error = math.hypot(truth[near][1] - x, truth[near][2] - y)
        worst = error if worst is None else max(worst, error)
    return worst


def write_summary(path: Path, summary: dict) -> None:
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + '\n', encoding='utf-8')
    tmp.replace(path)


def draw_path(
    path: Path,
    store_dir: Path,
    driven: list[tuple[float, float]],
    visited: list[str],
    met: list[tuple[str, float, float]],
    truth: list[tuple[float, float]] | None = None,
) -> str:
    """Store map + driven path (what the robot believed) + zones visited + where customers were met,
    and in simulation the ground truth (`truth`, map frame) under it; '' or why not drawn."""
    try:
        import cv2

        from retail_navigation.map_render import render_map, write_png
        from retail_navigation.maps import load_map
        from retail_navigation.zones import load_zones_store
    except ImportError as exc:
        return f'navigation map rendering not available ({exc})'
    store_map = load_map(store_dir / 'map.yaml')
    zones = load_zones_store(store_dir / 'zones.yaml')
    scale = max(1, min(4, -(-1200 // max(store_map.width, 1))))
    image = render_map(store_map, zones, driven, scale=scale)

    def pixel(x: float, y: float) -> tuple[int, int]:
        i, j = store_map.world_to_cell(x, y)
        return int((i + 0.5) * scale), int((store_map.height - 1 - j + 0.5) * scale)

    if truth and len(truth) > 1:
        import numpy as np

        cv2.polylines(
            image, [np.array([pixel(x, y) for x, y in truth], dtype=np.int32)], False, (60, 60, 60), 1, cv2.LINE_AA
        )

    for zone_id in dict.fromkeys(visited):
        zone = zones.zones.get(zone_id)
        if zone is not None:
            cv2.circle(image, pixel(zone.pose[0], zone.pose[1]), 12 * scale // 2, (0, 170, 0), 2, cv2.LINE_AA)
    spots: dict[tuple[int, int], list[str]] = {}  # customers met at the same spot share one label
    for label, x, y in met:
        labels = spots.setdefault(pixel(round(x * 2) / 2, round(y * 2) / 2), [])
        if label not in labels:
            labels.append(label)
    for centre, labels in spots.items():
        cv2.drawMarker(image, centre, (0, 0, 200), cv2.MARKER_STAR, 10 * scale // 2, 2, cv2.LINE_AA)
        cv2.putText(
            image,
            ', '.join(labels),
            (centre[0] + 6, centre[1] + 14),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.3 * scale,
            (0, 0, 200),
            1,
            cv2.LINE_AA,
        )
    image = cv2.copyMakeBorder(image, 0, 14 * scale, 0, 0, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    cv2.putText(
        image,
        'blue: driven path'
        + ('  grey: ground truth' if truth else '')
        + '  green rings: zones visited  red stars: customers met',
        (10, image.shape[0] - 4 * scale),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.35 * scale,
        (40, 40, 40),
        1,
        cv2.LINE_AA,
    )
    write_png(path, image)
    return ''
