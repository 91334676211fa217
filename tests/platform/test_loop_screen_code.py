"""The screen's purchase code end to end (issue 23): the dialogue core shows an anonymous customer
a code with her recommended products and records it (`screen_code`); its events, uploaded to the
platform as the robot uploads them, and a till receipt carrying the code make the funnel count her
purchase (`purchased`, docs/metrics.md) — only for the code she was shown and a product of her
conversation. A member is shown no code (her receipt carries her member id)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from loop_support import DAY, chain
from platform_support import ADMIN
from retail_common.store import load_store
from retail_dialogue.manager import AskRecommendations, DialogueManager, Record, RecommendedProduct
from retail_platform.app import create_app
from retail_platform import funnel
from retail_platform.funnel import day_bounds

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'


def _conversation(customer: str) -> list[Record]:
    """A customer asks the real dialogue core for a laptop and hears two; she then leaves."""
    store = load_store(DEMO)
    manager = DialogueManager(store, new_code=lambda: 'K7Q2MX')
    records: list[Record] = []

    def run(effects) -> None:
        for effect in effects:
            if isinstance(effect, Record):
                records.append(effect)
            elif isinstance(effect, AskRecommendations):
                by = store.catalog.by_sku
                run(manager.on_recommendations(effect.query.track_id, [
                    RecommendedProduct(s, by[s].name_zh, by[s].name_en, by[s].price_cny, by[s].zone, '好', 'good')
                    for s in ('HW-MB14', 'LN-XXPRO16')]))
    run(manager.on_customer(8, customer, '王丽' if customer else ''))
    run(manager.on_utterance(8, '推荐一台6000以下的笔记本'))
    run(manager.on_customer_left(8))
    return records


def _upload(records: list[Record]) -> list[dict]:
    t0 = day_bounds(DAY)[0] + 11 * 3600
    return [{'event_id': f'sc-{i}', 'seq': i + 1, 'type': r.type, 'version': r.event.VERSION,
             'customer': r.customer_pseudonym, 'time': t0 + i, 'data': r.payload}
            for i, r in enumerate(records)]


@pytest.fixture
def api(engine_target):
    tokens = chain(engine_target)
    with TestClient(create_app(engine_target, ADMIN), raise_server_exceptions=False) as client:
        yield client, tokens


@pytest.mark.parametrize('code, sku, purchased', [
    ('K7Q2MX', 'HW-MB14', 1),        # the code she was shown, a product recommended to her
    ('K7Q2MX', 'LN-XXPRO16', 1),
    ('K7Q2MX', 'AP-MBA13', 0),       # her code, a product she was not shown
    ('ZZZZZZ', 'HW-MB14', 0),        # another code
    (None, 'HW-MB14', 0),            # no code on the receipt
])
def test_an_anonymous_customers_receipt_with_the_screens_code_is_her_purchase(api, code, sku, purchased):
    client, tokens = api
    records = _conversation('')
    [shown] = [r for r in records if r.type == 'screen_code']
    assert shown.payload == {'code': 'K7Q2MX', 'skus': ['HW-MB14', 'LN-XXPRO16']}
    got = client.post('/v1/robots/robot-1/events', json={'events': _upload(records)},
                      headers={'Authorization': f'Bearer {tokens["robot"]}'})
    assert got.status_code == 200 and got.json()['rejected'] == 0, got.text
    receipt = {'receipt_id': 'r-1', 'store_id': 's-1', 'time': day_bounds(DAY)[0] + 15 * 3600,
               'lines': [{'sku': sku, 'qty': 1, 'price_cny': 5999.0}], **({'code': code} if code else {})}
    manager = {'Authorization': f'Bearer {tokens["store_manager"]}'}
    imported = client.post('/v1/stores/s-1/receipts', content=(json.dumps(receipt) + '\n').encode(),
                           headers=manager)
    assert imported.status_code == 200 and imported.json()['stored'] == 1, imported.text
    funnel.refresh(client.app.state.storage.engine)   # what the app's background refresher does
    day = client.get('/v1/stores/s-1/funnel', params={'from': DAY, 'to': DAY}, headers=manager).json()['days'][0]
    assert (day['recommended'], day['purchased']) == (1, purchased)


def test_a_member_is_shown_no_code():
    records = _conversation('m-0001')
    assert [r.type for r in records if r.type == 'recommendation'] == ['recommendation']
    assert not [r for r in records if r.type == 'screen_code']
