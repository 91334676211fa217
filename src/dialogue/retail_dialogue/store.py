"""Store data the dialogue reads besides the catalog: zone names and VIP appointments.

Both files are edited by people or synced from the platform, so a bad entry is reported and
skipped, never fatal; a missing zones file falls back to the store contract's zone names.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import yaml

# Names of the store contract's zones, used when the store has no zones.yaml.
DEFAULT_ZONE_NAMES: dict[str, tuple[str, str]] = {
    'phones': ('手机数码区', 'Phones & Wearables'), 'computers': ('电脑办公区', 'Computers & Printing'),
    'audio_video': ('影音区', 'TV & Audio'), 'cameras_gaming': ('相机游戏区', 'Cameras & Gaming'),
    'kitchen': ('厨房电器区', 'Kitchen Appliances'), 'large_appliances': ('大家电区', 'Large Appliances'),
    'home_care': ('生活电器区', 'Home Care'), 'entrance': ('入口', 'the entrance'), 'exit': ('出口', 'the exit'),
    'checkout': ('收银台', 'the checkout'), 'service_desk': ('服务台', 'the service desk'),
    'vip_lounge': ('贵宾室', 'the VIP lounge'), 'restroom': ('洗手间', 'the restrooms'), 'dock': ('充电桩', 'the dock'),
}


class ZoneNames:
    def __init__(self, names: dict[str, tuple[str, str]]) -> None:
        self.names = names

    @classmethod
    def load(cls, path: str | Path | None) -> 'ZoneNames':
        names = dict(DEFAULT_ZONE_NAMES)
        if path and Path(path).is_file():
            data = yaml.safe_load(Path(path).read_text(encoding='utf-8')) or {}
            for zone, info in (data.get('zones') or {}).items():
                if isinstance(info, dict):
                    names[str(zone)] = (str(info.get('name_zh') or zone), str(info.get('name_en') or zone))
        return cls(names)

    def name(self, zone: str, lang: str) -> str:
        zh, en = self.names.get(zone, (zone, zone.replace('_', ' ')))
        return en if lang == 'en' else zh


@dataclass(frozen=True)
class Appointment:
    appointment_id: str
    customer_id: str
    name: str
    start: datetime
    end: datetime
    purpose: str
    meeting_point: str
    staff: str


def load_appointments(path: str | Path | None) -> tuple[list[Appointment], list[str]]:
    """Appointments from a JSON list; returns (appointments, one-line issues of skipped entries)."""
    if not path or not Path(path).is_file():
        return [], []
    try:
        data = json.loads(Path(path).read_text(encoding='utf-8'))
    except (OSError, ValueError) as exc:
        return [], [f'appointments {path}: unreadable ({exc})']
    if not isinstance(data, list):
        return [], [f'appointments {path}: expected a JSON list']
    out, issues = [], []
    for index, entry in enumerate(data):
        try:
            entry = _from_platform(entry) if isinstance(entry, dict) and 'customer' in entry else entry
            out.append(Appointment(
                appointment_id=str(entry['appointment_id']), customer_id=str(entry.get('customer_id', '')),
                name=str(entry['name']), start=datetime.fromisoformat(entry['start']),
                end=datetime.fromisoformat(entry['end']), purpose=str(entry.get('purpose', '')),
                meeting_point=str(entry.get('meeting_point') or 'vip_lounge'), staff=str(entry.get('staff', ''))))
        except (KeyError, TypeError, ValueError) as exc:
            issues.append(f'appointments {path}: entry {index} skipped ({exc!r})')
    return out, issues


def _from_platform(entry: dict) -> dict:
    """An appointment as the sync downlink stores it (platform: id, customer, time, purpose, note).

    The platform's `note` carries the rest as a JSON object: name, meeting_point, staff and
    duration_min (default 60) or end.
    """
    note = json.loads(entry.get('note') or '{}')
    if not isinstance(note, dict):
        raise ValueError('note is not a JSON object')
    start = datetime.fromisoformat(entry['time'])
    end = note.get('end') or (start + timedelta(minutes=float(note.get('duration_min', 60)))).isoformat()
    return {'appointment_id': entry['id'], 'customer_id': entry['customer'], 'name': note['name'],
            'start': entry['time'], 'end': end, 'purpose': entry.get('purpose', ''),
            'meeting_point': note.get('meeting_point', ''), 'staff': note.get('staff', '')}


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
