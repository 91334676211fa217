"""The fleet on the HQ and store pages, in a real headless Chromium against a real `retailbot
platform serve` (SQLite and PostgreSQL), with robots sending real heartbeats and staff calls over
HTTP: the store page shows each robot healthy / degraded / silent with its last heartbeat,
software version and backlog; an alert task is acknowledged and resolved from the page (time to
resolve shown); a staff call is answered ("Coming in 2 minutes") and taken over by typing, and
the robot receives both; HQ lists silent stores. Read-only roles get no buttons; forms without
this server's Origin or the session's CSRF token, or from a role that may not act, are refused.
RETAIL_HQ_SCREENSHOTS=docs writes docs/hq_fleet_store.png and docs/hq_fleet_overview.png."""
from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest

from browser_support import chromium
from platform_support import start_server
from retail_platform.database import upgrade
from retail_platform.storage import Storage
from rostest_support import wait_for

SHOTS = os.environ.get('RETAIL_HQ_SCREENSHOTS')
CALL = {'call_id': 'c-1', 'reason': 'product_help', 'wanted': 'a kettle under 200 yuan',
        'zone': 'kitchen', 'x': 3.5, 'y': -1.0, 'language': 'en', 'place': '厨房电器区 (Kitchen)'}


@pytest.fixture
def browser():
    with chromium(1280, 1600, page_timeout_s=30, missing='fail') as driver:
        yield driver


@pytest.fixture
def served(engine_target):
    storage = Storage(engine_target)
    upgrade(storage.engine)
    storage.add_store('s-1', 'Jing\'an flagship')
    storage.add_store('s-2', 'Pudong mall')
    robots = {'r-1': storage.issue_robot_token('r-1', 's-1'),
              'r-2': storage.issue_robot_token('r-2', 's-1'),
              'r-3': storage.issue_robot_token('r-3', 's-2')}
    tokens = {'manager': storage.issue_staff_token('store_manager', 'ann', ['s-1']),
              'analyst': storage.issue_staff_token('analyst', 'bo')}
    storage.close()
    server = start_server(engine_target)
    try:
        yield server, robots, tokens
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)


def _robot(server, robots, robot_id) -> httpx.Client:
    return server.client(robots[robot_id])


def _beat(server, robots, robot_id, **fields) -> None:
    with _robot(server, robots, robot_id) as c:
        c.post(f'/v1/robots/{robot_id}/heartbeat', json={'period_s': 10, **fields}).raise_for_status()


def _shot(driver, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SHOTS) / f'{name}.png'))


def _sign_in(driver, url: str, token: str, page: str) -> None:
    from selenium.webdriver.common.by import By
    driver.get(url + page)
    wait_for(lambda: driver.find_elements(By.ID, 'token'), 20, 'the sign-in page')
    driver.find_element(By.ID, 'token').send_keys(token)
    driver.find_element(By.ID, 'sign-in').click()
    wait_for(lambda: driver.find_elements(By.ID, 'stores'), 20, 'the stores table')
    driver.get(url + page)


def _cells(driver, row_id: str) -> list[str]:
    from selenium.webdriver.common.by import By
    return [td.text for td in driver.find_element(By.ID, row_id).find_elements(By.TAG_NAME, 'td')]


