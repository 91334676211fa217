"""Rolled-out content (<data_dir>/platform/desired.json, swapped in by the sync's fleet link) in
the store model every node reads: the same rules as promotions.json, ranked first; a bad file or
entry is reported in Store.issues and skipped, never a traceback."""
from __future__ import annotations

import json

import pytest

from retail_common.store import check_rollout, load_store
from retail_dialogue.manager_node import DEFAULT_STORE


def _store(tmp_path, desired: bytes | None, promotions: list | None = None):
    platform = tmp_path / 'platform'
    platform.mkdir()
    if desired is not None:
        (platform / 'desired.json').write_bytes(desired)
    if promotions is not None:
        (platform / 'promotions.json').write_text(json.dumps(promotions))
    return load_store(DEFAULT_STORE, tmp_path)


def _doc(*promotions) -> bytes:
    return json.dumps({'version': 1, 'content': {'promotions': list(promotions)}}).encode()


def test_a_rolled_out_promotion_is_applied_and_ranked_first(tmp_path):
    store = _store(tmp_path, _doc({'sku': 'MD-AF55', 'text': 'Air fryers 20% off'}),
                   promotions=[{'sku': 'JY-AF55', 'promotion': '立减50', 'priority': 99}])
    offers = store.promotions()
    assert offers[0].sku == 'MD-AF55' and offers[0].promotion == 'Air fryers 20% off'
    assert any(p.sku == 'JY-AF55' for p in offers)              # the downlink's still applies
    assert not [i for i in store.issues if 'desired' in i]


@pytest.mark.parametrize('raw, reported', [
    (b'{not json', 'not JSON'),
    (b'\xff\xfe', 'not UTF-8'),
    (b'[' * 5000 + b']' * 5000, 'nested too deep'),
    (_doc({'sku': 'NO-SUCH', 'text': 'x'}), "sku 'NO-SUCH' is not in the catalog"),
    (_doc({'text': 'no sku'}), 'expected {"sku"'),
    (_doc({'sku': 'MD-AF55', 'text': 5}), 'must be a text'),
    (_doc('a string'), 'expected {"sku"'),
])
def test_a_bad_rolled_out_file_or_entry_is_reported_and_skipped(tmp_path, raw, reported):
    store = _store(tmp_path, raw)
    assert any(reported in issue and 'desired.json' in issue for issue in store.issues), store.issues
    assert all(p.promotion != 'x' for p in store.promotions())


@pytest.mark.parametrize('raw', [b'[]', b'{}', _doc(), b'{"content": {"promotions": 3}}'])
def test_no_rolled_out_promotions_changes_nothing(tmp_path, raw):
    assert [p.sku for p in _store(tmp_path, raw).promotions()] == \
        [p.sku for p in load_store(DEFAULT_STORE).promotions()]


def test_check_rollout_names_what_would_be_skipped(tmp_path):
    store = load_store(DEFAULT_STORE)
    assert check_rollout(store, {'promotions': [{'sku': 'MD-AF55', 'text': 'ok'}]}) == []
    problems = check_rollout(store, {'promotions': [{'sku': 'MD-AF55', 'text': 'ok'},
                                                    {'sku': 'GONE', 'text': 'x'}]})
    assert len(problems) == 1 and 'content.promotions: entry 1' in problems[0] and 'GONE' in problems[0]
