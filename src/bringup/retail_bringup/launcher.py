"""Runs the node processes of a resolved launch file and looks after them.

Each node is its own process (as under `ros2 launch`), its output prefixed with its name.
Ctrl-C / SIGTERM stop every node (SIGINT, then SIGTERM, then SIGKILL after grace periods) and
the launcher exits 0. A node that dies is reported with its exit code and restarted when it
asked for `respawn`; otherwise everything is stopped and the launcher exits non-zero, because a
robot missing one of its parts must not look as if it were running.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, TextIO

from retail_bringup.launch_file import LaunchDescription, NodeLaunch
from retail_common.packages import find_executable

LOCALHOST_ONLY = {'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}


@dataclass
class _Child:
    node: NodeLaunch
    command: list[str]
    process: subprocess.Popen | None = None
    starts: int = 0
    restart_at: float | None = None
    reader: threading.Thread | None = None
    exits: list[int] = field(default_factory=list)


class Launcher:
    """Start, watch and stop the nodes of one launch description."""

    def __init__(self, description: LaunchDescription, *, out: TextIO = sys.stdout,
                 grace_s: float = 5.0, env: dict[str, str] | None = None):
        self.out = out
        self.grace_s = grace_s
        self.env = dict(os.environ if env is None else env)
        for key, value in LOCALHOST_ONLY.items():
            self.env.setdefault(key, value)
        self.env.setdefault('PYTHONUNBUFFERED', '1')
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.children = [_Child(node, find_executable(node.pkg, node.executable) + node.args
                                + node.ros_arguments()) for node in description.nodes]

    # -- output ---------------------------------------------------------------------------
    def say(self, text: str) -> None:
        with self._lock:
            self.out.write(f'[launch] {text}\n')
            self.out.flush()

    def _pump(self, child: _Child) -> None:
        prefix = f'[{child.node.fully_qualified_name.lstrip("/")}] '
        assert child.process is not None and child.process.stdout is not None
        for line in child.process.stdout:
            with self._lock:
                self.out.write(prefix + line.rstrip('\n') + '\n')
                self.out.flush()

    # -- lifecycle of children ---------------------------------------------------------------
    def _start(self, child: _Child) -> None:
        child.starts += 1
        child.restart_at = None
        child.process = subprocess.Popen(
            child.command, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors='replace', start_new_session=True)
        child.reader = threading.Thread(target=self._pump, args=(child,), daemon=True)
        child.reader.start()
        again = f' (restart {child.starts - 1})' if child.starts > 1 else ''
        self.say(f'started {child.node.fully_qualified_name} [pid {child.process.pid}]{again}')

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def running(self) -> list[_Child]:
        return [c for c in self.children if c.process is not None and c.process.poll() is None]

    def run(self, ready: Callable[['Launcher'], None] | None = None) -> int:
        """Start every node and supervise until stopped; returns the exit code.

        `ready(launcher)` runs in a thread once all nodes are started.
        """
        for child in self.children:
            self._start(child)
        if ready is not None:  # e.g. the demo's scenario; it calls request_stop() when done
            threading.Thread(target=ready, args=(self,), daemon=True).start()
        code = 0
        while not self._stop.wait(0.1):
            failed = self._check_children()
            if failed is not None:
                code = 1
                break
        self.shutdown()
        return code

    def _check_children(self) -> _Child | None:
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._start(child)
                continue
            if child.process is None or child.process.poll() is None:
                continue
            rc = child.process.returncode
            child.exits.append(rc)
            if child.reader is not None:
                child.reader.join(timeout=1.0)
            how = f'was killed by signal {-rc}' if rc < 0 else f'exited with code {rc}'
            if child.node.respawn:
                self.say(f'{child.node.fully_qualified_name} {how}; restarting in '
                         f'{child.node.respawn_delay:.1f} s (respawn)')
                child.restart_at = now + child.node.respawn_delay
                continue
            self.say(f'{child.node.fully_qualified_name} {how}; stopping all nodes')
            return child
        return None

    def shutdown(self) -> None:
        """SIGINT every node, then SIGTERM, then SIGKILL whatever is left."""
        for sig, name in ((signal.SIGINT, 'SIGINT'), (signal.SIGTERM, 'SIGTERM'), (signal.SIGKILL, 'SIGKILL')):
            alive = self.running()
            if not alive:
                break
            if sig != signal.SIGINT:
                self.say(f'{", ".join(c.node.fully_qualified_name for c in alive)} still running; sending {name}')
            for child in alive:
                try:
                    os.killpg(child.process.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + (self.grace_s if sig != signal.SIGKILL else 5.0)
            while self.running() and time.monotonic() < deadline:
                time.sleep(0.05)
        for child in self.children:
            if child.reader is not None:
                child.reader.join(timeout=1.0)
        self.say('all nodes stopped')


def run_launch(description: LaunchDescription, *, grace_s: float = 5.0,
               ready: Callable[[Launcher], None] | None = None, out: TextIO = sys.stdout) -> int:
    """Run a launch description in the foreground with Ctrl-C / SIGTERM handling."""
    launcher = Launcher(description, grace_s=grace_s, out=out)
    previous = {sig: signal.signal(sig, launcher.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return launcher.run(ready)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
