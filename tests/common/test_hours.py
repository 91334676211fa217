"""A store's opening hours (retail_common.hours): parsing, open at a time, minutes open, and the
store folder's `opening_hours` key (retail_common.store)."""
from __future__ import annotations

from datetime import datetime, time
from pathlib import Path

import pytest

from retail_common.hours import DEFAULT, HoursError, parse_hours
from retail_common.store import StoreError, load_store

from test_store import ZONES, store_dir  # noqa: F401  (the fixture)


def test_a_day_store():
    hours = parse_hours('10:00-22:00')
    assert (hours.opens, hours.closes, hours.minutes, hours.overnight) == (600, 1320, 720, False)
    assert hours.is_open(time(10, 0)) and hours.is_open(datetime(2026, 12, 7, 21, 59))
    assert not hours.is_open(time(22, 0)) and not hours.is_open(time(9, 59)) and not hours.is_open(time(0, 30))
    assert hours.minutes_to_close(time(21, 50)) == 10 and hours.minutes_to_close(time(23, 0)) is None
    assert hours == DEFAULT and hours.text == '10:00-22:00'


def test_a_store_that_closes_after_midnight():
    hours = parse_hours('10:00-01:00')
    assert (hours.minutes, hours.overnight, hours.text) == (900, True, '10:00-01:00')
    assert hours.is_open(time(23, 30)) and hours.is_open(time(0, 59)) and hours.is_open(time(10, 0))
    assert not hours.is_open(time(1, 0)) and not hours.is_open(time(9, 0))
    assert hours.minutes_to_close(time(23, 30)) == 90 and hours.minutes_to_close(time(0, 45)) == 15
    # the minutes of one calendar day it is open add up to its hours
    assert sum(hours.is_open(m) for m in range(1440)) == hours.minutes
    assert sum(DEFAULT.is_open(m) for m in range(1440)) == DEFAULT.minutes


@pytest.mark.parametrize('text, words', [
    ('24:00-10:00', '24:00 is no time of day'), ('10:00-24:00', '24:00 is no time of day'),
    ('10:60-22:00', '10:60 is no time of day'), ('10:00-10:00', 'opening and closing are both 10:00'),
    ('10-22', 'expected HH:MM-HH:MM'), ('', 'expected HH:MM-HH:MM'), ('x' * 10_000, 'expected HH:MM-HH:MM'),
    (600, 'expected a text'), (None, 'expected a text'),
])
def test_bad_hours_are_one_line_naming_where(text, words):
    with pytest.raises(HoursError) as info:
        parse_hours(text, 'zones.yaml: opening_hours')
    message = str(info.value)
    assert message.startswith('zones.yaml: opening_hours: ') and words in message
    assert '\n' not in message and len(message) < 200


def test_spaces_and_one_digit_hours_are_read():
    assert parse_hours(' 9:30 - 21:00 ').text == '09:30-21:00'


def test_the_store_folder_says_its_hours_default_ten_to_ten(store_dir: Path):  # noqa: F811
    assert load_store(store_dir).opening_hours == DEFAULT
    (store_dir / 'zones.yaml').write_text("opening_hours: '10:00-01:00'\n" + ZONES, encoding='utf-8')
    assert load_store(store_dir).opening_hours.text == '10:00-01:00'


@pytest.mark.parametrize('value', ["'25:00-10:00'", "'10:00-10:00'", '10:00', '[10, 22]'])
def test_bad_store_hours_are_one_line_naming_file_and_key(store_dir: Path, value):  # noqa: F811
    (store_dir / 'zones.yaml').write_text(f'opening_hours: {value}\n' + ZONES, encoding='utf-8')
    with pytest.raises(StoreError) as info:
        load_store(store_dir)
    message = str(info.value)
    assert message.startswith(f'{store_dir / "zones.yaml"}: opening_hours: ') and '\n' not in message


def test_the_demo_store_is_open_ten_to_ten():
    demo = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'
    assert load_store(demo).opening_hours.text == '10:00-22:00'
