"""The interaction event contracts (`retail_common.events`): every producer sends a declared,
versioned payload; every reader reads a declared type; no payload can carry face data."""
from __future__ import annotations

import ast
import json
import re
import types
import typing
from pathlib import Path

import annotated_types
import pytest
from pydantic import BaseModel

from retail_common import events as ev
from retail_common.intents import INTENTS, NLU_INTENTS, PRODUCT_INTENTS

SRC = Path(__file__).resolve().parents[2] / 'src'


# -- structure: privacy by construction ------------------------------------------------------------
def _leaves(annotation, where: str):
    """(where, type, metadata) of every leaf type reachable from a field annotation."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        for leaf, kind, more in _leaves(base, where):
            yield leaf, kind, [*meta, *more]
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from _leaves(arg, where)
    elif origin is list:
        (item,) = typing.get_args(annotation)
        yield where, list, []
        yield from _leaves(item, f'{where}[]')
    elif origin is typing.Literal or annotation is type(None):
        return
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            yield from _leaves(typing.Annotated[info.annotation, *info.metadata] if info.metadata
                               else info.annotation, f'{where}.{name}')
    else:
        yield where, annotation, []


def _max_len(meta) -> int | None:
    for m in meta:
        inner = getattr(m, 'metadata', None)
        if isinstance(inner, list) and _max_len(inner) is not None:
            return _max_len(inner)
        value = getattr(m, 'max_length', None)
        if value is not None:
            return value
        if isinstance(m, annotated_types.MaxLen):
            return m.max_length
    return None


@pytest.mark.parametrize('model', ev.ALL_PAYLOADS, ids=[m.__name__ for m in ev.ALL_PAYLOADS])
def test_a_payload_has_no_free_field_and_every_field_is_bounded(model):
    assert model.TYPE and model.VERSION >= 1
    assert model.model_config.get('extra') == 'forbid'
    for where, kind, meta in _leaves(model, model.TYPE):
        assert kind not in (dict, typing.Any, object, bytes), f'{where}: a free {kind} could carry face data'
        assert kind in (str, int, float, bool, list) or issubclass(kind, str), f'{where}: {kind}'
        if kind in (str, list) and not (isinstance(kind, type) and issubclass(kind, ev.Intent)):
            assert _max_len(meta) is not None, f'{where}: {kind.__name__} without a length bound'


def test_the_registry_lists_each_type_once_at_its_newest_version():
    assert len({(m.TYPE, m.VERSION) for m in ev.ALL_PAYLOADS}) == len(ev.ALL_PAYLOADS)
    assert set(ev.EVENT_TYPES) == {m.TYPE for m in ev.ALL_PAYLOADS}
    assert 'guide_outcome' not in ev.EVENT_TYPES          # one guide mission, one type
    schemas = ev.event_json_schemas()
    assert set(schemas) == {f'{m.TYPE}.v{m.VERSION}' for m in ev.ALL_PAYLOADS}
    assert all(s['additionalProperties'] is False and s['x-event-type'] for s in schemas.values())


# -- validation: a table of variants, each a one-line reason ----------------------------------------
GOOD = {
    'greeting': {'member': True, 'vip': False, 'appointment': False},
    'guide': {'zone': 'kitchen', 'status': 'started'},
    'staff_request': {'reason': 'robot_lost', 'x': 1.5, 'y': -2.0},
    'dialogue_turn': {'intent': 'recommend', 'slots': {'category': 'phone', 'min_price': 3000}, 'language': 'zh',
                      'confidence': 0.9, 'products': [{'sku': 'P-1', 'price_cny': 3999.0, 'zone': 'phones'}]},
}


@pytest.mark.parametrize('type_,data', GOOD.items())
def test_declared_shapes_pass_and_round_trip(type_, data):
    payload = ev.validate_event(type_, data)
    assert payload.TYPE == type_
    assert ev.validate_event(type_, json.loads(json.dumps(payload.to_data()))) == payload


BAD = [
    ('undeclared type', 'guide_outcome', {'zone': 'x'}, 1, 'undeclared event type'),
    ('undeclared version', 'greeting', GOOD['greeting'], 2, 'undeclared version 2'),
    ('version not a number', 'greeting', GOOD['greeting'], True, 'not a whole number'),
    ('not an object', 'greeting', [1, 2], 1, 'must be a JSON object'),
    ('missing field', 'greeting', {'member': True}, 1, 'vip'),
    ('an embedding key', 'greeting', {**GOOD['greeting'], 'embedding': [0.1] * 128}, 1, 'embedding'),
    ('a face crop in a text field', 'staff_request', {'reason': 'x', 'wanted': '/9j/' + 'A' * 4000}, 1, 'wanted'),
    ('a long list', 'recommendation', {'skus': ['s'] * 51}, 1, 'skus'),
    ('a non-finite number', 'staff_request', {'reason': 'x', 'x': float('nan')}, 1, 'x'),
    ('a free dict in slots', 'dialogue_turn', {**GOOD['dialogue_turn'], 'slots': {'face': {'a': 1}}}, 1, 'slots'),
    ('an intent nobody produces', 'dialogue_turn', {**GOOD['dialogue_turn'], 'intent': 'ask_stock'}, 1, 'intent'),
    ('a status not declared', 'guide', {'zone': 'k', 'status': 'teleported'}, 1, 'status'),
    ('a code with spaces', 'session_end', {'reason': 'walked off'}, 1, 'reason'),
]


@pytest.mark.parametrize('what,type_,data,version,says', BAD, ids=[b[0] for b in BAD])
def test_undeclared_types_and_shapes_are_refused_with_one_line(what, type_, data, version, says):
    with pytest.raises(ev.EventContractError) as caught:
        ev.validate_event(type_, data, version)
    message = str(caught.value)
    assert says in message and '\n' not in message and len(message) < 400


# -- producers and readers ------------------------------------------------------------------------
PRODUCERS = [SRC / 'dialogue/retail_dialogue/manager.py', SRC / 'navigation/retail_navigation/guide_node.py',
             SRC / 'perception/retail_perception/faces_node.py', SRC / 'dialogue/retail_dialogue/manager_node.py']


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', '')
            owner = getattr(func.value, 'attr', getattr(func.value, 'id', '')) if isinstance(func, ast.Attribute) else ''
            if (name == 'send' and owner == 'events') or name in ('Record', '_record'):
                yield node


def _declared(expr: ast.expr) -> bool:
    """A payload model built right there (`ev.Greeting(...)`, `GuideMission(...)`,
    `RECORDED[kind](...)`) or one passed along (`effect.event`, a variable)."""
    if isinstance(expr, ast.Call):
        func = expr.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', '')
        return name in {m.__name__ for m in ev.ALL_PAYLOADS} or isinstance(func, ast.Subscript)
    return isinstance(expr, (ast.Name, ast.Attribute))


@pytest.mark.parametrize('path', PRODUCERS, ids=[p.name for p in PRODUCERS])
def test_every_producer_sends_a_payload_model(path):
    tree = ast.parse(path.read_text(encoding='utf-8'))
    found = list(_calls(tree))
    assert found, f'{path.name}: no event is produced here any more; update PRODUCERS'
    for call in found:
        args = call.args[1:] if getattr(call.func, 'attr', '') == '_record' else call.args
        if not args:
            continue                                   # the method's own definition-site call
        assert _declared(args[0]), f'{path.name}:{call.lineno}: sends {ast.unparse(args[0])[:80]}, not a payload model'


def test_the_faces_node_records_declared_models():
    from retail_perception.faces_node import RECORDED
    assert all(issubclass(model, ev.EventPayload) and model.TYPE in ev.EVENT_TYPES for model in RECORDED.values())


READS = [re.compile(p) for p in (r"_event\(mark, '([a-z_]+)'", r"type_? == '([a-z_]+)'", r"\.type == '([a-z_]+)'",
                                  r"of_type\('([a-z_]+)'\)")]


def test_every_event_type_a_reader_looks_for_is_declared():
    read: dict[str, str] = {}
    for path in SRC.rglob('*.py'):
        text = path.read_text(encoding='utf-8')
        if not any(word in text for word in ('payload_json', 'on_interaction', 'Record', 'InteractionEvent')):
            continue                                   # not a reader of interaction events
        for pattern in READS:
            for match in pattern.finditer(text):
                read.setdefault(match.group(1), str(path.relative_to(SRC)))
        for match in re.finditer(r"\.type in \(([^)]*)\)|SHOWN_EVENTS = \(([^)]*)\)", text):
            for name in re.findall(r"'([a-z_]+)'", match.group(1) or match.group(2)):
                read.setdefault(name, str(path.relative_to(SRC)))
    assert {'dialogue_turn', 'guide', 'recommendation', 'tour'} <= set(read)
    undeclared = {name: where for name, where in read.items() if name not in ev.EVENT_TYPES}
    assert not undeclared, f'read but never declared: {undeclared}'


def test_one_list_of_intents_read_by_the_dialogue_the_screen_and_chat():
    from retail_common.intents import Intent as Common
    from retail_dialogue import manager, nlu
    from retail_ui import model
    assert manager.Intent is Common and nlu.INTENTS is NLU_INTENTS and model.PRODUCT_INTENTS is PRODUCT_INTENTS
    assert set(NLU_INTENTS) <= set(INTENTS) and PRODUCT_INTENTS <= set(INTENTS)
    assert 'ask_stock' not in INTENTS                  # nothing produces it
