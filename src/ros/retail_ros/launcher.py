"""Runs the node processes of a resolved launch file and looks after them.

Each node is its own process (as under `ros2 launch`), its output prefixed with its name and
copied whole into a launch log (`$ROS_LOG_DIR/launch-<time>-<pid>.log`).

- Before starting anything the launcher looks at the ROS graph of its domain and refuses, with
  one line, to start nodes whose names are already there (a second launch of the same robot
  would put two base drivers on one `/cmd_vel`).
- Children die with the launcher, even when it is killed with `kill -9`: each child asks the
  kernel for SIGTERM when its parent dies (`prctl(PR_SET_PDEATHSIG)`, Linux).
- A node that dies is handled as its launch file says: `respawn: "true"` restarts it after
  `respawn_delay` (doubling, up to a minute, while it keeps dying within 10 s; never after a
  config error, exit code 2, which a restart cannot fix); any
  other node (`on_exit: shutdown` marks those on purpose) stops every node. The failure is told in
  ONE line: the node, its exit code and its last error line. What the other nodes print while
  being stopped (tracebacks of interrupted start-ups) goes to the log only.

Exit codes (`retailbot launch`): 0 stopped on request (the demo), 1 a node failed and the robot
was stopped, 2 the launch file or the graph refused the launch, 128+n stopped by signal n
(130 Ctrl-C, 143 SIGTERM, 129 SIGHUP). A node killed by signal n is reported as exit code 128+n.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

from retail_ros.launch_file import LaunchDescription, NodeLaunch
from retail_ros.packages import find_executable

LOCALHOST_ONLY = {'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
EXIT_STOPPED, EXIT_NODE_FAILED, EXIT_REFUSED = 0, 1, 2
QUICK_FAILURE_S = 10.0  # a respawned node dying sooner than this waits twice as long next time
MAX_RESPAWN_DELAY_S = 60.0
CONFIG_ERROR_CODE = 2  # what every node's main returns on a config error (node_support)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


def exit_code_of(returncode: int) -> int:
    """A Popen return code as a shell shows it: killed by signal n -> 128+n."""
    return 128 - returncode if returncode < 0 else returncode


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f'signal {number}'


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """preexec_fn for a child: SIGTERM when the launcher dies (even by SIGKILL).

    libc's prctl is looked up here, in the parent: between fork and exec the child only calls it
    (no dlopen, whose locks another thread of the launcher may hold at fork time).
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent_pid:  # the launcher died before prctl took effect
            os._exit(128 + signal.SIGTERM)

    return preexec


class GraphConflict(Exception):
    """Nodes of the launch already run on the ROS graph of this domain."""


def nodes_on_graph(env: dict[str, str], wanted: set[str], wait_s: float = 5.0) -> set[str]:
    """Names among `wanted` (fully qualified) that some process already runs on the domain of
    `env` (ROS_DOMAIN_ID), after up to `wait_s` of discovery."""
    import rclpy
    from rclpy.context import Context
    from rclpy.signals import SignalHandlerOptions

    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', env.get('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST'))
    context = Context()
    rclpy.init(
        args=[],
        context=context,
        domain_id=int(env.get('ROS_DOMAIN_ID') or 0),
        signal_handler_options=SignalHandlerOptions.NO,
    )  # Ctrl-C stays the launcher's
    try:
        probe = rclpy.create_node(
            f'launch_probe_{os.getpid()}', context=context, enable_rosout=False, start_parameter_services=False
        )
        try:
            start = time.monotonic()
            deadline = start + wait_s
            found: set[str] = set()
            while time.monotonic() < deadline:
                names = {(ns.rstrip('/') + '/' + name) for name, ns in probe.get_node_names_and_namespaces()}
                seen = wanted & names
                if seen - found:
                    # Something is there: look for the whole window and until no new name has shown
                    # up for 2 s (DDS discovers the other processes' nodes one by one), within a bound.
                    deadline = max(deadline, min(time.monotonic() + 2.0, start + wait_s + 10.0))
                found |= seen
                time.sleep(0.1)
            return found
        finally:
            probe.destroy_node()
    finally:
        context.try_shutdown()


