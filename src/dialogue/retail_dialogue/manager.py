"""Dialogue manager: one conversation per customer track, from greeting to guiding, tours and goodbye.

Pure (no rclpy) and single-threaded: every input is a method call that returns the effects the
robot must carry out, as data (`Say`, `Record`, `AskRecommendations`, `StartGuide`, `StartTour`,
`CancelMission`, `SkipStop`, `CallStaff`, `Enrol`). The node, `retailbot chat` and the tests carry them out and
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

import secrets
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Callable

from retail_common import events as ev
from retail_common.catalog import Product
from retail_common.hours import OpeningHours
from retail_common.profiles import MemberProfile, sentence_for
from retail_common.search import SearchConstraints
from retail_common.store import Appointment

from .behaviours import Turn, campaign, decide
from .catalog_match import HeardProduct
from .followups import CHEAPEST, DEAREST, Cues, product_size, read_cues
from .nlu import MAX_UTTERANCE_CHARS, Nlu, NluResult
from .places import PLACE_WORDS, kind_of
from .promotions import promotion_text
from .session import (AskRecommendations, CallStaff, CancelMission, Effect, Enrol, Intent, RecommendedProduct,
                      RecommendQuery, Record, Say, Session, Shown, SkipStop, StartGuide, StartTour, State,
                      TourProgress)
from .sizes import UNIT_EN, UNIT_ZH, fits_size, product_sizes
from .store import parse_clock, parse_name
from .templates import (count_noun, count_of, failure_reason, is_plural_only, join_en, noun, render, verb_are,
                        what_en, what_zh, with_article, yuan)

RECOMMEND_K = 3
SHOW_K = 3
EARLY_MARGIN = timedelta(minutes=30)
LATE_MARGIN = timedelta(minutes=15)
CODE_LETTERS = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789'   # no 0/O, 1/I/L: read aloud and typed at the till
CODE_LENGTH = 6


def new_screen_code() -> str:
    """A purchase code for the screen ('K7Q2MX'): 6 of 31 letters and digits, ~8.9e8 codes, so
    codes of one store's week (the funnel's window) practically never meet."""
    return ''.join(secrets.choice(CODE_LETTERS) for _ in range(CODE_LENGTH))


GREETED_MEMORY_S = 1800.0          # a customer seen again within this is not greeted again
LEFT_MEMORY = 256                  # track ids remembered as gone (speech from them is dropped)
EARLY_SPEECH_S = 2.0               # speech on a track not announced yet waits this long for its customer event
MAX_EARLY_SPEECH = 4               # ... at most this many utterances (the oldest go)
LEAVING_S = 5.0                    # a session whose person the camera lost ends this long after (speech they
                                   # said before the loss, heard late, is still answered meanwhile)
STAMP_SKEW_S = 30.0                # a speech and a loss stamped further apart are not compared (other clocks)


def same_words(store, other) -> bool:
    """Whether two stores name the same products and zones (the Nlu of one understands the other)."""
    return store.catalog == other.catalog and store.zones == other.zones


class DialogueManager:
    """Conversations with customers over one store (see the module docstring)."""

    def __init__(self, store, *, silence_timeout_s: float = 60.0, greet_delay_s: float = 0.0, store_raw_text: bool = False,
                 default_language: str = 'zh', clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], datetime] = datetime.now, nlu: Nlu | None = None,
                 new_customer_id: Callable[[], str] = lambda: f'm-{uuid.uuid4().hex[:12]}',
                 new_code: Callable[[], str] = new_screen_code, confirm_below: float = 0.5) -> None:
        self.store = store
        self.nlu = nlu or Nlu(store.catalog, store.zones)
        self.silence_timeout_s = silence_timeout_s
        self.greet_delay_s = greet_delay_s
        self.store_raw_text = store_raw_text
        self.default_language = default_language
        self.confirm_below = confirm_below      # a heard product less sure than this is confirmed (confirm_product)
        self.clock, self.wall_clock = clock, wall_clock
        self.new_customer_id = new_customer_id
        self.new_code = new_code
        self.sessions: dict[int, Session] = {}
        self.greeted_customers: dict[str, float] = {}
        self.safety_latched = False
        self._left: dict[int, None] = {}      # tracks that left, newest last (bounded: LEFT_MEMORY)
        # sessions whose person the camera lost, by track: (session, the loss's stamp, clock when told);
        # ended (SessionEnd) by tick() after LEAVING_S unless speech said before the loss comes in
        self._leaving: dict[int, tuple[Session, float, float]] = {}
        # speech that came before its track's customer event (another topic: DDS orders none across
        # topics): (clock, track, text, heard), answered when the track appears, else dropped
        self._early: list[tuple[float, int, str, HeardProduct | None]] = []
        self._out: list[Effect] = []
        self.campaigns_offered: dict[tuple[str, str], float] = {}   # (member, campaign) -> clock()
        self.hours_set: OpeningHours | None = None   # set live (a rollout's opening_hours); None: the store's

    @property
    def hours(self) -> OpeningHours:
        """The opening hours in effect: those set live (`set_hours`), else the store folder's."""
        return self.hours_set or self.store.opening_hours

    def set_hours(self, hours: OpeningHours | None) -> None:
        """Opening hours set live (the dialogue manager's `opening_hours` parameter); None: the
        store's own again. Used from the next turn on."""
        self.hours_set = hours

    # -- inputs: the store and the base ----------------------------------------------------
    def set_store(self, store, nlu: Nlu | None = None) -> None:
        """Use a new store from the next turn on (sessions, products shown and focus are kept).
        The words understood (`nlu`, built from the catalog and zones: half a second for a few
        hundred products) are kept when the catalog and zones did not change."""
        if nlu is None and same_words(store, self.store):
            nlu = self.nlu
        self.store = store
        self.nlu = nlu or Nlu(store.catalog, store.zones)

    def on_safety(self, latched: bool) -> list[Effect]:
        """The base's safety latch: while latched nobody is told 'please follow me'."""
        self.safety_latched = latched
        return []

    # -- inputs: customers ---------------------------------------------------------------
    def on_customer(self, track_id: int, customer_id: str = '', display_name: str = '', vip: bool = False) -> list[Effect]:
        """A person appeared or was identified: open a session; greet once per person; then answer
        what they said before this event arrived (held by `on_utterance`)."""
        effects = self._on_customer(track_id, customer_id, display_name, vip)
        held = [e for e in self._early if e[1] == track_id]
        self._early = [e for e in self._early if e[1] != track_id]
        for _, _, text, heard in held:
            effects += self.on_utterance(track_id, text, heard=heard)
        return effects

    def _on_customer(self, track_id: int, customer_id: str, display_name: str, vip: bool) -> list[Effect]:
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
            values = dict(name=session.display_name, time=appointment.start.strftime('%H:%M'),
                          purpose=appointment.purpose)
            if not (key == 'greet_vip' and self._say_rolled_out(session, 'vip', **values)):
                self._say(session, Intent.GREET, key, **values)
        elif not session.greeted:
            self._greet_first_time(session)
        else:
            return self._take()
        if not session.greeted:
            self._record(session, ev.Greeting(member=bool(session.customer_id), vip=session.vip,
                                              appointment=appointment is not None,
                                              profile=bool(session.display_name and self._profile_sentence(session))
                                              or None))
        session.greeted = True
        if session.customer_id:
            self.greeted_customers[session.customer_id] = now
        return self._take()

    def _greet_first_time(self, session: Session) -> None:
        """The first greeting of a visit: her campaign (once per visit), what she said last time,
        her name, or a welcome; a member is greeted in the language she last spoke."""
        last = self._profile_sentence(session)
        said = self.store.profile_of(session.customer_id) if session.customer_id else None
        if said is not None and said.language:
            session.lang = said.language
        if session.customer_id and campaign.at_greeting(self, session, self._greeting_lead(session, last)):
            return                                   # her campaign, carried by the greeting
        if session.display_name and last:            # a returning member: what she said last time
            self._say(session, Intent.GREET, 'greet_member_returning', name=session.display_name,
                      last=last[1] if session.lang == 'en' else last[0])
        elif session.display_name:
            if not self._say_rolled_out(session, 'member', name=session.display_name):
                self._say(session, Intent.GREET, 'greet_member', name=session.display_name)
        elif not self._say_rolled_out(session, 'anonymous'):
            self._say(session, Intent.GREET, 'greet_anonymous')

    def _say_rolled_out(self, session: Session, audience: str, **values: str) -> bool:
        """Say the greeting rolled out from the platform for `audience` in the session's language
        (the store model's, retail_common.greetings); False when there is none (built-in one then)."""
        text = self.store.greeting(audience, session.lang, **values)
        if text:
            self._out.append(Say(session.track_id, text, session.lang, Intent.GREET.value, ()))
        return bool(text)

    def _greeting_lead(self, session: Session, last: tuple[str, str] | None) -> str:
        """The greeting's first words when it carries a campaign (the offer's question ends it)."""
        if session.display_name and last:
            return render('greet_member_returning_lead', session.lang, name=session.display_name,
                          last=last[1] if session.lang == 'en' else last[0])
        if session.display_name:
            return render('greet_member_lead', session.lang, name=session.display_name)
        return render('greet_anonymous_lead', session.lang)

    def on_customer_left(self, track_id: int, at: float | None = None) -> list[Effect]:
        """The person walked away: end the session quietly (they can no longer hear a goodbye).
        `at`: the loss's stamp (the camera frame's, seconds). With it the session ends LEAVING_S
        later (tick), and what they said before `at` that is heard meanwhile is still answered
        (`on_utterance` said_at): a customer who said "yes, take me there" and stepped behind the
        robot is taken there, however late the words were heard."""
        self._out = []
        session = self.sessions.get(track_id)
        if session is not None and session.state in (State.GUIDING, State.TOURING):
            return []     # following behind the robot, out of the forward camera's view
        session = self.sessions.pop(track_id, None)
        self._forget(track_id)
        if session is not None and at is not None:
            self._leaving[track_id] = (session, at, self.clock())
            while len(self._leaving) > LEFT_MEMORY:
                self._end_leaving(next(iter(self._leaving)))
        elif session is not None:
            self._record(session, ev.SessionEnd(reason='left', state=session.state.value))
        return self._take()

    def _end_leaving(self, track_id: int) -> None:
        session = self._leaving.pop(track_id)[0]
        self._record(session, ev.SessionEnd(reason='left', state=session.state.value))

    def _said_before_leaving(self, track_id: int, said_at: float | None) -> Session | None:
        """The session of a person the camera lost, back in the conversation, when their words
        (`said_at`: when the speech ended) were said before the loss; else None."""
        leaving = self._leaving.get(track_id)
        if leaving is None or said_at is None or not leaving[1] - STAMP_SKEW_S <= said_at <= leaving[1]:
            return None
        session = self._leaving.pop(track_id)[0]
        self._left.pop(track_id, None)
        self.sessions[track_id] = session
        return session

    def tick(self) -> list[Effect]:
        """End sessions nobody spoke in for `silence_timeout_s` (not while guiding or touring).
        Only the customer the robot is with hears a goodbye; others end quietly."""
        self._out = []
        now = self.clock()
        self._early = [e for e in self._early if now - e[0] < EARLY_SPEECH_S]    # no customer came: dropped
        for track_id in [t for t, (_, _, since) in self._leaving.items() if now - since >= LEAVING_S]:
            self._end_leaving(track_id)
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
    def on_utterance(self, track_id: int, text: str, typed: bool = False,
                     heard: HeardProduct | None = None, said_at: float | None = None) -> list[Effect]:
        """A final utterance of a customer. Speech of a track that has left is dropped (they left
        mid-sentence), unless it was said before the camera lost them (`said_at`, the speech's end
        stamp, before the loss's: see `on_customer_left`). Typed or touched input (`typed`: the
        screen, `retailbot chat`) comes from the person at the robot: it joins the current
        customer's conversation or starts one, and is answered at once, never held back for a
        greeting (see `_session_for`). `heard`: the product the recogniser matched, with its
        confidence (speech only; an unsure one is confirmed)."""
        self._out = []
        if not text.strip():
            return []
        session = self._speaker(track_id, text, typed, heard, said_at)
        if session is None:
            return []
        session.last_heard = self.clock()
        session.greeted, session.greet_at = True, None       # they spoke first: answer, no greeting
        if len(text) > MAX_UTTERANCE_CHARS:
            return self._too_long(session)
        result = self.nlu.parse(text)
        session.lang = result.lang
        cues = read_cues(result.masked)
        pending, session.pending_product = session.pending_product, None     # asked about one turn only
        intent, slots = self._handle(session, result, cues, text, None if typed else heard, pending)
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
        said = ev.MemberSaid.from_turn(turn.intent, turn.slots, turn.language) if session.customer_id else None
        if said is not None:        # a member's wishes: her profile on the platform (loop, issue 23)
            self._out.insert(1, Record(said, session.customer_id))
        return self._take()

    def _speaker(self, track_id: int, text: str, typed: bool, heard: HeardProduct | None,
                 said_at: float | None) -> Session | None:
        """The session this turn belongs to, or None: speech of a track not announced yet is held
        for its customer event (`_early`); speech of a track that left mid-sentence is dropped."""
        session = None
        if not typed and track_id not in self.sessions:
            # the speech recogniser hears no track (0): with nobody else there, the one the camera lost last
            lost = track_id or (next(reversed(self._leaving), 0) if not self.sessions else 0)
            session = self._said_before_leaving(lost, said_at)
        session = session or self._session_for(track_id, typed)
        if session is None and track_id not in self._left:      # its customer event is on its way
            self._early = [*self._early, (self.clock(), track_id, text, heard)][-MAX_EARLY_SPEECH:]
        return session

    def _session_for(self, track_id: int, typed: bool) -> Session | None:
        """Whose turn this is. A known track: its session. Speech without a track (0) with one
        customer there: theirs. Typed input on no track, or on one that has left (a screen still
        showing the last customer): the customer the robot is with, else a new conversation; typed
        input on a track never seen (a chat announcing itself as the text arrives): a new
        conversation on that track. Speech on a track that left: None."""
        session = self.sessions.get(track_id)
        if session is not None:
            return session
        if track_id == 0 and len(self.sessions) == 1 and not typed:
            return next(iter(self.sessions.values()))
        if typed and (track_id == 0 or track_id in self._left):
            engaged = self._engaged()
            if engaged is not None:
                return engaged
        elif not typed and track_id != 0:
            return None
        session = self.sessions[track_id] = Session(track_id, lang=self.default_language, greeted=True)
        return session

    def _too_long(self, session: Session) -> list[Effect]:
        """Text longer than one turn (a pasted page, a stuck key): not parsed; the customer is asked
        for a few words and the turn is recorded without its text."""
        self._say(session, Intent.UNKNOWN, 'too_long')
        self._record(session, ev.DialogueTurn(intent=Intent.UNKNOWN.value, language=session.lang, confidence=0.0))
        return self._take()

    # -- the turn ---------------------------------------------------------------------------
    def _handle(self, session: Session, result: NluResult, cues: Cues, text: str, heard: HeardProduct | None = None,
                pending: HeardProduct | None = None) -> tuple[Intent, dict]:
        """The behaviours decide the turn, in the order of their table (`behaviours.RULES`)."""
        return decide(Turn(self, session, result, cues, text, Intent(result.intent), dict(result.slots), heard, pending))









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
        alternatives = self._alternatives(session, product)
        if not alternatives:
            self._expect(session, State.AWAIT_STAFF)
            return self._say(session, intent, 'no_alternatives')
        self._present(session, alternatives)
        session.focus = product.sku         # "is it in stock?" is still about the product named
        self._offer(session, self.store.zone_of(alternatives[0]) or zone)
        self._say(session, intent, 'alternatives', items=self._list(alternatives, lang),
                  zone=self.store.zone_name(session.offered_zone, lang), products=self._shown_all(alternatives))

    def _alternatives(self, session: Session, product: Product) -> list[Product]:
        """In-stock products of the same kind from any brand, cheapest first, within the customer's
        budget for that kind when they said one (none within it: the cheapest of the kind)."""
        same = sorted((p for p in self.store.catalog.products if p.category == product.category and p.in_stock
                       and p.sku != product.sku), key=lambda p: (p.price_cny, p.sku))
        c = session.constraints
        if c.has_price and c.category in ('', product.category):
            within = [p for p in same if self._in_budget(p, c)]
            same = within or same
        return same[:SHOW_K]

    @staticmethod
    def _in_budget(product: Product, c: SearchConstraints) -> bool:
        return (not c.max_price or product.price_cny <= c.max_price) and product.price_cny >= (c.min_price or 0.0)

    def _run_find(self, session: Session, where_only: bool = False) -> None:
        """'Do you have Huawei tablets?' / 'where are the TVs?' over the active constraints."""
        lang, c = session.lang, session.constraints
        matches = self._matching(c)
        in_stock = [p for p in matches if p.in_stock]
        what = self._what(c, lang)
        if not matches and c.has_price and self._matching(c.without_price()):
            return self._over_budget(session, c)
        if not matches:
            return self._not_carried(session, c)
        zone = self._zone_for(c, in_stock or matches)
        if where_only and not c.brand and not c.has_price:
            self._offer(session, zone)
            return self._say(session, Intent.FIND_PRODUCT, 'category_where', what=self._what(c, lang, capital=True),
                             are=verb_are(self._what(c, 'en')), zone=self.store.zone_name(zone, lang))
        if not in_stock and len(matches) == 1:       # "飞利浦空气炸锅有货吗" and the store has one: that one
            return self._answer_product(session, matches[0], Intent.FIND_PRODUCT)
        if not in_stock:
            self._say(session, Intent.FIND_PRODUCT, 'have_sold_out_all', what=what, are=verb_are(self._what(c, 'en')))
            return self._sold_out_alternatives(session, matches[0] if c.category else None)
        examples = sorted(in_stock, key=lambda p: (not p.promotion, p.price_cny))[:SHOW_K]
        examples.sort(key=lambda p: p.price_cny)
        self._present(session, examples)
        self._offer(session, zone)
        prices = [p.price_cny for p in in_stock]
        self._say(session, Intent.FIND_PRODUCT, 'have_one' if len(in_stock) == 1 else 'have_yes', what=what,
                  count=len(in_stock),
                  count_what=self._count_what(len(in_stock), c), low=yuan(min(prices), lang),
                  high=yuan(max(prices), lang), zone=self.store.zone_name(zone, lang),
                  items=self._list(examples, lang), products=self._shown_all(examples))

    def _over_budget(self, session: Session, c: SearchConstraints) -> None:
        """The store has the kind, not within the budget: in stock, its cheapest (said as over the
        budget); none in stock: as sold out, with the kind's alternatives within the budget."""
        lang = session.lang
        unbounded = self._matching(c.without_price())
        in_stock = sorted((p for p in unbounded if p.in_stock), key=lambda p: p.price_cny)
        if not in_stock:
            if len(unbounded) == 1:
                return self._answer_product(session, unbounded[0], Intent.FIND_PRODUCT)
            self._say(session, Intent.FIND_PRODUCT, 'have_sold_out_all', what=self._what(c, lang),
                      are=verb_are(self._what(c, 'en')))
            return self._sold_out_alternatives(session, unbounded[0] if c.category else None)
        cheapest = in_stock[0]
        self._present(session, [cheapest])
        self._offer(session, self.store.zone_of(cheapest) or '')
        self._say(session, Intent.FIND_PRODUCT, 'over_budget', what=self._what(c.without_price(), lang),
                  budget=yuan(c.max_price, lang), name=self._name(cheapest, lang),
                  price=yuan(cheapest.price_cny, lang), products=(self._shown(cheapest),))

    def _sold_out_alternatives(self, session: Session, like: Product | None) -> None:
        """All of a kind (a brand's, a size's) sold out: the kind's in-stock products from any brand,
        cheapest first within the budget; none: offer a colleague."""
        alternatives = self._alternatives(session, like) if like is not None else []
        if not alternatives:
            self._expect(session, State.AWAIT_STAFF)
            return self._say(session, Intent.FIND_PRODUCT, 'no_alternatives')
        lang = session.lang
        self._present(session, alternatives)
        self._offer(session, self.store.zone_of(alternatives[0]) or '')
        self._say(session, Intent.FIND_PRODUCT, 'alternatives', items=self._list(alternatives, lang),
                  zone=self.store.zone_name(session.offered_zone, lang), products=self._shown_all(alternatives))

    def _not_carried(self, session: Session, c: SearchConstraints | dict) -> None:
        lang, c = session.lang, _typed(c)
        category, brand = c.category, c.brand
        if c.size:
            return self._size_not_carried(session, c)
        if category and brand:
            others = [p for p in self.store.catalog.products if p.category == category and p.in_stock
                      and p.brand not in c.exclude_brands]
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

    def _size_not_carried(self, session: Session, c: SearchConstraints) -> None:
        """'有没有85寸的电视' in a store without one: say so, with the sizes it has of that kind."""
        lang = session.lang
        unit = c.size[1] if c.size else ''
        kind = replace(c, size=None, min_price=0.0, max_price=0.0)
        values = sorted({product_sizes(p)[unit] for p in self._matching(kind) if p.in_stock and unit in product_sizes(p)})
        self._expect(session, State.OPEN)
        self._say(session, Intent.FIND_PRODUCT, 'not_carried', what=self._what(c, lang))
        if values:
            names = [_size_words((v, unit), lang) for v in values]
            self._say(session, Intent.FIND_PRODUCT, 'sizes_we_have', what=self._what(kind, lang),
                      sizes=join_en(names) if lang == 'en' else '、'.join(names))

    def _refine(self, session: Session, how: str, slots: dict) -> None:
        """Modify the last search: cheaper, pricier, bigger, smaller, another brand, more, what about X."""
        lang = session.lang
        base = [self.store.catalog.by_sku[s] for s in session.topic if s in self.store.catalog.by_sku]
        c = self._refined_constraints(session, how, slots, base)
        session.constraints = c
        session.search = session.search or 'find'
        candidates = _refined_candidates(how, [p for p in self._matching(c) if p.in_stock], base)
        if not candidates:
            return self._refine_found_none(session, how, c)
        if session.search == 'recommend' and how not in ('bigger', 'smaller', 'cheaper', 'pricier'):
            return self._ask_recommendations(session)
        chosen = candidates[:SHOW_K]
        self._present(session, chosen)
        self._offer(session, self.store.zone_of(chosen[0]) or '')
        self._say(session, Intent.REFINE, 'recommend_intro', count=len(chosen),
                  count_picks=count_noun(len(chosen), 'option'), are='is' if len(chosen) == 1 else 'are',
                  them='it' if len(chosen) == 1 else 'them', items=self._list(chosen, lang),
                  zone=self.store.zone_name(session.offered_zone, lang), products=self._shown_all(chosen))

    @staticmethod
    def _refined_constraints(session: Session, how: str, slots: dict, base: list[Product]) -> SearchConstraints:
        """The last search's constraints changed as `how` says (after a question about one product: its kind)."""
        c = session.constraints if session.search or not base else SearchConstraints(base[0].category, in_stock_only=False)
        if not c.category and base:
            c = replace(c, category=base[0].category)
        if how == 'what_about':
            c = _what_about(c, slots)
        elif how == 'cheaper':
            anchor = min((p.price_cny for p in base), default=c.max_price)
            c = replace(c, max_price=anchor - 0.01, min_price=0.0) if anchor else c
        elif how == 'pricier':
            anchor = max((p.price_cny for p in base), default=c.min_price)
            c = replace(c, min_price=anchor + 0.01, max_price=0.0) if anchor else c
        elif how == 'other_brand':
            brands = set(c.exclude_brands) | {p.brand for p in base} | ({c.brand} if c.brand else set())
            c = replace(c, exclude_brands=tuple(sorted(brands)), brand='')
        elif how == 'more':
            c = replace(c, exclude_skus=tuple(dict.fromkeys([*c.exclude_skus, *(p.sku for p in base)])))
        if 'max_price' in slots or 'min_price' in slots:
            c = c.with_price(slots.get('min_price'), slots.get('max_price'))
        return c

    def _refine_found_none(self, session: Session, how: str, c: SearchConstraints) -> None:
        """Nothing fits the refined search: the brand's cheapest over the budget, else say so."""
        lang = session.lang
        if c.brand and c.category and how == 'what_about':
            unbounded = [p for p in self._matching(c.without_price()) if p.in_stock]
            if unbounded:           # the brand has them, not within the budget
                cheapest = min(unbounded, key=lambda p: p.price_cny)
                self._present(session, [cheapest])
                self._offer(session, self.store.zone_of(cheapest) or '')
                return self._say(session, Intent.REFINE, 'over_budget', what=self._what(c, lang),
                                 budget=yuan(c.max_price, lang), name=self._name(cheapest, lang),
                                 price=yuan(cheapest.price_cny, lang), products=(self._shown(cheapest),))
            return self._not_carried(session, c)
        key = {'cheaper': 'cheaper_none', 'bigger': 'bigger_none', 'more': 'other_none'}.get(how, 'refine_none')
        return self._say(session, Intent.REFINE, key, what=self._what(c, lang))

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

    def _compare(self, session: Session, cues: Cues, named: bool = False) -> None:
        """The first two products shown side by side: price, offers, stock, size. Products the customer
        named: the answer to their question leads and the cheaper is in focus; products the robot
        listed: its first suggestion closes."""
        lang = session.lang
        a, b = (self.store.catalog.by_sku[s] for s in self._compared(session, cues))
        points = []
        cheaper, dearer = (a, b) if a.price_cny <= b.price_cny else (b, a)
        diff = dearer.price_cny - cheaper.price_cny
        if diff:
            points.append(render('compare_cheaper', lang, name=self._name(cheaper, lang), diff=yuan(diff, lang)))
        else:
            points.append(render('compare_same_price', lang))
        for p in (a, b):
            if p.promotion:
                points.append(render('compare_offer', lang, name=self._name(p, lang), promotion=self._promo(p, lang)))
            if not p.in_stock:
                points.append(render('compare_sold_out', lang, name=self._name(p, lang)))
        sa, sb = (product_size(p.name_en, p.name_zh) for p in (a, b))
        if sa and sb and sa != sb:
            points.append(render('compare_bigger', lang, name=self._name(a if sa > sb else b, lang)))
        first = cheaper if named else self.store.catalog.by_sku[session.shown[0]]
        if not named:
            points.append(render('compare_first', lang, name=self._name(first, lang)))
        self._focus(session, first)
        self._offer(session, self.store.zone_of(first) or '')
        self._say(session, Intent.COMPARE, 'compare', a=self._name(a, lang), b=self._name(b, lang),
                  points=('，'.join(points) if lang != 'en' else '; '.join(points)),
                  products=(self._shown(a), self._shown(b)))

    def _merge_constraints(self, session: Session, slots: dict) -> None:
        """A new request replaces the constraints it conflicts with and keeps compatible ones:
        another category drops the brand and the budget of the old one (unless said again); a
        new brand or budget replaces the old; a single product asked about sets no constraint."""
        c, said = session.constraints, SearchConstraints.from_slots(slots)
        category = said.category
        if category and category != c.category:
            c = SearchConstraints(in_stock_only=False)
        if said.brand:
            c = replace(c, brand=said.brand, exclude_brands=())
        elif category and c.brand and not any(p.brand == c.brand and p.category == category
                                              for p in self.store.catalog.products):
            c = replace(c, brand='')
        if category:
            c = replace(c, category=category)
        if said.size:
            c = replace(c, size=said.size)
        if said.has_price:
            c = c.with_price(said.min_price, said.max_price)
        session.constraints = replace(c, exclude_skus=())
        session.wanted.append(self._what(session.constraints, 'en'))

    def _ask_recommendations(self, session: Session) -> None:
        c = session.constraints
        query = RecommendQuery(session.track_id, session.customer_id, replace(c, in_stock_only=True),
                               RECOMMEND_K + len(c.exclude_skus) + 3 * len(c.exclude_brands) + (6 if c.size else 0),
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
        # what the recommender does not apply itself: exclusions and the size
        items = [i for i in items if i.sku in self.store.catalog.by_sku
                 and replace(c.kind, exclude_brands=c.exclude_brands, exclude_skus=c.exclude_skus, size=c.size,
                             in_stock_only=False).admits(self.store.catalog.by_sku[i.sku], fits_size)][:RECOMMEND_K]
        self._record_recommendation(session, items)
        if not items:
            self._say(session, Intent.RECOMMEND, 'recommend_none')
            return self._take()
        self._show_code(session, items)
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
        reason = result_code(reason)
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
                what_text = render('product_here', lang, name=self._name(focus, lang))
                are = 'are' if is_plural_only(focus.name_en) else 'is'
            else:
                c = session.constraints if session.constraints.category in zone.categories else \
                    SearchConstraints(zone.categories[0]) if zone.categories else None
                what_text = self._what(c, lang, capital=True) if c else render('products_here', lang)
                are = verb_are(self._what(c, 'en')) if c else 'are'
            return self._say(session, Intent.GUIDE_TO, 'guide_arrived_product', zone=name, what=what_text,
                             what_cap=what_text, are=are)
        kind = kind_of(zone) if zone is not None else ''     # restroom, checkout, ...: found by its names
        key = f'arrived_{kind}' if f'arrived_{kind}' in _ARRIVAL_KEYS else 'arrived_other'
        self._say(session, Intent.GUIDE_TO, 'guide_arrived_place', zone=name, extra=render(key, lang))

    # -- tours -----------------------------------------------------------------------------
    def _start_tour(self, session: Session) -> None:
        tours = self.store.tours
        if not tours:
            return self._say(session, Intent.TOUR, 'no_tour')
        route = next(iter(tours))          # the store's first tour in zones.yaml is the one offered
        if self.safety_latched:
            self._call_staff(session, 'robot_safety_stop')
            return self._say(session, Intent.TOUR, 'tour_start_still')
        if session.state in (State.TOURING, State.GUIDING):
            self._out.append(CancelMission(session.track_id))      # one mission at a time: the tour wins
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
                self._out.append(SkipStop(session.track_id, upcoming))     # the guide leaves it out
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
        reason = result_code(reason)
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
            items = self._sep(lang).join(render('stop_offer_item', lang, name=self._name(p, lang),
                                                promotion=self._promo(p, lang)) for p in offers)
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
        staff = appointment.staff or render('staff_anyone', lang)
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
        c = session.constraints.as_slots()
        focus = self.store.catalog.by_sku.get(session.focus)
        request = {'track_id': session.track_id, 'customer_pseudonym': session.customer_id, 'reason': reason,
                   'language': session.lang, 'wanted': {
                       'looking_for': self._what(session.constraints, 'zh') if c else '', 'constraints': c,
                       'product': focus.sku if focus else '', 'product_name': focus.name_zh if focus else '',
                       'shown': list(session.shown), 'recent': [w for w in session.wanted[-5:] if w != '?'],
                       'zone': zone or session.offered_zone}}
        if appointment is not None:
            request.update(appointment_id=appointment.appointment_id, staff=appointment.staff,
                           meeting_point=appointment.meeting_point)
        self._out.append(CallStaff(request))
        self._record(session, ev.StaffRequest(reason=reason, wanted=request['wanted']['looking_for'],
                                              product=request['wanted']['product']))

    def _forget(self, track_id: int) -> None:
        """Remember that `track_id` has gone (bounded: the oldest are forgotten first)."""
        self._left.pop(track_id, None)
        self._left[track_id] = None
        while len(self._left) > LEFT_MEMORY:
            self._left.pop(next(iter(self._left)))

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
        return replace(_typed(c), in_stock_only=False).admits(p, fits_size)

    def _matching(self, c: dict) -> list[Product]:
        c = _typed(c)
        if not c.category and not c.brand:
            return []
        return [p for p in self.store.catalog.products if self._fits(p, c)]

    def _zone_for(self, c: dict, products: list[Product] | None = None) -> str:
        """Where a kind of product is: the zone listing the category, else where most of them are."""
        c = _typed(c)
        category = c.category
        if category and not c.brand:
            for zone in self.store.zones.values():
                if category in zone.categories:
                    return zone.id
        products = products if products is not None else self._matching(c.kind)
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
        items = [render('list_item', lang, name=self._name(p, lang), price=yuan(p.price_cny, lang)) for p in products]
        return join_en(items) if lang == 'en' else '、'.join(items)

    def _what(self, c: dict, lang: str, capital: bool = False) -> str:
        c = _typed(c)
        category, brand = c.category, c.brand
        size = _size_words(c.size, lang)
        if lang == 'en':
            text = f'{size} {what_en(category, brand)}' if size else what_en(category, brand)
            return text[:1].upper() + text[1:] if capital else text
        categories = self.store.catalog.categories()
        return size + what_zh(categories.get(category, '') if category else '', self._brand(brand, 'zh') if brand else '')

    def _count_what(self, count: int, c: dict) -> str:
        """'3 Huawei tablets', '1 air fryer', '1 pair of headphones' — English only."""
        c = _typed(c)
        category, brand = c.category, c.brand
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

    def _record_recommendation(self, session: Session, items: list[RecommendedProduct]) -> None:
        """The `recommendation` event: what was recommended with its reasons, and `profile_used`
        when the recommender's reasons name her earlier visit (retail_recommendation.profile)."""
        last = self._profile_sentence(session)
        by_sku = self.store.catalog.by_sku
        self._record(session, ev.Recommendation(
            profile_used=bool(last and items and all(i.reason_zh.startswith(last[0]) for i in items)) or None,
            skus=[i.sku for i in items], slots=ev.Slots(**session.constraints.as_slots()),
            products=[ev.RecommendedItem(sku=i.sku, price_cny=by_sku[i.sku].price_cny,
                                         zone=self.store.zone_of(by_sku[i.sku]) or '',
                                         reason_zh=i.reason_zh, reason_en=self._reason(i, 'en')) for i in items]))

    def _show_code(self, session: Session, items: list[RecommendedProduct]) -> None:
        """An anonymous customer's purchase code (one per conversation), recorded with every product
        shown to her so far: the screen shows it, the till types it on her receipt (docs/metrics.md).
        A member gets none: her receipt carries her member id."""
        if session.customer_id:
            return
        session.screen_code = session.screen_code or self.new_code()
        shown = list(dict.fromkeys([*session.shown, *(i.sku for i in items)]))[-50:]
        self._record(session, ev.ScreenCode(code=session.screen_code, skus=shown))

    def _profile(self, session: Session) -> MemberProfile | None:
        """A returning member's profile with something to say back (retail_common.profiles)."""
        profile = self.store.profile_of(session.customer_id)
        return profile if profile is not None and profile.speaks else None

    def _profile_sentence(self, session: Session) -> tuple[str, str] | None:
        """(zh, en) 'last time you were looking at laptops under 6,000 yuan' for a returning
        member with a profile (retail_common.profiles; the recommender puts the same words in
        her reasons), else None. Anonymous customers have none."""
        profile = self._profile(session)
        return sentence_for(profile, self.store.catalog) if profile is not None else None

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
        self._forget(session.track_id)
        self._record(session, ev.SessionEnd(reason=reason))


def result_code(reason: str) -> str:
    """An action result's reason as the event contract's code: another node's text that is not a
    short lowercase code (a newer guide, a bug) becomes 'unknown' instead of failing the turn."""
    text = str(reason)
    if len(text) <= ev.CODE_MAX_CHARS and all(c.isascii() and (c.islower() or c.isdigit() or c == '_') for c in text):
        return text
    return 'unknown'


_ARRIVAL_KEYS = {f'arrived_{kind}' for kind in PLACE_WORDS}     # a line per place kind in the templates


def _what_about(c: SearchConstraints, slots: dict) -> SearchConstraints:
    """'那华为的呢': the same search with the brand or category named."""
    if 'brand' in slots:
        c = replace(c, brand=str(slots['brand']), exclude_brands=())
    if 'category' in slots and slots['category'] != c.category:
        c = replace(c, category=str(slots['category']))
    return replace(c, exclude_skus=())


def _typed(c: SearchConstraints | dict) -> SearchConstraints:
    """Constraints from a turn's slots (a dict) or already typed."""
    return c if isinstance(c, SearchConstraints) else SearchConstraints.from_slots(c)


def _size_of(product: Product) -> float:
    return product_size(product.name_en, product.name_zh) or 0.0


def _refined_candidates(how: str, candidates: list[Product], base: list[Product]) -> list[Product]:
    """The in-stock candidates of a refined search, in the order they are offered."""
    if how in ('bigger', 'smaller'):
        bigger = how == 'bigger'
        sizes = [s for s in (product_size(p.name_en, p.name_zh) for p in base) if s is not None]
        if sizes:
            bound = max(sizes) if bigger else min(sizes)
            fit = [p for p in candidates if (_size_of(p) > bound if bigger else 0 < _size_of(p) < bound)]
            return sorted(fit, key=_size_of, reverse=not bigger)
        # no sizes in the names: the next price tier up or down
        anchor = (max if bigger else min)((p.price_cny for p in base), default=0.0)
        return [p for p in candidates if (p.price_cny > anchor if bigger else p.price_cny < anchor)]
    if how == 'cheaper':
        return sorted(candidates, key=lambda p: -p.price_cny)          # the nearest cheaper first
    if how == 'pricier':
        return sorted(candidates, key=lambda p: p.price_cny)
    return candidates


def _size_words(size: tuple[float, str] | None, lang: str) -> str:
    """85寸 / 85-inch: a size constraint as said to a customer."""
    if not size:
        return ''
    value, unit = size
    return f'{value:g}{UNIT_ZH[unit]}' if lang != 'en' else f'{value:g}{UNIT_EN[unit]}'


def _most_common(values: list[str]) -> str:
    values = [v for v in values if v]
    return max(dict.fromkeys(values), key=values.count) if values else ''


__all__ = ['AskRecommendations', 'CallStaff', 'CancelMission', 'DialogueManager', 'Effect', 'Enrol', 'Intent', 'Record',
           'RecommendQuery', 'RecommendedProduct', 'Say', 'Session', 'Shown', 'SkipStop', 'StartGuide', 'StartTour', 'State']
