"""The fleet contract between a robot and the platform (pure: no rclpy, no HTTP), and the robot's
heartbeat core.

Wire types (one declared, versioned model each; the platform validates with the same models):
  Heartbeat v4      robot -> platform, every `period_s` and on change: health summary (v2 adds
                    `desired_refused`, the desired version its `desired_error` is about; v1 is
                    still accepted: its refused version is read from the error's `v<N>:` prefix;
                    v3 adds `boot_id`/`seq`; v4 adds `opening_hours`, the store's hours in effect
                    on the robot, which the platform's funnel counts availability against;
                    every older version is still accepted, without it)
  StaffCall v1      robot -> platform: a customer (or the robot) needs a member of staff
  StaffMessage v1   platform -> robot: staff's answer or words for the robot to speak
  DesiredState v1   platform -> robot: versioned content and settings for a group of robots;
                    its version number is chain-wide (unique across groups, ETag "v<N>"), so
                    the number a robot reports names one document

`HeartbeatCore` folds the robot's diagnostics (`/diagnostics`, the same statuses its console
shows) into a Heartbeat and says when one is due: every period, and at once when the summary
changes (a level, the safety stop, localisation lost), at most once per `min_gap_s`.
"""
from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (BaseModel, ConfigDict, Field, StringConstraints, ValidationError,
                      field_validator, model_validator)

from retail_common.greetings import AUDIENCES, placeholder_problem
from retail_common.hours import HoursError, parse_hours

HEARTBEAT_VERSION = 4
REFUSED_PREFIX = re.compile(r'v([0-9]{1,10}):')     # a v1 heartbeat's 'v<N>: why'
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
    version: Literal[1, 2, 3, 4] = HEARTBEAT_VERSION
    boot_id: Annotated[str, StringConstraints(max_length=64, pattern=r'^[A-Za-z0-9-]*$')] = Field(
        '', description='v3: the robot process\'s run (new at each start); with seq, orders its heartbeats')
    seq: int = Field(0, ge=0, le=2 ** 53, description='v3: counts up within one boot_id: a heartbeat '
                     'older than one already received (a late copy) is answered but not applied')
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
    desired_refused: int = Field(0, ge=0, le=2 ** 31 - 1, description='the desired version '
                                 'desired_error is about (0: none; v1 heartbeats: read from '
                                 'the error\'s "v<N>:" prefix)')
    incident_request_done: int = Field(0, ge=0, le=2 ** 31 - 1, description='the last request '
                                       'to upload incident recordings the robot carried out')
    incident_result: ShortText = Field('', description='what that upload did (one line)')
    incidents_stopped: ShortText = Field('', description='why the robot records no new incidents '
                                         '(its recordings waiting for upload hit their cap)')
    opening_hours: str = Field('', max_length=11, description='v4: the store\'s opening hours in '
                               'effect on the robot, HH:MM-HH:MM local time (\'\': not known; the '
                               'platform then counts the chain\'s default hours; hours it cannot '
                               'read are taken as not known: a heartbeat, a sign of life, is never '
                               'refused for them)')

    @field_validator('opening_hours')
    @classmethod
    def _hours(cls, text: str) -> str:
        try:
            return parse_hours(text, 'opening_hours').text if text else ''
        except HoursError:
            return ''

    @model_validator(mode='after')
    def _refused_of_v1(self) -> 'Heartbeat':
        if self.version == 1 and self.desired_error and not self.desired_refused:
            found = REFUSED_PREFIX.match(self.desired_error)
            if found:
                object.__setattr__(self, 'desired_refused', min(int(found.group(1)), 2 ** 31 - 1))
        return self

    def summary(self) -> tuple:
        """What a change of means a heartbeat now (not ages, backlog counts or battery)."""
        return (tuple(getattr(self, p).level for p in PARTS), self.safety_stop,
                self.localisation_lost, self.desired_version, self.desired_error,
                self.desired_refused, self.incident_request_done, bool(self.incidents_stopped), self.software_version, (self.disk_free_fraction or 1) < 0.05,
                self.opening_hours)


