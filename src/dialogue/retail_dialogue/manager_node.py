"""Node /dialogue/manager: wires customers, utterances, the store and the robot's missions to the core.

The core (manager.py) returns effects; this node carries them out and feeds the outcomes back:
- `Say` -> `/dialogue/replies`; `Record` -> EventSender (RecordEvents, acknowledged on disk; the
  topic copy is for observers only); `CallStaff` -> `/dialogue/staff_requests` (StaffRequest);
- `AskRecommendations` -> the Recommend service, asynchronously; the answer -> `on_recommendations`;
  a recommender not yet discovered is waited for on a retry timer (bounded: `recommend_wait_s`),
  never in a callback, and a question it does not answer within `recommend_wait_s` (a reply lost,
  a hung server) is asked again once; only then is the customer told and staff called;
- `StartGuide` -> the GuideTo action; its result is the one source of arrival (`on_guide_result`);
  feedback narrates the way now and then;
- `StartTour` -> the Tour action; feedback 'presenting' at a stop -> `on_tour_stop`, the result ->
  `on_tour_result`; `CancelMission` cancels the customer's running goal; `SkipStop` -> the guide's
  SkipTourStop service (the robot does not drive to a stop the customer skipped);
- a goal replaced by a newer one of the same customer (a new destination while guiding, a tour
  after a guide) is stale: its feedback and result are dropped, and a stale goal accepted late is
  cancelled, so only the current goal is ever announced;
- `Enrol` -> the EnrollFace service (only after the customer said yes to the consent notice);
  the answer -> `on_enrolled`;
- `/navigation/safety` (latched) -> `on_safety`, so nobody is told "please follow me" while the
  base is held stopped.
All callbacks are in the node's default (mutually exclusive) callback group, so the core is only
ever entered by one callback at a time and needs no lock.

The store is the store model's (`retail_common.store`, platform data in <data_dir>/platform
overlaid), kept by a LiveStore that `/sync/data_updates` reloads (`watch_store`); the new store
(catalog, prices, promotions, appointments, zones, tours) is used from the next turn on, and a
conversation in progress keeps its session.

Opening hours (retail_common.hours): the store folder's (zones.yaml `opening_hours`), unless the
live parameter `opening_hours` is set (the sync agent sets a rolled-out desired state's there,
retail_sync.live_settings; a bad value is refused whole with one line). The hours in effect go on
`/diagnostics` as `dialogue/opening_hours` (values.opening_hours) every DIAGNOSTICS_PERIOD_S, and
the sync agent's heartbeat carries them to the platform (its funnel counts availability with them).
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.action import ActionClient
from rclpy.node import Node

from retail_ros.qos import LATCHED, REPLIES_QOS
from retail_common import names
from retail_ros.event_sender import EventSender
from retail_common.hours import parse_hours
from retail_ros.node_support import declare_params, diagnostic_status, live_store_for, main_for, watch_store
from retail_ros.params import ParamSpec
from retail_interfaces.action import GuideTo, Tour
from retail_interfaces.msg import BaseSafety, CustomerEvent, ListenContext, RobotReply, StaffRequest, Utterance

from retail_interfaces.srv import EnrollFace, Recommend, SkipTourStop

from .catalog_match import HeardProduct
from .manager import (AskRecommendations, CallStaff, CancelMission, DialogueManager, Effect, Enrol, Record,
                      RecommendedProduct, Say, SkipStop, StartGuide, StartTour, same_words)
from .nlu import Nlu

# An utterance whose header.frame_id is one of these was typed or touched by the person at the
# robot (not heard): it joins the current conversation or starts one (DialogueManager.on_utterance).
TYPED_INPUT_FRAMES = ('touch', 'typed')

DEFAULT_STORE = str(Path(__file__).resolve().parents[3] / 'config' / 'stores' / 'demo')
SPECS = [
    ParamSpec('store_dir', DEFAULT_STORE, 'Store data directory (catalog.csv, zones.yaml, appointments.json).'),
    ParamSpec('data_dir', '', "Robot data directory; the sync's downlinked store data is in <data_dir>/platform "
                              "('' = the store directory only)."),
    ParamSpec('silence_timeout_s', 60.0, 'A session with no words for this long is closed politely (s).', min=5.0, max=3600.0),
    ParamSpec('greet_delay_s', 2.0, 'A person the camera has not named yet is greeted after this long, so a member '
                                    'is greeted once, by name (s).', min=0.0, max=10.0),
    ParamSpec('privacy_store_raw_text', False, "Put the customer's words in interaction events (store's privacy setting)."),
    ParamSpec('default_language', 'zh', 'Language of greetings before the customer speaks.', choices=['zh', 'en']),
    ParamSpec('confirm_below', 0.5, 'A product the speech recogniser heard less surely than this (0..1) is '
                                    'confirmed with the customer ("您是说…吗？") instead of guessed.', min=0.0, max=1.0),
    ParamSpec('recommend_wait_s', 5.0, 'A question waits this long for a recommender not yet discovered (retried '
                                       'every 0.1 s, never blocking) before the customer is told and staff called (s).',
              min=0.0, max=60.0),
    ParamSpec('narration_period_s', 10.0, 'Least time between two "on the way" narrations while guiding (s).', min=1.0, max=600.0),
    ParamSpec('opening_hours', '', "The store's opening hours HH:MM-HH:MM, local time ('10:00-01:00' closes after "
                                   "midnight; '' = the store folder's zones.yaml opening_hours); live: a rolled-out "
                                   'desired state sets it.', read_only=False, check=lambda v: v and parse_hours(v, 'opening hours')),
]
DIAGNOSTICS_PERIOD_S = 5.0      # how often the hours in effect are published on /diagnostics
HOURS_STATUS = 'dialogue/opening_hours'      # retail_sync.fleet.HOURS_STATUS reads it
SOURCE = 'dialogue/manager'
RECOMMEND_RETRY_S = 0.1      # how often a question waiting for the recommender looks for it again
RECOMMEND_ATTEMPTS = 2       # a question asked, then asked again once when no answer came in recommend_wait_s


def staff_request_msg(request: dict, stamp) -> StaffRequest:
    """The `CallStaff` effect's request as the StaffRequest message the staff console reads."""
    wanted = request.get('wanted') or {}
    msg = StaffRequest(reason=str(request.get('reason', '')), track_id=int(request.get('track_id', 0)),
                       customer_pseudonym=str(request.get('customer_pseudonym', '')),
                       language=str(request.get('language', '')), looking_for=str(wanted.get('looking_for', '')),
                       product=str(wanted.get('product', '')), product_name=str(wanted.get('product_name', '')),
                       zone=str(wanted.get('zone', '')), shown=[str(s) for s in wanted.get('shown', ())],
                       recent=[str(r) for r in wanted.get('recent', ())],
                       appointment_id=str(request.get('appointment_id', '')), staff=str(request.get('staff', '')),
                       meeting_point=str(request.get('meeting_point', '')))
    msg.header.stamp = stamp
    return msg


