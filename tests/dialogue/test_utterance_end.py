"""When the words so far look like a finished request (the VAD then ends the utterance after a
short silence) and when they need a continuation (it waits: a customer pausing mid-sentence)."""
from __future__ import annotations

import pytest

from retail_dialogue.utterance_end import MAX_TEXT_CHARS, looks_finished


@pytest.mark.parametrize('text', ['Where can I find the rice cooker?', 'How much is the Midea air fryer',
                                  'Take me to the checkout please.', 'Yes.', 'no'])
def test_finished_english(text):
    assert looks_finished(text) is True


@pytest.mark.parametrize('text', ['Where can I find the', 'Where can I find the.', 'I am looking for...',
                                  'How much is the Huawei Pura 70,', 'Can you recommend', 'Do you have'])
def test_english_that_needs_more(text):
    """A last word that cannot end a request, or a comma: Whisper's full stop after a fragment
    does not make it finished."""
    assert looks_finished(text) is False


@pytest.mark.parametrize('text', ['电饭煲在哪里', '美的空气炸锅多少钱？', '有没有华为Mate 60 Pro', '带我去收银台',
                                  '我想买一台电视', '是的', '好的', '谢谢'])
def test_finished_mandarin(text):
    assert looks_finished(text) is True


@pytest.mark.parametrize('text', ['我想买一台', '推荐一款', '有没有华为的', '请问，', '带我去',
                                  '美的空气炸锅', '华为nova 12', '电饭煲。'])
def test_mandarin_that_needs_more(text):
    """Measure words after a number, particles and verbs waiting for an object, and a topic with
    no predicate yet ("美的空气炸锅 … 多少钱": where Mandarin speakers pause)."""
    assert looks_finished(text) is False


def test_nothing_heard_is_no_verdict_and_long_text_is_bounded():
    assert looks_finished('') is None and looks_finished(' 。 ') is None
    assert looks_finished('x' * 10 * MAX_TEXT_CHARS + ' where is the') is False


def test_other_scripts_are_not_judged():
    """Korean (Vosk) keeps the VAD's default silence rather than waiting as if unfinished."""
    assert looks_finished('삼성 텔레비전') is None
