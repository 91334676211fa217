"""The robot's store downlink (retail_sync.downlink) against a real `retailbot platform
serve` on SQLite and PostgreSQL: a snapshot, then deltas, applied atomically to its SQLite and the
files the robot reads; members cached for offline use; a forgotten member erased from the cache
and the encrypted face gallery (the perception delete path) and confirmed, seen by the CLI. And
against a canned HTTP server: every kind of bad answer is reported and the last good state kept."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest

from platform_support import ADMIN, platform_cli, start_server
from retail_common.catalog import load_catalog
from retail_platform.database import upgrade
from retail_platform.storage import Storage
from retail_sync.downlink import StoreDownlink
from rostest_support import stop_process

A = {'Authorization': f'Bearer {ADMIN}'}


def product(sku: str, price: str = '10') -> dict:
    return dict(sku=sku, name_zh=f'商品{sku}', name_en=f'Product {sku}', aliases='', category='snacks',
                category_zh='零食', brand='Acme', brand_zh='极美', price_cny=price, zone='aisle-1',
                stock='5', tags='', promotion='', promotion_en='')


def gallery_with(tmp_path, *members: str):
    """A real encrypted gallery holding `members`, and its delete path as the robot's eraser."""
    from retail_perception.gallery import Gallery, GalleryStore, new_key_text
    store = GalleryStore(tmp_path / 'faces', bytes.fromhex(new_key_text()))
    gallery = Gallery()
    rng = np.random.default_rng(7)
    for member in members:
        base = rng.normal(size=128).astype(np.float32)
        gallery.enroll(member, member, False, 'consent-form-1', np.stack([base, base + 0.01]))
    store.save(gallery)

    def erase(member_id: str) -> bool:
        with store.transaction() as g:
            return g.delete(member_id)
    return store, erase


def test_snapshot_deltas_members_and_forget_on_a_real_platform(engine_target, tmp_path):
    storage = Storage(engine_target)
    upgrade(storage.engine)
    storage.add_store('s-own', 'Own store')
    storage.add_store('s-other', 'Other store')
    token = storage.issue_robot_token('robot-own', 's-own')
    storage.close()
    server = start_server(engine_target)
    try:
        with server.client() as admin:
            assert admin.put('/v1/products', json={'products': [product('P-1'), product('P-2'),
                                                                 product('P-3')]}).status_code == 200
            for member, home in (('m-9', 's-own'), ('m-far', 's-other')):
                assert admin.put(f'/v1/admin/members/{member}', json={
                    'consent': True, 'home_store': home,
                    'history': [{'sku': 'P-2', 'ts': '2026-11-01', 'qty': 2, 'price_cny': 10}]}
                ).status_code == 200
        gallery, erase = gallery_with(tmp_path, 'm-9', 'm-1')
        robot = StoreDownlink(server.url, token, 'robot-own', tmp_path / 'data', erase_face=erase)
        first = robot.sync()
        assert first.applied and first.full and first.error is None
        catalog = load_catalog(tmp_path / 'data' / 'catalog.csv')
        assert sorted(p.sku for p in catalog.products) == ['P-1', 'P-2', 'P-3'] and not catalog.issues
        assert 'm-9,P-2' in (tmp_path / 'data' / 'history.csv').read_text()
        assert 'm-far' not in (tmp_path / 'data' / 'history.csv').read_text()
        with server.client() as admin:
            admin.put('/v1/stores/s-own/products/P-2', json={'price_cny': 7.5})
        second = robot.sync()
        assert not second.full and second.changed['products'] == 1 and second.version > first.version
        price = {p.sku: p.price_cny for p in load_catalog(tmp_path / 'data' / 'catalog.csv').products}
        assert price == {'P-1': 10.0, 'P-2': 7.5, 'P-3': 10.0}
        # a consenting member from another store, recognised here: fetched, cached for offline use
        assert robot.member('m-far')['history'][0]['qty'] == 2
        # forget m-9 with the CLI; the robot erases cache and face, and confirms
        asked = platform_cli('forget-member', '--database', engine_target, '--member-id', 'm-9', '--json')
        assert asked.returncode == 0, asked.stderr
        assert json.loads(asked.stdout)['pending'] == ['robot-own']
        third = robot.sync()
        assert third.forgotten == ['m-9'] and robot.pending_forget() == []
        assert 'm-9' not in (tmp_path / 'data' / 'history.csv').read_text()
        assert set(gallery.load().members) == {'m-1'}, 'the gallery entry is gone, the others stay'
        status = platform_cli('forget-member', '--database', engine_target, '--member-id', 'm-9',
                              '--status', '--json')
        shown = json.loads(status.stdout)
        assert shown['complete'] and shown['robots'][0]['confirmed']
        assert 'gallery entry erased' in shown['robots'][0]['detail']
        human = platform_cli('forget-member', '--database', engine_target, '--member-id', 'm-9', '--status')
        assert 'robot-own: confirmed' in human.stdout
        missing = platform_cli('forget-member', '--database', engine_target, '--member-id', 'm-x', '--status')
        assert missing.returncode == 2 and 'no forget request' in missing.stderr and '\n' not in missing.stderr.strip()
    finally:
        stop_process(server.process)
    # the platform is away: the cached member still answers, the last good state stays
    offline = robot.sync()
    assert offline.error and 'unreachable' in offline.error and offline.version == third.version
    assert robot.member('m-far')['member_id'] == 'm-far'
    assert robot.member('m-9') is None
    robot.close()
    # a restart opens the same state
    again = StoreDownlink(server.url, token, 'robot-own', tmp_path / 'data')
    assert again.version == third.version and again.store_id == 's-own'
    again.close()