def _seconds(stamp) -> float | None:
    """A message stamp in seconds; None when unstamped (zero)."""
    return stamp.sec + stamp.nanosec * 1e-9 if stamp.sec or stamp.nanosec else None


class ManagerNode(Node):
    def __init__(self, **kwargs):
        super().__init__('manager', **kwargs)
        p = self.params = declare_params(self, SPECS, on_change=self._on_param)
        self.live = live_store_for(self, p.store_dir, p.data_dir)
        store = self.live.current()
        for issue in store.issues:
            self.get_logger().warning(issue)
        self.reply_pub = self.create_publisher(RobotReply, names.REPLIES, REPLIES_QOS)
        self.events = EventSender(self, SOURCE)      # acknowledged by the sync agent: nothing lost
        self.staff_pub = self.create_publisher(StaffRequest, names.STAFF_REQUESTS, 10)
        self.recommend_client = self.create_client(Recommend, names.RECOMMEND)
        self.enrol_client = self.create_client(EnrollFace, names.ENROLL_FACE)
        self.guide_client = ActionClient(self, GuideTo, names.GUIDE_TO)
        self.tour_client = ActionClient(self, Tour, names.TOUR)
        self.skip_client = self.create_client(SkipTourStop, names.SKIP_TOUR_STOP)
        self._goals: dict[int, object] = {}          # track id -> running goal handle (guide or tour)
        self._goal_seq: dict[int, int] = {}          # track id -> number of its newest goal (older ones are stale)
        self._seq = 0
        self._last_narration: dict[int, float] = {}
        self._guide_state: dict[int, str] = {}          # last GuideTo feedback state per customer
        self._waiting_recommend: dict[int, tuple] = {}   # track id -> (query, monotonic deadline): recommender not yet there
        self._recommend_retry = None                     # the retry timer while questions wait or are asked
        # track id -> (query, futures of its requests, monotonic deadline, attempt): asked, no answer yet
        self._in_flight_recommend: dict[int, tuple] = {}
        self._recommend_lock = threading.Lock()          # the two dicts: the timer, the service's answers
        self.core = DialogueManager(store, silence_timeout_s=p.silence_timeout_s, greet_delay_s=p.greet_delay_s,
                                    store_raw_text=p.privacy_store_raw_text, default_language=p.default_language,
                                    confirm_below=p.confirm_below)
        self.core.set_hours(parse_hours(p.opening_hours) if p.opening_hours else None)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_hours)
        # The language the customer speaks, for the speech recogniser (Whisper is told, not left to guess)
        self.context_pub = self.create_publisher(ListenContext, names.LISTEN_CONTEXT, LATCHED)
        self._listen_language = ''
        self._publish_listen_context(p.default_language, 0)
        self.create_subscription(CustomerEvent, names.CUSTOMER_EVENTS, self._on_customer, 20)
        self.create_subscription(Utterance, names.UTTERANCES, self._on_utterance, 20)
        self.create_subscription(BaseSafety, names.SAFETY, self._on_safety, LATCHED)
        # a new store's words are built off the executor (_on_store_swap), then swapped in here
        self._words_lock = threading.Lock()
        self._store_wanted = self._store_built = self._words_builder = None
        self._words_ready = self.create_guard_condition(self._on_words_ready)
        watch_store(self, self.live, self._on_store_swap)
        self.create_timer(1.0, lambda: self._run(self.core.tick()))
        self.get_logger().info(f'Dialogue ready: {len(store.catalog)} products, {len(store.zones)} zones, '
                               f'{len(store.tours)} tours, {len(store.appointments)} appointments')

    def _on_param(self, name: str, value) -> None:
        """A live parameter changed (checked by its ParamSpec): the hours from the next turn on."""
        if name == 'opening_hours':
            self.core.set_hours(parse_hours(value) if value else None)
            self._publish_hours()

    def _publish_hours(self) -> None:
        hours = self.core.hours
        source = 'live' if self.core.hours_set is not None else 'store'
        msg = DiagnosticArray(status=[diagnostic_status(
            HOURS_STATUS, DiagnosticStatus.OK, f'open {hours.text} ({source})',
            {'opening_hours': hours.text, 'source': source})])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(msg)

    def _on_store_swap(self, store) -> None:
        """New store data from the sync: used from the next turn on (sessions are kept). A new
        catalog or new zones need new words understood (`Nlu`: half a second for a few hundred
        products, seconds on a busy robot): those are built on a thread of their own and the
        store swapped in when they are ready, so customers are answered meanwhile (a dialogue
        busy building them once missed a customer's "yes, take me there")."""
        for issue in store.issues:
            self.get_logger().warning(issue)
        with self._words_lock:
            self._store_wanted = store
            if self._words_builder is not None:
                return                          # the builder takes the newest store when done
            if same_words(store, self.core.store):
                self._store_wanted, self._store_built = None, None
                self.core.set_store(store)
                return
            self._words_builder = threading.Thread(target=self._build_words, name='dialogue-words', daemon=True)
            self._words_builder.start()

    def _build_words(self) -> None:
        """Builder thread: the words of the newest wanted store; handed to the executor."""
        built = None
        while True:
            with self._words_lock:
                store = self._store_wanted
                if built is not None and (store is None or same_words(store, built[0])):
                    self._store_built = (store or built[0], built[1])
                    self._store_wanted, self._words_builder = None, None
                    break
            try:
                built = (store, Nlu(store.catalog, store.zones))
            except Exception as exc:  # noqa: BLE001 - the store in use stays; one line says why
                self.get_logger().error(f'new store not used: its words could not be built: '
                                        f'{type(exc).__name__}: {exc}')
                with self._words_lock:
                    self._store_wanted, self._words_builder = None, None
                return
        try:
            self._words_ready.trigger()
        except Exception:  # noqa: BLE001 - the node was destroyed meanwhile: nothing to swap into
            pass

    def _on_words_ready(self) -> None:
        with self._words_lock:
            built, self._store_built = self._store_built, None
        if built is not None:
            self.core.set_store(*built)

    # -- inputs --------------------------------------------------------------------------
    def _on_customer(self, msg: CustomerEvent) -> None:
        if msg.kind == CustomerEvent.LEFT:
            self._run(self.core.on_customer_left(msg.track_id, at=_seconds(msg.header.stamp)))
        else:
            self._run(self.core.on_customer(msg.track_id, msg.customer_id, msg.display_name, msg.vip))

    def _on_utterance(self, msg: Utterance) -> None:
        if msg.is_final:
            typed = msg.header.frame_id in TYPED_INPUT_FRAMES      # the screen's touch, `retailbot chat`
            heard = None
            if msg.product_sku and not typed:
                heard = HeardProduct(msg.product_sku, float(msg.product_confidence), msg.catalog_text or msg.text,
                                     exact=not msg.catalog_text)
            said_at = _seconds(msg.end) or _seconds(msg.header.stamp)      # when the speech ended
            self._run(self.core.on_utterance(msg.track_id, msg.text, typed=typed, heard=heard, said_at=said_at))

    def _on_safety(self, msg: BaseSafety) -> None:
        self._run(self.core.on_safety(msg.latched))

    def _publish_listen_context(self, language: str, track_id: int) -> None:
        """The dialogue's current language on /dialogue/listen_context (latched), when it changes."""
        if language == self._listen_language:
            return
        self._listen_language = language
        msg = ListenContext(version=ListenContext.VERSION, language=language, track_id=track_id)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.context_pub.publish(msg)

    # -- carrying out effects --------------------------------------------------------------
    def _run(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Say):
                self._publish_listen_context(effect.language, effect.track_id)   # before the reply is heard
                msg = RobotReply(text=effect.text, language=effect.language, intent=effect.intent,
                                 track_id=effect.track_id)
                msg.header.stamp = self.get_clock().now().to_msg()
                self.reply_pub.publish(msg)
            elif isinstance(effect, Record):
                self.events.send(effect.event, customer=effect.customer_pseudonym)
            elif isinstance(effect, CallStaff):
                request = effect.request
                self.get_logger().info(f"Calling staff for track {request['track_id']}: {request['reason']}")
                self.staff_pub.publish(staff_request_msg(request, self.get_clock().now().to_msg()))
            elif isinstance(effect, AskRecommendations):
                self._recommend(effect)
            elif isinstance(effect, StartGuide):
                self._guide(effect.track_id, effect.zone)
            elif isinstance(effect, StartTour):
                self._tour(effect.track_id, effect.route)
            elif isinstance(effect, Enrol):
                self._enrol(effect)
            elif isinstance(effect, CancelMission):
                self._goal_seq.pop(effect.track_id, None)       # a goal still being accepted is stale too
                handle = self._goals.pop(effect.track_id, None)
                if handle is not None:
                    handle.cancel_goal_async()
            elif isinstance(effect, SkipStop):
                self._skip(effect)

    def _skip(self, effect: SkipStop) -> None:
        if not self.skip_client.service_is_ready():
            self.get_logger().warning(f'Cannot skip tour stop {effect.stop_index}: {names.SKIP_TOUR_STOP} not available')
            return

        def done(future) -> None:
            response = future.result() if future.exception() is None else None
            if response is None or not response.success:
                self.get_logger().warning(f'Skipping tour stop {effect.stop_index} refused: '
                                          f'{response.message if response is not None else future.exception()}')
        self.skip_client.call_async(SkipTourStop.Request(stop_index=effect.stop_index)).add_done_callback(done)

    def _new_goal(self, track_id: int) -> int:
        self._seq += 1
        self._goal_seq[track_id] = self._seq
        return self._seq

    def _current(self, track_id: int, seq: int) -> bool:
        return self._goal_seq.get(track_id) == seq

    def _recommend(self, effect: AskRecommendations) -> None:
        """Ask the recommender. One that just started may not be discovered yet: the question
        waits (never blocking this callback) and is retried on the next tick of a short timer,
        at most `recommend_wait_s`; only after that is the customer told and staff called
        (`on_recommendations(None)`). A newer question of the same customer replaces a waiting one."""
        if self.recommend_client.service_is_ready():
            self._ask_recommender(effect.query)
            return
        with self._recommend_lock:
            self._in_flight_recommend.pop(effect.query.track_id, None)     # a newer question replaces it
            self._waiting_recommend[effect.query.track_id] = (effect.query,
                                                              time.monotonic() + self.params.recommend_wait_s)
        self._ensure_recommend_timer()

    def _ensure_recommend_timer(self) -> None:
        with self._recommend_lock:
            if self._recommend_retry is None:
                self._recommend_retry = self.create_timer(RECOMMEND_RETRY_S, self._retry_recommend)

    def _retry_recommend(self) -> None:
        """Timer tick while questions wait for the recommender or for its answer: ask when it is
        there; a question unanswered for `recommend_wait_s` (a reply DDS lost, a recommender that
        hung) is asked again once, then given up; only then is the customer told and staff called."""
        ready, now = self.recommend_client.service_is_ready(), time.monotonic()
        ask, again, give_up = [], [], []
        with self._recommend_lock:
            for track_id, (query, deadline) in list(self._waiting_recommend.items()):
                if ready:
                    del self._waiting_recommend[track_id]
                    ask.append(query)
                elif now >= deadline:
                    del self._waiting_recommend[track_id]
                    give_up.append((query, f'Recommendation service {names.RECOMMEND} not available within '
                                           f'{self.params.recommend_wait_s:g} s'))
            for track_id, (query, futures, deadline, attempt) in list(self._in_flight_recommend.items()):
                if now < deadline:
                    continue
                if attempt < RECOMMEND_ATTEMPTS:
                    again.append((query, attempt + 1))
                else:
                    del self._in_flight_recommend[track_id]
                    for future in futures:
                        self.recommend_client.remove_pending_request(future)
                    give_up.append((query, f'Recommendation service {names.RECOMMEND} gave no answer in '
                                           f'{attempt} x {self.params.recommend_wait_s:g} s'))
        for query in ask:
            self._ask_recommender(query)
        for query, attempt in again:
            self._ask_recommender(query, attempt)
        for query, why in give_up:
            self.get_logger().warning(why)
            self._run(self.core.on_recommendations(query.track_id, None))
        with self._recommend_lock:
            if not self._waiting_recommend and not self._in_flight_recommend and self._recommend_retry is not None:
                self._recommend_retry.cancel()
                self.destroy_timer(self._recommend_retry)
                self._recommend_retry = None

    def _ask_recommender(self, query, attempt: int = 1) -> None:
        request = Recommend.Request(customer_id=query.customer_id, category=query.category, brand=query.brand,
                                    min_price_cny=query.min_price, max_price_cny=query.max_price, k=query.k,
                                    language=query.language)
        future = self.recommend_client.call_async(request)
        with self._recommend_lock:
            earlier = self._in_flight_recommend.get(query.track_id)
            # asked again: an answer to the first request still counts; a newer question starts afresh
            futures = (earlier[1] if earlier and attempt > 1 else []) + [future]
            self._in_flight_recommend[query.track_id] = (query, futures,
                                                         time.monotonic() + self.params.recommend_wait_s, attempt)
        self._ensure_recommend_timer()
        future.add_done_callback(lambda f: self._on_recommend_done(query, f))

    def _on_recommend_done(self, query, future) -> None:
        with self._recommend_lock:
            entry = self._in_flight_recommend.get(query.track_id)
            if entry is None or future not in entry[1]:
                return          # given up on (the customer was told), or replaced by a newer question
            del self._in_flight_recommend[query.track_id]
            for other in entry[1]:
                if other is not future:
                    self.recommend_client.remove_pending_request(other)
        response = future.result() if future.exception() is None else None
        items = None
        if response is not None and response.success:
            items = [RecommendedProduct(i.sku, i.name_zh, i.name_en, i.price_cny, i.zone, i.reason_zh, i.reason_en,
                                        i.promotion) for i in response.items]
        elif response is not None:
            self.get_logger().warning(f'Recommendation failed: {response.message}')
        self._run(self.core.on_recommendations(query.track_id, items))

    def _enrol(self, effect: Enrol) -> None:
        def done(ok: bool, message: str) -> None:
            if not ok:
                self.get_logger().warning(f'Enrolment of track {effect.track_id} failed: {message}')
            self._run(self.core.on_enrolled(effect.track_id, effect.customer_id, effect.display_name, ok))
        if not self.enrol_client.service_is_ready():
            done(False, '/perception/enroll_face is not available')
            return
        request = EnrollFace.Request(track_id=effect.track_id, customer_id=effect.customer_id,
                                     display_name=effect.display_name, vip=False, consent_ref=effect.consent_ref)
        future = self.enrol_client.call_async(request)
        future.add_done_callback(lambda f: done(*((f.result().success, f.result().message) if f.exception() is None
                                                  else (False, str(f.exception())))))

    def _guide(self, track_id: int, zone: str) -> None:
        name = self.core.store.zone_name(zone, 'zh')
        if not self.guide_client.server_is_ready():
            self.get_logger().warning(f'Cannot guide customer to {name} ({zone}): /navigation/guide_to not available')
            self._run(self.core.on_guide_result(track_id, zone, False, 'navigation_unavailable'))
            return
        self.get_logger().info(f'Guiding customer (track {track_id}) to {name} ({zone})')
        seq = self._new_goal(track_id)
        future = self.guide_client.send_goal_async(
            GuideTo.Goal(zone=zone), feedback_callback=lambda fb: self._current(track_id, seq)
            and self._on_guide_feedback(track_id, fb))
        future.add_done_callback(lambda f: self._on_goal_response(track_id, seq, f, lambda ok, reason: self._run(
            self.core.on_guide_result(track_id, zone, ok, reason)), self._on_guide_done(track_id, seq, zone)))

    def _tour(self, track_id: int, route: str) -> None:
        if not self.tour_client.server_is_ready():
            self.get_logger().warning(f'Cannot show tour {route}: /navigation/tour not available')
            self._run(self.core.on_tour_result(track_id, False, 'navigation_unavailable', 0))
            return
        self.get_logger().info(f'Showing tour {route} to customer (track {track_id})')
        seq = self._new_goal(track_id)
        future = self.tour_client.send_goal_async(
            Tour.Goal(route=route), feedback_callback=lambda fb: self._current(track_id, seq)
            and self._on_tour_feedback(track_id, fb))
        future.add_done_callback(lambda f: self._on_goal_response(track_id, seq, f, lambda ok, reason: self._run(
            self.core.on_tour_result(track_id, ok, reason, 0)), self._on_tour_done(track_id, seq)))

    def _on_goal_response(self, track_id: int, seq: int, future, refused, on_done) -> None:
        handle = future.result() if future.exception() is None else None
        if not self._current(track_id, seq):          # replaced while it was being accepted
            if handle is not None and handle.accepted:
                handle.cancel_goal_async()
            return
        if handle is None or not handle.accepted:
            self._goal_seq.pop(track_id, None)
            refused(False, 'rejected')
            return
        self._goals[track_id] = handle
        handle.get_result_async().add_done_callback(on_done)

    def _on_guide_feedback(self, track_id: int, feedback_msg) -> None:
        state = feedback_msg.feedback.state
        if state != self._guide_state.get(track_id):
            self._guide_state[track_id] = state
            self._run(self.core.on_guide_state(track_id, state))
        if state != 'driving':      # planning, waiting: no distance to tell yet
            return
        now = time.monotonic()
        if now - self._last_narration.get(track_id, 0.0) < self.params.narration_period_s:
            return
        self._last_narration[track_id] = now
        self._run(self.core.on_guide_feedback(track_id, feedback_msg.feedback.distance_remaining_m))

    def _on_guide_done(self, track_id: int, seq: int, zone: str):
        def done(future) -> None:
            if not self._current(track_id, seq):
                return                      # a replaced goal's result: never announced
            self._goal_seq.pop(track_id, None)
            self._goals.pop(track_id, None)
            self._last_narration.pop(track_id, None)
            self._guide_state.pop(track_id, None)
            result = future.result().result
            self._run(self.core.on_guide_result(track_id, zone, result.success, result.reason))
        return done

    def _on_tour_feedback(self, track_id: int, feedback_msg) -> None:
        feedback = feedback_msg.feedback
        if feedback.state == 'presenting':
            self._run(self.core.on_tour_stop(track_id, feedback.stop_index, feedback.zone))

    def _on_tour_done(self, track_id: int, seq: int):
        def done(future) -> None:
            if not self._current(track_id, seq):
                return                      # a replaced tour's result: never announced
            self._goal_seq.pop(track_id, None)
            self._goals.pop(track_id, None)
            result = future.result().result
            self._run(self.core.on_tour_result(track_id, result.success, result.reason, result.stops_visited))
        return done


main = main_for(ManagerNode)
