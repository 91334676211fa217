"""`retailbot demo`: a simulated store day with every part of the robot real.

The day (1) opens the store through the `StoreClient` façade (robot_client.py): out/demo/ and a
robot data folder in it, the reference platform seeded (catalog, member histories, today's VIP
appointment), the robot's data fetched by the real sync downlink, the VIP and a member enrolled in
the encrypted face gallery, every node of launch/robot.launch.yaml sim:=true started; (2) plays the
scenes (scenes/, the order and names of demo_scenario.SCENES): customers step in front of the
simulated camera, speak as text on /dialogue/utterances, and the scene waits on the robot's real
messages; faults are injected through the parts' own mechanisms; (3) closes the store, measures
every expectation from what the scenes noted (checks.py), prints the transcript and writes
summary.json, path.png, transcript.txt, and (4) exits 0 only if every expectation held.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from retail_demo import demo_scenario as story
from retail_demo.checks import Observations, evaluate
from retail_demo.demo_report import Expectations, Transcript, draw_path, localisation_error_max, write_summary
from retail_demo.robot_client import DEMO_STORE, DemoAbort, StoreClient

AREAS = ('retail_navigation', 'retail_perception', 'retail_dialogue', 'retail_recommendation', 'retail_sync')
EXIT_FAILED = 1
EXIT_USAGE = 2


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        'demo',
        help='run a simulated store day end to end (VIP, member, shoppers, faults)',
        description='Start the reference platform and the whole simulated robot, play a scripted '
        'store day and check it; writes summary.json, path.png and transcript.txt.',
    )
    parser.add_argument('--out', default='out/demo', help='output folder (default out/demo)')
    parser.add_argument(
        '--scenes',
        default=','.join(story.SCENES),
        metavar='LIST',
        help=f'comma-separated scenes to play, in the day\'s order (default: all: {",".join(story.SCENES)})',
    )
    parser.add_argument(
        '--wait-scale',
        type=float,
        default=1.0,
        metavar='F',
        help='multiply every wait for the robot by F (slow machines; default 1)',
    )
    parser.add_argument(
        '--shoppers',
        type=int,
        default=story.SHOPPERS,
        metavar='N',
        choices=range(0, 21),
        help=f'shoppers walking in the simulated store, 0-20 (default {story.SHOPPERS}; '
        'each one who stops in the robot\'s way makes the day longer)',
    )
    parser.add_argument(
        '--platform-db',
        metavar='URL',
        help='the platform\'s database: a postgresql://user@host:port/db URL (an empty, migrated '
        'or new database of its own) or an SQLite file (default: platform.sqlite3 in --out)',
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    out = Path(args.out).resolve()
    scenes = [name.strip() for name in args.scenes.split(',') if name.strip()]
    unknown = [name for name in scenes if name not in story.SCENES]
    if unknown or not scenes:
        print(
            f'retailbot demo: unknown scene(s) {", ".join(unknown) or "(none given)"}; '
            f'choose from {", ".join(story.SCENES)}',
            file=sys.stderr,
        )
        return EXIT_USAGE
    missing_first = [(name, story.NEEDS[name]) for name in scenes if story.NEEDS.get(name, name) not in scenes]
    if missing_first:
        name, first = missing_first[0]
        print(
            f'retailbot demo: scene {name} needs scene {first} earlier in the day; play both: --scenes {first},{name}',
            file=sys.stderr,
        )
        return EXIT_USAGE
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')  # this process's own node too
    transcript = Transcript()
    expect = Expectations(story.expectations_for(scenes))
    missing = [area for area in AREAS if not _importable(area)]
    if missing:
        seen = Observations()
        seen.note('parts_available', missing=missing)
        transcript.say('demo', f'cannot run the store day: {", ".join(missing)} not available')
        return _finish(out, transcript, evaluate(seen, expect), [], {}, [])
    robot = StoreClient(out, transcript, args.wait_scale, shoppers=args.shoppers, platform_db=args.platform_db)
    day = StoreDay(robot, expect, scenes)
    previous = {sig: signal.signal(sig, day.interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return day.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


class StoreDay:
    """One run of the demo: open the store, play the scenes, close it, measure and report."""

    def __init__(self, robot: StoreClient, expect: Expectations, scenes: list[str]) -> None:
        self.robot, self.expect, self.scenes = robot, expect, scenes
        self.seen = Observations()

    def interrupt(self, *_: object) -> None:
        self.robot.interrupted.set()

    def run(self) -> int:
        from retail_demo.scenes import PLAYS

        started = time.monotonic()
        robot = self.robot
        try:
            nodes = robot.open_store()
            self.seen.note('parts_available', nodes=nodes)
            for name in story.SCENES:
                if name in self.scenes:
                    robot.check_interrupted()
                    PLAYS[name](robot, self.seen)
            robot.upload_the_day()
        except DemoAbort as exc:
            robot.tell('demo', f'stopped: {exc}')
        finally:
            robot.close_store()
            numbers = self._the_days_numbers()
            robot.stop_platform()
        numbers['duration_s'] = round(time.monotonic() - started, 1)
        driven = robot.driven_path()  # also moves the places customers were met into the map
        return _finish(
            robot.out, robot.transcript, self.expect, robot.rec.met, numbers, driven, robot.ground_truth_path()
        )

    def _the_days_numbers(self) -> dict:
        """Notes the day-long expectations, measures them all; summary.json's numbers."""
        robot = self.robot
        produced, uploaded, pending = robot.event_sets()
        self.seen.note('no_events_lost', produced=produced, uploaded=uploaded, pending=pending)
        truth, believed, contacts = robot.navigation_samples()
        source = 'published poses'
        error = localisation_error_max(truth, believed)
        if error is None:  # the robot did not drive (no filter update to compare): the pose it reports standing
            believed, source = robot.reported_poses(), 'the pose its diagnostics report (it did not drive)'
            error = localisation_error_max(truth, believed)
        self.seen.note('localised', error=error, poses=len(believed), truths=len(truth), source=source)
        self.seen.note('no_contacts', contacts=contacts, shoppers=robot.shoppers)
        loop = self._loop_numbers()
        till = self.seen.get('purchase_attributed')
        if till is not None:  # the till scene sent her receipt: the day's funnel must credit it
            self.seen.note('purchase_attributed', receipt=till.get('receipt'), funnel=loop['funnel'])
        results = evaluate(self.seen, self.expect).results
        visited = robot.visited()
        return {
            'vip_greeted': results.get('vip_greeted', (False, ''))[0],
            'second_vip_greeted': results.get('vip2_greeted', (False, ''))[0],
            'customers_guided': len(visited),
            'recommendations': len((self.seen.get('member_recommended') or {}).get('skus') or []),
            'events_produced': len(produced),
            'events_uploaded': len(produced & uploaded),
            'events_pending': len(pending),
            'events_lost': len(produced - uploaded - pending),
            'staff_requests': robot.staff_pages(),
            'zones_visited': list(dict.fromkeys(visited)),
            'localisation_error_max_m': None if error is None else round(error, 3),
            'contacts': contacts,
            'shoppers': robot.shoppers,
            **loop,
        }

    def _loop_numbers(self) -> dict:
        """The day's funnel as the platform computes it and whether a profile was used (issue 23)."""
        from retail_demo.loop_numbers import day_funnel, profile_used

        robot = self.robot
        with robot.rec.lock:
            events = list(robot.rec.events)
        return {
            'funnel': day_funnel(robot.url, story.PLATFORM_TOKEN, robot.tell),
            'profile_used': profile_used(events, robot.tell),
        }


