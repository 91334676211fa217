"""GuideTo end to end on the real stack: guide node -> /cmd_vel -> base driver -> pty -> simulated base
(demo store map, starting on the dock) -> feedback -> /odom -> guide node."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_guide_node import Client, people_at, result_of  # noqa: E402

from retail_common.store import load_store  # noqa: E402
from retail_interfaces.action import GuideTo  # noqa: E402
from retail_navigation.base_driver_node import BaseDriverNode  # noqa: E402
from retail_navigation.guide_node import GuideNode  # noqa: E402
from retail_navigation.maps import load_map  # noqa: E402
from rostest_support import wait_for  # noqa: E402

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def stack(ros_context, spin, base_sim):
    zones = load_store(DEMO).zones
    dock = zones['dock'].pose
    sim = base_sim(load_map(DEMO / 'map.yaml'), dock, dock_pose=dock)
    driver = BaseDriverNode(context=ros_context, namespace='navigation',
                            parameter_overrides=[Parameter('port', value=str(sim.link))])
    guide = GuideNode(context=ros_context, namespace='navigation',
                      parameter_overrides=[Parameter('store_dir', value=str(DEMO)),
                                           Parameter('blocked_timeout_s', value=2.0),
                                           Parameter('localization', value=False),
                                           Parameter('cmd_vel_topic', value='/cmd_vel'),
                                           Parameter('scan_topic', value=''),
                                           Parameter('replan_after_s', value=0.5)])
    client = Client(context=ros_context)
    spin(driver, guide, client)
    assert driver.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert driver.trigger_activate() == TransitionCallbackReturn.SUCCESS
    wait_for(lambda: guide._pose is not None, 10, 'odometry reaching the guide')
    return sim, guide, client, zones


def test_guides_the_simulated_base_to_the_service_desk(stack):
    sim, guide, client, zones = stack
    result = result_of(client.send(client.guide, GuideTo.Goal(zone='service_desk')), 60)
    assert result.success and result.reason == 'arrived', result.reason
    target = zones['service_desk'].pose
    truth = sim.state()['pose']                    # the simulator's ground truth, in the map frame
    assert math.hypot(truth[0] - target[0], truth[1] - target[1]) < 0.25
    assert abs(math.remainder(truth[2] - target[2], math.tau)) < 0.4
    assert not sim.state().get('bumper') and any(a.zone == 'service_desk' for a in client.arrivals)


def test_cancel_stops_the_simulated_base(stack):
    sim, guide, client, _ = stack
    handle = client.send(client.guide, GuideTo.Goal(zone='kitchen'))
    wait_for(lambda: any(f.state == 'driving' for f in client.feedback) and sim.state()['wheel_speeds'][0] > 0.1,
             20, 'the base driving')
    handle.cancel_goal_async()
    assert result_of(handle, 10).reason == 'cancelled'
    wait_for(lambda: sim.state()['wheel_speeds'] == [0.0, 0.0], 5, 'the wheels to stop')


def test_blocked_path_is_reported(stack):
    sim, guide, client, _ = stack
    # in the restroom corridor, the only way there (stamped now: people are judged by their stamps)
    timer = client.create_timer(0.2, lambda: client.people.publish(people_at((2.3, 15.0), node=client)))
    wait_for(lambda: guide.costmap.people(), 10, 'the guide seeing the person')
    result = result_of(client.send(client.guide, GuideTo.Goal(zone='restroom')), 30)
    timer.cancel()
    assert result.reason == 'blocked'
    assert sim.state()['wheel_speeds'] == [0.0, 0.0]
