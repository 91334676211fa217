"""The recommender learns each store from its own history: planted stores, validation, re-buying."""
from __future__ import annotations

import re

import numpy as np
import pytest

from retail_common.catalog import Catalog
from retail_recommendation.evaluation import evaluate_popularity, leave_last_out, time_split
from retail_recommendation.evaluation import evaluate_hybrid
from retail_recommendation.history import History, Purchase
from retail_recommendation.recommender import Constraints, Recommender, Settings
from retail_recommendation.synthetic import make_catalog, zipf_store
from retail_recommendation.training import train

CJK = re.compile(r'[\u4e00-\u9fff]')


def _store(**kw) -> tuple[Catalog, History]:
    catalog, rows = zipf_store(**kw)
    return catalog, History.from_purchases(rows)


@pytest.fixture(scope='module')
def item_item():
    """Only item-item structure: uniform popularity, every purchase from the member's taste group."""
    catalog, history = _store(n_products=300, n_members=1500, seed=3, groups=30, zipf=0.0, group_share=1.0,
                              staple_share=0.0, rebuy=0.0, visits_mean=4.0)
    split = time_split(history, history.latest_ts - 60 * 86400, catalog.by_sku)
    model = train(catalog, split.train)
    return catalog, split, evaluate_hybrid(catalog, split, 10, model=model), evaluate_popularity(catalog, split, 10), model


@pytest.fixture(scope='module')
def popularity_only():
    """Only popularity: Zipf over the whole store, no taste groups, no re-buying."""
    catalog, history = _store(n_products=300, n_members=1500, seed=4, zipf=1.1, group_share=0.0,
                              staple_share=0.0, rebuy=0.0, visits_mean=4.0)
    split = time_split(history, history.latest_ts - 60 * 86400, catalog.by_sku)
    model = train(catalog, split.train)
    return catalog, split, evaluate_hybrid(catalog, split, 10, model=model), evaluate_popularity(catalog, split, 10), model


def test_item_item_structure_beats_popularity_by_a_wide_margin(item_item):
    _, split, hybrid, popularity, _ = item_item
    assert hybrid.members == popularity.members > 300
    assert hybrid.hit_rate >= 2.0 * popularity.hit_rate, (hybrid, popularity)


def test_popularity_only_store_does_not_lose_to_popularity(popularity_only):
    _, _, hybrid, popularity, _ = popularity_only
    assert hybrid.members == popularity.members > 300
    assert hybrid.hit_rate >= 0.97 * popularity.hit_rate, (hybrid, popularity)


def test_validation_picks_different_settings_for_the_two_stores(item_item, popularity_only):
    weights = [dict(re.findall(r'(\w+) ([\d.]+)', m.extra['settings'].split(';')[0])) for m in
               (item_item[2], popularity_only[2])]
    on_item_item, on_popularity = ({c for c, w in w.items() if float(w) > 0} for w in weights)
    assert on_item_item != on_popularity, weights
    assert 'cf' in on_item_item, weights  # the item-item component carries the first store
    # the robot's list of the popularity store may put members' re-bought products first (ties
    # broken by popularity); its discovery list, where owned products never come, is popularity's
    discovery = [dict(m[4].discovery.weights) for m in (item_item, popularity_only)]
    assert discovery[1]['pop'] > 0 and discovery[0]['cf'] > 0, discovery
    ratio = lambda w: float(w.get('pop', 0)) / max(float(w.get('cf', 0)), 1e-9)  # noqa: E731
    assert ratio(discovery[1]) > ratio(discovery[0]), discovery


def test_validation_report_is_logged_with_the_settings(item_item):
    _, _, hybrid, _, _ = item_item
    assert re.match(r'validation recall@10 0\.\d+ on \d+ members \(each component alone: ', hybrid.extra['validation'])