class _TracebackFilter:
    """Recognises the lines of a Python traceback (and rclpy's shutdown noise) in a stream of
    lines (one per child)."""

    def __init__(self):
        self.inside = False

    def swallow(self, line: str) -> bool:
        if line.startswith('Traceback (most recent call last):'):
            self.inside = True
            return True
        if self.inside:
            if not line or line[0].isspace() or line.startswith(('During handling', 'The above exception')):
                return True
            self.inside = False  # the exception line ends the traceback
            return True
        return line.strip() in ('KeyboardInterrupt', '^C') or line.startswith(_STOP_NOISE)


# What rclpy prints about itself when a node is stopped mid-way (not the node's own words).
_STOP_NOISE = (
    'Failed to publish log message to rosout',
    'The following exception was never retrieved',
    'Exception ignored in',
    'Task was destroyed but it is pending',
)


@dataclass
class _Child:
    node: NodeLaunch
    command: list[str]
    process: subprocess.Popen | None = None
    starts: int = 0
    started_at: float = 0.0
    restart_at: float | None = None
    reader: threading.Thread | None = None
    exits: list[int] = field(default_factory=list)
    quick_failures: int = 0  # consecutive runs shorter than QUICK_FAILURE_S (respawn back-off)
    last_error: str = ''
    filter: _TracebackFilter = field(default_factory=_TracebackFilter)


_ERROR_LINE = re.compile(r'error|exception|refus|cannot|failed|no such|not found|denied', re.IGNORECASE)


