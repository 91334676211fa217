"""The HQ pages at chain scale are paged (retail_platform.hq: sorted, counted and cut by the
database): the ranking 50 stores a page in a stable order (conversion, then purchases, then store
id), page 2 starting at the 51st store, every store on exactly one page; a page past the end is a
page saying so (404), a page number that is not one a 422 naming it — never a 500; the region
drill-down and the silent robots paged likewise; the next link followed in headless Chromium.
The export's rates (computed per column) equal `funnel.rates` for a table of variants. SQLite and
PostgreSQL; the stores' HQ summaries are written as the funnel's refresh writes them."""
from __future__ import annotations

import re
import time
from contextlib import contextmanager
from typing import Iterator

import httpx
import pytest
import sqlalchemy as sa

from browser_support import chromium
from loop_support import DAY, chain
from platform_support import start_server
from retail_platform import funnel, hq
from retail_platform.database import create_engine
from retail_platform import loop_schema as lt
from retail_platform import schema as t
from retail_platform.storage import Storage
from test_hq_pages import tables
from test_loop_pages import _sign_in

RANGE = f'?from=2026-10-27&to={DAY}'
DAYS = ['2026-10-30', '2026-10-31']
N = 120                  # stores with rollups: 3 pages of the ranking with s-1 and s-2


def _counts(i: int) -> tuple[int, int]:
    """(recommended, purchased) of store i a day: ties of conversion every 50 stores (broken by
    purchases, then by id), and every 17th store recommending nothing (no conversion)."""
    return (0 if i % 17 == 0 else 100 + i % 3), i % 50


def _expected(store_ids: list[str]) -> list[str]:
    """The documented order: a conversion first (the highest first), then purchases, then id."""
    def key(sid: str):
        if not sid.startswith('st-'):
            return (True, 0.0, 0, sid)
        rec, bought = (v * len(DAYS) for v in _counts(int(sid[3:])))
        return (rec == 0, -(bought / rec) if rec else 0.0, -bought, sid)
    return sorted(store_ids, key=key)


@pytest.fixture
def served(engine_target):
    tokens = chain(engine_target)              # s-1 (north), s-2 (south): no rollups
    storage = Storage(engine_target)
    try:
        with storage.engine.begin() as c:
            c.execute(t.stores.insert(), [dict(id=f'st-{i:03d}', name=f'Store {i:03d}',
                                               region_id='north' if i % 2 else 'south',
                                               created_at=0) for i in range(N)])
            c.execute(t.robots.insert(), [dict(robot_id=f'rb-{i:03d}', store_id=f'st-{i:03d}',
                                               registered_at=0) for i in range(N)])
            rows = []
            for i in range(N):
                rec, bought = _counts(i)
                rows += [dict(store_id=f'st-{i:03d}', day=day, definitions=funnel.DEFINITIONS,
                              appeared=200, engaged=150, need_captured=120, recommended=rec,
                              guided=10, purchased=bought) for day in DAYS]
            c.execute(lt.hq_store_days.insert(), rows)
            for i in range(N):                       # and their months, as the refresh does
                funnel.write_months(c, f'st-{i:03d}', DAYS)
    finally:
        storage.close()
    server = start_server(engine_target)
    try:
        yield server, tokens
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)


