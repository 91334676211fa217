"""The whole robot from the shipped launch files, as a technician starts it.

- simulation without a gallery key (the README's command as written): every area comes up, the
  faces node runs in anonymous mode, Ctrl-C ends it with 130 and no traceback;
- Ctrl-C 4 s into a launch (nodes still importing) prints no traceback;
- the real-robot launch (no `sim`) against stand-ins: a pseudo-terminal with the base simulator for
  the serial port and a video file for the camera; every node comes up (issue 17 item 1).
"""
import signal
import subprocess
import time

import pytest

from rostest_support import REPO, console_script, wait_for
from test_launcher import LaunchRun, alive

pytestmark = pytest.mark.slow
AREAS = ('/perception', '/dialogue', '/navigation', '/recommendation', '/sync')
CLIP = REPO / 'tests' / 'data' / 'faces' / 'video' / 'short_hamilton_clip.mp4'


def _env(ros_env, tmp_path):
    env = {k: v for k, v in ros_env.items() if k != 'RETAILBOT_GALLERY_KEY'}
    env['RETAILBOT_DATA_DIR'] = str(tmp_path / 'data')
    return env


def _sim_args(tmp_path):
    return ['sim:=true', f'data_dir:={tmp_path / "data"}', f'base_link_path:={tmp_path / "base.pty"}',
            f'speech_out_dir:={tmp_path / "tts"}', f'customer_audio_dir:={tmp_path / "audio"}']


def test_sim_launch_without_a_gallery_key_brings_up_every_area(tmp_path, ros_env, ros_context, processes):
    """issue 12 item 11: the README's launch command without a key keeps the robot up."""
    import rclpy
    run = LaunchRun(processes, _env(ros_env, tmp_path), str(REPO / 'launch/robot.launch.yaml'), *_sim_args(tmp_path))
    probe = rclpy.create_node('graph_probe', context=ros_context)

    def graph_ready():
        namespaces = {ns for _, ns in probe.get_node_names_and_namespaces()}
        topics = {name for name, _ in probe.get_topic_names_and_types()}
        return set(AREAS) <= namespaces and {'/cmd_vel', '/odom', '/perception/customer_events'} <= topics

    wait_for(lambda: graph_ready() or run.proc.poll() is not None, timeout=180,
             what='nodes of all five areas and /cmd_vel, /odom on the graph')
    assert run.proc.poll() is None, 'launcher stopped early:\n' + run.text()[-4000:]
    wait_for(lambda: 'anonymous mode (detection and approach only' in run.text(), timeout=60,
             what='the faces node saying it runs anonymously')
    anonymous = [line for line in run.lines if 'anonymous mode' in line]
    assert len(anonymous) == 1 and anonymous[0].startswith('[perception/faces] ') and 'no gallery key' in anonymous[0]
    types = dict(probe.get_topic_names_and_types())
    assert types['/cmd_vel'] == ['geometry_msgs/msg/Twist']
    assert types['/odom'] == ['nav_msgs/msg/Odometry']
    pids = run.pids()
    assert run.stop(signal.SIGINT, timeout=90) == 130, run.text()[-4000:]
    assert not any(alive(p) for p in pids)
    assert 'Traceback' not in run.text(), run.text()[-6000:]
    assert 'exited with code' not in run.text() and 'killed by' not in run.text(), run.text()[-4000:]
    probe.destroy_node()


def test_ctrl_c_4_s_into_a_launch_prints_no_traceback(tmp_path, ros_env, processes):
    """issue 17 item 8: nodes interrupted while starting do not print tracebacks on the screen."""
    run = LaunchRun(processes, _env(ros_env, tmp_path), str(REPO / 'launch/robot.launch.yaml'), *_sim_args(tmp_path))
    wait_for(lambda: run.text().count('[launch] started') >= 10 or run.proc.poll() is not None, timeout=60,
             what='every node started')
    time.sleep(4.0)     # the moment a technician gives up waiting (nodes still loading models)
    pids = run.pids()
    assert run.stop(signal.SIGINT, timeout=90) == 130, run.text()[-4000:]
    assert not any(alive(p) for p in pids)
    screen = run.text()
    assert 'Traceback' not in screen and 'KeyboardInterrupt' not in screen, screen[-6000:]
    assert screen.splitlines()[-1] == '[launch] all nodes stopped'


