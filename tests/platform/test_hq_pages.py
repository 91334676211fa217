"""HQ pages read the funnel's HQ summaries (retail_platform.hq, migration 0008_hq): their numbers
are the funnel API's (per store, the chain's total, the export's store-days), also after late
receipts and events are recomputed; the campaigns table (offered, accepted, uptake; — when nothing
was offered) in a real headless Chromium, scoped as the API scopes campaigns. SQLite and
PostgreSQL. RETAIL_HQ_SCREENSHOTS=docs writes the picture."""
from __future__ import annotations

import csv
import io
import time
from contextlib import contextmanager
from typing import Iterator
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import httpx
import pytest

from browser_support import chromium
from loop_support import DAY, chain, event, receipts_for, store_events, store_four_days
from platform_support import start_server
from retail_platform import funnel, funnel_export, purchases
from retail_platform.storage import Storage
from rostest_support import wait_for
from test_loop_pages import _shot, _sign_in

RANGE = f'?from=2026-10-27&to={DAY}'
ZONE = timezone(timedelta(hours=8))


class _Tables(HTMLParser):
    """Each table's rows (cell texts) by the table's id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == 'table':
            self._table = self.tables.setdefault(dict(attrs).get('id') or '', [])
        elif tag == 'tr' and self._table is not None:
            self._table.append([])
        elif tag in ('td', 'th') and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ('td', 'th') and self._cell is not None and self._table:
            self._table[-1].append(''.join(self._cell).strip())
            self._cell = None
        elif tag == 'table':
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables(text: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(text)
    return parser.tables


def _pct(value) -> str:
    return '–' if value is None else f'{value:.1%}'


def _campaign(name: str, skus: list[str], **where) -> dict:
    now = time.time()
    return {'name': name, 'audience': {'rules': [{'kind': 'asked_about', 'category': 'tv',
                                                  'within_days': 30}]},
            'skus': skus, 'message_zh': '电视周：会员电视立减1000元。',
            'message_en': 'TV week: members save 1,000 yuan on TVs.', 'stores': [],
            'regions': [], 'starts_at': datetime.fromtimestamp(now - 86400 * 40, ZONE).isoformat(),
            'ends_at': datetime.fromtimestamp(now + 86400 * 6, ZONE).isoformat(), **where}


def _product(sku: str, category: str) -> dict:
    return dict(sku=sku, name_zh=f'商品{sku}', name_en=f'Product {sku}', aliases='',
                category=category, category_zh='', brand='Acme', brand_zh='', price_cny='100',
                zone='aisle-1', stock='5', tags='', promotion='', promotion_en='')


def _offers(day: str, n: int, accepted: int, campaign: str = 'tv-week') -> list[dict]:
    t0 = funnel.day_bounds(day)[0] + 15 * 3600
    out = []
    for i in range(n):
        out.append(event('campaign_offered', t0 + i * 60, {'campaign_id': campaign,
                                                           'skus': ['TV-1']}, f'm-{i}'))
        if i < accepted:
            out.append(event('campaign_accepted', t0 + i * 60 + 5, {'campaign_id': campaign},
                             f'm-{i}'))
    return out


@pytest.fixture
def served(engine_target):
    tokens = chain(engine_target)
    storage = Storage(engine_target)
    try:
        store_four_days(storage)
        store_events(storage, 'robot-1', _offers('2026-10-31', 4, 1))
        store_events(storage, 'robot-2', _offers('2026-11-01', 2, 2))
    finally:
        storage.close()
    server = start_server(engine_target, '--funnel-refresh-s', '1')
    with server.client() as admin:
        assert admin.put('/v1/products', json={'products': [
            _product('TV-1', 'tv'), _product('PH-1', 'phone')]}).status_code == 200
        assert admin.put('/v1/campaigns/tv-week', json=_campaign('TV week', ['TV-1'])).status_code == 200
        assert admin.put('/v1/campaigns/south-phones', json=_campaign(
            'Phone upgrade', ['PH-1'], regions=['south'])).status_code == 200
        wait_for(lambda: admin.get('/v1/funnel').json().get('refreshed_at'), 60,
                 'the background refresher\'s first run')
    try:
        yield server, tokens
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)


@contextmanager
def _session(server, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answer = client.post('/hq/login', data={'token': token}, headers={'Origin': server.url})
        assert answer.status_code == 303, answer.text
        yield client


def _api(server) -> dict:
    with server.client() as admin:
        return admin.get('/v1/funnel' + RANGE).json()


def _check_pages_equal_api(server, pages: httpx.Client) -> dict:
    api = _api(server)
    page = tables(pages.get('/hq' + RANGE).text)
    names = {'Xuhui store': 's-1', 'Pudong store': 's-2'}
    head = page['stores'][0]
    assert head[:2] == ['store', 'appeared']
    keys = ['appeared', 'engaged', 'need_captured', 'recommended', 'guided', 'purchased']
    rates = ['engaged_rate', 'conversion', 'vip_show_rate', 'tour_completion', 'availability']
    seen = set()
    for row in page['stores'][1:]:
        store = names[row[0].split(' ', 1)[-1].strip()]
        seen.add(store)
        total = api['stores'][store]
        assert row[1:7] == [str(total[k]) for k in keys], store
        assert row[7:12] == [_pct(total[k]) for k in rates], store
    assert seen == set(api['stores'])
    funnel_rows = {r[0].split(' · ')[0]: r[1] for r in page['funnel'][1:]}
    assert funnel_rows['appeared'] == str(api['total']['appeared'])
    assert funnel_rows['purchased'] == str(api['total']['purchased'])
    exported = pages.get('/hq/export.csv' + RANGE).text
    with server.client() as admin:
        assert admin.get('/v1/funnel/export' + RANGE + '&format=csv').text == exported
    # both are streamed from the HQ summaries; the reference is the rollups' own JSON
    # (funnel_daily, what the API's export read before it was streamed), byte for byte
    storage = Storage(server.database)
    try:
        rollups = funnel.read(storage.engine, None, '2026-10-27', DAY)
    finally:
        storage.close()
    assert exported == funnel_export.csv_of_columns(funnel_export.columns_of(rollups))
    assert list(csv.DictReader(io.StringIO(exported)))
    return api


def test_pages_numbers_equal_the_funnel_api_also_after_late_data(served):
    server, tokens = served
    with _session(server, tokens['analyst']) as pages:
        before = _check_pages_equal_api(server, pages)
        # a late receipt (a member buying what robot-1 recommended) and a late event of an old day
        storage = Storage(server.database)
        try:
            late = dict(receipts_for('2026-10-30')[0], receipt_id='late-1')
            late.setdefault('member_id', '')
            late.setdefault('code', '')
            purchases.store_receipts(storage.engine, [
                ('late', purchases.Receipt.model_validate(late))])
            store_events(storage, 'robot-2', [event('customer_appeared', funnel.day_bounds(
                '2026-10-28')[0] + 12 * 3600, {'track_id': 4242})])
        finally:
            storage.close()
        wait_for(lambda: _api(server)['total']['appeared'] == before['total']['appeared'] + 1,
                 60, 'the late event recomputed')
        after = _check_pages_equal_api(server, pages)
        assert after['total']['appeared'] == before['total']['appeared'] + 1


def test_campaigns_table_offered_accepted_uptake_scoped_by_role(served):
    server, tokens = served
    with _session(server, tokens['analyst']) as pages:
        rows = {r[0]: r for r in tables(pages.get('/hq' + RANGE).text)['campaigns'][1:]}
    assert set(rows) == {'TV week', 'Phone upgrade'}
    tv, phones = rows['TV week'], rows['Phone upgrade']
    assert tv[5:] == ['6', '3', '50.0%']            # 4 + 2 offered, 1 + 2 accepted
    assert 'asked about tv in the last 30 days' in tv[1] and tv[2] == 'every store'
    assert tv[4].startswith('running')
    assert phones[5:] == ['0', '0', '—'] and phones[2] == 'region south'     # never 0 %
    with _session(server, tokens['store_manager']) as pages:           # s-1 (north) only
        text = pages.get('/hq' + RANGE).text
        rows = {r[0]: r for r in tables(text)['campaigns'][1:]}
        assert set(rows) == {'TV week'} and rows['TV week'][5:] == ['4', '1', '25.0%']
        store = {r[0]: r for r in tables(pages.get('/hq/stores/s-1' + RANGE).text)['campaigns'][1:]}
        assert store['TV week'][5:] == ['4', '1', '25.0%']
    with _session(server, tokens['region']) as pages:                  # north: s-1
        rows = {r[0]: r for r in tables(pages.get('/hq/regions/north' + RANGE).text)['campaigns'][1:]}
        assert set(rows) == {'TV week'} and rows['TV week'][5:] == ['4', '1', '25.0%']


def test_campaigns_table_in_chromium(served):
    from selenium.webdriver.common.by import By
    server, tokens = served
    with chromium(1280, 1800, page_timeout_s=30, missing='fail') as browser:
        _sign_in(browser, server.url, tokens['analyst'])
        browser.get(server.url + '/hq' + RANGE)
        table = browser.find_element(By.ID, 'campaigns')
        assert 'TV week' in table.text and 'Phone upgrade' in table.text
        uptake = browser.find_element(By.CSS_SELECTOR, '#campaign-south-phones .uptake').text
        assert uptake == '—'
        assert browser.find_element(By.CSS_SELECTOR, '#campaign-tv-week .uptake').text == '50.0%'
        browser.execute_script('document.getElementById("campaigns").scrollIntoView()')
        _shot(browser, 'hq_campaigns')
