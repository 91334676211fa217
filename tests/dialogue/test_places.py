"""Issue 20/24: service places are found by their names and kinds in the store's zones.yaml, and
the tour offered is the store's own: no zone id or tour name is fixed in the code."""
from dataclasses import replace
from pathlib import Path

import pytest

from retail_common.store import Zone, load_store
from retail_dialogue.manager import DialogueManager, Say, StartGuide, StartTour
from retail_dialogue.nlu import Nlu
from retail_dialogue.places import kind_of, service_places

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'
RENAMED = {'restroom': 'restrooms', 'checkout': 'tills_1', 'vip_lounge': 'lounge_2f', 'service_desk': 'help'}


@pytest.fixture(scope='module')
def demo():
    return load_store(DEMO)


@pytest.fixture(scope='module')
def renamed(demo):
    """The demo store with its service zones under other ids, and its tour under another name."""
    zones = {RENAMED.get(k, k): replace(z, id=RENAMED.get(k, k)) for k, z in demo.zones.items()}
    store = replace(demo, zones=zones, tours={'highlights': demo.tours['showroom']})
    return store, Nlu(store.catalog, store.zones)


def _guide(store_nlu, text):
    store, nlu = store_nlu
    manager = DialogueManager(store, nlu=nlu)
    manager.on_customer(1)
    effects = manager.on_utterance(1, text)
    return [e.zone for e in effects if isinstance(e, StartGuide)], manager


@pytest.mark.parametrize('text,zone', [
    ('洗手间在哪里', 'restrooms'), ("where's the restroom?", 'restrooms'), ('厕所怎么走', 'restrooms'),
    ('带我去收银台', 'tills_1'), ('where do I pay? take me to the checkout', 'tills_1'),
    ('贵宾室在哪', 'lounge_2f'), ('带我去服务台', 'help'), ('take me to the exit', 'exit'),
])
def test_service_places_by_their_names(renamed, text, zone):
    zones, _ = _guide(renamed, text)
    assert zones == [zone]


def test_arrival_at_a_renamed_restroom_says_what_a_restroom_is(renamed):
    zones, manager = _guide(renamed, '洗手间在哪里')
    says = [e.text for e in manager.on_guide_result(1, zones[0], True, 'arrived') if isinstance(e, Say)]
    assert says and '洗手间就在这里' in says[0]


def test_a_place_the_store_does_not_have_leads_nowhere(demo):
    zones = {k: z for k, z in demo.zones.items() if k != 'restroom'}
    store = replace(demo, zones=zones)
    found, _ = _guide((store, Nlu(store.catalog, store.zones)), '洗手间在哪里')
    assert found == []


def test_the_store_tour_is_offered_whatever_its_name(renamed):
    store, nlu = renamed
    manager = DialogueManager(store, nlu=nlu)
    manager.on_customer(1)
    assert [e.route for e in manager.on_utterance(1, '带我参观一下') if isinstance(e, StartTour)] == ['highlights']


def test_kinds_from_ids_or_names():
    def zone(id_, zh, en, kind='service'):
        return Zone(id=id_, kind=kind, name_zh=zh, name_en=en, pose=(0.0, 0.0, 0.0), categories=('tv',))
    assert kind_of(zone('wc_2', '卫生间', 'Toilets')) == 'restroom'
    assert kind_of(zone('z9', '洗手间', 'Restrooms')) == 'restroom'
    assert kind_of(zone('cash-desk', '收银台', 'Tills')) == 'checkout'
    assert kind_of(zone('dock', '充电桩', 'Charging Dock')) == ''
    assert kind_of(zone('restroom', '洗手间', 'Restrooms', kind='product')) == ''
    assert service_places({'a': zone('a', '出口', 'Exit'), 'b': zone('b', '出口', 'Way out')}) == {'exit': 'a'}


def test_no_zone_id_or_tour_name_in_the_dialogue_code():
    """No code compares with, looks up or goes to a fixed place id or tour name (English words the
    NLU corrects typos towards, like "restroom", are words, not ids)."""
    import re
    src = Path(__file__).resolve().parents[2] / 'src' / 'dialogue' / 'retail_dialogue'
    ids = r"'(?:restroom|checkout|vip_lounge|service_desk|entrance|exit)'"
    used_as_id = re.compile(rf"(?:==|!=|\bin|get\(|zone=|route=|\[)\s*{ids}|{ids}\s*(?:\bin\b|\]|:)|'showroom'")
    for path in src.rglob('*.py'):
        if path.name == 'places.py':
            continue            # the words for each place kind
        found = used_as_id.findall(path.read_text(encoding='utf-8'))
        assert not found, f'{path.name}: {found}'
