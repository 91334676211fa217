"""retail_interfaces types work across processes: topic, service and action."""
import sys
from pathlib import Path

import pytest
import rclpy
from rclpy.action import ActionClient

from retail_interfaces.action import GuideTo
from retail_interfaces.msg import CustomerEvent
from retail_interfaces.srv import Recommend
from rostest_support import wait_for

pytestmark = pytest.mark.slow
PEER = Path(__file__).with_name('interfaces_peer.py')


@pytest.fixture
def peer(ros_env, processes):
    return processes([sys.executable, str(PEER)], env=ros_env)


def wait_future(future, what, timeout=15.0):
    wait_for(future.done, timeout=timeout, what=what)
    return future.result()


def test_topic_service_and_action_across_processes(peer, ros_context, spin):
    node = rclpy.create_node('interfaces_test', context=ros_context)
    echoed = []
    publisher = node.create_publisher(CustomerEvent, 'events', 10)
    node.create_subscription(CustomerEvent, 'events_echo', echoed.append, 10)
    client = node.create_client(Recommend, 'recommend')
    guide = ActionClient(node, GuideTo, 'guide_to')
    spin(node)

    wait_for(lambda: publisher.get_subscription_count() > 0 and node.count_publishers('events_echo') > 0,
             timeout=20, what='the peer process on the graph')
    event = CustomerEvent(kind=CustomerEvent.IDENTIFIED, track_id=7, customer_id='m-000001',
                          display_name='王女士', vip=True, confidence=0.93)

    def send_until_echoed():
        publisher.publish(event)
        return echoed
    wait_for(send_until_echoed, timeout=10, interval=0.2, what='the customer event echoed back')
    got = echoed[0]
    assert (got.kind, got.track_id, got.customer_id, got.display_name, got.vip) == \
        (CustomerEvent.IDENTIFIED, 7, 'm-000001', '王女士', True)

    assert client.wait_for_service(timeout_sec=10)
    response = wait_future(client.call_async(Recommend.Request(category='phone', brand='Huawei',
                                                               max_price_cny=3000.0, k=3)), 'Recommend reply')
    assert response.success and [i.sku for i in response.items] == ['phone-0', 'phone-1', 'phone-2']
    assert response.items[2].price_cny == pytest.approx(2998.0)

    assert guide.wait_for_server(timeout_sec=10)
    feedback = []
    goal = wait_future(guide.send_goal_async(GuideTo.Goal(zone='phones'),
                                             feedback_callback=lambda f: feedback.append(f.feedback)),
                       'GuideTo goal accepted')
    assert goal.accepted
    result = wait_future(goal.get_result_async(), 'GuideTo result').result
    assert result.success and result.reason == 'arrived at phones'
    assert [f.distance_remaining_m for f in feedback] == [3.0, 2.0, 1.0]
