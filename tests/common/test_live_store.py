"""LiveStore: atomic swaps, the old store kept when a new one cannot load."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from retail_common.live_store import LiveStore
from retail_common.store import StoreError

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'


@pytest.fixture
def store_dir(tmp_path):
    copy = tmp_path / 'store'
    shutil.copytree(DEMO, copy)
    return copy


def test_reload_swaps_in_new_data_and_keeps_old_snapshots_intact(store_dir, tmp_path):
    live = LiveStore(store_dir, tmp_path / 'data')
    old = live.current()
    sku = old.catalog.products[0].sku
    platform = tmp_path / 'data' / 'platform'
    platform.mkdir(parents=True)
    text = (store_dir / 'catalog.csv').read_text(encoding='utf-8')
    line = next(l for l in text.splitlines() if l.startswith(sku + ','))
    fields = line.split(',')
    fields[8] = '1.00'
    (platform / 'catalog.csv').write_text(text.replace(line, ','.join(fields)), encoding='utf-8')
    assert live.reload() is True
    assert live.current().catalog.by_sku[sku].price_cny == 1.0
    assert old.catalog.by_sku[sku].price_cny != 1.0          # a session's snapshot never changes
    assert live.current().version != old.version


def test_a_broken_reload_keeps_the_previous_store_and_says_why(store_dir):
    errors = []
    live = LiveStore(store_dir, None, log=errors.append)
    old = live.current()
    (store_dir / 'zones.yaml').write_text('zones: [', encoding='utf-8')
    assert live.reload() is False
    assert live.current() is old
    assert len(errors) == 1 and 'zones.yaml' in errors[0] and 'keeping the store loaded before' in errors[0]
    assert live.last_error


def test_unchanged_files_keep_the_same_snapshot(store_dir):
    live = LiveStore(store_dir)
    old = live.current()
    assert live.reload() is True and live.current() is old


def test_an_unusable_store_fails_at_construction(tmp_path):
    with pytest.raises(StoreError):
        LiveStore(tmp_path)


def test_platform_files_no_rule_foresaw_never_take_the_store_down(store_dir, tmp_path, monkeypatch):
    """Attack (session 12): one appointment from the platform dated 9999-12-31T23:30 (OverflowError)
    crashed every node that reloads the store, mid-shift, and again on each respawn. That entry is
    skipped now; and whatever a reload raises keeps the store in use, in one line."""
    import json
    import retail_common.live_store as live_store
    platform = tmp_path / 'data' / 'platform'
    platform.mkdir(parents=True)
    errors, warnings = [], []
    live = LiveStore(store_dir, tmp_path / 'data', log=errors.append, warn=warnings.append)
    (platform / 'appointments.json').write_text(json.dumps(
        [{'id': 7, 'customer': 'm-1', 'time': '9999-12-31T23:30:00', 'purpose': 'x', 'note': '{"name": "王丽"}'}]))
    assert live.reload() is True and not live.current().appointments
    assert any('appointments.json: entry 0' in w for w in warnings), warnings
    old = live.current()

    def broken(*_args):
        raise KeyError('something nobody foresaw')
    monkeypatch.setattr(live_store, 'load_store', broken)
    assert live.reload() is False and live.current() is old
    assert len(errors) == 1 and 'KeyError' in errors[0] and 'keeping the store loaded before' in errors[0]
