"""System test: the real manager node on DDS, with a real Recommend service server and real
GuideTo and Tour action servers in the test, and a customer typed in through /dialogue/utterances."""
import json
import shutil
import threading

from rclpy.action import ActionServer, CancelResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.parameter import Parameter
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from retail_common.catalog import load_catalog
from retail_dialogue.manager_node import DEFAULT_STORE, ManagerNode
from retail_common.store import load_store
from retail_interfaces.action import GuideTo, Tour
from retail_interfaces.msg import (BaseSafety, CustomerEvent, DataUpdate, InteractionEvent, PlaceArrival,
                                   RecommendedItem, RobotReply, StaffRequest, Utterance)
from retail_interfaces.srv import EnrollFace, Recommend
from rostest_support import wait_for


class FakeStore(Node):
    """A recommender over the demo catalog and a navigation that arrives at once."""

    def __init__(self, recommender: bool = True, **kwargs):
        super().__init__('fake_store', **kwargs)
        self.catalog = load_catalog(f'{DEFAULT_STORE}/catalog.csv')
        self.requests, self.goals, self.replies, self.events, self.staff = [], [], [], [], []
        if recommender:
            self.create_service(Recommend, '/recommendation/recommend', self._recommend)
        self.enrolments = []
        self.create_service(EnrollFace, '/perception/enroll_face', self._enrol)
        ActionServer(self, GuideTo, '/navigation/guide_to', self._guide)
        self.tour_stops = [stop.zone for stop in load_store(DEFAULT_STORE).tours['showroom']]
        self.tour_started = threading.Event()
        self.tour_go_on = threading.Semaphore(0)        # the test lets the robot drive on, stop by stop
        self.tour_cancelled = threading.Event()
        ActionServer(self, Tour, '/navigation/tour', self._tour, cancel_callback=lambda handle: CancelResponse.ACCEPT,
                     callback_group=ReentrantCallbackGroup())
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
        self.safety = self.create_publisher(BaseSafety, '/navigation/safety', latched)
        self.updates = self.create_publisher(DataUpdate, '/sync/data_updates', QoSProfile(
            depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE))
        self.arrivals = self.create_publisher(PlaceArrival, '/navigation/arrivals', 10)
        self.customers = self.create_publisher(CustomerEvent, '/perception/customer_events', 10)
        self.utterances = self.create_publisher(Utterance, '/dialogue/utterances', 10)
        self.create_subscription(RobotReply, '/dialogue/replies', self.replies.append, 10)
        self.create_subscription(InteractionEvent, '/sync/interaction_events', self.events.append, 50)
        self.create_subscription(StaffRequest, '/dialogue/staff_requests', self.staff.append, 10)

    def _recommend(self, request, response):
        self.requests.append(request)
        items = [p for p in self.catalog.products if p.category == request.category and p.in_stock
                 and p.price_cny <= request.max_price_cny][:request.k]
        response.success = True
        response.items = [RecommendedItem(sku=p.sku, name_zh=p.name_zh, name_en=p.name_en, category=p.category,
                                          brand=p.brand, price_cny=p.price_cny, zone=p.zone, score=1.0,
                                          reason_zh='销量好', reason_en='popular') for p in items]
        return response

    def _enrol(self, request, response):
        self.enrolments.append(request)
        response.success, response.message = bool(request.consent_ref), 'enrolled'
        return response

    def _guide(self, goal_handle):
        self.goals.append(goal_handle.request.zone)
        feedback = GuideTo.Feedback(distance_remaining_m=12.0, eta_s=10.0, state='driving')
        goal_handle.publish_feedback(feedback)
        self.arrivals.publish(PlaceArrival(zone=goal_handle.request.zone, stop_count=1))
        goal_handle.succeed()
        return GuideTo.Result(success=True, reason='arrived', distance_travelled_m=12.0)

    def _tour(self, goal_handle):
        self.tour_started.set()
        for index, zone in enumerate(self.tour_stops):
            while not self.tour_go_on.acquire(timeout=0.05):
                if goal_handle.is_cancel_requested:
                    self.tour_cancelled.set()
                    goal_handle.canceled()
                    return Tour.Result(success=False, reason='cancelled', stops_visited=index)
            if index < len(self.tour_stops) - 1:
                goal_handle.publish_feedback(Tour.Feedback(stop_index=index, stop_count=len(self.tour_stops), zone=zone,
                                                           state='presenting'))
        goal_handle.succeed()
        return Tour.Result(success=True, reason='arrived', stops_visited=len(self.tour_stops))

    def texts(self, track=11):
        return [r.text for r in self.replies if r.track_id == track]

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
    assert [t['intent'] for t in turns] == ['recommend', 'guide_to'] and all('text' not in t for t in turns)
    assert turns[1]['guide_to'] == 'phones' and len(turns[0]['slots']) == 2
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


