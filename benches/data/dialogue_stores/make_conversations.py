"""Writes benches/data/dialogue_stores/conversations.jsonl: the issue-24 evaluation over three stores
the dialogue was not written for (a phone & digital shop with brand corners, a big-appliance floor,
a department-store floor), half in Mandarin, half in English.

    .venv/bin/python benches/data/dialogue_stores/make_conversations.py

Written before the dialogue code was changed for them, and never tuned one by one: every
expectation follows from the store files and the rules a shop assistant follows (a product's own
zone from the catalog, service places by their names, in-stock alternatives of the same kind from
any brand, cheapest first, within the budget; a topic change drops the old brand...), never from
what the dialogue answered. Each dialogue names its `store` and its `rule` (the kind it checks);
the expectation keys are those of `retail_dialogue.conversations` (plus `products_set`).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml
from opencc import OpenCC

HERE = Path(__file__).resolve().parent
STORES = ('digital_plaza', 'appliance_hall', 'dept_floor')
T2 = OpenCC('s2t')

EN = {'phone': 'phones', 'tablet': 'tablets', 'laptop': 'laptops', 'headphones': 'headphones', 'smartwatch': 'smartwatches',
      'speaker': 'speakers', 'camera': 'cameras', 'phone_accessory': 'chargers', 'refrigerator': 'fridges',
      'washing_machine': 'washing machines', 'air_conditioner': 'air conditioners', 'tv': 'TVs',
      'dishwasher': 'dishwashers', 'range_hood': 'range hoods', 'hair_dryer': 'hair dryers',
      'electric_toothbrush': 'electric toothbrushes', 'shaver': 'shavers', 'air_fryer': 'air fryers',
      'rice_cooker': 'rice cookers', 'coffee_machine': 'coffee machines', 'blender': 'blenders', 'kettle': 'kettles',
      'air_purifier': 'air purifiers', 'vacuum': 'vacuums', 'massage_chair': 'massage chairs',
      'drone': 'drones', 'microwave': 'microwaves', 'projector': 'projectors', 'e_bike': 'e-bikes',
      'printer': 'printers', 'router': 'routers', 'game_console': 'game consoles', 'oven': 'ovens'}
ZH = {'drone': '无人机', 'microwave': '微波炉', 'projector': '投影仪', 'e_bike': '电动车', 'printer': '打印机',
      'router': '路由器', 'game_console': '游戏机', 'oven': '烤箱', 'air_conditioner': '空调', 'phone': '手机',
      'air_fryer': '空气炸锅', 'refrigerator': '冰箱', 'tv': '电视', 'camera': '相机', 'massage_chair': '按摩椅',
      'washing_machine': '洗衣机', 'headphones': '耳机', 'vacuum': '吸尘器'}
# place kind -> (zh questions, en questions): how shoppers ask for it
PLACES = {'restroom': (('洗手间在哪里', '厕所怎么走', '请问卫生间在哪'), ("where's the restroom?", 'where are the toilets', 'I need the bathroom')),
          'checkout': (('在哪里结账', '收银台在哪', '带我去收银台'), ('where do I pay?', 'take me to the checkout', 'where is the cashier')),
          'service_desk': (('服务台在哪里', '客服在哪'), ('where is customer service?', 'take me to the service desk')),
          'vip_lounge': (('贵宾室在哪', '带我去VIP休息室'), ('where is the VIP lounge?',)),
          'exit': (('出口在哪里', '怎么出去，出口在哪'), ('where is the exit?', 'how do I get out, where is the exit')),
          'entrance': (('入口在哪',), ('where is the entrance?',))}
PLACE_NAMES = {'restroom': {'洗手间', '卫生间', 'restrooms', 'toilets'}, 'checkout': {'收银台', '收银处', 'checkout', 'cashier'},
               'service_desk': {'服务台', '客服中心', 'customer service', 'service desk'},
               'vip_lounge': {'贵宾室', 'vip休息室', 'vip lounge'}, 'exit': {'出口', 'exit'}, 'entrance': {'入口', 'entrance'}}
UNSOLD = ('drone', 'microwave', 'projector', 'e_bike', 'printer', 'router', 'game_console', 'oven', 'air_conditioner',
          'phone', 'air_fryer', 'refrigerator', 'tv', 'camera', 'massage_chair', 'washing_machine', 'headphones', 'vacuum')


class Store:
    def __init__(self, name: str) -> None:
        self.name = name
        self.products = list(csv.DictReader((HERE / name / 'catalog.csv').open(encoding='utf-8')))
        for p in self.products:
            p['price'] = float(p['price_cny'])
            p['in'] = int(p['stock']) > 0
        doc = yaml.safe_load((HERE / name / 'zones.yaml').read_text(encoding='utf-8'))
        self.zones, self.tours = doc['zones'], doc['tours']
        self.categories = sorted({p['category'] for p in self.products})

    def own_zone(self, p: dict) -> str:
        if p['zone'] in self.zones:
            return p['zone']
        return next(z for z, info in self.zones.items() if p['category'] in (info.get('categories') or ()))

    def place(self, kind: str) -> str | None:
        return next((z for z, info in self.zones.items() if info['kind'] == 'service'
                     and {info['name_zh'].lower(), info['name_en'].lower()} & PLACE_NAMES[kind]), None)

    def of(self, category: str, stock: bool | None = None) -> list[dict]:
        return [p for p in self.products if p['category'] == category and (stock is None or p['in'] == stock)]

    def cat_zh(self, category: str) -> str:
        return next(p['category_zh'] for p in self.products if p['category'] == category)


def d(store: Store, rule: str, lang: str, *turns: tuple[str, dict]) -> dict:
    return {'store': store.name, 'rule': rule, 'lang': lang, 'turns': [{'say': s, 'expect': e} for s, e in turns]}


def yuan(price: float, lang: str) -> str:
    return f'{price:.0f}元' if lang == 'zh' else f'{price:,.0f} yuan'


def have_product(s: Store) -> list[dict]:
    out = []
    for p in [p for p in s.products if p['in']]:
        alias = p['aliases'].split('|')[-1]
        out.append(d(s, 'have_product', 'zh', (f'{alias}多少钱', {'products': [p['sku']], 'reply_has': [yuan(p['price'], 'zh')]}),
                     ('好的，带我去', {'guide_to': s.own_zone(p)})))
        out.append(d(s, 'have_product', 'en', (f"how much is the {p['name_en']}?", {'products': [p['sku']],
                                                                                  'reply_has': [yuan(p['price'], 'en')]}),
                     ('ok, take me there', {'guide_to': s.own_zone(p)})))
    return out


def not_sold(s: Store) -> list[dict]:
    out = []
    for category in [c for c in UNSOLD if c not in s.categories][:5]:
        out.append(d(s, 'not_sold', 'zh', (f'你们有{ZH[category]}吗', {'products': [], 'guide_to': None,
                                                                    'reply_has': ['不卖', ZH[category]]})))
        out.append(d(s, 'not_sold', 'en', (f'do you sell {EN[category]}?', {'products': [], 'guide_to': None,
                                                                           'reply_has': ["don't sell", EN[category]]})))
    return out


def compare_named(s: Store) -> list[dict]:
    out = []
    for category in s.categories:
        pair = [p for p in s.of(category)][:2]
        if len(pair) < 2 or pair[0]['price'] == pair[1]['price']:
            continue
        a, b = pair
        cheaper = min(pair, key=lambda p: p['price'])
        out.append(d(s, 'compare_named', 'zh', (f"{a['name_zh']}和{b['name_zh']}哪个便宜",
                                                {'products_set': [a['sku'], b['sku']], 'reply_has': [cheaper['name_zh']]})))
        out.append(d(s, 'compare_named', 'en', (f"which is cheaper, the {a['name_en']} or the {b['name_en']}?",
                                                {'products_set': [a['sku'], b['sku']], 'reply_has': [cheaper['name_en']]})))
    return out


def out_of_stock(s: Store) -> list[dict]:
    out = []
    for p in [p for p in s.products if not p['in']]:
        others = sorted(s.of(p['category'], True), key=lambda q: q['price'])
        if not others:
            continue
        want = {'products_first': [others[0]['sku']], 'products_all': {'category': p['category'], 'in_stock': True}}
        out.append(d(s, 'out_of_stock', 'zh', (f"{p['name_zh']}有货吗", {**want, 'reply_has': ['缺货']}),
                     ('好的，带我去', {'guide_to': s.own_zone(others[0])})))
        out.append(d(s, 'out_of_stock', 'en', (f"is the {p['name_en']} in stock?", {**want, 'reply_has': ['sold out']}),
                     ('ok, take me there', {'guide_to': s.own_zone(others[0])})))
        budget = sorted({q['price'] for q in others})
        if len(budget) > 1:                  # a budget said before: only what fits, cheapest first
            cap = budget[-2] + 1
            fit = [q for q in others if q['price'] <= cap]
            want = {'products_first': [fit[0]['sku']], 'products_all': {'category': p['category'], 'in_stock': True,
                                                                       'max_price': cap}}
            out.append(d(s, 'out_of_stock', 'zh', (f"我想买{s.cat_zh(p['category'])}，预算{cap:.0f}以内", {}),
                         (f"{p['name_zh']}有货吗", want)))
            out.append(d(s, 'out_of_stock', 'en', (f"I want {EN[p['category']]}, my budget is under {cap:.0f}", {}),
                         (f"is the {p['name_en']} in stock?", want)))
    return out


def subject(s: Store) -> list[dict]:
    out = []
    for p in [p for p in s.products if not p['in'] and s.of(p['category'], True)]:
        out.append(d(s, 'subject', 'zh', (f"有{p['name_zh']}吗", {}), ('它什么时候有货', {'products': [p['sku']]})))
        out.append(d(s, 'subject', 'en', (f"do you have the {p['name_en']}?", {}), ('is it in stock?', {'products': [p['sku']]})))
    for category in s.categories:
        items = s.of(category, True)
        brands = [b for b in {q['brand'] for q in items} if sum(q['brand'] == b for q in items) == 1]
        if len(items) < 3 or not brands:
            continue
        q = next(q for q in items if q['brand'] == sorted(brands)[0])
        out.append(d(s, 'subject', 'zh', (f'有{s.cat_zh(category)}吗', {}),
                     (f"{q['brand_zh']}那款多少钱", {'products': [q['sku']], 'reply_has': [yuan(q['price'], 'zh')]})))
        out.append(d(s, 'subject', 'en', (f'do you have {EN[category]}?', {}),
                     (f"how much is the {q['brand']} one?", {'products': [q['sku']], 'reply_has': [yuan(q['price'], 'en')]})))
    return out


def topic_change(s: Store) -> list[dict]:
    out = []
    cats = [c for c in s.categories if s.of(c, True)]
    for i, first in enumerate(cats):
        second = cats[(i + 1) % len(cats)]
        brand = next(p for p in s.of(first, True))
        if any(p['brand'] == brand['brand'] for p in s.of(second)):
            continue
        out.append(d(s, 'topic_change', 'zh', (f"有没有{brand['brand_zh']}的{s.cat_zh(first)}", {}),
                     (f'先不看{s.cat_zh(first)}了，有没有{s.cat_zh(second)}', {
                         'products_all': {'category': second}, 'products_min': 1, 'reply_lacks': [brand['brand_zh']]})))
        out.append(d(s, 'topic_change', 'en', (f"do you have {brand['brand']} {EN[first]}?", {}),
                     (f'forget the {EN[first]}, do you have {EN[second]}?', {
                         'products_all': {'category': second}, 'products_min': 1, 'reply_lacks': [brand['brand']]})))
    return out


def service_place(s: Store) -> list[dict]:
    out = []
    product = next(p for p in s.products if p['in'])
    for kind, (zh, en) in PLACES.items():
        zone = s.place(kind)
        for n, (zh_q, en_q) in enumerate(zip(zh, en)):
            want = {'guide_to': zone} if zone else {'guide_to': None, 'products': []}
            if n % 2:       # asked mid-conversation, after a product: the place wins
                out.append(d(s, 'service_place', 'zh', (f"有{product['name_zh']}吗", {}), (zh_q, want)))
                out.append(d(s, 'service_place', 'en', (f"do you have the {product['name_en']}?", {}), (en_q, want)))
            else:
                out.append(d(s, 'service_place', 'zh', (zh_q, want)))
                out.append(d(s, 'service_place', 'en', (en_q, want)))
    checkout = s.place('checkout')
    out.append(d(s, 'service_place', 'zh', (f"有{product['name_zh']}吗", {}), ('我要这个，带我去收银台', {'guide_to': checkout})))
    out.append(d(s, 'service_place', 'en', (f"do you have the {product['name_en']}?", {}),
                 ("I'll take it, take me to the checkout", {'guide_to': checkout})))
    return out


def smalltalk(s: Store) -> list[dict]:
    out = []
    product = next(p for p in s.products if p['in'])
    none = {'guide_to': None, 'tour': None, 'staff_called': False, 'products': []}
    for zh, en in (('谢谢，我自己再逛逛', "thanks, I'll just look around myself"), ('好的谢谢', 'ok thank you'),
                   ('不用了，再见', 'no thanks, bye'), ('你好', 'hello there'), ('今天天气不错', 'nice weather today')):
        out.append(d(s, 'smalltalk', 'zh', (f"{product['name_zh']}多少钱", {}), (zh, none)))
        out.append(d(s, 'smalltalk', 'en', (f"how much is the {product['name_en']}?", {}), (en, none)))
    return out


def tour(s: Store) -> list[dict]:
    out = []
    route = next(iter(s.tours))
    stops = [stop['zone'] for stop in s.tours[route]]
    for lang, start, ask, skip in (('zh', '带我参观一下', '这里有什么优惠吗', '跳过下一站'),
                                   ('en', 'show me around', 'any deals here?', 'skip the next stop')):
        name = 'name_zh' if lang == 'zh' else 'name_en'
        out.append(d(s, 'tour', lang, (start, {'tour': route}), (ask, {'reply_has': [s.zones[stops[0]][name]]}),
                     (skip, {'intent': 'tour_control', 'reply_has': [s.zones[stops[2]][name]]})))
    return out


def price_units(s: Store) -> list[dict]:
    out = []
    for category in s.categories:
        items = s.of(category, True)
        if len(items) < 2:
            continue
        prices = sorted(p['price'] for p in items)
        cap = prices[1]
        zh_cap = f'{cap / 10000:g}万' if cap >= 10000 else f'{cap:.0f}'
        out.append(d(s, 'price_units', 'zh', (f'{s.cat_zh(category)}{zh_cap}以内的有哪些', {
            'products_all': {'category': category, 'max_price': cap}, 'products_min': 1})))
        out.append(d(s, 'price_units', 'en', (f'any {EN[category]} under {cap / 1000:g}k?', {
            'products_all': {'category': category, 'max_price': cap}, 'products_min': 1})))
        low = prices[-1]
        thousand = int(low // 1000) * 1000
        if thousand >= 1000:
            words = {1000: '一千', 2000: '两千', 3000: '三千', 4000: '四千', 5000: '五千', 6000: '六千', 7000: '七千',
                     8000: '八千', 9000: '九千', 12000: '一万二', 13000: '一万三', 15000: '一万五'}.get(thousand)
            if words:
                want = {'products_all': {'category': category, 'min_price': thousand, 'max_price': thousand + 999},
                        'products_min': 1}
                if thousand == 12000 or thousand == 13000 or thousand == 15000:
                    want['products_all']['max_price'] = thousand + 999
                out.append(d(s, 'price_units', 'zh', (f'有没有{words}多的{s.cat_zh(category)}', want)))
                cap = thousand + 1000           # "under <cap> grand" holds the dearest
                grand = {2000: 'two', 3000: 'three', 4000: 'four', 5000: 'five', 6000: 'six'}.get(cap)
                if grand:
                    out.append(d(s, 'price_units', 'en', (f'{EN[category]} for under {grand} grand?', {
                        'products_all': {'category': category, 'max_price': cap}, 'products_min': 1})))
    return out


def sizes(s: Store) -> list[dict]:
    out = []
    for category in s.categories:
        sized: dict[str, list[dict]] = {}
        for p in s.of(category, True):
            for tag in p['tags'].split('|'):
                if '_' in tag and tag.split('_')[0].replace('.', '').isdigit() and tag.split('_')[1] in ('inch', 'l', 'kg', 'hp'):
                    sized.setdefault(tag, []).append(p)
        for tag, items in sorted(sized.items()):
            value, unit = tag.split('_')
            zh_unit = {'inch': '寸', 'l': '升', 'kg': '公斤', 'hp': '匹'}[unit]
            en_unit = {'inch': '-inch', 'l': ' litre', 'kg': 'kg', 'hp': 'hp'}[unit]
            skus = [p['sku'] for p in items]
            out.append(d(s, 'sizes', 'zh', (f'有没有{value}{zh_unit}的{s.cat_zh(category)}', {'products_set': skus})))
            out.append(d(s, 'sizes', 'en', (f'do you have a {value}{en_unit} {EN[category].rstrip("s")}?',
                                            {'products_set': skus})))
    return out


def speech(s: Store) -> list[dict]:
    """ASR text: no punctuation, fillers, repeats, mixed languages, traditional characters, full-width digits."""
    out = []
    for p in [p for p in s.products if p['in']][::3]:
        out.append(d(s, 'speech', 'zh', (f"嗯 那个 {p['name_zh']} 有货吗", {'products': [p['sku']]})))
        out.append(d(s, 'speech', 'zh', (T2.convert(f"請問{p['name_zh']}多少錢"), {'products': [p['sku']]})))
        out.append(d(s, 'speech', 'en', (f"um like do you have the the {p['name_en']}", {'products': [p['sku']]})))
        out.append(d(s, 'speech', 'en', (f"so um how much is the {p['name_en']} please", {'products': [p['sku']]})))
    restroom = s.place('restroom')
    out.append(d(s, 'speech', 'zh', ('那个洗手间在哪里啊', {'guide_to': restroom})))
    out.append(d(s, 'speech', 'en', ('um where is the uh restroom', {'guide_to': restroom})))
    return out


def staff_and_there(s: Store) -> list[dict]:
    out = []
    for p in [p for p in s.products if p['in']][1::4]:
        out.append(d(s, 'take_me_there', 'en', (f"do you have the {p['name_en']}?", {}),
                     ('ok, take me to that one', {'guide_to': s.own_zone(p)})))
        out.append(d(s, 'take_me_there', 'zh', (f"{p['name_zh']}有吗", {}), ('好的 带我过去吧', {'guide_to': s.own_zone(p)})))
        out.append(d(s, 'take_me_there', 'en', (f"is the {p['name_en']} in stock?", {}),
                     ('take me there please', {'guide_to': s.own_zone(p)})))
        out.append(d(s, 'take_me_there', 'zh', (f"{p['name_zh']}多少钱", {}), ('行 带我去看看', {'guide_to': s.own_zone(p)})))
    for zh, en in (('我想找个店员', 'can I talk to someone?'), ('叫一下工作人员', 'I need a member of staff')):
        out.append(d(s, 'talk_to_someone', 'zh', (zh, {'staff_called': True})))
        out.append(d(s, 'talk_to_someone', 'en', (en, {'staff_called': True})))
    return out


KINDS = (have_product, not_sold, compare_named, out_of_stock, subject, topic_change, service_place, smalltalk, tour,
         price_units, sizes, speech, staff_and_there)


def build() -> list[dict]:
    out = []
    for name in STORES:
        store = Store(name)
        for kind in KINDS:
            out += kind(store)
    for n, dialogue in enumerate(out):
        dialogue['id'] = f'e{n:03d}'
    return out


if __name__ == '__main__':
    dialogues = build()
    path = HERE / 'conversations.jsonl'
    path.write_text(''.join(json.dumps(x, ensure_ascii=False) + '\n' for x in dialogues), encoding='utf-8')
    langs = sum(x['lang'] == 'en' for x in dialogues)
    print(f'{len(dialogues)} dialogues ({langs} in English) -> {path}')
