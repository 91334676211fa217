"""`retailbot launch` runs real node processes and looks after them like `ros2 launch`."""
import json
import os
import re
import signal
import subprocess
import textwrap
import threading

import pytest

from rostest_support import console_script, wait_for

pytestmark = pytest.mark.slow


class LaunchRun:
    """A `retailbot launch` process whose output is collected line by line."""

    def __init__(self, processes, env, *args):
        self.lines: list[str] = []
        self.proc = processes([console_script('retailbot'), 'launch', *args, '--grace', '3'], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip('\n'))

    def text(self):
        return '\n'.join(self.lines)

    def pids(self):
        return [int(p) for p in re.findall(r'\[pid (\d+)\]', self.text())]

    def stop(self, sig=signal.SIGINT, timeout=20):
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=5)
        return rc


def alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split()[2] != 'Z'
    except FileNotFoundError:
        return False


def launch_file(tmp_path, body):
    path = tmp_path / 'test.launch.yaml'
    path.write_text(textwrap.dedent(body))
    return str(path)


def graph_nodes(ros_context):
    import rclpy
    node = rclpy.create_node('graph_probe', context=ros_context)
    return node


def test_nodes_come_up_and_ctrl_c_stops_all_with_exit_130(tmp_path, ros_env, ros_context, processes):
    f = launch_file(tmp_path, '''
        launch:
        - arg: {name: second_ns, default: b}
        - node: {pkg: retail_bringup, exec: retail_bringup_health, name: h1, namespace: a}
        - node: {pkg: retail_bringup, exec: retail_bringup_health, name: h2, namespace: "$(var second_ns)"}
        ''')
    run = LaunchRun(processes, ros_env, f, 'second_ns:=zone_b')
    probe = graph_nodes(ros_context)
    wait_for(lambda: {('h1', '/a'), ('h2', '/zone_b')} <= set(probe.get_node_names_and_namespaces()),
             timeout=20, what='both launched nodes on the ROS graph')
    pids = run.pids()
    assert len(pids) == 2
    assert run.stop(signal.SIGINT) == 130          # 128 + SIGINT, as a shell reports Ctrl-C
    assert 'all nodes stopped' in run.text()
    assert not any(alive(p) for p in pids)
    probe.destroy_node()