def _ready(manager, store):
    wait_for(lambda: manager.recommend_client.service_is_ready() and manager.guide_client.server_is_ready()
             and manager.tour_client.server_is_ready() and store.count_subscribers('/dialogue/utterances')
             and manager.count_publishers('/perception/customer_events'), timeout=30,
             what='manager sees the store and navigation')


def _greeted_customer(ros_context, spin, **params):
    """The manager node (with `params`) and the fake store, running; a customer on track 11, greeted."""
    manager = ManagerNode(context=ros_context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    store = FakeStore(context=ros_context)
    spin(manager, store)
    _ready(manager, store)
    store.customers.publish(CustomerEvent(kind=CustomerEvent.APPEARED, track_id=11))
    wait_for(lambda: store.texts(), what='greeting')
    return manager, store


def test_tour_narrates_every_stop_and_stops_mid_way_over_ros(ros_context, spin):
    manager, store = _greeted_customer(ros_context, spin)
    store.say('带我参观一下')
    wait_for(store.tour_started.is_set, what='the Tour goal')
    store.tour_go_on.release()
    wait_for(lambda: any(t.startswith('这里是手机数码区') for t in store.texts()), what='narration of stop 1')
    store.say('iPhone 16多少钱')                                  # a question on the way: answered, the tour goes on
    wait_for(lambda: any('5999元' in t for t in store.texts()), what='the answer mid-tour')
    store.tour_go_on.release()
    wait_for(lambda: any(t.startswith('这里是电脑办公区') for t in store.texts()), what='narration of stop 2')
    store.say('结束参观')
    wait_for(store.tour_cancelled.is_set, what='the tour goal cancelled')
    wait_for(lambda: any('参观到这里结束' in t for t in store.texts()), what='the end of the tour said')
    assert sum(t.startswith('这里是') for t in store.texts()) == 2
    tours = [json.loads(e.payload_json) for e in store.events if e.type == 'tour']
    assert [t['status'] for t in tours][:2] == ['started', 'stopped']


def test_whole_tour_narrates_the_last_stop_from_the_result(ros_context, spin):
    manager, store = _greeted_customer(ros_context, spin)
    store.say('show me around')
    wait_for(store.tour_started.is_set, what='the Tour goal')
    narrations = [stop.narration_en for stop in manager.core.store.tours['showroom']]
    assert all(narrations)

    def narrated():
        return [n for n in narrations if any(t.startswith(n) for t in store.texts())]
    for n in range(1, len(store.tour_stops)):       # the robot drives on after each stop's narration
        store.tour_go_on.release()
        wait_for(lambda: len(narrated()) == n, what=f'narration of stop {n}')
    store.tour_go_on.release()
    wait_for(lambda: any('end of the tour' in t for t in store.texts(11)), what='the end of the tour')
    assert narrated() == narrations                 # every stop, the last one from the Tour result, in order


def test_no_follow_me_while_the_base_is_latched_over_ros(ros_context, spin):
    manager = ManagerNode(context=ros_context)
    store = FakeStore(context=ros_context)
    store.safety.publish(BaseSafety(bumper_centre=True, latched=True, reason='bumper'))
    spin(manager, store)
    _ready(manager, store)
    wait_for(lambda: manager.core.safety_latched, what='the latched safety state')
    store.customers.publish(CustomerEvent(kind=CustomerEvent.APPEARED, track_id=11))
    wait_for(lambda: store.texts(), what='greeting')
    store.say('带我去收银台')
    wait_for(lambda: store.staff, what='a staff request')
    assert not store.goals and not any('跟我来' in t for t in store.texts())
    assert store.staff[-1].reason == 'robot_safety_stop' and store.staff[-1].language in ('zh', 'en')
    store.safety.publish(BaseSafety(latched=False))
    wait_for(lambda: not manager.core.safety_latched, what='the safety state cleared')
    store.say('带我去收银台')
    wait_for(lambda: store.goals == ['checkout'], what='the guide goal once the base may move')


def test_new_catalog_from_the_sync_is_quoted_in_the_next_answer(ros_context, spin, tmp_path):
    shop = tmp_path / 'store'
    shutil.copytree(DEFAULT_STORE, shop)
    manager, store = _greeted_customer(ros_context, spin, store_dir=str(shop), data_dir=str(tmp_path / 'data'))
    store.say('iPhone 16多少钱')
    wait_for(lambda: any('5999元' in t for t in store.texts()), what='the old price')
    platform = tmp_path / 'data' / 'platform'
    platform.mkdir(parents=True)
    catalog = (shop / 'catalog.csv').read_text(encoding='utf-8').replace(',5999.00,', ',5499.00,')
    (platform / 'catalog.csv').write_text(catalog, encoding='utf-8')
    store.updates.publish(DataUpdate(kind='catalog', path=str(platform / 'catalog.csv'), version='v2'))
    wait_for(lambda: manager.core.store.catalog.by_sku['AP-IP16'].price_cny == 5499.0, what='the new catalog')
    store.say('它多少钱')                                            # same conversation, new price
    wait_for(lambda: any('5499元' in t for t in store.texts()), what='the new price quoted')
    assert 11 in manager.core.sessions


def test_words_said_before_the_camera_lost_the_customer_are_answered_over_ros(ros_context, spin):
    """The stamps decide, not the order the two topics arrive in: words whose speech ended before
    the camera's loss are answered; words after it are not."""
    from builtin_interfaces.msg import Time
    manager, store = _greeted_customer(ros_context, spin)
    store.customers.publish(CustomerEvent(kind=CustomerEvent.LEFT, track_id=11))    # unstamped: at once
    wait_for(lambda: 11 not in manager.core.sessions, what='the first customer gone')
    store.customers.publish(CustomerEvent(kind=CustomerEvent.APPEARED, track_id=12))
    wait_for(lambda: store.texts(12), what='greeting the second customer')
    lost = CustomerEvent(kind=CustomerEvent.LEFT, track_id=12)
    lost.header.stamp = Time(sec=1000)
    store.customers.publish(lost)
    wait_for(lambda: 12 not in manager.core.sessions, what='the camera losing the second customer')
    after = Utterance(text='电视在哪里', language='zh', is_final=True, confidence=0.9, track_id=12)
    after.end = Time(sec=1001)
    before = Utterance(text='iPhone 16多少钱', language='zh', is_final=True, confidence=0.9, track_id=12)
    before.end = Time(sec=999)
    store.utterances.publish(after)
    store.utterances.publish(before)
    wait_for(lambda: any('5999元' in t for t in store.texts(12)), what='the words said before the loss answered')
    assert not any('电视' in t for t in store.texts(12))


def test_customers_are_answered_while_a_new_catalogs_words_are_built(ros_context, spin, tmp_path, monkeypatch):
    """The words of a new catalog take seconds to build on a busy robot: the store in use answers
    meanwhile (a dialogue blocked building them missed a VIP's "yes, take me there")."""
    import retail_dialogue.manager_node as manager_node
    building, finish = threading.Event(), threading.Event()
    real_nlu = manager_node.Nlu

    def slow_nlu(catalog, zones):
        building.set()
        finish.wait(60)
        return real_nlu(catalog, zones)
    monkeypatch.setattr(manager_node, 'Nlu', slow_nlu)
    shop = tmp_path / 'store'
    shutil.copytree(DEFAULT_STORE, shop)
    manager, store = _greeted_customer(ros_context, spin, store_dir=str(shop), data_dir=str(tmp_path / 'data'))
    platform = tmp_path / 'data' / 'platform'
    platform.mkdir(parents=True)
    catalog = (shop / 'catalog.csv').read_text(encoding='utf-8').replace(',5999.00,', ',5499.00,')
    (platform / 'catalog.csv').write_text(catalog, encoding='utf-8')
    store.updates.publish(DataUpdate(kind='catalog', path=str(platform / 'catalog.csv'), version='v2'))
    wait_for(building.is_set, what="the new catalog's words being built")
    store.say('iPhone 16多少钱')
    wait_for(lambda: any('5999元' in t for t in store.texts()), what='an answer from the store in use meanwhile')
    finish.set()
    wait_for(lambda: manager.core.store.catalog.by_sku['AP-IP16'].price_cny == 5499.0, what='the new catalog')
    store.say('它多少钱')
    wait_for(lambda: any('5499元' in t for t in store.texts()), what='the new price quoted')
    assert 11 in manager.core.sessions


def test_chat_ros_json(ros_context, spin, ros_env):
    import subprocess
    from rostest_support import BIN
    manager = ManagerNode(context=ros_context)
    store = FakeStore(context=ros_context)
    spin(manager, store)
    _ready(manager, store)
    out = subprocess.run([str(BIN / 'retailbot'), 'chat', '--ros', '--json', '--member', 'c042:王丽',
                          '--say', '帮我推荐一款三千以下的手机', '--say', '好的'],
                         env=ros_env, capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stdout + out.stderr
    turns = [json.loads(line) for line in out.stdout.splitlines()]
    assert [t['said'] for t in turns] == ['帮我推荐一款三千以下的手机', '好的']
    first, second = turns
    assert set(first) == {'said', 'reply', 'lang', 'intent', 'slots', 'products', 'guide_to', 'tour', 'staff_called'}
    assert first['intent'] == 'recommend' and first['lang'] == 'zh' and len(first['products']) == 3
    assert all(p['zone'] == 'phones' and p['price_cny'] <= 3000 for p in first['products'])
    assert second['guide_to'] == 'phones' and second['staff_called'] is False


def test_enrolment_after_consent_over_ros(ros_context, spin):
    manager, store = _greeted_customer(ros_context, spin)
    wait_for(manager.enrol_client.service_is_ready, what='the enrolment service')
    store.say('我想注册会员')
    wait_for(lambda: any('同意' in t for t in store.texts()), what='the consent notice')
    assert not store.enrolments
    store.say('同意，我叫李雷')
    wait_for(lambda: store.enrolments and any('下次见面' in t for t in store.texts()), what='enrolled')
    [request] = store.enrolments
    assert request.track_id == 11 and request.display_name == '李雷' and request.consent_ref
    consents = [e for e in store.events if e.type == 'consent']
    assert consents and consents[0].customer_pseudonym == request.customer_id
    assert manager.core.sessions[11].customer_id == request.customer_id


def test_chat_ros_is_answered_while_the_robot_shows_another_shopper_around(ros_context, spin, ros_env):
    """Issue 21 first day: the camera's shopper (track 11) is on a tour, so the robot greets nobody
    else; `retailbot chat --ros --say` still gets its answer (typed text needs no greeting)."""
    import subprocess
    from rostest_support import BIN
    manager, store = _greeted_customer(ros_context, spin)
    store.say('带我参观一下')
    assert store.tour_started.wait(30), 'the tour started'
    out = subprocess.run([str(BIN / 'retailbot'), 'chat', '--ros', '--say', '空气炸锅在哪里'],
                         env=ros_env, capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stdout + out.stderr
    answers = [line for line in out.stdout.splitlines() if line.startswith('robot (zh, find_product)')]
    assert answers and '空气炸锅' in answers[0], out.stdout
    assert 'did not greet' in out.stdout
    store.say('结束参观')
    assert store.tour_cancelled.wait(30), "the shopper's tour is theirs to end"


class LateRecommender(Node):
    """The recommendation server, started after the customer asked (a robot just booting)."""

    def __init__(self, store: FakeStore, **kwargs):
        super().__init__('late_recommender', **kwargs)
        self.create_service(Recommend, '/recommendation/recommend', store._recommend)


def _floor_without_recommender(ros_context, spin, **params):
    manager = ManagerNode(context=ros_context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    store = FakeStore(recommender=False, context=ros_context)
    spin(manager, store)
    wait_for(lambda: store.count_subscribers('/dialogue/utterances') and manager.count_publishers(
        '/perception/customer_events'), timeout=30, what='manager listening')
    assert not manager.recommend_client.service_is_ready()
    store.customers.publish(CustomerEvent(kind=CustomerEvent.IDENTIFIED, track_id=11, customer_id='c042',
                                          display_name='王丽', vip=False, confidence=0.9))
    wait_for(lambda: store.texts(), what='greeting')
    return manager, store


def test_a_question_waits_for_a_recommender_not_yet_there_without_blocking_the_node(ros_context, spin):
    manager, store = _floor_without_recommender(ros_context, spin, recommend_wait_s=60.0, greet_delay_s=0.0)
    store.say('帮我推荐一款三千以下的手机')
    wait_for(lambda: 11 in manager._waiting_recommend, what='the question waiting for the recommender')
    # the node goes on serving while it waits: another customer is greeted meanwhile
    store.customers.publish(CustomerEvent(kind=CustomerEvent.APPEARED, track_id=12))
    wait_for(lambda: store.texts(12), what='another customer greeted while the question waits')
    assert not [r for r in store.replies if r.intent == 'recommend'] and not store.staff
    spin(LateRecommender(store, context=ros_context))               # the recommender comes up
    wait_for(lambda: any(r.intent == 'recommend' and '销量好' in r.text for r in store.replies), timeout=30,
             what='the recommendation once the recommender is there')
    assert [r.category for r in store.requests] == ['phone'] and not store.staff
    wait_for(lambda: manager._waiting_recommend == {} and manager._in_flight_recommend == {}
             and manager._recommend_retry is None, what='nothing left waiting, the retry timer gone')


def test_staff_are_called_only_after_the_bound_when_no_recommender_comes(ros_context, spin):
    manager, store = _floor_without_recommender(ros_context, spin, recommend_wait_s=1.0)
    store.say('帮我推荐一款三千以下的手机')
    wait_for(lambda: 11 in manager._waiting_recommend, what='the question waiting for the recommender')
    waiting_since = manager.get_clock().now()
    staff = wait_for(lambda: store.staff, timeout=30, what='staff called after the bound')
    assert staff[0].reason == 'recommendation_unavailable' and staff[0].track_id == 11
    assert (manager.get_clock().now() - waiting_since).nanoseconds >= 0.8e9     # not before the bound
    wait_for(lambda: any(r.intent == 'recommend' for r in store.replies), what='the customer told')
    assert manager._waiting_recommend == {}


class MuteRecommender(Node):
    """A recommender that takes questions and never answers (a reply lost by DDS, a hung server):
    its callback awaits a future nobody completes, so the executor is never blocked."""

    def __init__(self, **kwargs):
        super().__init__('mute_recommender', **kwargs)
        self.asked = 0
        from rclpy.callback_groups import ReentrantCallbackGroup
        # reentrant: a question pending for ever does not keep the next one from being taken
        self.create_service(Recommend, '/recommendation/recommend', self._never,
                            callback_group=ReentrantCallbackGroup())

    async def _never(self, request, response):
        from rclpy.task import Future
        self.asked += 1
        await Future()
        return response


def test_a_question_the_recommender_never_answers_is_asked_again_then_given_up(ros_context, spin):
    """A reply that never comes (before: the customer waited for ever): asked again once after
    recommend_wait_s, then the customer is told and staff called, once."""
    manager, store = _floor_without_recommender(ros_context, spin, recommend_wait_s=1.0, greet_delay_s=0.0)
    mute = MuteRecommender(context=ros_context)
    spin(mute)
    wait_for(manager.recommend_client.service_is_ready, timeout=30, what='the mute recommender discovered')
    store.say('帮我推荐一款三千以下的手机')
    staff = wait_for(lambda: store.staff, timeout=30, what='staff called once the answer never came')
    assert staff[0].reason == 'recommendation_unavailable' and staff[0].track_id == 11
    assert mute.asked == 2                                       # asked, then asked again once
    wait_for(lambda: any(r.intent == 'recommend' for r in store.replies), what='the customer told')
    wait_for(lambda: manager._in_flight_recommend == {} and manager._recommend_retry is None,
             what='nothing left in flight')
    assert len(store.staff) == 1


def test_a_recognised_member_is_offered_her_campaign_with_the_greeting_over_ros(ros_context, spin, tmp_path):
    import time as _time
    platform = tmp_path / 'data' / 'platform'
    platform.mkdir(parents=True)
    campaign = {'id': 'tv-week', 'name': 'TV week', 'skus': ['MI-TVS65'], 'message_zh': '电视周：会员购买小米S65立减300元。',
                'message_en': 'TV week.', 'starts_at': _time.time() - 3600, 'ends_at': _time.time() + 86400,
                'members': ['c042']}
    (platform / 'campaigns.json').write_text(json.dumps({'version': 1, 'at': 0, 'store_id': 's-1',
                                                         'active': [campaign]}), encoding='utf-8')
    manager = ManagerNode(context=ros_context, parameter_overrides=[Parameter('data_dir', value=str(tmp_path / 'data'))])
    store = FakeStore(context=ros_context)
    spin(manager, store)
    _ready(manager, store)
    assert [c.id for c in manager.core.store.campaigns] == ['tv-week']
    store.customers.publish(CustomerEvent(kind=CustomerEvent.IDENTIFIED, track_id=11, customer_id='c042',
                                          display_name='王丽', vip=False, confidence=0.9))
    greeting = wait_for(lambda: next((r for r in store.replies if r.track_id == 11), None), what='greeting')
    assert greeting.intent == 'greet' and greeting.text.startswith('王丽您好') and '电视周' in greeting.text

    def of(kind):
        return [json.loads(e.payload_json) for e in list(store.events) if e.type == kind]
    offered = wait_for(lambda: of('campaign_offered'), what='campaign_offered')
    assert offered[0]['campaign_id'] == 'tv-week' and offered[0]['language'] == 'zh'
    store.say('好的')
    wait_for(lambda: of('campaign_accepted'), what='campaign_accepted')
    wait_for(lambda: store.goals, what='guided to the campaign\'s products')
    shop = manager.core.store
    assert store.goals == [shop.zone_of(shop.catalog.by_sku['MI-TVS65'])]
    wait_for(lambda: any('到了' in t for t in store.texts()), what='arrival')
    before = len(store.texts())
    store.say('你好')                                       # once per visit: not offered again
    wait_for(lambda: len(store.texts()) > before, what='answer to 你好')
    assert len(of('campaign_offered')) == 1
