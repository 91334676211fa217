"""What the robot's screen and the staff console show, computed from what the ROS graph says.

Pure (no rclpy): the node turns messages into plain values and calls the `on_*` methods; the web
layer reads `screen()` and `console()` (JSON-ready dicts) and waits on `version`, which grows by
one with every change.

Privacy: a person's name, VIP status and appointment come only from an IDENTIFIED customer
event (a consenting member); an unrecognised person gets the generic welcome, and everything of
the previous customer (captions, cards, welcome) is cleared when they leave, so the next shopper
never sees it.

Sources: product cards come from the dialogue's interaction events (`dialogue_turn` products
presented, else its slots sku / category / brand, `recommendation` products with their reason_zh / reason_en) and the store
catalog; the route from `/navigation/plan` and the robot's map pose; arrivals from
`/navigation/arrivals`; check-in state from `vip_checkin` events.
"""
from __future__ import annotations

import itertools
import math
import threading
import time
from collections import Counter, deque
from datetime import datetime
from typing import Callable, Iterable

from retail_common.catalog import Catalog, Product
from retail_common.intents import PRODUCT_INTENTS
from retail_common.store import Appointment, Store

CAPTION_LINES = 6
CARD_LIMIT = 4
ATTRACT_LIMIT = 12              # cards of the idle loop per list (offers, best sellers)
STAFF_REQUEST_LIMIT = 200
RESET_LOG_LIMIT = 50
QUESTION_MARKS = ('?', '？')
SAFETY_FLAGS = ('bumper_left', 'bumper_centre', 'bumper_right', 'cliff_left', 'cliff_centre', 'cliff_right',
                'wheel_drop_left', 'wheel_drop_right')
DIAGNOSTIC_LEVELS = {0: 'OK', 1: 'WARN', 2: 'ERROR', 3: 'STALE'}


def history_rows(path) -> Iterable[tuple[str, int]]:
    """(sku, qty) of each readable row of a purchase history CSV (customer_id,sku,ts,qty,price_cny);
    no file (None or missing) is no rows, an unreadable row is skipped."""
    import csv
    if not path:
        return
    try:
        with open(path, newline='', encoding='utf-8') as handle:
            for row in csv.DictReader(handle):
                try:
                    yield row['sku'], int(row.get('qty') or 1)
                except (KeyError, TypeError, ValueError):
                    continue
    except (OSError, UnicodeDecodeError, csv.Error):
        return


def best_sellers(rows: Iterable[tuple[str, int]], catalog: Catalog, limit: int = ATTRACT_LIMIT) -> list[str]:
    """SKUs sold most (by quantity) among (sku, qty) purchase rows, in stock, best first."""
    sold = Counter()
    for sku, qty in rows:
        sold[sku] += qty
    ranked = [sku for sku, _ in sorted(sold.items(), key=lambda kv: (-kv[1], kv[0]))]
    return [sku for sku in ranked if sku in catalog.by_sku and catalog.by_sku[sku].in_stock][:limit]


def path_length(points: list[tuple[float, float]]) -> float:
    return sum(math.dist(a, b) for a, b in itertools.pairwise(points))


def remaining_distance(path: list[tuple[float, float]], pose: tuple[float, float] | None) -> float:
    """Metres left along `path` from the point of it nearest to `pose` (whole path without a pose)."""
    if len(path) < 2:
        return 0.0
    if pose is None:
        return path_length(path)
    best, best_d, best_point = 0, math.inf, path[0]
    for i, (a, b) in enumerate(itertools.pairwise(path)):
        ax, ay = a
        dx, dy = b[0] - ax, b[1] - ay
        seg2 = dx * dx + dy * dy
        t = 0.0 if seg2 == 0 else max(0.0, min(1.0, ((pose[0] - ax) * dx + (pose[1] - ay) * dy) / seg2))
        point = (ax + t * dx, ay + t * dy)
        d = math.dist(point, pose)
        if d < best_d:
            best, best_d, best_point = i, d, point
    return math.dist(best_point, path[best + 1]) + path_length(path[best + 1:])


