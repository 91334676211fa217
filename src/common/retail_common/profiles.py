"""A returning member's profile on the robot: what she said on earlier visits, in any store of
the chain (the platform folds her `member_said` events, retail_platform.profiles, and sends the
result inside her member record; the sync downlink writes `<data_dir>/platform/profiles.json`,
member id -> profile, which `retail_common.store.load_store` reads into `Store.profiles`).

The recommendation server shapes her recommendations with it (retail_recommendation.profile) and
the dialogue greets her with its sentence. Only consenting members' records reach the robot, so an
anonymous customer never has one; a forgotten member's record (and profile) is deleted by the
downlink. Pure, no rclpy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from retail_common.catalog import Catalog

MAX_ITEMS = 50  # brands or products kept per list
MAX_MEMBERS = 100_000  # profiles read from one file
MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class MemberProfile:
    category: str = ''
    min_price: float = 0.0
    max_price: float = 0.0
    brands_wanted: tuple[str, ...] = ()
    brands_refused: tuple[str, ...] = ()
    declined_skus: tuple[str, ...] = ()
    compared_skus: tuple[str, ...] = ()
    language: str = ''  # the language she last spoke ('zh' / 'en'; '' unknown): she is greeted in it

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> 'MemberProfile':
        """From the platform's answer; unknown keys ignored, bad values dropped (never raises)."""
        if not isinstance(data, Mapping):
            return cls()

        def text(key: str) -> str:
            value = data.get(key)
            return value[:64] if isinstance(value, str) else ''

        def number(key: str) -> float:
            value = data.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return 0.0
            return float(value) if 0 <= value <= 10_000_000 else 0.0

        def texts(key: str) -> tuple[str, ...]:
            value = data.get(key)
            if not isinstance(value, list):
                return ()
            return tuple(v[:128] for v in value[:MAX_ITEMS] if isinstance(v, str) and v)

        return cls(
            text('category'),
            number('min_price'),
            number('max_price'),
            texts('brands_wanted'),
            texts('brands_refused'),
            texts('declined_skus'),
            texts('compared_skus'),
            str(data.get('language')) if data.get('language') in ('zh', 'en') else '',
        )

    @property
    def speaks(self) -> bool:
        """Something to say back ('last time you were looking at ...'): a category, a budget or
        a wanted brand (refusals alone are honoured silently)."""
        return bool(self.category or self.max_price or self.min_price or self.brands_wanted)

    @property
    def empty(self) -> bool:
        return not (
            self.category
            or self.max_price
            or self.min_price
            or self.brands_wanted
            or self.brands_refused
            or self.declined_skus
        )

    def sentence(
        self, category_zh: str = '', category_en: str = '', brands_zh: Mapping[str, str] | None = None
    ) -> tuple[str, str]:
        """'上次您在看6000元以下的笔记本' / 'last time you were looking at laptops under 6,000
        yuan' (what the reasons and the greeting say); the category's names in the store's words
        when the caller has them."""
        what_zh = category_zh or self.category or '商品'
        what_en = category_en or self.category.replace('_', ' ') or 'products'
        budget_zh = budget_en = ''
        if self.max_price:
            budget_zh, budget_en = f'{self.max_price:.0f}元以下的', f' under {self.max_price:,.0f} yuan'
        elif self.min_price:
            budget_zh, budget_en = f'{self.min_price:.0f}元以上的', f' over {self.min_price:,.0f} yuan'
        zh, en = f'上次您在看{budget_zh}{what_zh}', f'last time you were looking at {what_en}{budget_en}'
        if self.brands_wanted:
            named = [(brands_zh or {}).get(b) or b for b in self.brands_wanted[:3]]
            zh += f'，想要{"、".join(named)}'
            en += f', {" or ".join(self.brands_wanted[:3])} preferred'
        return zh, en


def sentence_for(profile: MemberProfile, catalog: Catalog) -> tuple[str, str]:
    """The profile's sentence in the store's words (the catalog's Chinese category and brand
    names): what the greeting says and the recommender puts in every reason, the same words."""
    words = profile.category.replace('_', ' ').strip()
    if 0 < len(words) <= 3:
        words = words.upper()  # 'tv' -> 'TVs'
    en = words if not words or words.endswith('s') else words + 's'
    brands = {p.brand: p.brand_zh for p in catalog.products if p.brand_zh}
    return profile.sentence(catalog.categories().get(profile.category, ''), en, brands)


def load_profiles(path: Path) -> tuple[dict[str, MemberProfile], list[str]]:
    """(member id -> profile, issues) from a profiles.json; a missing file is no profiles, a
    broken one is one issue naming the file (and no profiles), a bad entry is skipped."""
    try:
        size = path.stat().st_size
    except OSError:
        return {}, []
    if size > MAX_FILE_BYTES:
        return {}, [f'{path}: {size} bytes, more than the {MAX_FILE_BYTES} allowed; no profiles used']
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        return {}, [f'{path}: not a JSON object of profiles ({type(exc).__name__}); no profiles used']
    if not isinstance(data, dict):
        return {}, [f'{path}: not a JSON object of profiles; no profiles used']
    found: dict[str, MemberProfile] = {}
    skipped = 0
    for member, raw in list(data.items())[:MAX_MEMBERS]:
        profile = MemberProfile.from_dict(raw) if isinstance(raw, dict) else MemberProfile()
        if not member or len(member) > 128 or profile.empty:
            skipped += 1
            continue
        found[member] = profile
    issues = [f'{path}: {skipped} unusable profile(s) skipped'] if skipped else []
    return found, issues
