"""Campaigns: HQ says who is offered what, where and when; the robots offer it in conversation.

A campaign (`CampaignIn`, kept as JSON in the table `campaigns`):
  who    `audience`: rules over what members said (`member_said` events, the same statements
         their profiles are built from) and bought (the chain's till receipts, `receipts`, and
         the purchase history of the member record, `members.history`), joined by `match`
         (`all`: every rule holds; `any`: one does). Rules (`AudienceRule`):
           asked_about  category C, within_days N: the member named C in the last N days
           bought       category C, within_days N: bought a product of C in the last N days
                        category C, more_than_days N: bought one of C, and the LATEST purchase
                        of C is more than N days ago ("a phone more than 3 years ago": not the
                        member who bought a new phone last month)
                        (neither bound: ever bought one)
  what   `skus` (1-20) and one sentence in each language (`message_zh`, `message_en`)
  where  `stores` and/or `regions` (both empty: every store of the chain)
  when   `starts_at` <= now < `ends_at` (ISO 8601; no offset: China Standard Time)

Matching (`matches`) is a pure function of one member's facts and the time, so the table of
audiences is tested without a database. Only consenting members, never one who was forgotten
(the forget request is checked as well as the member record, so a forgotten id that shows up
again in an imported receipt is still never matched), and only members the robot's store has a
reason to know (`Chain._relevant`, the downlink's data minimisation) are ever sent to a robot.

The robot receives its store's active campaigns with the matching members it knows in the
downlink answer's `campaigns` section (`section`, version SECTION_VERSION): the whole current
state in every answer (snapshot or delta), because membership changes with time and with what
members say, not with a change row. Also `GET /v1/robots/{robot_id}/campaigns`.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Iterable, Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field, StringConstraints, model_validator

from retail_platform import loop_schema as lt
from retail_platform import schema as t

SECTION_VERSION = 1
MAX_RULES = 10
MAX_SKUS = 20
MAX_PLACES = 1000
MAX_DAYS = 20 * 366
MAX_CANDIDATES = 5000          # members matched per store in one answer (the robot's known set)
CAMPAIGN_ID = r'^[A-Za-z0-9._-]{1,64}$'
PLACE_ID = r'^[A-Za-z0-9._-]{1,64}$'
CATEGORY = r'^[a-z][a-z0-9_]{0,63}$'
SENTENCE = r'^[^\x00\r\n]*\S[^\x00\r\n]*$'
DAY_S = 86400.0

campaigns = sa.Table(
    'campaigns', t.metadata,
    sa.Column('id', sa.String(64), primary_key=True),
    sa.Column('definition', sa.Text, nullable=False),         # CampaignIn as JSON
    sa.Column('starts_at', sa.Float, nullable=False),
    sa.Column('ends_at', sa.Float, nullable=False),
    sa.Column('updated_at', sa.Float, nullable=False),
    sa.Column('updated_by', sa.String(200), nullable=False),
    sa.Index('ix_campaigns_window', 'ends_at'))


# --- the definition -------------------------------------------------------------------------
class AudienceRule(BaseModel):
    model_config = {'extra': 'forbid'}
    kind: Literal['asked_about', 'bought']
    category: str = Field(pattern=CATEGORY, description='a catalog category, e.g. tv, phone')
    within_days: float | None = Field(None, gt=0, le=MAX_DAYS,
                                      description='in the last N days (asked_about: default 30)')
    more_than_days: float | None = Field(None, gt=0, le=MAX_DAYS,
                                         description='bought only: the latest purchase of the '
                                                     'category is more than N days ago')

    @model_validator(mode='after')
    def _one_window(self) -> 'AudienceRule':
        if self.kind == 'asked_about' and self.more_than_days is not None:
            raise ValueError('asked_about takes within_days only')
        if self.within_days is not None and self.more_than_days is not None:
            raise ValueError('give within_days or more_than_days, not both')
        return self


class Audience(BaseModel):
    model_config = {'extra': 'forbid'}
    match: Literal['all', 'any'] = 'all'
    rules: list[AudienceRule] = Field(min_length=1, max_length=MAX_RULES)


Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r'^[^\x00/]+$')]
Place = Annotated[str, StringConstraints(pattern=PLACE_ID)]


class CampaignIn(BaseModel):
    """A campaign as HQ defines it (PUT /v1/campaigns/{id})."""
    model_config = {'extra': 'forbid'}
    name: str = Field(min_length=1, max_length=200, pattern=SENTENCE)
    audience: Audience
    skus: list[Sku] = Field(min_length=1, max_length=MAX_SKUS,
                            description='products offered (master SKUs)')
    message_zh: str = Field(min_length=1, max_length=300, pattern=SENTENCE,
                            description='what the robot says, in Chinese')
    message_en: str = Field(min_length=1, max_length=300, pattern=SENTENCE,
                            description='what the robot says, in English')
    stores: list[Place] = Field([], max_length=MAX_PLACES)
    regions: list[Place] = Field([], max_length=MAX_PLACES)
    starts_at: datetime = Field(description='ISO 8601 (no offset: China Standard Time)')
    ends_at: datetime = Field(description='ISO 8601 (no offset: China Standard Time); after '
                                          'starts_at')

    @model_validator(mode='after')
    def _check(self) -> 'CampaignIn':
        from retail_platform.funnel import CHAIN_ZONE
        if self.starts_at.tzinfo is None:
            self.starts_at = self.starts_at.replace(tzinfo=CHAIN_ZONE)
        if self.ends_at.tzinfo is None:
            self.ends_at = self.ends_at.replace(tzinfo=CHAIN_ZONE)
        if self.ends_at <= self.starts_at:
            raise ValueError('ends_at must be after starts_at')
        return self


class CampaignError(LookupError):
    """A campaign naming a store, region or product the chain does not have (one line)."""


class NoSuchCampaign(LookupError):
    """No such campaign (one line)."""


# --- matching: pure ------------------------------------------------------------------------
@dataclass(frozen=True)
class MemberFacts:
    """What is known of one member: (time, category) of what she asked about and bought."""
    asked: tuple[tuple[float, str], ...] = ()
    bought: tuple[tuple[float, str], ...] = ()


def rule_holds(rule: AudienceRule, facts: MemberFacts, now: float) -> bool:
    if rule.kind == 'asked_about':
        since = now - (rule.within_days or 30.0) * DAY_S
        return any(cat == rule.category and since <= at <= now for at, cat in facts.asked)
    times = [at for at, cat in facts.bought if cat == rule.category and at <= now]
    if not times:
        return False
    if rule.within_days is not None:
        return max(times) >= now - rule.within_days * DAY_S
    if rule.more_than_days is not None:
        return max(times) < now - rule.more_than_days * DAY_S
    return True


def matches(audience: Audience, facts: MemberFacts, now: float) -> bool:
    """The member is in the audience at `now` (module docstring)."""
    held = (rule_holds(rule, facts, now) for rule in audience.rules)
    return all(held) if audience.match == 'all' else any(held)


def applies_to(campaign: CampaignIn, store_id: str, region_id: str | None) -> bool:
    """The campaign's `where` covers the store."""
    if not campaign.stores and not campaign.regions:
        return True
    return store_id in campaign.stores or (region_id is not None and region_id in campaign.regions)


