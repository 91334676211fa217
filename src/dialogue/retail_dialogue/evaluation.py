"""Scoring the NLU against a labelled set (JSON lines: text, intent, slots).

Label convention: a labelled `sku` stands for its product, so its catalog brand and category are
expected too (the NLU fills them in from the product). Slot accuracy is strict: an utterance
counts only when every slot, and no extra one, is right. Shared by the test and the benchmark.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from retail_common.catalog import Catalog

from .nlu import Nlu, NluResult


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    slots: dict[str, object]


@dataclass
class Report:
    total: int = 0
    intent_correct: int = 0
    slots_correct: int = 0
    per_intent: Counter = field(default_factory=Counter)
    per_intent_correct: Counter = field(default_factory=Counter)
    failures: list[tuple[Example, NluResult]] = field(default_factory=list)

    @property
    def intent_accuracy(self) -> float:
        return self.intent_correct / self.total if self.total else 0.0

    @property
    def slot_accuracy(self) -> float:
        return self.slots_correct / self.total if self.total else 0.0


def load_examples(path: str | Path, catalog: Catalog) -> list[Example]:
    examples = []
    for line in Path(path).read_text(encoding='utf-8').splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        slots = dict(record.get('slots', {}))
        product = catalog.by_sku.get(slots.get('sku', ''))
        if 'sku' in slots and product is None:
            raise ValueError(f"labelled sku {slots['sku']} is not in {catalog.path}")
        if product is not None:
            slots.setdefault('brand', product.brand)
            slots.setdefault('category', product.category)
        examples.append(Example(record['text'], record['intent'], slots))
    return examples


def _same_slots(expected: dict[str, object], got: dict[str, object]) -> bool:
    if set(expected) != set(got):
        return False
    for key, value in expected.items():
        if isinstance(value, float) or isinstance(got[key], float):
            if abs(float(value) - float(got[key])) > 0.5:
                return False
        elif value != got[key]:
            return False
    return True


def evaluate(nlu: Nlu, examples: list[Example]) -> Report:
    report = Report()
    for example in examples:
        result = nlu.parse(example.text)
        report.total += 1
        report.per_intent[example.intent] += 1
        intent_ok = result.intent == example.intent
        slots_ok = _same_slots(example.slots, result.slots)
        report.intent_correct += intent_ok
        report.per_intent_correct[example.intent] += intent_ok
        report.slots_correct += slots_ok
        if not (intent_ok and slots_ok):
            report.failures.append((example, result))
    return report
