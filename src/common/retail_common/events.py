"""The interaction events the robot records for the platform: one typed, versioned payload each.

Every event crossing a package or the network is declared here (pure: no rclpy). Producers build
a payload model (`EventSender.send(Greeting(...), customer=...)`, the dialogue's `Record` effect),
the sync outbox checks every event with `validate_event` before it stores it, the platform
validates and stores by (type, version), and the screen, `retailbot chat --json` and the store
day read the same field names. Each uploaded event carries `"version"` (absent means 1).

Privacy is structural: a payload is made only of the fields below, each a bounded string, number,
boolean, enum or a list/model of those; there is no free dict or `Any` anywhere (checked by
`tests/common/test_events.py`), so no producer can put an embedding, a face crop or an image in an
event — the model refuses the unknown key, the long string or the long list at construction.

Changing a payload: add an optional field (same version), or declare a new model with the same
`TYPE` and `VERSION + 1` (the old one stays registered so the outbox can still upload what it
holds). `EVENT_TYPES` maps each type to its current model.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from retail_common.intents import Intent

# -- the envelope every event shares (robot outbox, platform ingest) -----------------------
MEMBER_ID = r'^[^\s\x00/]{1,128}$'
"""A pseudonymous member id (an event's `customer`, a receipt's member, the platform's API paths):
1-128 characters, no `/` (it is one segment of a URL path), no white space, no NUL. One rule for every place a
member id is stored, so every stored id can also be forgotten."""
EARLIEST_TIME, LATEST_TIME = 0.0, 4102444800.0
"""An event's time (seconds since 1970, the robot's clock) lies in 1970-01-01 .. 2100-01-01 UTC:
a clock days or years off is kept as it came, a time no calendar day can hold is refused."""


def member_id_problem(value: str) -> str | None:
    """Why `value` is not a member id, or None."""
    if not 1 <= len(value) <= 128:
        return 'a member id has 1-128 characters'
    if '/' in value or '\x00' in value or any(c.isspace() for c in value):
        return 'a member id has no /, white space or NUL'
    return None


def event_time_problem(value: float) -> str | None:
    """Why `value` cannot be an event's time, or None."""
    if not EARLIEST_TIME <= value < LATEST_TIME:
        return f'time {value!r} is not between 1970 and 2100 (seconds since 1970)'
    return None


# -- bounded building blocks -------------------------------------------------------------------
Id = Annotated[str, StringConstraints(max_length=128, pattern=r'^\S*$')]
"""A machine id without spaces: a SKU, a zone id, an appointment id, a route."""
CODE_MAX_CHARS = 48
Code = Annotated[str, StringConstraints(max_length=CODE_MAX_CHARS, pattern=r'^[a-z0-9_]*$')]
"""A reason/state code such as `robot_lost` or `no_odometry` (open set, bounded shape)."""
Label = Annotated[str, StringConstraints(max_length=64)]
"""A short label in a store's words (a brand, a category)."""
MAX_TEXT = 500
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
"""What a customer said or wanted, in words (never more than a sentence or two)."""
Language = Literal['zh', 'en']
Price = Annotated[float, Field(ge=0, le=10_000_000, allow_inf_nan=False)]
Confidence = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Metres = Annotated[float, Field(ge=-100_000, le=100_000, allow_inf_nan=False)]
Seconds = Annotated[float, Field(ge=0, le=10 * 86400, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=10_000)]
IdList = Annotated[list[Id], Field(max_length=50)]
LabelList = Annotated[list[Label], Field(max_length=50)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra='forbid', frozen=True, str_strip_whitespace=False)


class EventPayload(_Strict):
    """The base of every payload: `TYPE` (the event type on the wire) and `VERSION`."""

    TYPE: ClassVar[str] = ''
    VERSION: ClassVar[int] = 1
    source: Label | None = None
    """The node that produced it; filled in by the sync agent from the message's `source`."""

    def to_data(self) -> dict[str, Any]:
        """The payload as the outbox stores it and the platform receives it (JSON types)."""
        return self.model_dump(mode='json', exclude_none=True, exclude_defaults=False)


# -- the dialogue ------------------------------------------------------------------------------
class SizeSlot(_Strict):
    """A size the customer named (85寸: value 85, unit 'inch'; units of retail_dialogue.sizes)."""

    value: Annotated[float, Field(gt=0, le=100_000, allow_inf_nan=False)]
    unit: Code


class Slots(_Strict):
    """What a turn was about: the NLU's slots and the search constraints in force."""

    sku: Id | None = None
    skus: IdList | None = None
    category: Label | None = None
    brand: Label | None = None
    zone: Id | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    exclude_skus: IdList | None = None
    exclude_brands: LabelList | None = None
    size: SizeSlot | None = None
    unsold: Code | None = None
    """A kind of product the store does not sell, that the customer asked for."""
    refine: Code | None = None
    command: Code | None = None
    consent: bool | None = None


class ShownProduct(_Strict):
    sku: Id
    price_cny: Price
    zone: Id = ''


class RecommendedItem(ShownProduct):
    reason_zh: Text = ''
    reason_en: Text = ''