def active(campaign: CampaignIn, now: float) -> bool:
    return campaign.starts_at.timestamp() <= now < campaign.ends_at.timestamp()


# --- storage --------------------------------------------------------------------------------
def _load(text: str) -> CampaignIn:
    return CampaignIn.model_validate_json(text)


def _out(campaign_id: str, c: CampaignIn, updated_at: float | None = None) -> dict[str, Any]:
    data = c.model_dump(mode='json')
    data['id'] = campaign_id
    if updated_at is not None:
        data['updated_at'] = updated_at
    return data


def put(engine: sa.Engine, campaign_id: str, campaign: CampaignIn, who: str) -> dict:
    """Create or replace a campaign; CampaignError when it names a store, region or product the
    chain does not have."""
    from retail_platform.chain import products
    with engine.begin() as c:
        known_stores = {r.id for r in c.execute(sa.select(t.stores.c.id)
                                                .where(t.stores.c.id.in_(campaign.stores)))}
        missing = sorted(set(campaign.stores) - known_stores)
        if missing:
            raise CampaignError(f'no store {missing[0]!r}')
        known_regions = {r.id for r in c.execute(sa.select(t.regions.c.id)
                                                 .where(t.regions.c.id.in_(campaign.regions)))}
        missing = sorted(set(campaign.regions) - known_regions)
        if missing:
            raise CampaignError(f'no region {missing[0]!r}')
        known_skus = {r.sku for r in c.execute(sa.select(products.c.sku)
                                               .where(products.c.sku.in_(campaign.skus)))}
        missing = sorted(set(campaign.skus) - known_skus)
        if missing:
            raise CampaignError(f'no product {missing[0]!r} in the master')
        now = time.time()
        c.execute(campaigns.delete().where(campaigns.c.id == campaign_id))
        c.execute(campaigns.insert().values(
            id=campaign_id, definition=campaign.model_dump_json(), updated_at=now,
            starts_at=campaign.starts_at.timestamp(), ends_at=campaign.ends_at.timestamp(),
            updated_by=who[:200]))
    return _out(campaign_id, campaign, now)


