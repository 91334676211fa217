"""NLU on a store it was not written for: the labelled set, prices, homophones, typos, bad rows."""
from pathlib import Path

import pytest

from retail_common.catalog import load_catalog
from retail_dialogue.evaluation import evaluate, load_examples
from retail_dialogue.nlu import INTENTS, Nlu, detect_language
from retail_dialogue.numbers import extract_price_range, parse_zh_number

DATA = Path(__file__).resolve().parents[1] / 'data' / 'dialogue'


@pytest.fixture(scope='module')
def other_store():
    catalog = load_catalog(DATA / 'other_store_catalog.csv')
    assert not catalog.issues
    return catalog, Nlu(catalog)


def test_labelled_set_accuracy(other_store):
    catalog, nlu = other_store
    examples = load_examples(DATA / 'nlu_labelled.jsonl', catalog)
    assert len(examples) >= 300
    assert {e.intent for e in examples} == set(INTENTS)
    assert sum(detect_language(e.text) == 'en' for e in examples) >= 100
    report = evaluate(nlu, examples)
    failures = '\n'.join(f'{e.intent}/{r.intent} {e.slots}/{r.slots}: {e.text}' for e, r in report.failures)
    assert report.intent_accuracy >= 0.95, failures
    assert report.slot_accuracy >= 0.90, failures


@pytest.mark.parametrize('text,value', [('三千', 3000), ('一千五', 1500), ('两万二', 22000), ('三千零五十', 3050),
                                        ('十五', 15), ('两千五百', 2500)])
def test_chinese_numerals(text, value):
    assert parse_zh_number(text) == value


@pytest.mark.parametrize('text,low,high', [
    ('三千以下的手机', None, 3000), ('两千到四千', 2000, 4000), ('一千五以内', None, 1500), ('3千以下', None, 3000),
    ('under 2k', None, 2000), ('below 3500', None, 3500), ('between 1000 and 2000', 1000, 2000),
    ('5k budget', None, 5000), ('两三千的', 2000, 3000), ('2000元以上', 2000, None), ('不超过四千块', None, 4000)])
def test_price_ranges(text, low, high):
    found = extract_price_range(text)
    assert found is not None and (found.min_price, found.max_price) == (low, high)


@pytest.mark.parametrize('text', ['65寸电视', '10公斤洗衣机', 'iPhone 16', '笔记本在哪一块'])
def test_numbers_that_are_not_prices(text):
    assert extract_price_range(text) is None


def test_model_numbers_are_not_prices(other_store):
    _, nlu = other_store
    result = nlu.parse('一加12多少钱')
    assert result.slots == {'sku': 'OP-12', 'brand': 'OnePlus', 'category': 'phone'}


def test_homophone_and_typo_link_to_the_catalog(other_store):
    _, nlu = other_store
    assert nlu.parse('散星手机在哪').slots == {'brand': 'Samsung', 'category': 'phone'}
    assert nlu.parse('how much is the Samsnug Galaxy S24').slots['sku'] == 'SS-S24'
    # A frequent real word is not taken for a brand it sounds like (服饰 vs a brand 富士).
    assert 'brand' not in nlu.parse('the weather').slots


def test_demo_catalog_homophone():
    catalog = load_catalog(Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo' / 'catalog.csv')
    result = Nlu(catalog).parse('花为的手机多少钱')
    assert (result.intent, result.slots) == ('ask_price', {'brand': 'Huawei', 'category': 'phone'})


def test_out_of_scope_is_unknown(other_store):
    _, nlu = other_store
    for text in ('今天天气怎么样', 'tell me a joke about phones', '附近哪里可以停车'):
        assert nlu.parse(text).intent == 'unknown', text


@pytest.mark.parametrize('text', ['你们几点关门', '几点开门', '营业时间是几点', '今天开到几点', '你们还开着吗',
                                  'what time do you close', 'are you open on Sunday', 'what are your opening hours',
                                  'when do you open tomorrow', 'How late are you open tonight?'])
def test_opening_hours_questions_are_understood(other_store, text):
    """Asked in either language: the store's hours (ask_hours), no longer out of scope."""
    _, nlu = other_store
    assert nlu.parse(text).intent == 'ask_hours', text


def test_catalog_with_bad_rows_still_understood():
    catalog = load_catalog(DATA / 'bad_rows_catalog.csv')
    assert [p.sku for p in catalog.products] == ['OK-1', 'OK-2']
    assert [issue.line for issue in catalog.issues] == [3, 4, 5, 6, 8]
    nlu = Nlu(catalog)
    assert nlu.parse('JBL Flip 6多少钱').slots['sku'] == 'OK-2'
    assert 'sku' not in nlu.parse('一加12多少钱').slots      # its row was bad


def test_cli_json(capsys):
    from retail_bringup.cli import main
    import json
    assert main(['nlu', '--catalog', str(DATA / 'other_store_catalog.csv'), '--json', '三星S24多少钱', 'hello']) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0] == {'text': '三星S24多少钱', 'lang': 'zh', 'intent': 'ask_price',
                        'slots': {'brand': 'Samsung', 'sku': 'SS-S24', 'category': 'phone'}, 'confidence': 0.9}
    assert lines[1]['intent'] == 'greet' and lines[1]['lang'] == 'en'


def test_cli_missing_catalog(capsys):
    from retail_bringup.cli import main
    assert main(['nlu', '--catalog', '/nonexistent/catalog.csv', 'hi']) == 2
    assert 'no such file' in capsys.readouterr().err


@pytest.mark.parametrize('text,intent', [('同意，我叫李雷', 'affirm'), ('我同意', 'affirm'), ('I agree', 'affirm'),
                                         ('不同意', 'deny'), ('我不愿意', 'deny'), ("I don't agree", 'deny'),
                                         ('no I disagree', 'deny')])
def test_consent_answers(text, intent):
    catalog = load_catalog(Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo' / 'catalog.csv')
    result = Nlu(catalog).parse(text)
    assert result.intent == intent and not result.slots        # "agree" is not the brand Gree
