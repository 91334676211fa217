"""Platform fixtures: one throwaway PostgreSQL cluster per test session, a database of its own
for each test (copied from a migrated template), and `engine_target` parametrised over SQLite
and PostgreSQL so the same API tests run on both."""
from __future__ import annotations

import pytest

from pg_support import Cluster


@pytest.fixture(scope='session')
def pg_cluster():
    try:
        cluster = Cluster()
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(scope='session')
def pg_template(pg_cluster):
    """A database migrated to the head once, copied for each test (CREATE DATABASE ... TEMPLATE)."""
    from retail_platform.database import create_engine, upgrade
    name = pg_cluster.new_database()
    engine = create_engine(pg_cluster.url(name))
    upgrade(engine)
    engine.dispose()
    return name


@pytest.fixture
def pg_database(pg_cluster, pg_template):
    name = pg_cluster.new_database(template=pg_template)
    yield pg_cluster.url(name)
    pg_cluster.drop_database(name)


@pytest.fixture(params=['sqlite', 'postgresql'])
def engine_target(request, tmp_path):
    """A fresh platform database: an SQLite file path or a PostgreSQL URL."""
    if request.param == 'sqlite':
        return str(tmp_path / 'platform.sqlite3')
    return request.getfixturevalue('pg_database')


@pytest.fixture(params=['sqlite', 'postgresql'])
def empty_target(request, tmp_path):
    """An empty database (no schema): an SQLite file path or a fresh PostgreSQL database's URL,
    for the migration tests (platform_support.migrate takes it to a revision)."""
    if request.param == 'sqlite':
        yield str(tmp_path / 'platform.sqlite3')
        return
    cluster = request.getfixturevalue('pg_cluster')
    name = cluster.new_database()
    yield cluster.url(name)
    cluster.drop_database(name)


@pytest.fixture
def one_store_fleet(engine_target):
    """Store s-1 with robots r-1 and r-2 and its manager 'ann' on an in-process platform:
    (TestClient, {robot: token}, manager token)."""
    from fastapi.testclient import TestClient

    from platform_support import ADMIN
    from retail_platform.app import create_app
    from retail_platform.database import upgrade
    from retail_platform.storage import Storage
    storage = Storage(engine_target)
    upgrade(storage.engine)
    storage.add_store('s-1', 'Store one')
    robots = {r: storage.issue_robot_token(r, 's-1') for r in ('r-1', 'r-2')}
    manager = storage.issue_staff_token('store_manager', 'ann', ['s-1'])
    storage.close()
    client = TestClient(create_app(engine_target, ADMIN), raise_server_exceptions=False)
    try:
        yield client, robots, manager
    finally:
        client.app.state.storage.close()
