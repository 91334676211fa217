"""The store's internet goes down while a shopper talks, the sync agent is killed and restarted,
the internet comes back and the outbox drains to the platform."""

from __future__ import annotations

from retail_demo import demo_scenario as story
from retail_demo.checks import Observations
from retail_demo.robot_client import StoreClient


def play(robot: StoreClient, seen: Observations) -> None:
    robot.section('Network outage and a sync restart')
    robot.tell('fault', 'the store\'s internet goes down (platform unreachable)')
    robot.stop_platform()
    track, _ = robot.enter(story.SHOPPER, 30)
    mark = robot.mark()
    robot.say(story.SHOPPER, story.OUTAGE_ASK, track)
    robot.reply(mark, 15, track)
    robot.leave(track)
    queued = robot.wait(lambda: robot.backlog() > 0, 15, 'events queued')
    robot.tell('sync', f'{robot.backlog()} events waiting in the outbox')
    seen.note('outage_queued', queued=queued, backlog=robot.backlog())

    robot.tell('fault', 'the sync agent process is killed (kill -9)')
    back, restarts = robot.kill_node('/sync/agent', 30, back=robot.sync_ready)
    seen.note('sync_restarted', back=back, restarts=restarts)

    robot.tell('platform', 'internet back: the platform is reachable again')
    robot.start_platform()
    robot.sync_now(10)
    drained = robot.wait(lambda: robot.outbox_pending() == 0, 60, 'outbox drained')
    seen.note('outage_drained', drained=drained, pending=robot.outbox_pending())
    robot.tell('sync', 'outbox empty: every event is on the platform' if drained else 'outbox not empty')
