"""The VIP of today's appointment (booked before opening) is received and escorted to the lounge."""

from __future__ import annotations

from retail_demo import demo_scenario as story
from retail_demo.checks import Observations
from retail_demo.robot_client import StoreClient
from retail_demo.scenes.reception import receive


def play(robot: StoreClient, seen: Observations) -> None:
    robot.section(f'VIP reception: {story.VIP.label}')
    receive(robot, seen, 'vip', story.VIP, story.APPOINTMENT_PURPOSE, story.STAFF, 'vip_lounge', story.VIP_RETRY)
