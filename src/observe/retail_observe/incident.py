"""The incident ring buffer: what the robot saw the minute before and after an incident. Pure.

The buffer keeps the last `before_s` of messages (CDR bytes, bounded in bytes too: the oldest go
first). `trigger(reason, t)` opens an incident; messages keep coming until `t + after_s`, then
`poll` hands back the incident (its messages from `t - before_s` to `t + after_s`) for the writer.
Triggers during an open incident are added to its reasons; they do not extend it (bounded).
`incident_reason` tells which messages are incidents: a bumper/cliff/wheel-drop on the base's
safety state, localisation turning `lost`, a staff call, a collision-monitor stop.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

NS = 1_000_000_000


@dataclass
class Incident:
    reasons: list[str]
    at_ns: int
    start_ns: int
    end_ns: int
    messages: list[tuple[str, bytes, int]] = field(default_factory=list)  # (topic, cdr, log time)


class IncidentBuffer:
    def __init__(self, before_s: float = 60.0, after_s: float = 60.0, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.before_ns = int(before_s * NS)
        self.after_ns = int(after_s * NS)
        self.max_bytes = max_bytes
        self.ring: deque[tuple[str, bytes, int]] = deque()
        self.bytes = 0
        self.dropped = 0  # messages pushed out by the byte bound (not by age)
        self.open: Incident | None = None

    def add(self, topic: str, data: bytes, t_ns: int) -> None:
        self.ring.append((topic, data, t_ns))
        self.bytes += len(data)
        keep_from = self.open.start_ns if self.open else t_ns - self.before_ns
        while self.ring and (self.ring[0][2] < keep_from or self.bytes > self.max_bytes):
            _, old, old_t = self.ring.popleft()
            self.bytes -= len(old)
            if old_t >= keep_from:
                self.dropped += 1

    def trigger(self, reason: str, t_ns: int) -> None:
        if self.open is not None:
            if reason not in self.open.reasons:
                self.open.reasons.append(reason)
            return
        self.open = Incident([reason], t_ns, t_ns - self.before_ns, t_ns + self.after_ns)

    def poll(self, now_ns: int) -> Incident | None:
        """The finished incident once its minute after has passed (then the ring goes on)."""
        if self.open is None or now_ns < self.open.end_ns:
            return None
        incident, self.open = self.open, None
        incident.messages = [m for m in self.ring if incident.start_ns <= m[2] <= incident.end_ns]
        while self.ring and self.ring[0][2] < now_ns - self.before_ns:
            self.bytes -= len(self.ring.popleft()[1])
        return incident


class IncidentDetector:
    """Edges, not levels: a bumper held pressed or a robot that stays lost is one incident."""

    def __init__(self) -> None:
        self.last: dict[str, bool] = {}

    def edge(self, kind: str, active: bool) -> bool:
        rising = active and not self.last.get(kind, False)
        self.last[kind] = active
        return rising

    def safety(self, bumper: bool, cliff: bool, wheel_drop: bool) -> list[str]:
        return [
            kind
            for kind, on in (('bumper', bumper), ('cliff', cliff), ('wheel drop', wheel_drop))
            if self.edge(kind, on)
        ]

    def localisation(self, state: str) -> list[str]:
        return ['lost'] if self.edge('lost', state == 'lost') else []

    def collision_stop(self, stopped: bool) -> list[str]:
        return ['collision-monitor stop'] if self.edge('collision stop', stopped) else []

    @staticmethod
    def staff_call() -> list[str]:
        return ['staff call']
