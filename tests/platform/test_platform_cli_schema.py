"""`retailbot platform` never changes an existing database's schema behind a technician's back:
only `migrate` (and `serve` without --no-migrate) upgrade. Every other subcommand on a database
behind this software's schema refuses in one line naming `retailbot platform migrate --database`
(exit 2), on a database newer than the software says so, and leaves its revision as it was. A
fresh, empty database may be set up by the first command that writes (store add, token issue,
region add, import-purchases, member-import); a read-only command never creates a schema."""
from __future__ import annotations

import sqlalchemy as sa

from cli_support import one_line
from platform_support import platform_cli


def _files(tmp_path) -> dict[str, str]:
    receipts = tmp_path / 'receipts.csv'
    receipts.write_text('receipt_id,store_id,time,member_id,code,sku,qty,price_cny\n', encoding='utf-8')
    history = tmp_path / 'history.csv'
    history.write_text('customer_id,sku,ts,qty,price_cny\nm-1,P-1,2026-01-01T10:00:00,1,9.5\n',
                       encoding='utf-8')
    return {'receipts': str(receipts), 'history': str(history)}


def _subcommands(files: dict[str, str]) -> list[list[str]]:
    return [
        ['store', 'list'], ['store', 'list', '--json'], ['token', 'list'],
        ['export', '--robot-id', 'robot-1'], ['funnel'], ['refresh-funnel'],
        ['token', 'revoke', '--robot-id', 'robot-1'],
        ['robot', 'move', '--robot-id', 'robot-1', '--store', 's-1'],
        ['forget-member', '--member-id', 'm-1', '--status'],
        ['store', 'add', '--id', 's-9', '--name', 'Nine'],
        ['region', 'add', '--id', 'r-9', '--name', 'Nine'],
        ['token', 'issue', '--robot-id', 'r-9', '--store', 's-1'],
        ['import-purchases', files['receipts']],
        ['member-import', '--history', files['history']],
    ]


def _set_revision(target: str, revision: str) -> None:
    from retail_platform.database import create_engine
    engine = create_engine(target)
    with engine.begin() as connection:
        connection.execute(sa.text('UPDATE alembic_version SET version_num = :v'), {'v': revision})
    engine.dispose()


def _revision(target: str) -> str | None:
    from retail_platform.database import create_engine, revision_state
    engine = create_engine(target)
    try:
        return revision_state(engine).current
    finally:
        engine.dispose()


def _before_head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from retail_platform.database import MIGRATIONS, head_revision
    config = Config()
    config.set_main_option('script_location', str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_revision(head_revision()).down_revision


def test_no_subcommand_but_migrate_upgrades_a_database_behind_or_ahead(engine_target, tmp_path):
    assert platform_cli('migrate', '--database', engine_target).returncode == 0
    before = _before_head()
    files = _files(tmp_path)
    _set_revision(engine_target, before)
    for args in _subcommands(files):
        line = one_line(platform_cli(*args, '--database', engine_target), 2,
                        'run `retailbot platform migrate --database ...`')
        assert f'retailbot platform {args[0]}' in line and before in line, line
        assert _revision(engine_target) == before, (args, 'the schema was changed')
    _set_revision(engine_target, 'ffff')
    for args in _subcommands(files):
        one_line(platform_cli(*args, '--database', engine_target), 2,
                 'is newer than this platform')
        assert _revision(engine_target) == 'ffff', args
    # at the head again (what `migrate` leaves): used as it is
    from retail_platform.database import head_revision
    _set_revision(engine_target, head_revision())
    listed = platform_cli('store', 'list', '--database', engine_target)
    assert listed.returncode == 0 and listed.stderr == '', listed.stderr


def test_a_fresh_database_is_set_up_by_the_first_write_never_by_a_read(pg_cluster, tmp_path):
    from retail_platform.database import head_revision
    fresh_pg = pg_cluster.url(pg_cluster.new_database())
    one_line(platform_cli('store', 'list', '--database', fresh_pg), 2,
             'run `retailbot platform migrate --database ...`')
    assert _revision(fresh_pg) is None
    added = platform_cli('store', 'add', '--id', 's-1', '--name', 'One', '--database', fresh_pg)
    assert added.returncode == 0, added.stderr
    assert _revision(fresh_pg) == head_revision()
    file = tmp_path / 'new.sqlite3'
    one_line(platform_cli('store', 'list', '--database', str(file)), 2, 'no database at')
    assert not file.exists()
    issued = platform_cli('token', 'issue', '--role', 'analyst', '--database', str(file))
    assert issued.returncode == 0, issued.stderr
    assert _revision(str(file)) == head_revision()
    empty = tmp_path / 'empty.sqlite3'
    empty.touch()
    receipts = _files(tmp_path)['receipts']
    imported = platform_cli('import-purchases', receipts, '--database', str(empty))
    assert imported.returncode == 0, imported.stderr
    assert _revision(str(empty)) == head_revision()
