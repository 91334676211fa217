"""Fixtures shared by every test: an isolated ROS 2 graph per test, spinning, processes."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rostest_support import stop_process  # noqa: E402

# Whatever a test does, DDS stays on loopback, with the robot's transports (config/fastdds.xml).
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
from retail_ros.node_support import use_robot_dds_profile  # noqa: E402
use_robot_dds_profile()


_RECENT_DOMAINS: list = []       # reservations of the last tests' domains, held a little longer


class _NextDomain:
    """Hands out domains round-robin from a random start (domain_coordinator's default starts at 1
    every time, so consecutive tests would share the few lowest domains and a test could meet the
    nodes of one that ran a moment ago)."""

    def __init__(self) -> None:
        import random
        self.value = random.randrange(100)

    def __call__(self) -> int:
        for _ in range(100):            # skip a domain another worker released a moment ago
            self.value += 1
            domain = self.value % 100 + 1
            if not _released_lately(domain):
                return domain
        return domain


_RELEASED = Path(tempfile.gettempdir()) / 'retailbot-test-domains'
_QUIET_S = 30.0     # > a DDS participant's lease: a killed process's nodes are gone from the graph


def _mark_released(domain: int) -> None:
    _RELEASED.mkdir(exist_ok=True)
    (_RELEASED / str(domain)).touch()


def _released_lately(domain: int) -> bool:
    """Whether a test (of any worker) released `domain` less than _QUIET_S ago: its nodes may
    still be on the graph (a CI run's replay met /navigation/base of an earlier test there)."""
    import time
    try:
        return time.time() - (_RELEASED / str(domain)).stat().st_mtime < _QUIET_S
    except OSError:
        return False


_SELECT_DOMAIN = _NextDomain()


@pytest.fixture
def ros_env(tmp_path, monkeypatch):
    """A ROS_DOMAIN_ID of its own (reserved across processes), a log dir, loopback-only DDS.

    Returns a copy of the environment to hand to subprocesses.
    """
    from domain_coordinator import domain_id
    log_dir = tmp_path / 'ros_log'
    log_dir.mkdir()
    for _ in range(10):
        reservation = domain_id(selector=_SELECT_DOMAIN)
        did = reservation.__enter__()
        if not _clear_leftovers(did, _test_root(tmp_path)):
            break
        _RECENT_DOMAINS.append((reservation, did))     # held a little longer: its nodes' leases run out
    # The previous tests' domains are released only now that this test has its own, so the next
    # tests never get a domain whose nodes (a process still stopping, a participant whose lease has
    # not run out) may still be on the graph: a robot launch refuses names already running there.
    while len(_RECENT_DOMAINS) > 2:
        held = _RECENT_DOMAINS.pop(0)
        _mark_released(held[1])
        held[0].__exit__(None, None, None)
    try:
        monkeypatch.setenv('ROS_DOMAIN_ID', str(did))
        monkeypatch.setenv('ROS_LOG_DIR', str(log_dir))
        monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
        monkeypatch.setenv('PYTHONUNBUFFERED', '1')
        yield dict(os.environ)
    finally:
        _kill_left_behind(log_dir)
        _RECENT_DOMAINS.append((reservation, did))


_LEFTOVERS = _RELEASED / 'leftovers.log'


def _processes_with(marker: bytes) -> list[int]:
    """Pids (not this process or its parent) whose environment at start holds `marker`
    (b'NAME=value\\0')."""
    own = {os.getpid(), os.getppid()}
    found = []
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit() or int(entry.name) in own:
            continue
        try:
            if marker in b'\0' + (entry / 'environ').read_bytes() + b'\0':
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _clear_leftovers(domain: int, test_root: Path) -> bool:
    """Whether processes still run on `domain`, reserved now for this test. Those an earlier test
    left there (their ROS_LOG_DIR is under this run's `test_root`: a worker that crashed on a hung
    test never stopped what its test had started) are killed; anything else (a developer's own
    robot on that domain) is left alone. Either way each is written to leftovers.log, which the
    run's summary prints, and the caller takes another domain."""
    import signal
    pids = _processes_with(f'\0ROS_DOMAIN_ID={domain}\0'.encode())
    lines = []
    for pid in pids:
        try:
            args = Path(f'/proc/{pid}/cmdline').read_bytes().replace(b'\0', b' ').decode(errors='replace')
            env = Path(f'/proc/{pid}/environ').read_bytes().split(b'\0')
        except OSError:
            continue
        log = next((e.decode(errors='replace')[12:] for e in env if e.startswith(b'ROS_LOG_DIR=')), '')
        if log and Path(log).is_relative_to(test_root):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue
            lines.append(f'domain {domain}: killed pid {pid} left by the test of {log}: {args[:200]}\n')
        else:
            lines.append(f'domain {domain}: not a test\'s, left running and the domain skipped: pid {pid} '
                         f'{args[:200]}\n')
    if lines:
        _RELEASED.mkdir(exist_ok=True)
        with open(_LEFTOVERS, 'a', encoding='utf-8') as log_file:
            log_file.writelines(lines)
    return bool(pids)


def _test_root(tmp_path: Path) -> Path:
    """pytest's root of every run's temporary folders (`/tmp/pytest-of-<user>`)."""
    return next((parent for parent in tmp_path.parents if parent.name.startswith('pytest-of-')),
                tmp_path.parent)


def pytest_terminal_summary(terminalreporter):
    """Processes that outlived their test (see _clear_leftovers), so a CI log says which test."""
    try:
        lines = _LEFTOVERS.read_text(encoding='utf-8').splitlines()
    except OSError:
        return
    if lines:
        terminalreporter.section('processes found on the domains handed to tests')
        for line in lines[-50:]:
            terminalreporter.write_line(line)


def pytest_sessionstart(session):
    """A new run starts with no leftovers log of an earlier run (only the controller clears it)."""
    if not hasattr(session.config, 'workerinput'):
        try:
            _LEFTOVERS.unlink()
        except OSError:
            pass


def _kill_left_behind(log_dir: Path) -> None:
    """Kill every process still running with this test's ROS_LOG_DIR in its environment: a node
    whose launcher was killed (its children orphaned) would otherwise stay on the test's domain
    for the rest of the run, and a later test given that domain met it (two CI runs failed on a
    stray /navigation/base and its /tf_static there)."""
    import signal
    for pid in _processes_with(f'\0ROS_LOG_DIR={log_dir}\0'.encode()):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test on a ROS graph gets a section 'ROS graph at failure': every node on its
    domain and the process that runs it (CI runs met nodes of the robot on a domain no test of
    theirs had started; this says whose they were)."""
    outcome = yield
    report = outcome.get_result()
    if report.when != 'call' or not report.failed or 'ros_context' not in getattr(item, 'funcargs', {}):
        return
    try:
        text = _graph_at_failure(item.funcargs['ros_context'])
    except Exception as exc:   # noqa: BLE001 - a diagnostic never fails the report
        text = f'could not read the graph: {type(exc).__name__}: {exc}'
    report.sections.append(('ROS graph at failure', text))


def _graph_at_failure(context) -> str:
    """Each node on the context's domain with the process behind it (Fast DDS puts the low 16
    bits of the process id in bytes 4-5 of each endpoint's GUID)."""
    import time

    import rclpy
    if not context.ok():
        return 'the test\'s context is already shut down'
    probe = rclpy.create_node(f'failure_probe_{os.getpid()}', context=context, enable_rosout=False,
                              start_parameter_services=False)
    try:
        time.sleep(1.0)                          # discovery of what is there
        owners: dict[str, set[int]] = {}
        for topic, _ in probe.get_topic_names_and_types():
            for info in probe.get_publishers_info_by_topic(topic) + probe.get_subscriptions_info_by_topic(topic):
                name = info.node_namespace.rstrip('/') + '/' + info.node_name
                owners.setdefault(name, set()).add(int.from_bytes(bytes(info.endpoint_gid)[4:6], 'little'))
        lines = [f'domain {os.environ.get("ROS_DOMAIN_ID")}; this test process is pid {os.getpid()}']
        for ns, name in sorted((ns, n) for n, ns in probe.get_node_names_and_namespaces()):
            full = ns.rstrip('/') + '/' + name
            lines.append(f'{full}: ' + ('; '.join(_process_line(low) for low in sorted(owners.get(full, ())))
                                        or 'no endpoints'))
        return '\n'.join(lines)
    finally:
        probe.destroy_node()


def _process_line(low16: int) -> str:
    """The processes whose pid ends in these 16 bits: pid, command, and its ROS environment at start."""
    found = []
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit() or int(entry.name) & 0xFFFF != low16:
            continue
        try:
            args = (entry / 'cmdline').read_bytes().replace(b'\0', b' ').decode(errors='replace')[:160]
            env = dict(e.split('=', 1) for e in (entry / 'environ').read_bytes().decode(errors='replace').split('\0')
                       if '=' in e)
        except OSError:
            continue
        found.append(f'pid {entry.name} ({args.strip()}; ROS_DOMAIN_ID={env.get("ROS_DOMAIN_ID", "-")}, '
                     f'ROS_LOG_DIR={env.get("ROS_LOG_DIR", "-")})')
    return ' or '.join(found) or f'pid ...{low16:#06x} (gone)'


@pytest.fixture
def ros_context(ros_env):
    """An initialised rclpy context on the test's own domain."""
    import rclpy
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(ros_env['ROS_DOMAIN_ID']))
    yield context
    context.try_shutdown()
    # the DDS participant too (rclpy keeps it until the context is collected): a node of this test
    # that outlived its destruction never shows on this domain again (a CI run's graph at failure
    # showed another worker's guide nodes on a domain handed to a later test)
    context.destroy()


