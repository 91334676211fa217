"""Uploads do not read the credential separately (each API process keeps a robot's credential
for a minute), yet a revocation or a replaced token holds at once for the very next batch on
every process: the ingest transaction checks the token itself. Two apps over one database stand
for two API processes; on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from platform_support import ADMIN
from retail_platform.app import create_app, export_events
from retail_platform.storage import Storage


def batch(n: int) -> dict:
    return {'events': [{'event_id': f'e-{n}', 'seq': n, 'type': 'guide', 'version': 1,
                        'customer': '', 'time': 1.75e9 + n,
                        'data': {'zone': 'kitchen', 'status': 'started'}}]}


@pytest.mark.parametrize('how', ['revoke', 'replace'])
def test_a_revoked_token_uploads_nothing_more_on_any_process(engine_target, how):
    storage = Storage(engine_target)
    from retail_platform.database import upgrade
    upgrade(storage.engine)
    storage.add_store('s-1', 'Store one')
    token = storage.issue_robot_token('robot-1', 's-1')
    headers = {'Authorization': f'Bearer {token}'}
    with TestClient(create_app(engine_target, ADMIN), raise_server_exceptions=False) as one, \
            TestClient(create_app(engine_target, ADMIN), raise_server_exceptions=False) as two:
        for n, client in enumerate((one, two, one, two)):       # both processes keep it now
            assert client.post('/v1/robots/robot-1/events', json=batch(n),
                               headers=headers).status_code == 200
        if how == 'revoke':
            assert storage.revoke_robot('robot-1') == 1
        else:
            new = storage.issue_robot_token('robot-1', 's-1', replace=True)
        for n, client in ((10, one), (11, two)):
            answer = client.post('/v1/robots/robot-1/events', json=batch(n), headers=headers)
            assert answer.status_code == 401, answer.text
            assert answer.json()['detail'] == 'missing or wrong bearer token'
        if how == 'replace':                                     # the new token works
            assert two.post('/v1/robots/robot-1/events', json=batch(12),
                            headers={'Authorization': f'Bearer {new}'}).status_code == 200
        one.app.state.storage.close()
        two.app.state.storage.close()
    stored = sorted(e['event_id'] for e in export_events(engine_target, 'robot-1'))
    assert stored == sorted(['e-0', 'e-1', 'e-2', 'e-3'] + (['e-12'] if how == 'replace' else []))
    storage.close()
