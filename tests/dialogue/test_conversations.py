"""Issue 13: the multi-turn conversation set on the harbour store (not the demo), run through
`retailbot chat --json` as a script would, scored per rule; and the chat's JSON shape."""
import json
import subprocess
from pathlib import Path

import pytest

from retail_common.catalog import load_catalog
from retail_dialogue.conversations import score, script, turn_objects
from rostest_support import BIN

DATA = Path(__file__).resolve().parents[1] / 'data' / 'dialogue'
STORE = DATA / 'harbour_store'
KEYS = {'said', 'reply', 'lang', 'intent', 'slots', 'products', 'guide_to', 'tour', 'staff_called'}


@pytest.fixture(scope='module')
def dialogues():
    return [json.loads(line) for line in (DATA / 'conversations.jsonl').read_text(encoding='utf-8').splitlines()]


def _chat(lines, *options):
    return subprocess.run([str(BIN / 'retailbot'), 'chat', '--json', '--store', str(STORE), *options],
                          input='\n'.join(lines) + '\n', capture_output=True, text=True, timeout=240)


def test_the_set_is_big_bilingual_and_covers_every_rule(dialogues):
    assert len(dialogues) >= 150
    assert {d['lang'] for d in dialogues} == {'zh', 'en'}
    assert sum(d['lang'] == 'en' for d in dialogues) >= 60
    assert all(len(d['turns']) >= 1 for d in dialogues) and sum(len(d['turns']) >= 2 for d in dialogues) >= 150
    rules = {d['rule'] for d in dialogues}
    for rule in ('have_product', 'out_of_stock_alternatives', 'reference', 'compare', 'refine_brand', 'refine_cheaper',
                 'refine_more', 'not_carried_brand', 'promotions', 'tour', 'tour_question', 'staff_handover',
                 'staff_request', 'constraints_conflict', 'constraints_compatible', 'budget'):
        assert rule in rules, rule


def test_conversation_set_through_retailbot_chat_json(dialogues):
    done = _chat(script(dialogues))
    assert done.returncode == 0, done.stderr
    objects = turn_objects(done.stdout)
    assert len(objects) == sum(len(d['turns']) for d in dialogues)
    result = score(dialogues, objects, load_catalog(STORE / 'catalog.csv'))
    per_rule = result.per_rule()
    report = '\n'.join(result.failures[:30])
    assert result.accuracy >= 0.95, report
    assert min(per_rule.values()) >= 0.75, (per_rule, report)


def test_chat_json_lines_have_exactly_the_issue_shape():
    done = _chat(['do you have the Huawei P60?', 'ok take me there', 'show me around', '我要找店员'])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    objects = [json.loads(line) for line in lines]
    turns = [o for o in objects if 'reply' in o]
    assert len(turns) == 4 and all(set(o) == KEYS for o in turns)
    first, there, tour, staff = turns
    assert first['products'] == [{'sku': 'HW-P60', 'price_cny': 4488.0, 'zone': 'mobile'}]
    assert (first['lang'], first['intent'], first['guide_to'], first['tour'], first['staff_called']) == \
        ('en', 'find_product', None, None, False)
    assert first['slots']['sku'] == 'HW-P60' and '4,488 yuan' in first['reply']
    assert there['guide_to'] == 'mobile' and tour['tour'] == 'showroom' and staff['staff_called'] is True
    assert staff['lang'] == 'zh'
    assert '[' not in done.stdout.split('\n')[0] or 'reply' not in objects[0]     # notes are not turn objects
    assert 'products' in done.stderr                                                # the start-up note


def test_chat_on_a_missing_store_is_one_line(tmp_path):
    done = subprocess.run([str(BIN / 'retailbot'), 'chat', '--json', '--store', str(tmp_path / 'nowhere')],
                          input='hi\n', capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and 'does not exist' in done.stderr