class DialogueTurn(EventPayload):
    """One customer utterance and how the robot answered it."""

    TYPE: ClassVar[str] = 'dialogue_turn'
    intent: Intent
    slots: Slots = Slots()
    language: Language
    confidence: Confidence
    products: Annotated[list[ShownProduct], Field(max_length=50)] = []
    guide_to: Id | None = None
    tour: Id | None = None
    staff_called: bool = False
    text: Text | None = None
    """Only when the store keeps raw text (`store_raw_text`)."""


class Greeting(EventPayload):
    TYPE: ClassVar[str] = 'greeting'
    member: bool
    vip: bool
    appointment: bool
    profile: bool | None = None
    """True: the greeting said what the member asked for on an earlier visit (her profile)."""


class SessionEnd(EventPayload):
    TYPE: ClassVar[str] = 'session_end'
    reason: Code
    """`left`, `silence`, `goodbye`, ..."""
    state: Code | None = None


class Recommendation(EventPayload):
    TYPE: ClassVar[str] = 'recommendation'
    skus: IdList
    slots: Slots = Slots()
    products: Annotated[list[RecommendedItem], Field(max_length=50)] = []
    profile_used: bool | None = None
    """True: a returning member's profile (an earlier visit) shaped it; its reasons say so."""


class Tour(EventPayload):
    TYPE: ClassVar[str] = 'tour'
    route: Id
    status: Literal['started', 'stopped', 'finished', 'failed']
    stops: Count | None = None
    stops_visited: Count | None = None
    reason: Code | None = None


class Consent(EventPayload):
    TYPE: ClassVar[str] = 'consent'
    purpose: Literal['face_enrolment']
    granted: bool
    consent_ref: Annotated[str, StringConstraints(max_length=128)]
    channel: Literal['dialogue', 'screen', 'staff']
    language: Language


class Enrolment(EventPayload):
    TYPE: ClassVar[str] = 'enrolment'
    status: Literal['enrolled']


class VipCheckin(EventPayload):
    TYPE: ClassVar[str] = 'vip_checkin'
    status: Literal['not_found', 'missed', 'early', 'late', 'on_time']
    appointment_id: Id = ''


# -- shared by the dialogue and the guide ------------------------------------------------------
class StaffRequest(EventPayload):
    """A member of staff was called. The dialogue says what the customer wanted; the guide where
    the robot is (`x`, `y` in the map frame) when it needs help itself."""

    TYPE: ClassVar[str] = 'staff_request'
    reason: Code
    wanted: Text = ''
    product: Id = ''
    zone: Id = ''
    x: Metres | None = None
    y: Metres | None = None


class GuideMission(EventPayload):
    """One guiding mission (a guide goal, a tour's driving, a trip to the dock).

    The dialogue reports the customer's side: `started`, then `arrived` or `failed` (with the
    guide's `reason`). The guide node reports what the mission did: status `ended` with its
    `reason` (`arrived`, `cancelled`, `blocked`, ...), `success` and the measurements."""

    TYPE: ClassVar[str] = 'guide'
    mission: Literal['guide', 'tour', 'dock'] = 'guide'
    zone: Id
    status: Literal['started', 'arrived', 'failed', 'ended']
    reason: Code | None = None
    success: bool | None = None
    distance_m: Metres | None = None
    duration_s: Seconds | None = None
    stops_visited: Count | None = None
    stops: Count | None = None


# -- perception --------------------------------------------------------------------------------
class _CustomerSeen(EventPayload):
    track_id: Annotated[int, Field(ge=0, le=2**31 - 1)]
    vip: bool = False
    confidence: Confidence = 0.0


class CustomerAppeared(_CustomerSeen):
    TYPE: ClassVar[str] = 'customer_appeared'


class CustomerIdentified(_CustomerSeen):
    TYPE: ClassVar[str] = 'customer_identified'


class CustomerLeft(_CustomerSeen):
    TYPE: ClassVar[str] = 'customer_left'


# -- the registry ------------------------------------------------------------------------------
ALL_PAYLOADS: tuple[type[EventPayload], ...] = (
    DialogueTurn,
    Greeting,
    SessionEnd,
    Recommendation,
    Tour,
    Consent,
    Enrolment,
    VipCheckin,
    StaffRequest,
    GuideMission,
    CustomerAppeared,
    CustomerIdentified,
    CustomerLeft,
)
_BY_VERSION: dict[tuple[str, int], type[EventPayload]] = {(m.TYPE, m.VERSION): m for m in ALL_PAYLOADS}
EVENT_TYPES: dict[str, type[EventPayload]] = {}
for _model in ALL_PAYLOADS:
    if _model.VERSION >= getattr(EVENT_TYPES.get(_model.TYPE), 'VERSION', 0):
        EVENT_TYPES[_model.TYPE] = _model
MAX_VERSION = 1_000


class EventContractError(ValueError):
    """An event does not match its declared type and version (the message is one line)."""


