"""`retailbot base sim|jog|info|simctl` as real processes talking over a real pty."""
from __future__ import annotations

import json
import math
import signal
import subprocess
from pathlib import Path

import pytest

from rostest_support import console_script, wait_for

DATA = Path(__file__).resolve().parent.parent / 'data' / 'navigation'


def start_sim(processes, link: Path, *extra: str) -> subprocess.Popen:
    proc = processes([console_script('retailbot'), 'base', 'sim', '--link', str(link), *extra],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (link.exists() and Path(str(link) + '.ctl').exists()) or proc.poll() is not None,
             10.0, 'the simulator to link its pty')
    assert proc.poll() is None, proc.stderr.read()
    return proc


def retailbot(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    return subprocess.run([console_script('retailbot'), *args], capture_output=True, text=True, timeout=timeout)


def sim_state(link: Path) -> dict:
    reply = json.loads(retailbot('base', 'simctl', '--link', str(link), '{"cmd": "state"}').stdout)
    assert reply['ok']
    return reply['state']


def test_jog_drives_the_simulated_base_and_reports_odometry(processes, tmp_path):
    link = tmp_path / 'base'
    start_sim(processes, link)
    result = retailbot('base', 'jog', '--port', str(link), '--vx', '0.2', '--wz', '0.4', '--seconds', '2', '--json')
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report) == {'odom', 'frames_ok', 'frames_bad', 'disconnects', 'safety_stop', 'error'}
    assert set(report['odom']) == {'x', 'y', 'theta'} and report['disconnects'] == 0 and report['error'] == ''
    assert report['frames_ok'] >= 80 and report['frames_bad'] == 0          # 50 Hz for > 2 s
    truth = sim_state(link)
    x, y, theta = truth['pose']
    assert x > 0.2 and y > 0.02 and theta > 0.5                               # it drove an arc to the left
    assert math.hypot(report['odom']['x'] - x, report['odom']['y'] - y) < 0.02 * truth['odometer_m'] + 0.003
    assert report['odom']['theta'] == pytest.approx(theta, abs=0.02)
    assert truth['commands_received'] >= 20 and truth['last_command'] == [0, 0]   # >= 10 Hz, then a stop


def test_jog_into_a_wall_of_the_map_ends_in_a_safety_stop(processes, tmp_path):
    link = tmp_path / 'base'
    start_sim(processes, link, '--map', str(DATA / 'room.yaml'), '--pose', '2.5,0.5,0')
    result = retailbot('base', 'jog', '--port', str(link), '--vx', '0.3', '--seconds', '4', '--json')
    assert result.returncode == 3, result.stderr
    assert 'bumper centre' in result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0.2 < report['odom']['x'] < 0.32                                   # 2.95 - 0.18 - 2.5 = 0.27 m
    assert sim_state(link)['pose'][0] == pytest.approx(2.5 + report['odom']['x'], abs=0.01)


def test_sim_starts_on_the_dock_from_zones_and_charges(processes, tmp_path):
    link = tmp_path / 'base'
    start_sim(processes, link, '--map', str(DATA / 'room.yaml'))
    result = retailbot('base', 'info', '--port', str(link), '--json')
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info['hardware_version'] == '1.0.4' and info['firmware_version'] == '1.2.0'
    assert info['unique_id'] and info['charger'] == 'docked, charging' and info['sensors'] == 'all clear'
    assert sim_state(link)['pose'][:2] == [0.5, 1.0]


def test_simctl_injects_events_seen_by_info(processes, tmp_path):
    link = tmp_path / 'base'
    start_sim(processes, link)
    assert retailbot('base', 'simctl', '--link', str(link), '{"cmd": "cliff", "bits": 4}').returncode == 0
    result = retailbot('base', 'info', '--port', str(link))
    assert result.returncode == 0 and 'cliff left' in result.stdout
    bad = retailbot('base', 'simctl', '--link', str(link), '{"cmd": "fly"}')
    assert bad.returncode == 1 and 'unknown cmd' in bad.stdout


def test_clear_errors_for_a_missing_port_and_a_bad_map(tmp_path):
    result = retailbot('base', 'jog', '--port', str(tmp_path / 'nothing'), '--vx', '0.1', '--seconds', '1')
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert f'no serial device {tmp_path / "nothing"}' in result.stderr and 'plugged in' in result.stderr
    bad_map = tmp_path / 'map.yaml'
    bad_map.write_text('image: missing.pgm\nresolution: 0.05\norigin: [0, 0, 0]\n')
    result = retailbot('base', 'sim', '--link', str(tmp_path / 'base'), '--map', str(bad_map))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert 'cannot load map' in result.stderr
    result = retailbot('base', 'sim', '--link', str(tmp_path / 'base'), '--map', str(DATA / 'room.yaml'),
                       '--pose', '2.2,1.5,0')
    assert result.returncode == 2 and 'not on free floor' in result.stderr


