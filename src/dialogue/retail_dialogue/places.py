"""Service places (restroom, checkout, service desk, VIP lounge, entrance, exit) found in a store by
their names, never by a fixed zone id.

A store's `zones.yaml` names its service zones as it likes (`restroom`, `restrooms`, `wc_1`; 洗手间 /
Restrooms). A zone of kind `service` is taken to be a place kind when its id or one of its names is
one of that kind's words (in either language, any case, `_`/`-` read as spaces); a customer's words
for the kind ("厕所", "toilet") then lead to that zone. A kind the store has no zone for leads
nowhere. The dock and other service zones without a known kind are reached by their own names.
"""
from __future__ import annotations

import re
from typing import Mapping

# place kind -> (Chinese words, English words)
PLACE_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    'checkout': (('收银台', '收银处', '收银', '结账', '结帐', '买单', '付款处', '付款', '付钱'),
                 ('checkout', 'checkouts', 'cashier', 'cash desk', 'till', 'tills', 'pay desk', 'pay')),
    'service_desk': (('服务台', '客服台', '客服中心', '客服', '售后', '售后服务台', '服务中心', '前台', '问询处'),
                     ('service desk', 'customer service', 'help desk', 'information desk', 'info desk', 'front desk')),
    'vip_lounge': (('贵宾室', '贵宾休息室', 'vip室', 'vip休息室', 'vip区', 'vip贵宾室'),
                   ('vip lounge', 'lounge', 'vip room')),
    'restroom': (('洗手间', '卫生间', '厕所'),
                 ('restroom', 'restrooms', 'toilet', 'toilets', 'bathroom', 'washroom', 'loo', 'wc')),
    'entrance': (('入口', '大门', '门口'), ('entrance', 'front door', 'way in')),
    'exit': (('出口',), ('exit', 'way out')),
}


def _plain(text: str) -> str:
    return re.sub(r'[\s_\-]+', ' ', text.strip().lower())


def kind_of(zone) -> str:
    """The place kind of a service zone ('' for a product zone or a service zone of no known kind)."""
    if getattr(zone, 'kind', '') != 'service':
        return ''
    names = {_plain(zone.id), _plain(zone.name_zh), _plain(zone.name_en)}
    for kind, (zh, en) in PLACE_WORDS.items():
        if names & {_plain(w) for w in (*zh, *en, kind)}:
            return kind
    return ''


def service_places(zones: Mapping[str, object]) -> dict[str, str]:
    """Place kind -> the store's zone id for it (the first zone in the file of each kind)."""
    places: dict[str, str] = {}
    for zone_id, zone in zones.items():
        kind = kind_of(zone)
        if kind:
            places.setdefault(kind, zone_id)
    return places


__all__ = ['PLACE_WORDS', 'kind_of', 'service_places']
