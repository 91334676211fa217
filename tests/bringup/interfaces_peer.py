"""The other process of the interface tests: serves Recommend and GuideTo, echoes CustomerEvent."""
import sys
import time

from rclpy.action import ActionServer
from rclpy.node import Node

from retail_ros.node_support import run_node
from retail_interfaces.action import GuideTo
from retail_interfaces.msg import CustomerEvent, RecommendedItem
from retail_interfaces.srv import Recommend


class Peer(Node):
    def __init__(self):
        super().__init__('interfaces_peer')
        self.echo = self.create_publisher(CustomerEvent, 'events_echo', 10)
        self.create_subscription(CustomerEvent, 'events', self.echo.publish, 10)
        self.create_service(Recommend, 'recommend', self.recommend)
        ActionServer(self, GuideTo, 'guide_to', self.guide)

    def recommend(self, request, response):
        response.success = True
        response.items = [RecommendedItem(sku=f'{request.category}-{i}', brand=request.brand,
                                          price_cny=request.max_price_cny - i, reason_en='test')
                          for i in range(request.k)]
        return response

    def guide(self, handle):
        for remaining in (3.0, 2.0, 1.0):
            handle.publish_feedback(GuideTo.Feedback(distance_remaining_m=remaining, state='driving'))
            time.sleep(0.05)
        handle.succeed()
        return GuideTo.Result(success=True, reason=f'arrived at {handle.request.zone}',
                              distance_travelled_m=3.0)


if __name__ == '__main__':
    sys.exit(run_node(Peer))
