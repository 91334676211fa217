"""Standalone text chat with the dialogue manager: the demo store without a robot.

Guiding is simulated (the robot "arrives" at once) so the whole conversation can be tried at a
desk; replies, recommendations and guiding are printed as they happen.
"""
from __future__ import annotations

import json
from pathlib import Path

from retail_common.catalog import Catalog

from .manager import DialogueManager, Event, Reply
from .standalone import core_recommender
from .store import ZoneNames, load_appointments

TRACK = 1


def run_standalone_chat(catalog: Catalog, store: Path, member: str = '') -> int:
    recommend, source = core_recommender(catalog, store)
    appointments, issues = load_appointments(store / 'appointments.json')
    for issue in issues:
        print(f'! {issue}')
    print(f'[{len(catalog)} products; {source}. Type as a customer; empty line or Ctrl-D to leave.]')
    arrivals: list[str] = []

    def say(reply: Reply) -> None:
        print(f'robot ({reply.language}, {reply.intent}): {reply.text}', flush=True)

    def emit(event: Event) -> None:
        if event.type in ('recommendation', 'guide', 'staff_request', 'vip_checkin'):
            print(f'  [{event.type}] {json.dumps(event.payload, ensure_ascii=False)}')

    def guide(track_id: int, zone: str) -> None:
        print(f'  [guiding track {track_id} to {zone} (simulated)]')
        arrivals.append(zone)

    manager = DialogueManager(catalog, say=say, emit=emit, recommend=recommend, guide=guide,
                              notify_staff=lambda r: print(f'  [staff notified] {json.dumps(r, ensure_ascii=False)}'),
                              zones=ZoneNames.load(store / 'zones.yaml'), appointments=appointments)
    customer_id, name, vip = (member.split(':') + ['', '', ''])[:3] if member else ('', '', '')
    manager.on_customer(TRACK, customer_id, name, vip == 'vip')
    while True:
        try:
            text = input('you: ')
        except (EOFError, KeyboardInterrupt):
            text = ''
        if not text.strip():
            manager.on_customer_left(TRACK)
            print('[customer left]')
            return 0
        if TRACK not in manager.sessions:
            manager.on_customer(TRACK, customer_id, name, vip == 'vip')
        manager.on_utterance(TRACK, text)
        while arrivals:
            manager.on_arrival(arrivals.pop(0))
