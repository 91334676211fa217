"""The chain's store data and each robot's downlink, on SQLite and PostgreSQL: store-level price,
stock, zone and promotion over one product master; promotions at chain, region and store level;
deltas that carry only what changed (a snapshot without `since`, or when it is too old or from
the future); members only where the store has a reason to know them, and on demand; a member
forgotten everywhere, also on a robot that comes back days later, with the confirmations shown."""
from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from platform_support import ADMIN
from retail_platform.app import create_app
from retail_platform.database import upgrade
from retail_platform.storage import Storage

A = {'Authorization': f'Bearer {ADMIN}'}


def product(sku: str, price: str = '10') -> dict:
    return dict(sku=sku, name_zh=f'商品{sku}', name_en=f'Product {sku}', aliases='', category='snacks',
                category_zh='零食', brand='Acme', brand_zh='极美', price_cny=price, zone='aisle-1',
                stock='5', tags='', promotion='', promotion_en='')


@pytest.fixture
def chain(engine_target):
    storage = Storage(engine_target)
    upgrade(storage.engine)
    storage.add_region('north', 'North')
    storage.add_region('south', 'South')
    storage.add_store('s-own', 'Own store', 'north')
    storage.add_store('s-near', 'Near store', 'north')
    storage.add_store('s-other', 'Other store', 'south')
    tokens = {'own': storage.issue_robot_token('robot-own', 's-own'),
              'other': storage.issue_robot_token('robot-other', 's-other'),
              'own2': storage.issue_robot_token('robot-own-2', 's-own'),
              'manager': storage.issue_staff_token('store_manager', 'ann', ['s-own'])}
    storage.close()
    with TestClient(create_app(engine_target, ADMIN, member_window_s=7 * 86400),
                    raise_server_exceptions=False) as client:
        yield client, tokens
        client.app.state.storage.close()


def bearer(token: str) -> dict:
    return {'Authorization': f'Bearer {token}'}


def downlink(client, token: str, robot: str, since: int | None = None) -> dict:
    response = client.get(f'/v1/robots/{robot}/downlink', headers=bearer(token),
                          params={} if since is None else {'since': since})
    assert response.status_code == 200, response.text
    return response.json()


def test_store_prices_and_promotion_levels_reach_only_their_stores(chain):
    client, tokens = chain
    assert client.put('/v1/products', headers=A, json={'products': [product('P-1'), product('P-2')]}
                      ).status_code == 200
    manager = bearer(tokens['manager'])
    assert client.put('/v1/stores/s-own/products/P-1', headers=manager,
                      json={'price_cny': 8.5, 'stock': 0, 'zone': 'front', 'promotion': '第二件半价'}
                      ).status_code == 200
    assert client.put('/v1/stores/s-other/products/P-1', headers=manager, json={'price_cny': 1}
                      ).status_code == 403
    assert client.put('/v1/stores/s-own/products/NOPE', headers=manager, json={'price_cny': 1}
                      ).status_code == 404
    for scope, pid in (('chain', 'p-chain'), ('region:north', 'p-north'), ('region:south', 'p-south'),
                       ('store:s-own', 'p-own'), ('store:s-near', 'p-near')):
        assert client.put(f'/v1/promotions/{pid}', headers=A,
                          json={'scope': scope, 'content': {'title': pid}}).status_code == 200
    own = downlink(client, tokens['own'], 'robot-own')
    other = downlink(client, tokens['other'], 'robot-other')
    assert own['full'] and other['full']
    p1 = {p['sku']: p for p in own['products']}['P-1']
    assert (p1['price_cny'], p1['stock'], p1['zone'], p1['promotion']) == ('8.5', '0', 'front', '第二件半价')
    assert {p['sku']: p for p in other['products']}['P-1']['price_cny'] == '10'      # the master's
    assert sorted(p['id'] for p in own['promotions']) == ['p-chain', 'p-north', 'p-own']
    assert sorted(p['id'] for p in other['promotions']) == ['p-chain', 'p-south']
    # a store manager writes its store's promotions only, never the region's or chain's
    assert client.put('/v1/promotions/p-own2', headers=manager,
                      json={'scope': 'store:s-own', 'content': {'title': 'x'}}).status_code == 200
    for scope in ('store:s-near', 'region:north', 'chain'):
        assert client.put('/v1/promotions/p-x', headers=manager,
                          json={'scope': scope, 'content': {}}).status_code == 403, scope
    assert client.put('/v1/promotions/p-north', headers=manager,          # not even by moving it:
                      json={'scope': 'store:s-own', 'content': {}}).status_code == 409   # 'taken'
    # removals come as removals
    assert client.delete('/v1/promotions/p-north', headers=A).status_code == 200
    assert client.put('/v1/products', headers=A, json={'remove': ['P-2']}).status_code == 200
    delta = downlink(client, tokens['own'], 'robot-own', own['version'])
    assert delta['promotions_removed'] == ['p-north'] and delta['products_removed'] == ['P-2']
    assert [p['id'] for p in delta['promotions']] == ['p-own2']
    assert downlink(client, tokens['other'], 'robot-other', other['version'])['promotions_removed'] == []