def test_real_robot_launch_on_stand_ins_brings_up_every_node(tmp_path, ros_env, ros_context, spin, processes):
    """issue 17 item 1: without `sim`, with a pty for the serial port and a video for the camera."""
    import rclpy
    from sensor_msgs.msg import Image
    from rclpy.qos import qos_profile_sensor_data
    link = tmp_path / 'ttyUSB0'
    base = processes([console_script('retailbot'), 'base', 'sim', '--link', str(link),
                      '--map', str(REPO / 'config/stores/demo/map.yaml')], env=ros_env,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: link.exists() or base.poll() is not None, timeout=30, what='the base stand-in on a pty')
    assert base.poll() is None
    run = LaunchRun(processes, _env(ros_env, tmp_path), str(REPO / 'launch/robot.launch.yaml'),
                    f'data_dir:={tmp_path / "data"}', f'base_port:={link}', f'camera_device:={CLIP}',
                    'speech_in:=false', f'speech_out_dir:={tmp_path / "tts"}')
    probe = rclpy.create_node('graph_probe', context=ros_context)
    frames = []
    probe.create_subscription(Image, '/perception/image_raw', frames.append, qos_profile_sensor_data)
    spin(probe)
    expected = {'/health', '/navigation/base', '/navigation/guide', '/perception/camera', '/perception/faces',
                '/dialogue/tts', '/dialogue/manager', '/recommendation/server', '/sync/agent'}

    def nodes():
        return {(ns.rstrip('/') + '/' + name) for name, ns in probe.get_node_names_and_namespaces()}

    wait_for(lambda: expected <= nodes() or run.proc.poll() is not None, timeout=180, what=f'nodes {expected}')
    assert run.proc.poll() is None, 'launcher stopped early:\n' + run.text()[-4000:]
    wait_for(lambda: frames, timeout=30, what='camera frames from the video')
    wait_for(lambda: probe.count_publishers('/odom') > 0, timeout=30, what='odometry from the base on the pty')
    assert '/navigation/base_sim' not in nodes()
    assert '(restart' not in run.text(), run.text()[-4000:]
    assert run.stop(signal.SIGINT, timeout=90) == 130, run.text()[-4000:]


def test_a_node_failing_at_start_is_one_line_not_every_nodes_traceback(tmp_path, ros_env, processes):
    """issue 17 item 8: a typo in the store-wide params file stops the robot with ONE summary line
    (node, exit code, its error), and the other nodes, stopped while starting, print no traceback."""
    config = tmp_path / 'robot.yaml'
    config.write_text('health:\n  ros__parameters:\n    period_s: 1.0\n    stale_after: 5.0\n')
    run = LaunchRun(processes, _env(ros_env, tmp_path), str(REPO / 'launch/robot.launch.yaml'),
                    *_sim_args(tmp_path), f'config:={config}')
    assert run.proc.wait(timeout=120) == 1
    run.reader.join(timeout=5)
    screen = run.text()
    summary = [line for line in run.lines if line.startswith('[launch] /health exited')]
    assert summary == [f"[launch] /health exited with code 2 at start: retail_bringup_health: config error: {config}: "
                       "node /health: unknown key 'stale_after' (did you mean 'stale_after_s'?) (config error: not "
                       "respawned); stopping all nodes"], screen
    for noise in ('Traceback', 'KeyboardInterrupt', 'Failed to publish log message', 'never retrieved'):
        assert noise not in screen, screen[-6000:]
    assert screen.splitlines()[-1] == '[launch] all nodes stopped'