def delete(engine: sa.Engine, campaign_id: str) -> None:
    with engine.begin() as c:
        if not c.execute(campaigns.delete().where(campaigns.c.id == campaign_id)).rowcount:
            raise NoSuchCampaign(f'no campaign {campaign_id!r}')


def listing(engine: sa.Engine) -> list[tuple[str, CampaignIn, float]]:
    with engine.connect() as c:
        rows = c.execute(sa.select(campaigns.c.id, campaigns.c.definition, campaigns.c.updated_at)
                         .order_by(campaigns.c.id)).all()
    return [(r.id, _load(r.definition), r.updated_at) for r in rows]


def visible(engine: sa.Engine, stores: list[dict] | None) -> list[dict]:
    """Campaigns as API answers; `stores` (id, region_id) limits them to those covering one of
    these stores (None: every campaign)."""
    out = []
    for campaign_id, campaign, updated_at in listing(engine):
        if stores is None or any(applies_to(campaign, s['id'], s['region_id']) for s in stores):
            out.append(_out(campaign_id, campaign, updated_at))
    return out


# --- facts of members from the database --------------------------------------------------------
def _categories(c: sa.Connection, skus: Iterable[str]) -> dict[str, str]:
    from retail_platform.chain import products
    wanted = sorted(set(skus))
    out: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        for r in c.execute(sa.select(products.c.sku, products.c.fields)
                           .where(products.c.sku.in_(wanted[start:start + 500]))):
            try:
                out[r.sku] = str(json.loads(r.fields).get('category', '')).strip()
            except (ValueError, AttributeError):
                continue
    return out


def _history_time(value: Any) -> float | None:
    """A member record's purchase time (ISO 8601; no zone: the chain's)."""
    from retail_platform.funnel import CHAIN_ZONE
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=CHAIN_ZONE)
    return when.timestamp()


def _asked(c: sa.Connection, chunk: list[str], since: float, now: float,
           out: dict[str, list[tuple[float, str]]]) -> None:
    """(time, category) of the members' `member_said` statements in [since, now]."""
    e = t.events.c
    for row in c.execute(sa.select(e.customer, e.time, e.data).where(
            e.type == 'member_said', e.customer.in_(chunk), e.time >= since, e.time <= now)):
        try:
            category = json.loads(row.data).get('category')
        except (ValueError, AttributeError):
            continue
        if isinstance(category, str) and category:
            out[row.customer].append((row.time, category))


def _lines(text: str) -> list[dict]:
    try:
        items = json.loads(text)
    except ValueError:
        return []
    return [x for x in items if isinstance(x, dict)] if isinstance(items, list) else []


def _quantity(item: dict, default: int) -> int:
    try:
        return int(item.get('qty', default) or 0)
    except (TypeError, ValueError):
        return 0


def _bought(c: sa.Connection, chunk: list[str], now: float,
            out: dict[str, list[tuple[float, str]]]) -> None:
    """(time, sku) of what the members bought up to now: till receipts and member histories."""
    from retail_platform.chain import members as member_table
    r = lt.receipts.c
    for row in c.execute(sa.select(r.customer, r.time, r.lines).where(
            r.customer.in_(chunk), r.time <= now)):
        out[row.customer] += [(row.time, str(x.get('sku', ''))) for x in _lines(row.lines)
                              if _quantity(x, 0) > 0]
    for row in c.execute(sa.select(member_table.c.member_id, member_table.c.history)
                         .where(member_table.c.member_id.in_(chunk))):
        for item in _lines(row.history):
            when = _history_time(item.get('ts'))
            if when is not None and when <= now and _quantity(item, 1) > 0:
                out[row.member_id].append((when, str(item.get('sku', ''))))


