"""Behaviour a shopper or the store would notice: constraints, no repeats, refills, reasons."""
from __future__ import annotations

import math
import re

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retail_recommendation.history import History
from retail_recommendation.recommender import Constraints, Recommender

CJK = re.compile(r'[\u4e00-\u9fff]')


def _owned(model: Recommender, customer: str) -> set[str]:
    items, _, _ = model.purchases_of(customer)
    return {model.products[i].sku for i in items}


@st.composite
def requests(draw, catalog, customers):
    categories = sorted({p.category for p in catalog.products})
    brands = sorted({p.brand for p in catalog.products})
    low = draw(st.sampled_from([0.0, 0.0, 50.0, 500.0, 1500.0, 3000.0]))
    high = draw(st.sampled_from([0.0, 0.0, 100.0, 1000.0, 3000.0, 8000.0]))
    return (draw(st.sampled_from(['', 'never-seen'] + customers)),
            Constraints(category=draw(st.sampled_from([''] + categories)),
                        brand=draw(st.sampled_from(['', 'NoSuchBrand'] + brands)),
                        min_price=low, max_price=high),
            draw(st.integers(min_value=1, max_value=30)))


def test_constraints_always_hold(planted):
    catalog, history, model = planted
    customers = sorted(set(history.customer_ids))[:300]

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(requests(catalog, customers))
    def check(request):
        customer, constraints, k = request
        items = model.recommend(customer, constraints, k)
        assert len(items) <= k
        assert len({r.sku for r in items}) == len(items)
        for r in items:
            assert constraints.admits(r.product), (constraints, r.product)
            assert r.product.in_stock
        # Nothing admissible was left out while the list is short.
        if len(items) < k:
            owned = _owned(model, customer)
            admissible = [p for p in catalog.products if constraints.admits(p)
                          and (p.consumable or p.sku not in owned)]
            assert len(items) == len(admissible)
        scores = [r.score for r in items]
        assert scores == sorted(scores, reverse=True)

    check()


def test_no_durable_the_member_already_bought_comes_back(planted):
    catalog, history, model = planted
    repeats = 0
    for customer in sorted(set(history.customer_ids))[:400]:
        owned = _owned(model, customer)
        for r in model.recommend(customer, Constraints(), 20):
            if r.sku in owned:
                assert r.product.consumable, f'{customer} got {r.sku} again'
                repeats += 1
    assert repeats > 0  # consumables do come back (checked in detail below)


def test_consumables_come_back_with_a_restock_reason(planted):
    catalog, history, model = planted
    refill_buyers = {}
    for p in history:
        if catalog.by_sku[p.sku].consumable:
            refill_buyers.setdefault(p.customer_id, p.sku)
    assert len(refill_buyers) > 50
    found = 0
    for customer, sku in list(refill_buyers.items())[:100]:
        top = model.recommend(customer, Constraints(in_stock_only=False), 5)
        match = [r for r in top if r.sku == sku]
        if match:
            found += 1
            assert re.fullmatch(r'(您\d+天前购买过，可以补货了|您每.{1,4}都买这款)(；促销：.*)?', match[0].reason_zh)
            assert re.match(r'you (bought this \d+ days? ago; time to restock|buy this every )', match[0].reason_en)
    assert found >= 90


def test_tiny_store_refill_and_fitting_ink(tiny):
    _, _, model = tiny
    items = model.recommend('m-2', Constraints(category='printer_ink'), 2)
    assert [r.sku for r in items] == ['HP-INK1', 'HP-INK2']
    assert items[0].reason_zh == '您每2个月都买这款'  # 2026-01-10 and 2026-03-10
    assert items[0].reason_en == 'you buy this every 2 months'


def test_a_printer_owner_is_offered_the_ink_that_fits(tiny):
    catalog, history, _ = tiny
    # m-9 owns the printer but has never bought ink: the compatible one comes first.
    rows = history.select(np.array(history.customer_ids) == 'm-2')
    first = History.from_purchases([p for p in rows if p.sku == 'HP-PR1'])
    first.customer_ids = ['m-9']
    model = Recommender(catalog, first)
    top = model.recommend('m-9', Constraints(category='printer_ink'), 2)
    assert top[0].sku == 'HP-INK1'
    assert top[0].reason_zh == '适配您的惠普 打印机'
    assert top[0].reason_en == 'fits your HP printer 1'


