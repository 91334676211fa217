"""Greeting texts and tours rolled out from the platform (desired.json's `content.greetings` and
`content.tours`) in the store model every node reads: the platform's model and the robot's store
model apply the same rules; an entry that breaks one is refused (model, check_rollout) or
reported and skipped (a desired.json on disk), never a traceback."""
from __future__ import annotations

import json

import pytest

from retail_common.greetings import placeholder_problem
from retail_common.store import check_rollout, load_store
from retail_dialogue.manager_node import DEFAULT_STORE
from retail_sync.fleet import check_desired

GREETINGS = {'anonymous': {'zh': '欢迎来到双十二！', 'en': 'Welcome to our winter sale!'},
             'member': {'en': 'Hello {name}, members save 10% today.'},
             'vip': {'zh': '{name}您好，您{time}的{purpose}预约已准备好。'}}
TOUR = {'name': 'winter', 'stops': [
    {'zone': 'kitchen', 'narration': {'zh': '冬季厨房特卖在这里。', 'en': 'The winter kitchen sale is here.'}},
    {'zone': 'audio_video', 'narration': {'en': 'Big screens for the holidays.'}}]}


def _store(tmp_path, content: dict | bytes):
    platform = tmp_path / 'platform'
    platform.mkdir(exist_ok=True)
    raw = content if isinstance(content, bytes) else json.dumps({'version': 1, 'content': content}).encode()
    (platform / 'desired.json').write_bytes(raw)
    return load_store(DEFAULT_STORE, tmp_path)


# --- the placeholder rule (one function: the platform's model and the store model call it) ------
@pytest.mark.parametrize('text, allowed, problem', [
    ('Hello {name}!', ('name',), ''),
    ('{name}您好，{time}{purpose}', ('name', 'time', 'purpose'), ''),
    ('Braces {{like this}}', (), ''),
    ('Hello {name}', (), 'unknown placeholder {name} (allowed here: none)'),
    ('Hello {nme}', ('name',), 'unknown placeholder {nme} (allowed here: {name})'),
    ('Hello {}', ('name',), 'unknown placeholder {}'),
    ('Hello {0}', ('name',), 'unknown placeholder {0}'),
    ('Hello {name.__class__}', ('name',), 'unknown placeholder {name.__class__}'),
    ('Hello {name[0]}', ('name',), 'unknown placeholder {name[0]}'),
    ('Hello {name:>999999999}', ('name',), 'takes no format'),
    ('Hello {name!r}', ('name',), 'takes no format'),
    ('Hello {name', ('name',), 'braces do not pair'),
    ('Hello name}', ('name',), 'braces do not pair'),
    ('x' * 301, (), 'at most 300'),
    ('{' * 100_000, ('name',), 'at most 300'),
])
def test_only_the_audiences_placeholders_plainly(text, allowed, problem):
    found = placeholder_problem(text, allowed)
    assert (problem in found and bool(found)) if problem else found == ''


# --- the platform's model: a document with a bad greeting or tour is refused whole, key named ----
@pytest.mark.parametrize('content, key', [
    ({'greetings': {'member': {'en': 'Hi {nme}'}}}, 'content.greetings.member.en: unknown placeholder {nme}'),
    ({'greetings': {'anonymous': {'zh': '{name}您好'}}}, 'content.greetings.anonymous.zh: unknown placeholder'),
    ({'greetings': {'vip': {'en': '{name:>99999}'}}}, 'content.greetings.vip.en: placeholder {name} takes'),
    ({'greetings': {'staff': {'en': 'Hi'}}}, 'content.greetings.staff'),
    ({'greetings': {'member': {'fr': 'Bonjour {name}'}}}, 'content.greetings.member.fr'),
    ({'greetings': ['Hello']}, 'content.greetings'),
    ({'tours': [{'name': 'x', 'stops': []}]}, 'content.tours.0.stops'),
    ({'tours': [{'name': '', 'stops': [{'zone': 'kitchen'}]}]}, 'content.tours.0.name'),
    ({'tours': [{'name': 'x', 'stops': ['kitchen']}]}, 'content.tours.0.stops.0'),
    ({'tours': [TOUR, TOUR]}, "content.tours: a second tour named 'winter'"),
    ({'tours': [{'name': 'x', 'stops': [{'zone': 'kitchen', 'narration': {'de': 'Hier'}}]}]},
     'content.tours.0.stops.0.narration.de'),
    ({'tours': [{'name': 'x', 'stops': [{'zone': 'kitchen', 'narration': {'en': 'y' * 1001}}]}]},
     'content.tours.0.stops.0.narration.en'),
])
def test_the_model_refuses_a_bad_greeting_or_tour_whole_naming_the_key(content, key):
    document, problem = check_desired(json.dumps({'content': content}))
    assert document is None and problem.startswith(key), problem


def test_the_model_takes_greetings_and_tours():
    document, problem = check_desired(json.dumps({'content': {'greetings': GREETINGS, 'tours': [TOUR]}}))
    assert problem == '' and document.content.greetings.member.en.startswith('Hello {name}')


