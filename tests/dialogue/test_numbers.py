"""Issue 12 item 9: prices as people say them and as speech recognisers write them.

A table of variants: mixed digits and Chinese units, the Chinese decimal point, k/w suffixes,
a trailing digit one unit lower, 零 in between, and the bounds around them (以内, 以下, 到).
"""
import pytest

from retail_dialogue.numbers import extract_price_range, parse_number, parse_zh_number


@pytest.mark.parametrize('text,value', [
    # Chinese numerals
    ('三千', 3000), ('一千五', 1500), ('两千五', 2500), ('两万二', 22000), ('三千零五十', 3050), ('十五', 15),
    ('两千五百', 2500), ('一万', 10000), ('一万五千', 15000), ('一万二', 12000), ('三千零五', 3005),
    ('十万', 100000), ('二十', 20), ('一百二', 120),
    # digits with Chinese units, as recognisers write them
    ('3千5', 3500), ('1万5千', 15000), ('1万2', 12000), ('1万5', 15000), ('3千5百', 3500), ('1万2500', 12500),
    ('2千', 2000), ('5万', 50000), ('1万零500', 10500),
    # decimal point, Chinese or Arabic
    ('一点五万', 15000), ('1.5万', 15000), ('三点五千', 3500), ('1点2万', 12000), ('0.8万', 8000),
    # k / w suffixes
    ('2.5k', 2500), ('5k', 5000), ('5K', 5000), ('2w', 20000), ('1.2w', 12000), ('2k5', 2500),
])
def test_number_grammar(text, value):
    assert parse_zh_number(text) == value or parse_number(text) == value


@pytest.mark.parametrize('text', ['三五', '3 5', '', 'abc', '五点'])
def test_not_one_number(text):
    assert parse_zh_number(text) is None


@pytest.mark.parametrize('text,value', [('3,500', 3500), ('8000', 8000), ('2999.5', 2999.5), ('1,299', 1299)])
def test_plain_digits(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize('text,low,high', [
    # the cases of issue 12 item 9
    ('3千5以内', None, 3500), ('1万5千以内', None, 15000), ('一点五万以内', None, 15000), ('1万2以内', None, 12000),
    # the same amounts in other positions and wordings
    ('预算两千五', None, 2500), ('预算2.5k', None, 2500), ('1.5万以内的电视', None, 15000), ('一万五以下', None, 15000),
    ('不超过1万2', None, 12000), ('3千5到5千', 3500, 5000), ('一万到一万五', 10000, 15000), ('1万以上', 10000, None),
    ('一点二万左右', 9600, 14400), ('under 2.5k', None, 2500), ('below 1.5w', None, 15000),
    ('给我推荐个手机，预算两千五', None, 2500), ('3千5的手机', None, 3500), ('两千五的耳机', None, 2500),
    ('1万5千块以内', None, 15000), ('一万二千五以内', None, 12500), ('3千5百元以下', None, 3500),
    # after a comma (full-width commas become ',' in normalisation)
    ('推荐手机,1万2以内', None, 12000), ('冰箱,8000以内', None, 8000), ('手机,预算3000', None, 3000),
])
def test_price_bounds(text, low, high):
    found = extract_price_range(text)
    assert found is not None, text
    assert (found.min_price, found.max_price) == (low, high)


@pytest.mark.parametrize('text', ['65寸电视', '10公斤洗衣机', 'iPhone 16', '笔记本在哪一块', '三点钟来', '第一个'])
def test_not_prices(text):
    assert extract_price_range(text) is None


@pytest.mark.parametrize('text,low,high', [
    # issue 24: 万, k and English amounts in words; approximate and open-ended prices
    ('1万以内的电视', None, 10000), ('一万二以内', None, 12000), ('预算1.5万', None, 15000), ('一万以上的按摩椅', 10000, None),
    ('一万到一万五', 10000, 15000), ('2万左右', 16000, 24000), ('两千多的手机', 2000, 2999), ('三千到五千', 3000, 5000),
    ('under 2k', None, 2000), ('10k to 15k', 10000, 15000), ('around 3k', 2400, 3600),
    ('a phone under two grand', None, 2000), ('under a grand', None, 1000), ('between 2 and 3 grand', 2000, 3000),
    ('over three grand', 3000, None), ('about 2.5 grand', 2000, 3000), ('TVs under ten thousand', None, 10000),
    ('a speaker under five hundred', None, 500),
])
def test_prices_with_units_and_words(text, low, high):
    found = extract_price_range(text)
    assert found is not None and (found.min_price, found.max_price) == (low, high)


@pytest.mark.parametrize('text', ['i have two kids', 'a tablet for two', 'one of those please', 'the second one'])
def test_number_words_without_a_money_unit_are_no_price(text):
    assert extract_price_range(text) is None
