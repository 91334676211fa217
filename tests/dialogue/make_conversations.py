"""Writes tests/data/dialogue/conversations.jsonl: the multi-turn conversation set of issue 13, over
the harbour store (tests/data/dialogue/harbour_store, not the demo).

Run it again after changing the harbour store: `python tests/dialogue/make_conversations.py`.
Expectations are written from the store data and the rules a shop assistant follows (a product's
own zone, in-stock alternatives of the same kind, the brand asked about...), never from what the
dialogue code answered. Each dialogue names the rule it checks; each turn may expect:
- `intent`; `products` (exact skus, in order); `products_first` (the reply starts with these); `products_all` (every product shown satisfies:
  category, brand, max_price, min_price, in_stock, promotion, cheaper_than_before); `products_min`;
- `refers_to` (n: the product shown is the n-th of the previous turn's); `compared` (the first two
  of the previous turn's);
- `guide_to` (a zone, or null), `guide_to_any` (one of these zones), `tour`, `staff_called`;
- `reply_has` / `reply_lacks` (substrings).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml

DATA = Path(__file__).resolve().parents[1] / 'data' / 'dialogue'
STORE = DATA / 'harbour_store'

PRODUCTS = list(csv.DictReader((STORE / 'catalog.csv').open(encoding='utf-8')))
for row in PRODUCTS:
    row['price'] = float(row['price_cny'])
    row['stock_n'] = int(row['stock'])
ZONES = yaml.safe_load((STORE / 'zones.yaml').read_text(encoding='utf-8'))
BY_SKU = {p['sku']: p for p in PRODUCTS}
CATEGORY_EN = {'tv': 'TVs', 'phone': 'phones', 'tablet': 'tablets', 'laptop': 'laptops', 'monitor': 'monitors',
               'printer': 'printers', 'game_console': 'game consoles', 'headphones': 'headphones',
               'speaker': 'speakers', 'air_fryer': 'air fryers', 'rice_cooker': 'rice cookers',
               'coffee_machine': 'coffee machines', 'kettle': 'kettles', 'refrigerator': 'fridges',
               'washing_machine': 'washing machines', 'air_conditioner': 'air conditioners', 'vacuum': 'vacuums',
               'hair_dryer': 'hair dryers', 'electric_toothbrush': 'electric toothbrushes'}


def own_zone(p: dict) -> str:
    """The store's rule: a product's own zone when it is a zone of the store, else its category's."""
    if p['zone'] in ZONES['zones']:
        return p['zone']
    return next(z for z, info in ZONES['zones'].items() if p['category'] in (info.get('categories') or ()))


def category_zh(category: str) -> str:
    return next(p['category_zh'] for p in PRODUCTS if p['category'] == category)


def brand_zh(brand: str) -> str:
    return next(p['brand_zh'] for p in PRODUCTS if p['brand'] == brand)


def in_stock(**where) -> list[dict]:
    return [p for p in PRODUCTS if p['stock_n'] > 0 and all(p[k] == v for k, v in where.items())]


def dialogue(rule: str, lang: str, *turns: tuple[str, dict]) -> dict:
    return {'rule': rule, 'lang': lang, 'turns': [{'say': say, 'expect': expect} for say, expect in turns]}


