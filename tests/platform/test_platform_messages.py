"""The platform's answers as a user meets them, on SQLite and PostgreSQL: a funnel range over the
limit is refused with the limit named (never silently shortened); every endpoint that takes a
body decodes Content-Encoding the same way (gzip decoded with the bounded decompression, a gzip
bomb 413, an unknown encoding 415, all in the OpenAPI document); refusals name roles in English;
a CSV body sent to the JSON-lines receipts API says what format is expected."""
from __future__ import annotations

import gzip
import json
import zlib

import pytest
from fastapi.testclient import TestClient

from loop_support import DAY, chain, receipts_for
from platform_support import ADMIN
from retail_platform.app import MAX_DECOMPRESSED, a_credential, create_app

AUTH = {'Authorization': f'Bearer {ADMIN}'}


def _bomb(size: int) -> bytes:
    """A valid gzip stream of `size` zero bytes (about size / 1000 bytes on the wire)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b'\0' * (1 << 20)
    out = bytearray()
    for _ in range(size // len(block) + 1):
        out += packer.compress(block)
    return bytes(out + packer.flush())


@pytest.fixture
def client(engine_target):
    tokens = chain(engine_target)
    with TestClient(create_app(engine_target, ADMIN, funnel_refresh_s=0),
                    raise_server_exceptions=False) as test_client:
        test_client.tokens = tokens
        yield test_client


# (path, from, to, answer): the three funnel endpoints, each range kind
FUNNEL_PATHS = ['/v1/funnel', '/v1/stores/s-1/funnel', '/v1/funnel/export']
RANGES = [('2020-01-01', '2026-01-01', 422),        # six years: refused, the limit named
          ('2020-01-01', '2021-01-01', 422),        # 367 days
          ('2020-01-01', '2020-12-31', 200),        # exactly 366 days: served whole
          ('2000-01-01', None, 422),                # `to` defaults to today: far more than 366
          (DAY, '2026-01-01', 200)]                 # from after to: an empty range


@pytest.mark.parametrize('path', FUNNEL_PATHS)
def test_a_funnel_range_is_served_whole_or_refused_naming_the_limit(client, path):
    for first, last, expected in RANGES:
        params = {'from': first, **({'to': last} if last else {})}
        got = client.get(path, params=params, headers=AUTH)
        assert got.status_code == expected, (path, first, last, got.text)
        if expected == 422:
            assert '366 days' in got.json()['detail'], got.text
        elif path != '/v1/funnel/export' and first <= (last or first):
            assert (got.json()['from'], got.json()['to']) == (first, last)
    described = client.get('/openapi.json', headers=AUTH).json()['paths'][FUNNEL_PATHS[0]]['get']
    assert '366 days is refused with 422' in json.dumps(described)


def _bodies(client) -> list[tuple[str, str, dict, bytes, int]]:
    """(method, path, headers, a valid body, the body's limit) of each body-taking endpoint kind:
    events (16 MiB on the wire, 64 MiB decoded), receipts, products, a store's product, an
    appointment (small JSON), a staff call's heartbeat-like small body."""
    robot = {'Authorization': f'Bearer {client.tokens["robot"]}'}
    event = {'event_id': 'e-1', 'seq': 1, 'type': 'custom.note', 'time': 1.7e9, 'data': {'a': 1}}
    receipt = json.dumps(receipts_for(DAY)[0]).encode()
    product = dict(sku='P-1', name_zh='商品', name_en='Product', aliases='', category='snacks',
                   category_zh='零食', brand='Acme', brand_zh='极美', price_cny='10',
                   zone='aisle-1', stock='5', tags='', promotion='', promotion_en='')
    return [
        ('POST', '/v1/robots/robot-1/events', robot, json.dumps({'events': [event]}).encode(),
         MAX_DECOMPRESSED),
        ('POST', '/v1/stores/s-1/receipts', AUTH, receipt, 16 << 20),
        ('PUT', '/v1/products', AUTH, json.dumps({'products': [product]}).encode(), 32 << 20),
        ('POST', '/v1/stores/s-1/appointments', AUTH,
         json.dumps({'customer': 'm-1', 'time': '2026-11-02T10:00'}).encode(), 64 << 10),
        ('POST', '/v1/admin/stores', AUTH, None, 64 << 10),   # a new store id each time
    ]


# (Content-Encoding, how the body is sent, the answer expected: None = as the plain body's)
ENCODINGS = [('gzip', 'gzip', None), ('GZip', 'gzip', None), ('x-gzip', 'gzip', None),
             ('identity', 'plain', None), ('br', 'plain', 415), ('deflate', 'plain', 415),
             ('gzip, br', 'gzip', 415), ('gzip', 'plain', 400), ('gzip', 'cut', 400),
             ('gzip', 'bomb', 413)]


def test_every_body_is_decoded_as_its_content_encoding_says(client):
    for method, path, headers, given, limit in _bodies(client):
        for number, (encoding, shape, expected) in enumerate(ENCODINGS):
            body = given or json.dumps({'id': f's-new-{number}', 'name': 'New'}).encode()
            sent = {'plain': body, 'gzip': gzip.compress(body), 'cut': gzip.compress(body)[:-9],
                    'bomb': _bomb(limit + 1)}[shape]
            got = client.request(method, path, content=sent,
                                 headers={**headers, 'Content-Encoding': encoding})
            if expected is None:
                assert got.status_code in (200, 201), (path, encoding, got.text)
            else:
                assert got.status_code == expected, (path, encoding, got.status_code, got.text)
                assert '\n' not in got.json()['detail']
            if expected == 415:
                assert 'gzip' in got.json()['detail'] and encoding.split(',')[0] in \
                    got.json()['detail'].lower()


def test_the_document_lists_413_and_415_for_every_operation_that_takes_a_body(client):
    document = client.get('/openapi.json', headers=AUTH).json()
    taking = [(method, path, operation) for path, methods in document['paths'].items()
              for method, operation in methods.items() if 'requestBody' in operation]
    assert len(taking) >= 10
    for method, path, operation in taking:
        assert {'413', '415'} <= set(operation['responses']), (method, path)


def test_a_csv_body_sent_to_the_receipts_api_says_json_lines_are_expected(client):
    csv_body = ('receipt_id,store_id,time,member_id,code,sku,qty,price_cny\n'
                'r-1,s-1,2026-11-02T15:00:00,m-0001,,TV-85,1,9999\n')
    for body in (csv_body, '\ufeff' + csv_body, '\n\n' + csv_body):
        got = client.post('/v1/stores/s-1/receipts', content=body.encode(), headers=AUTH)
        assert got.status_code == 422 and 'JSON lines' in got.json()['detail'], got.text
    garbled = client.post('/v1/stores/s-1/receipts', content=b'{"receipt_id": ', headers=AUTH)
    assert garbled.status_code == 200
    assert 'expected one receipt object a line' in garbled.json()['problems'][0]


ROLES = [('analyst', 'an analyst credential'), ('admin', 'an admin credential'),
         ('robot', 'a robot credential'), ('store_manager', 'a store manager credential'),
         ('region', 'a region credential')]


@pytest.mark.parametrize('role, words', ROLES)
def test_a_role_is_named_in_english(role, words):
    assert a_credential(role) == words


def test_an_analyst_is_refused_in_english(client):
    analyst = {'Authorization': f'Bearer {client.tokens["analyst"]}'}
    got = client.put('/v1/stores/s-1/products/P-1', headers=analyst, json={'price_cny': 1})
    assert got.status_code == 403
    assert 'an analyst credential' in got.json()['detail'] and 'a analyst' not in got.text
