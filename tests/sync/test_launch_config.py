"""launch/sync.launch.yaml and config/sync.yaml start a valid agent; bad params stop it with one line."""
from __future__ import annotations

import subprocess
from pathlib import Path

from retail_ros.launch_file import load_launch
from retail_ros.params import overrides_for, resolve
from retail_sync.agent_node import PARAMS
from rostest_support import console_script

REPO = Path(__file__).resolve().parents[2]


def test_launch_puts_outbox_and_downloaded_data_under_the_data_dir():
    nodes = {n.fully_qualified_name: n for n in load_launch(
        REPO / 'launch' / 'sync.launch.yaml', {'data_dir': '/srv/robot'}, lambda _p: str(REPO)).nodes}
    params = dict(p[1] for p in nodes['/sync/agent'].params if p[0] == 'param')
    assert params['outbox'] == '/srv/robot/sync/outbox.sqlite3'
    assert params['data_dir'] == '/srv/robot/platform'
    assert params['token_file'] == '/srv/robot/sync/token'


def test_the_params_file_validates():
    path = REPO / 'config' / 'sync.yaml'
    values = resolve('/sync/agent', PARAMS, overrides_for('/sync/agent', ['--params-file', str(path)]))
    assert values['batch_size'] == 500 and values['warn_fraction'] == 0.8


def test_a_bad_params_file_stops_the_agent_with_one_line(ros_env, tmp_path):
    bad = tmp_path / 'sync.yaml'
    bad.write_text('sync/agent:\n  ros__parameters:\n    batch_sise: 100\n')
    result = subprocess.run([console_script('retail_sync_agent'), '--ros-args', '-r', '__ns:=/sync',
                             '--params-file', str(bad)], env=ros_env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'batch_sise' in lines[0], result.stderr


def test_the_sync_agent_respawns_and_never_stops_the_robot():
    nodes = {n.fully_qualified_name: n for n in load_launch(
        REPO / 'launch' / 'sync.launch.yaml', {}, lambda _p: str(REPO)).nodes}
    assert nodes['/sync/agent'].respawn and nodes['/sync/agent'].respawn_delay > 0