def test_a_price_change_is_a_delta_of_one_product(chain):
    client, tokens = chain
    rows = [product(f'S-{i:05d}', str(10 + i % 7)) for i in range(2000)]
    assert client.put('/v1/products', headers=A, json={'products': rows}).status_code == 200
    snapshot = downlink(client, tokens['own'], 'robot-own')
    assert snapshot['full'] and len(snapshot['products']) == 2000
    assert client.put('/v1/products', headers=A, json={'products': rows}).json()['version'] == \
        snapshot['version'], 'an upload without a change makes no new version'
    rows[1234] = product('S-01234', '99.9')
    version = client.put('/v1/products', headers=A, json={'products': rows}).json()['version']
    assert version > snapshot['version']
    delta = downlink(client, tokens['own'], 'robot-own', snapshot['version'])
    assert not delta['full'] and [p['sku'] for p in delta['products']] == ['S-01234']
    assert delta['products'][0]['price_cny'] == '99.9' and delta['version'] == version
    again = downlink(client, tokens['own'], 'robot-own', version)
    assert again['products'] == [] and again['version'] == version
    # from the future (another platform's version) or older than the kept log: a snapshot
    assert downlink(client, tokens['own'], 'robot-own', version + 1000)['full']
    chain_data = client.app.state.chain
    client.put('/v1/promotions/p-1', headers=A, json={'scope': 'chain', 'content': {}})
    assert chain_data.prune_changes(-1) > 0
    stale = downlink(client, tokens['own'], 'robot-own', snapshot['version'])
    assert stale['full'] and len(stale['products']) == 2000
    gzipped = client.get('/v1/robots/robot-own/downlink', headers={**bearer(tokens['own']),
                                                                    'Accept-Encoding': 'gzip'})
    assert gzipped.headers['content-encoding'] == 'gzip' and len(gzipped.json()['products']) == 2000


def test_bad_products_are_refused_whole(chain):
    client, _ = chain
    for bad, words in ((product('X', price='cheap'), 'price_cny'), ({**product('X'), 'category': 'Bad Cat'}, 'category'),
                       ({**product('X'), 'colour': 'red'}, 'colour'), (product(' '), 'products.1.sku')):
        response = client.put('/v1/products', headers=A, json={'products': [product('OK'), bad]})
        assert response.status_code == 422 and words in response.json()['detail'], response.text
    assert client.app.state.chain.version() == 0, 'nothing of a refused upload is stored'


def test_members_only_where_the_store_has_a_reason(chain):
    client, tokens = chain
    now = time.time()
    for member, consent, home in (('m-home', True, 's-own'), ('m-appt', True, 's-other'),
                                  ('m-visit', True, 's-other'), ('m-old-visit', True, 's-other'),
                                  ('m-elsewhere', True, 's-other'), ('m-no-consent', False, 's-own')):
        assert client.put(f'/v1/admin/members/{member}', headers=A, json={
            'consent': consent, 'home_store': home,
            'history': [{'sku': 'P-1', 'ts': '2026-11-01T10:00', 'qty': 1, 'price_cny': 9.5}]}
        ).status_code == 200
    assert client.post('/v1/stores/s-own/appointments', headers=A,
                       json={'customer': 'm-appt', 'time': '2026-12-24T10:00'}).status_code == 200
    own = bearer(tokens['own'])
    # the store's other robot recognised both visitors and fetched them on demand: a robot of
    # the store holds them, so their visits are reasons (events naming members no robot of
    # the store ever held are not: tests/platform/test_member_lookups_paced.py)
    for member in ('m-visit', 'm-old-visit'):
        assert client.get(f'/v1/robots/robot-own-2/members/{member}',
                          headers=bearer(tokens['own2'])).status_code == 200
    events = [{'event_id': f'v-{i}', 'seq': i, 'type': 'guide', 'customer': m, 'time': when,
               'data': {'zone': 'kitchen', 'status': 'started'}}
              for i, (m, when) in enumerate((('m-visit', now - 3600), ('m-old-visit', now - 30 * 86400)))]
    assert client.post('/v1/robots/robot-own/events', headers=own, json={'events': events}).json()['acked'] == 2
    snapshot = downlink(client, tokens['own'], 'robot-own')
    assert [m['member_id'] for m in snapshot['members']] == ['m-appt', 'm-home', 'm-visit']
    assert downlink(client, tokens['own'], 'robot-own', snapshot['version'])['members'] == []
    # a consenting member recognised at the store: on demand; a non-consenting one: never
    fetched = client.get('/v1/robots/robot-own/members/m-elsewhere', headers=own)
    assert fetched.status_code == 200 and fetched.json()['history'][0]['sku'] == 'P-1'
    assert client.get('/v1/robots/robot-own/members/m-no-consent', headers=own).status_code == 404
    assert client.get('/v1/robots/robot-other/members/m-home', headers=own).status_code == 403
    # a member who becomes relevant is sent; an answer lost on the way is sent again
    assert client.put('/v1/admin/members/m-old-visit', headers=A, json={
        'consent': True, 'home_store': 's-own'}).status_code == 200
    lost = downlink(client, tokens['own'], 'robot-own', snapshot['version'])
    again = downlink(client, tokens['own'], 'robot-own', snapshot['version'])
    assert [m['member_id'] for m in lost['members']] == [m['member_id'] for m in again['members']] == ['m-old-visit']
    # ...and one who no longer has a reason is dropped
    assert client.put('/v1/admin/members/m-home', headers=A, json={
        'consent': True, 'home_store': 's-other'}).status_code == 200
    later = downlink(client, tokens['own'], 'robot-own', again['version'])
    assert later['members_removed'] == ['m-home']
    assert downlink(client, tokens['own'], 'robot-own', later['version'])['members_removed'] == []
    other = downlink(client, tokens['other'], 'robot-other')
    assert 'm-no-consent' not in [m['member_id'] for m in other['members']]


