"""Members' profiles from what they said (`member_said` events of consenting members): kept per
member on the platform, read by the robots of every store (`GET /v1/members/{member}/profile`),
forgotten with the member (`forget_profile`).

The profile is a pure fold (`build`) of the member's statements in time order, kept with the
statements themselves (the newest MAX_STATEMENTS), so a statement that arrives late (a robot
offline for a week) lands in its place and the profile ends as if it had come on time.
Anonymous events (no member pseudonym) never build a profile.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable

import sqlalchemy as sa

from retail_platform import loop_schema as lt
from retail_platform import schema as t

MAX_STATEMENTS = 100
MAX_SKUS = 20
WATERMARK_OVERLAP_S = 120.0


def build(statements: list[dict]) -> dict[str, Any]:
    """The profile of a member's statements (each: `time` and a member_said payload): the
    latest category and budget win; a brand wanted then refused (or the reverse) is where the
    latest statement put it; products compared and turned down: the newest MAX_SKUS."""
    profile: dict[str, Any] = {'category': None, 'min_price': None, 'max_price': None,
                               'brands_wanted': [], 'brands_refused': [], 'compared_skus': [],
                               'declined_skus': [], 'language': 'zh', 'said_at': None}
    for s in sorted(statements, key=lambda s: (s['time'], s.get('key', ''))):
        if s.get('category'):
            profile['category'] = s['category']
            profile['min_price'] = s.get('min_price')
            profile['max_price'] = s.get('max_price')
        elif s.get('max_price') is not None or s.get('min_price') is not None:
            profile['min_price'] = s.get('min_price')
            profile['max_price'] = s.get('max_price')
        for brand in s.get('brands_wanted') or []:
            profile['brands_refused'] = [b for b in profile['brands_refused'] if b != brand]
            if brand not in profile['brands_wanted']:
                profile['brands_wanted'].append(brand)
        for brand in s.get('brands_refused') or []:
            profile['brands_wanted'] = [b for b in profile['brands_wanted'] if b != brand]
            if brand not in profile['brands_refused']:
                profile['brands_refused'].append(brand)
        for key in ('compared_skus', 'declined_skus'):
            merged = [x for x in profile[key] if x not in (s.get(key) or [])] + list(s.get(key) or [])
            profile[key] = merged[-MAX_SKUS:]
        profile['language'] = s.get('language', profile['language'])
        profile['said_at'] = s['time']
    return profile


def _apply(c: sa.Connection, member: str, fresh: list[dict], now: float) -> None:
    row = c.execute(sa.select(lt.member_profiles.c.profile)
                    .where(lt.member_profiles.c.customer == member)).first()
    kept = json.loads(row.profile)['statements'] if row else []
    keys = {s['key'] for s in kept}
    statements = kept + [s for s in fresh if s['key'] not in keys]
    statements = sorted(statements, key=lambda s: (s['time'], s['key']))[-MAX_STATEMENTS:]
    text = json.dumps({'profile': build(statements), 'statements': statements},
                      ensure_ascii=False, separators=(',', ':'))
    c.execute(lt.member_profiles.delete().where(lt.member_profiles.c.customer == member))
    c.execute(lt.member_profiles.insert().values(customer=member, profile=text, updated_at=now))


def _news(c: sa.Connection, member: str, fresh: list[dict]) -> bool:
    """Whether `fresh` holds a statement the member's profile was not built from yet."""
    row = c.execute(sa.select(lt.member_profiles.c.profile)
                    .where(lt.member_profiles.c.customer == member)).first()
    keys = {s['key'] for s in json.loads(row.profile)['statements']} if row else set()
    return any(s['key'] not in keys for s in fresh)


def refresh(engine: sa.Engine,
            changed: Callable[[sa.Connection, list[str]], list[str]] | None = None) -> int:
    """Fold member_said events received since the last run into the profiles; returns how many
    members changed. `changed(connection, members)` runs in the transaction that writes the
    profiles, before it writes, with the members whose profile gains a statement; it answers
    the members to fold (the downlink takes its change lock there, leaves out members forgotten
    meanwhile and marks the others' records as changed, so a robot holding a member gets her
    new profile in its next delta)."""
    e = t.events.c
    with engine.connect() as c:
        mark = c.execute(sa.select(lt.loop_state.c.value)
                         .where(lt.loop_state.c.key == 'profiles')).scalar() or 0.0
        rows = c.execute(sa.select(e.robot_id, e.event_id, e.customer, e.time, e.data,
                                   e.received_at)
                         .where(e.received_at > mark - WATERMARK_OVERLAP_S,
                                e.type == 'member_said', e.customer != '')).all()
    if not rows:
        return 0
    by_member: dict[str, list[dict]] = {}
    newest = mark
    for r in rows:
        newest = max(newest, r.received_at)
        try:
            data = json.loads(r.data)
        except ValueError:
            continue
        if isinstance(data, dict):
            data.pop('source', None)
            by_member.setdefault(r.customer, []).append(
                {**data, 'time': r.time, 'key': f'{r.robot_id}/{r.event_id}'})
    now = time.time()
    with engine.begin() as c:
        members = [m for m in sorted(by_member) if _news(c, m, by_member[m])]
        if changed is not None and members:
            members = changed(c, members)
        for member in members:
            _apply(c, member, by_member[member], now)
        if newest > mark:
            c.execute(lt.loop_state.delete().where(lt.loop_state.c.key == 'profiles'))
            c.execute(lt.loop_state.insert().values(key='profiles', value=newest))
    return len(members)


def kept(connection: sa.Connection, members: list[str]) -> dict[str, dict]:
    """The profiles kept for `members` (member id -> the profile as `profile` answers it,
    without the member id), read in the caller's transaction: the downlink's member records."""
    found: dict[str, dict] = {}
    for start in range(0, len(members), 500):
        for row in connection.execute(sa.select(lt.member_profiles.c.customer,
                                                lt.member_profiles.c.profile,
                                                lt.member_profiles.c.updated_at)
                                      .where(lt.member_profiles.c.customer.in_(
                                          members[start:start + 500]))):
            found[row.customer] = {**json.loads(row.profile)['profile'],
                                   'updated_at': row.updated_at}
    return found


def profile(engine: sa.Engine, member: str) -> dict | None:
    with engine.connect() as c:
        row = c.execute(sa.select(lt.member_profiles.c.profile, lt.member_profiles.c.updated_at)
                        .where(lt.member_profiles.c.customer == member)).first()
    if row is None:
        return None
    return {'member': member, **json.loads(row.profile)['profile'], 'updated_at': row.updated_at}


def forget_profile(connection: sa.Connection, member: str) -> int:
    """Delete the member's profile and the statements it was built from (her `member_said`
    events), in the caller's transaction (the platform's forget calls it in the one that deletes
    the member's other data), so no later refresh can rebuild it. Returns 1 when a profile was
    kept, else 0."""
    connection.execute(t.events.delete().where(t.events.c.customer == member,
                                               t.events.c.type == 'member_said'))
    return connection.execute(lt.member_profiles.delete()
                              .where(lt.member_profiles.c.customer == member)).rowcount
