"""The store day's checks as data: expectation name → what it promises → how it is measured.

Scenes only *note* what they saw (`seen.note('vip_greeted', greeting=..., name=..., purpose=...)`);
at the end of the day `evaluate` measures every noted expectation with its row of `CHECKS`. An
expectation whose facts were never noted (the day stopped before it) is "not reached". The wording
is demo_scenario.EXPECTATIONS (printed when one fails and written to summary.json). Pure: no rclpy.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retail_demo import demo_scenario as story
from retail_demo.demo_report import Expectations

Facts = dict[str, Any]
Measure = Callable[[Facts], tuple[bool, str]]


@dataclass
class Observations:
    """What the scenes saw, by expectation name (the facts its measure reads)."""

    facts: dict[str, Facts] = field(default_factory=dict)

    def note(self, expectation: str, /, **facts: Any) -> None:
        self.facts[expectation] = facts

    def get(self, name: str) -> Facts | None:
        return self.facts.get(name)


def _json(value: object, otherwise: str) -> str:
    return json.dumps(value, ensure_ascii=False) if value else otherwise


# -- how each expectation is measured (one function per kind of check) -------------------------
def _parts(o: Facts) -> tuple[bool, str]:
    if o.get('missing'):
        return False, f'not installed: {", ".join(o["missing"])}'
    return True, o['nodes']


def _identified(o: Facts) -> tuple[bool, str]:
    seen = o['seen']  # (customer id, vip, display name) of the camera's event, or None
    if seen is None:
        return False, 'nobody seen'
    return bool(seen[0] == o['customer_id'] and seen[1]), f'camera saw {seen[2] or "nobody known"}'


def _greeted(o: Facts) -> tuple[bool, str]:
    text = o['greeting']
    return (
        text is not None and o['name'] in text and o.get('purpose', '') in text,
        text if text is not None else 'no greeting',
    )


def _checked_in(o: Facts) -> tuple[bool, str]:
    checkin = o['checkin']
    return checkin is not None and checkin.get('status') == 'on_time', _json(checkin, 'no check-in event')


def _staff_notified(o: Facts) -> tuple[bool, str]:
    return o['staff'] is not None, _json(o['staff'], 'no staff request naming the staff member')


def _arrived(o: Facts) -> tuple[bool, str]:
    return bool(o['arrived']), f'arrived at {o["zone"]}' if o['arrived'] else 'did not arrive'


def _booked(o: Facts) -> tuple[bool, str]:
    update = o['update']  # (kind, version, path) of the sync's data update, or None
    return (
        update is not None and bool(o['robot_sees']),
        f'booked for {o["start"]:%H:%M}; '
        + (f'{update[0]} version {update[1]} in {update[2]}' if update else 'no data update from the sync'),
    )


def _recommended(o: Facts) -> tuple[bool, str]:
    skus, products, reply, reasons = o['skus'], o['products'], o['reply'], o['reasons']
    prices = [p.price_cny if p else -1.0 for p in products]
    ok = (
        bool(skus)
        and all(
            p is not None and p.category == story.MEMBER_CATEGORY and p.price_cny >= story.MEMBER_MIN_PRICE
            for p in products
        )
        and reply is not None
        and reply.count('元') >= len(skus)
        and len(reasons) == len(skus)
        and all(reason for _, reason in reasons)
    )
    return ok, f'{skus} at {prices} yuan, reasons {reasons}: ' + (reply if reply is not None else 'no reply')


def _honours(profile, products: list, low: float, high: float) -> bool:
    """Only products of her category within her budget, her brand first."""
    return (
        bool(products)
        and all(p is not None and p.category == profile.category and low <= p.price_cny <= high for p in products)
        and products[0].brand == story.MEMBER_BRAND
    )


def _returned(o: Facts) -> tuple[bool, str]:
    """Her recommendation on coming back honours her first visit as the platform kept it (her
    profile: the category and brand she asked for, the budget she named last): the profile was
    used, only products of that category within that budget, her brand first, every reason
    beginning with the profile's sentence."""
    profile = o['profile']
    if profile is None:
        return False, 'her profile never reached the robot'
    recommended, products, reply = o['recommended'] or {}, o['products'], o['reply']
    reasons = [item.get('reason_zh', '') for item in recommended.get('products') or []]
    low, high = profile.min_price or 0.0, profile.max_price or float('inf')
    ok = (
        profile.category == story.MEMBER_CATEGORY
        and story.MEMBER_BRAND in profile.brands_wanted
        and recommended.get('profile_used') is True
        and _honours(profile, products, low, high)
        and len(reasons) == len(products)
        and all(reason.startswith(story.PROFILE_SENTENCE) for reason in reasons)
    )
    shown = [(p.sku, p.brand, p.price_cny) if p else '?' for p in products]
    return ok, (
        f'profile {profile.category} {low:g}-{high:g} yuan, wants {list(profile.brands_wanted)}; '
        f'profile_used={recommended.get("profile_used")}, {shown}, reasons {reasons}: '
        + (reply if reply is not None else 'no reply')
    )


