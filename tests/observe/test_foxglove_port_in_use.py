"""A Foxglove port already taken: one line naming the port, exit 1 (respawned with back-off by the
launch), never a traceback (found by the newcomer's walk-through of issue 26: two tracebacks, the
second an AttributeError from destroy_node, at every respawn)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from rostest_support import free_port


def test_a_taken_port_is_one_line_and_exit_1_never_a_traceback(tmp_path):
    exe = str(Path(sys.executable).parent / 'retail_observe_foxglove')    # the venv's console script
    port = free_port()
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(('127.0.0.1', port))
    holder.listen(1)
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', ROS_LOG_DIR=str(tmp_path))
    try:
        done = subprocess.run([exe, '--ros-args', '-p', f'port:={port}'],
                              capture_output=True, text=True, timeout=120, env=env)
    finally:
        holder.close()
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert 'Traceback' not in out, out
    lines = [line for line in out.splitlines() if f'127.0.0.1:{port}' in line]
    assert len(lines) == 1 and 'cannot serve Foxglove' in lines[0] and 'foxglove_port:=' in lines[0], out