class HeartbeatAnswer(BaseModel):
    state: Literal['ok', 'degraded']
    desired_version: int = Field(description='the desired state this robot should run (0: none; '
                                 'a chain-wide version number)')
    messages: int = Field(description='staff messages waiting for the robot')
    incident_request: int = Field(0, description='an open request to upload the robot\'s incident '
                                  'recordings (its id; 0: none)')


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
    place: ShortText = Field('', description='where the robot is, in the store\'s words (its '
                             'nearest zone), or empty when it does not know')


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


LongText = Annotated[str, StringConstraints(max_length=1000, pattern=r'^[^\x00]*$')]


class Narration(_Strict):
    zh: LongText = ''
    en: LongText = ''


class TourStopSpec(_Strict):
    zone: ZoneId
    narration: Narration = Field(Narration(), description='what the robot says at the stop '
                                 '(empty: the place and what is there, from the store data)')


class TourSpec(_Strict):
    """A tour as zones.yaml has it: a name and its stops in order (a tour of the store's own
    with the same name is replaced; rolled-out tours are offered first)."""
    name: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r'^[^\x00-\x1f\x7f]+$')]
    stops: list[TourStopSpec] = Field(min_length=1, max_length=50, description='in order')


class _Greeting(_Strict):
    """A greeting in each language (absent or empty: the robot's built-in greeting there); the
    placeholders allowed are the audience's (retail_common.greetings.AUDIENCES)."""
    AUDIENCE: ClassVar[str] = 'anonymous'
    zh: ShortText = ''
    en: ShortText = ''

    @field_validator('zh', 'en')
    @classmethod
    def _placeholders(cls, text: str) -> str:
        problem = placeholder_problem(text, AUDIENCES[cls.AUDIENCE])
        if problem:
            raise ValueError(problem)
        return text


class AnonymousGreeting(_Greeting):
    AUDIENCE: ClassVar[str] = 'anonymous'


class MemberGreeting(_Greeting):
    AUDIENCE: ClassVar[str] = 'member'


class VipGreeting(_Greeting):
    AUDIENCE: ClassVar[str] = 'vip'


class Greetings(_Strict):
    anonymous: AnonymousGreeting | None = Field(None, description='a customer the robot does not know')
    member: MemberGreeting | None = Field(None, description='a member greeted by name: {name}')
    vip: VipGreeting | None = Field(None, description='a VIP with an appointment today: '
                                    '{name}, {time}, {purpose}')


class Content(_Strict):
    promotions: list[Promotion] = Field(default_factory=list, max_length=MAX_DESIRED_ITEMS)
    tours: list[TourSpec] = Field(default_factory=list, max_length=50)
    greetings: Greetings = Greetings()

    @field_validator('tours')
    @classmethod
    def _one_tour_per_name(cls, tours: list[TourSpec]) -> list[TourSpec]:
        names = [t.name.strip() for t in tours]
        twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
        if twice is not None:
            raise ValueError(f'a second tour named {twice[:40]!r}')
        return tours


class Settings(_Strict):
    """Live parameters (absent: the robot's own file decides)."""
    max_speed_mps: float | None = _bounded(0.05, 1.2, 'base speed limit')
    near_people_speed_mps: float | None = _bounded(0.05, 0.6, 'speed near people')
    safety_distance_m: float | None = _bounded(0.2, 2.0, 'stop distance ahead')
    greeting_distance_m: float | None = _bounded(0.3, 5.0, 'greet people nearer than this')
    volume: float | None = _bounded(0.0, 1.0, 'speech volume')
    opening_hours: str | None = Field(None, pattern=HOURS, description='HH:MM-HH:MM, local time '
                                      '(closing after midnight: 10:00-01:00); live on the dialogue')

    @field_validator('opening_hours')
    @classmethod
    def _hours(cls, text: str | None) -> str | None:
        return None if text is None else parse_hours(text, 'opening hours').text


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
        return None, f'{where}: {str(first.get("msg")).removeprefix("Value error, ")}'


# --- the robot's heartbeat core -------------------------------------------------------------------
PART_OF = (('navigation/base', 'base'), ('navigation/localization', 'localisation'),
           ('navigation/collision_monitor', 'base'), ('sync', 'sync'), ('dialogue', 'speech'),
           ('perception', 'camera'))
