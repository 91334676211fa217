"""HQ's campaigns as the robot holds them: the `campaigns` section of the platform's downlink
(retail_platform.campaigns, section version SECTION_VERSION), written by the sync downlink to
`<data_dir>/platform/campaigns.json` and read with the store (`retail_common.store.load_store`).

Each active campaign carries the members it matches among those the robot's store knows: the
platform decides the audience (what members said and bought, their consent, forget requests);
the robot only offers to a member listed (`offers_to`), inside the campaign's time window, and at
most once per visit (retail_dialogue.behaviours.campaign). Pure, no rclpy.

Untrusted input: the file is bounded (MAX_FILE_BYTES); a section of another version is refused
whole and reported; a bad campaign is reported (`issues`) and skipped, the others are kept.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECTION_VERSION = 1
FILE = 'campaigns.json'
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_CAMPAIGNS = 200
MAX_MEMBERS = 100_000
MAX_SKUS = 20
MAX_MESSAGE = 300


@dataclass(frozen=True)
class Campaign:
    id: str
    name: str
    skus: tuple[str, ...]
    message_zh: str
    message_en: str
    starts_at: float  # seconds since 1970
    ends_at: float
    members: frozenset[str]

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def offers_to(self, member: str, now: float) -> bool:
        """A matching member (never an anonymous customer) inside the time window."""
        return bool(member) and member in self.members and self.active(now)

    def message(self, lang: str) -> str:
        return self.message_en if lang == 'en' else self.message_zh


def _text(entry: dict, key: str, limit: int, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > limit or '\x00' in value:
        raise ValueError(f'{where}: {key} must be text of 1-{limit} characters')
    return value


def _time(entry: dict, key: str, where: str) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f'{where}: {key} must be seconds since 1970')
    return float(value)


def _ids(entry: dict, key: str, limit: int, where: str) -> tuple[str, ...]:
    value = entry.get(key)
    if (
        not isinstance(value, list)
        or len(value) > limit
        or not all(isinstance(v, str) and 0 < len(v) <= 128 for v in value)
    ):
        raise ValueError(f'{where}: {key} must be a list of at most {limit} ids')
    return tuple(value)


def parse_campaign(entry: Any, where: str) -> Campaign:
    if not isinstance(entry, dict):
        raise ValueError(f'{where}: not an object')
    skus = _ids(entry, 'skus', MAX_SKUS, where)
    if not skus:
        raise ValueError(f'{where}: skus is empty')
    campaign = Campaign(
        id=_text(entry, 'id', 64, where),
        name=_text(entry, 'name', 200, where),
        skus=skus,
        message_zh=_text(entry, 'message_zh', MAX_MESSAGE, where),
        message_en=_text(entry, 'message_en', MAX_MESSAGE, where),
        starts_at=_time(entry, 'starts_at', where),
        ends_at=_time(entry, 'ends_at', where),
        members=frozenset(_ids(entry, 'members', MAX_MEMBERS, where)),
    )
    if campaign.ends_at <= campaign.starts_at:
        raise ValueError(f'{where}: ends_at is not after starts_at')
    return campaign


def parse_section(data: Any, source: str = '<campaigns>') -> tuple[tuple[Campaign, ...], list[str]]:
    """(campaigns, issues) of a downlink `campaigns` section (module docstring)."""
    if not isinstance(data, dict) or data.get('version') != SECTION_VERSION:
        version = data.get('version') if isinstance(data, dict) else None
        return (), [
            f'{source}: not a campaigns section of version {SECTION_VERSION} '
            f'(version {version!r}); no campaign is offered'
        ]
    active = data.get('active')
    if not isinstance(active, list):
        return (), [f'{source}: active must be a list; no campaign is offered']
    out: list[Campaign] = []
    issues: list[str] = []
    for index, entry in enumerate(active[:MAX_CAMPAIGNS]):
        try:
            out.append(parse_campaign(entry, f'{source}: active[{index}]'))
        except ValueError as exc:
            issues.append(f'{exc}; skipped')
    if len(active) > MAX_CAMPAIGNS:
        issues.append(f'{source}: more than {MAX_CAMPAIGNS} campaigns; the rest skipped')
    return tuple(out), issues


def load_campaigns(path: str | Path) -> tuple[tuple[Campaign, ...], list[str]]:
    """The campaigns of a file (none, no issue, when there is no file)."""
    path = Path(path)
    if not path.is_file():
        return (), []
    try:
        with path.open('rb') as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return (), [f'{path}: {exc.strerror or exc}; no campaign is offered']
    if len(raw) > MAX_FILE_BYTES:
        return (), [f'{path}: larger than {MAX_FILE_BYTES} bytes; no campaign is offered']
    try:
        data = json.loads(raw.decode('utf-8'))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return (), [f'{path}: not UTF-8 JSON; no campaign is offered']
    return parse_section(data, str(path))
