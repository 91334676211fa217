"""A customer asks about TVs and walks away mid-conversation: the robot ends the session."""

from __future__ import annotations

from retail_demo import demo_scenario as story
from retail_demo.checks import Observations
from retail_demo.robot_client import StoreClient

LEAVER = story.LEAVER


def play(robot: StoreClient, seen: Observations) -> None:
    robot.section(f'A customer walks off: {LEAVER.label}')
    track, _ = robot.enter(LEAVER, 30)
    mark = robot.mark()
    robot.say(LEAVER, story.LEAVER_ASK, track)
    robot.reply(mark, 15, track)
    robot.tell(LEAVER.label, '(walks away mid-conversation)')
    left = robot.leave(track)
    ended = robot.event(mark, 'session_end', 15, lambda d: d.get('reason') == 'left')
    seen.note('left_mid_conversation', left=left, ended=ended)
