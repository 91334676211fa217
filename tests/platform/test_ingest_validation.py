"""The ingest's quick validation (one pass over each event's JSON text) never lets through what
the exact checks (retail_sync.outbox.check_tree, retail_sync.privacy) refuse: a table of
variants, each a test; clean events get the same stored text either way."""
from __future__ import annotations

import json
import random
import struct

import pytest
from fastapi import HTTPException

from retail_platform.app import _clean_text, _validate_event, canonical_json, decode_batch, parse_json
from retail_platform.storage import EventRow, Rejected
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
    'data:image with a dotless i': {'note': 'data:\u0131mage/gif;base64,AAAA'},
    'data:image with a dotted capital I': {'note': 'data:\u0130mage/gif;base64,AAAA'},
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
    'small floats (exponent forms json.dumps writes its own way)': {
        'v': [1e-05, 1.5e-07, 0.00012, -3e-300, 5e-324, 1e+16, 0.0001]},
    'text that looks like a small float': {'note': 'pre-order 0.00001 NaN Infinity'},
    'big integer': {'n': 2 ** 70, 'm': -(2 ** 63)},
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


def test_the_canonical_text_is_what_json_dumps_writes():
    """canonical_json (pydantic_core's serialiser where it writes the same) against json.dumps:
    every float form (random bit patterns, every exponent), random text and keys."""
    rng = random.Random(22)
    floats = [struct.unpack('d', struct.pack('Q', rng.getrandbits(64)))[0] for _ in range(20000)]
    floats += [float(f'{m}e{e}') * sign for e in range(-324, 308) for m in (1, 1.5, 9.87654321)
               for sign in (1, -1)]
    floats = [f for f in floats if f == f and abs(f) != float('inf')]
    chars = [chr(i) for i in range(0x250)] + ['\u2028', '\ufeff', '\U0001f600', '华', '"', '\\']
    texts = [''.join(rng.choice(chars) for _ in range(rng.randint(0, 12))) for _ in range(3000)]
    values = [{'f': f} for f in floats] + [{t: [t, {'k': t}], 'n': [1, True, None, 2 ** 64]}
                                           for t in texts]
    for value in values:
        assert canonical_json(value) == json.dumps(value, ensure_ascii=False,
                                                   separators=(',', ':'), allow_nan=False)
    for refused in ({'x': float('nan')}, {'x': [float('-inf')]}):
        with pytest.raises(ValueError):
            canonical_json(refused)
    assert canonical_json({'x': 'a\ud800'}) == '{"x":"a\ud800"}'     # as json.dumps: not encodable


BODIES = [b'{"events":[]}', b'{"a":NaN,"b":-Infinity,"c":1e400}', b'{"a":1,"a":2}',
          b'{"big":123456789012345678901234567890,"f":0.1000000000000000055511151231257827}',
          b'{"t":"\\ud800"}', b'{"t":"\\udc00\\ud800","u":"\\ud83d\\ude00"}',
          b'\xef\xbb\xbf{"bom":1}', b'"\xed\xa0\x80"', b'[' * 300 + b']' * 300, b'{"a":"\\u0000"}']


@pytest.mark.parametrize('body', BODIES)
def test_the_body_parses_as_json_loads_parses_it(body):
    assert repr(parse_json(body)) == repr(json.loads(body))


@pytest.mark.parametrize('body', [b'', b'{"a":1} x', b'[1,]', b'{"a":"\xff"}', b'nan', b'{"a":"x\ny"}'])
def test_what_json_loads_refuses_is_refused(body):
    with pytest.raises(ValueError):
        parse_json(body)


def test_a_batch_answers_each_event_and_says_what_is_wrong_with_the_body():
    good = {'event_id': 'e1', 'seq': 1, 'type': 'greeting', 'time': 1.0,
            'data': {'member': True, 'vip': False, 'appointment': False}}
    body = ('{"events":[' + json.dumps(good) + ',{"event_id":"e2","seq":2,"type":"greeting",'
            '"time":1.0,"data":{"t":"\\ud800"}}]}').encode()
    first, second = decode_batch(body, contracts=False)
    assert isinstance(first, EventRow) and first.data == canonical_json(good['data'])
    assert isinstance(second, Rejected) and second.event_id == 'e2'
    assert 'lone surrogate' in second.reason
    for bad, code, words in ((b'{"events":', 400, 'not JSON'), (b'[1]', 422, 'body must be'),
                             (b'{"events":' + b'[' * 5000 + b']' * 5000 + b'}', 422,
                              'nested too deeply')):
        with pytest.raises(HTTPException) as refused:
            decode_batch(bad)
        assert refused.value.status_code == code and words in refused.value.detail


def test_the_written_out_face_word_test_is_the_tuple_of_face_words():
    """_has_face_word (the quick test's words, written out for speed) finds exactly what a
    search for each of _FACE_WORDS finds: every word alone, inside text, and text without."""
    from retail_platform.app import _FACE_WORDS, _has_face_word
    rng = random.Random(7)
    texts = ['', 'kitchen', '{"zone":"phones","status":"ended"}', '有没有华为 mate 60 pro']
    for word in _FACE_WORDS:
        texts += [word, f'x{word}y', '{"a":"' + word[:-1] + '"}']
    alphabet = 'abcdefgijklmnoprstuwy:/ı̇'
    texts += [''.join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(3000)]
    for text in texts:
        assert _has_face_word(text) == any(word in text for word in _FACE_WORDS), text
