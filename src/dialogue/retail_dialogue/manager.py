"""Dialogue manager: one conversation per customer track, from greeting to guiding and goodbye.

Pure (no rclpy): the node, the chat CLI and the tests drive it with events and give it sinks.
Slow work is requested through injected callables: `recommend(query)` returns the items at once
(standalone) or None, in which case the items arrive later through `on_recommendations`
(the node's asynchronous service call); `guide(track_id, zone)` starts guiding and the outcome
arrives through `on_arrival` / `on_guide_result`. Every turn emits one interaction event.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from retail_common.catalog import Catalog, Product

from .nlu import Nlu, NluResult
from .store import Appointment, ZoneNames, parse_clock, parse_name
from .templates import render

RECOMMEND_K = 3
EARLY_MARGIN = timedelta(minutes=30)
LATE_MARGIN = timedelta(minutes=15)


@dataclass(frozen=True)
class Reply:
    track_id: int
    text: str
    language: str
    intent: str


@dataclass(frozen=True)
class Event:
    type: str
    customer_pseudonym: str
    payload: dict


@dataclass(frozen=True)
class RecommendQuery:
    track_id: int
    customer_id: str
    category: str
    brand: str
    min_price: float
    max_price: float
    k: int
    language: str


@dataclass(frozen=True)
class RecommendedProduct:
    sku: str
    name_zh: str
    name_en: str
    price_cny: float
    zone: str
    reason_zh: str
    reason_en: str
    promotion: str = ''


@dataclass
class Session:
    track_id: int
    customer_id: str = ''
    display_name: str = ''
    vip: bool = False
    lang: str = 'zh'
    state: str = 'open'            # open | await_budget | await_guide | await_checkin | recommending | guiding
    slots: dict = field(default_factory=dict)
    asked_budget: bool = False
    offered_zone: str = ''
    guiding_zone: str = ''
    greeted_by_name: bool = False
    last_heard: float = 0.0
    appointment: Appointment | None = None


class DialogueManager:
    def __init__(self, catalog: Catalog, *, say: Callable[[Reply], None], emit: Callable[[Event], None],
                 recommend: Callable[[RecommendQuery], list[RecommendedProduct] | None],
                 guide: Callable[[int, str], None], notify_staff: Callable[[dict], None] = lambda request: None,
                 zones: ZoneNames | None = None, appointments: list[Appointment] | None = None,
                 silence_timeout_s: float = 60.0, store_raw_text: bool = False, default_language: str = 'zh',
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], datetime] = datetime.now,
                 nlu: Nlu | None = None) -> None:
        self.catalog = catalog
        self.nlu = nlu or Nlu(catalog)
        self.zones = zones or ZoneNames.load(None)
        self.appointments = appointments or []
        self._say, self._emit, self._recommend, self._guide, self._notify_staff = say, emit, recommend, guide, notify_staff
        self.silence_timeout_s = silence_timeout_s
        self.store_raw_text = store_raw_text
        self.default_language = default_language
        self.clock, self.wall_clock = clock, wall_clock
        self.sessions: dict[int, Session] = {}

    # -- customer tracks -----------------------------------------------------------------
    def on_customer(self, track_id: int, customer_id: str = '', display_name: str = '', vip: bool = False) -> None:
        """A person appeared or was identified: open a session and greet (by name once known)."""
        session = self.sessions.get(track_id)
        new = session is None
        if new:
            session = self.sessions[track_id] = Session(track_id, lang=self.default_language, last_heard=self.clock())
        if customer_id:
            session.customer_id, session.vip = customer_id, vip
            session.display_name = display_name or session.display_name
        if session.display_name and not session.greeted_by_name:
            session.greeted_by_name = True
            appointment = self._todays_appointment(customer_id) if vip else None
            if appointment is not None:
                session.appointment, session.state = appointment, 'await_checkin'
                self._reply(session, 'greet', 'greet_vip', name=session.display_name,
                            time=appointment.start.strftime('%H:%M'), purpose=appointment.purpose)
            else:
                self._reply(session, 'greet', 'greet_member', name=session.display_name)
            self._event(session, 'greeting', {'member': True, 'vip': vip, 'appointment': bool(appointment)})
        elif new:
            self._reply(session, 'greet', 'greet_anonymous')
            self._event(session, 'greeting', {'member': False})

    def on_customer_left(self, track_id: int) -> None:
        """The person walked away: end the session quietly (they can no longer hear a goodbye)."""
        session = self.sessions.get(track_id)
        if session is not None and session.state == 'guiding':
            return  # following behind the robot, out of the forward camera's view: still being guided
        session = self.sessions.pop(track_id, None)
        if session is not None:
            self._event(session, 'session_end', {'reason': 'left', 'state': session.state})

    def tick(self) -> None:
        """End sessions nobody spoke in for `silence_timeout_s` (not while guiding)."""
        now = self.clock()
        for session in list(self.sessions.values()):
            if session.state != 'guiding' and now - session.last_heard > self.silence_timeout_s:
                self._reply(session, 'goodbye', 'silence_goodbye')
                self._end(session, 'silence')

    # -- speech --------------------------------------------------------------------------
    def on_utterance(self, track_id: int, text: str) -> NluResult | None:
        """A final utterance of a customer. Utterances of a track that has left are dropped."""
        if not text.strip():
            return None
        if track_id == 0 and len(self.sessions) == 1:
            track_id = next(iter(self.sessions))    # speech without a track: the one customer there
        session = self.sessions.get(track_id)
        if session is None:
            if track_id != 0:
                return None              # that customer left mid-sentence
            session = self.sessions[0] = Session(0, lang=self.default_language)
        session.last_heard = self.clock()
        result = self.nlu.parse(text)
        session.lang = result.lang
        payload = {'intent': result.intent, 'slots': result.slots, 'language': result.lang,
                   'confidence': round(result.confidence, 3)}
        if self.store_raw_text:
            payload['text'] = text
        self._event(session, 'dialogue_turn', payload)
        self._handle(session, result, text)
        return result

    def _handle(self, session: Session, result: NluResult, text: str) -> None:
        intent, slots = result.intent, result.slots
        if session.state == 'await_budget' and ('max_price' in slots or 'min_price' in slots) and intent in (
                'unknown', 'recommend', 'affirm', 'find_product'):
            session.slots.update({k: v for k, v in slots.items() if k in ('min_price', 'max_price', 'category', 'brand')})
            return self._request_recommendations(session)
        if session.state == 'await_guide' and intent in ('affirm', 'guide_to') and not slots.get('zone') \
                and not slots.get('category') and not slots.get('sku'):
            return self._start_guide(session, session.offered_zone)
        if session.state == 'await_checkin' and intent in ('affirm', 'vip_checkin'):
            return self._check_in(session, text)
        if intent == 'deny' and session.state in ('await_guide', 'await_checkin', 'await_budget'):
            if session.state == 'await_budget':
                return self._request_recommendations(session)
            session.state = 'open'
            return self._reply(session, 'deny', 'anything_else')
        handler = getattr(self, f'_on_{intent}')
        handler(session, result, text)

    def _on_greet(self, session: Session, result: NluResult, text: str) -> None:
        self._reply(session, 'greet', 'greet_back')

    def _on_goodbye(self, session: Session, result: NluResult, text: str) -> None:
        self._reply(session, 'goodbye', 'goodbye')
        self._end(session, 'goodbye')

    def _on_thanks(self, session: Session, result: NluResult, text: str) -> None:
        self._reply(session, 'thanks', 'thanks')

    def _on_affirm(self, session: Session, result: NluResult, text: str) -> None:
        self._reply(session, 'affirm', 'ask_need')

    def _on_deny(self, session: Session, result: NluResult, text: str) -> None:
        self._reply(session, 'deny', 'anything_else')

    def _on_unknown(self, session: Session, result: NluResult, text: str) -> None:
        self._reply(session, 'unknown', 'unknown')

    def _on_call_staff(self, session: Session, result: NluResult, text: str) -> None:
        self._call_staff(session, 'customer_request')
        self._reply(session, 'call_staff', 'staff_called')

    def _on_find_product(self, session: Session, result: NluResult, text: str) -> None:
        slots = result.slots
        product = self.catalog.by_sku.get(slots.get('sku', ''))
        if product is not None:
            session.slots = {'sku': product.sku, 'category': product.category, 'brand': product.brand}
            return self._offer(session, 'find_product', product.zone, 'product_where', name=self._name(product, session.lang),
                               zone=self.zones.name(product.zone, session.lang), price=_yuan(product.price_cny),
                               stock=self._stock(product, session.lang))
        matches = self._products(slots)
        if not matches:
            return self._reply(session, 'find_product', 'not_carried')
        session.slots = {k: v for k, v in slots.items() if k in ('category', 'brand', 'min_price', 'max_price')}
        zone = _most_common([p.zone for p in matches])
        self._offer(session, 'find_product', zone, 'category_where', what=self._what(slots, session.lang),
                    zone=self.zones.name(zone, session.lang))

    def _on_ask_price(self, session: Session, result: NluResult, text: str) -> None:
        slots = dict(result.slots) or dict(session.slots)
        product = self.catalog.by_sku.get(slots.get('sku', ''))
        if product is not None:
            session.slots = {'sku': product.sku, 'category': product.category, 'brand': product.brand}
            promotion = render('promotion_one', session.lang, name=self._name(product, session.lang),
                               promotion=product.promotion) if product.promotion else ''
            return self._reply(session, 'ask_price', 'price', name=self._name(product, session.lang),
                               price=_yuan(product.price_cny), stock=self._stock(product, session.lang), promotion=promotion)
        matches = [p for p in self._products(slots) if p.in_stock]
        if not matches:
            return self._reply(session, 'ask_price', 'which_product' if not slots else 'not_carried')
        session.slots = {k: v for k, v in slots.items() if k in ('category', 'brand')}
        prices = [p.price_cny for p in matches]
        self._reply(session, 'ask_price', 'price_range', what=self._what(slots, session.lang), low=_yuan(min(prices)),
                    high=_yuan(max(prices)), count=len(matches))

    def _on_ask_promotion(self, session: Session, result: NluResult, text: str) -> None:
        slots = result.slots or {k: v for k, v in session.slots.items() if k in ('sku', 'category', 'brand')}
        product = self.catalog.by_sku.get(slots.get('sku', ''))
        if product is not None:
            key = 'promotion_one' if product.promotion else 'promotion_none'
            return self._reply(session, 'ask_promotion', key, name=self._name(product, session.lang), promotion=product.promotion)
        offers = [p for p in self._products(slots) if p.promotion and p.in_stock]
        if not offers:
            return self._reply(session, 'ask_promotion', 'promotion_nothing')
        seen, items = set(), []
        for product in offers:
            if product.promotion not in seen:
                seen.add(product.promotion)
                items.append(f'{self._name(product, session.lang)} {product.promotion}')
        self._reply(session, 'ask_promotion', 'promotion_list', items=('；' if session.lang == 'zh' else '; ').join(items[:3]))

    def _on_recommend(self, session: Session, result: NluResult, text: str) -> None:
        slots = result.slots
        if slots.get('category') and slots.get('category') != session.slots.get('category'):
            session.slots = {}
        session.slots.update({k: v for k, v in slots.items() if k in ('category', 'brand', 'min_price', 'max_price')})
        has_price = 'min_price' in session.slots or 'max_price' in session.slots
        if not session.slots.get('category') and not session.slots.get('brand'):
            session.state = 'open'
            return self._reply(session, 'recommend', 'ask_need')
        if not has_price and not session.asked_budget:
            session.asked_budget, session.state = True, 'await_budget'
            return self._reply(session, 'recommend', 'ask_budget', what=self._what(session.slots, session.lang))
        self._request_recommendations(session)

    def _on_guide_to(self, session: Session, result: NluResult, text: str) -> None:
        slots = result.slots
        zone = slots.get('zone', '')
        if not zone:
            product = self.catalog.by_sku.get(slots.get('sku', ''))
            matches = [product] if product else self._products(slots)
            zone = _most_common([p.zone for p in matches]) if matches else session.offered_zone
        if not zone:
            return self._reply(session, 'guide_to', 'unknown_zone')
        self._start_guide(session, zone)

    def _on_vip_checkin(self, session: Session, result: NluResult, text: str) -> None:
        self._check_in(session, text)

    # -- recommendations and guiding -----------------------------------------------------
    def _request_recommendations(self, session: Session) -> None:
        s = session.slots
        query = RecommendQuery(session.track_id, session.customer_id, s.get('category', ''), s.get('brand', ''),
                               float(s.get('min_price') or 0.0), float(s.get('max_price') or 0.0), RECOMMEND_K, session.lang)
        session.state = 'recommending'
        items = self._recommend(query)
        if items is not None:
            self.on_recommendations(session.track_id, items)

    def on_recommendations(self, track_id: int, items: list[RecommendedProduct] | None) -> None:
        """Items from the recommender (None: the service failed)."""
        session = self.sessions.get(track_id)
        if session is None:
            return
        session.state = 'open'
        if items is None:
            self._call_staff(session, 'recommendation_unavailable')
            return self._reply(session, 'recommend', 'recommend_failed')
        items = items[:RECOMMEND_K]
        self._event(session, 'recommendation', {'skus': [i.sku for i in items], 'slots': session.slots})
        if not items:
            return self._reply(session, 'recommend', 'recommend_none')
        en = session.lang == 'en'
        lines = [render('recommend_item', session.lang, rank=rank, name=item.name_en if en else item.name_zh,
                        price=_yuan(item.price_cny), reason=item.reason_en if en else item.reason_zh)
                 for rank, item in enumerate(items, 1)]
        zone = _most_common([i.zone for i in items])
        self._offer(session, 'recommend', zone, 'recommend_intro', count=len(items),
                    items=('；' if not en else '; ').join(lines), zone=self.zones.name(zone, session.lang))

    def _offer(self, session: Session, intent: str, target_zone: str, key: str, **values: object) -> None:
        session.offered_zone, session.state = target_zone, 'await_guide'
        self._reply(session, intent, key, **values)

    def _start_guide(self, session: Session, zone: str) -> None:
        session.state, session.guiding_zone = 'guiding', zone
        self._reply(session, 'guide_to', 'guide_start', zone=self.zones.name(zone, session.lang))
        self._event(session, 'guide', {'zone': zone, 'status': 'started'})
        self._guide(session.track_id, zone)

    def _guiding_session(self, zone: str) -> Session | None:
        return next((s for s in self.sessions.values() if s.state == 'guiding' and s.guiding_zone == zone), None)

    def on_guide_feedback(self, track_id: int, distance_remaining_m: float) -> None:
        """Narrate the way once in a while (the node calls this for some feedback messages)."""
        session = self.sessions.get(track_id)
        if session is not None and session.state == 'guiding' and round(distance_remaining_m) >= 1:
            self._reply(session, 'guide_to', 'guide_on_way', zone=self.zones.name(session.guiding_zone, session.lang),
                        metres=round(distance_remaining_m))

    def on_arrival(self, zone: str, narration: str = '') -> None:
        session = self._guiding_session(zone)
        if session is None:
            return
        session.state, session.last_heard = 'open', self.clock()
        extra = narration or render('arrival_extra', session.lang)
        self._reply(session, 'guide_to', 'guide_arrived', zone=self.zones.name(zone, session.lang), extra=extra)
        self._event(session, 'guide', {'zone': zone, 'status': 'arrived'})

    def on_guide_result(self, track_id: int, zone: str, success: bool, reason: str) -> None:
        session = self.sessions.get(track_id)
        if session is None or session.state != 'guiding':
            return
        if success:
            return self.on_arrival(zone)
        session.state, session.last_heard = 'open', self.clock()
        self._reply(session, 'guide_to', 'guide_failed', reason=reason, zone=self.zones.name(zone, session.lang))
        self._event(session, 'guide', {'zone': zone, 'status': 'failed', 'reason': reason})

    # -- VIP check-in --------------------------------------------------------------------
    def _todays_appointment(self, customer_id: str) -> Appointment | None:
        today = self.wall_clock().date()
        mine = [a for a in self.appointments if a.customer_id == customer_id and a.start.date() == today]
        return min(mine, key=lambda a: abs(a.start - self.wall_clock())) if mine else None

    def _find_appointment(self, session: Session, text: str) -> Appointment | None:
        if session.appointment is not None:
            return session.appointment
        now = self.wall_clock()
        todays = [a for a in self.appointments if a.start.date() == now.date()]
        if session.customer_id:
            mine = [a for a in todays if a.customer_id == session.customer_id]
            if mine:
                return min(mine, key=lambda a: abs(a.start - now))
        name = parse_name(text)
        clock = parse_clock(text)
        candidates = todays
        if name:
            candidates = [a for a in candidates if name.lower() in a.name.lower() or a.name.lower() in name.lower()]
        if clock:
            candidates = [a for a in candidates if (a.start.hour, a.start.minute) == clock]
        if not name and not clock:
            return None
        return min(candidates, key=lambda a: abs(a.start - now)) if candidates else None

    def _check_in(self, session: Session, text: str) -> None:
        appointment = self._find_appointment(session, text)
        if appointment is None:
            if session.state != 'await_checkin' and not (parse_name(text) or parse_clock(text)):
                session.state = 'await_checkin'
                return self._reply(session, 'vip_checkin', 'checkin_ask')
            session.state = 'open'
            self._call_staff(session, 'appointment_not_found')
            self._event(session, 'vip_checkin', {'status': 'not_found'})
            return self._reply(session, 'vip_checkin', 'checkin_unknown')
        session.appointment = appointment
        now = self.wall_clock()
        values = dict(name=appointment.name, time=appointment.start.strftime('%H:%M'), staff=appointment.staff or '',
                      zone=self.zones.name(appointment.meeting_point, session.lang))
        if now > appointment.end:
            status, key = 'missed', 'checkin_missed'
        elif now < appointment.start - EARLY_MARGIN:
            status, key = 'early', 'checkin_early'
        elif now > appointment.start + LATE_MARGIN:
            status, key = 'late', 'checkin_late'
        else:
            status, key = 'on_time', 'checkin_ok'
        self._event(session, 'vip_checkin', {'status': status, 'appointment_id': appointment.appointment_id})
        self._call_staff(session, f'vip_checkin_{status}', appointment=appointment)
        if status == 'missed':
            session.state = 'open'
            return self._reply(session, 'vip_checkin', key, **values)
        self._offer(session, 'vip_checkin', appointment.meeting_point, key, **values)

    # -- helpers -------------------------------------------------------------------------
    def _call_staff(self, session: Session, reason: str, appointment: Appointment | None = None) -> None:
        request = {'track_id': session.track_id, 'customer_pseudonym': session.customer_id, 'reason': reason,
                   'language': session.lang}
        if appointment is not None:
            request.update(appointment_id=appointment.appointment_id, staff=appointment.staff,
                           meeting_point=appointment.meeting_point)
        self._notify_staff(request)
        self._event(session, 'staff_request', {'reason': reason})

    def _products(self, slots: dict) -> list[Product]:
        return [p for p in self.catalog.products
                if (not slots.get('category') or p.category == slots['category'])
                and (not slots.get('brand') or p.brand == slots['brand'])
                and (slots.get('category') or slots.get('brand'))]

    def _what(self, slots: dict, lang: str) -> str:
        category = slots.get('category', '')
        brand = slots.get('brand', '')
        if lang == 'en':
            return ' '.join(x for x in (brand, category.replace('_', ' ') + ('s' if category else '')) if x) or 'products'
        zh_category = self.catalog.categories().get(category, '') if category else ''
        zh_brand = self.catalog.brands().get(brand, '') if brand else ''
        return f'{zh_brand}{zh_category}' or '商品'

    @staticmethod
    def _name(product: Product, lang: str) -> str:
        return product.name_en if lang == 'en' else product.name_zh

    @staticmethod
    def _stock(product: Product, lang: str) -> str:
        return render('in_stock' if product.in_stock else 'sold_out', lang)

    def _reply(self, session: Session, intent: str, key: str, **values: object) -> None:
        self._say(Reply(session.track_id, render(key, session.lang, **values), session.lang, intent))

    def _event(self, session: Session, type_: str, payload: dict) -> None:
        self._emit(Event(type_, session.customer_id, payload))

    def _end(self, session: Session, reason: str) -> None:
        self.sessions.pop(session.track_id, None)
        self._event(session, 'session_end', {'reason': reason})


def _yuan(price: float) -> str:
    return f'{price:.0f}' if price == int(price) else f'{price:.2f}'


def _most_common(values: list[str]) -> str:
    return max(dict.fromkeys(values), key=values.count) if values else ''
