"""Every interaction event a robot package produces goes through one typed path: a payload model of
`retail_common.events` handed to `retail_ros.event_sender.EventSender` (its `send` takes only a
model), stored by the sync agent with the contract checked. This test fails when a producer builds
the message itself or switches the contract check off (the one escape hatch, `contract=False`, is
for the outbox's salvage of rows it had already checked, and for tests and benches)."""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / 'src'
# The one module that builds retail_interfaces/InteractionEvent messages.
MESSAGE_BUILDERS = {'ros/retail_ros/event_sender.py'}
# Modules allowed to store events without their contract: the salvage of an outbox's own rows.
GENERIC_STORES = {'sync/retail_sync/outbox.py'}


def _calls(path: Path):
    tree = ast.parse(path.read_text(encoding='utf-8'), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _name(call: ast.Call) -> str:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ''


def test_only_the_event_sender_builds_interaction_event_messages():
    builders = {str(p.relative_to(SRC)) for p in SRC.rglob('*.py')
                if any(_name(c) == 'InteractionEvent' for c in _calls(p))}
    assert builders <= MESSAGE_BUILDERS, (
        f'{sorted(builders - MESSAGE_BUILDERS)} build InteractionEvent messages themselves: send a '
        'retail_common.events payload model through retail_ros.event_sender.EventSender instead')


def test_no_robot_module_stores_events_without_their_contract():
    loose = set()
    for path in SRC.rglob('*.py'):
        for call in _calls(path):
            for kw in call.keywords:
                if kw.arg == 'contract' and isinstance(kw.value, ast.Constant) and kw.value.value is False:
                    loose.add(str(path.relative_to(SRC)))
    assert loose <= GENERIC_STORES, f'{sorted(loose - GENERIC_STORES)} store events without checking their contract'


def test_the_event_sender_refuses_anything_but_a_payload_model():
    source = (SRC / 'ros/retail_ros/event_sender.py').read_text(encoding='utf-8')
    send = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name == 'send')
    checks = [n for n in ast.walk(send) if isinstance(n, ast.Call) and _name(n) == 'isinstance'
              and any(isinstance(a, ast.Name) and a.id == 'EventPayload' for a in n.args)]
    assert checks, 'EventSender.send must refuse what is not a retail_common.events payload model'
