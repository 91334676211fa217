"""The store model: one loader, one error policy, the platform's downlink overlaid on the store folder."""
from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from retail_common.store import StoreError, load_store

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / 'config' / 'stores' / 'demo'
HEADER = 'sku,name_zh,name_en,aliases,category,category_zh,brand,brand_zh,price_cny,zone,stock,tags,promotion\n'
ZONES = '''frame_id: map
zones:
  phones: {kind: product, name_zh: 手机区, name_en: Phones, categories: [phone], pose: [1.0, 2.0, 0.0]}
  kitchen: {kind: product, name_zh: 厨房区, name_en: Kitchen, categories: [air_fryer, kettle], pose: [3.0, 2.0, 1.57]}
  vip_lounge: {kind: service, name_zh: 贵宾室, name_en: VIP Lounge, pose: [5.0, 5.0, 0.0]}
tours:
  short:
  - {zone: phones, narration: {zh: 手机在这里, en: Phones are here}}
  - {zone: kitchen, narration_zh: 厨房电器, narration_en: Kitchen things}
  - {zone: vip_lounge, narration: tour.vip}
'''


def _product(sku, category, zone, price='100', stock='3', promotion=''):
    return f'{sku},{sku} 中文,{sku} en,,{category},类,Brand,品牌,{price},{zone},{stock},,{promotion}\n'


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    store = tmp_path / 'store'
    store.mkdir()
    (store / 'zones.yaml').write_text(ZONES, encoding='utf-8')
    (store / 'catalog.csv').write_text(
        HEADER + _product('P1', 'phone', 'phones', promotion='减100')
        + _product('F1', 'air_fryer', 'old_aisle_7')           # a zone the store does not have
        + _product('K1', 'kettle', 'kitchen', stock='0', promotion='八折')
        + 'BAD,x,x,,phone,类,B,品牌,not-a-price,phones,1,,\n', encoding='utf-8')
    return store


def test_the_demo_store_loads_with_its_tours_narrated_in_both_languages():
    store = load_store(DEMO)
    assert store.catalog.products and store.issues == ()
    assert store.map_yaml == DEMO / 'map.yaml' and store.history_path == DEMO / 'history.csv'
    for stops in store.tours.values():
        for stop in stops:
            assert stop.zone in store.zones and stop.narration_zh and stop.narration_en
    # every product of the demo catalog has a zone of the store
    assert all(store.zone_of(p) in store.zones for p in store.catalog.products)


def test_zone_of_prefers_the_products_zone_then_the_zone_listing_its_category(store_dir):
    store = load_store(store_dir)
    by_sku = store.catalog.by_sku
    assert store.zone_of(by_sku['P1']) == 'phones'
    assert store.zone_of(by_sku['F1']) == 'kitchen'                      # from zones.yaml categories
    assert store.zone_name('kitchen', 'en') == 'Kitchen' and store.zone_name('kitchen', 'zh') == '厨房区'
    assert store.zone_name('no_such_zone', 'en') == 'no such zone'
    assert store.zones['phones'].label == '手机区 (Phones)'
    assert store.zones['kitchen'].pose == (3.0, 2.0, 1.57)


def test_narration_keys_old_and_new(store_dir):
    stops = load_store(store_dir).tours['short']
    assert (stops[0].narration_zh, stops[0].narration_en) == ('手机在这里', 'Phones are here')
    assert (stops[1].narration_zh, stops[1].narration_en) == ('厨房电器', 'Kitchen things')
    assert (stops[2].narration_zh, stops[2].narration_en) == ('tour.vip', 'tour.vip')   # one text: both


def test_bad_rows_are_skipped_and_listed_with_file_and_line(store_dir):
    store = load_store(store_dir)
    assert 'BAD' not in store.catalog.by_sku
    assert any('catalog.csv' in issue and 'line 5' in issue and 'price_cny' in issue for issue in store.issues)
    assert all('\n' not in issue for issue in store.issues)


def test_promotions_in_stock_only(store_dir):
    store = load_store(store_dir)
    assert [p.sku for p in store.promotions()] == ['P1']                # K1 has one but is sold out


