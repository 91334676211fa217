"""Scoring `retailbot chat --json` output against a multi-turn conversation set (JSON lines: one
dialogue per line with its rule, language and turns, each turn with what it says and expects).

Shared by the conversation test and the benchmark; reads no file itself. See
tests/dialogue/make_conversations.py for the expectation keys.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from retail_common.catalog import Catalog

NEXT_CUSTOMER = '---'


@dataclass
class Score:
    dialogues: Counter = field(default_factory=Counter)      # rule -> dialogues
    passed: Counter = field(default_factory=Counter)         # rule -> dialogues with every turn right
    failures: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        total = sum(self.dialogues.values())
        return sum(self.passed.values()) / total if total else 0.0

    def per_rule(self) -> dict[str, float]:
        return {rule: self.passed[rule] / n for rule, n in sorted(self.dialogues.items())}


def script(dialogues: list[dict]) -> list[str]:
    """The stdin lines for one `retailbot chat --json` run over all dialogues."""
    lines: list[str] = []
    for i, d in enumerate(dialogues):
        if i:
            lines.append(NEXT_CUSTOMER)
        lines += [t['say'] for t in d['turns']]
    return lines


def turn_objects(stdout: str) -> list[dict]:
    """The JSON objects with a `reply` key, in order (other lines are notes or greetings)."""
    out = []
    for line in stdout.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and 'reply' in obj:
            out.append(obj)
    return out


def _product_ok(sku: str, want: dict, catalog: Catalog, before: list[str]) -> str:
    p = catalog.by_sku.get(sku)
    if p is None:
        return f'{sku} is not in the catalog'
    checks = [('category', p.category == want.get('category', p.category)),
              ('brand', p.brand == want.get('brand', p.brand)),
              ('max_price', p.price_cny <= want.get('max_price', float('inf')) + 0.5),
              ('min_price', p.price_cny >= want.get('min_price', 0) - 0.5),
              ('in_stock', p.in_stock or not want.get('in_stock')),
              ('promotion', bool(p.promotion) or not want.get('promotion')),
              ('not_shown_before', sku not in before or not want.get('not_shown_before'))]
    bad = [name for name, ok in checks if not ok]
    return f'{sku} breaks {", ".join(bad)}' if bad else ''


def _equal_checks(expect: dict, got: dict) -> list[str]:
    """Keys whose value must equal the turn's (intent, guide_to, tour, staff_called, lang)."""
    problems = [f"{key} {got.get(key)} != {expect[key]}" for key in ('intent', 'guide_to', 'tour', 'staff_called')
                if key in expect and got.get(key) != expect[key]]
    if 'guide_to_any' in expect and got.get('guide_to') not in expect['guide_to_any']:
        problems.append(f"guide_to {got.get('guide_to')} not in {expect['guide_to_any']}")
    if got.get('lang') and expect.get('lang') and got['lang'] != expect['lang']:
        problems.append(f"lang {got['lang']} != {expect['lang']}")
    reply = got.get('reply', '')
    problems += [f'reply lacks {s!r}' for s in expect.get('reply_has', []) if s not in reply]
    problems += [f'reply has {s!r}' for s in expect.get('reply_lacks', []) if s in reply]
    return problems


def _product_checks(expect: dict, skus: list[str], previous: list[str], catalog: Catalog) -> list[str]:
    """The products the turn presented against what the dialogue expects."""
    problems = []
    if 'products' in expect and skus != expect['products']:
        problems.append(f"products {skus} != {expect['products']}")
    if 'products_set' in expect and sorted(skus) != sorted(expect['products_set']):
        problems.append(f"products {sorted(skus)} != {sorted(expect['products_set'])} (any order)")
    if 'products_first' in expect and skus[:len(expect['products_first'])] != expect['products_first']:
        problems.append(f"products {skus} do not start with {expect['products_first']}")
    if 'products_min' in expect and len(skus) < expect['products_min']:
        problems.append(f"{len(skus)} products < {expect['products_min']}")
    if 'products_all' in expect:
        problems += [m for m in (_product_ok(s, expect['products_all'], catalog, previous) for s in skus) if m]
    if 'refers_to' in expect:
        n = expect['refers_to']
        want = previous[n - 1:n]
        if not want or skus != want:
            problems.append(f'refers to {skus}, not product {n} of {previous}')
    if expect.get('compared') and skus != previous[:2]:
        problems.append(f'compared {skus}, not {previous[:2]}')
    return problems


def check_turn(expect: dict, got: dict, previous: list[str], catalog: Catalog) -> list[str]:
    """What is wrong with one turn's JSON object (empty: right)."""
    skus = [p['sku'] for p in got.get('products', [])]
    equal = _equal_checks(expect, got)
    intent = [p for p in equal if p.startswith('intent ')]
    return intent + _product_checks(expect, skus, previous, catalog) + [p for p in equal if p not in intent]


def score(dialogues: list[dict], objects: list[dict], catalog: Catalog) -> Score:
    """Match the chat's turn objects to the dialogues' turns, in order, and score per rule."""
    result = Score()
    it = iter(objects)
    for d in dialogues:
        result.dialogues[d['rule']] += 1
        previous: list[str] = []
        problems = []
        for n, turn in enumerate(d['turns'], 1):
            got = next(it, None)
            if got is None or got.get('said') != turn['say']:
                problems.append(f'turn {n}: no answer to {turn["say"]!r}')
                break
            for problem in check_turn({**turn['expect'], 'lang': d['lang']}, got, previous, catalog):
                problems.append(f'turn {n} {turn["say"]!r}: {problem} | reply: {got.get("reply", "")[:160]}')
            shown = [p['sku'] for p in got.get('products', [])]
            previous = shown or previous
        if problems:
            result.failures.append(f"{d.get('id', '?')} [{d['rule']}/{d['lang']}] " + '; '.join(problems))
        else:
            result.passed[d['rule']] += 1
    return result
