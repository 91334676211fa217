"""A store's opening hours: one concept for the robot and the platform (pure, no rclpy).

Written `HH:MM-HH:MM` in the store's local time: `10:00-22:00`, or a store that closes after
midnight, `10:00-01:00` (open from 10:00 until 01:00 the next morning). Refused with one line:
hours of 24 or more, minutes of 60 or more, anything but that form, and equal opening and
closing times (a store open all day, or never, is not said this way).

Where a store's hours come from on the robot: the store folder's `zones.yaml` key
`opening_hours` (retail_common.store, default DEFAULT), and, live, the rolled-out desired
state's `settings.opening_hours`, set on the dialogue manager's `opening_hours` parameter
(retail_sync.live_settings). The robot reports the hours in effect in its heartbeat and the
platform's funnel counts a robot-day's opening minutes with them (retail_platform.funnel.robot_minutes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time

__all__ = ['DEFAULT', 'DEFAULT_TEXT', 'HoursError', 'OpeningHours', 'parse_hours', 'minute_of']

DAY_MINUTES = 24 * 60
MAX_TEXT = 32  # bounded input: no valid hours are longer
_FORM = re.compile(r'^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$')


class HoursError(ValueError):
    """Opening hours that cannot be used; the message is one line saying why."""


def _clock(minute: int) -> str:
    return f'{minute // 60:02d}:{minute % 60:02d}'


def minute_of(when: datetime | time | int) -> int:
    """The minute of the day (0..1439) of a local time, a datetime (its own clock) or a minute."""
    if isinstance(when, int):
        return when % DAY_MINUTES
    return when.hour * 60 + when.minute


@dataclass(frozen=True)
class OpeningHours:
    """Open from `opens` to `closes` (minutes after local midnight); closes <= opens: after midnight."""

    opens: int
    closes: int

    @property
    def text(self) -> str:
        return f'{self.open_text}-{self.close_text}'

    @property
    def open_text(self) -> str:
        return _clock(self.opens)

    @property
    def close_text(self) -> str:
        return _clock(self.closes)

    @property
    def overnight(self) -> bool:
        """Closes after midnight (the next morning)."""
        return self.closes < self.opens

    @property
    def minutes(self) -> int:
        """How many minutes the store is open in a day (10:00-01:00: 900)."""
        return (self.closes - self.opens) % DAY_MINUTES

    def is_open(self, when: datetime | time | int) -> bool:
        """Open at `when` (local time; an int is a minute of the day): opening minute included,
        closing minute not."""
        minute = minute_of(when)
        if self.overnight:
            return minute >= self.opens or minute < self.closes
        return self.opens <= minute < self.closes

    def minutes_to_close(self, when: datetime | time | int) -> int | None:
        """Minutes until closing at `when`, or None when the store is closed then."""
        if not self.is_open(when):
            return None
        return (self.closes - minute_of(when)) % DAY_MINUTES

    def open_minutes_of_day(self) -> range | tuple[range, range]:
        """The minutes of one calendar day (0..1439) in which the store is open: one range, or
        two for a store that closes after midnight (the night's tail, then the evening)."""
        if self.overnight:
            return (range(0, self.closes), range(self.opens, DAY_MINUTES))
        return range(self.opens, self.closes)


def parse_hours(text: object, where: str = 'opening hours') -> OpeningHours:
    """'HH:MM-HH:MM' as OpeningHours; HoursError (one line starting with `where`) otherwise."""
    if not isinstance(text, str):
        raise HoursError(f'{where}: expected a text HH:MM-HH:MM, got {type(text).__name__}')
    shown = text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + '…'
    found = _FORM.match(text) if len(text) <= MAX_TEXT else None
    if found is None:
        raise HoursError(f'{where}: expected HH:MM-HH:MM (e.g. 10:00-22:00), got {shown!r}')
    oh, om, ch, cm = (int(g) for g in found.groups())
    for hour, minute in ((oh, om), (ch, cm)):
        if hour >= 24 or minute >= 60:
            raise HoursError(f'{where}: {hour:02d}:{minute:02d} is no time of day (00:00 to 23:59) in {shown!r}')
    opens, closes = oh * 60 + om, ch * 60 + cm
    if opens == closes:
        raise HoursError(f'{where}: opening and closing are both {_clock(opens)} in {shown!r}')
    return OpeningHours(opens, closes)


DEFAULT_TEXT = '10:00-22:00'
DEFAULT = parse_hours(DEFAULT_TEXT)