@pytest.mark.parametrize('broken, key', [
    ('zones: {phones: {kind: shelf, name_zh: a, name_en: b, pose: [0, 0, 0]}}', "zone 'phones': kind"),
    ('zones: {phones: {kind: service, name_zh: a, name_en: b, pose: [0, 0]}}', "zone 'phones': pose"),
    ('zones:\n  phones: {kind: service\n', 'not valid YAML'),
    ('zones: {a: {kind: service, name_zh: a, name_en: b, pose: [0, 0, 0]}}\n'
     'tours: {t: [{zone: nowhere}]}', "tour 't': stop 1"),
    ('zones: {a: {kind: service, name_zh: a, name_en: b, pose: [0, 0, 0]}}\n'
     'tours: {t: [{zone: a, narration: {zh: x, fr: y}}]}', 'narration languages'),
    ('- just a list', 'non-empty `zones:`'),
])
def test_a_broken_zones_file_is_one_line_naming_file_and_key(store_dir, broken, key):
    (store_dir / 'zones.yaml').write_text(broken, encoding='utf-8')
    with pytest.raises(StoreError) as info:
        load_store(store_dir)
    message = str(info.value)
    assert message.startswith(str(store_dir / 'zones.yaml')) and key in message and '\n' not in message


def test_a_missing_zones_file_or_a_broken_catalog_is_unusable(store_dir):
    (store_dir / 'catalog.csv').write_text('sku,name\n1,x\n', encoding='utf-8')
    with pytest.raises(StoreError, match='catalog.csv: header lacks'):
        load_store(store_dir)
    (store_dir / 'catalog.csv').unlink()
    store = load_store(store_dir)          # map and zones only: guiding still works
    assert len(store.catalog) == 0 and any("catalog.csv: no such file" in i for i in store.issues)
    (store_dir / 'zones.yaml').unlink()
    with pytest.raises(StoreError, match='zones.yaml: zones file does not exist'):
        load_store(store_dir)
    with pytest.raises(StoreError, match='store folder does not exist'):
        load_store(store_dir / 'nope')


def test_the_platform_downlink_overlays_the_store_folder(store_dir, tmp_path):
    data = tmp_path / 'data'
    platform = data / 'platform'
    platform.mkdir(parents=True)
    before = load_store(store_dir, data)
    (platform / 'catalog.csv').write_text(HEADER + _product('P1', 'phone', 'phones', price='88')
                                          + _product('P2', 'phone', 'phones'), encoding='utf-8')
    (platform / 'promotions.json').write_text(json.dumps([
        {'sku': 'P1', 'promotion': ''}, {'sku': 'P2', 'promotion': '新品', 'priority': 5},
        {'sku': 'GONE', 'promotion': 'x'}, 'junk']), encoding='utf-8')
    (platform / 'history.csv').write_text('customer_id,sku,ts,qty,price_cny\n', encoding='utf-8')
    (store_dir / 'appointments.json').write_text(json.dumps([
        {'appointment_id': 'a1', 'customer_id': 'm-1', 'name': '王女士', 'start': '2026-03-02T15:00:00',
         'end': '2026-03-02T16:00:00', 'purpose': '看冰箱'}]), encoding='utf-8')
    (platform / 'appointments.json').write_text(json.dumps([
        {'id': 7, 'customer': 'vip-2', 'time': '2026-03-02T10:00:00', 'purpose': 'TV',
         'note': json.dumps({'name': 'Kit', 'meeting_point': 'vip_lounge', 'staff': 'Li'})},
        {'id': 8, 'customer': 'vip-3', 'time': 'tomorrow', 'note': '{}'}]), encoding='utf-8')
    store = load_store(store_dir, data)
    assert store.version != before.version
    assert store.catalog.by_sku['P1'].price_cny == 88 and 'F1' not in store.catalog.by_sku
    assert [p.sku for p in store.promotions()] == ['P2']                # P1's promotion ended
    assert store.history_path == platform / 'history.csv'
    assert [a.appointment_id for a in store.appointments] == ['7', 'a1']
    kit = store.appointments_for('vip-2', datetime(2026, 3, 2, 9, 30))
    assert [(a.name, a.meeting_point, a.staff, a.end.hour) for a in kit] == [('Kit', 'vip_lounge', 'Li', 11)]
    assert store.appointments_for('vip-2', datetime(2026, 3, 3, 9, 30)) == []
    assert store.appointments_for('vip-2', datetime(2026, 3, 2, 12, 0)) == []      # over
    assert any("'GONE' is not in the catalog" in i for i in store.issues)
    assert any('appointments.json: entry 1' in i for i in store.issues)


def test_a_broken_platform_catalog_falls_back_to_the_store_folders(store_dir, tmp_path):
    platform = tmp_path / 'data' / 'platform'
    platform.mkdir(parents=True)
    (platform / 'catalog.csv').write_text('sku,name\n1,x\n', encoding='utf-8')
    store = load_store(store_dir, tmp_path / 'data')
    assert 'P1' in store.catalog.by_sku
    assert any('header lacks' in i and "using the store folder's catalog" in i for i in store.issues)