# --- the store model: what the dialogue and the guide read -----------------------------------
def test_rolled_out_greetings_and_tours_are_in_the_store(tmp_path):
    document, _ = check_desired(json.dumps({'content': {'greetings': GREETINGS, 'tours': [TOUR]}}))
    store = _store(tmp_path, document.model_dump_json(indent=1).encode())     # as the sync agent writes it
    assert store.greeting('anonymous', 'en') == 'Welcome to our winter sale!'
    assert store.greeting('member', 'en', name='Li Wei') == 'Hello Li Wei, members save 10% today.'
    assert store.greeting('member', 'zh', name='王丽') == ''                   # not rolled out: built-in
    assert store.greeting('vip', 'zh', name='王丽', time='15:00', purpose='试用') == '王丽您好，您15:00的试用预约已准备好。'
    assert store.greeting('member', 'en', name='{evil}') == 'Hello {evil}, members save 10% today.'
    assert next(iter(store.tours)) == 'winter'                                # offered first
    assert [s.zone for s in store.tours['winter']] == ['kitchen', 'audio_video']
    assert store.tours['winter'][1].narration_in('zh') == 'Big screens for the holidays.'  # the other language
    assert 'showroom' in store.tours and not [i for i in store.issues if 'desired' in i]


def test_a_rolled_out_tour_replaces_the_store_tour_of_its_name(tmp_path):
    store = _store(tmp_path, {'tours': [dict(TOUR, name='showroom')]})
    assert [s.zone for s in store.tours['showroom']] == ['kitchen', 'audio_video']


@pytest.mark.parametrize('content, reported', [
    ({'tours': [{'name': 'w', 'stops': [{'zone': 'kitchen'}, {'zone': 'ski_slope'}]}]}, 'must name a known zone'),
    ({'tours': [{'name': 'w', 'stops': []}]}, 'non-empty list'),
    ({'tours': [{'stops': [{'zone': 'kitchen'}]}]}, 'expected {"name"'),
    ({'tours': [{'name': 'w', 'stops': [{'zone': 'kitchen', 'narration': {'fr': 'ici'}}]}]}, 'languages are zh and en'),
    ({'tours': 'kitchen'}, 'expected a list'),
    ({'greetings': {'member': {'en': 'Hi {nme}'}}}, 'unknown placeholder {nme}'),
    ({'greetings': {'member': {'en': 5}}}, 'must be a text'),
    ({'greetings': {'member': {'fr': 'Salut {name}'}}}, 'unknown language'),
    ({'greetings': {'boss': {'en': 'Hi'}}}, 'unknown audience'),
    ({'greetings': {'member': 'Hi'}}, 'expected {language: text}'),
    ({'greetings': ['Hi']}, 'greetings not used'),
])
def test_a_bad_entry_on_disk_is_reported_and_skipped(tmp_path, content, reported):
    store = _store(tmp_path, content)
    assert any(reported in issue and 'desired.json' in issue for issue in store.issues), store.issues
    assert 'w' not in store.tours and next(iter(store.tours)) == 'showroom'
    assert store.greeting('member', 'en', name='x') == '' and store.greeting('boss', 'en') == ''


def test_a_hand_made_file_with_many_entries_is_reported_in_a_few_lines(tmp_path):
    store = _store(tmp_path, {'tours': [dict(TOUR, name=f't{i}') for i in range(5000)],
                              'greetings': {f'a{i}': {'en': 'x'} for i in range(5000)}})
    assert len(store.tours) == 50 + len(load_store(DEFAULT_STORE).tours)
    assert len([i for i in store.issues if 'desired.json' in i]) <= 10, store.issues


def test_a_second_tour_of_the_same_name_on_disk_is_reported_and_skipped(tmp_path):
    store = _store(tmp_path, {'tours': [TOUR, dict(TOUR, stops=[{'zone': 'checkout'}])]})
    assert [s.zone for s in store.tours['winter']] == ['kitchen', 'audio_video']
    assert any("a second tour named 'winter'" in issue for issue in store.issues), store.issues


@pytest.mark.parametrize('raw', [b'{not json', b'[]', b'{}', json.dumps({'content': {'greetings': None,
                                                                                    'tours': None}}).encode()])
def test_no_rolled_out_content_changes_nothing(tmp_path, raw):
    store = _store(tmp_path, raw)
    assert list(store.tours) == list(load_store(DEFAULT_STORE).tours) and store.greetings == {}


@pytest.mark.parametrize('content, named', [
    ({'tours': [{'name': 'w', 'stops': [{'zone': 'ski_slope', 'narration': {'en': 'x'}}]}]},
     "content.tours: entry 0: tour 'w': stop 1 must name a known zone"),
    ({'greetings': {'member': {'en': 'Hi {nme}'}}}, 'content.greetings.member.en: unknown placeholder'),
])
def test_check_rollout_names_a_tour_or_greeting_the_store_would_skip(content, named):
    problems = check_rollout(load_store(DEFAULT_STORE), content)
    assert len(problems) == 1 and named in problems[0], problems
    assert check_rollout(load_store(DEFAULT_STORE), {'greetings': GREETINGS, 'tours': [TOUR]}) == []