class Launcher:
    """Start, watch and stop the nodes of one launch description."""

    def __init__(
        self,
        description: LaunchDescription,
        *,
        out: TextIO = sys.stdout,
        grace_s: float = 5.0,
        env: dict[str, str] | None = None,
        log_path: str | os.PathLike | None = None,
        graph_check_s: float = 5.0,
    ):
        self.out = out
        self.grace_s = grace_s
        self.graph_check_s = graph_check_s
        self.env = dict(os.environ if env is None else env)
        for key, value in LOCALHOST_ONLY.items():
            self.env.setdefault(key, value)
        self.env.setdefault('PYTHONUNBUFFERED', '1')
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stopping = False
        self.refusal = ''  # why run() refused to start (exit 2), for a caller to show
        self.stop_signal: int | None = None
        self.hidden_tracebacks = 0
        self.children = [
            _Child(node, find_executable(node.pkg, node.executable) + node.args + node.ros_arguments())
            for node in description.nodes
        ]
        self.log_path = Path(log_path) if log_path else self._default_log_path()
        self._log: TextIO | None = None

    def _default_log_path(self) -> Path:
        folder = Path(self.env.get('ROS_LOG_DIR') or Path(self.env.get('ROS_HOME') or Path.home() / '.ros') / 'log')
        return folder / f'launch-{time.strftime("%Y%m%d-%H%M%S")}-{os.getpid()}.log'

    # -- output ---------------------------------------------------------------------------
    def _write(self, text: str, screen: bool = True) -> None:
        with self._lock:
            if self._log is not None:
                self._log.write(text + '\n')
                self._log.flush()
            if screen:
                self.out.write(text + '\n')
                self.out.flush()

    def say(self, text: str) -> None:
        self._write(f'[launch] {text}')

    def _pump(self, child: _Child) -> None:
        prefix = f'[{child.node.fully_qualified_name.lstrip("/")}] '
        assert child.process is not None and child.process.stdout is not None
        for line in child.process.stdout:
            line = line.rstrip('\n')
            in_traceback = child.filter.swallow(line)
            if line.strip() and (_ERROR_LINE.search(line) or (in_traceback and not child.filter.inside)):
                child.last_error = line.strip()
            hide = self._stopping and in_traceback and self._log is not None  # kept in the log
            if hide:
                self.hidden_tracebacks += 1
            self._write(prefix + line, screen=not hide)

    # -- lifecycle of children ---------------------------------------------------------------
    def _start(self, child: _Child) -> None:
        child.starts += 1
        child.restart_at = None
        child.last_error = ''
        child.filter = _TracebackFilter()
        child.process = subprocess.Popen(
            child.command,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors='replace',
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )
        child.started_at = time.monotonic()
        child.reader = threading.Thread(target=self._pump, args=(child,), daemon=True)
        child.reader.start()
        again = f' (restart {child.starts - 1})' if child.starts > 1 else ''
        self.say(f'started {child.node.fully_qualified_name} [pid {child.process.pid}]{again}')

    def request_stop(self, signum: int | None = None, *_: object) -> None:
        """Stop every node; from a signal handler `signum` sets the exit code 128+signum."""
        if isinstance(signum, int) and self.stop_signal is None:
            self.stop_signal = signum
        self._stop.set()

    def running(self) -> list[_Child]:
        return [c for c in self.children if c.process is not None and c.process.poll() is None]

    def check_graph(self) -> None:
        """GraphConflict if a node of this launch already runs on the domain."""
        wanted = {c.node.fully_qualified_name for c in self.children}
        if not wanted or self.graph_check_s <= 0:
            return
        taken = nodes_on_graph(self.env, wanted, self.graph_check_s)
        if taken:
            domain = self.env.get('ROS_DOMAIN_ID') or '0'
            raise GraphConflict(
                f'refusing to start: {", ".join(sorted(taken))} already running on '
                f'ROS_DOMAIN_ID {domain} (another launch of this robot? stop it first)'
            )

    def run(self, ready: Callable[['Launcher'], None] | None = None) -> int:
        """Check the graph, start every node and supervise until stopped; returns the exit code.

        `ready(launcher)` runs in a thread once all nodes are started.
        """
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, 'a', encoding='utf-8')
        except OSError as exc:
            self.say(f'no launch log ({self.log_path}: {exc.strerror}); output on the screen only')
        try:
            try:
                self.check_graph()
            except GraphConflict as exc:
                self.refusal = str(exc)
                self.say(self.refusal)
                return EXIT_REFUSED
            for child in self.children:
                if self._stop.is_set():
                    break
                self._start(child)
            if ready is not None:  # e.g. the demo's scenario; it calls request_stop() when done
                threading.Thread(target=ready, args=(self,), daemon=True).start()
            code = EXIT_STOPPED
            while not self._stop.wait(0.1):
                if self._check_children() is not None:
                    code = EXIT_NODE_FAILED
                    break
            self.shutdown()
            if code == EXIT_STOPPED and self.stop_signal is not None:
                code = 128 + self.stop_signal
            return code
        finally:
            with self._lock:
                if self._log is not None:
                    self._log.close()
                self._log = None

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
            code = exit_code_of(rc)
            how = f'was killed by {_signal_name(-rc)} (exit code {code})' if rc < 0 else f'exited with code {code}'
            name = child.node.fully_qualified_name
            if child.node.respawn and rc != CONFIG_ERROR_CODE:
                child.quick_failures = child.quick_failures + 1 if now - child.started_at < QUICK_FAILURE_S else 0
                delay = min(MAX_RESPAWN_DELAY_S, child.node.respawn_delay * 2 ** max(0, child.quick_failures - 1))
                why = f': {child.last_error}' if child.last_error else ''
                self.say(f'{name} {how}{why}; restarting in {delay:.1f} s (respawn)')
                child.restart_at = now + delay
                continue
            at_start = ' at start' if now - child.started_at < 30.0 else ''
            why = f': {child.last_error}' if child.last_error else ''
            extra = ' (config error: not respawned)' if child.node.respawn else ''
            self._stopping = True  # from here on, the other nodes' stop noise goes to the log only
            self.say(f'{name} {how}{at_start}{why}{extra}; stopping all nodes')
            return child
        return None

    def shutdown(self) -> None:
        """SIGTERM every node, then SIGINT, then SIGKILL whatever is left.

        SIGTERM first: a node still importing its libraries ends quietly on it (SIGINT would print
        a KeyboardInterrupt traceback), and rclpy turns it into a clean shutdown once running.
        """
        self._stopping = True
        for child in self.children:
            child.restart_at = None
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
            alive = self.running()
            if not alive:
                break
            if sig != signal.SIGTERM:
                self.say(f'{", ".join(c.node.fully_qualified_name for c in alive)} still running; sending {sig.name}')
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
        if self.hidden_tracebacks:
            self.say(
                f'{self.hidden_tracebacks} line(s) of tracebacks and rclpy noise printed by nodes '
                f'while stopping are in {self.log_path}'
            )
        self.say('all nodes stopped')


def run_launch(
    description: LaunchDescription,
    *,
    grace_s: float = 5.0,
    ready: Callable[[Launcher], None] | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Run a launch description in the foreground with Ctrl-C / SIGTERM / SIGHUP handling."""
    launcher = Launcher(description, grace_s=grace_s, out=out)
    previous = {sig: signal.signal(sig, launcher.request_stop) for sig in STOP_SIGNALS}
    try:
        return launcher.run(ready)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
