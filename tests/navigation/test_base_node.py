"""The /navigation/base lifecycle node on real DDS, driving the simulated base on a real pty."""
from __future__ import annotations

import subprocess

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import BatteryState
from std_srvs.srv import Trigger

from retail_interfaces.msg import BaseSafety
from retail_navigation import protocol as p
from retail_navigation.base_driver_node import BaseDriverNode
from rostest_support import console_script, wait_for


class Operator(Node):
    """Plays the planner and the technician: cmd_vel out; odom, safety, battery, diagnostics in."""

    def __init__(self, **kwargs) -> None:
        super().__init__('operator', **kwargs)
        self.twist = Twist()
        self.sending = False
        self.sent = 0
        self.odom: list[Odometry] = []
        self.safety: list[BaseSafety] = []
        self.battery: list[BatteryState] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.cmd_pub = self.create_publisher(Twist, '/cmd_vel', 10)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                             reliability=ReliabilityPolicy.RELIABLE)
        self.create_subscription(Odometry, '/odom', self.odom.append, 10)
        self.create_subscription(BaseSafety, '/navigation/safety', self.safety.append, latched)
        self.create_subscription(BatteryState, '/navigation/battery', self.battery.append, 10)
        self.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append, 10)
        self.reset_client = self.create_client(Trigger, '/navigation/reset_safety')
        self.create_timer(0.05, self._tick)

    def _tick(self) -> None:
        if self.sending:
            self.cmd_pub.publish(self.twist)
            self.sent += 1

    def drive(self, vx: float, wz: float) -> None:
        self.twist = Twist()
        self.twist.linear.x, self.twist.angular.z = vx, wz
        self.sending = True

    def reset(self) -> Trigger.Response:
        assert self.reset_client.wait_for_service(timeout_sec=5.0)
        future = self.reset_client.call_async(Trigger.Request())
        wait_for(future.done, 5.0, 'the reset_safety answer')
        return future.result()


@pytest.fixture
def node_and_sim(ros_context, spin, base_sim):
    sim = base_sim()
    node = BaseDriverNode(context=ros_context, namespace='navigation',
                          parameter_overrides=[Parameter('port', value=str(sim.link)),
                                               Parameter('diagnostics_period_s', value=0.2)])
    operator = Operator(context=ros_context)
    spin(node, operator)
    from rclpy.lifecycle import TransitionCallbackReturn
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    return node, operator, sim


def test_cmd_vel_drives_the_base_and_odom_follows(node_and_sim):
    node, operator, sim = node_and_sim
    operator.drive(0.3, 0.0)
    wait_for(lambda: sim.state()['pose'][0] > 0.4, 10.0, 'the simulated base to drive 0.4 m')
    operator.sending = False                       # the planner goes quiet: the watchdog stops the base
    wait_for(lambda: sim.state()['wheel_speeds'] == [0.0, 0.0], 5.0, 'the watchdog stop')
    truth_x = sim.state()['pose'][0]
    wait_for(lambda: operator.odom and abs(operator.odom[-1].pose.pose.position.x - truth_x) < 0.02 * truth_x,
             5.0, f'/odom to report x = {truth_x:.3f}')
    last = operator.odom[-1]
    assert last.header.frame_id == 'odom' and last.child_frame_id == 'base_link'
    assert abs(last.pose.pose.position.y) < 0.01
    wait_for(lambda: operator.battery, 5.0, 'a BatteryState')
    assert operator.battery[-1].voltage == pytest.approx(16.2, abs=0.1)
    wait_for(lambda: any(s.name == 'navigation/base: serial link'
                         and {'frame_error_rate', 'link_state'} <= {kv.key for kv in s.values}
                         for a in operator.diagnostics for s in a.status), 5.0, 'base diagnostics')


def test_bumper_latch_is_published_and_reset_by_service(node_and_sim):
    node, operator, sim = node_and_sim
    wait_for(lambda: operator.safety, 5.0, 'the latched safety state')
    assert not operator.safety[-1].latched
    operator.drive(0.2, 0.0)
    wait_for(lambda: sim.base.last_command[0] > 0, 5.0, 'driving')
    sim.handle_control({'cmd': 'bumper', 'bits': p.BUMPER_CENTRE | p.BUMPER_RIGHT})
    wait_for(lambda: operator.safety[-1].latched, 5.0, 'a latched BaseSafety')
    msg = operator.safety[-1]
    assert msg.bumper_centre and msg.bumper_right and not msg.bumper_left and 'bumper' in msg.reason
    wait_for(lambda: sim.state()['wheel_speeds'] == [0.0, 0.0], 5.0, 'the base to stop')
    assert not operator.reset().success                              # still pressed
    sim.handle_control({'cmd': 'bumper', 'bits': 0})
    wait_for(lambda: not operator.safety[-1].bumper_centre, 5.0, 'the bumper released')
    assert operator.safety[-1].latched and sim.base.last_command == (0, 0)
    assert operator.reset().success
    wait_for(lambda: not operator.safety[-1].latched, 5.0, 'the latch cleared')
    wait_for(lambda: sim.base.last_command[0] > 0, 5.0, 'driving again')


