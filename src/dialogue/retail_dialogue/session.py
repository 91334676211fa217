"""The dialogue's vocabulary: intents, session states, the effects the core returns (as data), and
one customer's conversation state (`Session`). No logic: the manager (`manager.py`) and its
behaviours (`behaviours/`) read and change these.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from retail_common import events as ev
from retail_common.intents import Intent  # noqa: F401  (re-exported: the one list of intents)
from retail_common.search import SearchConstraints

from .catalog_match import HeardProduct
from retail_common.store import Appointment


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
    """What the recommender is asked: the session's constraints (the recommender's own type), k."""
    track_id: int
    customer_id: str
    constraints: SearchConstraints
    k: int
    language: str

    @property
    def category(self) -> str:
        return self.constraints.category

    @property
    def brand(self) -> str:
        return self.constraints.brand

    @property
    def min_price(self) -> float:
        return self.constraints.min_price

    @property
    def max_price(self) -> float:
        return self.constraints.max_price


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
class SkipStop:
    """Leave stop `stop_index` of the customer's running tour out (the guide's SkipTourStop service)."""
    track_id: int
    stop_index: int


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


Effect = Say | Record | AskRecommendations | StartGuide | StartTour | CancelMission | SkipStop | CallStaff | Enrol


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
    constraints: SearchConstraints = field(default_factory=lambda: SearchConstraints(in_stock_only=False))
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
    screen_code: str = ''                # an anonymous customer's purchase code, shown with the products
    wanted: list[str] = field(default_factory=list)     # what the customer asked for, for staff
    campaign_pending: str = ''                          # the campaign offered in the last reply
    pending_product: HeardProduct | None = None         # "您是说…吗？" asked: the turn to carry out on yes