def test_base_sim_console_script_ignores_ros_arguments(processes, tmp_path):
    link = tmp_path / 'base'
    proc = processes([console_script('retail_navigation_base_sim'), '--link', str(link), '--ros-args', '-r', '__node:=base_sim'],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: link.exists() or proc.poll() is not None, 10.0, 'the pty link')
    assert proc.poll() is None
    proc.send_signal(2)
    assert proc.wait(10) == 0 and not link.exists()


def test_jog_with_the_cable_pulled_mid_run_says_so_and_fails(processes, tmp_path):
    link = tmp_path / 'base'
    start_sim(processes, link)
    jog = processes([console_script('retailbot'), 'base', 'jog', '--port', str(link), '--vx', '0.2',
                     '--seconds', '8', '--json'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: sim_state(link)['commands_received'] >= 10, 10.0, 'the jog to drive')
    assert retailbot('base', 'simctl', '--link', str(link), '{"cmd": "unplug"}').returncode == 0
    out, err = jog.communicate(timeout=20)
    assert jog.returncode == 1, err
    assert 'lost the base' in err and 'Traceback' not in err
    report = json.loads(out.strip().splitlines()[-1])
    assert report['disconnects'] >= 1 and 'lost the base' in report['error']
    assert 0.0 < report['odom']['x'] < 0.2 * 8                    # what was driven before the loss


def test_sigterm_during_a_jog_stops_the_base_and_exits_143(processes, tmp_path):
    link = tmp_path / 'base'
    start_sim(processes, link)
    jog = processes([console_script('retailbot'), 'base', 'jog', '--port', str(link), '--vx', '0.2',
                     '--seconds', '30'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: sim_state(link)['last_command'][0] > 0, 10.0, 'the jog to drive')
    jog.send_signal(signal.SIGTERM)
    out, err = jog.communicate(timeout=20)
    assert jog.returncode == 143 and 'Traceback' not in err, err
    assert sim_state(link)['last_command'] == [0, 0]             # the jog's last word was a stop


@pytest.fixture
def running_driver(ros_context, spin, base_sim):
    """The real /navigation/base node on the simulated base, as on a launched robot."""
    from rclpy.parameter import Parameter

    from retail_navigation.base_driver_node import BaseDriverNode
    sim = base_sim()
    node = BaseDriverNode(context=ros_context, namespace='navigation',
                          parameter_overrides=[Parameter('port', value=str(sim.link))])
    spin(node)
    node.trigger_configure()
    node.trigger_activate()
    wait_for(lambda: node.core.basic is not None, 10.0, 'the driver to read the base')
    return node, sim


def test_base_reset_explains_a_pressed_bumper_then_clears_the_stop(running_driver, ros_env):
    from retail_navigation import protocol as p
    node, sim = running_driver

    def reset(*extra):
        return subprocess.run([console_script('retailbot'), 'base', 'reset', '--timeout', '20', *extra],
                              env=ros_env, capture_output=True, text=True, timeout=60)
    result = reset('--json')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {'cleared': True, 'was_latched': False, 'message': 'not latched'}
    sim.handle_control({'cmd': 'bumper', 'bits': p.BUMPER_LEFT})
    wait_for(lambda: node.core.safety.latched, 5.0, 'the bumper stop')
    result = reset()
    assert result.returncode == 1
    assert 'NOT cleared' in result.stdout and 'bumper left pressed' in result.stdout
    assert 'free the bumper' in result.stdout and 'wheels' not in result.stdout
    assert node.core.safety.latched
    sim.handle_control({'cmd': 'bumper', 'bits': 0})
    wait_for(lambda: not node.core.safety.triggered, 5.0, 'the bumper released')
    result = reset()
    assert result.returncode == 0 and 'safety stop cleared' in result.stdout, result.stderr
    assert not node.core.safety.latched


def test_base_reset_without_a_robot_is_one_line_and_exit_1(ros_env):
    result = subprocess.run([console_script('retailbot'), 'base', 'reset', '--timeout', '1'],
                            env=ros_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and 'no base driver answers' in result.stderr