def test_a_bad_params_file_is_one_line_and_exit_2(tmp_path, ros_env):
    params = tmp_path / 'nav.yaml'
    params.write_text('navigation/base:\n  ros__parameters:\n    max_vx: 3.0\n')
    result = subprocess.run([console_script('retail_navigation_base_driver'), '--ros-args', '-r', '__ns:=/navigation',
                             '--params-file', str(params)], env=ros_env, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'max_vx' in lines[0] and 'maximum' in lines[0], result.stderr


def link_state(operator: Operator) -> str | None:
    for array in reversed(operator.diagnostics):
        for status in array.status:
            if status.name == 'navigation/base: serial link':
                return {kv.key: kv.value for kv in status.values}['link_state']
    return None


def test_unplug_is_reported_then_driving_resumes_and_deactivate_stops(node_and_sim):
    node, operator, sim = node_and_sim
    operator.drive(0.2, 0.0)
    wait_for(lambda: sim.base.last_command[0] > 0, 5.0, 'driving')
    sim.handle_control({'cmd': 'unplug'})
    wait_for(lambda: link_state(operator) == 'disconnected', 5.0, 'diagnostics: link disconnected')
    assert sim.state()['last_command'] == [0, 0]
    sim.handle_control({'cmd': 'replug'})
    wait_for(lambda: link_state(operator) == 'connected', 10.0, 'diagnostics: link connected again')
    wait_for(lambda: sim.base.last_command[0] > 0, 5.0, 'driving again after the replug')
    node.trigger_deactivate()
    wait_for(lambda: sim.base.last_command == (0, 0), 2.0, 'deactivate to stop the base')
    wait_for(lambda: sim.state()['wheel_speeds'] == [0.0, 0.0], 3.0, 'the wheels to stop')
    count, sent = sim.base.commands_received, operator.sent
    wait_for(lambda: operator.sent >= sent + 10, 5.0, 'more cmd_vel while inactive')
    assert sim.base.commands_received == count and sim.base.last_command == (0, 0)   # nothing written



def test_a_second_publisher_on_cmd_vel_stops_the_base_until_it_is_gone(node_and_sim, ros_context, spin):
    # Attack (session 13): a teleop, a replay with --include-commands or a second stack publishing
    # /cmd_vel beside the collision monitor: the base followed whichever spoke last, so the monitor's
    # stop (0) was undone 50 ms later by the other's 0.2 m/s and the robot crept into what it stopped for.
    node, operator, sim = node_and_sim
    operator.drive(0.2, 0.0)
    wait_for(lambda: sim.base.last_command[0] > 0, 5.0, 'driving with one publisher')
    operator.drive(0.0, 0.0)                       # the collision monitor: stop, something is in the way
    wait_for(lambda: sim.state()['wheel_speeds'] == [0.0, 0.0], 5.0, 'the base to stop')
    x0 = sim.state()['pose'][0]
    other = Operator(context=ros_context)         # a second commander: 0.2 m/s on the same /cmd_vel
    spin(other)
    wait_for(lambda: node.count_publishers('/cmd_vel') == 2, 5.0, 'the base to see two publishers on /cmd_vel')
    other.drive(0.2, 0.0)
    wait_for(lambda: other.sent >= 40, 10.0, 'two seconds of 0.2 m/s from the second commander')
    assert abs(sim.state()['pose'][0] - x0) < 0.01
    assert sim.base.last_command == (0, 0)
    wait_for(lambda: any(s.name == 'navigation/base: serial link' and 'publishers on /cmd_vel' in s.message
                         for a in operator.diagnostics for s in a.status), 5.0, 'diagnostics naming the two publishers')
    other.sending = False
    other.destroy_publisher(other.cmd_pub)
    wait_for(lambda: node.count_publishers('/cmd_vel') == 1, 5.0, 'one publisher left')
    operator.drive(0.2, 0.0)
    wait_for(lambda: sim.base.last_command[0] > 0, 5.0, 'driving again once one publisher is left')


def test_a_bumper_hit_while_inactive_is_published_and_holds_the_base_after_activation(node_and_sim):
    # Attack (session 13): the core latched a bumper hit that came while the node was inactive, but
    # /navigation/safety was only published on a change while active: after activation it still
    # said 'not latched', so the guide took goals, the screen showed nothing to reset and the
    # base silently refused every command.
    node, operator, sim = node_and_sim
    wait_for(lambda: operator.safety and not operator.safety[-1].latched, 5.0, 'the initial safety state')
    node.trigger_deactivate()
    sim.handle_control({'cmd': 'bumper', 'bits': p.BUMPER_LEFT})
    wait_for(lambda: node.core.safety.latched, 5.0, 'the core to latch the bumper hit')
    wait_for(lambda: operator.safety[-1].latched, 5.0, 'the latch published while inactive')
    sim.handle_control({'cmd': 'bumper', 'bits': 0})
    wait_for(lambda: not node.core.safety.bumper, 5.0, 'the bumper released')
    node.trigger_activate()
    operator.drive(0.2, 0.0)
    sent = operator.sent
    wait_for(lambda: operator.sent >= sent + 20, 5.0, 'a second of commands after activation')
    assert operator.safety[-1].latched and 'reset to drive' in operator.safety[-1].reason
    assert sim.base.last_command == (0, 0)
