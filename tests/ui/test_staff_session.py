"""The console's session state on the graph: /ui/staff_session (latched std_msgs/Bool) says whether
a staff member is logged in, so the Foxglove camera view shows faces only then."""
from __future__ import annotations

from std_msgs.msg import Bool

from retail_common import names
from retail_ros.qos import LATCHED
from rostest_support import wait_for
from ui_support import STAFF_PASSWORD


def test_login_and_logout_reach_the_graph(ui_server, ros_context, spin):
    import rclpy
    node, _ = ui_server()
    seen: list[bool] = []
    listener = rclpy.create_node('staff_session_listener', context=ros_context)
    listener.create_subscription(Bool, names.STAFF_SESSION, lambda m: seen.append(m.data), LATCHED)
    spin(listener)
    wait_for(lambda: seen and seen[-1] is False, 20, 'nobody logged in (latched, before any login)')
    login = node.auth.login('127.0.0.1', STAFF_PASSWORD)
    assert login.ok
    wait_for(lambda: seen[-1] is True, 20, 'a staff member logged in')
    node.auth.logout(login.token)
    wait_for(lambda: seen[-1] is False, 20, 'logged out again')