def payload_model(type_: str, version: int = 1) -> type[EventPayload]:
    """The model of `type_` at `version`; EventContractError when none is declared."""
    if type_ not in EVENT_TYPES:
        shown = type_ if len(type_) <= 64 else type_[:64] + '...'
        raise EventContractError(
            f'undeclared event type {shown!r}: event types are declared in '
            f'retail_common/events.py (known: {", ".join(sorted(EVENT_TYPES))})'
        )
    if isinstance(version, bool) or not isinstance(version, int):
        raise EventContractError(f'{type_}: version {version!r} is not a whole number')
    model = _BY_VERSION.get((type_, version))
    if model is None:
        known = sorted(v for t, v in _BY_VERSION if t == type_)
        raise EventContractError(f'{type_}: undeclared version {version} (declared: {known})')
    return model


def validate_event(type_: str, data: Any, version: int = 1) -> EventPayload:
    """The payload model for `data` (a decoded JSON object) of event `type_` at `version`.

    Raises EventContractError naming the type, the first field at fault and why."""
    model = payload_model(type_, version)
    if not isinstance(data, dict):
        raise EventContractError(f'{type_} v{version}: payload must be a JSON object, not {type(data).__name__}')
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        first = errors[0]
        where = '.'.join(str(p) for p in first.get('loc', ())) or 'payload'
        more = f' (and {len(errors) - 1} more)' if len(errors) > 1 else ''
        raise EventContractError(f'{type_} v{version}: {where}: {first.get("msg", "invalid")}{more}') from None


def event_json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of every declared payload, keyed `<type>.v<version>` (for OpenAPI); each
    schema carries `x-event-type` and `x-event-version`."""
    out: dict[str, dict[str, Any]] = {}
    for (type_, version), model in sorted(_BY_VERSION.items()):
        schema = model.model_json_schema()
        schema['x-event-type'], schema['x-event-version'] = type_, version
        out[f'{type_}.v{version}'] = schema
    return out


# -- the data loop (loop engineer): the screen's purchase code, what a member said ---------------
ScreenCodeText = Annotated[str, StringConstraints(max_length=12, pattern=r'^[A-Z0-9]{4,12}$')]


class ScreenCode(EventPayload):
    """The code the robot's screen showed an anonymous customer with the products of the
    conversation; the till types it on the receipt (`code`), so the funnel's `purchased` can
    count a customer who is no member (docs/metrics.md)."""

    TYPE: ClassVar[str] = 'screen_code'
    code: ScreenCodeText
    skus: IdList = []


class MemberSaid(EventPayload):
    """What a consenting member said about what they want, in one conversation: the platform
    keeps it as the member's profile (retail_platform.profiles) and the robots of every store use
    it. Only sent with the member's pseudonym; an anonymous customer's words build no profile."""

    TYPE: ClassVar[str] = 'member_said'
    category: Label | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    brands_wanted: LabelList = []
    brands_refused: LabelList = []
    compared_skus: IdList = []
    declined_skus: IdList = []
    language: Language = 'zh'

    @classmethod
    def from_turn(cls, intent: str, slots: Slots, language: Language) -> 'MemberSaid | None':
        """What a turn's slots say about the member's wishes (None: nothing): the category and
        budget she named, the brand she asked for or refused, products compared or turned down."""
        said = cls(
            category=slots.category,
            min_price=slots.min_price,
            max_price=slots.max_price,
            brands_wanted=[slots.brand] if slots.brand else [],
            brands_refused=list(slots.exclude_brands or []),
            compared_skus=list(slots.skus or []) if intent == 'compare' else [],
            declined_skus=list(slots.exclude_skus or []),
            language=language,
        )
        empty = cls(language=language)
        return None if said == empty else said


LOOP_PAYLOADS: tuple[type[EventPayload], ...] = (ScreenCode, MemberSaid)
ALL_PAYLOADS = ALL_PAYLOADS + LOOP_PAYLOADS
for _model in LOOP_PAYLOADS:
    _BY_VERSION[(_model.TYPE, _model.VERSION)] = _model
    EVENT_TYPES[_model.TYPE] = _model


# -- campaigns (campaigns engineer): HQ's offers, made in conversation to matching members ------
class CampaignOffered(EventPayload):
    """The robot offered a campaign (retail_common.campaigns) to a matching member: at most once
    per visit; the funnel counts its uptake (docs/metrics.md, version 2)."""

    TYPE: ClassVar[str] = 'campaign_offered'
    campaign_id: Id
    skus: IdList = []
    language: Language = 'zh'


class CampaignAccepted(EventPayload):
    """The member said yes to the campaign the robot offered (she is taken to its products)."""

    TYPE: ClassVar[str] = 'campaign_accepted'
    campaign_id: Id


CAMPAIGN_PAYLOADS: tuple[type[EventPayload], ...] = (CampaignOffered, CampaignAccepted)
ALL_PAYLOADS = ALL_PAYLOADS + CAMPAIGN_PAYLOADS
for _model in CAMPAIGN_PAYLOADS:
    _BY_VERSION[(_model.TYPE, _model.VERSION)] = _model
    EVENT_TYPES[_model.TYPE] = _model
