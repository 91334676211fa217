"""`retailbot platform forget-member` refuses an id the platform has never seen (a typo would
otherwise say "complete" and put the id on every robot's forget list for good) unless
--unknown-ok; an id seen in any one place (a member record, a till receipt, a stored event) is
forgotten; the id's form is the API's rule."""
from __future__ import annotations

import json

import pytest

from cli_support import one_line
from loop_support import chain, receipts_for, store_events, store_floor_day
from platform_support import platform_cli


@pytest.fixture
def seen(engine_target):
    """m-0001 only in robot-1's events, m-0009 only in a till receipt, m-rec only a member record."""
    from retail_platform import purchases
    from retail_platform.chain import Chain
    from retail_platform.storage import Storage
    chain(engine_target)
    storage = Storage(engine_target)
    try:
        store_events(storage, 'robot-1', store_floor_day())
        receipt = dict(receipts_for()[2], code='')
        purchases.store_receipts(storage.engine, [('t:1', purchases.Receipt.model_validate(receipt))])
        Chain(storage.engine).put_member('m-rec', True, 's-1', [])
    finally:
        storage.close()
    return engine_target


@pytest.mark.parametrize('member', ['m-0001', 'm-0009', 'm-rec'])
def test_a_member_seen_anywhere_is_forgotten(seen, member):
    done = platform_cli('forget-member', '--database', seen, '--member-id', member, '--json')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)['member_id'] == member


def test_an_id_never_seen_is_refused_unless_unknown_ok(seen):
    line = one_line(platform_cli('forget-member', '--database', seen, '--member-id', 'm-nobody'),
                    2, "never seen member 'm-nobody'", '--unknown-ok')
    assert 'complete' not in line
    # nothing was recorded: no forget request, so no robot is told to forget it
    one_line(platform_cli('forget-member', '--database', seen, '--member-id', 'm-nobody',
                          '--status'), 2, 'no forget request')
    forced = platform_cli('forget-member', '--database', seen, '--member-id', 'm-nobody',
                          '--unknown-ok', '--json')
    assert forced.returncode == 0, forced.stderr
    # once requested, the id is known: running it again shows the status
    again = platform_cli('forget-member', '--database', seen, '--member-id', 'm-nobody')
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize('member', ['a/b', '', 'x' * 129, '/'])
def test_an_id_of_the_wrong_form_is_refused_as_the_api_does(tmp_path, member):
    from retail_platform.chain import valid_member_id
    assert not valid_member_id(member) and valid_member_id('x' * 128)
    one_line(platform_cli('forget-member', '--database', str(tmp_path / 'p.sqlite3'), '--member-id', member,
                          '--unknown-ok'), 2, '--member-id must be 1-128 characters')


def test_the_admin_api_refuses_an_id_never_seen_as_the_cli_does(seen):
    """POST /v1/admin/members/{id}/forget: an id the platform never saw is 404 with one line
    naming it and the way to force it (`unknown_ok=true`, the CLI's --unknown-ok), and nothing
    is recorded; a seen id, a forced one and a repeat are forgotten; the contract says so."""
    from fastapi.testclient import TestClient

    from platform_support import ADMIN
    from retail_platform.app import create_app
    admin = {'Authorization': f'Bearer {ADMIN}'}
    with TestClient(create_app(seen, ADMIN), raise_server_exceptions=False) as client:
        try:
            refused = client.post('/v1/admin/members/m-nobody/forget', headers=admin)
            assert refused.status_code == 404, refused.text
            detail = refused.json()['detail']
            assert "never seen member 'm-nobody'" in detail and 'unknown_ok=true' in detail
            assert '\n' not in detail
            assert client.get('/v1/admin/members/m-nobody/forget', headers=admin).status_code == 404
            for member in ('m-0001', 'm-0009', 'm-rec'):
                answer = client.post(f'/v1/admin/members/{member}/forget', headers=admin)
                assert answer.status_code == 200 and answer.json()['member_id'] == member, answer.text
            forced = client.post('/v1/admin/members/m-nobody/forget?unknown_ok=true', headers=admin)
            assert forced.status_code == 200 and forced.json()['member_id'] == 'm-nobody'
            again = client.post('/v1/admin/members/m-nobody/forget', headers=admin)
            assert again.status_code == 200, again.text
            operation = client.get('/openapi.json', headers=admin).json()[
                'paths']['/v1/admin/members/{member_id}/forget']['post']
            assert 'never seen' in operation['responses']['404']['description']
            assert [p['name'] for p in operation['parameters'] if p['in'] == 'query'] == ['unknown_ok']
        finally:
            client.app.state.storage.close()
