"""System test: the real manager node on DDS, with a real Recommend service server and a real
GuideTo action server in the test, and a customer typed in through /dialogue/utterances."""
import json

from rclpy.action import ActionServer
from rclpy.node import Node
from std_msgs.msg import String

from retail_common.catalog import load_catalog
from retail_dialogue.manager_node import DEFAULT_STORE, ManagerNode
from retail_interfaces.action import GuideTo
from retail_interfaces.msg import (CustomerEvent, InteractionEvent, PlaceArrival, RecommendedItem, RobotReply,
                                   Utterance)
from retail_interfaces.srv import Recommend
from rostest_support import wait_for


class FakeStore(Node):
    """A recommender over the demo catalog and a navigation that arrives at once."""

    def __init__(self, **kwargs):
        super().__init__('fake_store', **kwargs)
        self.catalog = load_catalog(f'{DEFAULT_STORE}/catalog.csv')
        self.requests, self.goals, self.replies, self.events, self.staff = [], [], [], [], []
        self.create_service(Recommend, '/recommendation/recommend', self._recommend)
        ActionServer(self, GuideTo, '/navigation/guide_to', self._guide)
        self.arrivals = self.create_publisher(PlaceArrival, '/navigation/arrivals', 10)
        self.customers = self.create_publisher(CustomerEvent, '/perception/customer_events', 10)
        self.utterances = self.create_publisher(Utterance, '/dialogue/utterances', 10)
        self.create_subscription(RobotReply, '/dialogue/replies', self.replies.append, 10)
        self.create_subscription(InteractionEvent, '/sync/interaction_events', self.events.append, 50)
        self.create_subscription(String, '/dialogue/staff_requests', self.staff.append, 10)

    def _recommend(self, request, response):
        self.requests.append(request)
        items = [p for p in self.catalog.products if p.category == request.category and p.in_stock
                 and p.price_cny <= request.max_price_cny][:request.k]
        response.success = True
        response.items = [RecommendedItem(sku=p.sku, name_zh=p.name_zh, name_en=p.name_en, category=p.category,
                                          brand=p.brand, price_cny=p.price_cny, zone=p.zone, score=1.0,
                                          reason_zh='销量好', reason_en='popular') for p in items]
        return response

    def _guide(self, goal_handle):
        self.goals.append(goal_handle.request.zone)
        feedback = GuideTo.Feedback(distance_remaining_m=12.0, eta_s=10.0, state='driving')
        goal_handle.publish_feedback(feedback)
        self.arrivals.publish(PlaceArrival(zone=goal_handle.request.zone, stop_count=1))
        goal_handle.succeed()
        return GuideTo.Result(success=True, reason='arrived', distance_travelled_m=12.0)

    def say(self, text, track=11):
        self.utterances.publish(Utterance(text=text, language='zh', is_final=True, confidence=0.9, track_id=track))


def test_member_phone_recommendation_and_guiding_over_ros(ros_context, spin):
    manager = ManagerNode(context=ros_context)
    store = FakeStore(context=ros_context)
    spin(manager, store)
    wait_for(lambda: manager.recommend_client.service_is_ready() and manager.guide_client.server_is_ready()
             and store.count_subscribers('/dialogue/utterances') and manager.count_publishers('/perception/customer_events'),
             what='manager sees the recommendation service and the guide action')
    store.customers.publish(CustomerEvent(kind=CustomerEvent.IDENTIFIED, track_id=11, customer_id='c042',
                                          display_name='王丽', vip=False, confidence=0.9))
    wait_for(lambda: any('王丽' in r.text for r in store.replies), what='greeting by name')
    store.say('帮我推荐一款三千以下的手机')
    wait_for(lambda: any(r.intent == 'recommend' for r in store.replies), what='recommendation reply')
    [request] = store.requests
    assert (request.customer_id, request.category, request.max_price_cny, request.k) == ('c042', 'phone', 3000.0, 3)
    reply = [r for r in store.replies if r.intent == 'recommend'][-1]
    assert reply.text.count('销量好') == 3 and reply.track_id == 11
    store.say('好的')
    wait_for(lambda: any('到了' in r.text for r in store.replies), what='arrival narration')
    assert store.goals == ['phones']
    turns = [json.loads(e.payload_json) for e in store.events if e.type == 'dialogue_turn']
    assert [t['intent'] for t in turns] == ['recommend', 'affirm'] and all('text' not in t for t in turns)
    assert all(e.customer_pseudonym == 'c042' and e.source == 'dialogue/manager' for e in store.events)
    store.customers.publish(CustomerEvent(kind=CustomerEvent.LEFT, track_id=11))
    wait_for(lambda: any(e.type == 'session_end' for e in store.events), what='session end on leaving')


def test_chat_ros_talks_to_the_running_robot_as_a_member(ros_context, spin, ros_env):
    import subprocess
    from rostest_support import BIN
    manager = ManagerNode(context=ros_context)
    store = FakeStore(context=ros_context)
    spin(manager, store)
    wait_for(lambda: manager.recommend_client.service_is_ready() and manager.guide_client.server_is_ready(),
             10, 'recommend and guide servers')
    out = subprocess.run([str(BIN / 'retailbot'), 'chat', '--ros', '--member', 'c042:王丽',
                          '--say', '帮我推荐一款三千以下的手机', '--say', '好的'],
                         env=ros_env, capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith('robot (zh, greet)') and '王丽' in line for line in lines), out.stdout
    assert any(line.startswith('robot (zh, recommend)') and '元' in line for line in lines), out.stdout
    assert any('[recommendation]' in line for line in lines) and '[robot arrived at phones]' in out.stdout
    assert lines[-1] == '[customer left]'
    assert store.goals == ['phones']
    wait_for(lambda: not manager.core.sessions, 10, 'the robot to know the customer left')


def test_chat_ros_without_a_robot_says_so(ros_env):
    import subprocess
    from rostest_support import BIN
    out = subprocess.run([str(BIN / 'retailbot'), 'chat', '--ros', '--timeout', '2', '--say', '你好'],
                         env=ros_env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and 'no robot is listening on /dialogue/utterances' in out.stdout
