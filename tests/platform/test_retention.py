"""Bounded growth: every API process prunes the downlink change log (older than its retention:
a robot further behind then gets a full snapshot, never a wrong delta) and old flags on a
schedule, while it serves. On SQLite and PostgreSQL; the check waits (bounded) for the pass."""
from __future__ import annotations

import time

import sqlalchemy as sa
from fastapi.testclient import TestClient

from platform_support import ADMIN
from retail_platform import schema as t
from retail_platform.app import create_app
from retail_platform.chain import changes
from retail_platform.retention import Retention
from retail_platform.storage import Storage

ADMIN_H = {'Authorization': f'Bearer {ADMIN}'}
PRODUCT = dict(sku='P-1', name_zh='牛奶', name_en='Milk', aliases='', category='dairy',
               category_zh='乳品', brand='Acme', brand_zh='极美', price_cny='5', zone='dairy',
               stock='3', tags='', promotion='', promotion_en='')


def count(storage: Storage, table: sa.Table) -> int:
    with storage.engine.connect() as c:
        return c.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_the_change_log_and_old_flags_are_pruned_while_serving(engine_target):
    storage = Storage(engine_target)
    from retail_platform.database import upgrade
    upgrade(storage.engine)
    storage.add_store('s-1', 'Store one')
    token = storage.issue_robot_token('robot-1', 's-1')
    with storage.engine.begin() as c:
        c.execute(t.flags.insert(), [
            dict(robot_id='robot-1', kind='seq_reused', detail='old', created_at=time.time() - 400 * 86400),
            dict(robot_id='robot-1', kind='seq_reused', detail='recent', created_at=time.time() - 86400)])
    retention = Retention(change_log_s=2.0, every_s=0.3)
    robot = {'Authorization': f'Bearer {token}'}
    with TestClient(create_app(engine_target, ADMIN, retention=retention),
                    raise_server_exceptions=False) as client:
        first = client.get('/v1/robots/robot-1/downlink', headers=robot).json()
        for price in ('5', '6', '7', '8'):
            assert client.put('/v1/products', headers=ADMIN_H,
                              json={'products': [dict(PRODUCT, price_cny=price)]}).status_code == 200
        grown = count(storage, changes)
        assert grown >= 4
        # a robot up to date gets a delta meanwhile
        delta = client.get('/v1/robots/robot-1/downlink', headers=robot,
                           params={'since': first['version']}).json()
        assert delta['full'] is False
        deadline = time.monotonic() + 60
        while count(storage, changes) > 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert count(storage, changes) == 1, 'the change log was not pruned'   # the newest kept
        with storage.engine.connect() as c:
            assert [r.detail for r in c.execute(sa.select(t.flags.c.detail))] == ['recent']
        # the robot that was behind the pruned rows gets a whole snapshot, with the last price
        behind = client.get('/v1/robots/robot-1/downlink', headers=robot,
                            params={'since': first['version']}).json()
        assert behind['full'] is True
        assert [p['price_cny'] for p in behind['products'] if p['sku'] == 'P-1'] in ([8.0], ['8'], [8])
        assert client.app.state.background.runs['pruner'] >= 1
    storage.close()
