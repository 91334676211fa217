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
