"""An anonymous shopper asks where the air fryers are, what is on promotion, and calls staff."""

from __future__ import annotations


from retail_demo import demo_scenario as story
from retail_demo.checks import Observations
from retail_demo.robot_client import StoreClient

SHOPPER = story.SHOPPER


def play(robot: StoreClient, seen: Observations) -> None:
    robot.section(f'Anonymous shopper: {SHOPPER.label}')
    track, _ = robot.enter(SHOPPER, 30)
    mark = robot.mark()
    robot.say(SHOPPER, story.SHOPPER_ASK, track)
    reply = robot.reply(mark, 15, track)
    seen.note('shopper_answered', reply=reply.text if reply else None)

    # A store-wide question: the answer names products on promotion (from the robot's store).
    reply, skus = robot.ask_and_see(SHOPPER, story.PROMOTIONS_ASK, track)
    store = robot.robot_store()
    seen.note(
        'promotions_answered',
        products=[store.catalog.by_sku.get(sku) for sku in skus],
        reply=reply.text if reply else None,
    )

    mark = robot.mark()
    robot.say(SHOPPER, story.SHOPPER_CALL_STAFF, track)
    staff = robot.wait(lambda: robot.since('staff', mark), 15, 'staff called')
    seen.note('staff_called', staff=staff)
    robot.leave(track)
