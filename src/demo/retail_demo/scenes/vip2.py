"""A new VIP customer enrols and books on the platform while the robot runs; the sync brings the
appointment to the running robot, which then receives the VIP."""

from __future__ import annotations

from retail_demo import demo_scenario as story
from retail_demo.checks import Observations
from retail_demo.robot_client import StoreClient
from retail_demo.scenes.reception import receive


def play(robot: StoreClient, seen: Observations) -> None:
    robot.section(f'A VIP booked mid-day: {story.VIP2.label}')
    robot.enrol(story.VIP2)
    mark = robot.mark()
    start = robot.book(story.VIP2, story.VIP2_PURPOSE, story.VIP2_STAFF, story.VIP2_MEETING_POINT)
    robot.sync_now(10)
    update = robot.data_update(mark, 'appointments', 30)
    robot_sees = robot.appointments_of(story.VIP2)
    seen.note(
        'vip2_booked',
        start=start,
        robot_sees=bool(robot_sees),
        update=(update.kind, update.version, update.path) if update else None,
    )
    if update is None:
        return
    robot.tell('sync', f'the new appointment of {story.VIP2.name} is on the robot')
    receive(
        robot,
        seen,
        'vip2',
        story.VIP2,
        story.VIP2_PURPOSE,
        story.VIP2_STAFF,
        story.VIP2_MEETING_POINT,
        story.VIP2_RETRY,
    )