# --- a canned platform for bad answers ---------------------------------------------------------
class Canned:
    def __init__(self) -> None:
        self.answer: bytes = b''
        self.status = 200
        self.confirmed: list[str] = []
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(canned.status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(canned.answer)))
                self.end_headers()
                self.wfile.write(canned.answer)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get('content-length') or 0))
                canned.confirmed.append(self.path.rsplit('/', 1)[-1])
                self.send_response(200)
                self.send_header('Content-Length', '2')
                self.end_headers()
                self.wfile.write(b'{}')

            def log_message(self, *args) -> None:
                pass
        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f'http://127.0.0.1:{self.server.server_port}'

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def answer(version: int, full: bool, since: int | None = None, **lists) -> dict:
    base = {'store_id': 's-1', 'version': version, 'since': since, 'full': full}
    for key in ('products', 'promotions', 'appointments', 'members'):
        base[key] = lists.get(key, [])
        base[f'{key}_removed'] = lists.get(f'{key}_removed', [])
    base['forget'] = lists.get('forget', [])
    return base


def _bad_product(a: dict) -> None:
    a['products'] = [product('P-1', '11'), product('P-2', 'free')]


def _back(a: dict) -> None:
    a['version'] = 3


def _wrong_since(a: dict) -> None:
    a['since'] = 4


def _members_not_list(a: dict) -> None:
    a['members'] = {'m-1': {}}


def _member_without_history(a: dict) -> None:
    a['members'] = [{'member_id': 'm-3'}]


def _forget_not_ids(a: dict) -> None:
    a['forget'] = [7]


def _appointment_id_text(a: dict) -> None:
    a['appointments'] = [{'id': 'x', 'customer': 'm-1'}]


def _other_store_delta(a: dict) -> None:
    a['store_id'] = 's-2'


def _no_version(a: dict) -> None:
    del a['version']


BAD = [('a product with a bad price', _bad_product, 'price_cny'),
       ('a version going back', _back, 'older'),
       ('a delta for another version', _wrong_since, 'delta since 4'),
       ('members not a list', _members_not_list, 'members must be a list'),
       ('a member without history', _member_without_history, 'history'),
       ('tombstones not ids', _forget_not_ids, 'forget[0]'),
       ('an appointment id as text', _appointment_id_text, 'appointments[0]'),
       ('a delta for another store', _other_store_delta, 'while holding store s-1'),
       ('no version', _no_version, 'version')]


@pytest.mark.parametrize('name, spoil, words', BAD, ids=[b[0] for b in BAD])
def test_a_bad_answer_is_reported_and_the_last_good_state_kept(tmp_path, name, spoil, words):
    canned = Canned()
    try:
        good = answer(5, True, products=[product('P-1'), product('P-2')],
                      members=[{'member_id': 'm-1', 'history': [{'sku': 'P-1', 'ts': 't', 'qty': 1,
                                                                  'price_cny': 1}]}])
        canned.answer = json.dumps(good).encode()
        robot = StoreDownlink(canned.url, 't', 'r-1', tmp_path)
        assert robot.sync().version == 5
        files = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.suffix in ('.csv', '.json')}
        bad = answer(6, False, since=5, products=[product('P-1', '12')], members_removed=['m-1'],
                     forget=['m-1'])
        spoil(bad)
        canned.answer = json.dumps(bad).encode()
        outcome = robot.sync()
        assert not outcome.applied and words in outcome.error and 'keeping version 5' in outcome.error
        assert robot.version == 5 and [p['price_cny'] for p in robot.rows('products')] == ['10', '10']
        assert [m['member_id'] for m in robot.rows('members')] == ['m-1'] and robot.pending_forget() == []
        assert files == {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.suffix in ('.csv', '.json')}
        assert canned.confirmed == []
        robot.close()
    finally:
        canned.close()


