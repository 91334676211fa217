"""`retailbot launch` runs real node processes and looks after them like `ros2 launch`."""
import json
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


def test_nodes_come_up_and_ctrl_c_stops_all_with_exit_0(tmp_path, ros_env, ros_context, processes):
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
    assert run.stop(signal.SIGINT) == 0
    assert 'all nodes stopped' in run.text()
    assert not any(alive(p) for p in pids)
    probe.destroy_node()


def test_sigterm_also_exits_0(tmp_path, ros_env, processes):
    f = launch_file(tmp_path, 'launch:\n- node: {pkg: retail_bringup, exec: retail_bringup_health, name: h}\n')
    run = LaunchRun(processes, ros_env, f)
    wait_for(lambda: run.pids(), timeout=20, what='node started')
    assert run.stop(signal.SIGTERM) == 0


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
    assert rc != 0
    assert '/broken exited with code 2; stopping all nodes' in out
    # the node's own one-line config error, prefixed with its name
    assert re.search(r"^\[broken\] .*config error: command line: node /broken: key 'period_s': -1.0 is below the minimum",
                     out, re.MULTILINE)
    assert not any(alive(p) for p in run.pids())


def test_respawn_restarts_a_dying_node(tmp_path, ros_env, processes):
    f = launch_file(tmp_path, '''
        launch:
        - node:
            pkg: retail_bringup
            exec: retail_bringup_health
            name: flaky
            respawn: "true"
            respawn_delay: "0.2"
            param: [{name: period_s, value: "-1.0"}]
        ''')
    run = LaunchRun(processes, ros_env, f)
    wait_for(lambda: '(restart 2)' in run.text(), timeout=60, what='the node restarted twice')
    assert 'restarting in 0.2 s (respawn)' in run.text()
    assert run.stop() == 0


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
