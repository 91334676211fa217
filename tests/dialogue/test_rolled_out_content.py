"""Greetings and tours rolled out from the platform reach what the dialogue says (the pure
manager over the store model that overlays desired.json): the rolled-out greeting of the
customer's audience and language replaces the built-in one, the rolled-out tour is the one
offered and its narration is spoken at its stops; what was not rolled out stays built-in."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

from retail_common.store import Appointment, load_store
from retail_dialogue.manager import DialogueManager, Say, StartTour
from retail_dialogue.manager_node import DEFAULT_STORE
from retail_dialogue.nlu import Nlu

CONTENT = {
    'greetings': {'anonymous': {'en': 'Welcome to the winter sale!'},
                  'member': {'zh': '{name}，会员今天九折！', 'en': 'Hello {name}, members save 10% today.'},
                  'vip': {'en': 'Dear {name}, your {purpose} at {time} is ready.'}},
    'tours': [{'name': 'winter', 'stops': [
        {'zone': 'kitchen', 'narration': {'en': 'The winter kitchen sale is here.'}},
        {'zone': 'audio_video', 'narration': {'zh': '节日大屏在这里。'}}]}]}


def _manager(tmp_path, content=CONTENT, appointments=(), lang='en'):
    (tmp_path / 'platform').mkdir()
    (tmp_path / 'platform' / 'desired.json').write_text(json.dumps({'version': 1, 'content': content}))
    store = load_store(DEFAULT_STORE, tmp_path)
    if appointments:
        from dataclasses import replace
        store = replace(store, appointments=tuple(appointments))
    return DialogueManager(store, nlu=Nlu(store.catalog, store.zones), clock=lambda: 0.0,
                           default_language=lang)


def _said(effects) -> str:
    return ' '.join(e.text for e in effects if isinstance(e, Say))


def test_the_rolled_out_greeting_of_each_audience_replaces_the_built_in_one(tmp_path):
    manager = _manager(tmp_path)
    assert _said(manager.on_customer(1)) == 'Welcome to the winter sale!'
    assert _said(manager.on_customer(2, 'c-7', 'Li Wei')) == 'Hello Li Wei, members save 10% today.'


def test_a_language_not_rolled_out_keeps_the_built_in_greeting(tmp_path):
    manager = _manager(tmp_path, lang='zh')
    assert _said(manager.on_customer(1)) == '您好，欢迎光临！请问有什么可以帮您？'
    assert _said(manager.on_customer(2, 'c-7', '王丽')) == '王丽，会员今天九折！'


def test_the_vip_greeting_carries_the_appointment(tmp_path):
    now = datetime.now()
    visit = Appointment('a-1', 'c-9', 'Ms Zhao', now + timedelta(minutes=30), now + timedelta(hours=1),
                        'fitting', 'vip_lounge', 'Chen')
    manager = _manager(tmp_path, appointments=[visit])
    said = _said(manager.on_customer(3, 'c-9', 'Ms Zhao', vip=True))
    assert said == f'Dear Ms Zhao, your fitting at {visit.start:%H:%M} is ready.'


def test_the_rolled_out_tour_is_offered_and_narrated(tmp_path):
    manager = _manager(tmp_path)
    manager.on_customer(4)
    effects = manager.on_utterance(4, 'show me around')
    assert [e.route for e in effects if isinstance(e, StartTour)] == ['winter']
    assert 'The winter kitchen sale is here.' in _said(manager.on_tour_stop(4, 0, 'kitchen'))
    # a stop without an English narration: the place and what is there, from the store data
    assert 'TV & Audio' in _said(manager.on_tour_stop(4, 1, 'audio_video'))


def test_without_rolled_out_content_the_built_in_words_stay(tmp_path):
    manager = _manager(tmp_path, content={'greetings': {'member': {'en': 'Hi {nme}'}}})   # refused entry
    assert _said(manager.on_customer(1)) == 'Hello, welcome! How can I help you today?'
    assert _said(manager.on_customer(2, 'c-7', 'Li Wei')) == 'Hello Li Wei, welcome back! What are you looking for today?'