class UiModel:
    """The state of the screen and the console; thread-safe (the node and the web server share it)."""

    def __init__(self, store: Store, best_seller_skus: Iterable[str] | None = None, *, face_recognition: bool = True,
                 clock: Callable[[], float] = time.time, wall_clock: Callable[[], datetime] = datetime.now) -> None:
        """`store`: the store model (retail_common.store); `best_seller_skus`: the attract loop's best
        sellers (default: from the store's purchase history)."""
        self.store = store
        self.best_seller_skus = self._best_sellers(store, best_seller_skus)
        self.face_recognition = face_recognition
        self.clock, self.wall_clock = clock, wall_clock
        self.lock = threading.RLock()
        self.version = 0
        self._listeners: list[Callable[[], None]] = []
        # the customer side
        self.tracks: dict[int, dict] = {}            # present people: track_id -> {customer_id, name, vip}
        self.current_track = 0
        self.welcome: dict | None = None
        self.captions: deque[dict] = deque(maxlen=CAPTION_LINES)
        self.cards: list[dict] = []
        self.cards_kind = ''                          # 'products' | 'recommendations'
        self.code = ''                                # the anonymous customer's purchase code (screen_code)
        self.question = False
        self.guide: dict | None = None                # {zone, status}
        self.arrival: dict | None = None
        self.notice = ''                              # a store-side message to the customer (e.g. safety stop)
        # the robot
        self.map_info: dict | None = None             # {width, height, resolution, origin: [x, y]}
        self.map_png: bytes | None = None
        self.plan: list[tuple[float, float]] = []
        self.pose: tuple[float, float, float] | None = None
        self.pose_source = ''
        self.people: list[tuple[float, float]] = []
        self.safety: dict = {'latched': False, 'reason': '', 'known': False}
        self.battery: dict | None = None
        self.diagnostics: dict[str, dict] = {}
        self.checkins: dict[str, dict] = {}           # appointment_id -> {status, at}
        self.staff_requests: list[dict] = []
        self._request_ids = itertools.count(1)
        self.reset_log: deque[dict] = deque(maxlen=RESET_LOG_LIMIT)

    # -- the store, swapped whole when the sync downlink brings new data ----------------------
    @property
    def catalog(self) -> Catalog:
        return self.store.catalog

    @property
    def zones(self):
        return self.store.zones

    @property
    def appointments(self) -> tuple[Appointment, ...]:
        return self.store.appointments

    @staticmethod
    def _best_sellers(store: Store, skus: Iterable[str] | None) -> list[str]:
        if skus is None:
            return best_sellers(history_rows(store.history_path), store.catalog)
        return [s for s in skus if s in store.catalog.by_sku]

    def set_store(self, store: Store, best_seller_skus: Iterable[str] | None = None) -> None:
        """A new store (catalog, promotions, appointments, zones): shown from now on."""
        ranked = self._best_sellers(store, best_seller_skus)
        with self.lock:
            self.store, self.best_seller_skus = store, ranked
            self._changed()

    # -- change notification -----------------------------------------------------------------
    def subscribe(self, listener: Callable[[], None]) -> None:
        """`listener()` is called (from the changing thread) after every change."""
        self._listeners.append(listener)

    def bump(self) -> None:
        """Something shown beside the model changed (e.g. an enrolment waiting for consent): views are resent."""
        with self.lock:
            self._changed()

    def _changed(self) -> None:
        self.version += 1
        for listener in list(self._listeners):
            listener()

    # -- customers ---------------------------------------------------------------------------
    def on_customer(self, kind: str, track_id: int, customer_id: str = '', display_name: str = '',
                    vip: bool = False) -> None:
        """kind: 'appeared' | 'identified' | 'approaching' | 'left'."""
        with self.lock:
            if kind == 'left':
                self.tracks.pop(track_id, None)
                if track_id == self.current_track:
                    self.current_track = next(iter(self.tracks), 0)
                    if self.guide is None:
                        self._clear_customer(keep_track=self.current_track)
                        if self.current_track:
                            self._welcome_for(self.current_track)
                self._changed()
                return
            person = self.tracks.setdefault(track_id, {'customer_id': '', 'name': '', 'vip': False})
            if customer_id:            # identified: a consenting member (perception never names others)
                person.update(customer_id=customer_id, name=display_name, vip=vip)
            if not self.current_track or self.current_track not in self.tracks:
                if self.guide is None:
                    self._clear_customer(keep_track=track_id)   # its greeting may have come first
                self.current_track = track_id
            if track_id == self.current_track:
                self._welcome_for(track_id)
            self._changed()

    def _welcome_for(self, track_id: int) -> None:
        person = self.tracks.get(track_id, {})
        if not person.get('customer_id'):
            self.welcome = {'kind': 'anonymous'}
            return
        welcome = {'kind': 'vip' if person['vip'] else 'member', 'name': person['name']}
        if person['vip']:
            appointment = self._todays_appointment(person['customer_id'])
            if appointment is not None:
                welcome['appointment'] = self._appointment_view(appointment)
        self.welcome = welcome

    def _todays_appointment(self, customer_id: str) -> Appointment | None:
        now = self.wall_clock()
        mine = [a for a in self.appointments if a.customer_id == customer_id and a.start.date() == now.date()]
        return min(mine, key=lambda a: abs(a.start - now)) if mine else None

    def _appointment_view(self, a: Appointment) -> dict:
        zone = self.zones.get(a.meeting_point)
        return {'time': a.start.strftime('%H:%M'), 'purpose': a.purpose, 'staff': a.staff,
                'meeting_point_zh': zone.name_zh if zone else a.meeting_point,
                'meeting_point_en': zone.name_en if zone else a.meeting_point}

    def _clear_customer(self, keep_track: int = -1) -> None:
        """Forget what the screen shows of the customer, except lines of `keep_track` (the person now in
        front: replies and events of different topics arrive in any order)."""
        self.welcome = None
        kept = [line for line in self.captions if keep_track > 0 and line['track'] == keep_track]
        self.captions.clear()
        self.captions.extend(kept)
        self.cards, self.cards_kind = [], ''
        self.code = ''
        self.question = False
        self.arrival = None

    # -- dialogue ----------------------------------------------------------------------------
    def on_heard(self, text: str, language: str, track_id: int = 0) -> None:
        """A final customer utterance (speech or touch): shown as 'you said'."""
        with self.lock:
            self.captions.append({'who': 'customer', 'text': text[:300], 'lang': language, 'track': track_id})
            self._changed()

    def on_reply(self, text: str, language: str, intent: str, track_id: int = 0) -> None:
        with self.lock:
            if self.welcome is None and not self.tracks:
                self.welcome = {'kind': 'anonymous'}      # a typed question with nobody seen: a shopper
            # staff's words from the platform (retail_sync.fleet_link.STAFF_INTENTS) are shown as staff's
            who = 'staff' if intent in ('staff_answer', 'staff_words') else 'robot'
            self.captions.append({'who': who, 'text': text, 'lang': language, 'intent': intent, 'track': track_id})
            self.question = text.rstrip().endswith(QUESTION_MARKS)
            if intent == 'goodbye':
                self.cards, self.cards_kind, self.question = [], '', False
            self._changed()

    def on_interaction(self, type_: str, payload: dict) -> None:
        """An interaction event (`/sync/interaction_events`); unknown types are ignored."""
        with self.lock:
            if type_ == 'dialogue_turn':
                self._on_turn(payload)
            elif type_ == 'recommendation':
                self._on_recommendation(payload)
            elif type_ == 'guide':
                self._on_guide(payload)
            elif type_ == 'vip_checkin' and payload.get('appointment_id'):
                self.checkins[str(payload['appointment_id'])] = {'status': str(payload.get('status', '')),
                                                                 'at': self.clock()}
            elif type_ == 'session_end' and self.guide is None:
                last = self.captions[-1] if self.captions and self.captions[-1]['who'] == 'robot' else None
                self.captions.clear()
                if last is not None:
                    self.captions.append(last)                  # the goodbye stays readable
                self.cards, self.cards_kind, self.question, self.arrival = [], '', False, None
                self.code = ''
            elif type_ == 'screen_code' and isinstance(payload.get('code'), str):
                self.code = payload['code'][:12]     # shown with the products: typed at the till
            else:
                return
            self._changed()

    def _on_turn(self, payload: dict) -> None:
        # The products the reply presented, in order (a refinement, a reference, a tour stop's
        # offers); without them, the products the turn's slots name.
        presented = [item.get('sku') for item in payload.get('products') or [] if isinstance(item, dict)]
        known = [self.catalog.by_sku[s] for s in presented if isinstance(s, str) and s in self.catalog.by_sku]
        if known:
            self.cards, self.cards_kind = [self._card(p) for p in known[:CARD_LIMIT]], 'products'
            return
        intent = payload.get('intent', '')
        slots = payload.get('slots') or {}
        if intent not in PRODUCT_INTENTS or not isinstance(slots, dict):
            return
        products = self._products_for(slots)
        if products:
            self.cards = [self._card(p) for p in products[:CARD_LIMIT]]
            self.cards_kind = 'products'

    def _products_for(self, slots: dict) -> list[Product]:
        skus = slots.get('skus') or ([slots['sku']] if slots.get('sku') else [])
        if skus:
            return [self.catalog.by_sku[s] for s in skus if s in self.catalog.by_sku]
        category, brand = slots.get('category', ''), slots.get('brand', '')
        if not category and not brand:
            return []
        matches = [p for p in self.catalog.products
                   if (not category or p.category == category) and (not brand or p.brand == brand)]
        low, high = float(slots.get('min_price') or 0), float(slots.get('max_price') or 0)
        matches = [p for p in matches if p.price_cny >= low and (not high or p.price_cny <= high)]
        return sorted(matches, key=lambda p: (not p.in_stock, not p.promotion, p.price_cny))

    def _on_recommendation(self, payload: dict) -> None:
        reasons = {}
        for item in payload.get('products') or []:      # each with the recommender's reason
            if isinstance(item, dict) and isinstance(item.get('sku'), str):
                reasons[item['sku']] = (str(item.get('reason_zh', '')), str(item.get('reason_en', '')))
        skus = [s for s in payload.get('skus') or list(reasons) if s in self.catalog.by_sku]
        self.cards = [self._card(self.catalog.by_sku[s], *reasons.get(s, ('', ''))) for s in skus[:CARD_LIMIT]]
        self.cards_kind = 'recommendations'

    def _card(self, p: Product, reason_zh: str = '', reason_en: str = '') -> dict:
        zone_id = self.store.zone_of(p) or p.zone
        zone = self.zones.get(zone_id)
        return {'sku': p.sku, 'name_zh': p.name_zh, 'name_en': p.name_en, 'price': _yuan(p.price_cny),
                'promotion': p.promotion, 'in_stock': p.in_stock, 'stock': p.stock, 'zone': zone_id,
                'zone_zh': zone.name_zh if zone else zone_id, 'zone_en': zone.name_en if zone else zone_id,
                'brand': p.brand, 'reason_zh': reason_zh, 'reason_en': reason_en}

    def _on_guide(self, payload: dict) -> None:
        status, zone = payload.get('status', ''), str(payload.get('zone', ''))
        if status == 'started':
            self.guide, self.arrival, self.plan = {'zone': zone, 'status': 'driving'}, None, []
        elif status == 'arrived':
            self._arrived(zone, 0, 0)
        elif status == 'failed':
            self.guide, self.plan = None, []

    # -- navigation --------------------------------------------------------------------------
    def on_arrival(self, zone: str, narration_zh: str = '', stop_index: int = 0, stop_count: int = 0,
                   narration_en: str = '') -> None:
        with self.lock:
            self._arrived(zone, stop_index, stop_count, narration_zh, narration_en)
            self._changed()

    def _arrived(self, zone: str, stop_index: int, stop_count: int, narration_zh: str = '',
                 narration_en: str = '') -> None:
        if self.arrival and self.arrival['zone'] == zone and self.guide is None:
            return                                        # the same arrival from the topic and the event
        info = self.zones.get(zone)
        self.arrival = {'zone': zone, 'name_zh': info.name_zh if info else zone, 'name_en': info.name_en if info else zone,
                        'tour': stop_count > 1 or bool(narration_zh or narration_en),   # a guide goal: one stop
                        'stop_index': stop_index, 'stop_count': stop_count,
                        'narration_zh': narration_zh, 'narration_en': narration_en,
                        'products': [self._card(p) for p in self.store.promotions()
                                     if self.store.zone_of(p) == zone][:CARD_LIMIT]}
        self.guide, self.plan = None, []

    def on_plan(self, points: list[tuple[float, float]]) -> None:
        with self.lock:
            self.plan = [(round(x, 3), round(y, 3)) for x, y in points]
            self._changed()

    def on_pose(self, x: float, y: float, theta: float, source: str) -> None:
        """The robot's map pose. `source` 'localization' wins over 'odometry' (dock + odom) once heard."""
        with self.lock:
            if source == 'odometry' and self.pose_source == 'localization':
                return
            self.pose, self.pose_source = (round(x, 3), round(y, 3), round(theta, 3)), source
            self._changed()

    def on_people(self, points: list[tuple[float, float]]) -> None:
        with self.lock:
            self.people = [(round(x, 2), round(y, 2)) for x, y in points[:50]]
            self._changed()

    def on_map(self, info: dict, png: bytes) -> None:
        with self.lock:
            self.map_info, self.map_png = info, png
            self._changed()

    def on_safety(self, latched: bool, reason: str, flags: dict[str, bool]) -> None:
        with self.lock:
            self.safety = {'latched': latched, 'reason': reason, 'known': True,
                           'active': [k for k in SAFETY_FLAGS if flags.get(k)]}
            self.notice = 'safety_stop' if latched else ''
            self._changed()

    def on_battery(self, percentage: float, voltage: float, charging: bool) -> None:
        with self.lock:
            pct = None if math.isnan(percentage) else round(percentage * 100 if percentage <= 1.0 else percentage)
            self.battery = {'percent': pct, 'voltage': round(voltage, 2), 'charging': charging}
            self._changed()

    def on_diagnostics(self, statuses: list[tuple[str, int, str, dict]]) -> None:
        with self.lock:
            for name, level, message, values in statuses:
                self.diagnostics[name] = {'name': name, 'level': DIAGNOSTIC_LEVELS.get(level, str(level)),
                                          'message': message, 'values': values, 'at': self.clock()}
            self._changed()

    # -- staff -------------------------------------------------------------------------------
    def on_staff_request(self, request: dict) -> dict:
        """A staff request from the dialogue (`/dialogue/staff_requests`); returns it with its id."""
        with self.lock:
            entry = {'id': next(self._request_ids), 'reason': str(request.get('reason', '')),
                     'language': str(request.get('language', '')), 'at': self.clock(), 'state': 'open',
                     'appointment_id': str(request.get('appointment_id', '')),
                     'meeting_point': str(request.get('meeting_point', '')), 'staff': str(request.get('staff', ''))}
            self.staff_requests.append(entry)
            del self.staff_requests[:-STAFF_REQUEST_LIMIT]
            self._changed()
            return entry

    def update_request(self, request_id: int, state: str) -> dict | None:
        """state 'acknowledged' or 'done'; None for an unknown request."""
        with self.lock:
            for entry in self.staff_requests:
                if entry['id'] == request_id:
                    if entry['state'] != 'done':
                        entry['state'] = state
                        entry[f'{state}_at'] = self.clock()
                        self._changed()
                    return dict(entry)
            return None

    def log_reset(self, who: str, success: bool, message: str) -> dict:
        with self.lock:
            entry = {'at': self.clock(), 'who': who, 'success': success, 'message': message,
                     'reason_before': self.safety.get('reason', '')}
            self.reset_log.appendleft(entry)
            self._changed()
            return entry

    # -- views -------------------------------------------------------------------------------
    def _route(self) -> dict | None:
        if self.guide is None:
            return None
        zone = self.zones.get(self.guide['zone'])
        pose = self.pose[:2] if self.pose else None
        return {'zone': self.guide['zone'], 'name_zh': zone.name_zh if zone else self.guide['zone'],
                'name_en': zone.name_en if zone else self.guide['zone'],
                'goal': list(zone.pose[:2]) if zone else (list(self.plan[-1]) if self.plan else None),
                'path': [list(p) for p in self.plan],
                'remaining_m': round(remaining_distance(self.plan, pose), 1) if self.plan else None}

    def _mode(self) -> str:
        if self.guide is not None:
            return 'guiding'
        if self.arrival is not None:
            return 'arrived'
        if self.welcome is not None or self.captions:
            return 'customer'
        return 'attract'

    def screen(self) -> dict:
        """What the customer screen shows (never anything about an unrecognised person)."""
        with self.lock:
            promotions = [self._card(p) for p in self.store.promotions()[:ATTRACT_LIMIT]]
            return {
                'version': self.version, 'mode': self._mode(), 'welcome': self.welcome,
                'captions': list(self.captions), 'cards': self.cards, 'cards_kind': self.cards_kind,
                'code': self.code,
                'question': self.question, 'route': self._route(), 'arrival': self.arrival,
                'pose': list(self.pose) if self.pose else None, 'notice': self.notice,
                'face_recognition': self.face_recognition, 'track_id': self.current_track,
                'attract': {'promotions': promotions,
                            'best_sellers': [self._card(self.catalog.by_sku[s]) for s in self.best_seller_skus]},
            }

    def screen_config(self) -> dict:
        """Static parts of the screen: zone and category buttons, the map's geometry."""
        with self.lock:
            categories: dict[str, dict] = {}
            for p in self.catalog.products:
                categories.setdefault(p.category, {'id': p.category, 'name_zh': p.category_zh or p.category,
                                                   'name_en': p.category.replace('_', ' '),
                                                   'zone': self.store.zone_of(p) or p.zone})
            zones = [{'id': z.id, 'name_zh': z.name_zh, 'name_en': z.name_en, 'kind': z.kind,
                      'pose': list(z.pose[:2])} for z in self.zones.values() if z.id != 'dock']
            return {'zones': zones, 'categories': list(categories.values()), 'map': self.map_info}

    def console(self) -> dict:
        with self.lock:
            today = self.wall_clock().date()
            appointments = []
            for a in sorted(self.appointments, key=lambda a: a.start):
                if a.start.date() != today:
                    continue
                checkin = self.checkins.get(a.appointment_id)
                appointments.append({'appointment_id': a.appointment_id, 'name': a.name, **self._appointment_view(a),
                                     'checked_in': checkin['status'] if checkin else ''})
            sync = next((d for name, d in self.diagnostics.items() if name.startswith('sync')), None)
            link = next((d for name, d in self.diagnostics.items() if name.endswith('serial link')), None)
            route = self._route()
            return {
                'version': self.version, 'map': self.map_info,
                'pose': list(self.pose) if self.pose else None, 'pose_source': self.pose_source,
                'path': [list(p) for p in self.plan], 'people': [list(p) for p in self.people],
                'mission': ({'kind': 'guide', **route} if route else
                            {'kind': 'tour_stop', **self.arrival} if self.arrival and self.arrival['tour'] else
                            {'kind': 'idle'}),
                'customers_present': len(self.tracks),
                'battery': self.battery, 'safety': self.safety,
                'link': {'state': (link['values'].get('link_state') or link['message']) if link else 'unknown',
                         'level': link['level'] if link else 'STALE'},
                'appointments': appointments,
                'staff_requests': list(reversed(self.staff_requests)),
                'sync': ({'level': sync['level'], 'message': sync['message'],
                          'backlog': sync['values'].get('backlog', ''),
                          'oldest_pending_s': sync['values'].get('oldest_pending_s', ''),
                          'last_upload_age_s': sync['values'].get('last_success_age_s', ''),
                          'quarantined': sync['values'].get('quarantined', ''),
                          'upload_error': sync['values'].get('upload_error', '')} if sync else None),
                'diagnostics': sorted(self.diagnostics.values(), key=lambda d: d['name']),
                'reset_log': list(self.reset_log),
            }


def _yuan(price: float) -> str:
    return f'{price:.0f}' if price == int(price) else f'{price:.2f}'
