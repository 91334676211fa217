"""Node /dialogue/manager: wires customers, utterances, recommendations and guiding to the core.

The Recommend service and the GuideTo action are called asynchronously (their answers come back
as callbacks), so a slow recommender or a long walk never blocks listening to other customers.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from rclpy.action import ActionClient
from rclpy.node import Node
from std_msgs.msg import String

from retail_common import names
from retail_common.catalog import CatalogError, load_catalog
from retail_common.node_support import ConfigError, declare_params, live_store_for, main_for, watch_store
from retail_common.params import ParamSpec
from retail_interfaces.action import GuideTo
from retail_interfaces.msg import CustomerEvent, PlaceArrival, RobotReply, Utterance
from retail_interfaces.srv import Recommend
from retail_common.event_sender import EventSender

from .manager import DialogueManager, Event, RecommendedProduct, RecommendQuery, Reply
from .store import ZoneNames, load_appointments

DEFAULT_STORE = str(Path(__file__).resolve().parents[3] / 'config' / 'stores' / 'demo')
SPECS = [
    ParamSpec('store_dir', DEFAULT_STORE, 'Store data directory (catalog.csv, zones.yaml, appointments.json).'),
    ParamSpec('data_dir', '', "Robot data folder: the platform's data in <data_dir>/platform overlays the store."),
    ParamSpec('catalog_path', '', "Catalog CSV ('' = <store_dir>/catalog.csv)."),
    ParamSpec('appointments_path', '', "VIP appointments JSON ('' = <store_dir>/appointments.json)."),
    ParamSpec('zones_path', '', "Zones file for zone names ('' = <store_dir>/zones.yaml)."),
    ParamSpec('silence_timeout_s', 60.0, 'A session with no words for this long is closed politely (s).', min=5.0, max=3600.0),
    ParamSpec('privacy_store_raw_text', False, "Put the customer's words in interaction events (store's privacy setting)."),
    ParamSpec('default_language', 'zh', 'Language of greetings before the customer speaks.', choices=['zh', 'en']),
    ParamSpec('narration_period_s', 10.0, 'Least time between two "on the way" narrations while guiding (s).', min=1.0, max=600.0),
]
SOURCE = 'dialogue/manager'


class ManagerNode(Node):
    def __init__(self, **kwargs):
        super().__init__('manager', **kwargs)
        p = self.params = declare_params(self, SPECS)
        store = Path(p.store_dir)
        catalog_path = p.catalog_path or str(store / 'catalog.csv')
        self.live = None
        if not (p.catalog_path or p.appointments_path or p.zones_path):
            # The store model (platform data overlaid); new appointments and zone names swap in
            # between turns when the sync brings them.
            self.live = live_store_for(self, p.store_dir, p.data_dir)
            current = self.live.current()
            catalog, appointments, zone_names = current.catalog, list(current.appointments), ZoneNames.of(current)
            for issue in current.issues:
                self.get_logger().warning(issue)
        else:
            try:
                catalog = load_catalog(catalog_path)
            except CatalogError as exc:
                raise ConfigError(str(exc)) from None
            for issue in catalog.issues:
                self.get_logger().warning(f'catalog {catalog_path} {issue}: row skipped')
            appointments, issues = load_appointments(p.appointments_path or store / 'appointments.json')
            for issue in issues:
                self.get_logger().warning(issue)
            zone_names = ZoneNames.load(p.zones_path or store / 'zones.yaml')
        self._lock = threading.RLock()
        self.reply_pub = self.create_publisher(RobotReply, names.REPLIES, 10)
        self.events = EventSender(self, SOURCE)      # acknowledged by the sync agent: nothing lost
        self.staff_pub = self.create_publisher(String, names.STAFF_REQUESTS, 10)
        self.recommend_client = self.create_client(Recommend, names.RECOMMEND)
        self.guide_client = ActionClient(self, GuideTo, names.GUIDE_TO)
        self._last_narration: dict[int, float] = {}
        self.core = DialogueManager(
            catalog, say=self._say, emit=self._emit, recommend=self._recommend, guide=self._guide,
            notify_staff=self._notify_staff, zones=zone_names,
            appointments=appointments, silence_timeout_s=p.silence_timeout_s,
            store_raw_text=p.privacy_store_raw_text, default_language=p.default_language)
        self.create_subscription(CustomerEvent, names.CUSTOMER_EVENTS, self._on_customer, 20)
        self.create_subscription(Utterance, names.UTTERANCES, self._on_utterance, 20)
        self.create_subscription(PlaceArrival, names.ARRIVALS, self._on_arrival, 10)
        self.create_timer(1.0, self._tick)
        if self.live is not None:
            watch_store(self, self.live, self._on_store_swap)
        self.get_logger().info(f'Dialogue ready: {len(catalog)} products, {len(appointments)} appointments')

    def _on_store_swap(self, store) -> None:
        with self._lock:
            self.core.appointments = list(store.appointments)
            self.core.zones = ZoneNames.of(store)

    # -- inputs --------------------------------------------------------------------------
    def _on_customer(self, msg: CustomerEvent) -> None:
        with self._lock:
            if msg.kind == CustomerEvent.LEFT:
                self.core.on_customer_left(msg.track_id)
            else:
                self.core.on_customer(msg.track_id, msg.customer_id, msg.display_name, msg.vip)

    def _on_utterance(self, msg: Utterance) -> None:
        if msg.is_final:
            with self._lock:
                self.core.on_utterance(msg.track_id, msg.text)

    def _on_arrival(self, msg: PlaceArrival) -> None:
        with self._lock:
            self.core.on_arrival(msg.zone)

    def _tick(self) -> None:
        with self._lock:
            self.core.tick()

    # -- outputs -------------------------------------------------------------------------
    def _say(self, reply: Reply) -> None:
        msg = RobotReply(text=reply.text, language=reply.language, intent=reply.intent, track_id=reply.track_id)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.reply_pub.publish(msg)

    def _emit(self, event: Event) -> None:
        self.events.send(event.type, event.payload, customer=event.customer_pseudonym)

    def _notify_staff(self, request: dict) -> None:
        self.get_logger().info(f"Calling staff for track {request['track_id']}: {request['reason']}")
        self.staff_pub.publish(String(data=json.dumps(request, ensure_ascii=False)))

    def _recommend(self, query: RecommendQuery) -> None:
        if not self.recommend_client.service_is_ready():
            self.get_logger().warning('Recommendation service /recommendation/recommend is not available')
            self.core.on_recommendations(query.track_id, None)
            return None
        request = Recommend.Request(customer_id=query.customer_id, category=query.category, brand=query.brand,
                                    min_price_cny=query.min_price, max_price_cny=query.max_price, k=query.k,
                                    language=query.language)
        future = self.recommend_client.call_async(request)
        future.add_done_callback(lambda f: self._on_recommend_done(query, f))
        return None

    def _on_recommend_done(self, query: RecommendQuery, future) -> None:
        response = future.result() if future.exception() is None else None
        items = None
        if response is not None and response.success:
            items = [RecommendedProduct(i.sku, i.name_zh, i.name_en, i.price_cny, i.zone, i.reason_zh, i.reason_en,
                                        i.promotion) for i in response.items]
        elif response is not None:
            self.get_logger().warning(f'Recommendation failed: {response.message}')
        with self._lock:
            self.core.on_recommendations(query.track_id, items)

    def _guide(self, track_id: int, zone: str) -> None:
        name = self.core.zones.name(zone, 'zh')
        if not self.guide_client.server_is_ready():
            self.get_logger().warning(f'Cannot guide customer to {name} ({zone}): /navigation/guide_to not available')
            self.core.on_guide_result(track_id, zone, False, 'navigation unavailable')
            return
        self.get_logger().info(f'Guiding customer (track {track_id}) to {name} ({zone})')
        future = self.guide_client.send_goal_async(
            GuideTo.Goal(zone=zone), feedback_callback=lambda fb: self._on_guide_feedback(track_id, fb))
        future.add_done_callback(lambda f: self._on_goal_response(track_id, zone, f))

    def _on_goal_response(self, track_id: int, zone: str, future) -> None:
        handle = future.result()
        if handle is None or not handle.accepted:
            with self._lock:
                self.core.on_guide_result(track_id, zone, False, 'rejected')
            return
        handle.get_result_async().add_done_callback(lambda f: self._on_guide_done(track_id, zone, f))

    def _on_guide_feedback(self, track_id: int, feedback_msg) -> None:
        if feedback_msg.feedback.state != 'driving':      # planning, waiting: no distance to tell yet
            return
        now = time.monotonic()
        if now - self._last_narration.get(track_id, 0.0) < self.params.narration_period_s:
            return
        self._last_narration[track_id] = now
        with self._lock:
            self.core.on_guide_feedback(track_id, feedback_msg.feedback.distance_remaining_m)

    def _on_guide_done(self, track_id: int, zone: str, future) -> None:
        result = future.result().result
        self._last_narration.pop(track_id, None)
        with self._lock:
            self.core.on_guide_result(track_id, zone, result.success, result.reason)


main = main_for(ManagerNode)