def test_brand_loyal_member_gets_their_brand_with_the_reason(tiny):
    _, _, model = tiny
    items = model.recommend('m-1', Constraints(category='phone', max_price=3000), 3)
    assert items[0].sku == 'HW-N1'  # Huawei, in stock, under 3000; HW-P1 already owned
    assert items[0].reason_zh == '因为您购买过华为手机'
    assert items[0].reason_en == 'because you bought a Huawei phone'
    assert 'HW-E1' not in [r.sku for r in items]  # out of stock


def test_new_customer_gets_the_category_best_sellers_by_distinct_buyers(planted):
    catalog, history, model = planted
    half_life = model.settings.popularity_half_life_days
    last: dict[tuple[str, str], float] = {}  # (member, sku) -> last purchase, from the raw rows
    for p in history:
        last[(p.customer_id, p.sku)] = max(last.get((p.customer_id, p.sku), 0.0), p.ts)
    buyers: dict[str, float] = {}
    for (_, sku), ts in last.items():
        age_days = (history.latest_ts - ts) / 86400
        buyers[sku] = buyers.get(sku, 0.0) + (0.5 ** (age_days / half_life) if math.isfinite(half_life) else 1.0)
    for category in ('phone', 'tv', 'air_fryer'):
        items = model.recommend('', Constraints(category=category), 3)
        assert len(items) == 3
        in_stock = sorted(((buyers.get(p.sku, 0.0), p.promotion != '') for p in catalog.products
                           if p.category == category and p.in_stock), reverse=True)
        assert buyers.get(items[0].sku, 0) >= in_stock[2][0] - 1e-9, category  # a top-3 product leads
        assert all(buyers.get(r.sku, 0) >= np.median([b for b, _ in in_stock]) for r in items), category
        assert model.recommend('brand-new-member', Constraints(category=category), 3) == items
        assert all(r.reason_zh for r in items)


def test_anonymous_without_any_history_still_gets_promotions_first(tiny):
    catalog, _, _ = tiny
    model = Recommender(catalog, None)
    items = model.recommend('', Constraints(category='phone'), 5)
    assert items[0].sku == 'MI-1'  # the only promoted phone
    assert items[0].reason_zh == '促销：满2000减200'
    assert items[0].reason_en == 'on promotion: 满2000减200'
    assert [r for r in items if not r.product.promotion][0].reason_en == 'matches what you asked for'


def test_every_item_has_a_reason_in_both_languages(planted):
    _, history, model = planted
    customers = [''] + sorted(set(history.customer_ids))[:200]
    for customer in customers:
        for r in model.recommend(customer, Constraints(), 10):
            assert CJK.search(r.reason_zh), r.reason_zh
            english = r.reason_en.split('on promotion:')[0]  # the promotion is the store's own text
            assert re.match(r'^[A-Za-z]', r.reason_en) and not CJK.search(english), r.reason_en
            assert r.reason('en') == r.reason_en and r.reason('zh') == r.reason_zh


def test_unknown_category_or_zero_k_gives_nothing(planted):
    _, _, model = planted
    assert model.recommend('', Constraints(category='spaceship'), 5) == []
    assert model.recommend('', Constraints(), 0) == []


def test_rebuilding_with_new_history_changes_suggestions(tiny):
    catalog, history, model = tiny
    assert _owned(model, 'm-5') == {'MI-1'}
    extra = History.from_purchases(list(history) + [
        p.__class__('m-5', 'TV-1', p.ts + 60, 1, 1599.0) for p in history if p.customer_id == 'm-5'])
    rebuilt = Recommender(catalog, extra)
    assert _owned(rebuilt, 'm-5') == {'MI-1', 'TV-1'}
    assert 'TV-1' not in [r.sku for r in rebuilt.recommend('m-5', Constraints(), 20)]


def test_margin_and_promotion_break_ties_for_the_store(tiny):
    catalog, _, _ = tiny
    twin = catalog.by_sku['HW-CASE']
    products = [twin,
                twin.__class__(**{**twin.__dict__, 'sku': 'HW-CASE-M', 'tags': ('margin=0.4',)}),
                twin.__class__(**{**twin.__dict__, 'sku': 'HW-CASE-P', 'promotion': '第二件半价'})]
    model = Recommender(catalog.__class__(path='twins', products=products), None)
    ranked = [r.sku for r in model.recommend('', Constraints(), 3)]
    assert set(ranked[:2]) == {'HW-CASE-M', 'HW-CASE-P'} and ranked[2] == 'HW-CASE'