def test_version_changes_with_any_source_file(store_dir):
    first = load_store(store_dir).version
    assert load_store(store_dir).version == first
    with (store_dir / 'zones.yaml').open('a', encoding='utf-8') as handle:
        handle.write('# comment\n')
    assert load_store(store_dir).version != first


def test_store_and_zones_file_readers_give_the_same_line_for_a_broken_zones_file(store_dir):
    from retail_navigation.zones import load_zones_store
    (store_dir / 'zones.yaml').write_text('zones: {phones: {kind: shelf, name_zh: a, name_en: b, pose: [0, 0, 0]}}')
    lines = []
    for reader in (lambda p: load_store(p.parent), load_zones_store):
        with pytest.raises(StoreError) as info:
            reader(store_dir / 'zones.yaml')
        lines.append(str(info.value))
    assert len(set(lines)) == 1 and "kind must be product or service" in lines[0], lines


def test_a_brand_corner_without_categories_holds_the_products_the_catalog_puts_there(store_dir):
    """Issue 24: a product zone without categories (an Apple corner) loads; a product whose
    catalog row names it stands there, the others of its category stay in their category's zone."""
    import yaml
    zones = yaml.safe_load((store_dir / 'zones.yaml').read_text(encoding='utf-8'))
    zones['zones']['corner'] = {'kind': 'product', 'name_zh': '品牌专区', 'name_en': 'Brand Corner', 'pose': [1, 1, 0]}
    (store_dir / 'zones.yaml').write_text(yaml.safe_dump(zones, allow_unicode=True), encoding='utf-8')
    store = load_store(store_dir)
    assert store.zones['corner'].categories == ()
    product = store.catalog.products[0]
    assert store.zone_of(product) != 'corner'
    from dataclasses import replace
    assert store.zone_of(replace(product, zone='corner')) == 'corner'


def test_zone_names_come_from_the_store(store_dir):
    store = load_store(store_dir)
    assert store.zone_name('vip_lounge', 'en') == 'VIP Lounge' and store.zone_name('vip_lounge', 'zh') == '贵宾室'


def test_demo_store_copy_unchanged_loads(tmp_path):
    copy = tmp_path / 'demo'
    shutil.copytree(DEMO, copy)
    assert load_store(copy).version        # position independent


@pytest.mark.parametrize('time_, note, says', [
    ('9999-12-31T23:30:00', {'name': '王丽'}, 'date value out of range'),          # end past year 9999
    ('2026-05-01T10:00:00', {'name': '王丽', 'duration_min': 1e20}, 'duration_min'),
    ('2026-05-01T10:00:00', {'name': '王丽', 'duration_min': float('nan')}, 'duration_min'),
    ('2026-05-01T10:00:00', {'name': '王丽', 'duration_min': -5}, 'duration_min'),
])
def test_a_platform_appointment_no_clock_can_hold_is_skipped_in_one_line(tmp_path, time_, note, says):
    """Attack (session 12): these raised OverflowError out of load_store (every node down)."""
    (tmp_path / 'platform').mkdir()
    good = {'id': 8, 'customer': 'm-2', 'time': '2026-05-01T11:00:00', 'purpose': 'tv', 'note': '{"name": "李雷"}'}
    (tmp_path / 'platform' / 'appointments.json').write_text(json.dumps(
        [{'id': 7, 'customer': 'm-1', 'time': time_, 'purpose': 'x', 'note': json.dumps(note)}, good]))
    store = load_store(DEMO, tmp_path)
    assert [a.name for a in store.appointments] == ['李雷']
    assert any('entry 0' in i and says in i for i in store.issues), store.issues


@pytest.mark.parametrize('raw, says', [(b'[' * 5000 + b']' * 5000, 'nested too deep'), (b'[{', 'not JSON')])
def test_a_platform_file_nested_too_deep_is_one_issue(tmp_path, raw, says):
    (tmp_path / 'platform').mkdir()
    for name in ('appointments.json', 'promotions.json'):
        (tmp_path / 'platform' / name).write_bytes(raw)
    store = load_store(DEMO, tmp_path)
    assert len([i for i in store.issues if says in i]) == 2, store.issues


@pytest.mark.parametrize('zone', ['[phones]', '{a: 1}', '7'])
def test_a_tour_stop_whose_zone_is_not_a_name_is_a_store_error(tmp_path, zone):
    shutil.copytree(DEMO, tmp_path / 's')
    zones = tmp_path / 's' / 'zones.yaml'
    text = zones.read_text(encoding='utf-8')
    assert '  - zone: phones\n' in text
    zones.write_text(text.replace('  - zone: phones\n', f'  - zone: {zone}\n', 1), encoding='utf-8')
    with pytest.raises(StoreError, match='must name a known zone'):
        load_store(tmp_path / 's')