def _screenshot(o: Facts) -> tuple[bool, str]:
    return isinstance(o['shot'], Path), str(o['shot'])


def _refined_brand(o: Facts) -> tuple[bool, str]:
    brand, reply = o['products'], o['reply']
    ok = bool(brand) and all(
        p is not None and p.brand == story.MEMBER_BRAND and p.category == story.MEMBER_CATEGORY for p in brand
    )
    return ok, f'{[(p.sku, p.brand) if p else "?" for p in brand]}: ' + (reply if reply is not None else 'no reply')


def _refined_cheaper(o: Facts) -> tuple[bool, str]:
    cheaper, before, reply = o['products'], o['before'], o['reply']
    ok = bool(cheaper) and all(
        p is not None and p.category == story.MEMBER_CATEGORY and p.price_cny < min(before) for p in cheaper
    )
    return ok, (
        f'{[(p.sku, p.price_cny) if p else "?" for p in cheaper]} after prices {before}: '
        + (reply if reply is not None else 'no reply')
    )


def _guide_zone(o: Facts) -> tuple[bool, str]:
    zone, turn = o['zone'], o['turn']
    return (
        bool(zone) and turn is not None and turn.get('guide_to') == zone,
        f'products shown are in {zone or "no zone"}; the robot set off to {(turn or {}).get("guide_to") or "nowhere"}',
    )


def _bumper(o: Facts) -> tuple[bool, str]:
    if not o['moving']:
        return False, 'the robot never started towards the phones'
    return (
        bool(o['stopped'] and o['apology'] is not None and o['reset']),
        f'stopped={bool(o["stopped"])}, apology={o["apology"]}, reset={o["reset"]}',
    )


def _incident(o: Facts) -> tuple[bool, str]:
    if not o['written']:
        return False, 'no incident recording of the bumper stop was written'
    ok = bool(
        o['listed']
        and o['local_deleted']
        and o.get('sha256_ok')
        and o.get('bumper_in_recording')
        and not o.get('camera_images')
    )
    return ok, (
        f'uploaded as incident {o.get("id")}, robot copy deleted={o["local_deleted"]}, '
        f'{o.get("messages", 0)} messages on {len(o.get("topics", []))} topics read back, '
        f'bumper press in it={o.get("bumper_in_recording")}, camera images={o.get("camera_images")}'
    )


def _camera(o: Facts) -> tuple[bool, str]:
    return bool(o['lost'] and o['back']), f'reported={bool(o["lost"])}, recovered={bool(o["back"])}'


def _shopper(o: Facts) -> tuple[bool, str]:
    reply = o['reply']
    return reply is not None and '厨房' in reply, reply if reply is not None else 'no answer'


def _promotions(o: Facts) -> tuple[bool, str]:
    offers, reply = o['products'], o['reply']
    ok = (
        bool(offers) and reply is not None and all(p is not None and p.promotion and p.name_zh in reply for p in offers)
    )
    return ok, (
        f'{[(p.sku, p.promotion) if p else "?" for p in offers]}: ' + (reply if reply is not None else 'no answer')
    )