@pytest.mark.parametrize('body, words', [(b'not json', 'not JSON'), (b'[1, 2]', 'not a JSON object'),
                                         (b'{"version": 6}', 'full and store_id'),
                                         (b'x' * 5000, 'larger than')])
def test_an_answer_that_is_not_an_answer_is_refused(tmp_path, body, words):
    canned = Canned()
    try:
        canned.answer = body
        robot = StoreDownlink(canned.url, 't', 'r-1', tmp_path, max_bytes=4096)
        outcome = robot.sync()
        assert not outcome.applied and words in outcome.error and robot.version is None
        assert not (tmp_path / 'catalog.csv').exists()
        canned.status = 503
        assert 'HTTP 503' in robot.sync().error
        robot.close()
    finally:
        canned.close()


def test_a_tombstone_is_applied_once_and_confirmed_until_the_platform_has_it(tmp_path):
    canned = Canned()
    try:
        canned.answer = json.dumps(answer(1, True, members=[{'member_id': 'm-1', 'history': []}])).encode()
        robot = StoreDownlink(canned.url, 't', 'r-1', tmp_path)
        robot.sync()
        canned.answer = json.dumps(answer(2, False, since=1, forget=['m-1'],
                                          members=[{'member_id': 'm-1', 'history': []}])).encode()
        outcome = robot.sync()
        assert outcome.applied and robot.rows('members') == [] and outcome.forgotten == ['m-1']
        assert canned.confirmed == ['m-1']
        assert robot.member('m-1') is None or robot.rows('members') == []
    finally:
        canned.close()
    with pytest.raises(httpx.HTTPError):
        httpx.get(canned.url, timeout=2)


def test_hqs_campaigns_reach_the_robot_and_a_forgotten_member_leaves_them(engine_target, tmp_path):
    """The downlink's campaigns section is written to campaigns.json, which the robot's store model
    reads (retail_common.campaigns); a member the robot is asked to forget is never offered one."""
    import time
    from datetime import datetime, timedelta, timezone

    from loop_support import event, store_events
    from retail_common.campaigns import load_campaigns

    storage = Storage(engine_target)
    upgrade(storage.engine)
    storage.add_store('s-own', 'Own store')
    token = storage.issue_robot_token('robot-own', 's-own')
    now = time.time()
    store_events(storage, 'robot-own', [event('member_said', now - 86400, {'category': 'snacks', 'language': 'zh'},
                                              'm-9')])
    storage.close()

    def when(days: float) -> str:
        return datetime.fromtimestamp(now + days * 86400, timezone(timedelta(hours=8))).isoformat()

    server = start_server(engine_target)
    try:
        with server.client() as admin:
            assert admin.put('/v1/products', json={'products': [product('P-1')]}).status_code == 200
            assert admin.put('/v1/admin/members/m-9', json={'consent': True, 'home_store': 's-own',
                                                             'history': []}).status_code == 200
            answer = admin.put('/v1/campaigns/snack-week', json={
                'name': 'Snack week', 'audience': {'rules': [{'kind': 'asked_about', 'category': 'snacks',
                                                              'within_days': 30}]},
                'skus': ['P-1'], 'message_zh': '零食周：会员八折。', 'message_en': 'Snack week: members save 20 %.',
                'stores': [], 'regions': [], 'starts_at': when(-1), 'ends_at': when(6)})
            assert answer.status_code == 200, answer.text
        robot = StoreDownlink(server.url, token, 'robot-own', tmp_path / 'data', erase_face=lambda member: False)
        assert robot.sync().applied
        assert robot.take_updates().get('campaigns', '').endswith('campaigns.json')
        campaigns, problems = load_campaigns(tmp_path / 'data' / 'campaigns.json')
        assert not problems and [c.id for c in campaigns] == ['snack-week']
        assert campaigns[0].offers_to('m-9', now) and not campaigns[0].offers_to('', now)
        # nothing changed on the platform: no file is rewritten (each rewrite makes every node of
        # the robot reload its store; a dialogue busy reloading missed a customer's answer)
        assert robot.sync().applied and robot.take_updates() == {}
        assert platform_cli('forget-member', '--database', engine_target, '--member-id', 'm-9').returncode == 0
        assert robot.sync().applied
        campaigns, problems = load_campaigns(tmp_path / 'data' / 'campaigns.json')
        assert not problems and all('m-9' not in c.members for c in campaigns)
    finally:
        stop_process(server.process)
