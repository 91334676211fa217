"""launch/sync.launch.yaml as shipped, under `retailbot launch`: a damaged outbox is set aside
and reported while the agent keeps taking events, and an agent killed with -9 is respawned
without the launcher stopping anything or an event being lost."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node

from retail_common.event_sender import EventSender
from rostest_support import console_script, wait_for
from sync_support import ROBOT, number, turn_event

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_damaged_outbox_and_killed_agent_never_stop_the_launch(ros_context, ros_env, spin,
                                                              processes, platform, tmp_path):
    data = tmp_path / 'data'
    (data / 'sync').mkdir(parents=True)
    (data / 'sync' / 'outbox.sqlite3').write_bytes(b'\xde\xad' * 5000)
    token = data / 'sync' / 'token'
    token.write_text(platform.token + '\n')
    launch = processes([console_script('retailbot'), 'launch', str(REPO / 'launch' / 'sync.launch.yaml'),
                        f'data_dir:={data}', f'platform_url:={platform.url}', f'robot_id:={ROBOT}'],
                       env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(launch.stdout.readline, '')), daemon=True).start()

    peer = Node('store_day', context=ros_context)
    sender = EventSender(peer, 'dialogue/manager', retry_s=0.2)
    errors: list[str] = []
    peer.create_subscription(DiagnosticArray, '/diagnostics', lambda a: errors.extend(
        s.message for s in a.status if s.name == 'sync: agent' and s.level == b'\x02'), 10)
    spin(peer)
    wait_for(lambda: any('damaged' in e for e in errors), 60, 'the agent reporting the damaged outbox')
    assert any('set aside' in e for e in errors)
    assert [p.name for p in (data / 'sync').iterdir() if '.damaged-' in p.name]
    for i in range(5):
        sender.send(turn_event(i))
    wait_for(lambda: len(platform.export()) == 5, 30, 'events uploaded from the fresh outbox')

    def agent_pids():
        return [int(p) for p in re.findall(r'\[pid (\d+)\]', ''.join(lines))]
    first = agent_pids()[-1]
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: agent_pids()[-1] != first, 30, 'the agent respawned')
    for i in range(5, 10):
        sender.send(turn_event(i))
    wait_for(lambda: len(platform.export()) == 10, 30, 'events after the respawn uploaded')
    assert not sender.pending and launch.poll() is None, ''.join(lines[-20:])
    assert sorted(number(e['data']) for e in platform.export()) == list(range(10))
    launch.send_signal(signal.SIGINT)
    assert launch.wait(timeout=30) == 130          # stopped by Ctrl-C (128 + SIGINT), ''.join(lines[-20:])
