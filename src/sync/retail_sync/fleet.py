"""The fleet contract between a robot and the platform (pure: no rclpy, no HTTP), and the robot's
heartbeat core.

Wire types (one declared, versioned model each; the platform validates with the same models):
  Heartbeat v1      robot -> platform, every `period_s` and on change: health summary
  StaffCall v1      robot -> platform: a customer (or the robot) needs a member of staff
  StaffMessage v1   platform -> robot: staff's answer or words for the robot to speak
  DesiredState v1   platform -> robot: versioned content and settings for a group of robots

`HeartbeatCore` folds the robot's diagnostics (`/diagnostics`, the same statuses its console
shows) into a Heartbeat and says when one is due: every period, and at once when the summary
changes (a level, the safety stop, localisation lost), at most once per `min_gap_s`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

HEARTBEAT_VERSION = 1
Level = Literal['ok', 'warn', 'error', 'stale', 'unknown']
LEVEL_RANK = {'ok': 0, 'unknown': 1, 'warn': 1, 'stale': 2, 'error': 2}
ShortText = Annotated[str, StringConstraints(max_length=300, pattern=r'^[^\x00]*$')]
Version = Annotated[str, StringConstraints(max_length=64, pattern=r'^[^\x00]*$')]
Seconds = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]
PARTS = ('base', 'localisation', 'sync', 'speech', 'camera')


class _Strict(BaseModel):
    model_config = ConfigDict(extra='forbid', frozen=True)


class Part(_Strict):
    level: Level = 'unknown'
    message: ShortText = ''


class Heartbeat(_Strict):
    """A robot's health summary. Ages are measured on the robot (no clock agreement needed)."""
    version: Literal[1] = HEARTBEAT_VERSION
    period_s: float = Field(ge=1, le=3600, allow_inf_nan=False,
                            description='the next heartbeat comes within this many seconds')
    software_version: Version = ''
    base: Part = Part()
    localisation: Part = Part()
    sync: Part = Part()
    speech: Part = Part()
    camera: Part = Part()
    safety_stop: bool = False
    safety_stop_age_s: Seconds = Field(0, description='how long the safety stop has held')
    localisation_lost: bool = False
    sync_backlog: int = Field(0, ge=0, le=10 ** 12)
    sync_oldest_s: Seconds = Field(0, description='age of the oldest event waiting to upload')
    battery_percent: float | None = Field(None, ge=0, le=100, allow_inf_nan=False)
    disk_free_fraction: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    desired_version: int = Field(0, ge=0, le=2 ** 31 - 1, description='desired state in use (0: none)')
    desired_error: ShortText = Field('', description='why the last desired state was refused')

    def summary(self) -> tuple:
        """What a change of means a heartbeat now (not ages, backlog counts or battery)."""
        return (tuple(getattr(self, p).level for p in PARTS), self.safety_stop,
                self.localisation_lost, self.desired_version, self.desired_error,
                self.software_version, (self.disk_free_fraction or 1) < 0.05)


class HeartbeatAnswer(BaseModel):
    state: Literal['ok', 'degraded']
    desired_version: int = Field(description='the desired state this robot should run (0: none)')
    messages: int = Field(description='staff messages waiting for the robot')


# --- staff help ---------------------------------------------------------------------------------
class StaffCall(_Strict):
    """A staff request raised at the robot (retail_interfaces/StaffRequest, in the store's words)."""
    version: Literal[1] = 1
    call_id: Annotated[str, StringConstraints(min_length=1, max_length=128,
                                              pattern=r'^[A-Za-z0-9._:-]+$')]
    reason: Annotated[str, StringConstraints(max_length=48, pattern=r'^[a-z0-9_]*$')]
    wanted: ShortText = Field('', description='what the customer wanted, in their words')
    product: ShortText = ''
    zone: Annotated[str, StringConstraints(max_length=128, pattern=r'^[^\x00]*$')] = ''
    x: float | None = Field(None, ge=-1e5, le=1e5, allow_inf_nan=False)
    y: float | None = Field(None, ge=-1e5, le=1e5, allow_inf_nan=False)
    language: Literal['zh', 'en', ''] = ''


class StaffReply(_Strict):
    """Staff's answer to a call: `answer` (e.g. "coming in 2 minutes") or `say` (words typed by
    staff that the robot speaks as staff's)."""
    kind: Literal['answer', 'say']
    text: Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=r'^[^\x00]*$')]


class StaffMessage(_Strict):
    version: Literal[1] = 1
    id: int
    call_id: str
    kind: Literal['answer', 'say']
    text: str
    language: str = ''
    by: str = ''


# --- desired state ------------------------------------------------------------------------------
# The robot's own rules for the content and live parameters a rollout may set: the model is the
# rule set (bounds, patterns, unknown keys refused), the same on the platform and the robot.
MAX_DESIRED_ITEMS = 500
HOURS = r'^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$'
ZoneId = Annotated[str, StringConstraints(min_length=1, max_length=128,
                                          pattern=r'^[^\x00-\x20\x7f]+$')]   # no spaces or controls


def _bounded(low: float, high: float, words: str):
    return Field(None, ge=low, le=high, allow_inf_nan=False, description=words)


class Promotion(_Strict):
    sku: ZoneId
    text: ShortText = ''
    discount: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)