@pytest.mark.parametrize('sig, code', [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_signals_stop_everything_with_128_plus_n(tmp_path, ros_env, processes, sig, code):
    f = launch_file(tmp_path, 'launch:\n- node: {pkg: retail_bringup, exec: retail_bringup_health, name: h}\n')
    run = LaunchRun(processes, ros_env, f)
    wait_for(lambda: run.pids(), timeout=20, what='node started')
    pids = run.pids()
    assert run.stop(sig) == code
    assert not any(alive(p) for p in pids)


def test_a_dying_node_stops_everything_and_exits_non_zero(tmp_path, ros_env, processes):
    f = launch_file(tmp_path, '''
        launch:
        - node: {pkg: retail_bringup, exec: retail_bringup_health, name: fine}
        - node:
            pkg: retail_bringup
            exec: retail_bringup_health
            name: broken
            param: [{name: period_s, value: "-1.0"}]
        ''')
    run = LaunchRun(processes, ros_env, f)
    rc = run.proc.wait(timeout=60)
    run.reader.join(timeout=5)
    out = run.text()
    assert rc == 1
    # ONE summary line: the node, its exit code, its own last error line.
    summary = [line for line in out.splitlines() if line.startswith('[launch] /broken exited')]
    assert len(summary) == 1, out
    assert re.match(r"\[launch\] /broken exited with code 2 at start: .*config error: command line: node "
                    r"/broken: key 'period_s': -1.0 is below the minimum .*; stopping all nodes$", summary[0])
    assert 'Traceback' not in out
    # the node's own one-line config error, prefixed with its name
    assert re.search(r"^\[broken\] .*config error: command line: node /broken: key 'period_s': -1.0 is below the minimum",
                     out, re.MULTILINE)
    assert not any(alive(p) for p in run.pids())


def test_respawn_restarts_a_dying_node_but_not_a_config_error(tmp_path, ros_env, processes):
    f = launch_file(tmp_path, '''
        launch:
        - node: {pkg: retail_bringup, exec: retail_bringup_health, name: flaky, respawn: "true", respawn_delay: "0.2"}
        ''')
    run = LaunchRun(processes, ros_env, f)
    for restart in (1, 2):
        wait_for(lambda: len(run.pids()) == restart, timeout=30, what=f'run {restart} of the node')
        os.kill(run.pids()[-1], signal.SIGKILL)
        wait_for(lambda: f'(restart {restart})' in run.text(), timeout=30, what=f'restart {restart}')
    assert '/flaky was killed by SIGKILL (exit code 137); restarting in 0.2 s (respawn)' in run.text()
    assert '/flaky was killed by SIGKILL (exit code 137); restarting in 0.4 s (respawn)' in run.text(), \
        'a node dying soon after its start waits longer each time'
    assert run.stop() == 130

    f = launch_file(tmp_path, '''
        launch:
        - node:
            pkg: retail_bringup
            exec: retail_bringup_health
            name: misconfigured
            respawn: "true"
            param: [{name: period_s, value: "-1.0"}]
        ''')
    run = LaunchRun(processes, ros_env, f)
    assert run.proc.wait(timeout=60) == 1
    run.reader.join(timeout=5)
    assert '(restart' not in run.text()
    assert 'config error: not respawned' in run.text()


def test_show_prints_resolved_nodes_without_starting_them(tmp_path, ros_env):
    f = launch_file(tmp_path, '''
        launch:
        - arg: {name: sim, default: "false"}
        - node: {pkg: retail_bringup, exec: retail_bringup_health, name: h, namespace: x, if: "$(var sim)",
                 remap: [{from: a, to: /b}]}
        ''')
    out = subprocess.run([console_script('retailbot'), 'launch', '--show', f, 'sim:=true'],
                         env=ros_env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    assert '/x/h  (retail_bringup retail_bringup_health)' in out.stdout and 'remap a -> /b' in out.stdout
    out = subprocess.run([console_script('retailbot'), 'launch', '--show', '--json', f],
                         env=ros_env, capture_output=True, text=True, timeout=30)
    assert json.loads(out.stdout)['nodes'] == []
    # options anywhere, like every other command line (issue 17 item 9)
    for argv in ([f, '--show', 'sim:=true'], [f, 'sim:=true', '--show'], ['--show', f, 'sim:=true']):
        out = subprocess.run([console_script('retailbot'), 'launch', *argv], env=ros_env, capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0 and '/x/h  (retail_bringup retail_bringup_health)' in out.stdout, argv
    out = subprocess.run([console_script('retailbot'), 'launch', f, '--json', '--show', 'sim:=true'],
                         env=ros_env, capture_output=True, text=True, timeout=30)
    assert [n['name'] for n in json.loads(out.stdout)['nodes']] == ['/x/h']


def test_json_without_show_is_refused_and_starts_nothing(tmp_path, ros_env):
    f = launch_file(tmp_path, 'launch:\n- node: {pkg: retail_bringup, exec: retail_bringup_health, name: h}\n')
    out = subprocess.run([console_script('retailbot'), 'launch', '--json', f], env=ros_env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert out.stderr.strip() == ('retailbot launch: --json prints the resolved nodes and needs --show; '
                                  'nothing was started')
    assert '[launch] started' not in out.stdout


def test_unsupported_syntax_and_unknown_executable_are_refused(tmp_path, ros_env):
    f = launch_file(tmp_path, 'launch:\n- node: {pkg: retail_bringup, exec: retail_bringup_health, prefix: gdb}\n')
    out = subprocess.run([console_script('retailbot'), 'launch', f], env=ros_env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert f"{f}:2: node: unsupported attribute 'prefix'" in out.stderr
    f = launch_file(tmp_path, 'launch:\n- node: {pkg: retail_bringup, exec: nosuch}\n')
    out = subprocess.run([console_script('retailbot'), 'launch', f], env=ros_env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "package 'retail_bringup' has no executable 'nosuch'" in out.stderr


def test_children_die_with_the_launcher_even_on_kill_9(tmp_path, ros_env, processes):
    """issue 12 item 4: kill -9 of the launcher must not leave the robot's nodes running."""
    f = launch_file(tmp_path, '''
        launch:
        - node: {pkg: retail_bringup, exec: retail_bringup_health, name: h1}
        - node: {pkg: retail_bringup, exec: retail_bringup_health, name: h2, namespace: n}
        ''')
    run = LaunchRun(processes, ros_env, f)
    wait_for(lambda: len(run.pids()) == 2, timeout=30, what='both nodes started')
    pids = run.pids()
    assert all(alive(p) for p in pids)
    run.proc.kill()                                   # SIGKILL: no handler runs in the launcher
    run.proc.wait(timeout=10)
    wait_for(lambda: not any(alive(p) for p in pids), timeout=20, what='the nodes to die with the launcher')


def test_a_second_launch_of_running_nodes_is_refused(tmp_path, ros_env, ros_context, processes):
    """issue 12 item 4: never two /navigation/base on one domain: one line naming them, exit 2."""
    f = launch_file(tmp_path, '''
        launch:
        - node: {pkg: retail_bringup, exec: retail_bringup_health, name: h1, namespace: navigation}
        - node: {pkg: retail_bringup, exec: retail_bringup_health, name: h2}
        ''')
    first = LaunchRun(processes, ros_env, f)
    import rclpy
    probe = rclpy.create_node('graph_probe', context=ros_context)
    wait_for(lambda: {('h1', '/navigation'), ('h2', '/')} <= set(probe.get_node_names_and_namespaces()),
             timeout=30, what='the first launch on the graph')
    second = LaunchRun(processes, ros_env, f)
    try:
        second.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail('second launch did not stop:\n' + second.text())
    assert second.proc.returncode == 2
    second.reader.join(timeout=5)
    # One line naming what it found running (discovery may name one of the two before it refuses).
    assert len(second.lines) == 1, second.lines
    match = re.fullmatch(r'\[launch\] refusing to start: (.+) already running on ROS_DOMAIN_ID (\d+) '
                         r'\(another launch of this robot\? stop it first\)', second.lines[0])
    assert match and match.group(2) == ros_env['ROS_DOMAIN_ID'], second.lines
    named = match.group(1).split(', ')
    assert named and set(named) <= {'/h2', '/navigation/h1'} and named == sorted(named), named
    assert first.proc.poll() is None, 'the running launch is left alone'
    assert first.stop() == 130
    probe.destroy_node()
