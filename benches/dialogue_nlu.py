"""NLU accuracy per intent on the labelled set (a catalog the NLU was not written for).

    .venv/bin/python benches/dialogue_nlu.py [--failures]
Peer in the same run: a keyword-only baseline (the same cues without catalog entity linking).
"""
import sys
import time
from pathlib import Path

from retail_common.catalog import Catalog, load_catalog
from retail_common.store import Zone
from retail_dialogue.evaluation import evaluate, load_examples
from retail_dialogue.nlu import INTENTS, Nlu

DATA = Path(__file__).resolve().parents[1] / 'tests' / 'data' / 'dialogue'

catalog = load_catalog(DATA / 'other_store_catalog.csv')
examples = load_examples(DATA / 'nlu_labelled.jsonl', catalog)
# The labelled store's service places (service places are store data, found by their names).
PLACES = {'checkout': ('收银台', 'Checkout'), 'service_desk': ('服务台', 'Service Desk'), 'vip_lounge': ('贵宾室', 'VIP Lounge'),
          'restroom': ('洗手间', 'Restrooms'), 'entrance': ('入口', 'Entrance'), 'exit': ('出口', 'Exit')}
zones = {k: Zone(id=k, kind='service', name_zh=zh, name_en=en, pose=(0.0, 0.0, 0.0)) for k, (zh, en) in PLACES.items()}
nlu = Nlu(catalog, zones)
started = time.perf_counter()
report = evaluate(nlu, examples)
elapsed = time.perf_counter() - started
baseline = evaluate(Nlu(Catalog(path='(empty)'), zones), examples)
print(f'{len(examples)} utterances, {elapsed / len(examples) * 1000:.2f} ms each')
print(f'{"intent":<14} {"n":>4} {"accuracy":>9} {"no-catalog peer":>16}')
for intent in INTENTS:
    n = report.per_intent[intent]
    print(f'{intent:<14} {n:>4} {report.per_intent_correct[intent] / n:>9.1%} '
          f'{baseline.per_intent_correct[intent] / n:>16.1%}')
print(f'{"ALL intents":<14} {report.total:>4} {report.intent_accuracy:>9.1%} {baseline.intent_accuracy:>16.1%}')
print(f'{"ALL slots":<14} {report.total:>4} {report.slot_accuracy:>9.1%} {baseline.slot_accuracy:>16.1%}')
if '--failures' in sys.argv:
    for example, result in report.failures:
        print(f'  {example.intent}->{result.intent} {example.slots}->{result.slots}: {example.text}')
