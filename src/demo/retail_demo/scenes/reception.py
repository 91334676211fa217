"""Receiving a VIP with an appointment (the vip and vip2 scenes): recognised, greeted with the
purpose, checked in, staff paged, escorted to the meeting point. Notes `<key>_...` expectations."""

from __future__ import annotations

from retail_demo import demo_scenario as story
from retail_demo.checks import Observations
from retail_demo.robot_client import StoreClient


def receive(
    robot: StoreClient,
    seen: Observations,
    key: str,
    vip: story.Customer,
    purpose: str,
    staff_name: str,
    meeting_point: str,
    retry: str,
) -> None:
    mark = robot.mark()
    track, event = robot.enter(vip, 45)
    if key == 'vip':
        seen.note(
            'vip_identified',
            customer_id=vip.customer_id,
            seen=(event.customer_id, event.vip, event.display_name) if event is not None else None,
        )
    greet = robot.greeting(mark, track, vip.name)
    seen.note(f'{key}_greeted', greeting=greet.text if greet else None, name=vip.name, purpose=purpose)
    if greet is None:
        return
    robot.screenshot('vip_welcome', until_css='#welcome.vip')

    mark = robot.mark()
    robot.say(vip, story.VIP_CHECKIN, track)
    seen.note(f'{key}_checked_in', checkin=robot.event(mark, 'vip_checkin', 15))
    seen.note(f'{key}_staff_notified', staff=robot.staff_page(mark, 10, staff=staff_name))
    if robot.reply(mark, 10, track, ('vip_checkin',)) is None:
        return

    mark = robot.mark()
    robot.say(vip, story.VIP_ACCEPT_ESCORT, track)
    robot.walk_behind(vip)
    arrived = robot.guided(mark, vip, track, meeting_point, retry)
    seen.note(f'{key}_escorted', arrived=arrived, zone=meeting_point)
    robot.leave(track)
