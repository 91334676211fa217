"""Downlink against a real platform: new data flows back; bad data or an outage keeps the last good copy."""
from __future__ import annotations

from pathlib import Path

from retail_common.catalog import load_catalog
from retail_sync.downlink import KINDS, Downlink
from rostest_support import stop_process
from sync_support import ROBOT

DATA = Path(__file__).resolve().parent.parent / 'data' / 'sync'


def kinds_updated(outcomes) -> set[str]:
    assert not [o.error for o in outcomes if o.error]
    return {o.kind for o in outcomes if o.update}


def test_new_data_flows_back_bad_data_and_outages_keep_the_last_good(platform, tmp_path):
    catalog_v1 = (DATA / 'catalog_v1.csv').read_bytes()
    with platform.client() as admin:
        assert admin.put('/v1/admin/catalog', content=catalog_v1).status_code == 200
        assert admin.put('/v1/admin/histories',
                         content=(DATA / 'history.csv').read_bytes()).status_code == 200
        assert admin.put('/v1/admin/promotions',
                         json=[{'sku': 'HW-PURA70', 'text': '12期免息'}]).status_code == 200
        assert admin.post('/v1/admin/appointments', json={
            'robot_id': ROBOT, 'customer': 'm-000001', 'time': '2026-11-25T10:30:00+08:00',
            'purpose': '试用 Mate 60'}).status_code == 200
        # The platform itself refuses a broken catalog unless told to store it as is.
        garbage = b'\x89PNG not a catalog at all'
        assert admin.put('/v1/admin/catalog', content=garbage).status_code == 422

    data_dir = tmp_path / 'robot_data'
    downlink = Downlink(platform.url, platform.token, ROBOT, data_dir)
    first = downlink.sync()
    assert kinds_updated(first) == {kind.name for kind in KINDS}
    catalog_path = data_dir / 'catalog.csv'
    assert catalog_path.read_bytes() == catalog_v1
    assert len(load_catalog(catalog_path).products) == 10
    assert '试用 Mate 60' in (data_dir / 'appointments.json').read_text(encoding='utf-8')

    # Unchanged: conditional requests, nothing swapped (also after a restart of the downlink).
    assert kinds_updated(downlink.sync()) == set()
    assert kinds_updated(Downlink(platform.url, platform.token, ROBOT, data_dir).sync()) == set()

    # A bad catalog reaches the robot: refused, the old one stays in use.
    with platform.client() as admin:
        assert admin.put('/v1/admin/catalog', params={'unchecked': 'true'},
                         content=b'sku;name\nbroken;row\n').status_code == 200
    outcomes = {o.kind: o for o in downlink.sync()}
    assert outcomes['catalog'].update is None and 'keeping the last good' in outcomes['catalog'].error
    assert catalog_path.read_bytes() == catalog_v1

    # A new valid catalog and a new appointment come through.
    catalog_v2 = catalog_v1.replace(b'5499.00', b'4999.00')
    with platform.client() as admin:
        admin.put('/v1/admin/catalog', content=catalog_v2).raise_for_status()
        admin.post('/v1/admin/appointments', json={
            'robot_id': ROBOT, 'customer': 'm-000002', 'time': '2026-11-25T15:00:00+08:00'}
        ).raise_for_status()
        admin.post('/v1/admin/appointments', json={
            'robot_id': 'another-robot', 'customer': 'm-000003', 'time': '2026-11-25T15:00:00+08:00'}
        ).raise_for_status()
    second = {o.kind: o for o in downlink.sync()}
    assert {k for k, o in second.items() if o.update} == {'catalog', 'appointments'}
    assert second['catalog'].update.version != first[0].update.version
    assert catalog_path.read_bytes() == catalog_v2
    appointments = (data_dir / 'appointments.json').read_text(encoding='utf-8')
    assert 'm-000002' in appointments and 'm-000003' not in appointments

    # Platform gone: every kind reports it, every file stays.
    stop_process(platform.process)
    gone = downlink.sync()
    assert all(o.update is None and 'unreachable' in o.error for o in gone)
    assert catalog_path.read_bytes() == catalog_v2
    assert sorted(p.name for p in data_dir.iterdir()) == sorted(
        ['.downlink_state.json'] + [kind.filename for kind in KINDS])   # no temp files left


def test_a_downlinked_document_over_the_limit_is_refused_and_the_last_good_kept(platform, tmp_path):
    import json as jsonlib
    data_dir = tmp_path / 'robot_data'
    with platform.client() as admin:
        assert admin.put('/v1/admin/promotions', json=[{'sku': 'A', 'text': 'ok'}]).status_code == 200
    downlink = Downlink(platform.url, platform.token, ROBOT, data_dir, max_bytes=4096)
    assert 'promotions' in kinds_updated([downlink.fetch(KINDS[1])])
    big = [{'sku': f'S{i}', 'text': '大促销 ' * 20} for i in range(200)]        # ~40 KB
    deep = '[' + '{"a":' * 5000 + '1' + '}' * 5000 + ']'
    with platform.client() as admin:
        assert admin.put('/v1/admin/promotions?unchecked=true',
                         content=jsonlib.dumps(big).encode()).status_code == 200
    outcome = downlink.fetch(KINDS[1])
    assert outcome.error and 'limit' in outcome.error and not outcome.update
    assert jsonlib.loads((data_dir / 'promotions.json').read_text()) == [{'sku': 'A', 'text': 'ok'}]
    downlink.max_bytes = 1 << 20
    with platform.client() as admin:
        assert admin.put('/v1/admin/promotions?unchecked=true', content=deep.encode()).status_code == 200
    outcome = downlink.fetch(KINDS[1])                      # nested too deeply: refused, one line
    assert outcome.error and 'not JSON' in outcome.error and '\n' not in outcome.error
    assert jsonlib.loads((data_dir / 'promotions.json').read_text()) == [{'sku': 'A', 'text': 'ok'}]
    downlink.close()
