"""English grammar of the replies: plurals, articles and counts over every category and brand of
the demo store, and replies that use them; promotion texts in English; one line per template."""
import re
from pathlib import Path

import pytest

from retail_dialogue.manager import DialogueManager, Say
from retail_dialogue.nlu import Nlu
from retail_dialogue.promotions import promotion_text, translate_promotion
from retail_common.store import load_store
from retail_dialogue.templates import (TEMPLATES, article, count_noun, count_of, noun, plural, render, what_en,
                                       with_article, yuan)

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'

# Written by hand: the right English for each category id of the demo store.
PLURALS = {'air_conditioner': 'air conditioners', 'air_fryer': 'air fryers', 'camera': 'cameras',
           'coffee_capsule': 'coffee capsules', 'coffee_machine': 'coffee machines', 'game_console': 'game consoles',
           'hair_dryer': 'hair dryers', 'headphones': 'headphones', 'laptop': 'laptops', 'microwave': 'microwaves',
           'phone': 'phones', 'phone_accessory': 'phone accessories', 'printer': 'printers', 'printer_ink': 'printer ink',
           'refrigerator': 'refrigerators', 'rice_cooker': 'rice cookers', 'smartwatch': 'smartwatches',
           'tablet': 'tablets', 'tv': 'TVs', 'vacuum': 'vacuums', 'washing_machine': 'washing machines',
           'water_filter': 'water filters', 'water_purifier': 'water purifiers'}
AN_BRANDS = {'AOSmith', 'Anker', 'Apple', 'Ecovacs', 'Epson', 'HP', 'Honor', 'OPPO'}      # "an Apple laptop", "an HP printer"


@pytest.fixture(scope='module')
def store():
    return load_store(DEMO)


def test_every_demo_category_has_its_english_plural(store):
    categories = set(store.catalog.categories())
    assert categories <= set(PLURALS), categories - set(PLURALS)
    for category in categories:
        assert plural(noun(category)) == PLURALS[category], category


def test_every_demo_brand_takes_the_right_article(store):
    for brand in store.catalog.brands():
        expected = 'an' if brand in AN_BRANDS else 'a'
        assert article(f'{brand} laptop') == expected, brand
        assert with_article(f'{brand} laptop') == f'{expected} {brand} laptop'


@pytest.mark.parametrize('phrase,expected', [
    ('Apple laptop', 'an Apple laptop'), ('Huawei phone', 'a Huawei phone'), ('air fryer', 'an air fryer'),
    ('LG TV', 'an LG TV'), ('HP printer', 'an HP printer'), ('USB cable', 'a USB cable'), ('hour', 'an hour'),
    ('headphones', 'headphones'), ('printer ink', 'printer ink'), ('unit', 'a unit'), ('oven', 'an oven'),
    ('8K TV', 'an 8K TV'), ('TCL TV', 'a TCL TV'), ('Ugreen charger', 'a Ugreen charger'), ('OPPO phone', 'an OPPO phone')])
def test_articles(phrase, expected):
    assert with_article(phrase) == expected


def test_category_ids_as_english_nouns():
    assert [noun(c) for c in ('e_bike', 'tv', 'air_fryer', 'phone_accessory')] == ['e-bike', 'TV', 'air fryer',
                                                                                   'phone accessory']
    assert plural(noun('e_bike')) == 'e-bikes'


@pytest.mark.parametrize('word,expected', [('box', 'boxes'), ('battery', 'batteries'), ('key', 'keys'),
                                           ('brush', 'brushes'), ('TV', 'TVs'), ('knife', 'knives'), ('glass', 'glasses')])
def test_plural_spelling(word, expected):
    assert plural(word) == expected


def test_counts():
    assert count_noun(1, 'pick') == '1 pick' and count_noun(3, 'pick') == '3 picks' and count_noun(0, 'model') == '0 models'
    assert count_of(1, 'air fryer') == '1 air fryer' and count_of(2, 'Huawei tablet') == '2 Huawei tablets'
    assert count_of(1, 'headphones') == '1 pair of headphones' and count_of(3, 'printer ink') == '3 kinds of printer ink'
    assert what_en('laptop', 'Apple') == 'Apple laptops' and what_en('', 'Apple') == 'Apple products'
    assert what_en('laptop', 'Apple', many=False) == 'an Apple laptop'
    assert yuan(5999, 'en') == '5,999 yuan' and yuan(5999, 'zh') == '5999元' and yuan(19.9, 'en') == '19.90 yuan'


def _say_all(manager, track, text):
    return ' '.join(e.text for e in manager.on_utterance(track, text) if isinstance(e, Say))


BAD_ENGLISH = re.compile(r'sss\b|ss\b(?<!ss)|\b(?:a|an) \w+s are\b|\bHere are 1\b|\b1 (?:picks|models|options)\b|'
                         r'\b(?:are|is) are\b|headphoness|\bApple are\b|[\u4e00-\u9fff]')


def test_english_replies_over_every_category_and_brand_of_the_demo_store(store):
    """Ask about every category and every brand as an English-speaking customer: the replies name
    them in correct English (no 'headphoness', 'Apple are', '1 picks', untranslated Chinese)."""
    nlu = Nlu(store.catalog)
    manager = DialogueManager(store, nlu=nlu)
    track = 0
    for category in store.catalog.categories():
        for ask in (f'do you have any {PLURALS[category]}?', f'where are the {PLURALS[category]}?',
                    f'how much are {PLURALS[category]}?'):
            track += 1
            manager.on_customer(track)
            text = _say_all(manager, track, ask)
            assert text and not BAD_ENGLISH.search(text.replace('Mijia', '')), (ask, text)
            if 'where' in ask:
                verb = 'is' if category == 'printer_ink' else 'are'
                assert f'{PLURALS[category][:1].upper()}{PLURALS[category][1:]} {verb} in' in text, (ask, text)
    for brand in store.catalog.brands():
        track += 1
        manager.on_customer(track)
        text = _say_all(manager, track, f'do you have {brand} products?')
        assert f'{brand} are' not in text and not re.search(r'[\u4e00-\u9fff]', text), (brand, text)


def test_promotions_in_english():
    assert translate_promotion('满5000减500') == '500 yuan off when you spend 5000 yuan'
    assert translate_promotion('12期免息') == '12 interest-free instalments'
    assert translate_promotion('免费安装+送货上门') == 'free installation + home delivery'
    assert translate_promotion('第二件8折') == 'second item 20% off'
    assert translate_promotion('以旧换新补贴15%') == '15% trade-in subsidy'
    assert translate_promotion('会员日特惠') is None
    assert promotion_text('会员日特惠', 'en') == 'a special offer (会员日特惠)'
    assert promotion_text('满5000减500', 'zh') == '满5000减500'
    assert promotion_text('赠手柄', 'en', 'free extra controller') == 'free extra controller'


def test_templates_render_in_both_languages_on_one_line():
    for key, (zh, en) in TEMPLATES.items():
        names = set(re.findall(r'{(\w+)}', zh + en))
        values = {name: 'X' for name in names}
        for lang in ('zh', 'en'):
            text = render(key, lang, **values)
            assert text and '\n' not in text and '{' not in text, key