def _durable_store(rebuy: bool) -> tuple[Catalog, History]:
    """300 members buy a kettle (no `consumable` tag); when `rebuy`, most buy it again later."""
    catalog = make_catalog(60, seed=2)
    kettle, other = catalog.products[0], catalog.products[1]
    assert not kettle.consumable
    rows = []
    for m in range(300):
        rows.append(Purchase(f'k-{m}', kettle.sku, 1_000_000 + m * 600.0, 1, kettle.price_cny))
        rows.append(Purchase(f'k-{m}', other.sku, 1_100_000 + m * 600.0, 1, other.price_cny))
        if rebuy and m % 3:
            rows.append(Purchase(f'k-{m}', kettle.sku, 6_000_000 + m * 600.0, 1, kettle.price_cny))
    return catalog, History.from_purchases(rows)


@pytest.mark.parametrize('rebuy', [False, True])
def test_a_bought_durable_comes_back_only_when_members_rebuy_it(rebuy):
    catalog, history = _durable_store(rebuy)
    kettle = catalog.products[0].sku
    model = Recommender(catalog, history, settings=Settings())
    newcomer = History.from_purchases(list(history) + [Purchase('new', kettle, 7_000_000.0, 1, 9.0)])
    model = Recommender(catalog, newcomer, settings=Settings())
    skus = [r.sku for r in model.recommend('new', Constraints(in_stock_only=False), 20)]
    assert (kettle in skus) == rebuy
    if rebuy:
        again = [r for r in model.recommend('k-1', Constraints(in_stock_only=False), 5) if r.sku == kettle]
        assert again and again[0].reason_en.startswith('you buy this every ')


@pytest.fixture(scope='module')
def trained(item_item):
    catalog, split, _, _, _ = item_item
    return train(catalog, split.train)


def test_reasons_name_the_component_in_both_languages_without_brands(item_item, trained):
    catalog, split, _, _, _ = item_item
    model = trained
    seen = set()
    for customer in sorted(split.held_out)[:150]:
        for r in model.recommend(customer, Constraints(), 10):
            assert CJK.search(r.reason_zh) and re.match(r'^[A-Za-z]', r.reason_en), r
            assert not CJK.search(r.reason_en.split('on promotion:')[0]), r
            seen.add(r.component)
            if r.component == 'cf':
                assert r.reason_en.startswith('customers who bought your ') and r.reason_en.endswith('also bought this')
                assert r.reason_zh.startswith('买过您那款') and r.reason_zh.endswith('的顾客也买了这款')
    assert 'cf' in seen
    for r in model.recommend('', Constraints(), 10):
        assert r.reason_en in ('popular this week', 'a best seller in this store', 'matches what you asked for')


def test_training_is_deterministic_and_reports_its_time(item_item, trained):
    _, split, evaluated, _, _ = item_item  # the evaluation trained its own model on the same rows
    assert trained.settings.describe() == evaluated.extra['settings']
    assert trained.validation.describe().split('; ')[0] == evaluated.extra['validation'].split('; ')[0]
    assert trained.fit_seconds > 0 and np.isfinite(trained.fit_seconds)


def test_too_little_history_falls_back_to_the_documented_prior(tiny):
    _, _, model = tiny
    assert model.settings.weights == Settings().weights and model.settings.brand_tilt == Settings().brand_tilt
    assert model.validation.members == 0 and 'at least 30 needed' in model.validation.describe()


def test_leave_last_out_and_time_split_agree_on_who_is_asked():
    rows = [Purchase('a', 'X', 1.0, 1, 1.0), Purchase('a', 'Y', 5.0, 1, 1.0), Purchase('a', 'Z', 9.0, 1, 1.0),
            Purchase('b', 'Y', 6.0, 1, 1.0), Purchase('c', 'X', 2.0, 1, 1.0)]
    history = History.from_purchases(rows)
    split = time_split(history, 5.0, {'X', 'Y', 'Z'})
    assert split.held_out == {'a': 'Y'}  # b bought nothing before; c nothing after
    assert sorted(split.train.skus) == ['X', 'X']
    assert leave_last_out(history).held_out == {'a': 'Z'}
