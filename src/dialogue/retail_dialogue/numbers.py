"""Numbers and price ranges as customers say them: 三千以下, 两千到四千, 一千五以内, 3千, under 2k.

A customer's budget is the most common constraint of a recommendation, and speech recognition
writes it in Chinese numerals as often as in digits. Pure functions, no catalog knowledge:
numbers inside product names (iPhone 16, 65寸) are masked by the caller before this runs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

MAX_NUMBER_CHARS = 12       # longer runs of number characters are order or phone numbers, never amounts
MAX_TEXT_CHARS = 500        # price extraction reads at most this much of a text
MAX_AMOUNT = 10_000_000     # CNY; more is no price a customer of this store says (events bound prices the same)

_DIGITS = {'零': 0, '〇': 0, '一': 1, '幺': 1, '二': 2, '两': 2, '俩': 2, '三': 3, '四': 4, '五': 5,
           '六': 6, '七': 7, '八': 8, '九': 9}
_UNITS = {'十': 10, '百': 100, '千': 1000, '万': 10000}
ZH_NUMERAL_CHARS = ''.join(_DIGITS) + ''.join(_UNITS)


_UNIT_VALUES = {**_UNITS, 'k': 1000, 'w': 10000}
_ZH_DIGIT_RUN = '[零〇一幺二两俩三四五六七八九]'
_NUMBER_TOKEN = re.compile(r'\d+(?:\.\d+)?|[零〇一幺二两俩三四五六七八九]|[十百千万kw]')


def _zh_decimals(text: str) -> str:
    """一点五万 -> 1.5万, 3点5千 -> 3.5千: the Chinese decimal point between digits."""
    def digits(run: str) -> str:
        return ''.join(str(_DIGITS[ch]) if ch in _DIGITS else ch for ch in run)
    return re.sub(rf'((?:\d|{_ZH_DIGIT_RUN})+)点((?:\d|{_ZH_DIGIT_RUN})+)',
                  lambda m: f'{digits(m.group(1))}.{digits(m.group(2))}', text)


def parse_zh_number(text: str) -> float | None:
    """A number written with Chinese units, in Chinese numerals, digits or both, as people and
    speech recognisers write prices: 三千 3000, 一千五 1500, 两万二 22000, 三千零五十 3050, 十五 15,
    3千5 3500, 1万5千 15000, 1万2 12000, 一点五万 15000, 1.5万 15000, 2.5k 2500, 3千5百 3500.

    A single digit right after a unit counts one unit lower (一千五 = 1500, 1万2 = 12000), unless a
    零 came between (三千零五 = 3005). None when `text` is not such a number.
    """
    if len(text) > MAX_NUMBER_CHARS:
        return None               # no amount is that long (an order number); bounded work
    text = _zh_decimals(re.sub(r'\s+(?=[十百千万kw])|(?<=[十百千万kw])\s+', '', text.strip().lower()))
    if not text or _NUMBER_TOKEN.sub('', text):
        return None
    total = 0.0
    section = 0.0          # below 万
    digit: float | None = None
    digit_is_single = False
    last_unit = 1
    zero_before = False
    for token in _NUMBER_TOKEN.findall(text):
        if token in _UNIT_VALUES:
            unit = _UNIT_VALUES[token]
            if unit == 10000:
                section += digit or 0
                total += (section or 1) * 10000
                section, digit, last_unit = 0.0, None, 10000
            else:
                section += (1 if digit is None else digit) * unit
                digit, last_unit = None, unit
            zero_before = False
            continue
        if digit is not None:
            return None            # two numbers in a row ("三五", "3 5"): not one amount
        if token in ('零', '〇'):
            zero_before = True
            continue
        digit = float(token) if token[0].isdigit() else float(_DIGITS[token])
        digit_is_single = token in _DIGITS or len(token) == 1
    if digit is not None:
        lower = last_unit >= 100 and digit_is_single and not zero_before
        section += digit * (last_unit // 10 if lower else 1)
    return float(total + section)


# A number: digits (with decimals or thousands separators) followed by more digits, Chinese
# numerals, units and k/w ("3千5", "1万5千", "2.5k"), or a run of Chinese numerals with units
# and a decimal point ("一点五万", "两千五").
#
# Written so that no input can make the regex engine backtrack without limit (issue 21: a
# 24-digit order number froze the dialogue for 78 s with the old `(?:\d+(?:…)*)*` form): a
# number is ONE atomic run in which every step consumes exactly one character and the
# alternatives start with different characters, so there is one way to match it; it starts only
# where no number character precedes it, so each run is scanned once per pattern; a run longer
# than MAX_NUMBER_CHARS is no amount (an order or phone number). Callers bound the text too
# (MAX_TEXT_CHARS).
_NUM_CHAR = r'[\d零〇一幺二两俩三四五六七八九十百千万]'
_NUM_STEP = (r'(?:[\d零〇一幺二两俩三四五六七八九十百千万]|[.,](?=\d)|点(?=[\d零一二两三四五六七八九])'
             r'|[kKwW](?![a-zA-Z])|\s(?=[\d十百千万kKwW]))')
_NUM = rf'(?<![\d零〇一幺二两俩三四五六七八九十百千万点kKwW])(?<!\d[.,])(?<![\d零〇一幺二两俩三四五六七八九十百千万]\s)(?>{_NUM_CHAR}{_NUM_STEP}*+)'
_RANGE_SEP = r'\s*(?:到|至|-|~|～|—|to|and)\s*'


def parse_number(token: str) -> float | None:
    """'3千' 3000, '5k' 5000, '1.5万' 15000, '3,500' 3500, '两千五' 2500, '3千5' 3500, '一点五万' 15000."""
    token = token.strip()
    if not token or len(token) > MAX_NUMBER_CHARS:
        return None
    if re.fullmatch(r'\d+(?:[.,]\d+)*', token):
        raw = token.replace(',', '') if re.fullmatch(r'\d{1,3}(,\d{3})+', token) else token.replace(',', '.')
        try:
            return float(raw)
        except ValueError:
            return None
    return parse_zh_number(token.replace(',', ''))


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
    # a little above: "三千多" 3000–3999 (not "at most 3000"), "三千出头" 3000–3300
    ('more', rf'{_CURRENCY}(?P<a>{_NUM})\s*多(?!少)\s*(?:块钱|块|元)?'),
    ('just_over', rf'{_CURRENCY}(?P<a>{_NUM}){_MONEY}\s*出头'),
    ('more', rf'\b(?P<a>{_NUM})\s*(?:-ish|ish|something|odd|plus|\+)'),
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
    ('max', rf'(?P<a>{_NUM})\s*(?:块钱|块|元|yuan|rmb|RMB|kuai)(?![a-zA-Z0-9])'),
    ('max_unit', rf'(?P<a>{_NUM})(?![a-zA-Z0-9])'),      # a bare amount with k/千/万/w: "3千5的手机"
    ('max', rf'{_CURRENCY}(?P<a>{_NUM}){_MONEY}\s*to spend'),
]
_COMPILED = [(kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in _PATTERNS]
AROUND_MARGIN = 0.2


def _amount(token: str) -> float | None:
    token = token.strip()
    if len(token) > MAX_NUMBER_CHARS:
        return None               # an order, phone or serial number, not an amount
    value = parse_number(re.sub(r'(块钱|块|元|yuan|rmb|kuai)$', '', token, flags=re.I).strip())
    return value if value is not None and 0 < value <= MAX_AMOUNT else None


def _plausible(value: float | None, raw: str) -> bool:
    """A price, not a model number: Chinese numerals or k-suffixed always count; bare digits >= 50."""
    if value is None or value < 10:
        return False              # 一块 is a place ("哪一块"), not a budget
    if not raw.strip()[0].isdigit() or re.search(r'[kK千万wW块元]', raw):
        return True
    return value >= 50


def _place(value: float) -> float:
    """The place of the lowest non-zero digit of a whole amount: 3000 -> 1000, 3500 -> 100."""
    place, whole = 1, int(value)
    while whole and whole % 10 == 0 and place < 10 ** 9:
        whole //= 10
        place *= 10
    return float(place)


def _range_of(kind: str, match: re.Match[str]) -> PriceRange | None:
    """The price range one pattern's match says, or None when its numbers are no price."""
    span = match.span()
    if kind == 'pair':
        unit = {'百': 100, '千': 1000, '万': 10000}[match.group('unit')]
        low, high = (_DIGITS[ch] * unit for ch in match.group('pair'))
        return PriceRange(float(low), float(high), span) if high > low else None
    a_raw = match.group('a')
    a = _amount(a_raw)
    if kind == 'range':
        b_raw = match.group('b')
        b = _amount(b_raw)
        if a is None or b is None:
            return None
        # "两到四千": the first number borrows the second's unit.
        if a < 10 <= b and not re.search(r'[kK千万百块元]', a_raw):
            a *= 10 ** (len(str(int(b))) - 1)
        if not (_plausible(a, a_raw) or _plausible(b, b_raw)) or b <= a:
            return None
        return PriceRange(a, b, span)
    if not _plausible(a, a_raw) or a is None:
        return None
    if kind in ('max', 'max_unit'):
        return PriceRange(None, a, span)
    if kind == 'min':
        return PriceRange(a, None, span)
    if kind == 'more':
        return PriceRange(a, a + _place(a) - 1, span)
    if kind == 'just_over':
        return PriceRange(a, round(a * 1.1), span)
    return PriceRange(round(a * (1 - AROUND_MARGIN)), round(a * (1 + AROUND_MARGIN)), span)


