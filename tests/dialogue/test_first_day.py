"""Issue 21 "First day": a person typing on the robot (the screen's touch, `retailbot chat`) is the
person in front of it. Typed input joins the current customer's conversation or starts one and is
answered at once: it never waits for a greeting that will not come because the robot is busy with
another customer (the simulated camera's shopper being guided or shown around).
"""
from pathlib import Path

import pytest

from retail_common.store import load_store
from retail_dialogue.manager import DialogueManager, Say, StartGuide, StartTour, State
from retail_dialogue.nlu import Nlu

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'
SHOPPER, CHAT = 1, 3_000_012_345


@pytest.fixture(scope='module')
def demo():
    store = load_store(DEMO)
    return store, Nlu(store.catalog, store.zones)


def _says(effects, track=None):
    return [e for e in effects if isinstance(e, Say) and (track is None or e.track_id == track)]


def _busy(demo, mission='tour'):
    """The camera's shopper on track 1 is being shown around (or guided)."""
    store, nlu = demo
    manager = DialogueManager(store, nlu=nlu)
    manager.on_customer(SHOPPER)
    effects = manager.on_utterance(SHOPPER, '带我参观一下' if mission == 'tour' else '带我去厨房电器区')
    assert any(isinstance(e, StartTour if mission == 'tour' else StartGuide) for e in effects)
    return manager


@pytest.mark.parametrize('mission', ['tour', 'guide'])
def test_chat_announced_while_the_robot_is_busy_is_answered_without_a_greeting(demo, mission):
    manager = _busy(demo, mission)
    assert not _says(manager.on_customer(CHAT)), 'busy: no greeting across the store'
    replies = _says(manager.on_utterance(CHAT, '空气炸锅在哪里', typed=True), CHAT)
    assert replies and '空气炸锅' in replies[0].text


@pytest.mark.parametrize('mission', ['tour', 'guide'])
def test_typed_text_before_the_chat_is_announced_starts_a_conversation(demo, mission):
    """Topics are not ordered between publishers: the text may arrive before the chat's customer event."""
    manager = _busy(demo, mission)
    replies = _says(manager.on_utterance(CHAT, 'where are the air fryers?', typed=True), CHAT)
    assert replies and 'air fryer' in replies[0].text.lower()
    assert not _says(manager.on_customer(CHAT)), 'the customer event that follows greets nobody twice'
    assert manager.sessions[SHOPPER].state is not State.OPEN, "the shopper's mission goes on"


def test_speech_from_a_track_that_left_is_still_dropped(demo):
    store, nlu = demo
    manager = DialogueManager(store, nlu=nlu)
    manager.on_customer(5)
    manager.on_customer_left(5)
    assert manager.on_utterance(5, '空气炸锅在哪里') == []
    assert manager.on_utterance(77, '空气炸锅在哪里') == [], 'speech on a track never seen: nobody there'


def test_touch_on_a_track_that_left_joins_the_customer_now_in_front(demo):
    store, nlu = demo
    manager = DialogueManager(store, nlu=nlu)
    manager.on_customer(5)
    manager.on_customer_left(5)           # the screen still shows track 5
    manager.on_customer(6)
    manager.on_utterance(6, '你好')
    replies = _says(manager.on_utterance(5, '空气炸锅在哪里', typed=True))
    assert replies and replies[0].track_id == 6


@pytest.mark.parametrize('sessions', [0, 1, 2])
def test_touch_without_a_track_joins_the_current_customer_or_starts_one(demo, sessions):
    store, nlu = demo
    manager = DialogueManager(store, nlu=nlu)
    for track in range(1, sessions + 1):
        manager.on_customer(track)
        manager.on_utterance(track, '你好')
    replies = _says(manager.on_utterance(0, '空气炸锅在哪里', typed=True))
    assert replies and '空气炸锅' in replies[0].text
    assert replies[0].track_id == (sessions if sessions else 0), 'the customer heard last, else a new one'
    assert len(manager.sessions) == max(sessions, 1)


def test_the_memory_of_tracks_that_left_is_bounded(demo):
    from retail_dialogue.manager import LEFT_MEMORY
    store, nlu = demo
    manager = DialogueManager(store, nlu=nlu)
    for track in range(1, LEFT_MEMORY * 3):
        manager.on_customer_left(track)
    assert len(manager._left) == LEFT_MEMORY
