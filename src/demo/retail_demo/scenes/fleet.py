"""The fleet at the store: the robot shows healthy on the platform's store page, a shopper's call
for staff reaches the store page with where the robot is (the zone, in the store's words) and the
customer's language, and is answered there in that language ("两分钟内到"), which the robot speaks;
a promotion rolled out from the platform mid-day is what the robot answers "any promotions?" with.
The scene waits (bounded) for the localisation to report that it knows where the robot is before
the call, so the call can say where; it does not drive."""

from __future__ import annotations

import json
import re
import subprocess

import httpx

from retail_demo import demo_scenario as story
from retail_demo.checks import Observations
from retail_demo.robot_client import StoreClient, _retailbot

STORE_ID = 'demo-store'
ANSWERS = {'zh': '两分钟内到', 'en': 'Coming in 2 minutes'}  # staff answer in the customer's language
PROMOTION = {'sku': 'MD-AF55', 'text': 'Air fryers 20% off today', 'discount': 0.2}


def _platform(robot: StoreClient, *args: str) -> None:
    """A `retailbot platform ...` command on the store day's platform database."""
    done = subprocess.run(
        [_retailbot(), 'platform', *args, '--database', str(robot.out / 'platform.sqlite3')],
        capture_output=True,
        text=True,
        timeout=60,
        env=robot.env,
    )
    if done.returncode != 0 and 'exists' not in done.stderr + done.stdout:
        robot.tell('platform', f'retailbot platform {args[0]} failed: {done.stderr.strip()[:200]}')


def _page(robot: StoreClient) -> httpx.Client:
    """Signed in on the HQ pages with the chain's admin token (the session cookie)."""
    client = httpx.Client(base_url=robot.url, timeout=10.0)
    client.post('/hq/login', data={'token': story.PLATFORM_TOKEN}, headers={'Origin': robot.url})
    return client


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    return found.group(1) if found else ''


def _robot_row(html: str) -> str:
    row = re.search(rf'<tr id="fleet-{re.escape(story.ROBOT_ID)}">(.*?)</tr>', html, re.S)
    return re.sub(r'<[^>]+>', ' | ', row.group(1)) if row else ''


def _ask_promotions(robot: StoreClient) -> str:
    """What a shopper hears now when asking for promotions (the dialogue reloaded the store on the update)."""
    track, _ = robot.enter(story.SHOPPER, 30)
    ask = robot.mark()
    robot.say(story.SHOPPER, story.PROMOTIONS_ASK, track)
    reply = robot.reply(ask, 30, track=track, intents=('ask_promotion',))
    robot.leave(track)
    return reply.text if reply else ''


def play(robot: StoreClient, seen: Observations) -> None:
    robot.section('Fleet: the store page, staff help from the platform, a promotion rolled out')
    _platform(robot, 'store', 'add', '--id', STORE_ID, '--name', 'Demo store')
    _platform(robot, 'token', 'issue', '--role', 'robot', '--robot-id', story.ROBOT_ID, '--store', STORE_ID)
    robot.tell('platform', f'{story.ROBOT_ID} registered in store {STORE_ID}')
    client = _page(robot)
    try:

        def healthy() -> str:
            row = _robot_row(client.get(f'/hq/stores/{STORE_ID}').text)
            return row if 'healthy' in row else ''

        row = robot.wait(healthy, 45, 'the robot healthy on the store page')
        last = _robot_row(client.get(f'/hq/stores/{STORE_ID}').text)
        robot.tell('platform', f'store page: {" ".join(last.split())[:160]}')
        seen.note('fleet_healthy', row=row or last)

        # a shopper asks for staff; the call reaches the store page; staff answer there
        state = robot.wait(
            lambda: (lambda s: s if s in ('tracking', 'degraded') else '')(robot.localisation_state()),
            60,
            'the localisation reporting where the robot is',
        )
        robot.tell('robot', f'localisation: {state or robot.localisation_state() or "no report"}')
        track, _ = robot.enter(story.SHOPPER, 30)
        mark = robot.mark()
        robot.say(story.SHOPPER, story.SHOPPER_CALL_STAFF, track)
        admin = {'Authorization': f'Bearer {story.PLATFORM_TOKEN}'}

        def call_on_platform():
            calls = client.get(f'/v1/stores/{STORE_ID}/staff-calls', headers=admin).json()
            return next((c for c in calls if c['state'] == 'open'), None)

        call = robot.wait(call_on_platform, 45, 'the staff call on the store page')
        heard, answer, place = None, '', ''
        if call is not None:
            html = client.get(f'/hq/stores/{STORE_ID}').text
            shown = f'id="call-{call["id"]}"' in html
            place = call['where'].get('place') or ''
            answer = ANSWERS.get(call.get('language') or '', ANSWERS['zh'])
            robot.tell(
                'staff',
                f'on the store page: "{call["wanted"] or call["reason"]}" at '
                f'{place or "an unknown place (robot not localised)"}, customer speaks '
                f'{call.get("language") or "?"}; answering "{answer}"',
            )
            answered = client.post(
                f'/hq/stores/{STORE_ID}/calls/{call["id"]}',
                headers={'Origin': robot.url},
                data={'csrf': _csrf(html), 'kind': 'answer', 'text': answer},
            )
            if answered.status_code != 303:
                robot.tell('staff', f'the page refused the answer: {answered.status_code} {answered.text[:120]}')
            reply = robot.reply(mark, 45, intents=('staff_answer',))
            heard = (reply.text, reply.intent, reply.language) if reply else None
        else:
            shown = False
        seen.note(
            'fleet_staff_answered',
            call=bool(call),
            shown=shown,
            heard=heard,
            answer=answer,
            place=place,
            language=(call or {}).get('language'),
        )
        robot.leave(track)

        # mid-day: a promotion rolled out to the store's robots (canary -> 10 % -> all)
        mark = robot.mark()
        client.put('/v1/admin/fleet/groups/demo', headers=admin, json={'robots': [story.ROBOT_ID]}).raise_for_status()
        version = (
            client.post(
                '/v1/admin/fleet/groups/demo/desired', headers=admin, json={'content': {'promotions': [PROMOTION]}}
            )
            .json()
            .get('version')
        )
        rollout = client.post(
            '/v1/admin/fleet/groups/demo/rollouts', headers=admin, json={'version': version, 'soak_s': 0}
        ).json()
        robot.tell('platform', f'promotion "{PROMOTION["text"]}" rolled out as desired state v{version}')
        update = robot.data_update(mark, 'desired', 45)
        state = robot.wait(
            lambda: (lambda r: r if r.get('state') != 'running' else None)(
                client.get(f'/v1/admin/fleet/rollouts/{rollout.get("id")}', headers=admin).json()
            ),
            45,
            'the rollout finished',
        )
        on_robot = []
        if update is not None:
            try:
                on_robot = json.loads(open(update.path, encoding='utf-8').read())['content']['promotions']
            except (OSError, ValueError, KeyError):
                on_robot = []
        spoken = _ask_promotions(robot) if update is not None else ''
        seen.note(
            'fleet_promotion',
            version=version,
            update=update.version if update else None,
            rollout=(state or {}).get('state'),
            promotions=on_robot,
            promotion=PROMOTION,
            spoken=spoken,
        )
    finally:
        client.close()
