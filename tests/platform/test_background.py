"""The platform's background tasks (retail_platform.background): every task create_app registers
(pruner, funnel refresh, fleet sweep) actually runs under the app served by uvicorn on a real
port, on SQLite and PostgreSQL, and all stop when the server stops; a failing task is one log
line per kind of failure and keeps its schedule."""
from __future__ import annotations

import asyncio
import logging
import threading
import time

import uvicorn

from loop_support import chain
from pg_support import free_port
from platform_support import ADMIN
from retail_platform.app import create_app
from retail_platform.background import Background
from retail_platform.retention import Retention
from rostest_support import wait_for

REGISTERED = {'pruner', 'funnel refresh', 'fleet sweep', 'forget ledger check'}


def test_every_registered_task_runs_under_the_served_app_and_stops_with_it(engine_target, tmp_path):
    import httpx
    chain(engine_target)
    app = create_app(engine_target, ADMIN, funnel_refresh_s=0.3,
                     retention=Retention(every_s=0.3), forget_ledger=str(tmp_path / 'ledger.jsonl'),
                     ledger_check_s=0.3)
    background = app.state.background
    assert {task.name for task in background.tasks} == REGISTERED
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host='127.0.0.1', port=port, log_level='warning'))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 60, 'the server did not start')
        assert httpx.get(f'http://127.0.0.1:{port}/v1/health', timeout=10).status_code == 200
        wait_for(lambda: all(background.runs[name] >= 2 for name in REGISTERED), 60,
                 f'a background task never ran twice: {background.runs}')
        assert not any(background.failures.values()), background.failures
    finally:
        server.should_exit = True
        thread.join(30)
    assert not thread.is_alive()
    ran = dict(background.runs)
    time.sleep(1.0)
    assert background.runs == ran, 'a task ran after the server stopped'
    app.state.storage.close()


def test_a_failing_task_logs_one_line_per_kind_and_keeps_its_schedule(caplog):
    log = logging.getLogger('test-background')
    background = Background(log)
    calls = {'n': 0}

    def flaky() -> None:
        calls['n'] += 1
        if calls['n'] <= 4:
            raise RuntimeError('database away\nsecond line')

    background.add('flaky', 0.05, flaky)
    background.add('off', 0, flaky)                  # a period of 0: not registered

    async def serve_a_while() -> None:
        await background.start()
        deadline = time.monotonic() + 30
        while background.runs['flaky'] < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await background.stop()

    with caplog.at_level(logging.INFO, logger='test-background'):
        asyncio.run(serve_a_while())
    assert [task.name for task in background.tasks] == ['flaky']
    assert background.failures['flaky'] == 4 and background.runs['flaky'] >= 3
    failed = [r.getMessage() for r in caplog.records if 'failed' in r.getMessage()]
    assert failed == ['flaky failed (tried again every 0 s): database away'], failed
    assert any('flaky works again' in r.getMessage() for r in caplog.records)