def build() -> list[dict]:
    out: list[dict] = []
    categories = sorted({p['category'] for p in PRODUCTS})
    # 1. "Do you have X?" -> yes/no with stock and price; sold out -> in-stock alternatives of the same
    #    kind; then "take me there" -> the product's OWN zone (or where the alternatives are).
    for p in PRODUCTS:
        for lang in ('zh', 'en'):
            ask = f'有{p["name_zh"]}吗' if lang == 'zh' else f'Do you have the {p["name_en"]}?'
            there = '好的，带我过去' if lang == 'zh' else 'ok, take me there'
            if p['stock_n'] > 0:
                price = f'{p["price"]:.0f}元' if lang == 'zh' else f'{p["price"]:,.0f} yuan'
                out.append(dialogue('have_product', lang,
                                    (ask, {'products': [p['sku']], 'reply_has': [price], 'guide_to': None}),
                                    (there, {'guide_to': own_zone(p), 'intent': 'guide_to'})))
            else:
                alternatives = in_stock(category=p['category'])
                expect = {'products_all': {'category': p['category'], 'in_stock': True},
                          'reply_has': ['缺货' if lang == 'zh' else 'sold out']}
                if alternatives:
                    expect['products_min'] = 1
                out.append(dialogue('out_of_stock_alternatives', lang, (ask, expect),
                                    (there, {'guide_to_any': sorted({own_zone(a) for a in alternatives})})))
    # 2. "Do you have <category>?" -> yes, with examples; "the second one?" -> that product;
    #    "which is better?" -> a comparison of the first two.
    for category in categories:
        stock = in_stock(category=category)
        if len(stock) < 2:
            continue
        for lang in ('zh', 'en'):
            ask = f'你们有{category_zh(category)}吗' if lang == 'zh' else f'do you have any {CATEGORY_EN[category]}?'
            second = '第二个多少钱' if lang == 'zh' else 'how much is the second one?'
            out.append(dialogue('reference', lang,
                                (ask, {'products_all': {'category': category, 'in_stock': True}, 'products_min': 2,
                                       'intent': 'find_product'}),
                                (second, {'refers_to': 2})))
            compare = '哪个更好' if lang == 'zh' else "what's the difference between them?"
            out.append(dialogue('compare', lang,
                                (ask, {'products_all': {'category': category}, 'products_min': 2}),
                                (compare, {'compared': True, 'intent': 'compare'})))
    # 3. Refinement by brand: a search, then "那华为的呢" / "what about Apple?".
    for category in categories:
        brands = sorted({p['brand'] for p in in_stock(category=category)})
        if len(brands) < 2:
            continue
        budget = max(p['price'] for p in in_stock(category=category)) + 1000
        for i, brand in enumerate(brands):
            lang = 'zh' if i % 2 == 0 else 'en'
            first = (f'给我推荐一款{category_zh(category)}，预算{budget:.0f}' if lang == 'zh'
                     else f'can you recommend {CATEGORY_EN[category]} under {budget:.0f}?')
            then = f'那{brand_zh(brand)}的呢' if lang == 'zh' else f'what about {brand}?'
            out.append(dialogue('refine_brand', lang,
                                (first, {'products_all': {'category': category, 'max_price': budget}, 'products_min': 1}),
                                (then, {'products_all': {'category': category, 'brand': brand}, 'products_min': 1})))
    # 4. Cheaper: "有没有冰箱" -> "便宜一点的" (every product cheaper than all shown before).
    for category in categories:
        stock = sorted(in_stock(category=category), key=lambda p: p['price'])
        if len(stock) < 2:
            continue
        product = stock[-1]
        for lang in ('zh', 'en'):
            ask = f'{product["name_zh"]}多少钱' if lang == 'zh' else f'how much is the {product["name_en"]}?'
            cheaper = '有没有便宜一点的' if lang == 'zh' else 'anything cheaper?'
            out.append(dialogue('refine_cheaper', lang, (ask, {'products': [product['sku']]}),
                                (cheaper, {'products_all': {'category': category, 'max_price': product['price'] - 0.01,
                                                            'in_stock': True}, 'products_min': 1})))
    # 5. "还有别的吗" / "any others?": other products of the same search, none shown again.
    for category in ('phone', 'laptop', 'tv', 'refrigerator'):
        for lang in ('zh', 'en'):
            ask = f'有没有{category_zh(category)}' if lang == 'zh' else f'do you sell {CATEGORY_EN[category]}?'
            more = '还有别的吗' if lang == 'zh' else 'any others?'
            out.append(dialogue('refine_more', lang, (ask, {'products_min': 1}),
                                (more, {'products_all': {'category': category, 'not_shown_before': True}})))
    # 6. A brand the store has, in a category it does not carry: no, and what there is instead.
    for brand, category in (('Huawei', 'tablet'), ('Apple', 'tv'), ('Dyson', 'refrigerator'), ('Sony', 'phone'),
                            ('Xiaomi', 'laptop'), ('Philips', 'tv')):
        for lang in ('zh', 'en'):
            ask = (f'你们有{brand_zh(brand)}{category_zh(category)}吗' if lang == 'zh'
                   else f'do you have {brand} {CATEGORY_EN[category]}?')
            out.append(dialogue('not_carried_brand', lang,
                                (ask, {'products_all': {'category': category, 'in_stock': True}, 'products_min': 1,
                                       'reply_has': ['没有' if lang == 'zh' else "don't carry"]})))
    # 7. Store-wide promotions: the current offers, best first, all in stock.
    for lang, ask in (('zh', '最近有什么优惠活动吗'), ('zh', '今天有什么促销'), ('zh', '有打折的吗'),
                      ('en', 'any promotions today?'), ('en', 'what deals do you have?'), ('en', 'is anything on sale?')):
        out.append(dialogue('promotions', lang,
                            (ask, {'intent': 'ask_promotion', 'products_min': 3,
                                   'products_all': {'promotion': True, 'in_stock': True},
                                   'reply_lacks': ['没有优惠', 'no promotions']})))
    for lang, ask, category in (('zh', '冰箱有什么优惠', 'refrigerator'), ('en', 'any deals on laptops?', 'laptop'),
                                ('zh', '电视有优惠吗', 'tv')):
        out.append(dialogue('promotions', lang, (ask, {'products_all': {'category': category, 'promotion': True},
                                                      'products_min': 1})))
    # 8. Tours: start, narration at each stop, next / skip / stop, a question mid-tour and on.
    first, second = ZONES['tours']['showroom'][0], ZONES['tours']['showroom'][1]
    for lang, start, nxt, stop in (('zh', '带我参观一下', '下一站', '结束参观'), ('en', 'show me around', 'next', 'stop the tour'),
                                   ('zh', '可以带我逛逛吗', '继续', '不参观了'), ('en', 'can you give me a tour?', 'next stop', "that's enough")):
        key = f'narration_{lang}'
        out.append(dialogue('tour', lang,
                            (start, {'tour': 'showroom', 'reply_has': [first[key]]}),
                            (nxt, {'reply_has': [second[key]], 'tour': None}),
                            (stop, {'intent': 'tour_control', 'guide_to': None})))
        question = 'iPhone 15多少钱' if lang == 'zh' else 'how much is the iPhone 15?'
        out.append(dialogue('tour_question', lang,
                            (start, {'tour': 'showroom'}),
                            (question, {'products_first': ['AP-IP15'], 'reply_has': [second[key]]})))
    # 9. Handing over: two turns not understood in a row -> staff offered; yes -> called with what
    #    the customer wanted; a customer may ask for a person at any time.
    for lang, a, b, yes in (('zh', '呃那个啥来着', '就是那个嗯', '好的'), ('en', 'blorp the flibber', 'zzz qqq', 'yes please'),
                            ('zh', '呃呃', '啊这个', '可以'), ('en', 'hmm', 'uh what', 'sure')):
        out.append(dialogue('staff_handover', lang,
                            (a, {'staff_called': False}),
                            (b, {'staff_called': False, 'reply_has': ['店员' if lang == 'zh' else 'staff']}),
                            (yes, {'staff_called': True})))
    for lang, first_turn, ask in (('zh', '有没有空气炸锅', '我想找个店员'), ('en', 'do you have any laptops?', 'can I talk to a human?'),
                                  ('zh', '华为P60多少钱', '叫个人工过来'), ('en', 'where are the TVs?', 'I want to speak to a sales assistant')):
        out.append(dialogue('staff_request', lang, (first_turn, {}), (ask, {'staff_called': True, 'intent': 'call_staff'})))
    # 10. Constraints: a new request replaces what conflicts and keeps what is compatible.
    out.append(dialogue('constraints_conflict', 'zh', ('Mate X5还有吗', {}),
                        ('给我推荐个手机，预算两千五', {'products_all': {'category': 'phone', 'max_price': 2500}, 'products_min': 2})))
    out.append(dialogue('constraints_conflict', 'en', ('is the Huawei P60 in stock?', {}),
                        ('recommend me a phone under 2500', {'products_all': {'category': 'phone', 'max_price': 2500},
                                                             'products_min': 2})))
    out.append(dialogue('constraints_conflict', 'zh', ('推荐一款华为手机，五千以内', {'products_all': {'brand': 'Huawei'}}),
                        ('那电视呢', {'products_all': {'category': 'tv'}, 'products_min': 1})))
    out.append(dialogue('constraints_compatible', 'zh', ('推荐一款华为手机', {}),
                        ('三千以内', {'products_all': {'category': 'phone', 'brand': 'Huawei', 'max_price': 3000},
                                      'products_min': 1})))
    out.append(dialogue('constraints_compatible', 'en', ('any good laptops under 6000?', {'products_all': {'max_price': 6000}}),
                        ('what about Huawei?', {'products_all': {'category': 'laptop', 'brand': 'Huawei', 'max_price': 6000},
                                                'products_min': 1})))
    out.append(dialogue('constraints_compatible', 'en', ('any good laptops under 6000?', {}),
                        ('what about Apple?', {'products_all': {'category': 'laptop'}, 'reply_lacks': ['Apple are']})))
    # 11. Budgets as recognisers write them.
    for lang, ask, cap in (('zh', '推荐一台电视，1万5千以内', 15000), ('zh', '推荐个笔记本，一点五万以内', 15000),
                           ('zh', '推荐冰箱，4千5以内', 4500), ('zh', '推荐手机，1万2以内', 12000), ('en', 'recommend a TV under 2.5k', 2500)):
        out.append(dialogue('budget', lang, (ask, {'products_all': {'max_price': cap, 'in_stock': True}, 'products_min': 1})))
    return out


def main() -> None:
    dialogues = build()
    path = DATA / 'conversations.jsonl'
    with path.open('w', encoding='utf-8') as handle:
        for i, d in enumerate(dialogues):
            handle.write(json.dumps({'id': f'c{i:03d}', **d}, ensure_ascii=False) + '\n')
    print(f'{len(dialogues)} dialogues -> {path}')


if __name__ == '__main__':
    main()