def _staff_called(o: Facts) -> tuple[bool, str]:
    staff = o['staff']
    return bool(staff), json.dumps(staff[0], ensure_ascii=False) if staff else 'no staff request'


def _left(o: Facts) -> tuple[bool, str]:
    return bool(o['left'] and o['ended']), f'left seen={o["left"]}, session end={o["ended"]}'


def _tour_started(o: Facts) -> tuple[bool, str]:
    return (
        bool(o['stops']) and bool(o['answered']),
        f'tour {o["route"]!r} of {len(o["stops"])} stops' if o['started'] else 'no tour started',
    )


def _tour_narrated(o: Facts) -> tuple[bool, str]:
    said = o['said']
    return (
        bool(said is not None and o['arrived']),
        f'arrived at {o["zone"]}: {o["arrived"]}; ' + (said if said is not None else 'no narration'),
    )


def _tour_next(o: Facts) -> tuple[bool, str]:
    answer, stopped = o['answer'], o['stopped']
    return (
        answer is not None and stopped is None,
        (answer if answer is not None else 'no answer') + ('' if stopped is None else f'; tour ended: {stopped}'),
    )


def _tour_ended(o: Facts) -> tuple[bool, str]:
    ended, cancelled = o['ended'], o['cancelled']
    return (
        ended is not None and cancelled is not None,
        f'tour event: {_json(ended, "none")}; guide: {_json(cancelled, "no cancelled tour goal")}',
    )


def _queued(o: Facts) -> tuple[bool, str]:
    return bool(o['queued']), f'backlog {o["backlog"]}'


def _restarted(o: Facts) -> tuple[bool, str]:
    return bool(o['back']), f'restarted {o["restarts"]} time(s)'


def _drained(o: Facts) -> tuple[bool, str]:
    return bool(o['drained']), f'{o["pending"]} still pending'


def _no_events_lost(o: Facts) -> tuple[bool, str]:
    """Every event seen on the bus is on the platform once the robot has stopped.

    The outbox may still hold an event when the robot is judged, and that is not a loss: one the
    platform stored whose confirmation the shutdown cut off (the next start sends it again and the
    platform answers duplicate), or one a node wrote while stopping (durable; it goes up at the next
    start). An event seen on the bus that is on the platform nowhere and not in the outbox is lost;
    one only in the outbox was not uploaded before closing.
    """
    produced, uploaded, pending = o['produced'], o['uploaded'], o['pending']
    lost = produced - uploaded - pending
    waiting = produced & pending - uploaded
    words = (
        f'{len(produced)} produced, {len(uploaded)} on the platform, {len(pending)} still '
        f'in the outbox, {len(lost)} lost'
    )
    confirmed_late = len(pending & uploaded)
    written_late = len(pending - produced - uploaded)
    if confirmed_late or written_late:
        words += (
            f' (in the outbox: {confirmed_late} already on the platform, its confirmation cut by the '
            f'shutdown; {written_late} written while stopping; both go up at the next start)'
        )
    if waiting:
        words += f'; {len(waiting)} never uploaded before closing'
    return bool(produced) and not lost and not waiting, words


def _localised(o: Facts) -> tuple[bool, str]:
    error = o['error']
    if error is None:
        return False, f'no pose to compare ({o["poses"]} poses, {o["truths"]} ground truth)'
    return (
        error <= story.LOCALISATION_TOLERANCE_M,
        f'largest error {error:.3f} m over {o["poses"]} poses ({o.get("source") or "published poses"})',
    )


def _no_contacts(o: Facts) -> tuple[bool, str]:
    contacts = o['contacts']
    if contacts is None:
        return False, 'the simulator reported no contact count'
    return contacts == 0, f'{contacts} contact(s) with {o["shoppers"]} shoppers walking'


def _reception(key: str) -> dict[str, Measure]:
    return {
        f'{key}_greeted': _greeted,
        f'{key}_checked_in': _checked_in,
        f'{key}_staff_notified': _staff_notified,
        f'{key}_escorted': _arrived,
    }


