"""The HQ and store-manager pages in a real headless Chromium against a real `retailbot platform
serve` (SQLite and PostgreSQL): sign in with a staff token, stores ranked, the funnel and trend,
drill-down region -> store -> robot, CSV export, sign out ends the session; Host, Origin and CSRF
refused as the rest of the product does. RETAIL_HQ_SCREENSHOTS=docs writes the pictures."""
from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from browser_support import chromium
from loop_support import DAY, chain, store_four_days
from platform_support import start_server
from retail_platform.storage import Storage
from rostest_support import wait_for

SHOTS = os.environ.get('RETAIL_HQ_SCREENSHOTS')
RANGE = f'?from=2026-10-27&to={DAY}'


@pytest.fixture
def browser():
    with chromium(1280, 1400, page_timeout_s=30, missing='fail') as driver:
        yield driver


@pytest.fixture
def served(engine_target):
    tokens = chain(engine_target)
    storage = Storage(engine_target)
    try:
        store_four_days(storage)
    finally:
        storage.close()
    server = start_server(engine_target)
    with server.client() as admin:      # the pages read rollups: wait for the first refresh
        wait_for(lambda: admin.get('/v1/funnel').json().get('refreshed_at'), 60,
                 'the background refresher\'s first run')
    try:
        yield server, tokens
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)


def _shot(driver, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SHOTS) / f'{name}.png'))


def _sign_in(driver, url: str, token: str) -> None:
    from selenium.webdriver.common.by import By
    driver.get(url + '/hq' + RANGE)
    wait_for(lambda: driver.find_elements(By.ID, 'token'), 20, 'the sign-in page')
    driver.find_element(By.ID, 'token').send_keys(token)
    driver.find_element(By.ID, 'sign-in').click()
    wait_for(lambda: driver.find_elements(By.ID, 'stores'), 20, 'the stores table')


def test_hq_compares_ranks_and_drills_down_region_store_robot(served, browser):
    from selenium.webdriver.common.by import By
    server, tokens = served
    _sign_in(browser, server.url, tokens['analyst'])
    browser.get(server.url + '/hq' + RANGE)
    stores = browser.find_element(By.ID, 'stores').text
    assert 'Xuhui store' in stores and 'Pudong store' in stores
    rows = browser.find_elements(By.CSS_SELECTOR, '#stores tr')
    assert 'Xuhui store' in rows[1].text           # ranked first: the only one with purchases
    assert browser.find_elements(By.ID, 'trend') and browser.find_elements(By.ID, 'funnel')
    assert 'North' in browser.find_element(By.ID, 'regions').text
    _shot(browser, 'hq_overview')
    browser.find_element(By.LINK_TEXT, 'North').click()
    wait_for(lambda: 'North' in browser.find_element(By.TAG_NAME, 'h1').text, 20, 'the region')
    assert 'Pudong store' not in browser.find_element(By.ID, 'stores').text
    browser.find_element(By.LINK_TEXT, 'Xuhui store').click()
    wait_for(lambda: browser.find_elements(By.ID, 'robots'), 20, 'the store page')
    assert 'robot-1' in browser.find_element(By.ID, 'robots').text
    assert len(browser.find_elements(By.CSS_SELECTOR, '#days tr')) == 1 + 7     # every day of the range
    _shot(browser, 'hq_store')
    browser.find_element(By.ID, 'logout').click()
    wait_for(lambda: browser.find_elements(By.ID, 'token'), 20, 'the sign-in page after sign-out')
    browser.get(server.url + '/hq')
    assert browser.find_elements(By.ID, 'token')       # the session is over


def test_store_manager_sees_only_own_stores_and_exports_csv(served, browser):
    from selenium.webdriver.common.by import By
    server, tokens = served
    _sign_in(browser, server.url, tokens['store_manager'])
    browser.get(server.url + '/hq' + RANGE)
    assert 'Your stores' in browser.find_element(By.TAG_NAME, 'h1').text
    text = browser.find_element(By.ID, 'stores').text
    assert 'Xuhui store' in text and 'Pudong store' not in text
    _shot(browser, 'hq_store_manager')
    cookie = browser.get_cookie('retail_hq')['value']
    csv_text = httpx.get(server.url + '/hq/export.csv' + RANGE, cookies={'retail_hq': cookie}).text
    header, *lines = csv_text.strip().splitlines()
    assert header.startswith('store_id,day,definitions,appeared')
    assert lines and all(line.startswith('s-1,') for line in lines)
    import io

    import pyarrow.parquet as pq
    link = browser.find_element(By.ID, 'export-parquet').get_attribute('href')
    parquet = httpx.get(link, cookies={'retail_hq': cookie})
    assert parquet.headers['content-type'] == 'application/vnd.apache.parquet'
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column_names == header.split(',') and table.num_rows == len(lines)
    assert set(table.column('store_id').to_pylist()) == {'s-1'}
    assert httpx.get(server.url + '/hq/stores/s-2', cookies={'retail_hq': cookie}).status_code == 404


SECURITY = [
    # (what, method, headers, expected status)
    ('login from another site', 'post', {'Origin': 'http://attacker.example'}, 403),
    ('login from another port', 'post', {'Origin': 'http://127.0.0.1:1'}, 403),
    ('login without Origin or Referer', 'post', {}, 403),
    ('page for another host name', 'get', {'Host': 'attacker.example'}, 421),
    ('login for another host name', 'post', {'Host': 'attacker.example',
                                             'Origin': 'http://attacker.example'}, 421),
]


def test_pages_refuse_foreign_hosts_origins_forged_logouts_and_revoked_tokens(served):
    server, tokens = served
    for what, method, headers, status in SECURITY:
        if method == 'post':
            got = httpx.post(server.url + '/hq/login', data={'token': tokens['analyst']},
                             headers=headers)
        else:
            got = httpx.get(server.url + '/hq/login', headers=headers)
        assert got.status_code == status, what
    own = {'Origin': server.url}
    assert httpx.post(server.url + '/hq/login', data={'token': tokens['robot']},
                      headers=own).status_code == 401       # a robot's token is no staff token
    login = httpx.post(server.url + '/hq/login', data={'token': tokens['region']}, headers=own)
    assert login.status_code == 303
    cookie = {'retail_hq': login.cookies['retail_hq']}
    assert httpx.get(server.url + '/hq', cookies=cookie).status_code == 200
    forged = httpx.post(server.url + '/hq/logout', data={'csrf': 'guess'}, cookies=cookie,
                        headers=own)
    assert forged.status_code == 403
    assert httpx.get(server.url + '/hq', cookies=cookie).status_code == 200    # still signed in
    from retail_platform.storage import Storage as S
    storage = S(server.database)
    try:
        with storage.engine.begin() as c:
            import sqlalchemy as sa
            c.execute(sa.text("UPDATE credentials SET revoked_at = 1 WHERE role = 'region'"))
    finally:
        storage.close()
    assert httpx.get(server.url + '/hq', cookies=cookie).status_code == 303   # revoked: over
