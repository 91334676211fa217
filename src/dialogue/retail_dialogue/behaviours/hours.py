"""'你们几点关门', 'are you open on Sunday': the store's opening hours in effect (retail_common.hours).

The hours are the dialogue manager's (`DialogueManager.hours`: the rolled-out `opening_hours`
when one is set live, else the store folder's), the time is the manager's wall clock (the
store's local time). Open now: until when; in the last CLOSING_SOON_MIN minutes: how long is
left; closed now: when it opens. The hours are the same every day (no per-weekday hours yet).
"""
from __future__ import annotations

from ..session import Intent
from .turn import Turn

CLOSING_SOON_MIN = 15


def _close_words(dm, lang: str) -> str:
    hours = dm.hours
    if not hours.overnight:
        return hours.close_text
    return f'{hours.close_text} the next morning' if lang == 'en' else f'次日凌晨{hours.close_text}'


def handle(turn: Turn) -> None:
    dm, session = turn.dm, turn.session
    hours, lang = dm.hours, session.lang
    left = hours.minutes_to_close(dm.wall_clock())
    values = dict(open=hours.open_text, close=_close_words(dm, lang))
    if left is None:
        key = 'hours_closed'
    elif left <= CLOSING_SOON_MIN:
        key, values['minutes'] = 'hours_closing_soon', left
    else:
        key = 'hours_open'
    dm._say(session, Intent.ASK_HOURS, key, **values)
