"""Recordings are pseudonymous by construction: a member's name and words never reach an MCAP file,
nor her member id (an alias of that recording only), and every identity-like field of the interfaces is classified."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rcl_interfaces.msg import Log
from rclpy.serialization import serialize_message
from retail_interfaces.msg import CustomerEvent, InteractionEvent, RobotReply, StaffRequest, Utterance
from sensor_msgs.msg import LaserScan

from retail_observe.graph import definition_of
from retail_observe.recording import McapRecorder
from retail_observe.recording_privacy import FIELDS, IDENTITY_LIKE, KEEP

INTERFACES = Path(__file__).resolve().parents[2] / 'src' / 'interfaces'
NAME, SURNAME_FORM, PHONE, MEMBER = '王芳', '王女士', '13800138000', 'm-000002'


def fields_of(text: str) -> list[tuple[str, str]]:
    """(type, name) of each field of a .msg/.action section (constants and comments left out)."""
    found = []
    for line in text.splitlines():
        parts = line.split('#')[0].split(None, 2)
        if len(parts) < 2 or '=' in parts[1] or (len(parts) == 3 and parts[2].startswith('=')):
            continue                      # blank, comment or a constant (NAME=1, NAME = 1)
        found.append((parts[0].split('[')[0], parts[1]))
    return found


def unclassified(type_name: str, text: str) -> list[str]:
    """Identity-like fields of one type that the table does not decide."""
    rules = FIELDS.get(type_name, {})
    return [f'{type_name}.{name}' for _, name in fields_of(text) if IDENTITY_LIKE.search(name) and name not in rules]


def interface_types() -> list[tuple[str, str]]:
    """(type name, definition) of every message the robot publishes on topics: .msg, and the
    goal/result/feedback of each .action (published on its hidden topics)."""
    types = [(f'retail_interfaces/msg/{p.stem}', p.read_text(encoding='utf-8'))
             for p in sorted((INTERFACES / 'msg').glob('*.msg'))]
    for path in sorted((INTERFACES / 'action').glob('*.action')):
        for part, section in zip(('Goal', 'Result', 'Feedback'), path.read_text(encoding='utf-8').split('---')):
            types.append((f'retail_interfaces/action/{path.stem}_{part}', section))
    return types


def test_every_identity_like_field_of_the_interfaces_is_classified():
    assert len(interface_types()) >= 12
    scanned = {f'{t}.{name}' for t, text in interface_types() for _, name in fields_of(text) if IDENTITY_LIKE.search(name)}
    assert {'retail_interfaces/msg/CustomerEvent.display_name', 'retail_interfaces/msg/RobotReply.text',
            'retail_interfaces/msg/InteractionEvent.customer_pseudonym'} <= scanned
    missing = [field for type_name, text in interface_types() for field in unclassified(type_name, text)]
    assert not missing, ('fields that may carry a member identity are not classified in '
                         f'retail_observe/recording_privacy.py FIELDS: {missing}')


def test_no_interface_nests_an_identity_carrying_type():
    """The rules apply to a message's own fields: a type nesting a classified one would slip past."""
    classified = {name.split('/')[-1] for name, rules in FIELDS.items() if any(r != KEEP for r in rules.values())}
    nesting = [f'{type_name}.{name}' for type_name, text in interface_types() for kind, name in fields_of(text)
               if kind.split('/')[-1] in classified]
    assert not nesting


@pytest.mark.parametrize('text,found', [
    ('string member_name\nfloat32 x', ['pkg/msg/New.member_name']),
    ('string customer_id  # id', ['pkg/msg/New.customer_id']),
    ('string[] said_texts', ['pkg/msg/New.said_texts']),
    ('string NAME="x"\nstring TEXT = "y"\nuint8 kind', []),
    ('string<=64 display_name "guest"  # a default value', ['pkg/msg/New.display_name']),
    ('string[<=3] texts', ['pkg/msg/New.texts']),
    ('string zone\nstd_msgs/Header header', []),
])
def test_the_scan_flags_a_new_unclassified_field(text, found):
    assert unclassified('pkg/msg/New', text) == found


def _record(messages: list[tuple[str, str, object]]) -> tuple[bytes, McapRecorder]:
    out = io.BytesIO()
    recorder = McapRecorder(out)
    for topic, type_name, message in messages:
        recorder.add_topic(topic, type_name, definition_of(type_name), {})
        data = message if isinstance(message, bytes) else serialize_message(message)
        recorder.write(topic, data, 1_000 + recorder.messages)
    recorder.finish()
    return out.getvalue(), recorder


def _decoded(data: bytes) -> list[tuple[str, object]]:
    reader = make_reader(io.BytesIO(data), decoder_factories=[DecoderFactory()])
    return [(channel.topic, msg) for _, channel, _, msg in reader.iter_decoded_messages()]


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in _strings(item)]
    if hasattr(value, '__slots__') or hasattr(value, '__dict__'):
        names = getattr(value, '__slots__', None) or vars(value).keys()
        return [s for name in names for s in _strings(getattr(value, name))]
    return []


