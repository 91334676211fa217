"""The robot's health board: the latest diagnostic of every part, and what changed.

Technicians read the robot's state from one place: the health node logs each change in plain
words ("navigation/base: serial link lost") and publishes a one-line summary. Pure: no rclpy.
"""
from __future__ import annotations

from dataclasses import dataclass

OK, WARN, ERROR, STALE = 0, 1, 2, 3
LEVEL_NAMES = {OK: 'OK', WARN: 'WARNING', ERROR: 'ERROR', STALE: 'STALE'}


@dataclass
class PartStatus:
    name: str
    level: int
    message: str
    seen_at: float


class HealthBoard:
    """Latest status per part; parts silent for `stale_after_s` count as stale."""

    def __init__(self, stale_after_s: float = 5.0):
        self.stale_after_s = stale_after_s
        self.parts: dict[str, PartStatus] = {}

    def update(self, name: str, level: int, message: str, now: float) -> str | None:
        """Record a status; returns a log line when the part's level changed (or it is new)."""
        previous = self.parts.get(name)
        self.parts[name] = PartStatus(name, level, message, now)
        if previous is None:
            return f'{name}: {LEVEL_NAMES.get(level, level)} ({message})' if level != OK else f'{name}: up'
        if previous.level != level:
            return f'{name}: {LEVEL_NAMES.get(previous.level)} -> {LEVEL_NAMES.get(level, level)} ({message})'
        return None

    def stale(self, now: float) -> list[str]:
        return sorted(n for n, p in self.parts.items() if now - p.seen_at > self.stale_after_s)

    def summary(self, now: float) -> tuple[int, str]:
        """Overall level and a one-line summary."""
        stale = set(self.stale(now))
        if not self.parts:
            return OK, 'no parts reporting yet'
        worst = max((STALE if n in stale else p.level) for n, p in self.parts.items())
        problems = [f'{n} {LEVEL_NAMES[STALE if n in stale else p.level].lower()}'
                    for n, p in sorted(self.parts.items()) if n in stale or p.level != OK]
        if not problems:
            return OK, f'all {len(self.parts)} parts OK'
        return min(worst, ERROR), f'{len(problems)} of {len(self.parts)} parts need attention: ' + ', '.join(problems)
