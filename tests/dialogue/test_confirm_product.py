"""Issue 25 point 2: what the recogniser heard is matched to the catalogue with a confidence, and a
product name the robot is not sure of is confirmed with the customer ("您是说美的空气炸锅吗？")
instead of guessed; yes carries the turn out, no asks again, anything else is a new turn.
Tables of variants over the demo store, through the real dialogue manager (pure core)."""
from pathlib import Path

import pytest

from retail_common.store import load_store
from retail_dialogue.catalog_match import MAX_TEXT_CHARS, CatalogMatcher
from retail_dialogue.manager import DialogueManager
from retail_dialogue.nlu import Nlu
from retail_dialogue.session import Say, StartGuide

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'


@pytest.fixture(scope='module')
def demo():
    store = load_store(DEMO)
    return store, Nlu(store.catalog, store.zones), CatalogMatcher(store.catalog, store.zones)


# (what the recogniser wrote, language, its confidence) -> (sku heard or None, confirmed?)
MATCHES = [
    ('Where is the Huawei Pura 70?', 'en', 0.9, 'HW-PURA70', False),          # exact, recogniser sure
    ('Where is the Huawei Pura 70?', 'en', 0.3, 'HW-PURA70', True),           # exact, recogniser unsure
    ('华为Pura 70多少钱', 'zh', 0.8, 'HW-PURA70', False),
    ('有没有花为pura70', 'zh', 0.9, 'HW-PURA70', True),                        # homophone 花为 → 华为
    ('Where can I find the media air fryer?', 'en', 0.9, 'MD-AF55', True),     # near spelling of a whole name
    ('妹的空气炸锅多少钱', 'zh', 0.9, 'MD-AF55', True),                          # one character off
    ('where is the joy young air fryer', 'en', 0.9, 'JY-AF55', True),
    ('Do you have the Huawei Mate 6 Pro?', 'en', 0.9, 'HW-MATE60P', True),     # brand clear, model near
    ('Where is the Midea air fryer?', 'en', 0.9, None, False),                 # brand + kind said clearly
    ('Where are the air fryers?', 'en', 0.9, None, False),                     # a kind, not a product
    ('美的空气炸锅在哪里', 'zh', 0.9, None, False),                              # brand + kind said clearly
    ('Hello, good morning', 'en', 0.9, None, False),
    ('', 'zh', 0.9, None, False),
]


@pytest.mark.parametrize('text,lang,asr_confidence,sku,confirmed', MATCHES)
def test_heard_text_is_matched_to_the_catalogue_with_a_confidence(demo, text, lang, asr_confidence, sku, confirmed):
    heard = demo[2].match(text, lang, asr_confidence)
    assert (heard.sku if heard else None) == sku
    if heard is not None:
        assert 0.0 <= heard.confidence <= 1.0
        assert (heard.confidence < 0.5) is confirmed
        product = demo[0].catalog.by_sku[sku]
        name = product.name_zh if lang == 'zh' else product.name_en
        assert heard.exact or name.lower() in heard.catalog_text.lower()


def test_matching_reads_a_bounded_amount_of_text(demo):
    flood = 'media air fryer ' + 'x' * 100000
    assert demo[2].match(flood, 'en', 1.0).sku == 'MD-AF55'
    assert demo[2].match('x' * MAX_TEXT_CHARS + ' media air fryer', 'en', 1.0) is None


def _dm(demo):
    store, nlu, _ = demo
    dm = DialogueManager(store, nlu=nlu)
    dm.on_customer(1)
    return dm


def _say(dm, matcher, text, lang, asr_confidence=0.9, typed=False):
    out = dm.on_utterance(1, text, typed=typed, heard=matcher.match(text, lang, asr_confidence))
    return [e for e in out if isinstance(e, Say)], out


# (first utterance, language, answer) -> what the robot says to the answer
CONFIRMATIONS = [
    ('Where can I find the media air fryer?', 'en', 'yes', 'Midea air fryer 5.5 L is in stock'),
    ('Where can I find the media air fryer?', 'en', 'yeah sure', 'Midea air fryer 5.5 L is in stock'),
    ('Where can I find the media air fryer?', 'en', 'no', 'say the name of the product again'),
    ('妹的空气炸锅多少钱', 'zh', '是的', '售价299元'),
    ('妹的空气炸锅多少钱', 'zh', '对', '售价299元'),
    ('妹的空气炸锅多少钱', 'zh', '不是', '请再说一遍您要找的商品名称'),
    ('有没有花为pura70', 'zh', '嗯', '华为 Pura 70'),
    ('Where can I find the media air fryer?', 'en', 'Where are the TVs?', 'TVs are in TV & Audio'),   # a new turn
]


@pytest.mark.parametrize('text,lang,answer,reply', CONFIRMATIONS)
def test_an_unsure_product_is_asked_about_and_the_answer_resolves_it(demo, text, lang, answer, reply):
    dm = _dm(demo)
    says, _ = _say(dm, demo[2], text, lang)
    product = demo[0].catalog.by_sku[demo[2].match(text, lang, 0.9).sku]
    name = product.name_zh if lang == 'zh' else product.name_en
    question = f'您是说{name}吗？' if lang == 'zh' else f'Did you mean the {name}?'
    assert [s.text for s in says] == [question]
    assert not says[0].products                          # nothing presented on a guess
    says, _ = _say(dm, demo[2], answer, lang)
    assert len(says) == 1 and reply in says[0].text, says


def test_the_question_lapses_after_one_turn(demo):
    dm = _dm(demo)
    _say(dm, demo[2], 'Where can I find the media air fryer?', 'en')
    _say(dm, demo[2], 'Where are the TVs?', 'en')
    says, out = _say(dm, demo[2], 'yes', 'en')          # answers "shall I take you there?" (TVs), not the fryer
    assert any(isinstance(e, StartGuide) and e.zone == 'audio_video' for e in out), out
    assert not any('air fryer' in s.text for s in says)


@pytest.mark.parametrize('text,lang,asr_confidence,typed', [
    ('Where is the Huawei Pura 70?', 'en', 0.9, False),      # heard surely
    ('Where can I find the media air fryer?', 'en', 0.9, True),   # typed: what was typed is what is meant
])
def test_sure_or_typed_product_names_are_answered_at_once(demo, text, lang, asr_confidence, typed):
    dm = _dm(demo)
    says, _ = _say(dm, demo[2], text, lang, asr_confidence, typed)
    assert says and not any('Did you mean' in s.text for s in says)


def test_a_threshold_of_zero_never_asks(demo):
    store, nlu, matcher = demo
    dm = DialogueManager(store, nlu=nlu, confirm_below=0.0)
    dm.on_customer(1)
    out = dm.on_utterance(1, '有没有花为pura70', heard=matcher.match('有没有花为pura70', 'zh', 0.9))
    assert not any('您是说' in e.text for e in out if isinstance(e, Say))