_EN_WORDS = {w: n for n, w in enumerate('zero one two three four five six seven eight nine ten eleven twelve thirteen '
                                          'fourteen fifteen sixteen seventeen eighteen nineteen twenty'.split())}
_EN_WORDS['a'] = 1
_EN_AMOUNT = re.compile(r'\b(?P<n>\d{1,4}(?:\.\d{1,2})?|' + '|'.join(sorted(_EN_WORDS, key=len, reverse=True))
                        + r')\s*(?P<unit>grand|thousand|hundred)\b', re.IGNORECASE)


def english_amounts(text: str) -> str:
    """"two grand" / "2.5 grand" / "three thousand" -> "2k" / "2.5k" / "3k"; "five hundred" -> "500"
    (one bounded pass; other text unchanged)."""
    def amount(m: re.Match[str]) -> str:
        raw = m.group('n').lower()
        number = float(raw) if raw[0].isdigit() else float(_EN_WORDS[raw])
        if m.group('unit').lower() == 'hundred':
            return f'{number * 100:g}'
        return f'{number:g}k'
    return _EN_AMOUNT.sub(amount, text)


def extract_price_range(text: str) -> PriceRange | None:
    """The first price constraint said in `text` (its first MAX_TEXT_CHARS characters), or None.
    English amounts in words ("two grand", "three thousand") read as digits first."""
    text = english_amounts(text[:MAX_TEXT_CHARS])
    for kind, regex in _COMPILED:
        for match in regex.finditer(text):
            if kind == 'max_unit' and not re.search(r'[kK千万wW]', match.group('a')):
                continue              # a bare number without a unit is no budget ("65", "三")
            found = _range_of(kind, match)
            if found is not None:
                return found
            break                     # the pattern's first match said no price: the next pattern
    return None