class TourSpec(_Strict):
    name: ShortText
    stops: list[ZoneId] = Field(min_length=1, max_length=50, description='zone ids, in order')


class Content(_Strict):
    promotions: list[Promotion] = Field(default_factory=list, max_length=MAX_DESIRED_ITEMS)
    tours: list[TourSpec] = Field(default_factory=list, max_length=MAX_DESIRED_ITEMS)
    greetings: list[ShortText] = Field(default_factory=list, max_length=MAX_DESIRED_ITEMS)


class Settings(_Strict):
    """Live parameters (absent: the robot's own file decides)."""
    max_speed_mps: float | None = _bounded(0.05, 1.2, 'base speed limit')
    near_people_speed_mps: float | None = _bounded(0.05, 0.6, 'speed near people')
    safety_distance_m: float | None = _bounded(0.2, 2.0, 'stop distance ahead')
    greeting_distance_m: float | None = _bounded(0.3, 5.0, 'greet people nearer than this')
    volume: float | None = _bounded(0.0, 1.0, 'speech volume')
    opening_hours: str | None = Field(None, pattern=HOURS, description='HH:MM-HH:MM')


class DesiredState(_Strict):
    """Content and settings for a group of robots, at a version the platform numbers."""
    version: Literal[1] = 1
    content: Content = Content()
    settings: Settings = Settings()


def check_desired(raw: bytes | str) -> tuple[DesiredState | None, str]:
    """(the document, '') or (None, one line naming the key) — a document with any problem is
    refused whole."""
    try:
        return DesiredState.model_validate_json(raw), ''
    except ValidationError as exc:
        first = exc.errors()[0]
        where = '.'.join(str(part) for part in first.get('loc', ())) or 'document'
        return None, f'{where}: {first.get("msg")}'


# --- the robot's heartbeat core -------------------------------------------------------------------
PART_OF = (('navigation/base', 'base'), ('navigation/localization', 'localisation'),
           ('navigation/collision_monitor', 'base'), ('sync', 'sync'), ('dialogue', 'speech'),
           ('perception', 'camera'))
DIAG_LEVEL = {0: 'ok', 1: 'warn', 2: 'error', 3: 'stale'}


@dataclass
class HeartbeatCore:
    """Keeps the latest diagnostics per part and decides when to send a heartbeat."""
    period_s: float = 10.0
    software_version: str = ''
    min_gap_s: float = 1.0
    parts: dict[str, Part] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    safety_since: float | None = None
    battery_percent: float | None = None
    disk_free_fraction: float | None = None
    desired_version: int = 0
    desired_error: str = ''
    _last_sent: float | None = None
    _last_summary: tuple | None = None

    def on_status(self, name: str, level: int, message: str, values: dict[str, str],
                  now: float) -> None:
        part = next((p for prefix, p in PART_OF if name.startswith(prefix)), None)
        if part is None:
            return
        new = Part(level=DIAG_LEVEL.get(int(level), 'unknown'), message=message[:300])
        old = self.parts.get(part)
        # several statuses fold into one part: the worst of this round wins
        if old is None or name.startswith(('navigation/base', 'navigation/localization')) or \
                LEVEL_RANK[new.level] >= LEVEL_RANK[old.level]:
            self.parts[part] = new
        self.values[name.split(':')[0].strip()] = dict(values)

    def on_safety(self, latched: bool, now: float) -> None:
        """The base's latched safety stop (retail_interfaces/BaseSafety.latched)."""
        if latched and self.safety_since is None:
            self.safety_since = now
        elif not latched:
            self.safety_since = None

    def on_battery(self, fraction: float) -> None:
        """sensor_msgs/BatteryState.percentage (0..1; NaN: unknown)."""
        self.battery_percent = round(fraction * 100, 1) if math.isfinite(fraction) and \
            0 <= fraction <= 1 else None

    def heartbeat(self, now: float) -> Heartbeat:
        sync = self.values.get('sync', {})
        loc = self.values.get('navigation/localization', {})
        return Heartbeat(
            period_s=self.period_s, software_version=self.software_version[:64],
            **{p: self.parts.get(p, Part()) for p in PARTS},
            safety_stop=self.safety_since is not None,
            safety_stop_age_s=max(0.0, now - self.safety_since) if self.safety_since else 0.0,
            localisation_lost=loc.get('state') == 'lost',
            sync_backlog=_int(sync.get('backlog')), sync_oldest_s=_float(sync.get('oldest_pending_s')),
            battery_percent=self.battery_percent, disk_free_fraction=self.disk_free_fraction,
            desired_version=self.desired_version, desired_error=self.desired_error[:300])

    def due(self, now: float) -> Heartbeat | None:
        """The heartbeat to send now, or None: a period passed, or the summary changed."""
        beat = self.heartbeat(now)
        changed = beat.summary() != self._last_summary
        if self._last_sent is not None:
            gap = now - self._last_sent
            if gap < self.min_gap_s or (not changed and gap < self.period_s):
                return None
        return beat

    def sent(self, beat: Heartbeat, now: float) -> None:
        self._last_sent = now
        self._last_summary = beat.summary()


def _int(value: Any) -> int:
    try:
        return max(0, min(int(float(value)), 10 ** 12))
    except (TypeError, ValueError, OverflowError):
        return 0


def _float(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return min(max(number, 0.0), 1e9) if math.isfinite(number) else 0.0
