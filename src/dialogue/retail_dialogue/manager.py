"""Dialogue manager: one conversation per customer track, from greeting to guiding, tours and goodbye.

Pure (no rclpy) and single-threaded: every input is a method call that returns the effects the
robot must carry out, as data (`Say`, `Record`, `AskRecommendations`, `StartGuide`, `StartTour`,
`CancelMission`, `CallStaff`, `Enrol`). The node, `retailbot chat` and the tests carry them out and
feed the outcomes back as inputs (`on_recommendations`, `on_guide_result`, `on_tour_stop`,
`on_tour_result`, `on_enrolled`, `on_safety`). Nothing calls back into the core, so no lock is
needed. Intents (`Intent`) and session states (`State`) are enums.

Arrival has one source: the mission's own action. A GuideTo goal has arrived when its result
says so (`on_guide_result`); a tour stop has been reached when the Tour action's feedback says
'presenting' at that stop (`on_tour_stop`), the last stop when the Tour result comes
(`on_tour_result`). `/navigation/arrivals` is for observers (screen, demo) and not read here.

Dialogue state per session follows the customer: the products shown (in order), the product in
focus, the active search constraints, the zone offered (rules in `_handle`, `_merge_constraints`,
`_refine`, `_referred`). A new store (`set_store`) is used from the next turn on, so a store swapped
in between turns never changes a turn half-way, and a conversation in progress keeps its session.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Callable

from retail_common import events as ev
from retail_common.catalog import Product
from retail_common.intents import Intent
from retail_common.store import Appointment

from .followups import CHEAPEST, DEAREST, Cues, product_size, read_cues
from .nlu import CUES, Nlu, NluResult
from .promotions import promotion_text
from .store import parse_clock, parse_name
from .templates import (count_noun, count_of, failure_reason, is_plural_only, join_en, noun, render, verb_are,
                        what_en, what_zh, with_article, yuan)

RECOMMEND_K = 3
SHOW_K = 3
EARLY_MARGIN = timedelta(minutes=30)
LATE_MARGIN = timedelta(minutes=15)
GREETED_MEMORY_S = 1800.0          # a customer seen again within this is not greeted again
MISUNDERSTOOD_BEFORE_STAFF = 2     # turns not understood in a row before staff is offered


class State(str, Enum):
    OPEN = 'open'
    AWAIT_BUDGET = 'await_budget'
    AWAIT_GUIDE = 'await_guide'
    AWAIT_CHECKIN = 'await_checkin'
    AWAIT_STAFF = 'await_staff'
    AWAIT_CONSENT = 'await_consent'
    ENROLLING = 'enrolling'
    RECOMMENDING = 'recommending'
    GUIDING = 'guiding'
    TOURING = 'touring'


# --- effects: what the robot must do -------------------------------------------------------
@dataclass(frozen=True)
class Shown:
    """A product presented in a reply."""
    sku: str
    price_cny: float
    zone: str


@dataclass(frozen=True)
class Say:
    track_id: int
    text: str
    language: str
    intent: str
    products: tuple[Shown, ...] = ()


@dataclass(frozen=True)
class Record:
    """An interaction event to store (through EventSender / RecordEvents): a declared payload
    model of `retail_common.events`."""
    event: ev.EventPayload
    customer_pseudonym: str = ''

    @property
    def type(self) -> str:
        return self.event.TYPE

    @property
    def payload(self) -> dict:
        """The payload as stored and uploaded (JSON types)."""
        return self.event.to_data()


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
class AskRecommendations:
    query: RecommendQuery


@dataclass(frozen=True)
class StartGuide:
    track_id: int
    zone: str


@dataclass(frozen=True)
class StartTour:
    track_id: int
    route: str


@dataclass(frozen=True)
class CancelMission:
    track_id: int


@dataclass(frozen=True)
class CallStaff:
    request: dict


@dataclass(frozen=True)
class Enrol:
    """Enrol the face of the person on `track_id` (after their consent, recorded as `consent_ref`)."""
    track_id: int
    customer_id: str            # a new pseudonym
    display_name: str
    consent_ref: str


Effect = Say | Record | AskRecommendations | StartGuide | StartTour | CancelMission | CallStaff | Enrol


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
class TourProgress:
    route: str
    zones: tuple[str, ...]
    narrated: set[int] = field(default_factory=set)
    skipped: set[int] = field(default_factory=set)
    at: int = -1                        # index of the last stop reached


@dataclass
class Session:
    track_id: int
    customer_id: str = ''
    display_name: str = ''
    vip: bool = False
    lang: str = 'zh'
    state: State = State.OPEN
    greeted: bool = False
    greet_at: float | None = None       # an anonymous greeting waits until then for a name
    asked_budget: bool = False
    last_heard: float = 0.0
    appointment: Appointment | None = None
    # what is under discussion
    constraints: dict = field(default_factory=dict)   # category, brand, min_price, max_price, exclude_brands, exclude_skus
    search: str = ''                                    # 'recommend' | 'find': what a refinement re-runs
    shown: list[str] = field(default_factory=list)      # skus presented, in order
    focus: str = ''                                     # the product last mentioned
    topic: list[str] = field(default_factory=list)      # skus under discussion now (what 'cheaper' is cheaper than)
    offered_zone: str = ''
    guiding_zone: str = ''
    asked_to_step_aside: bool = False    # once per mission
    tour: TourProgress | None = None
    misunderstood: int = 0
    awaiting_recommendations: bool = False
    wanted: list[str] = field(default_factory=list)     # what the customer asked for, for staff


class DialogueManager:
    """Conversations with customers over one store (see the module docstring)."""

    def __init__(self, store, *, silence_timeout_s: float = 60.0, greet_delay_s: float = 0.0, store_raw_text: bool = False,
                 default_language: str = 'zh', clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], datetime] = datetime.now, nlu: Nlu | None = None,
                 new_customer_id: Callable[[], str] = lambda: f'm-{uuid.uuid4().hex[:12]}') -> None:
        self.store = store
        self.nlu = nlu or Nlu(store.catalog, store.zones)
        self.silence_timeout_s = silence_timeout_s
        self.greet_delay_s = greet_delay_s
        self.store_raw_text = store_raw_text
        self.default_language = default_language
        self.clock, self.wall_clock = clock, wall_clock
        self.new_customer_id = new_customer_id
        self.sessions: dict[int, Session] = {}
        self.greeted_customers: dict[str, float] = {}
        self.safety_latched = False
        self._out: list[Effect] = []

    # -- inputs: the store and the base ----------------------------------------------------
    def set_store(self, store, nlu: Nlu | None = None) -> None:
        """Use a new store from the next turn on (sessions, products shown and focus are kept)."""
        self.store = store
        self.nlu = nlu or Nlu(store.catalog, store.zones)

    def on_safety(self, latched: bool) -> list[Effect]:
        """The base's safety latch: while latched nobody is told 'please follow me'."""
        self.safety_latched = latched
        return []

    # -- inputs: customers ---------------------------------------------------------------
    def on_customer(self, track_id: int, customer_id: str = '', display_name: str = '', vip: bool = False) -> list[Effect]:
        """A person appeared or was identified: open a session; greet once per person."""
        self._out = []
        session = self.sessions.get(track_id)
        if session is None:
            session = self.sessions[track_id] = Session(track_id, lang=self.default_language, last_heard=self.clock())
        known_before = session.customer_id
        if customer_id:
            session.customer_id, session.vip = customer_id, vip
            session.display_name = display_name or session.display_name
        now = self.clock()
        if customer_id and now - self.greeted_customers.get(customer_id, -1e18) < GREETED_MEMORY_S and not session.greeted:
            session.greeted = True          # the same person on a new track (turned away and back)
        if session.greeted and session.customer_id:
            self.greeted_customers[session.customer_id] = now
        if self._busy_with_other(session):
            return self._take()             # walking someone else: no greeting across the store
        if not session.customer_id and not session.greeted and self.greet_delay_s > 0:
            # A camera announces a person before it may know their name: wait a moment, so a member
            # is greeted once, by name (tick() greets them anonymously if no name comes).
            if session.greet_at is None:
                session.greet_at = now + self.greet_delay_s
            return self._take()
        return self._greet(session, known_before)

    def _greet(self, session: Session, known_before: str = '') -> list[Effect]:
        now = self.clock()
        session.greet_at = None
        appointment = None
        if session.vip and session.customer_id and not known_before:
            appointment = next(iter(self.store.appointments_for(session.customer_id, self.wall_clock())), None)
        if appointment is not None and session.appointment is None:
            session.appointment = appointment
            self._expect(session, State.AWAIT_CHECKIN)
            key = 'vip_appointment' if session.greeted else 'greet_vip'
            self._say(session, Intent.GREET, key, name=session.display_name, time=appointment.start.strftime('%H:%M'),
                      purpose=appointment.purpose)
        elif not session.greeted:
            if session.display_name:
                self._say(session, Intent.GREET, 'greet_member', name=session.display_name)
            else:
                self._say(session, Intent.GREET, 'greet_anonymous')
        else:
            return self._take()
        if not session.greeted:
            self._record(session, ev.Greeting(member=bool(session.customer_id), vip=session.vip,
                                              appointment=appointment is not None))
        session.greeted = True
        if session.customer_id:
            self.greeted_customers[session.customer_id] = now
        return self._take()

    def on_customer_left(self, track_id: int) -> list[Effect]:
        """The person walked away: end the session quietly (they can no longer hear a goodbye)."""
        self._out = []
        session = self.sessions.get(track_id)
        if session is not None and session.state in (State.GUIDING, State.TOURING):
            return []     # following behind the robot, out of the forward camera's view
        session = self.sessions.pop(track_id, None)
        if session is not None:
            self._record(session, ev.SessionEnd(reason='left', state=session.state.value))
        return self._take()

    def tick(self) -> list[Effect]:
        """End sessions nobody spoke in for `silence_timeout_s` (not while guiding or touring).
        Only the customer the robot is with hears a goodbye; others end quietly."""
        self._out = []
        now = self.clock()
        for session in list(self.sessions.values()):
            if session.greet_at is not None and now >= session.greet_at and not session.greeted:
                if self._busy_with_other(session):
                    session.greet_at = None
                else:
                    before, self._out = self._out, []
                    self._out = before + self._greet(session)
            if session.state in (State.GUIDING, State.TOURING) or now - session.last_heard <= self.silence_timeout_s:
                continue
            if self._engaged() is session:
                self._say(session, Intent.GOODBYE, 'silence_goodbye')
            self._end(session, 'silence')
        return self._take()

    # -- inputs: speech --------------------------------------------------------------------
    def on_utterance(self, track_id: int, text: str) -> list[Effect]:
        """A final utterance of a customer. Utterances of a track that has left are dropped."""
        self._out = []
        if not text.strip():
            return []
        if track_id == 0 and len(self.sessions) == 1:
            track_id = next(iter(self.sessions))    # speech without a track: the one customer there
        session = self.sessions.get(track_id)
        if session is None:
            if track_id != 0:
                return []                # that customer left mid-sentence
            session = self.sessions[0] = Session(0, lang=self.default_language, greeted=True)
        session.last_heard = self.clock()
        session.greeted, session.greet_at = True, None       # they spoke first: answer, no greeting
        result = self.nlu.parse(text)
        session.lang = result.lang
        cues = read_cues(result.masked)
        intent, slots = self._handle(session, result, cues, text)
        if intent is not Intent.UNKNOWN:
            session.misunderstood = 0           # only turns not understood *in a row* lead to staff
        says = [e for e in self._out if isinstance(e, Say)]
        turn = ev.DialogueTurn(
            intent=intent.value, slots=ev.Slots(**slots), language=result.lang,
            confidence=round(result.confidence, 3),
            products=[ev.ShownProduct(sku=p.sku, price_cny=p.price_cny, zone=p.zone) for s in says for p in s.products],
            guide_to=next((e.zone for e in self._out if isinstance(e, StartGuide)), None),
            tour=next((e.route for e in self._out if isinstance(e, StartTour)), None),
            staff_called=any(isinstance(e, CallStaff) for e in self._out),
            text=text[:ev.MAX_TEXT] if self.store_raw_text else None)
        self._out.insert(0, Record(turn, session.customer_id))
        return self._take()

    # -- the turn ---------------------------------------------------------------------------
    def _handle(self, session: Session, result: NluResult, cues: Cues, text: str) -> tuple[Intent, dict]:
        intent, slots = Intent(result.intent), dict(result.slots)
        has_thing = any(k in slots for k in ('sku', 'category', 'brand', 'zone'))
        # A tour in progress: its commands first; any other question is answered and the tour goes on.
        if session.state is State.TOURING and cues.tour in ('next', 'skip', 'stop') and intent not in (
                Intent.CALL_STAFF, Intent.VIP_CHECKIN):
            self._tour_command(session, cues.tour)
            return Intent.TOUR_CONTROL, {'command': cues.tour}
        if intent is Intent.CALL_STAFF:
            self._call_staff(session, 'customer_request')
            self._say(session, intent, 'staff_called')
            if session.state is State.AWAIT_STAFF:
                self._expect(session, State.OPEN)
            return intent, slots
        if session.state is State.AWAIT_STAFF and intent in (Intent.AFFIRM, Intent.DENY):
            self._expect(session, State.OPEN)
            if intent is Intent.AFFIRM:
                self._call_staff(session, 'not_understood')
                self._say(session, Intent.CALL_STAFF, 'staff_called')
                return Intent.CALL_STAFF, slots
            self._say(session, intent, 'anything_else')
            return intent, slots
        if session.state is State.AWAIT_BUDGET and ('max_price' in slots or 'min_price' in slots) and intent in (
                Intent.UNKNOWN, Intent.RECOMMEND, Intent.AFFIRM, Intent.FIND_PRODUCT):
            self._merge_constraints(session, slots)
            self._ask_recommendations(session)
            return Intent.RECOMMEND, slots
        if session.state is State.AWAIT_GUIDE and intent in (Intent.AFFIRM, Intent.GUIDE_TO) and not has_thing \
                and not cues.refers and cues.tour != 'start':
            self._start_guide(session, session.offered_zone)
            return Intent.GUIDE_TO, {'zone': session.offered_zone}
        if session.state is State.AWAIT_CHECKIN and intent in (Intent.AFFIRM, Intent.VIP_CHECKIN):
            self._check_in(session, text)
            return Intent.VIP_CHECKIN, slots
        if intent is Intent.DENY and session.state in (State.AWAIT_GUIDE, State.AWAIT_CHECKIN, State.AWAIT_BUDGET):
            if session.state is State.AWAIT_BUDGET:
                self._ask_recommendations(session)
                return Intent.RECOMMEND, slots
            self._expect(session, State.OPEN)
            self._say(session, intent, 'anything_else')
            return intent, slots
        if session.state is State.AWAIT_CONSENT:
            if intent in (Intent.AFFIRM, Intent.DENY):
                self._consent(session, intent is Intent.AFFIRM, text)
                return Intent.ENROL, {'consent': intent is Intent.AFFIRM}
            session.state = State.OPEN                  # another wish: no consent given
        if cues.enrol and intent not in (Intent.CALL_STAFF, Intent.VIP_CHECKIN) and 'sku' not in slots:
            self._offer_enrolment(session)
            return Intent.ENROL, {}
        if cues.tour == 'start' and 'sku' not in slots and intent not in (Intent.VIP_CHECKIN, Intent.ASK_PRICE):
            self._start_tour(session)
            return Intent.TOUR, {}
        if cues.compare and len(session.shown) >= 2 and 'category' not in slots:
            self._compare(session, cues)
            return Intent.COMPARE, {'skus': self._compared(session, cues)}
        if cues.there and not has_thing and (intent is Intent.AFFIRM or (
                intent is Intent.FIND_PRODUCT and (session.focus or session.offered_zone))):
            intent = Intent.GUIDE_TO            # "ok, take me there", "带我去看看"
        if 'sku' not in slots and (cues.ordinal or (cues.pronoun and (intent is not Intent.UNKNOWN or cues.question))) \
                and not cues.refine:
            product = self._referred(session, cues)
            if product is None:
                if cues.ordinal or intent in (Intent.ASK_PRICE, Intent.GUIDE_TO):
                    self._say(session, Intent.ABOUT_PRODUCT, 'refer_none')
                    return Intent.ABOUT_PRODUCT, {}
            else:
                return self._about(session, product, intent, cues), {'sku': product.sku}
        if cues.refine and 'sku' not in slots and (session.search or session.focus or session.shown):
            self._refine(session, cues.refine, slots)
            return Intent.REFINE, {'refine': cues.refine, **self._public(session.constraints)}
        if cues.what_about and 'sku' not in slots and ('brand' in slots or 'category' in slots) and session.search:
            self._refine(session, 'what_about', slots)
            return Intent.REFINE, {'refine': 'what_about', **self._public(session.constraints)}
        if intent is Intent.UNKNOWN:
            return self._not_understood(session, result), slots
        handler = getattr(self, f'_on_{intent.value}')
        handler(session, slots, cues, result)
        return intent, slots

    def _not_understood(self, session: Session, result: NluResult) -> Intent:
        session.misunderstood += 1
        session.wanted.append('?')
        if session.misunderstood >= MISUNDERSTOOD_BEFORE_STAFF:
            self._expect(session, State.AWAIT_STAFF)
            self._say(session, Intent.UNKNOWN, 'offer_staff')
        else:
            self._say(session, Intent.UNKNOWN, 'out_of_scope' if result.confidence >= 0.5 else 'unknown')
        return Intent.UNKNOWN

    # -- intents ---------------------------------------------------------------------------
    def _on_greet(self, session, slots, cues, result) -> None:
        self._say(session, Intent.GREET, 'greet_back')

    def _on_goodbye(self, session, slots, cues, result) -> None:
        if session.state is State.TOURING:
            self._out.append(CancelMission(session.track_id))
        self._say(session, Intent.GOODBYE, 'goodbye')
        self._end(session, 'goodbye')

    def _on_thanks(self, session, slots, cues, result) -> None:
        self._say(session, Intent.THANKS, 'thanks')

    def _on_affirm(self, session, slots, cues, result) -> None:
        self._say(session, Intent.AFFIRM, 'ask_need', examples=self._examples(session.lang))

    def _on_deny(self, session, slots, cues, result) -> None:
        self._say(session, Intent.DENY, 'anything_else')

    def _on_vip_checkin(self, session, slots, cues, result) -> None:
        self._check_in(session, result.text)

    def _on_find_product(self, session, slots, cues, result) -> None:
        product = self._product(slots)
        if product is not None:
            return self._answer_product(session, product, Intent.FIND_PRODUCT)
        if not slots.get('category') and not slots.get('brand'):
            if zone := slots.get('zone'):
                return self._start_guide(session, zone)
            return self._say(session, Intent.FIND_PRODUCT, 'ask_need', examples=self._examples(session.lang))
        self._merge_constraints(session, slots)
        session.search = 'find'
        where_only = bool(CUES['where'].search(result.masked)) and not CUES['find_product'].search(result.masked)
        self._run_find(session, where_only=where_only)

    def _on_ask_price(self, session, slots, cues, result) -> None:
        product = self._product(slots) or (self._referred(session, cues) if not slots else None)
        if product is None and not slots and session.focus:
            product = self.store.catalog.by_sku.get(session.focus)
        matches = [p for p in self._matching(slots) if p.in_stock] if product is None else []
        if product is None and len(matches) == 1 and (slots.get('category') and slots.get('brand')):
            product = matches[0]                # "西门子冰箱多少钱" and the store has one
        if product is not None:
            self._focus(session, product)
            session.offered_zone = self.store.zone_of(product) or ''      # for "take me there"
            return self._say(session, Intent.ASK_PRICE, 'price', name=self._name(product, session.lang),
                             price=yuan(product.price_cny, session.lang), stock=self._stock(product, session.lang),
                             promotion=self._promotion_line(product, session.lang),
                             products=(self._shown(product),))
        if not slots.get('category') and not slots.get('brand'):
            return self._say(session, Intent.ASK_PRICE, 'which_product')
        if not matches:
            sold_out = self._matching(slots)
            if len(sold_out) == 1:              # the store has it, sold out: say so, with alternatives
                return self._answer_product(session, sold_out[0], Intent.ASK_PRICE)
            if sold_out:
                self._merge_constraints(session, slots)
                session.search = 'find'
                return self._run_find(session)
            return self._say(session, Intent.ASK_PRICE, 'not_carried', what=self._what(slots, session.lang))
        self._merge_constraints(session, slots)
        session.topic = [p.sku for p in matches]
        prices = [p.price_cny for p in matches]
        self._say(session, Intent.ASK_PRICE, 'price_range', what=self._what(slots, session.lang, capital=True),
                  low=yuan(min(prices), session.lang), high=yuan(max(prices), session.lang), count=len(matches),
                  count_models=count_noun(len(matches), 'model'))

    def _on_ask_promotion(self, session, slots, cues, result) -> None:
        product = self._product(slots)
        if product is None and not slots and cues.refers:
            product = self._referred(session, cues)
        lang = session.lang
        if product is not None:
            self._focus(session, product)
            if product.promotion:
                return self._say(session, Intent.ASK_PROMOTION, 'promotion_one', name=self._name(product, lang),
                                 promotion=self._promo(product, lang), products=(self._shown(product),))
            return self._say(session, Intent.ASK_PROMOTION, 'promotion_none', name=self._name(product, lang))
        offers = self.store.promotions()
        scoped = bool(slots.get('category') or slots.get('brand'))
        if scoped:
            offers = [p for p in offers if self._fits(p, slots)]
        if not offers:
            if scoped:
                return self._say(session, Intent.ASK_PROMOTION, 'promotion_nothing_what', what=self._what(slots, lang))
            return self._say(session, Intent.ASK_PROMOTION, 'promotion_nothing')
        chosen, seen = [], set()
        for product in offers:          # best first; one product per promotion text and category
            key = (product.promotion, product.category)
            if key not in seen:
                seen.add(key)
                chosen.append(product)
            if len(chosen) == SHOW_K:
                break
        items = self._sep(lang).join(f'{self._name(p, lang)} {yuan(p.price_cny, lang)}，{self._promo(p, lang)}'
                                     if lang != 'en' else f'the {p.name_en} at {p.price_cny:,.0f} yuan: {self._promo(p, lang)}'
                                     for p in chosen)
        self._present(session, chosen)
        session.offered_zone = self.store.zone_of(chosen[0]) or ''
        self._expect(session, State.AWAIT_GUIDE if session.offered_zone else State.OPEN)
        if scoped:
            return self._say(session, Intent.ASK_PROMOTION, 'promotion_list_what', what=self._what(slots, lang),
                             items=items, products=self._shown_all(chosen))
        self._say(session, Intent.ASK_PROMOTION, 'promotion_list', items=items, products=self._shown_all(chosen))

    def _on_recommend(self, session, slots, cues, result) -> None:
        product = self._product(slots)
        if product is not None and not ('max_price' in slots or 'min_price' in slots):
            return self._answer_product(session, product, Intent.RECOMMEND)
        self._merge_constraints(session, slots)
        session.search = 'recommend'
        c = session.constraints
        if not c.get('category') and not c.get('brand'):
            self._expect(session, State.OPEN)
            return self._say(session, Intent.RECOMMEND, 'ask_need', examples=self._examples(session.lang))
        if 'min_price' not in c and 'max_price' not in c and not session.asked_budget:
            session.asked_budget = True
            self._expect(session, State.AWAIT_BUDGET)
            return self._say(session, Intent.RECOMMEND, 'ask_budget', what=self._what(c, session.lang))
        self._ask_recommendations(session)

    def _on_guide_to(self, session, slots, cues, result) -> None:
        zone = slots.get('zone', '')
        if not zone:
            product = self._product(slots)
            if product is not None:
                self._focus(session, product)
                zone = self.store.zone_of(product) or ''
            elif slots.get('category') or slots.get('brand'):
                zone = self._zone_for(slots)
            elif session.focus and session.focus in self.store.catalog.by_sku:
                zone = self.store.zone_of(self.store.catalog.by_sku[session.focus]) or session.offered_zone
            else:
                zone = session.offered_zone
        if not zone:
            return self._say(session, Intent.GUIDE_TO, 'unknown_zone')
        self._start_guide(session, zone)

    # -- products, searches, references ---------------------------------------------------------
    def _answer_product(self, session: Session, product: Product, intent: Intent) -> None:
        """'Do you have X?': yes/no with stock and price, then the location; sold out: alternatives."""
        lang = session.lang
        self._focus(session, product)
        session.search = ''                 # "cheaper", "any others" now refine this product's kind
        zone = self.store.zone_of(product) or ''
        session.wanted.append(product.sku)
        if product.in_stock:
            self._offer(session, zone)
            return self._say(session, intent, 'product_in_stock', name=self._name(product, lang),
                             price=yuan(product.price_cny, lang), zone=self.store.zone_name(zone, lang),
                             promotion=self._promotion_line(product, lang), products=(self._shown(product),))
        self._say(session, intent, 'product_sold_out', name=self._name(product, lang))
        alternatives = self._alternatives(product)
        if not alternatives:
            self._expect(session, State.AWAIT_STAFF)
            return self._say(session, intent, 'no_alternatives')
        self._present(session, alternatives)
        self._offer(session, self.store.zone_of(alternatives[0]) or zone)
        self._say(session, intent, 'alternatives', items=self._list(alternatives, lang),
                  zone=self.store.zone_name(session.offered_zone, lang), products=self._shown_all(alternatives))

    def _alternatives(self, product: Product) -> list[Product]:
        """In-stock products of the same kind, same brand first, then the nearest in price."""
        same = [p for p in self.store.catalog.products if p.category == product.category and p.in_stock
                and p.sku != product.sku]
        same.sort(key=lambda p: (p.brand != product.brand, abs(p.price_cny - product.price_cny)))
        return same[:SHOW_K]

    def _run_find(self, session: Session, where_only: bool = False) -> None:
        """'Do you have Huawei tablets?' / 'where are the TVs?' over the active constraints."""
        lang, c = session.lang, session.constraints
        matches = self._matching(c)
        in_stock = [p for p in matches if p.in_stock]
        what = self._what(c, lang)
        if not matches:
            return self._not_carried(session, c)
        zone = self._zone_for(c, in_stock or matches)
        if where_only and not c.get('brand') and 'max_price' not in c and 'min_price' not in c:
            self._offer(session, zone)
            return self._say(session, Intent.FIND_PRODUCT, 'category_where', what=self._what(c, lang, capital=True),
                             are=verb_are(self._what(c, 'en')), zone=self.store.zone_name(zone, lang))
        if not in_stock:
            self._say(session, Intent.FIND_PRODUCT, 'have_sold_out_all', what=what, are=verb_are(self._what(c, 'en')))
            self._expect(session, State.AWAIT_STAFF)
            return self._say(session, Intent.FIND_PRODUCT, 'no_alternatives')
        examples = sorted(in_stock, key=lambda p: (not p.promotion, p.price_cny))[:SHOW_K]
        examples.sort(key=lambda p: p.price_cny)
        self._present(session, examples)
        self._offer(session, zone)
        prices = [p.price_cny for p in in_stock]
        self._say(session, Intent.FIND_PRODUCT, 'have_yes', what=what, count=len(in_stock),
                  count_what=self._count_what(len(in_stock), c), low=yuan(min(prices), lang),
                  high=yuan(max(prices), lang), zone=self.store.zone_name(zone, lang),
                  items=self._list(examples, lang), products=self._shown_all(examples))

    def _not_carried(self, session: Session, c: dict) -> None:
        lang = session.lang
        category, brand = c.get('category', ''), c.get('brand', '')
        if category and brand:
            others = [p for p in self.store.catalog.products if p.category == category and p.in_stock
                      and p.brand not in c.get('exclude_brands', ())]
            if others:
                brands = list(dict.fromkeys(p.brand for p in sorted(others, key=lambda p: p.price_cny)))
                examples = []
                for b in brands[:SHOW_K]:
                    examples.append(min((p for p in others if p.brand == b), key=lambda p: p.price_cny))
                self._present(session, examples)
                self._offer(session, self._zone_for({'category': category}, examples))
                return self._say(session, Intent.FIND_PRODUCT, 'not_carried_alternatives', what=self._what(c, lang),
                                 other=self._what({'category': category}, lang), items=self._list(examples, lang),
                                 products=self._shown_all(examples))
            brand_categories = sorted({p.category for p in self.store.catalog.products if p.brand == brand})
            if brand_categories:
                self._say(session, Intent.FIND_PRODUCT, 'not_carried', what=self._what(c, lang))
                names = [self._what({'category': k}, lang) for k in brand_categories]
                return self._say(session, Intent.FIND_PRODUCT, 'brand_has', brand=self._brand(brand, lang),
                                 categories=join_en(names) if lang == 'en' else '、'.join(names))
        self._expect(session, State.OPEN)
        self._say(session, Intent.FIND_PRODUCT, 'not_carried', what=self._what(c, lang))

    def _refine(self, session: Session, how: str, slots: dict) -> None:
        """Modify the last search: cheaper, pricier, bigger, smaller, another brand, more, what about X."""
        lang = session.lang
        base = [self.store.catalog.by_sku[s] for s in session.topic if s in self.store.catalog.by_sku]
        # After a search its constraints are refined; after a question about one product, its kind.
        c = dict(session.constraints) if session.search or not base else {'category': base[0].category}
        if not c.get('category') and base:
            c['category'] = base[0].category
        session.search = session.search or 'find'
        if how == 'what_about':
            if 'brand' in slots:
                c['brand'] = slots['brand']
                c.pop('exclude_brands', None)
            if 'category' in slots and slots['category'] != c.get('category'):
                c['category'] = slots['category']
            c.pop('exclude_skus', None)
        elif how == 'cheaper':
            anchor = min((p.price_cny for p in base), default=c.get('max_price'))
            if anchor:
                c['max_price'] = float(anchor) - 0.01
                c.pop('min_price', None)
        elif how == 'pricier':
            anchor = max((p.price_cny for p in base), default=c.get('min_price'))
            if anchor:
                c['min_price'] = float(anchor) + 0.01
                c.pop('max_price', None)
        elif how == 'other_brand':
            brands = set(c.get('exclude_brands', ())) | {p.brand for p in base}
            if c.get('brand'):
                brands.add(c['brand'])
            c['exclude_brands'] = tuple(sorted(brands))
            c.pop('brand', None)
        elif how == 'more':
            c['exclude_skus'] = tuple(dict.fromkeys([*c.get('exclude_skus', ()), *(p.sku for p in base)]))
        if 'max_price' in slots or 'min_price' in slots:
            c.pop('max_price', None)
            c.pop('min_price', None)
            c.update({k: slots[k] for k in ('max_price', 'min_price') if k in slots})
        session.constraints = c
        candidates = [p for p in self._matching(c) if p.in_stock]
        if how in ('bigger', 'smaller'):
            sizes = [s for s in (product_size(p.name_en, p.name_zh) for p in base) if s is not None]
            if sizes:
                bound = max(sizes) if how == 'bigger' else min(sizes)
                candidates = [p for p in candidates if (product_size(p.name_en, p.name_zh) or 0) > bound] if how == 'bigger' \
                    else [p for p in candidates if 0 < (product_size(p.name_en, p.name_zh) or 0) < bound]
                candidates.sort(key=lambda p: product_size(p.name_en, p.name_zh) or 0, reverse=how == 'smaller')
            else:       # no sizes in the names: the next price tier up or down
                anchor = (max if how == 'bigger' else min)((p.price_cny for p in base), default=0.0)
                candidates = [p for p in candidates if (p.price_cny > anchor if how == 'bigger' else p.price_cny < anchor)]
        elif how == 'cheaper':
            candidates.sort(key=lambda p: -p.price_cny)          # the nearest cheaper first
        elif how == 'pricier':
            candidates.sort(key=lambda p: p.price_cny)
        if not candidates:
            if c.get('brand') and c.get('category') and how == 'what_about':
                unbounded = [p for p in self._matching({k: v for k, v in c.items() if k not in ('max_price', 'min_price')})
                             if p.in_stock]
                if unbounded:           # the brand has them, not within the budget
                    cheapest = min(unbounded, key=lambda p: p.price_cny)
                    self._present(session, [cheapest])
                    self._offer(session, self.store.zone_of(cheapest) or '')
                    return self._say(session, Intent.REFINE, 'over_budget', what=self._what(c, lang),
                                     budget=yuan(float(c.get('max_price') or 0), lang), name=self._name(cheapest, lang),
                                     price=yuan(cheapest.price_cny, lang), products=(self._shown(cheapest),))
                return self._not_carried(session, c)
            key = {'cheaper': 'cheaper_none', 'bigger': 'bigger_none', 'more': 'other_none'}.get(how, 'refine_none')
            return self._say(session, Intent.REFINE, key, what=self._what(c, lang))
        if session.search == 'recommend' and how not in ('bigger', 'smaller', 'cheaper', 'pricier'):
            return self._ask_recommendations(session)
        chosen = candidates[:SHOW_K]
        self._present(session, chosen)
        self._offer(session, self.store.zone_of(chosen[0]) or '')
        self._say(session, Intent.REFINE, 'recommend_intro', count=len(chosen),
                  count_picks=count_noun(len(chosen), 'option'), are='is' if len(chosen) == 1 else 'are',
                  them='it' if len(chosen) == 1 else 'them', items=self._list(chosen, lang),
                  zone=self.store.zone_name(session.offered_zone, lang), products=self._shown_all(chosen))

    def _referred(self, session: Session, cues: Cues) -> Product | None:
        catalog = self.store.catalog.by_sku
        if cues.ordinal in (CHEAPEST, DEAREST) and session.shown:
            shown = [catalog[k] for k in session.shown if k in catalog]
            pick = min if cues.ordinal == CHEAPEST else max
            return pick(shown, key=lambda p: p.price_cny) if shown else None
        if cues.ordinal and session.shown:
            index = cues.ordinal - 1 if cues.ordinal > 0 else len(session.shown) - 1     # -1: the last one
            if 0 <= index < len(session.shown):
                return catalog.get(session.shown[index])
            return None
        if cues.pronoun and session.focus:
            return catalog.get(session.focus)
        return None

    def _about(self, session: Session, product: Product, intent: Intent, cues: Cues) -> Intent:
        """A question about a product referred to ('第一个怎么样', 'how much is the second one', 'take me there')."""
        lang = session.lang
        self._focus(session, product)
        if intent is Intent.GUIDE_TO or (cues.there and intent is Intent.AFFIRM):
            self._start_guide(session, self.store.zone_of(product) or '')
            return Intent.GUIDE_TO
        if intent is Intent.ASK_PROMOTION:
            key = 'promotion_one' if product.promotion else 'promotion_none'
            self._say(session, intent, key, name=self._name(product, lang), promotion=self._promo(product, lang),
                      products=(self._shown(product),))
            return intent
        zone = self.store.zone_of(product) or ''
        self._offer(session, zone)
        self._say(session, Intent.ABOUT_PRODUCT, 'product_about', name=self._name(product, lang),
                  price=yuan(product.price_cny, lang), stock=self._stock(product, lang),
                  zone=self.store.zone_name(zone, lang), promotion=self._promotion_line(product, lang),
                  products=(self._shown(product),))
        return Intent.ABOUT_PRODUCT

    def _compared(self, session: Session, cues: Cues) -> list[str]:
        return session.shown[:2]

    def _compare(self, session: Session, cues: Cues) -> None:
        lang = session.lang
        a, b = (self.store.catalog.by_sku[s] for s in self._compared(session, cues))
        points = []
        cheaper, dearer = (a, b) if a.price_cny <= b.price_cny else (b, a)
        diff = dearer.price_cny - cheaper.price_cny
        if diff:
            points.append(f'{self._name(cheaper, lang)}便宜{yuan(diff, lang)}' if lang != 'en'
                          else f'the {cheaper.name_en} is {yuan(diff, lang)} cheaper')
        else:
            points.append('价格一样' if lang != 'en' else 'they cost the same')
        for p in (a, b):
            if p.promotion:
                points.append(f'{self._name(p, lang)}有优惠（{p.promotion}）' if lang != 'en'
                              else f'the {p.name_en} has an offer ({self._promo(p, lang)})')
            if not p.in_stock:
                points.append(f'{self._name(p, lang)}目前缺货' if lang != 'en' else f'the {p.name_en} is sold out')
        sa, sb = (product_size(p.name_en, p.name_zh) for p in (a, b))
        if sa and sb and sa != sb:
            big = a if sa > sb else b
            points.append(f'{self._name(big, lang)}尺寸更大' if lang != 'en' else f'the {big.name_en} is bigger')
        first = self.store.catalog.by_sku[session.shown[0]]
        points.append(f'第一款{self._name(first, lang)}是我更推荐的' if lang != 'en'
                      else f'my first suggestion is the {first.name_en}')
        self._focus(session, first)
        self._offer(session, self.store.zone_of(first) or '')
        self._say(session, Intent.COMPARE, 'compare', a=self._name(a, lang), b=self._name(b, lang),
                  points=('，'.join(points) if lang != 'en' else '; '.join(points)),
                  products=(self._shown(a), self._shown(b)))

    def _merge_constraints(self, session: Session, slots: dict) -> None:
        """A new request replaces the constraints it conflicts with and keeps compatible ones:
        another category drops the brand and the budget of the old one (unless said again); a
        new brand or budget replaces the old; a single product asked about sets no constraint."""
        c = dict(session.constraints)
        category = slots.get('category')
        if category and category != c.get('category'):
            c = {}
        if slots.get('brand'):
            c['brand'] = slots['brand']
            c.pop('exclude_brands', None)
        elif category and c.get('brand') and not any(p.brand == c['brand'] and p.category == category
                                                      for p in self.store.catalog.products):
            c.pop('brand')
        if category:
            c['category'] = category
        if 'max_price' in slots or 'min_price' in slots:
            c.pop('max_price', None)
            c.pop('min_price', None)
            c.update({k: slots[k] for k in ('max_price', 'min_price') if k in slots})
        c.pop('exclude_skus', None)
        session.constraints = c
        session.wanted.append(self._what(c, 'en'))

    def _ask_recommendations(self, session: Session) -> None:
        c = session.constraints
        query = RecommendQuery(session.track_id, session.customer_id, c.get('category', ''), c.get('brand', ''),
                               float(c.get('min_price') or 0.0), float(c.get('max_price') or 0.0),
                               RECOMMEND_K + len(c.get('exclude_skus', ())) + 3 * len(c.get('exclude_brands', ())),
                               session.lang)
        session.awaiting_recommendations = True
        self._expect(session, State.RECOMMENDING)
        self._out.append(AskRecommendations(query))

    def on_recommendations(self, track_id: int, items: list[RecommendedProduct] | None) -> list[Effect]:
        """Items from the recommender (None: the service failed)."""
        self._out = []
        session = self.sessions.get(track_id)
        if session is None or not session.awaiting_recommendations:
            return []
        session.awaiting_recommendations = False
        self._expect(session, State.OPEN)
        if items is None:
            self._call_staff(session, 'recommendation_unavailable')
            self._say(session, Intent.RECOMMEND, 'recommend_failed')
            return self._take()
        c = session.constraints
        items = [i for i in items if i.sku not in c.get('exclude_skus', ())
                 and self.store.catalog.by_sku.get(i.sku) is not None
                 and self.store.catalog.by_sku[i.sku].brand not in c.get('exclude_brands', ())][:RECOMMEND_K]
        self._record(session, ev.Recommendation(
            skus=[i.sku for i in items], slots=ev.Slots(**self._public(c)),
            products=[ev.RecommendedItem(sku=i.sku, price_cny=self.store.catalog.by_sku[i.sku].price_cny,
                                         zone=self.store.zone_of(self.store.catalog.by_sku[i.sku]) or '',
                                         reason_zh=i.reason_zh, reason_en=self._reason(i, 'en')) for i in items]))
        if not items:
            self._say(session, Intent.RECOMMEND, 'recommend_none')
            return self._take()
        lang = session.lang
        en = lang == 'en'
        # The price said is the store's current one (a price changed on the platform is quoted at once).
        lines = [render('recommend_item', lang, rank=rank, name=item.name_en if en else item.name_zh,
                        price=yuan(self.store.catalog.by_sku[item.sku].price_cny, lang),
                        reason=self._reason(item, lang))
                 for rank, item in enumerate(items, 1)]
        products = [self.store.catalog.by_sku[i.sku] for i in items]
        self._present(session, products)
        self._offer(session, _most_common([self.store.zone_of(p) or '' for p in products]))
        self._say(session, Intent.RECOMMEND, 'recommend_intro', count=len(items),
                  count_picks=count_noun(len(items), 'pick'), are='is' if len(items) == 1 else 'are',
                  them='it' if len(items) == 1 else 'them', items=self._sep(lang).join(lines),
                  zone=self.store.zone_name(session.offered_zone, lang), products=self._shown_all(products))
        return self._take()

    # -- guiding -----------------------------------------------------------------------------
    def _start_guide(self, session: Session, zone: str) -> None:
        lang = session.lang
        if session.state in (State.TOURING, State.GUIDING):
            self._out.append(CancelMission(session.track_id))      # one mission at a time: the new wish wins
            session.state, session.tour = State.OPEN, None
        if self.safety_latched:
            session.state = State.OPEN
            self._call_staff(session, 'robot_safety_stop', zone=zone)
            return self._say(session, Intent.GUIDE_TO, 'guide_safety_stopped', zone=self.store.zone_name(zone, lang))
        session.state, session.guiding_zone = State.GUIDING, zone
        session.asked_to_step_aside = False
        self._say(session, Intent.GUIDE_TO, 'guide_start', zone=self.store.zone_name(zone, lang))
        self._record(session, ev.GuideMission(zone=zone, status='started'))
        self._out.append(StartGuide(session.track_id, zone))

    def on_guide_feedback(self, track_id: int, distance_remaining_m: float) -> list[Effect]:
        """Narrate the way once in a while (the node calls this for some feedback messages)."""
        self._out = []
        session = self.sessions.get(track_id)
        if session is not None and session.state is State.GUIDING and round(distance_remaining_m) >= 1:
            metres = round(distance_remaining_m)
            self._say(session, Intent.GUIDE_TO, 'guide_on_way', zone=self.store.zone_name(session.guiding_zone, session.lang),
                      metres=f'{metres} {"metre" if metres == 1 else "metres"}' if session.lang == 'en' else metres)
        return self._take()

    def on_guide_state(self, track_id: int, state: str) -> list[Effect]:
        """A change of the guide's feedback state: someone in the robot's way at the start is asked,
        once per mission, to let it through (the guide turns and goes around them meanwhile)."""
        self._out = []
        session = self.sessions.get(track_id)
        if (session is not None and session.state in (State.GUIDING, State.TOURING)
                and state == 'asking_to_step_aside' and not session.asked_to_step_aside):
            session.asked_to_step_aside = True
            self._say(session, Intent.GUIDE_TO, 'guide_step_aside')
        return self._take()

    def on_guide_result(self, track_id: int, zone: str, success: bool, reason: str) -> list[Effect]:
        """The GuideTo action's result: the one source of 'arrived'."""
        self._out = []
        session = self.sessions.get(track_id)
        if session is None or session.state is not State.GUIDING or zone != session.guiding_zone:
            return []                   # not this customer's current goal (e.g. one replaced by a new wish)
        session.state, session.last_heard = State.OPEN, self.clock()
        lang = session.lang
        if success:
            self._arrival_line(session, zone)
            self._record(session, ev.GuideMission(zone=zone, status='arrived'))
            return self._take()
        self._record(session, ev.GuideMission(zone=zone, status='failed', reason=reason))
        if reason == 'cancelled':
            return self._take()
        if reason == 'safety_stop':
            self._call_staff(session, 'robot_safety_stop', zone=zone)
            self._say(session, Intent.GUIDE_TO, 'guide_safety_stopped', zone=self.store.zone_name(zone, lang))
            return self._take()
        session.state = State.AWAIT_STAFF
        self._say(session, Intent.GUIDE_TO, 'guide_failed', reason=failure_reason(reason, lang),
                  zone=self.store.zone_name(zone, lang))
        return self._take()

    def _arrival_line(self, session: Session, zone_id: str) -> None:
        lang = session.lang
        zone = self.store.zones.get(zone_id)
        name = self.store.zone_name(zone_id, lang)
        if zone is not None and zone.kind == 'product':
            focus = self.store.catalog.by_sku.get(session.focus) if len(session.topic) == 1 else None
            if focus is not None and self.store.zone_of(focus) == zone_id:
                what_text = self._name(focus, lang) if lang != 'en' else f'The {focus.name_en}'
                are = 'are' if is_plural_only(focus.name_en) else 'is'
            else:
                c = session.constraints if session.constraints.get('category') in zone.categories else \
                    {'category': zone.categories[0]} if zone.categories else {}
                what_text = self._what(c, lang, capital=True) if c else ('商品' if lang != 'en' else 'The products')
                are = verb_are(self._what(c, 'en')) if c else 'are'
            return self._say(session, Intent.GUIDE_TO, 'guide_arrived_product', zone=name, what=what_text,
                             what_cap=what_text, are=are)
        key = f'arrived_{zone_id}' if f'arrived_{zone_id}' in _ARRIVAL_KEYS else 'arrived_other'
        self._say(session, Intent.GUIDE_TO, 'guide_arrived_place', zone=name, extra=render(key, lang))

    # -- tours -----------------------------------------------------------------------------
    def _start_tour(self, session: Session) -> None:
        tours = self.store.tours
        if not tours:
            return self._say(session, Intent.TOUR, 'no_tour')
        route = 'showroom' if 'showroom' in tours else next(iter(tours))
        if self.safety_latched:
            self._call_staff(session, 'robot_safety_stop')
            return self._say(session, Intent.TOUR, 'tour_start_still')
        if session.state is State.TOURING:
            self._out.append(CancelMission(session.track_id))
        stops = tuple(s.zone for s in tours[route])
        session.state, session.tour = State.TOURING, TourProgress(route, stops)
        lang = session.lang
        self._say(session, Intent.TOUR, 'tour_start', count=len(stops), count_stops=count_noun(len(stops), 'stop'),
                  zone=self.store.zone_name(stops[0], lang))
        self._record(session, ev.Tour(route=route, status='started', stops=len(stops)))
        self._out.append(StartTour(session.track_id, route))

    def _tour_command(self, session: Session, command: str) -> None:
        tour = session.tour
        if command == 'stop':
            self._out.append(CancelMission(session.track_id))
            session.state, session.tour = State.OPEN, None
            self._record(session, ev.Tour(route=tour.route if tour else '', status='stopped'))
            return self._say(session, Intent.TOUR_CONTROL, 'tour_stopped')
        if command == 'skip' and tour is not None:
            upcoming = next((i for i in range(tour.at + 1, len(tour.zones)) if i not in tour.skipped), None)
            if upcoming is not None:
                tour.skipped.add(upcoming)
                return self._say(session, Intent.TOUR_CONTROL, 'tour_skip',
                                 zone=self.store.zone_name(tour.zones[upcoming], session.lang))
        self._say(session, Intent.TOUR_CONTROL, 'tour_next')

    def on_tour_stop(self, track_id: int, stop_index: int, zone: str) -> list[Effect]:
        """The Tour action's feedback says the robot is presenting stop `stop_index`: narrate it once."""
        self._out = []
        session = self.sessions.get(track_id)
        if session is None or session.state is not State.TOURING or session.tour is None:
            return []
        self._narrate(session, stop_index, zone)
        return self._take()

    def on_tour_result(self, track_id: int, success: bool, reason: str, stops_visited: int) -> list[Effect]:
        self._out = []
        session = self.sessions.get(track_id)
        if session is None or session.state is not State.TOURING or session.tour is None:
            return []
        tour = session.tour
        if success and tour.zones:
            self._narrate(session, len(tour.zones) - 1, tour.zones[-1])
        session.state, session.tour, session.last_heard = State.OPEN, None, self.clock()
        self._record(session, ev.Tour(route=tour.route, status='finished' if success else 'failed',
                                      reason=reason, stops_visited=stops_visited))
        if success:
            self._say(session, Intent.TOUR, 'tour_end')
        elif reason != 'cancelled':
            if reason == 'safety_stop':
                self._call_staff(session, 'robot_safety_stop')
            self._say(session, Intent.TOUR, 'tour_failed', reason=failure_reason(reason, session.lang))
        return self._take()

    def _narrate(self, session: Session, index: int, zone_id: str) -> None:
        tour = session.tour
        if index in tour.narrated:
            return
        tour.narrated.add(index)
        tour.at = max(tour.at, index)
        if index in tour.skipped:
            return
        lang = session.lang
        stops = self.store.tours.get(tour.route, ())
        stop = stops[index] if index < len(stops) and stops[index].zone == zone_id else None
        # The store's narration for the stop (written for it, naming the place); without one, the
        # place and what is there, from the store data. Then what is on promotion there.
        text = (stop.narration_en if lang == 'en' else stop.narration_zh) if stop else ''
        if not text:
            zone = self.store.zones.get(zone_id)
            names = [self._what({'category': c}, lang) for c in (zone.categories if zone else ())
                     if any(p.category == c for p in self.store.catalog.products)]
            what = render('tour_stop_auto', lang, categories=join_en(names) if lang == 'en' else '、'.join(names)) \
                if names else ''
            text = render('tour_stop', lang, zone=self.store.zone_name(zone_id, lang), narration=what)
        parts = [text]
        offers = [p for p in self.store.promotions() if self.store.zone_of(p) == zone_id][:2]
        if offers:
            items = self._sep(lang).join(f'{self._name(p, lang)}（{self._promo(p, lang)}）' if lang != 'en'
                                         else f'the {p.name_en} ({self._promo(p, lang)})' for p in offers)
            parts.append(render('tour_stop_promotions', lang, items=items))
        self._out.append(Say(session.track_id, ' '.join(parts), lang, Intent.TOUR.value, self._shown_all(offers)))

    # -- enrolment (consent first) -------------------------------------------------------------
    def _offer_enrolment(self, session: Session) -> None:
        if session.customer_id:
            return self._say(session, Intent.ENROL, 'already_member', name=session.display_name or '')
        self._expect(session, State.AWAIT_CONSENT)
        self._say(session, Intent.ENROL, 'enrol_consent')

    def _consent(self, session: Session, granted: bool, text: str) -> None:
        """The customer's answer to the consent notice; only a yes leads to enrolment."""
        consent_ref = f'dialogue-{self.wall_clock().strftime("%Y%m%dT%H%M%S")}-{session.track_id}'
        customer_id = self.new_customer_id() if granted else ''
        self._out.append(Record(ev.Consent(purpose='face_enrolment', granted=granted, consent_ref=consent_ref,
                                           channel='dialogue', language=session.lang), customer_id))
        if not granted:
            session.state = State.OPEN
            return self._say(session, Intent.ENROL, 'enrol_declined')
        session.state = State.ENROLLING
        self._out.append(Enrol(session.track_id, customer_id, parse_name(text) or '', consent_ref))

    def on_enrolled(self, track_id: int, customer_id: str, display_name: str, success: bool) -> list[Effect]:
        """The outcome of an `Enrol` effect (the perception's enrolment service)."""
        self._out = []
        session = self.sessions.get(track_id)
        if session is None or session.state is not State.ENROLLING:
            return []
        session.state = State.OPEN
        if not success:
            self._call_staff(session, 'enrolment_failed')
            self._say(session, Intent.ENROL, 'enrol_failed')
            return self._take()
        session.customer_id, session.display_name = customer_id, display_name or session.display_name
        self.greeted_customers[customer_id] = self.clock()
        self._record(session, ev.Enrolment(status='enrolled'))
        name = session.display_name
        self._say(session, Intent.ENROL, 'enrol_done', name=(f'，{name}' if session.lang != 'en' else f', {name}')
                  if name else '')
        return self._take()

    # -- VIP check-in ------------------------------------------------------------------------
    def _find_appointment(self, session: Session, text: str) -> Appointment | None:
        if session.appointment is not None:
            return session.appointment
        now = self.wall_clock()
        if session.customer_id:
            mine = self.store.appointments_for(session.customer_id, now)
            if mine:
                return mine[0]
        todays = [a for a in self.store.appointments if a.start.date() == now.date()]
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
        lang = session.lang
        if appointment is None:
            if session.state is not State.AWAIT_CHECKIN and not (parse_name(text) or parse_clock(text)):
                self._expect(session, State.AWAIT_CHECKIN)
                return self._say(session, Intent.VIP_CHECKIN, 'checkin_ask')
            self._expect(session, State.OPEN)
            self._call_staff(session, 'appointment_not_found')
            self._record(session, ev.VipCheckin(status='not_found'))
            return self._say(session, Intent.VIP_CHECKIN, 'checkin_unknown')
        session.appointment = appointment
        now = self.wall_clock()
        staff = appointment.staff or ('店员' if lang != 'en' else 'a member of staff')
        values = dict(name=appointment.name, time=appointment.start.strftime('%H:%M'), staff=staff,
                      zone=self.store.zone_name(appointment.meeting_point, lang))
        if now > appointment.end:
            status, key = 'missed', 'checkin_missed'
        elif now < appointment.start - EARLY_MARGIN:
            status, key = 'early', 'checkin_early'
        elif now > appointment.start + LATE_MARGIN:
            status, key = 'late', 'checkin_late'
        else:
            status, key = 'on_time', 'checkin_ok'
        self._record(session, ev.VipCheckin(status=status, appointment_id=appointment.appointment_id))
        self._call_staff(session, f'vip_checkin_{status}', appointment=appointment)
        if status == 'missed':
            self._expect(session, State.OPEN)
            return self._say(session, Intent.VIP_CHECKIN, key, **values)
        self._offer(session, appointment.meeting_point)
        self._say(session, Intent.VIP_CHECKIN, key, **values)

    # -- helpers -----------------------------------------------------------------------------
    def _call_staff(self, session: Session, reason: str, appointment: Appointment | None = None, zone: str = '') -> None:
        """A staff request carrying what the customer wanted (constraints, product, recent asks)."""
        c = self._public(session.constraints)
        focus = self.store.catalog.by_sku.get(session.focus)
        request = {'track_id': session.track_id, 'customer_pseudonym': session.customer_id, 'reason': reason,
                   'language': session.lang, 'wanted': {
                       'looking_for': self._what(c, 'zh') if c else '', 'constraints': c,
                       'product': focus.sku if focus else '', 'product_name': focus.name_zh if focus else '',
                       'shown': list(session.shown), 'recent': [w for w in session.wanted[-5:] if w != '?'],
                       'zone': zone or session.offered_zone}}
        if appointment is not None:
            request.update(appointment_id=appointment.appointment_id, staff=appointment.staff,
                           meeting_point=appointment.meeting_point)
        self._out.append(CallStaff(request))
        self._record(session, ev.StaffRequest(reason=reason, wanted=request['wanted']['looking_for'],
                                              product=request['wanted']['product']))

    def _busy_with_other(self, session: Session) -> bool:
        return any(s is not session and s.state in (State.GUIDING, State.TOURING) for s in self.sessions.values())

    def _engaged(self) -> Session | None:
        """The customer the robot is with: the one on a mission, else the one heard last."""
        on_mission = [s for s in self.sessions.values() if s.state in (State.GUIDING, State.TOURING)]
        if on_mission:
            return on_mission[0]
        return max(self.sessions.values(), key=lambda s: s.last_heard, default=None)

    def _product(self, slots: dict) -> Product | None:
        return self.store.catalog.by_sku.get(slots.get('sku', ''))

    @staticmethod
    def _fits(p: Product, c: dict) -> bool:
        return ((not c.get('category') or p.category == c['category']) and (not c.get('brand') or p.brand == c['brand'])
                and p.brand not in c.get('exclude_brands', ()) and p.sku not in c.get('exclude_skus', ())
                and p.price_cny >= float(c.get('min_price') or 0)
                and (not c.get('max_price') or p.price_cny <= float(c['max_price'])))

    def _matching(self, c: dict) -> list[Product]:
        if not c.get('category') and not c.get('brand'):
            return []
        return [p for p in self.store.catalog.products if self._fits(p, c)]

    def _zone_for(self, c: dict, products: list[Product] | None = None) -> str:
        """Where a kind of product is: the zone listing the category, else where most of them are."""
        category = c.get('category')
        if category and not c.get('brand'):
            for zone in self.store.zones.values():
                if category in zone.categories:
                    return zone.id
        products = products if products is not None else self._matching({k: c[k] for k in ('category', 'brand') if k in c})
        return _most_common([self.store.zone_of(p) or '' for p in products])

    def _focus(self, session: Session, product: Product) -> None:
        session.focus = product.sku
        session.topic = [product.sku]
        if product.sku not in session.shown:
            session.shown = [product.sku]

    def _present(self, session: Session, products: list[Product]) -> None:
        session.shown = [p.sku for p in products]
        session.topic = list(session.shown)
        session.focus = products[0].sku if products else ''

    def _offer(self, session: Session, zone: str) -> None:
        session.offered_zone = zone
        self._expect(session, State.AWAIT_GUIDE if zone else State.OPEN)

    @staticmethod
    def _expect(session: Session, state: State) -> None:
        """What the next turn is expected to answer; a guide or tour in progress stays the state
        (a question asked on the way is answered and the mission goes on)."""
        if session.state not in (State.GUIDING, State.TOURING):
            session.state = state

    def _shown(self, product: Product) -> Shown:
        return Shown(product.sku, product.price_cny, self.store.zone_of(product) or '')

    def _shown_all(self, products: list[Product]) -> tuple[Shown, ...]:
        return tuple(self._shown(p) for p in products)

    def _list(self, products: list[Product], lang: str) -> str:
        if lang == 'en':
            return join_en([f'the {p.name_en} ({p.price_cny:,.0f} yuan)' for p in products])
        return '、'.join(f'{p.name_zh}（{yuan(p.price_cny, lang)}）' for p in products)

    def _what(self, c: dict, lang: str, capital: bool = False) -> str:
        category, brand = c.get('category', ''), c.get('brand', '')
        if lang == 'en':
            text = what_en(category, brand)
            return text[:1].upper() + text[1:] if capital else text
        categories = self.store.catalog.categories()
        return what_zh(categories.get(category, '') if category else '', self._brand(brand, 'zh') if brand else '')

    def _count_what(self, count: int, c: dict) -> str:
        """'3 Huawei tablets', '1 air fryer', '1 pair of headphones' — English only."""
        category, brand = c.get('category', ''), c.get('brand', '')
        thing = noun(category) if category else 'product'
        return count_of(count, f'{brand} {thing}' if brand else thing)

    def _brand(self, brand: str, lang: str) -> str:
        return self.store.catalog.brands().get(brand, brand) if lang != 'en' else brand

    def _examples(self, lang: str) -> str:
        counts: dict[str, int] = {}
        for p in self.store.catalog.products:
            counts[p.category] = counts.get(p.category, 0) + 1
        top = sorted(counts, key=lambda k: -counts[k])[:3]
        if lang == 'en':
            return ', '.join(with_article(noun(k)) for k in top[:-1]) + f' or {with_article(noun(top[-1]))}' if len(top) > 1 \
                else ''.join(with_article(noun(k)) for k in top)
        names = self.store.catalog.categories()
        return '、'.join(names[k] for k in top)

    @staticmethod
    def _name(product: Product, lang: str) -> str:
        return product.name_en if lang == 'en' else product.name_zh

    @staticmethod
    def _stock(product: Product, lang: str) -> str:
        return render('in_stock' if product.in_stock else 'sold_out', lang)

    def _reason(self, item: RecommendedProduct, lang: str) -> str:
        """The recommender's reason, with a Chinese promotion text in it said in English."""
        if lang != 'en':
            return item.reason_zh
        product = self.store.catalog.by_sku.get(item.sku)
        reason = item.reason_en
        if product is not None and product.promotion and product.promotion in reason:
            reason = reason.replace(product.promotion, self._promo(product, lang))
        return reason

    @staticmethod
    def _promo(product: Product, lang: str) -> str:
        return promotion_text(product.promotion, lang, product.promotion_en)

    def _promotion_line(self, product: Product, lang: str) -> str:
        if not product.promotion:
            return ''
        return render('promotion_one', lang, name=self._name(product, lang), promotion=self._promo(product, lang)) + ' '

    @staticmethod
    def _sep(lang: str) -> str:
        return '; ' if lang == 'en' else '；'

    @staticmethod
    def _public(c: dict) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in c.items()}

    def _say(self, session: Session, intent: Intent, key: str, products: tuple[Shown, ...] = (), **values) -> None:
        values.setdefault('be', 'are' if is_plural_only(str(values.get('name', ''))) else 'is')   # "headphones are"
        text = render(key, session.lang, **values)
        self._out.append(Say(session.track_id, text, session.lang, intent.value, products))

    def _record(self, session: Session, event: ev.EventPayload) -> None:
        self._out.append(Record(event, session.customer_id))

    def _take(self) -> list[Effect]:
        out, self._out = self._out, []
        return out

    def _end(self, session: Session, reason: str) -> None:
        self.sessions.pop(session.track_id, None)
        self._record(session, ev.SessionEnd(reason=reason))


_ARRIVAL_KEYS = {'arrived_restroom', 'arrived_vip_lounge', 'arrived_checkout', 'arrived_service_desk', 'arrived_exit',
                 'arrived_entrance'}


def _most_common(values: list[str]) -> str:
    values = [v for v in values if v]
    return max(dict.fromkeys(values), key=values.count) if values else ''


__all__ = ['AskRecommendations', 'CallStaff', 'CancelMission', 'DialogueManager', 'Effect', 'Enrol', 'Intent', 'Record',
           'RecommendQuery', 'RecommendedProduct', 'Say', 'Session', 'Shown', 'StartGuide', 'StartTour', 'State']
