"""Attack round s13: while the database was unreachable, every answer's 503 detail was the
driver's first line (`connection to server at "127.0.0.1", port 5432 failed: Connection
refused`): the database's address and port, told to anyone, also to a caller with a wrong token
(checking the token reads the database), and `/v1/ready` to anyone, with no token. The answer now says what kind of trouble it is (one
line, Retry-After); the driver's line goes to the platform's log only. A real `serve` process
over a PostgreSQL cluster that is stopped, then started again."""
from __future__ import annotations

import httpx

from loop_support import chain
from platform_support import ADMIN, start_server
from rostest_support import stop_process


def test_an_unreachable_database_is_a_503_that_names_no_address(pg_cluster, pg_database):
    chain(pg_database)
    server = start_server(pg_database)
    port = str(pg_cluster.port)
    try:
        pg_cluster.stop('fast')
        try:
            for headers in ({'Authorization': 'Bearer not-a-token'},
                            {'Authorization': f'Bearer {ADMIN}'}):
                answer = httpx.get(server.url + '/v1/stores', headers=headers, timeout=60)
                assert answer.status_code == 503, answer.text
                assert int(answer.headers['retry-after']) >= 1
                detail = answer.json()['detail']
                assert detail.startswith('database unavailable: ') and '\n' not in detail
                assert port not in detail and '127.0.0.1' not in detail, detail
                # the pool's open connection is ended by the shutdown, the next is refused
                assert detail in ('database unavailable: the database is restarting',
                                  'database unavailable: the database refused or lost the '
                                  'connection'), detail
            ready = httpx.get(server.url + '/v1/ready', timeout=60)       # no token needed
            assert ready.status_code == 503 and port not in ready.text, ready.text
            assert '127.0.0.1' not in ready.text
        finally:
            pg_cluster.start()
        assert httpx.get(server.url + '/v1/stores', headers={
            'Authorization': f'Bearer {ADMIN}'}, timeout=60).status_code == 200
    finally:
        stop_process(server.process)
    log = server.process.stdout.read().decode(errors='replace')
    assert port in log            # the operator's log keeps the driver's words