def _fleet_healthy(o: Facts) -> tuple[bool, str]:
    row = ' '.join(str(o.get('row') or '').replace('|', ' ').split())
    return 'healthy' in row, row or 'the robot is not on the store page'


def _fleet_answered(o: Facts) -> tuple[bool, str]:
    heard = o.get('heard')
    if not o.get('call'):
        return False, 'no staff call on the platform'
    ok = (
        bool(o.get('shown'))
        and bool(o.get('place'))
        and heard is not None
        and heard[0] == o['answer']
        and heard[1] == 'staff_answer'
        and heard[2] == (o.get('language') or 'zh')
    )
    return ok, (
        f'on the page: {bool(o.get("shown"))}, at {o.get("place") or "?"}; robot said: '
        f'{heard[0] + " (" + heard[2] + ")" if heard else "nothing"}'
    )


def _fleet_promotion(o: Facts) -> tuple[bool, str]:
    promotion = o.get('promotion') or {}
    spoken = o.get('spoken') or ''
    ok = o.get('rollout') == 'done' and promotion in (o.get('promotions') or []) and promotion.get('text', '') in spoken
    return ok, (
        f'desired state v{o.get("version")}: rollout {o.get("rollout")}, robot runs '
        f'v{o.get("update")} with {len(o.get("promotions") or [])} promotion(s); asked, it said: {spoken or "nothing"}'
    )


def _purchase_attributed(o: Facts) -> tuple[bool, str]:
    receipt, funnel = o.get('receipt'), o.get('funnel')
    if not receipt:
        return False, 'no receipt of hers was sent'
    if not funnel:
        return False, 'no funnel of the day from the platform'
    purchased, revenue = funnel.get('purchased'), funnel.get('attributed_revenue_cny')
    ok = isinstance(purchased, int) and purchased >= 1 and revenue == receipt['price_cny']
    return ok, (
        f'her receipt {receipt["sku"]} {receipt["price_cny"]:g} yuan; the funnel: purchased {purchased}, '
        f'attributed revenue {revenue} yuan'
    )


# The table: every expectation's measure; its wording is story.EXPECTATIONS[name].
MEASURES: dict[str, Measure] = {
    'parts_available': _parts,
    'vip_identified': _identified,
    **_reception('vip'),
    'vip2_booked': _booked,
    **_reception('vip2'),
    'member_greeted': _greeted,
    'member_recommended': _recommended,
    'screen_reasons': _screenshot,
    'member_refined_brand': _refined_brand,
    'member_refined_cheaper': _refined_cheaper,
    'member_guide_zone': _guide_zone,
    'bumper_stop': _bumper,
    'bumper_recovered': _arrived,
    'camera_dropout': _camera,
    'shopper_answered': _shopper,
    'promotions_answered': _promotions,
    'staff_called': _staff_called,
    'member_returned': _returned,
    'left_mid_conversation': _left,
    'tour_started': _tour_started,
    'tour_narrated': _tour_narrated,
    'tour_next': _tour_next,
    'tour_ended': _tour_ended,
    'outage_queued': _queued,
    'sync_restarted': _restarted,
    'outage_drained': _drained,
    'no_events_lost': _no_events_lost,
    'localised': _localised,
    'no_contacts': _no_contacts,
    'incident_uploaded': _incident,
    'fleet_healthy': _fleet_healthy,
    'fleet_staff_answered': _fleet_answered,
    'fleet_promotion': _fleet_promotion,
    'purchase_attributed': _purchase_attributed,
}


@dataclass(frozen=True)
class Check:
    name: str
    expectation: str
    measure: Measure


CHECKS: tuple[Check, ...] = tuple(Check(name, words, MEASURES[name]) for name, words in story.EXPECTATIONS.items())


def evaluate(seen: Observations, expect: Expectations) -> Expectations:
    """Measure every expectation of `expect` whose facts were noted; the others stay "not reached"."""
    for check in CHECKS:
        facts = seen.get(check.name)
        if check.name in expect.wording and facts is not None:
            expect.check(check.name, *check.measure(facts))
    return expect
