"""A member is greeted by name, asks for phones, narrows them down (a brand, then cheaper), accepts
and is guided to their zone; on the way the robot bumps a display stand, stops, apologises, is reset
by staff, and the member asks again to be taken there."""

from __future__ import annotations

from retail_demo import demo_scenario as story
from retail_demo.checks import Observations
from retail_demo.robot_client import Mark, StoreClient

MEMBER = story.MEMBER


def play(robot: StoreClient, seen: Observations) -> None:
    robot.section(f'Member shopping: {MEMBER.label}')
    mark = robot.mark()
    track, _ = robot.enter(MEMBER, 45)
    greet = robot.greeting(mark, track, MEMBER.name)
    seen.note('member_greeted', greeting=greet.text if greet else None, name=MEMBER.name)

    store = robot.robot_store()
    products = recommend(robot, seen, track, store)
    shot = robot.screenshot('recommendations', until_css='#cards .card-reason')
    seen.note('screen_reasons', shot=shot)

    # The member narrows the recommendation down: a brand, then a cheaper one.
    reply, skus = robot.ask_and_see(MEMBER, story.MEMBER_REFINE_BRAND, track)
    brand = [store.catalog.by_sku.get(sku) for sku in skus]
    seen.note('member_refined_brand', products=brand, reply=reply.text if reply else None)
    before = [p.price_cny for p in brand if p] or [p.price_cny if p else -1.0 for p in products]
    reply, skus = robot.ask_and_see(MEMBER, story.MEMBER_REFINE_CHEAPER, track)
    cheaper = [store.catalog.by_sku.get(sku) for sku in skus]
    seen.note('member_refined_cheaper', products=cheaper, before=before, reply=reply.text if reply else None)

    shown = [p for p in cheaper or brand or products if p is not None]
    zones = [store.zone_of(p) for p in shown]
    zone = max(set(zones), key=zones.count) if zones else ''
    mark = robot.mark()
    robot.say(MEMBER, story.MEMBER_ACCEPT, track)
    seen.note('member_guide_zone', zone=zone, turn=robot.event(mark, 'dialogue_turn', 15))
    robot.walk_behind(MEMBER)

    # On the way a display stand is hit: the bumper of the base simulator.
    moving = robot.moved_since(mark, 1.5, 40)
    robot.screenshot('route', until_css='#route-path')
    bump(robot, seen, mark, moving)
    mark = robot.mark()
    robot.say(MEMBER, story.MEMBER_RETRY, track)
    arrived = robot.guided(mark, MEMBER, track, zone or 'phones', story.MEMBER_RETRY)
    seen.note('bumper_recovered', arrived=arrived, zone=zone)
    robot.leave(track)


def recommend(robot: StoreClient, seen: Observations, track: int, store) -> list:
    """The member asks for phones of 3000 yuan or more; returns the products recommended."""
    mark = robot.mark()
    robot.say(MEMBER, story.MEMBER_ASK, track)
    recommended = robot.event(mark, 'recommendation', 20) or {}
    reply = robot.reply(mark, 5, track, ('recommend',))
    skus = recommended.get('skus') or []
    products = [store.catalog.by_sku.get(sku) for sku in skus]
    reasons = [(item.get('sku'), item.get('reason_zh', '')) for item in recommended.get('products') or []]
    seen.note('member_recommended', skus=skus, products=products, reasons=reasons, reply=reply.text if reply else None)
    return products


def bump(robot: StoreClient, seen: Observations, mark: Mark, moving: bool) -> None:
    """The centre bumper is pressed while guiding: a latched stop, an apology, staff reset it."""
    if not moving:
        seen.note('bumper_stop', moving=False)
        return
    robot.tell('fault', 'the robot bumps into a display stand (centre bumper pressed)')
    robot.press_bumper(2)
    stopped = robot.safety_since(mark, 10, 'safety stop', lambda s: s.latched)
    robot.screenshot('console_bumper_stop', page='console', until_text=('#safety', 'STOPPED'))
    sorry = robot.reply_saying(mark, 15, ('抱歉', 'sorry'), what='apology')
    robot.press_bumper(0)
    robot.safety_since(mark, 10, 'bumper released', lambda s: not (s.bumper_left or s.bumper_centre or s.bumper_right))
    robot.tell('staff', 'clears the way and presses reset')
    mark = robot.mark()
    message = robot.press_reset(20)
    robot.safety_since(mark, 10, 'drive enabled', lambda s: not s.latched)
    seen.note('bumper_stop', moving=True, stopped=stopped, apology=sorry.text if sorry else None, reset=message)