DIAG_LEVEL = {0: 'ok', 1: 'warn', 2: 'error', 3: 'stale'}
MAX_STATUSES = 256          # diagnostic names kept (a robot has a few dozen)
HOURS_STATUS = 'dialogue/opening_hours'    # the dialogue manager's status: values.opening_hours


@dataclass
class HeartbeatCore:
    """Keeps the latest diagnostics per part and decides when to send a heartbeat."""
    period_s: float = 10.0
    software_version: str = ''
    min_gap_s: float = 1.0
    statuses: dict[str, tuple[str, Part]] = field(default_factory=dict)   # diagnostic name → (part, latest)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    safety_since: float | None = None
    battery_percent: float | None = None
    disk_free_fraction: float | None = None
    desired_version: int = 0
    desired_error: str = ''
    desired_refused: int = 0
    opening_hours: str = ''          # the hours in effect, as the dialogue manager reports them
    _last_sent: float | None = None
    boot_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    _seq: int = 0
    _last_summary: tuple | None = None

    def on_status(self, name: str, level: int, message: str, values: dict[str, str],
                  now: float) -> None:
        if name.startswith('observe/incidents'):       # the incident recorder: reported, no part
            self.values['observe/incidents'] = dict(values)
            return
        if name.lstrip('/').startswith(HOURS_STATUS):  # the dialogue's hours in effect: no part
            self.opening_hours = _hours_or_empty(values.get('opening_hours'))
            return
        # nodes name their status by node name, with or without the leading slash
        # ('/perception/camera' from get_fully_qualified_name, 'navigation/base: serial link')
        bare = name.lstrip('/')
        part = next((p for prefix, p in PART_OF if bare.startswith(prefix)), None)
        if part is None or (name not in self.statuses and len(self.statuses) >= MAX_STATUSES):
            return
        # the latest status of each diagnostic name; a part is the worst of its names' latest
        # (a part that recovers shows it: a WARN of an hour ago does not outlive its OK)
        self.statuses[name] = (part, Part(level=DIAG_LEVEL.get(int(level), 'unknown'), message=message[:300]))
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

    def parts(self) -> dict[str, Part]:
        """Each part's state: the worst latest status of the diagnostics folded into it."""
        worst: dict[str, Part] = {}
        for part, status in self.statuses.values():
            held = worst.get(part)
            if held is None or LEVEL_RANK[status.level] > LEVEL_RANK[held.level]:
                worst[part] = status
        return {p: worst.get(p, Part()) for p in PARTS}

    def heartbeat(self, now: float) -> Heartbeat:
        """The heartbeat of now: the next `seq` of this run (`boot_id`); a resend of one never
        answered keeps its number (the platform applies equal or newer, never older)."""
        sync = self.values.get('sync', {})
        loc = self.values.get('navigation/localization', {})
        return Heartbeat(
            boot_id=self.boot_id, seq=self._seq + 1,
            period_s=self.period_s, software_version=self.software_version[:64],
            **self.parts(),
            safety_stop=self.safety_since is not None,
            safety_stop_age_s=max(0.0, now - self.safety_since) if self.safety_since else 0.0,
            localisation_lost=loc.get('state') == 'lost',
            sync_backlog=_int(sync.get('backlog')), sync_oldest_s=_float(sync.get('oldest_pending_s')),
            battery_percent=self.battery_percent, disk_free_fraction=self.disk_free_fraction,
            desired_version=self.desired_version, desired_error=self.desired_error[:300],
            desired_refused=self.desired_refused if self.desired_error else 0,
            incidents_stopped=self.values.get('observe/incidents', {}).get('stopped', '')[:300],
            opening_hours=self.opening_hours)

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
        self._seq = max(self._seq, beat.seq)
        self._last_sent = now
        self._last_summary = beat.summary()


def _hours_or_empty(value: Any) -> str:
    """Reported hours as the heartbeat carries them ('' when absent or not HH:MM-HH:MM)."""
    try:
        return parse_hours(value, 'opening_hours').text
    except HoursError:
        return ''


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