@pytest.fixture
def spin(ros_context):
    """spin(*nodes): spin nodes in a background executor for the rest of the test."""
    from retail_ros.executor import RobotExecutor
    executor = RobotExecutor(context=ros_context)
    nodes = []
    thread = None

    def _spin(*new_nodes):
        nonlocal thread
        for node in new_nodes:
            executor.add_node(node)
            nodes.append(node)
        if thread is None:
            thread = threading.Thread(target=executor.spin, daemon=True)
            thread.start()
        return executor

    yield _spin
    executor.shutdown()
    if thread is not None:
        thread.join(timeout=10)
    for node in nodes:
        node.destroy_node()


@pytest.fixture
def processes():
    """Start subprocesses that are stopped (SIGINT, then SIGKILL) when the test ends."""
    started: list[subprocess.Popen] = []

    def _start(cmd, **kwargs):
        kwargs.setdefault('start_new_session', True)
        proc = subprocess.Popen(cmd, **kwargs)
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        stop_process(proc)



def _slow_files(root: Path) -> set[str]:
    """Test files with `slow` tests (whole robot graphs, the store day, launches, servers under
    faults), as node-id paths."""
    return {str(path.relative_to(root)) for path in (root / 'tests').rglob('test_*.py')
            if 'mark.slow' in path.read_text(encoding='utf-8')}


def pytest_xdist_make_scheduler(config, log):
    """With several pytest-xdist workers and `--dist loadgroup` (as CI runs), the files with slow
    tests form one work unit that one worker runs test after test, while the other workers take
    the quick tests one by one: two whole robots never share the cores, and the suite takes about
    half the time. (xdist's own loadgroup marks groups by rewriting node ids, which pytest 9.2's
    structured node ids ignore: pytest-dev/pytest-xdist#1386.)"""
    if config.getvalue('dist') != 'loadgroup':
        return None
    from xdist.scheduler import LoadScopeScheduling
    slow = _slow_files(Path(config.rootpath))

    class SlowTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return 'slow tests' if nodeid.split('::', 1)[0] in slow else nodeid

    return SlowTogether(config, log)