def _member_day() -> list[tuple[str, str, object]]:
    event = CustomerEvent(kind=CustomerEvent.IDENTIFIED, track_id=7, customer_id=MEMBER, display_name=NAME,
                          vip=True, confidence=0.91, distance_m=1.4)
    turn = json.dumps({'text': f'我是{NAME}，电话{PHONE}', 'intent': 'identify'}, ensure_ascii=False)
    return [
        ('/perception/customer_events', 'retail_interfaces/msg/CustomerEvent', event),
        ('/dialogue/replies', 'retail_interfaces/msg/RobotReply',
         RobotReply(text=f'{SURNAME_FORM}您好，{NAME}，欢迎回来', language='zh', intent='greet', track_id=7)),
        ('/dialogue/utterances', 'retail_interfaces/msg/Utterance',
         Utterance(text=f'我是{NAME}，电话{PHONE}', language='zh', is_final=True, track_id=7, catalog_text=NAME)),
        ('/interactions', 'retail_interfaces/msg/InteractionEvent',
         InteractionEvent(type='dialogue_turn', customer_pseudonym=MEMBER, payload_json=turn, source='dialogue')),
        ('/staff/requests', 'retail_interfaces/msg/StaffRequest',
         StaffRequest(reason='vip_checkin_on_time', track_id=7, customer_pseudonym=MEMBER, looking_for=f'{NAME}的订单',
                      recent=[NAME, 'P60'], shown=['HW-P60'], product_name='华为 P60')),
        ('/rosout', 'rcl_interfaces/msg/Log', Log(name='asr', msg=f'Customer said (zh): 我是{NAME}')),
        ('/scan', 'sensor_msgs/msg/LaserScan', LaserScan(ranges=[1.0, 2.0])),
    ]


def test_a_member_greeted_by_name_is_pseudonymous_in_the_recording():
    data, recorder = _record(_member_day())
    decoded = _decoded(data)
    assert [topic for topic, _ in decoded] == [topic for topic, _, _ in _member_day()]   # nothing dropped
    everything = ' '.join(s for _, msg in decoded for s in _strings(msg))
    assert 'greet' in everything and 'vip_checkin_on_time' in everything
    for secret in (NAME, SURNAME_FORM, PHONE, '王', MEMBER, MEMBER[2:]):
        assert secret not in everything
    by_topic = dict(decoded)
    # Her id is an alias of this recording, the same on every topic; her event otherwise kept for the replay.
    event = by_topic['/perception/customer_events']
    assert (event.customer_id, event.display_name, event.vip, event.track_id) == ('alias-1', '', True, 7)
    assert by_topic['/interactions'].customer_pseudonym == by_topic['/staff/requests'].customer_pseudonym == 'alias-1'
    reply = by_topic['/dialogue/replies']
    assert (reply.text, reply.intent, reply.language) == (f'[{len(f"{SURNAME_FORM}您好，{NAME}，欢迎回来")} characters]',
                                                          'greet', 'zh')
    staff = by_topic['/staff/requests']
    assert staff.recent == ['[2 characters]', '[3 characters]'] and staff.product_name == '华为 P60'
    assert by_topic['/rosout'].name == 'asr' and by_topic['/scan'].ranges == [1.0, 2.0]
    assert recorder.withheld == {} and recorder.per_topic['/perception/customer_events'] == 1


def test_an_unreadable_identity_message_is_withheld_and_counted_never_written_raw():
    good = serialize_message(CustomerEvent(customer_id=MEMBER, display_name=NAME))
    hostile = good[:12] + b'\xff\xff\xff\x7f' + NAME.encode()     # a string length far past the end
    data, recorder = _record([('/perception/customer_events', 'retail_interfaces/msg/CustomerEvent', hostile),
                              ('/perception/customer_events', 'retail_interfaces/msg/CustomerEvent', good)])
    assert recorder.withheld == {'/perception/customer_events': 1}
    assert [msg.display_name for _, msg in _decoded(data)] == ['']
    raw = [message.data for _, _, message in make_reader(io.BytesIO(data)).iter_messages()]
    assert len(raw) == 1 and NAME.encode() not in raw[0]


def test_a_type_without_identity_is_written_byte_for_byte():
    scan = serialize_message(LaserScan(ranges=[0.5]))
    data, _ = _record([('/scan', 'sensor_msgs/msg/LaserScan', scan)])
    reader = make_reader(io.BytesIO(data))
    assert [message.data for _, _, message in reader.iter_messages()] == [scan]


def test_each_recording_gives_its_own_aliases_and_no_id_links_two_recordings():
    """Two members in one recording are two aliases; the same member in another recording is
    not recognisable by her alias there (the order of appearance decides it), and an anonymous
    customer ('' as id) stays ''."""
    other = 'm-000777'
    first = [('/perception/customer_events', 'retail_interfaces/msg/CustomerEvent',
              CustomerEvent(kind=CustomerEvent.IDENTIFIED, track_id=track, customer_id=member))
             for track, member in ((1, MEMBER), (2, other), (3, MEMBER), (4, ''))]
    second = [first[1], first[0]]
    ids_first = [msg.customer_id for _, msg in _decoded(_record(first)[0])]
    ids_second = [msg.customer_id for _, msg in _decoded(_record(second)[0])]
    assert ids_first == ['alias-1', 'alias-2', 'alias-1', '']
    assert ids_second == ['alias-1', 'alias-2']      # she is alias-2 here, alias-1 there