def test_a_forgotten_member_leaves_the_platform_and_every_robot_confirms(chain):
    client, tokens = chain
    own = bearer(tokens['own'])
    assert client.put('/v1/admin/members/m-9', headers=A, json={'consent': True, 'home_store': 's-own'}
                      ).status_code == 200
    assert client.post('/v1/stores/s-own/appointments', headers=A,
                       json={'customer': 'm-9', 'time': '2026-12-24T10:00'}).status_code == 200
    other = bearer(tokens['other'])
    assert client.post('/v1/robots/robot-other/events', headers=other, json={'events': [
        {'event_id': 'o-1', 'seq': 1, 'type': 'guide', 'customer': 'm-9', 'time': time.time(),
         'data': {'zone': 'kitchen', 'status': 'started'}}]}).json()['acked'] == 1
    held = downlink(client, tokens['own'], 'robot-own')
    assert [m['member_id'] for m in held['members']] == ['m-9']
    analyst_free = client.post('/v1/admin/members/m-9/forget', headers=own)
    assert analyst_free.status_code == 403
    status = client.post('/v1/admin/members/m-9/forget', headers=A).json()
    assert status['pending'] == ['robot-other', 'robot-own'] and not status['complete']
    assert client.get('/v1/robots/robot-own/members/m-9', headers=own).status_code == 404
    delta = downlink(client, tokens['own'], 'robot-own', held['version'])
    assert delta['forget'] == ['m-9'] and delta['members'] == [] and delta['appointments_removed']
    assert downlink(client, tokens['own'], 'robot-own')['forget'] == ['m-9'], 'in snapshots too'
    assert client.post('/v1/robots/robot-own/forgotten/m-9', headers=own, json={'detail': 'done'}
                       ).status_code == 200
    assert downlink(client, tokens['own'], 'robot-own', delta['version'])['forget'] == []
    status = client.get('/v1/admin/members/m-9/forget', headers=A).json()
    assert status['pending'] == ['robot-other']
    # the other robot was offline: the tombstone waits in its stream
    assert downlink(client, tokens['other'], 'robot-other', 0)['forget'] == ['m-9']
    client.post('/v1/robots/robot-other/forgotten/m-9', headers=other, json={})
    assert client.get('/v1/admin/members/m-9/forget', headers=A).json()['complete']
    exported = client.get('/v1/stores/s-other/events', headers=A).json()['events']
    assert [e['customer'] for e in exported] == [''] and exported[0]['data'] == {'forgotten': True}
    assert client.put('/v1/admin/members/m-9', headers=A, json={'consent': True}).status_code == 422
    assert client.get('/v1/admin/members/m-unknown/forget', headers=A).status_code == 404


def test_a_moved_robot_gets_its_new_stores_data(chain, engine_target):
    client, tokens = chain
    client.put('/v1/promotions/p-own', headers=A, json={'scope': 'store:s-own', 'content': {}})
    client.put('/v1/promotions/p-other', headers=A, json={'scope': 'store:s-other', 'content': {}})
    first = downlink(client, tokens['own'], 'robot-own')
    storage = Storage(engine_target)
    storage.move_robot('robot-own', 's-other')
    storage.close()
    after = downlink(client, tokens['own'], 'robot-own', first['version'])
    assert after['store_id'] == 's-other'
    snapshot = downlink(client, tokens['own'], 'robot-own')
    assert [p['id'] for p in snapshot['promotions']] == ['p-other']


def test_the_downlink_answer_is_json_per_its_document(chain):
    client, tokens = chain
    document = client.app.openapi()
    assert '/v1/robots/{robot_id}/downlink' in document['paths']
    answer = downlink(client, tokens['own'], 'robot-own')
    assert set(json.loads(json.dumps(answer))) == set(
        document['components']['schemas']['DownlinkOut']['properties'])
