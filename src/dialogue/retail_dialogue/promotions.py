"""Promotion texts as stores write them (Chinese, free text): what they say in English.

Catalogs carry one `promotion` text per product ("满5000减500", "12期免息", "赠原装保护壳"). A
customer asking in English should hear it in English: a `promotion_en` column wins when the store
data has one; otherwise the common forms of Chinese retail promotions are translated by rule, and
a text no rule covers is said to be a promotion with the original shown. Pure, no catalog.
"""
from __future__ import annotations

import re

_NUM = r'(\d+(?:\.\d+)?)'

# (pattern, English). Groups are filled in order; '{item}' translates a gift from GIFTS.
_RULES: list[tuple[re.Pattern[str], str]] = [(re.compile(p), en) for p, en in [
    (rf'^满{_NUM}减{_NUM}$', '{1} yuan off when you spend {0} yuan'),
    (rf'^每满{_NUM}减{_NUM}$', '{1} yuan off for every {0} yuan spent'),
    (rf'^立减{_NUM}(?:元)?$', '{0} yuan off'),
    (rf'^直降{_NUM}(?:元)?$', '{0} yuan off'),
    (rf'^{_NUM}期免息$', '{0} interest-free instalments'),
    (r'^免息分期$', 'interest-free instalments'),
    (rf'^以旧换新补贴{_NUM}%$', '{0}% trade-in subsidy'),
    (r'^以旧换新补贴$', 'trade-in subsidy'),
    (r'^以旧换新$', 'trade-in offer'),
    (r'^第二件半价$', 'second item half price'),
    (rf'^第二件{_NUM}折$', 'second item {pct_off0}% off'),
    (rf'^{_NUM}折$', '{pct_off0}% off'),
    (r'^买一送一$', 'buy one, get one free'),
    (r'^免费安装$', 'free installation'),
    (r'^送货上门$', 'home delivery'),
    (r'^免费送货$', 'free delivery'),
    (r'^包邮$', 'free delivery'),
    (r'^赠(.+)$', 'free {item0}'),
    (r'^送(.+)$', 'free {item0}'),
]]
GIFTS = {'原装保护壳': 'original protective case', '保护壳': 'protective case', '充电器': 'charger',
         '头盔': 'helmet', '耳机': 'earphones', '贴膜': 'screen protector', '钢化膜': 'screen protector',
         '手机壳': 'phone case', '延保': 'extended warranty', '一年延保': 'one-year extended warranty',
         '滤芯': 'filter', '电池': 'battery', '礼品': 'gift', '赠品': 'gift', '会员积分': 'member points'}
_PARTS = re.compile(r'\s*[+＋、,，;；/]\s*')


def _one(part: str) -> str | None:
    for pattern, english in _RULES:
        match = pattern.match(part)
        if not match:
            continue
        groups = match.groups()
        values = {str(i): g for i, g in enumerate(groups)}
        if '{pct_off0}' in english:
            # Chinese "8折" pays 80 %, i.e. 20 % off; "8.5折" 15 % off; "85折" 15 % off.
            tenth = float(groups[0])
            paid = tenth * 10 if tenth < 10 else tenth
            values['pct_off0'] = f'{100 - paid:g}'
        if '{item0}' in english:
            if groups[0] not in GIFTS:
                return None
            values['item0'] = GIFTS[groups[0]]
        return english.format(*groups, **values)
    return None


def translate_promotion(text: str) -> str | None:
    """English for a Chinese promotion text, or None when a part of it has no rule."""
    text = text.strip()
    if not text:
        return ''
    if text.isascii():
        return text
    parts = [p for p in _PARTS.split(text) if p]
    english = [_one(p) for p in parts]
    return None if any(e is None for e in english) else ' + '.join(english)


def promotion_text(text: str, lang: str, promotion_en: str = '') -> str:
    """The promotion as the customer should read it: as is in Chinese; in English the store's
    `promotion_en`, else the rule translation, else 'a promotion: <original>'."""
    if lang != 'en' or not text:
        return text
    if promotion_en:
        return promotion_en
    english = translate_promotion(text)
    return english if english is not None else f'a special offer ({text})'
