"""A shopper asks for a tour, hears the first stop, asks for the next one, then ends it."""

from __future__ import annotations

from retail_demo import demo_scenario as story
from retail_demo.checks import Observations
from retail_demo.robot_client import StoreClient

TOURIST = story.TOURIST
ENDED = ('stopped', 'failed', 'finished')


def play(robot: StoreClient, seen: Observations) -> None:
    robot.section(f'A short tour: {TOURIST.label}')
    track, _ = robot.enter(TOURIST, 30)
    mark = robot.mark()
    robot.say(TOURIST, story.TOUR_ASK, track)
    started = robot.event(mark, 'tour', 15, lambda d: d.get('status') == 'started')
    route = (started or {}).get('route', '')
    store = robot.robot_store()
    stops = store.tours.get(route, ())
    answered = bool(stops) and robot.reply(mark, 10, track, ('tour',)) is not None
    seen.note('tour_started', started=started, route=route, stops=stops, answered=answered)
    if not stops:
        robot.leave(track)
        return

    robot.walk_behind(TOURIST)
    first = stops[0]
    narration = first.narration_zh[:12] or store.zone_name(first.zone, 'zh')
    said = robot.reply_saying(mark, 150, (narration,), track=track, what=f'the narration of {first.zone}')
    seen.note(
        'tour_narrated', said=said.text if said else None, zone=first.zone, arrived=robot.arrived(first.zone, mark)
    )

    mark = robot.mark()
    robot.say(TOURIST, story.TOUR_NEXT, track)
    answer = robot.reply(mark, 15, track, ('tour_control', 'tour'))
    robot.pause(3, 'a moment on the way')
    stopped = robot.event(mark, 'tour', 0, lambda d: d.get('status') in ENDED)
    seen.note('tour_next', answer=answer.text if answer else None, stopped=stopped)

    mark = robot.mark()
    robot.say(TOURIST, story.TOUR_STOP, track)
    ended = robot.event(mark, 'tour', 15, lambda d: d.get('status') == 'stopped')
    cancelled = robot.event(
        mark,
        'guide',
        30,
        lambda d: d.get('mission') == 'tour' and d.get('status') == 'ended' and d.get('reason') == 'cancelled',
    )
    seen.note('tour_ended', ended=ended, cancelled=cancelled)
    robot.leave(track)
