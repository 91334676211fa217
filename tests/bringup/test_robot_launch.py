"""The whole robot in simulation: `retailbot launch launch/robot.launch.yaml sim:=true` brings up
the five areas with /cmd_vel and /odom on the graph, and Ctrl-C ends it with exit code 0."""
import signal
import subprocess

import pytest

from rostest_support import REPO, console_script, wait_for
from test_launcher import LaunchRun, alive

pytestmark = pytest.mark.slow
AREAS = ('/perception', '/dialogue', '/navigation', '/recommendation', '/sync')


def test_sim_launch_brings_up_every_area_and_stops_cleanly(tmp_path, ros_env, ros_context, processes):
    import rclpy
    key_file = tmp_path / 'gallery.key'  # the faces node refuses to start without a gallery key
    subprocess.run([console_script('retailbot'), 'faces', 'keygen', '--key-file', str(key_file)],
                   check=True, capture_output=True, timeout=60)
    env = dict(ros_env, RETAILBOT_DATA_DIR=str(tmp_path / 'data'),
               RETAILBOT_GALLERY_KEY=key_file.read_text().strip())
    run = LaunchRun(processes, env, str(REPO / 'launch/robot.launch.yaml'), 'sim:=true',
                    f'data_dir:={tmp_path / "data"}')
    probe = rclpy.create_node('graph_probe', context=ros_context)

    def graph_ready():
        namespaces = {ns for _, ns in probe.get_node_names_and_namespaces()}
        topics = {name for name, _ in probe.get_topic_names_and_types()}
        return set(AREAS) <= namespaces and {'/cmd_vel', '/odom'} <= topics

    wait_for(lambda: graph_ready() or run.proc.poll() is not None, timeout=120,
             what='nodes of all five areas and /cmd_vel, /odom on the graph')
    assert run.proc.poll() is None, 'launcher stopped early:\n' + run.text()[-4000:]
    types = dict(probe.get_topic_names_and_types())
    assert types['/cmd_vel'] == ['geometry_msgs/msg/Twist']
    assert types['/odom'] == ['nav_msgs/msg/Odometry']
    pids = run.pids()
    assert run.stop(signal.SIGINT, timeout=60) == 0, run.text()[-4000:]
    assert not any(alive(p) for p in pids)
    probe.destroy_node()
