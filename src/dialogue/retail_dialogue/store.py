"""What the dialogue reads of its store besides the catalog: zone names (ZoneNames) and the
customer's spoken time and name (parse_clock, parse_name).

The store itself (zones.yaml, appointments, catalog, promotions) is read by
`retail_common.store.load_store`; `Appointment` and `load_appointments` are re-exported from there
for code written before it, and zone names come from the store's zones.yaml only.
"""
from __future__ import annotations

import re
from pathlib import Path

from retail_common.store import Appointment, Store, load_appointments, load_zones_file

__all__ = ['ZoneNames', 'Appointment', 'load_appointments', 'parse_clock', 'parse_name']


class ZoneNames:
    """zone id -> (Chinese name, English name), from the store's zones.yaml."""

    def __init__(self, names: dict[str, tuple[str, str]]) -> None:
        self.names = names

    @classmethod
    def of(cls, store: Store) -> 'ZoneNames':
        return cls({z.id: (z.name_zh, z.name_en) for z in store.zones.values()})

    @classmethod
    def load(cls, path: str | Path | None) -> 'ZoneNames':
        """Names from a zones.yaml (retail_common.store.StoreError, one line, when it is broken);
        no path or no file: no names (ids are read as words)."""
        if not path or not Path(path).is_file():
            return cls({})
        zones, _, _ = load_zones_file(path)
        return cls({z.id: (z.name_zh, z.name_en) for z in zones.values()})

    def name(self, zone: str, lang: str) -> str:
        zh, en = self.names.get(zone, (zone, zone.replace('_', ' ')))
        return en if lang == 'en' else zh


_ZH_NUM = {'一': 1, '二': 2, '两': 2, '三': 3, '四': 4, '五': 5, '六': 6, '七': 7, '八': 8, '九': 9, '十': 10,
           '十一': 11, '十二': 12}


def parse_clock(text: str) -> tuple[int, int] | None:
    """A time of day said by a customer: 三点, 两点半, 下午3点, 2:30, 4 pm, at 3. Store hours assumed."""
    match = re.search(r'(\d{1,2})[:：.](\d{2})', text)
    hour = minute = None
    if match:
        hour, minute = int(match.group(1)), int(match.group(2))
    else:
        match = re.search(r'(十[一二]?|[一二两三四五六七八九]|\d{1,2})\s*点\s*(半|一刻|(\d{1,2})分?)?', text)
        if match:
            token = match.group(1)
            hour = int(token) if token.isdigit() else _ZH_NUM[token]
            extra = match.group(2) or ''
            minute = 30 if extra == '半' else 15 if extra == '一刻' else int(match.group(3) or 0)
        else:
            match = re.search(r'\b(?:at|for)\s+(\d{1,2})\b|\b(\d{1,2})\s*(?:am|pm|o\'?clock)\b', text, re.I)
            if not match:
                match = re.search(r'\b(?:at|for)\s+(ten|eleven|twelve|one|two|three|four|five|six|seven|eight|nine)\b', text, re.I)
                if not match:
                    return None
                words = 'one two three four five six seven eight nine ten eleven twelve'.split()
                hour, minute = words.index(match.group(1).lower()) + 1, 0
            else:
                hour, minute = int(match.group(1) or match.group(2)), 0
    if re.search(r'下午|晚上|pm', text, re.I) and hour < 12:
        hour += 12
    elif hour < 8:
        hour += 12          # "三点" in a shop means 15:00
    return (hour, minute) if 0 <= hour < 24 and 0 <= minute < 60 else None


def parse_name(text: str) -> str | None:
    match = re.search(r'(?:我是|我叫|我姓|名字是)\s*([\u4e00-\u9fff]{1,3}?)(?=[，,。\s]|预约|约|来|$)', text)
    if match:
        return match.group(1)
    match = re.search(r"(?:my name is|name is|name's|this is|i am|i'm)\s+([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)", text)
    return match.group(1) if match else None