def test_store_page_shows_robots_tasks_and_staff_calls_and_acts_on_them(served, browser):
    from selenium.webdriver.common.by import By
    server, robots, tokens = served
    _beat(server, robots, 'r-1', software_version='1.4.0', sync_backlog=12, sync_oldest_s=300,
          battery_percent=81)
    _beat(server, robots, 'r-2', software_version='1.3.9', localisation_lost=True,
          localisation={'level': 'warn', 'message': 'the scans match nowhere'})
    _beat(server, robots, 'r-3', period_s=1)             # s-2's only robot, soon silent
    with _robot(server, robots, 'r-1') as c:
        c.post('/v1/robots/r-1/staff-calls', json=CALL).raise_for_status()

    _sign_in(browser, server.url, tokens['manager'], '/hq/stores/s-1')
    wait_for(lambda: browser.find_elements(By.ID, 'fleet-r-1'), 20, 'the store\'s robots')
    healthy = _cells(browser, 'fleet-r-1')
    assert healthy[0] == 'r-1' and healthy[1].startswith('healthy')
    assert healthy[2].endswith('s ago') and healthy[3] == '1.4.0'
    assert healthy[4] == '12 (oldest 5 min)' and healthy[5] == '81 %'
    degraded = _cells(browser, 'fleet-r-2')
    assert degraded[1].startswith('degraded') and 'the scans match nowhere' in degraded[6]
    assert not browser.find_elements(By.ID, 'fleet-r-3')          # another store's robot

    # the `lost` alert is a task: acknowledge, then resolve with a note -> time to resolve
    task = browser.find_element(By.CSS_SELECTOR, '#tasks tr[id^="task-"]')
    task_id = task.get_attribute('id').split('-')[1]
    assert 'robot lost' in task.text and 'not acknowledged' in task.text
    browser.find_element(By.ID, f'ack-{task_id}').click()
    wait_for(lambda: 'acknowledged by ann (store_manager)' in _text(browser, f'task-{task_id}'),
             20, 'the acknowledged task')
    assert not browser.find_elements(By.ID, f'ack-{task_id}')
    browser.find_element(By.ID, f'note-{task_id}').send_keys('relocalised at the entrance')
    browser.find_element(By.ID, f'resolve-{task_id}').click()
    wait_for(lambda: browser.find_elements(By.ID, f'done-{task_id}'), 20, 'the resolved task')
    done = _cells(browser, f'done-{task_id}')
    assert re.fullmatch(r'\d+ s', done[4]) and done[5] == 'relocalised at the entrance'
    assert not browser.find_elements(By.ID, f'task-{task_id}')

    # the staff call: what the customer wanted, where; answered, then taken over by typing
    call = browser.find_element(By.CSS_SELECTOR, '#calls tr[id^="call-"]')
    call_id = call.get_attribute('id').split('-')[1]
    cells = _cells(browser, f'call-{call_id}')
    assert cells[2] == 'a kettle under 200 yuan' and cells[3] == '厨房电器区 (Kitchen) · customer speaks English 顾客说英文'
    assert cells[4] == 'open'
    browser.find_element(By.ID, f'answer-{call_id}').click()       # "Coming in 2 minutes"
    wait_for(lambda: 'answered: Coming in 2 minutes' in _text(browser, f'call-{call_id}'), 20,
             'the answer on the page')
    browser.find_element(By.ID, f'say-text-{call_id}').send_keys('Kettles are on aisle 4')
    browser.find_element(By.ID, f'say-{call_id}').click()
    wait_for(lambda: 'said: Kettles are on aisle 4' in _text(browser, f'call-{call_id}'), 20,
             'the typed words on the page')
    with _robot(server, robots, 'r-1') as c:
        heard = c.get('/v1/robots/r-1/staff-messages').json()
    assert [(m['kind'], m['text'], m['language']) for m in heard] == [
        ('answer', 'Coming in 2 minutes', 'en'), ('say', 'Kettles are on aisle 4', 'en')]
    browser.refresh()
    assert 'heard by the robot' in browser.find_element(By.ID, f'call-{call_id}').text
    _shot(browser, 'hq_fleet_store')
    browser.find_element(By.ID, f'close-{call_id}').click()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, 'p#calls'), 20, 'no call waiting')

    # HQ (analyst): per store robots per state; s-2 is a silent store once r-3 misses its beat
    browser.find_element(By.ID, 'logout').click()
    _sign_in(browser, server.url, tokens['analyst'], '/hq')

    def silent_listed():
        browser.refresh()
        return 'Pudong mall' in _text(browser, 'silent-stores')
    wait_for(silent_listed, 30, 'the silent store on HQ')
    rows = {r.find_elements(By.TAG_NAME, 'td')[0].text: [td.text for td in r.find_elements(
        By.TAG_NAME, 'td')[1:]] for r in browser.find_elements(By.CSS_SELECTOR, '#fleet-stores tr')
        if r.find_elements(By.TAG_NAME, 'td')}
    assert rows['Pudong mall'] == ['1', '0', '0', '1']
    assert rows['Jing\'an flagship'][0] == '2' and rows['Jing\'an flagship'][3] == '0'
    _shot(browser, 'hq_fleet_overview')
    # an analyst reads the store page but gets no buttons
    browser.get(server.url + '/hq/stores/s-1')
    assert browser.find_elements(By.ID, 'fleet-r-1')
    assert not browser.find_elements(By.CSS_SELECTOR, 'form[action*="/tasks/"], form[action*="/calls/"]')


