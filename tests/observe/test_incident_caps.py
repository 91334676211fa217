"""The robot keeps a bounded number (and size) of incident recordings waiting for upload; a copy is
deleted only once the platform confirms it by id, so at the cap new incidents are not recorded and
that is reported (the recorder's /diagnostics, the heartbeat, a task for the store's staff)."""
from __future__ import annotations

import pytest

from retail_observe.incident_upload import keep_room
from retail_platform.fleet import alerts
from retail_sync.fleet import HeartbeatCore


@pytest.mark.parametrize('files, sizes, max_files, max_bytes, stopped', [
    (0, 0, 3, 1000, False),
    (2, 100, 3, 1000, False),
    (3, 100, 3, 1000, True),                 # the count
    (2, 600, 3, 1000, True),                 # the size
    (5, 0, 3, 10 ** 9, True),
])
def test_keep_room(tmp_path, files, sizes, max_files, max_bytes, stopped):
    for i in range(files):
        (tmp_path / f'2026-{i}-bumper.mcap').write_bytes(b'x' * sizes)
    (tmp_path / 'x.mcap.part').write_bytes(b'x' * 10 ** 6)      # being written: not counted
    reason = keep_room(tmp_path, max_files, max_bytes)
    assert bool(reason) == stopped
    assert not stopped or 'not recorded' in reason
    assert len(list(tmp_path.glob('*.mcap'))) == files          # nothing deleted to make room


def test_a_stopped_recorder_reaches_the_heartbeat_and_opens_a_task():
    core = HeartbeatCore(period_s=5)
    core.on_status('observe/incidents', 0, 'recording incidents', {'stopped': ''}, 0.0)
    core.sent(core.heartbeat(0.0), 0.0)
    assert 'incidents_full' not in alerts(core.heartbeat(0.0))
    core.on_status('observe/incidents', 1, 'full', {'stopped': '20 incident recordings wait'}, 1.0)
    beat = core.due(2.0)                                          # a change: sent at once
    assert beat is not None and beat.incidents_stopped == '20 incident recordings wait'
    assert alerts(beat)['incidents_full'] == '20 incident recordings wait'
