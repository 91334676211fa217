"""A returning member's profile (what she said on an earlier visit) shapes her recommendations:
her category and budget when today's request is silent, never a brand she refused or a product
she turned down, her wanted brands first, and every reason says so. An empty or unusable
profile changes nothing."""
from __future__ import annotations

from retail_recommendation.profile import MemberProfile, recommend_with_profile
from retail_recommendation.recommender import Constraints


def _category_with_brands(catalog):
    by = {}
    for p in catalog.products:
        if p.in_stock:
            by.setdefault(p.category, []).append(p)
    return max(by.items(), key=lambda kv: len({p.brand for p in kv[1]}))


def test_the_profile_narrows_excludes_orders_and_is_named_in_every_reason(planted):
    catalog, history, model = planted
    category, products = _category_with_brands(catalog)
    brands = sorted({p.brand for p in products})
    prices = sorted(p.price_cny for p in products)
    budget = prices[len(prices) * 3 // 4]
    declined = products[0].sku
    profile = MemberProfile.from_dict({'category': category, 'max_price': budget,
                                       'brands_wanted': [brands[1]], 'brands_refused': [brands[0]],
                                       'declined_skus': [declined], 'unknown': 'ignored'})
    customer = history.customer_ids[0]
    items, used = recommend_with_profile(model, customer, Constraints(), profile, k=5)
    assert used and items
    for r in items:
        assert r.product.category == category and r.product.price_cny <= budget
        assert r.product.brand != brands[0] and r.sku != declined
        assert r.reason_en.startswith(f'last time you were looking at {category} under')
        assert r.reason_zh.startswith('上次您在看')
    wanted = [r.product.brand == brands[1] for r in items]
    assert wanted == sorted(wanted, reverse=True)      # wanted brand first
    # today's own words win over last visit's: another category asked for now
    other = next(c for c in sorted({p.category for p in catalog.products}) if c != category)
    today, _ = recommend_with_profile(model, customer, Constraints(category=other), profile, k=5)
    assert all(r.product.category == other for r in today)


def test_an_empty_or_unusable_profile_changes_nothing(planted):
    _, history, model = planted
    customer = history.customer_ids[0]
    plain = model.recommend(customer, Constraints(), 5)
    for data in ({}, {'category': 7, 'max_price': 'cheap', 'brands_wanted': 'x'},
                 {'max_price': float('nan')}):
        items, used = recommend_with_profile(model, customer, Constraints(),
                                             MemberProfile.from_dict(data), k=5)
        assert not used and [r.sku for r in items] == [r.sku for r in plain]


def test_a_profile_that_leaves_nothing_falls_back_to_the_plain_request(planted):
    _, history, model = planted
    customer = history.customer_ids[0]
    profile = MemberProfile.from_dict({'category': 'no such category'})
    items, used = recommend_with_profile(model, customer, Constraints(), profile, k=5)
    assert not used and items and 'last time' not in items[0].reason_en


def test_refused_brands_and_turned_down_products_never_come_back_in_any_request(planted):
    """The whole kind: exclusions hold with and without a category, brand or customer."""
    catalog, history, model = planted
    category, products = _category_with_brands(catalog)
    brand = products[0].brand
    top = [r.sku for r in model.recommend('', Constraints(category=category), 3)]
    for customer in ('', history.customer_ids[0]):
        for base in (Constraints(), Constraints(category=category)):
            from dataclasses import replace
            asked = replace(base, exclude_brands=(brand.upper(),), exclude_skus=tuple(top))
            for r in model.recommend(customer, asked, 20):
                assert r.product.brand.casefold() != brand.casefold() and r.sku not in top


def test_the_store_reads_the_platforms_profiles_and_skips_what_it_cannot_use(tmp_path):
    """<data_dir>/platform/profiles.json (the downlink writes it from the member records) becomes
    Store.profiles; a broken file or entry is reported and skipped, never a traceback."""
    import json
    import shutil
    from pathlib import Path

    from retail_common.profiles import sentence_for
    from retail_common.store import load_store
    demo = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'
    store_dir, platform = tmp_path / 'store', tmp_path / 'data' / 'platform'
    shutil.copytree(demo, store_dir)
    platform.mkdir(parents=True)
    assert load_store(store_dir, tmp_path / 'data').profiles == {}
    (platform / 'profiles.json').write_text(json.dumps({
        'm-1': {'category': 'laptop', 'max_price': 6000, 'brands_wanted': ['Huawei']},
        'm-2': {'category': 5}, 'm-3': 'junk', '': {'category': 'tv'}}), encoding='utf-8')
    store = load_store(store_dir, tmp_path / 'data')
    assert list(store.profiles) == ['m-1'] and store.profile_of('') is None
    assert any('3 unusable profile(s) skipped' in i for i in store.issues)
    assert sentence_for(store.profile_of('m-1'), store.catalog) == (
        '上次您在看6000元以下的笔记本电脑，想要华为',
        'last time you were looking at laptops under 6,000 yuan, Huawei preferred')
    for broken in (b'{"m-1": ', b'[1, 2]', b'\xff\xfe'):
        (platform / 'profiles.json').write_bytes(broken)
        store = load_store(store_dir, tmp_path / 'data')
        assert store.profiles == {} and any('profiles.json' in i for i in store.issues)


def test_last_visits_budget_is_not_applied_to_another_kind_of_product(planted):
    catalog, history, model = planted
    category, products = _category_with_brands(catalog)
    profile = MemberProfile.from_dict({'category': category, 'max_price': 1.0,
                                       'brands_refused': [products[0].brand]})
    other = next(c for c in sorted({p.category for p in catalog.products}) if c != category)
    items, used = recommend_with_profile(model, history.customer_ids[0], Constraints(category=other),
                                         profile, k=5)
    assert items and not used and all(r.product.category == other for r in items)
    assert all(not r.reason_zh.startswith('上次') for r in items)
