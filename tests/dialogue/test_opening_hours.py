"""'你们几点关门', 'what time do you close': answered from the hours in effect, with the real NLU and
dialogue core on the demo store (zones.yaml's opening_hours) and with hours set live (a rollout)."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from retail_common.hours import parse_hours
from retail_common.store import load_store
from retail_dialogue.manager import DialogueManager, Record, Say
from retail_dialogue.nlu import Nlu

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'


@pytest.fixture(scope='module')
def demo():
    store = load_store(DEMO)
    return store, Nlu(store.catalog, store.zones)


def ask(store_nlu, text, at, hours=None, store_hours=None):
    store, nlu = store_nlu
    if store_hours:
        store = replace(store, opening_hours=parse_hours(store_hours))
    dm = DialogueManager(store, nlu=nlu, clock=lambda: 0.0, wall_clock=lambda: at)
    dm.set_hours(parse_hours(hours) if hours else None)
    effects = dm.on_utterance(1, text, typed=True)
    says = [e for e in effects if isinstance(e, Say)]
    turns = [e.event for e in effects if isinstance(e, Record) and hasattr(e.event, 'intent')]
    return ' '.join(s.text for s in says), says, turns


AFTERNOON = datetime(2026, 12, 7, 15, 0)


@pytest.mark.parametrize('text', ['你们几点关门', '几点开门', '营业时间是几点', '你们还开着吗'])
def test_mandarin_hours_questions_get_the_store_folder_hours(demo, text):
    said, says, turns = ask(demo, text, AFTERNOON)
    assert said.startswith('我们今天营业到22:00') and '10:00到22:00' in said, said
    assert says[0].language == 'zh' and says[0].intent == 'ask_hours' and turns[0].intent == 'ask_hours'
    assert '回答不了' not in said


@pytest.mark.parametrize('text', ['what time do you close', 'are you open on Sunday', 'what are your opening hours'])
def test_english_hours_questions(demo, text):
    said, says, _ = ask(demo, text, AFTERNOON)
    assert said.startswith("We're open today until 22:00; our hours are 10:00 to 22:00"), said
    assert says[0].language == 'en'


def test_hours_set_live_win_over_the_store_folder(demo):
    said, _, _ = ask(demo, '你们几点关门', AFTERNOON, hours='09:00-21:00')
    assert '营业到21:00' in said and '09:00到21:00' in said
    said, _, _ = ask(demo, 'what time do you close', datetime(2026, 12, 7, 23, 0), hours='10:00-01:00')
    assert "open today until 01:00 the next morning" in said


def test_near_closing_says_how_long_is_left(demo):
    said, _, _ = ask(demo, '几点关门', datetime(2026, 12, 7, 21, 50))
    assert said.startswith('我们22:00打烊，还有10分钟'), said
    said, _, _ = ask(demo, 'what time do you close', datetime(2026, 12, 8, 0, 50), hours='10:00-01:00')
    assert said.startswith('We close at 01:00 the next morning, in 10 minutes'), said


def test_outside_the_hours_says_when_it_opens(demo):
    said, _, _ = ask(demo, '几点开门', datetime(2026, 12, 7, 8, 30))
    assert said.startswith('我们现在不在营业时间，营业时间是每天10:00到22:00'), said
    said, _, _ = ask(demo, 'when do you open', datetime(2026, 12, 7, 23, 0), store_hours='09:30-21:30')
    assert said.startswith("We're closed right now. Our hours are 09:30 to 21:30"), said


def test_the_weather_is_still_out_of_scope(demo):
    said, says, _ = ask(demo, '今天天气怎么样', AFTERNOON)
    assert says[0].intent == 'unknown' and '回答不了' in said


@pytest.mark.parametrize('args, value', [(['-p', 'opening_hours:=09:00-21:00'], '09:00-21:00'),
                                         (['--params-file', 'config/dialogue.yaml'], '')])
def test_the_manager_node_takes_hours_from_its_params(args, value):
    from retail_dialogue.manager_node import SPECS
    from retail_ros.params import overrides_for, resolve
    repo = Path(__file__).resolve().parents[2]
    args = [str(repo / a) if a.endswith('.yaml') else a for a in args]
    assert resolve('/dialogue/manager', SPECS, overrides_for('/dialogue/manager', ['x', '--ros-args', *args])
                   )['opening_hours'] == value


def test_a_bad_hours_parameter_stops_the_node_with_one_line():
    from retail_dialogue.manager_node import SPECS
    from retail_ros.params import ConfigError, overrides_for, resolve
    with pytest.raises(ConfigError) as info:
        resolve('/dialogue/manager', SPECS, overrides_for('/dialogue/manager',
                                                          ['x', '--ros-args', '-p', 'opening_hours:=10:00-10:00']))
    assert str(info.value) == ("command line: node /dialogue/manager: key 'opening_hours': opening hours: "
                               "opening and closing are both 10:00 in '10:00-10:00'")
