"""The committed demo history: the members the demo relies on behave as documented."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from retail_common.catalog import load_catalog
from retail_recommendation.history import load_history
from retail_recommendation.recommender import Constraints
from retail_recommendation.training import train

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'


@pytest.fixture(scope='module')
def demo():
    catalog = load_catalog(DEMO / 'catalog.csv')
    history = load_history(DEMO / 'history.csv', catalog.by_sku)
    return catalog, history, train(catalog, history)


def test_demo_history_is_clean_and_sized_for_the_repo(demo):
    _, history, _ = demo
    assert not history.issues
    assert len(set(history.customer_ids)) >= 2000
    assert (DEMO / 'history.csv').stat().st_size < 3_000_000


def test_huawei_member_asking_for_a_phone_under_3000(demo):
    _, _, model = demo
    items = model.recommend('m-000001', Constraints(category='phone', max_price=3000), 3)
    assert len(items) == 3
    assert all(r.product.in_stock and r.product.price_cny <= 3000 for r in items)
    assert items[0].product.brand == 'Huawei'
    assert items[0].reason_zh == '因为您购买过华为手机'
    assert items[0].reason_en == 'because you bought a Huawei phone'


def test_apple_member_asking_for_a_laptop(demo):
    _, _, model = demo
    top = model.recommend('m-000002', Constraints(category='laptop'), 3)[0]
    assert top.product.brand == 'Apple'
    assert top.reason_en.startswith('because you bought an Apple phone')


@pytest.mark.parametrize('member, sku', [('m-000003', 'HP-GT53'), ('m-000004', 'NS-ORIG50')])
def test_refill_members_get_their_consumable_first(demo, member, sku):
    _, _, model = demo
    top = model.recommend(member, Constraints(), 3)[0]
    assert top.sku == sku
    assert ('天前购买过，可以补货了' in top.reason_zh and 'time to restock' in top.reason_en
            or re.match('您每.{1,4}都买这款', top.reason_zh) and top.reason_en.startswith('you buy this every '))


def test_a_returned_phone_is_never_the_reason(tmp_path):
    """Issue 21: the member returned the Huawei phone (qty -1); the robot must not say "because you
    bought a Huawei phone" about it, nor learn their taste from it."""
    catalog = load_catalog(DEMO / 'catalog.csv')
    rows = (DEMO / 'history.csv').read_text(encoding='utf-8').rstrip('\n')
    returned = [line for line in rows.splitlines() if line.startswith('m-000001,') and ',HW-MATE60P,' in line]
    assert returned, 'the demo member bought the phone'
    customer, sku, _, _, price = returned[0].split(',')
    path = tmp_path / 'history.csv'
    path.write_text(rows + f'\n{customer},{sku},2025-06-01T10:00:00Z,-1,{price}\n', encoding='utf-8')
    history = load_history(path, catalog.by_sku)
    assert not [i for i in history.issues if 'matches no purchase' in str(i)]
    assert (customer, sku) not in set(zip(history.customer_ids, history.skus))
    items = train(catalog, history).recommend(customer, Constraints(category='phone', max_price=3000), 3)
    assert items
    for item in items:
        assert item.reason_en != 'because you bought a Huawei phone' and 'Mate 60' not in item.reason_en
        assert item.reason_zh != '因为您购买过华为手机' and 'Mate 60' not in item.reason_zh
