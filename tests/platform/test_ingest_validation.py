"""The ingest's quick validation (one pass over each event's JSON text) never lets through what
the exact checks (retail_sync.outbox.check_tree, retail_sync.privacy) refuse: a table of
variants, each a test; clean events get the same stored text either way."""
from __future__ import annotations

import json

import pytest

from retail_platform.app import _clean_text, _validate_event
from retail_sync.outbox import MAX_DEPTH, OutboxError, check_tree
from retail_sync.privacy import find_face_data


def nested(levels: int) -> dict:
    data: dict = {'leaf': 1}
    for _ in range(levels - 1):
        data = {'a': data}
    return data


JPEG = '/9j/' + 'A' * 80
REFUSED = {
    'face key': {'embedding': [0.1, 0.2]},
    'face key upper case': {'FACE': 'x'},
    'face key with hyphen and spaces': {'Face-Encoding': [1, 2]},
    'face key with a tab': {'face\tcrop': 1},
    'face key deep in a list': {'people': [{'id': 1, 'snapshot': 'x'}]},
    'landmarks': {'face_landmarks': [[1, 2]]},
    'data:image value': {'note': 'see DATA:IMAGE/png;base64,AAAA'},
    'base64 jpeg': {'blob': JPEG},
    'long base64 with a newline': {'blob': 'QUJD' * 100 + '\n' + 'QUJD' * 100},
    'long base64 with unicode space': {'blob': 'QUJD' * 100 + '\u3000' + 'QUJD' * 100},
    '16 floats': {'v': [0.5] * 16},
    '16 floats in exponent form': {'v': [1e-05] * 16},
    '16 large floats': {'v': [1e+16] * 16},
    'nested too deep': nested(MAX_DEPTH + 1),
    'NaN': {'x': float('nan')},
    'infinity in a list': {'x': [1.0, float('inf')]},
    'lone surrogate value': {'t': 'x\ud800'},
    'lone surrogate key': {'\udfff': 1},
}


def exact_refuses(data: dict) -> bool:
    try:
        check_tree(data, 'data', MAX_DEPTH)
    except OutboxError:
        return True
    return find_face_data(data, 'data') is not None


@pytest.mark.parametrize('name', REFUSED)
def test_what_the_exact_checks_refuse_never_passes_the_quick_one(name):
    data = REFUSED[name]
    assert exact_refuses(data), 'the table entry must be one the exact checks refuse'
    assert _clean_text(data) is None
    with pytest.raises(Exception) as refused:
        _validate_event({'event_id': 'e', 'seq': 1, 'type': 'greeting', 'time': 1.0,
                         'data': data}, 0)
    assert 'events[0]: ' in str(refused.value.detail)


CLEAN = {
    'dialogue turn': {'intent': 'find_product', 'language': 'zh', 'confidence': 0.82,
                      'text': '有没有华为 Mate 60 Pro，五千左右的',
                      'products': [{'sku': 'HW-MATE60P', 'price_cny': 5999.0, 'zone': 'phones'}]},
    'guide': {'zone': 'kitchen', 'status': 'ended', 'success': True, 'distance_m': 23.5},
    'empty': {},
    'nested at the limit': nested(MAX_DEPTH),
    '15 floats': {'v': [0.5] * 15},
    'short base64-like id': {'sku': 'A' * 63},
}


@pytest.mark.parametrize('name', CLEAN)
def test_clean_events_are_stored_as_the_exact_path_would(name):
    data = CLEAN[name]
    assert not exact_refuses(data)
    expected = json.dumps(data, ensure_ascii=False, separators=(',', ':'), allow_nan=False)
    text = _clean_text(data)
    assert text in (expected, None)        # None only means: the exact checks run (and pass)
    row = _validate_event({'event_id': 'e', 'seq': 1, 'type': 'greeting', 'time': 1.0,
                           'data': data}, 0)
    assert row[5] == expected