def facts(c: sa.Connection, members: list[str], now: float,
          asked_since: float) -> dict[str, MemberFacts]:
    """Facts of these (consenting, not forgotten) members: statements since `asked_since`,
    purchases of every time up to now."""
    asked: dict[str, list[tuple[float, str]]] = {m: [] for m in members}
    bought_raw: dict[str, list[tuple[float, str]]] = {m: [] for m in members}   # (time, sku)
    for start in range(0, len(members), 500):
        chunk = members[start:start + 500]
        _asked(c, chunk, asked_since, now, asked)
        _bought(c, chunk, now, bought_raw)
    category = _categories(c, (sku for items in bought_raw.values() for _, sku in items))
    return {m: MemberFacts(tuple(sorted(asked[m])),
                           tuple(sorted((at, category[sku]) for at, sku in bought_raw[m]
                                        if category.get(sku))))
            for m in members}


def _eligible(c: sa.Connection, candidates: Iterable[str]) -> list[str]:
    """Of these ids: consenting members with a record, never one with a forget request."""
    from retail_platform.chain import forget_requests, members as member_table
    wanted = sorted(set(candidates))[:MAX_CANDIDATES]
    out: list[str] = []
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        forgotten = {r.member_id for r in c.execute(sa.select(forget_requests.c.member_id)
                                                    .where(forget_requests.c.member_id.in_(chunk)))}
        out += [r.member_id for r in c.execute(sa.select(member_table.c.member_id).where(
            member_table.c.member_id.in_(chunk), member_table.c.consent.is_(True)))
            if r.member_id not in forgotten]
    return sorted(out)


def section(c: sa.Connection, store_id: str, region_id: str | None, candidates: Iterable[str],
            now: float | None = None) -> dict[str, Any]:
    """The downlink's `campaigns` section for a robot of `store_id`: the store's active
    campaigns, each with the members among `candidates` (those the robot knows) it matches."""
    now = time.time() if now is None else now
    rows = c.execute(sa.select(campaigns.c.id, campaigns.c.definition).where(
        campaigns.c.starts_at <= now, campaigns.c.ends_at > now).order_by(campaigns.c.id)).all()
    chosen = [(r.id, _load(r.definition)) for r in rows]
    chosen = [(cid, cp) for cid, cp in chosen if applies_to(cp, store_id, region_id)]
    out: list[dict[str, Any]] = []
    if chosen:
        members = _eligible(c, candidates)
        known = facts(c, members, now, now - _asked_window([cp for _, cp in chosen]) * DAY_S)
        for cid, cp in chosen:
            out.append({'id': cid, 'name': cp.name, 'skus': list(cp.skus),
                        'message_zh': cp.message_zh, 'message_en': cp.message_en,
                        'starts_at': cp.starts_at.timestamp(), 'ends_at': cp.ends_at.timestamp(),
                        'members': [m for m in members if matches(cp.audience, known[m], now)]})
    return {'version': SECTION_VERSION, 'at': now, 'store_id': store_id, 'active': out}


def audience_size(engine: sa.Engine, campaign_id: str, now: float | None = None) -> dict:
    """How many consenting members the campaign matches now, chain-wide (HQ's preview)."""
    from retail_platform.chain import members as member_table
    now = time.time() if now is None else now
    with engine.connect() as c:
        row = c.execute(sa.select(campaigns.c.definition)
                        .where(campaigns.c.id == campaign_id)).first()
        if row is None:
            raise NoSuchCampaign(f'no campaign {campaign_id!r}')
        campaign = _load(row.definition)
        everyone = [r.member_id for r in c.execute(
            sa.select(member_table.c.member_id).where(member_table.c.consent.is_(True))
            .order_by(member_table.c.member_id).limit(MAX_CANDIDATES))]
        members = _eligible(c, everyone)
        known = facts(c, members, now, now - _asked_window([campaign]) * DAY_S)
    return {'id': campaign_id, 'at': now, 'members': sum(
        1 for m in members if matches(campaign.audience, known[m], now)),
        'counted_of': len(members), 'active': active(campaign, now)}


def _asked_window(chosen: list[CampaignIn]) -> float:
    """Days of statements the asked_about rules of these campaigns look back (0: none)."""
    return max([rule.within_days or 30.0 for cp in chosen for rule in cp.audience.rules
                if rule.kind == 'asked_about'] or [0.0])
