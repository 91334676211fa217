"""Numbers and price ranges as customers say them: 三千以下, 两千到四千, 一千五以内, 3千, under 2k.

A customer's budget is the most common constraint of a recommendation, and speech recognition
writes it in Chinese numerals as often as in digits. Pure functions, no catalog knowledge:
numbers inside product names (iPhone 16, 65寸) are masked by the caller before this runs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_DIGITS = {'零': 0, '〇': 0, '一': 1, '幺': 1, '二': 2, '两': 2, '俩': 2, '三': 3, '四': 4, '五': 5,
           '六': 6, '七': 7, '八': 8, '九': 9}
_UNITS = {'十': 10, '百': 100, '千': 1000, '万': 10000}
ZH_NUMERAL_CHARS = ''.join(_DIGITS) + ''.join(_UNITS)


def parse_zh_number(text: str) -> float | None:
    """Chinese numeral → number: 三千 3000, 一千五 1500, 两万二 22000, 十五 15, 三千零五十 3050."""
    if not text or any(ch not in _DIGITS and ch not in _UNITS for ch in text):
        return None
    total = 0
    section = 0          # below 万
    digit: int | None = None
    last_unit = 1
    for ch in text:
        if ch in _DIGITS:
            digit = _DIGITS[ch]
            continue
        unit = _UNITS[ch]
        if unit == 10000:
            section += digit or 0
            total += (section or 1) * 10000
            section, digit, last_unit = 0, None, 10000
            continue
        section += (1 if digit is None else digit) * unit
        digit, last_unit = None, unit
    if digit is not None:
        # 一千五 = 1500: a trailing digit right after a unit counts one unit lower.
        section += digit * (last_unit // 10 if last_unit >= 100 and text[-2] != '零' else 1)
    return float(total + section)


# A number: digits with optional decimals and k/千/万 suffix, or a run of Chinese numerals.
_NUM = r'(?:\d+(?:[.,]\d+)*\s*(?:k|K|千|万|w|W)?|[零〇一幺二两俩三四五六七八九十百千万]+)'
_RANGE_SEP = r'\s*(?:到|至|-|~|～|—|to|and)\s*'


def parse_number(token: str) -> float | None:
    """'3千' 3000, '5k' 5000, '1.5万' 15000, '3,500' 3500, '两千五' 2500."""
    token = token.strip()
    if not token:
        return None
    if token[0].isdigit():
        match = re.fullmatch(r'(\d+(?:[.,]\d+)*)\s*([kK千万wW]?)', token)
        if not match:
            return None
        raw = match.group(1)
        raw = raw.replace(',', '') if re.fullmatch(r'\d{1,3}(,\d{3})+', raw) else raw.replace(',', '.')
        try:
            value = float(raw)
        except ValueError:
            return None
        return value * {'': 1, 'k': 1000, 'K': 1000, '千': 1000, '万': 10000, 'w': 10000, 'W': 10000}[match.group(2)]
    return parse_zh_number(token)


@dataclass(frozen=True)
class PriceRange:
    min_price: float | None
    max_price: float | None
    span: tuple[int, int]      # where in the text it was said


_MONEY = r'\s*(?:块钱|块|元|rmb|RMB|yuan|kuai|cny|CNY|人民币)?'
_ZH_MAX = r'(?:以下|以内|之内|内|左右以内|封顶|上下以内)'
_ZH_MIN = r'(?:以上|起|往上)'
_EN_MAX = r'(?:under|below|less than|cheaper than|within|up to|at most|no more than|not more than|max(?:imum)?|lower than|not over|under the)'
_EN_MIN = r'(?:over|above|more than|at least|from|starting at|minimum|higher than)'
_ZH_MAX_PRE = r'(?:不超过|不到|低于|少于|最多|小于|不高于|控制在|别超过)'
_ZH_MIN_PRE = r'(?:高于|超过|大于|至少|不低于|最少)'
_AROUND_ZH = r'(?:左右|上下|差不多)'
_AROUND_EN = r'(?:around|about|roughly|approximately)'
_BUDGET = r'(?:预算(?:是|有|大概|大约|在)?|budget(?: is| of)?|spend|价位(?:在)?|价格(?:在)?|价钱(?:在)?)'

_CURRENCY = r'(?:¥|￥|rmb\s*|RMB\s*|cny\s*)?'
_PATTERNS: list[tuple[str, str]] = [
    # ranges
    ('range', rf'{_CURRENCY}(?P<a>{_NUM}){_MONEY}{_RANGE_SEP}{_CURRENCY}(?P<b>{_NUM}){_MONEY}(?:之间)?'),
    ('range', rf'between\s+{_CURRENCY}(?P<a>{_NUM}){_MONEY}\s+and\s+{_CURRENCY}(?P<b>{_NUM})'),
    ('pair', r'(?P<pair>[一二两三四五六七八][二两三四五六七八九])(?P<unit>[千万百])'),
    # bounded above / below
    ('max', rf'{_ZH_MAX_PRE}\s*{_CURRENCY}(?P<a>{_NUM}){_MONEY}'),
    ('min', rf'{_ZH_MIN_PRE}\s*{_CURRENCY}(?P<a>{_NUM}){_MONEY}'),
    ('max', rf'{_CURRENCY}(?P<a>{_NUM}){_MONEY}\s*{_ZH_MAX}'),
    ('min', rf'{_CURRENCY}(?P<a>{_NUM}){_MONEY}\s*{_ZH_MIN}'),
    ('max', rf'\b{_EN_MAX}\s+{_CURRENCY}(?P<a>{_NUM}){_MONEY}'),
    ('min', rf'\b{_EN_MIN}\s+{_CURRENCY}(?P<a>{_NUM}){_MONEY}'),
    ('around', rf'{_CURRENCY}(?P<a>{_NUM}){_MONEY}\s*{_AROUND_ZH}'),
    ('around', rf'\b{_AROUND_EN}\s+{_CURRENCY}(?P<a>{_NUM}){_MONEY}'),
    ('max', rf'{_BUDGET}\s*{_CURRENCY}(?P<a>{_NUM}){_MONEY}'),
    ('max', rf'(?P<a>{_NUM})\s*(?:块钱|块|元|yuan|rmb|RMB|kuai)\s*(?:的|左右的)?(?:预算|budget)'),
    # a bare amount with a money unit (预算 is implied: "三千块的手机", "a 2000 yuan phone")
    ('max', rf'(?<![\d.])(?P<a>\d+(?:\.\d+)?\s*(?:k|K)|(?:\d+|[零一二两三四五六七八九十百千万]+)\s*(?:块钱|块|元|yuan|rmb|RMB|kuai))(?![a-zA-Z0-9])'),
    ('max', rf'(?<![\d.])(?P<a>\d+(?:\.\d+)?\s*[kK千万]|[一二两三四五六七八九十]+[千万][一二三四五六七八九]?)(?![a-zA-Z0-9])'),
    ('max', rf'{_CURRENCY}(?P<a>{_NUM}){_MONEY}\s*to spend'),
]
_COMPILED = [(kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in _PATTERNS]
AROUND_MARGIN = 0.2


def _amount(token: str) -> float | None:
    value = parse_number(re.sub(r'(块钱|块|元|yuan|rmb|kuai)$', '', token.strip(), flags=re.I).strip())
    return value if value is not None and value > 0 else None


def _plausible(value: float | None, raw: str) -> bool:
    """A price, not a model number: Chinese numerals or k-suffixed always count; bare digits >= 50."""
    if value is None or value < 10:
        return False              # 一块 is a place ("哪一块"), not a budget
    if not raw.strip()[0].isdigit() or re.search(r'[kK千万wW块元]', raw):
        return True
    return value >= 50


def extract_price_range(text: str) -> PriceRange | None:
    """The first price constraint said in `text`, or None."""
    for kind, regex in _COMPILED:
        match = regex.search(text)
        if not match:
            continue
        span = match.span()
        if kind == 'pair':
            unit = {'百': 100, '千': 1000, '万': 10000}[match.group('unit')]
            low, high = (_DIGITS[ch] * unit for ch in match.group('pair'))
            if high > low:
                return PriceRange(float(low), float(high), span)
            continue
        a_raw = match.group('a')
        a = _amount(a_raw)
        if kind == 'range':
            b_raw = match.group('b')
            b = _amount(b_raw)
            if a is None or b is None:
                continue
            # "两到四千": the first number borrows the second's unit.
            if a < 10 <= b and not re.search(r'[kK千万百块元]', a_raw):
                scale = 10 ** (len(str(int(b))) - 1)
                a *= scale
            if not (_plausible(a, a_raw) or _plausible(b, b_raw)) or b <= a:
                continue
            return PriceRange(a, b, span)
        if not _plausible(a, a_raw):
            continue
        if kind == 'max':
            return PriceRange(None, a, span)
        if kind == 'min':
            return PriceRange(a, None, span)
        return PriceRange(round(a * (1 - AROUND_MARGIN)), round(a * (1 + AROUND_MARGIN)), span)
    return None
