"""Helpers for tests that run real ROS nodes and real processes: wait on conditions, not sleeps."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.prefix) / 'bin'


# Test servers listen on ports below the kernel's ephemeral range (32768-60999 by default, where
# the tests' own outgoing connections and port-0 binds land) and below DDS (7400 + 250 x domain).
# Each pytest-xdist worker has its own slice and walks it round-robin, so two workers never pick
# the same port and a port is not handed out again until its slice has gone round.
_PORT_FIRST, _PORT_LAST = 4000, 7399
_next_port: list[int] = []
# Ports Chromium refuses to open (net/base/port_util.cc, "restricted ports": ERR_UNSAFE_PORT); a
# page test whose server got 6666 waited in vain for its sign-in page. Never handed out.
_BROWSER_UNSAFE = {4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697}


def free_port() -> int:
    """A loopback TCP port, free now, for a server a test starts."""
    worker = os.environ.get('PYTEST_XDIST_WORKER', 'gw0')
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    count = max(1, int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1') or 1))
    size = (_PORT_LAST - _PORT_FIRST + 1) // max(count, index + 1)
    first = _PORT_FIRST + index * size
    if not _next_port:
        _next_port.append(first + os.getpid() % size)
    for _ in range(size):
        port = first + (_next_port[0] - first) % size
        _next_port[0] = port + 1
        if port in _BROWSER_UNSAFE:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(('127.0.0.1', port))
            except OSError:
                continue
        return port
    raise RuntimeError(f'no free port in {first}-{first + size - 1}')


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, what: str = 'condition',
             interval: float = 0.02):
    """Poll `predicate` until it returns something truthy; fail the test naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f'timed out after {timeout:.1f} s waiting for {what}')
        time.sleep(interval)


def endpoints(node, topic: str, kind: str = 'sub') -> set[str]:
    """Fully qualified names of the nodes with a subscription (`sub`) or publisher (`pub`) on `topic`,
    as the ROS graph shows them to `node` (count_subscribers would count the probe's own too)."""
    infos = (node.get_subscriptions_info_by_topic(topic) if kind == 'sub'
             else node.get_publishers_info_by_topic(topic))
    return {f"{i.node_namespace.rstrip('/')}/{i.node_name}" for i in infos}


def console_script(name: str) -> str:
    """Absolute path of a console script installed in this environment (e.g. 'retailbot')."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f'console script {name} is not installed in {BIN} (run make install)')
    return str(path)


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 10.0) -> int:
    """Send `sig`, wait, and kill the whole process group if it does not stop in time."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
            proc.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):   # its children, if it left any behind
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode


def localization_seed(node) -> int:
    """The running localisation's seed, asked through its parameter service (bounded)."""
    from rcl_interfaces.srv import GetParameters
    from rclpy.executors import SingleThreadedExecutor
    client = node.create_client(GetParameters, '/navigation/localization/get_parameters')
    assert client.wait_for_service(timeout_sec=30)
    future = client.call_async(GetParameters.Request(names=['seed']))
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    executor.spin_until_future_complete(future, timeout_sec=30)
    executor.remove_node(node)
    executor.shutdown()
    node.destroy_client(client)
    assert future.done(), 'the localisation did not answer for its parameters in 30 s'
    return future.result().values[0].integer_value


def localization_launch(path: Path, data_dir: Path, **params) -> Path:
    """A launch file at `path` starting the localisation alone (the demo store, config's params,
    `params` on top, e.g. a replay's re-run node); returns `path`."""
    extra = ''.join(f'    - {{name: {name}, value: {json.dumps(value)}}}\n' for name, value in params.items())
    path.write_text(f"""launch:
- node:
    pkg: retail_navigation
    exec: retail_navigation_localization
    name: localization
    namespace: navigation
    param:
    - {{from: "{REPO / 'config' / 'navigation.yaml'}"}}
    - {{name: store_dir, value: "{REPO / 'config' / 'stores' / 'demo'}"}}
    - {{name: data_dir, value: "{data_dir}"}}
{extra}""")
    return path