def _finish(
    out: Path,
    transcript: Transcript,
    expect: Expectations,
    met: list[tuple[str, float, float]],
    extra: dict,
    driven: list[tuple[float, float]],
    truth: list[tuple[float, float]] | None = None,
) -> int:
    out.mkdir(parents=True, exist_ok=True)
    why_no_picture = draw_path(
        out / 'path.png', DEMO_STORE, driven, extra.get('zones_visited', []), met, truth=truth or None
    )
    if why_no_picture:
        transcript.say('demo', f'no path picture: {why_no_picture}')
    failed = expect.failed()
    summary = {
        'vip_greeted': False,
        'customers_guided': 0,
        'recommendations': 0,
        'events_uploaded': 0,
        'events_lost': None,
        **extra,
        'ok': not failed,
        'expectations': expect.to_json(),
    }
    transcript.section('Result')
    for line in failed:
        transcript.say('demo', line)
    transcript.say(
        'demo',
        f'{len(expect.wording) - len(failed)}/{len(expect.wording)} expectations met; '
        f'VIP greeted: {summary["vip_greeted"]}, customers guided: {summary["customers_guided"]}, '
        f'events uploaded: {summary["events_uploaded"]}, lost: {summary["events_lost"]}',
    )
    write_summary(out / 'summary.json', summary)
    transcript.write(out / 'transcript.txt')
    print(f'written: {out / "summary.json"}, {out / "path.png"}, {out / "transcript.txt"}')
    return 0 if not failed else EXIT_FAILED
