"""Standalone text chat with the dialogue manager: a store without a robot.

Guiding is simulated (the robot "arrives" at once), a tour moves one stop per line typed, and
recommendations come from the recommendation core in-process (see standalone.py). With `json_out`
every customer line gives exactly one JSON object on stdout:
`{"said", "reply", "lang", "intent", "slots", "products": [{"sku", "price_cny", "zone"}],
"guide_to", "tour", "staff_called"}`; start-up notes go to stderr.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Iterable

from retail_common.cli_output import print_json

from .manager import CallStaff, DialogueManager, Effect, Record, Say, StartGuide, StartTour
from .standalone import StandaloneRobot, core_recommender

TRACK = 1
NEXT_CUSTOMER = '---'


def turn_summary(said: str, effects: list[Effect]) -> dict:
    """The JSON object of one customer line (issue 13's `retailbot chat --json` shape)."""
    turn = next((e.payload for e in effects if isinstance(e, Record) and e.type == 'dialogue_turn'), {})
    says = [e for e in effects if isinstance(e, Say)]
    products, seen = [], set()
    for say in says:
        for p in say.products:
            if p.sku not in seen:
                seen.add(p.sku)
                products.append({'sku': p.sku, 'price_cny': p.price_cny, 'zone': p.zone})
    return {'said': said, 'reply': ' '.join(s.text for s in says),
            'lang': turn.get('language') or (says[-1].language if says else ''),
            'intent': turn.get('intent', says[-1].intent if says else ''), 'slots': turn.get('slots', {}),
            'products': products,
            'guide_to': next((e.zone for e in effects if isinstance(e, StartGuide)), None),
            'tour': next((e.route for e in effects if isinstance(e, StartTour)), None),
            'staff_called': any(isinstance(e, CallStaff) for e in effects)}


def run_standalone_chat(store, store_dir: Path, member: str = '', json_out: bool = False,
                        lines: Iterable[str] | None = None, now: datetime | None = None) -> int:
    """Chat over `store` (see the module docstring); `lines` instead of stdin for scripts."""
    recommend, source = core_recommender(store.catalog, store_dir)
    note = sys.stderr if json_out else sys.stdout
    for issue in store.issues:
        print(f'! {issue}', file=note)
    print(f'[{len(store.catalog)} products; {source}. Type as a customer; empty line or Ctrl-D to leave.]',
          file=note, flush=True)

    def show(effect: Effect) -> None:
        if json_out:
            return
        if isinstance(effect, Say):
            print(f'robot ({effect.language}, {effect.intent}): {effect.text}', flush=True)
        elif isinstance(effect, StartGuide):
            print(f'  [guiding to {effect.zone} (simulated)]')
        elif isinstance(effect, StartTour):
            print(f'  [tour {effect.route} (simulated: one stop per line)]')
        elif isinstance(effect, CallStaff):
            print(f'  [staff notified] {json.dumps(effect.request, ensure_ascii=False)}')
        elif isinstance(effect, Record) and effect.type in ('recommendation', 'guide', 'vip_checkin', 'tour'):
            print(f'  [{effect.type}] {json.dumps(effect.payload, ensure_ascii=False)}')

    manager = DialogueManager(store, wall_clock=(lambda: now) if now else datetime.now)
    robot = StandaloneRobot(manager, recommend, on_effect=show)
    customer_id, name, vip = (member.split(':') + ['', '', ''])[:3] if member else ('', '', '')
    greeting = robot.customer(TRACK, customer_id, name, vip == 'vip')
    if json_out:
        print_json({'said': '', 'note': 'customer appeared',
                    'greeting': ' '.join(e.text for e in greeting if isinstance(e, Say))})
    track = TRACK
    for text in lines if lines is not None else _typed(json_out):
        if not text.strip():
            break
        if text.strip() == NEXT_CUSTOMER:       # scripts: this customer leaves, the next one comes
            robot.run(manager.on_customer_left(track))
            robot.end_missions()
            track += 1
            greeting = robot.customer(track, customer_id, name, vip == 'vip')
            if json_out:
                print_json({'said': '', 'note': 'next customer',
                            'greeting': ' '.join(e.text for e in greeting if isinstance(e, Say))})
            continue
        if track not in manager.sessions:
            robot.customer(track, customer_id, name, vip == 'vip')
        effects = robot.say(track, text)
        if json_out:
            print_json(turn_summary(text, effects))
    robot.run(manager.on_customer_left(track))
    if not json_out:
        print('[customer left]')
    return 0


def _typed(quiet: bool):
    while True:
        try:
            yield input('' if quiet else 'you: ')
        except (EOFError, KeyboardInterrupt):
            return