def _text(browser, element_id: str) -> str:
    """An element's text, '' while the page is being replaced (the form's POST redirects back
    to the page: the element found may go stale before its text is read)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    try:
        return browser.find_element(By.ID, element_id).text
    except (NoSuchElementException, StaleElementReferenceException):
        return ''


def _session(server, token: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=server.url, timeout=30)
    client.post('/hq/login', data={'token': token}, headers={'Origin': server.url})
    page = client.get('/hq/stores/s-1')
    assert page.status_code == 200, page.text
    return client, re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def test_fleet_forms_refuse_forgery_wrong_roles_and_bad_input(served):
    server, robots, tokens = served
    _beat(server, robots, 'r-2', localisation_lost=True)
    with _robot(server, robots, 'r-1') as c:
        call = c.post('/v1/robots/r-1/staff-calls', json=CALL).json()['id']
    with server.client() as admin:
        task = admin.get('/v1/stores/s-1/tasks').json()[0]['id']
    manager, csrf = _session(server, tokens['manager'])
    analyst, analyst_csrf = _session(server, tokens['analyst'])
    origin = {'Origin': server.url}
    task_url, call_url = f'/hq/stores/s-1/tasks/{task}', f'/hq/stores/s-1/calls/{call}'
    refusals = [
        (manager, task_url, {'csrf': csrf, 'action': 'resolve'}, {}, 403),          # no Origin
        (manager, task_url, {'csrf': csrf, 'action': 'resolve'},
         {'Origin': 'http://evil.example'}, 403),
        (manager, task_url, {'csrf': 'forged', 'action': 'resolve'}, origin, 403),
        (analyst, task_url, {'csrf': analyst_csrf, 'action': 'resolve'}, origin, 403),
        (analyst, call_url, {'csrf': analyst_csrf, 'kind': 'say', 'text': 'hi'}, origin, 403),
        (manager, task_url, {'csrf': csrf, 'action': 'delete'}, origin, 422),
        (manager, call_url, {'csrf': csrf, 'kind': 'shout', 'text': 'hi'}, origin, 422),
        (manager, call_url, {'csrf': csrf, 'kind': 'say', 'text': ''}, origin, 422),
        (manager, call_url, {'csrf': csrf, 'kind': 'say', 'text': 'x' * 501}, origin, 422),
        (manager, '/hq/stores/s-2/calls/1', {'csrf': csrf, 'kind': 'say', 'text': 'hi'}, origin, 404),
        (manager, '/hq/stores/s-1/tasks/999', {'csrf': csrf, 'action': 'resolve'}, origin, 404),
        (manager, '/hq/stores/s-1/tasks/0', {'csrf': csrf, 'action': 'resolve'}, origin, 422),
    ]
    for client, url, form, headers, status in refusals:
        answer = client.post(url, data=form, headers=headers)
        assert answer.status_code == status, (url, form, headers, answer.text)
        # a page form's refusal is a page with the message, never raw JSON
        assert answer.headers['content-type'].startswith('text/html'), (url, answer.text)
        assert 'id="page-error"' in answer.text and '{"detail"' not in answer.text
    with server.client() as admin:
        assert admin.get('/v1/stores/s-1/tasks').json()[0]['resolved_at'] is None
        assert admin.get('/v1/stores/s-1/staff-calls').json()[0]['messages'] == []
    # a foreign Host is refused on the page itself
    assert manager.get('/hq/stores/s-1', headers={'Host': 'evil.example'}).status_code == 421
    # the same forms, well made, work; after sign-out the session no longer acts
    assert manager.post(task_url, data={'csrf': csrf, 'action': 'resolve'},
                        headers=origin).status_code == 303
    manager.post('/hq/logout', data={'csrf': csrf}, headers=origin)
    answer = manager.post(call_url, data={'csrf': csrf, 'kind': 'say', 'text': 'hi'}, headers=origin)
    assert answer.status_code == 303 and answer.headers['location'] == '/hq/login'
    with server.client() as admin:
        assert admin.get('/v1/stores/s-1/staff-calls').json()[0]['messages'] == []
    manager.close()
    analyst.close()