@contextmanager
def _session(server, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        answer = client.post('/hq/login', data={'token': token}, headers={'Origin': server.url})
        assert answer.status_code == 303, answer.text
        yield client


def _ranked(text: str) -> list[tuple[int, str]]:
    """(rank, store name) of the ranking's rows."""
    out = []
    for row in tables(text)['stores'][1:]:
        rank, name = row[0].split(' ', 1)
        out.append((int(rank), name.strip()))
    return out


def _names(ids: list[str]) -> list[str]:
    return [f'Store {sid[3:]}' if sid.startswith('st-') else
            {'s-1': 'Xuhui store', 's-2': 'Pudong store'}[sid] for sid in ids]


def test_ranking_pages_are_stable_and_page_two_starts_at_the_51st_store(served):
    server, tokens = served
    expected = _names(_expected([f'st-{i:03d}' for i in range(N)] + ['s-1', 's-2']))
    with _session(server, tokens['analyst']) as pages:
        seen: list[tuple[int, str]] = []
        for page in (1, 2, 3):
            text = pages.get(f'/hq{RANGE}&page={page}').text
            got = _ranked(text)
            assert len(got) == (50 if page < 3 else len(expected) - 100), page
            seen += got
            pager = re.search(r'id="page-pager">([^<]*)', text).group(1)
            first = (page - 1) * 50 + 1
            assert f'stores {first}–{first + len(got) - 1} of {len(expected)}' in pager
            assert f'page {page} of 3' in pager
            assert ('id="page-next"' in text) == (page < 3)
            assert ('id="page-previous"' in text) == (page > 1)
        assert [rank for rank, _ in seen] == list(range(1, len(expected) + 1))
        assert [name for _, name in seen] == expected          # every store once, in order
        again = _ranked(pages.get(f'/hq{RANGE}&page=2').text)
        assert again == seen[50:100] and again[0] == (51, expected[50])
        funnel_rows = {r[0].split(' · ')[0]: r[1] for r in tables(
            pages.get('/hq' + RANGE).text)['funnel'][1:]}      # the chain's total, every page
        assert funnel_rows['appeared'] == str(200 * N * len(DAYS))
        assert funnel_rows['purchased'] == str(sum(_counts(i)[1] for i in range(N)) * len(DAYS))


@pytest.mark.parametrize('query, status, words', [
    ('page=4', 404, 'there is no page 4 of the ranking: it has 3 page(s)'),
    ('page=999999', 404, 'there is no page 999999'),
    ('page=0', 422, 'page must be a page number'),
    ('page=-1', 422, 'page must be a page number'),
    ('page=two', 422, 'page must be a page number'),
    ('page=' + '9' * 40, 422, 'page must be a page number'),
    ('silent_page=x', 422, 'silent_page must be a page number'),
    # attack round: digits str.isdigit() takes but int() does not (superscripts) were a 500;
    # other scripts' digits are not page numbers either
    ('page=%C2%B2', 422, 'page must be a page number'),
    ('silent_page=%C2%B3', 422, 'silent_page must be a page number'),
    ('page=%D9%A1', 422, 'page must be a page number'),
])
def test_a_page_past_the_end_or_not_a_page_says_so(served, query, status, words):
    server, tokens = served
    with _session(server, tokens['analyst']) as pages:
        answer = pages.get(f'/hq{RANGE}&{query}')
    assert answer.status_code == status, answer.text[:300]
    assert words in answer.text and 'id="back"' in answer.text


def test_region_drill_down_is_paged_and_scoped(served):
    server, tokens = served
    north = [f'st-{i:03d}' for i in range(N) if i % 2] + ['s-1']
    expected = _names(_expected(north))
    with _session(server, tokens['analyst']) as pages:
        got = _ranked(pages.get(f'/hq/regions/north{RANGE}').text) + \
            _ranked(pages.get(f'/hq/regions/north{RANGE}&page=2').text)
        assert [name for _, name in got] == expected and got[50] == (51, expected[50])
        assert pages.get(f'/hq/regions/north{RANGE}&page=3').status_code == 404
    with _session(server, tokens['region']) as pages:          # north's credential
        assert pages.get(f'/hq/regions/south{RANGE}').status_code == 403
        assert [n for _, n in _ranked(pages.get(f'/hq{RANGE}').text)] == expected[:50]


def test_silent_robots_are_counted_and_paged(served):
    server, tokens = served
    storage = Storage(server.database)        # rb-000 sent no event but a heartbeat: heard
    try:
        with storage.engine.begin() as c:
            c.execute(t.fleet_heartbeats.insert().values(
                robot_id='rb-000', store_id='st-000', received_at=time.time(), period_s=10,
                state='ok', heartbeat='{}'))
    finally:
        storage.close()
    robots = sorted([f'rb-{i:03d}' for i in range(1, N)] + ['robot-1', 'robot-2'])   # not heard
    with _session(server, tokens['analyst']) as pages:
        first = pages.get(f'/hq{RANGE}&silent=1').text
        second = pages.get(f'/hq{RANGE}&silent=1&silent_page=2').text
        past = pages.get(f'/hq{RANGE}&silent=1&silent_page=9')
    assert [r[0] for r in tables(first)['silent'][1:]] == robots[:50]
    assert 'every time on these pages is the chain\'s (China Standard Time, UTC+8)' in first
    assert [r[0] for r in tables(second)['silent'][1:]] == robots[50:100]
    assert f'robots 51–100 of {len(robots)}' in second and 'id="silent_page-next"' in second
    assert past.status_code == 200 and 'There is no page 9 of the silent robots' in past.text


def test_next_page_link_in_chromium(served):
    from selenium.webdriver.common.by import By
    server, tokens = served
    expected = _names(_expected([f'st-{i:03d}' for i in range(N)] + ['s-1', 's-2']))
    with chromium(1280, 1400, page_timeout_s=30, missing='fail') as browser:
        _sign_in(browser, server.url, tokens['analyst'])
        browser.get(server.url + '/hq' + RANGE)
        browser.find_element(By.ID, 'page-next').click()
        rows = browser.find_elements(By.CSS_SELECTOR, '#stores tr')
        assert rows[1].text.startswith(f'51 {expected[50]}')
        assert 'page 2 of 3' in browser.find_element(By.ID, 'page-pager').text
        assert browser.find_element(By.NAME, 'from').get_attribute('value') == '2026-10-27'


RATE_VARIANTS = [   # (numerator, denominator): halves at the 4th decimal, repeating, 0, large
    (0, 0), (5, 0), (0, 7), (1, 3), (2, 3), (1, 8), (3, 20000), (1, 20000), (5, 20000),
    (7, 20000), (2675, 1000000), (1, 1), (7, 5), (123456789, 987654321), (99995, 100000),
    (1, 7), (15, 10000 * 2), (1000, 1001)]


def test_export_rates_per_column_equal_the_funnels_rates():
    nums = [n for n, _ in RATE_VARIANTS]
    dens = [d for _, d in RATE_VARIANTS]
    got = hq.rate_column(nums, dens)
    want = [funnel.rates({'engaged': n, 'appeared': d})['engaged_rate'] for n, d in RATE_VARIANTS]
    assert got == want
    assert [type(v) for v in got] == [type(v) for v in want]


def test_hq_summaries_have_the_pages_covering_index(engine_target):
    chain(engine_target)
    engine = create_engine(engine_target)
    try:
        indexes = {i['name']: i['column_names']
                   for i in sa.inspect(engine).get_indexes('hq_store_days')}
    finally:
        engine.dispose()
    assert indexes['ix_hq_store_days_figures'][:2] == ['day', 'store_id']
    assert set(hq.RANKED) <= set(indexes['ix_hq_store_days_figures'])    # hq.figures' sums


# --- the fleet table of the overview: paged like the ranking ------------------------------------
@pytest.fixture
def fleet_served(served):
    """The chain above with each st- store's robot's last heartbeat (a third silent, a third
    degraded, a third ok; every 4th store a second robot, ok), kept as the fleet keeps them."""
    import json
    import time
    server, tokens = served
    now = time.time()
    rows = []
    for i in range(N):
        state = ('silent', 'degraded', 'ok')[i % 3]
        rows.append(dict(robot_id=f'rb-{i:03d}', store_id=f'st-{i:03d}', heartbeat=json.dumps({}),
                         state='ok' if state == 'silent' else state,
                         **(dict(period_s=30.0, received_at=now - 3600) if state == 'silent' else
                            dict(period_s=86400.0, received_at=now))))
        if i % 4 == 0:
            rows.append(dict(robot_id=f'rb-{i:03d}-b', store_id=f'st-{i:03d}', state='ok',
                             heartbeat='{}', period_s=86400.0, received_at=now))
    engine = create_engine(server.database)
    try:
        with engine.begin() as c:
            c.execute(t.fleet_heartbeats.insert(), rows)
    finally:
        engine.dispose()
    return server, tokens


def _fleet_expected(database: str, stores: list[str] | None) -> list[dict]:
    """The fleet table as `Fleet.stores` counts it, in the page's order (silent stores first,
    then by silent robots, then by store id)."""
    from retail_platform.fleet import Fleet
    engine = create_engine(database)
    try:
        rows = Fleet(engine).stores(stores)
    finally:
        engine.dispose()
    return sorted(rows, key=lambda r: (not r['silent_store'], -r['silent'], r['store_id']))


def test_fleet_table_is_paged_with_the_fleets_numbers(fleet_served):
    server, tokens = fleet_served
    expected = _fleet_expected(server.database, None)
    assert len(expected) == N
    silent = [r for r in expected if r['silent_store']]
    assert len(silent) == 30               # i % 3 == 0 and not i % 4 == 0: every robot silent
    seen = []
    with _session(server, tokens['analyst']) as pages:
        for page in (1, 2, 3):
            text = pages.get(f'/hq{RANGE}&fleet_page={page}').text
            rows = tables(text)['fleet-stores'][1:]
            assert len(rows) == (50 if page < 3 else N - 100), page
            seen += rows
            pager = re.search(r'id="fleet_page-pager">([^<]*)', text).group(1)
            first = (page - 1) * 50 + 1
            assert f'stores {first}–{first + len(rows) - 1} of {N} · page {page} of 3' in pager
            assert ('id="fleet_page-next"' in text) == (page < 3)
            banner = re.search(r'id="silent-stores"[^>]*>([^<]*)', text).group(1)
            names = ', '.join(f'Store {r["store_id"][3:]}' for r in silent[:10])
            assert banner == f'Silent stores · 离线门店: {names} and 20 more'
    assert seen == [[f'Store {r["store_id"][3:]}', str(r['robots']), str(r['ok']),
                     str(r['degraded']), str(r['silent'])] for r in expected]


def test_fleet_table_scoped_to_a_region(fleet_served):
    server, tokens = fleet_served
    north = [f'st-{i:03d}' for i in range(N) if i % 2] + ['s-1']
    expected = _fleet_expected(server.database, north)
    with _session(server, tokens['region']) as pages:          # north's credential
        text = pages.get(f'/hq{RANGE}').text
        second = pages.get(f'/hq{RANGE}&fleet_page=2')
    rows = tables(text)['fleet-stores'][1:] + tables(second.text)['fleet-stores'][1:]
    assert [r[0] for r in rows] == [f'Store {r["store_id"][3:]}' for r in expected]
    assert len(expected) == 60 and 'page 2 of 2' in second.text


@pytest.mark.parametrize('query, status, words', [
    ('fleet_page=4', 404, 'there is no page 4 of the fleet table: it has 3 page(s)'),
    ('fleet_page=0', 422, 'fleet_page must be a page number'),
    ('fleet_page=-2', 422, 'fleet_page must be a page number'),
    ('fleet_page=one', 422, 'fleet_page must be a page number'),
    ('fleet_page=' + '9' * 40, 422, 'fleet_page must be a page number'),
])
def test_a_fleet_page_past_the_end_or_not_a_page_says_so(fleet_served, query, status, words):
    server, tokens = fleet_served
    with _session(server, tokens['analyst']) as pages:
        answer = pages.get(f'/hq{RANGE}&{query}')
    assert answer.status_code == status, answer.text[:300]
    assert words in answer.text and 'id="back"' in answer.text


# --- the month summaries: figures over whole and partial months equal the store-days' sums ------
MONTH_RANGES = [('2026-10-01', '2026-10-31'),      # one whole month: month summaries only
                ('2026-09-28', '2026-11-03'),      # partial, whole, partial
                ('2026-10-01', '2026-10-15'),      # part of one month
                ('2026-09-30', '2026-10-31'),      # a day, then a whole month
                ('2026-10-01', '2026-11-30'),      # a whole month and one with days missing
                ('2026-11-04', '2026-11-30'),      # nothing in range
                ('2026-09-01', '2026-12-31')]      # four whole months


def _month_rows() -> list[dict]:
    """Store-days of 7 stores from 2026-09-28 to 2026-11-03 with counts varying by store and
    day (one store with nothing recommended, one with no store-days)."""
    import datetime
    rows = []
    for i in range(6):
        day = datetime.date(2026, 9, 28)
        while day <= datetime.date(2026, 11, 3):
            n = day.toordinal() % 7 + i
            rows.append({'store_id': f'm-{i}', 'day': day.isoformat(),
                         'definitions': funnel.DEFINITIONS,
                         **{k: 0 for k in funnel.COUNTS},
                         **{k: n + j for j, k in enumerate(hq.RANKED)},
                         'recommended': 0 if i == 3 else 10 + n, 'purchased': n % 5})
            day += datetime.timedelta(days=1)
    return rows


def test_figures_over_month_summaries_equal_the_store_days(engine_target):
    """hq.figures reads whole months from hq_store_months (written by funnel.write_summaries as
    the refresh writes them) and the rest from the store-days: every figure equals the sums of
    the store-days of the range, also after a day is rewritten (a late event)."""
    chain(engine_target)
    storage = Storage(engine_target)
    rows = _month_rows()
    try:
        with storage.engine.begin() as c:
            c.execute(t.stores.insert(), [dict(id=f'm-{i}', name=f'Month store {i}', created_at=0,
                                               region_id='north' if i % 2 else 'south')
                                          for i in range(7)])
            for i in range(6):
                funnel.write_summaries(c, f'm-{i}', [r for r in rows if r['store_id'] == f'm-{i}'])
        for rewrite in (False, True):
            if rewrite:                       # a late event rewrites one day of a whole month
                changed = dict(next(r for r in rows if (r['store_id'], r['day']) ==
                                    ('m-2', '2026-10-17')), engaged=999, purchased=77)
                rows = [changed if (r['store_id'], r['day']) == ('m-2', '2026-10-17') else r
                        for r in rows]
                with storage.engine.begin() as c:
                    funnel.write_summaries(c, 'm-2', [changed])
            for first, last in MONTH_RANGES:
                with hq.reading(storage.engine) as c:
                    got = hq.figures(c, hq.Scope(), first, last, 0, 100)
                inside = [r for r in rows if first <= r['day'] <= last]
                per = {f'm-{i}': [r for r in inside if r['store_id'] == f'm-{i}'] for i in range(7)}
                per.update({s: [] for s in ('s-1', 's-2')})
                want = {s: funnel.total(days) for s, days in per.items()}
                assert got.stores == 9
                for store, total in got.ranked:
                    for k in (*hq.RANKED, 'store_days', 'conversion', 'engaged_rate',
                              'availability', 'tour_completion', 'vip_show_rate'):
                        assert total[k] == want[store['id']][k], (first, last, store['id'], k)
                order = sorted(want, key=lambda s: (
                    not want[s]['recommended'], -(want[s]['purchased'] / want[s]['recommended']
                                                  if want[s]['recommended'] else 0),
                    -want[s]['purchased'], s))
                assert [s['id'] for s, _ in got.ranked] == order, (first, last)
                chain_total = funnel.total(inside)
                assert {k: got.total[k] for k in hq.STAGES} == \
                    {k: chain_total[k] for k in hq.STAGES}, (first, last)
                assert got.total['store_days'] == len(inside)
                days = sorted({r['day'] for r in inside})
                assert got.days == [{'day': d, 'engaged': sum(r['engaged'] for r in inside
                                                              if r['day'] == d),
                                     'purchased': sum(r['purchased'] for r in inside
                                                      if r['day'] == d)} for d in days]
                for region, odd in (('north', 1), ('south', 0)):
                    mine = [r for r in inside if int(r['store_id'][2:]) % 2 == odd]
                    if mine:
                        assert got.regions[region]['purchased'] == sum(r['purchased'] for r in mine)
                        assert got.regions[region]['store_days'] == len(mine)
                    else:
                        assert region not in got.regions
    finally:
        storage.close()


@pytest.mark.parametrize('first, last, months, ranges', [
    ('2026-10-01', '2026-10-31', ['2026-10'], []),
    ('2026-09-28', '2026-11-03', ['2026-10'], [('2026-09-28', '2026-09-30'),
                                               ('2026-11-01', '2026-11-03')]),
    ('2026-10-02', '2026-10-30', [], [('2026-10-02', '2026-10-30')]),
    ('2024-02-01', '2024-02-29', ['2024-02'], []),                # a leap year's February
    ('2025-12-01', '2026-01-31', ['2025-12', '2026-01'], []),
    ('9999-12-01', '9999-12-31', ['9999-12'], []),
])
def test_month_parts(first, last, months, ranges):
    assert hq.month_parts(first, last) == (months, ranges)
