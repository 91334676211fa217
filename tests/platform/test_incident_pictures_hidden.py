"""Attack round s13: an incident recording was refused when a channel's ROS 2 schema named a
camera image type or it carried an attachment, but a picture put where no schema says what it
is went through and was stored: a channel with no schema (schema id 0: its messages are opaque
bytes), a channel whose schema is not a ROS 2 message definition (a JSON schema, protobuf: the
check reads ROS 2 definitions only), a metadata record holding a base64 JPEG, a JPEG in the
bytes of a message of a harmless-looking type (a string, a `uint8[]` field). The robot's
recorder writes none of these (ros2msg schemas, CDR messages, the `incident` and parameters
records) and its messages hold no JPEG or PNG; each is now refused 422 naming the channel or
record, nothing stored. A real `serve`
process and a real HTTP client."""
from __future__ import annotations

import base64
import io

import pytest
from mcap.writer import Writer

from loop_support import chain
from platform_support import ADMIN, start_server
from retail_common.incidents import content_digest
from rostest_support import stop_process

JPEG = b'\xff\xd8\xff\xe0\x00\x10JFIF\x00' + bytes(range(256)) * 8


def recording(kind: str) -> bytes:
    out = io.BytesIO()
    writer = Writer(out)
    writer.start('ros2', 'test')
    sid = writer.register_schema('std_msgs/msg/String', 'ros2msg', b'string data\n')
    cid = writer.register_channel('/chatter', 'cdr', sid)
    writer.add_message(cid, log_time=1, data=b'\0\1\0\0\x03\0\0\0hi\0', publish_time=1)
    if kind == 'no schema':
        cid = writer.register_channel('/blob', 'application/octet-stream', 0)
        writer.add_message(cid, log_time=2, data=JPEG, publish_time=2)
    elif kind == 'json schema':
        sid = writer.register_schema('Picture', 'jsonschema', b'{"type": "object"}')
        cid = writer.register_channel('/picture', 'json', sid)
        writer.add_message(cid, log_time=2, publish_time=2, data=(
            b'{"data": "' + base64.b64encode(JPEG) + b'"}'))
    elif kind == 'string message':
        text = b'data:image/jpeg;base64,' + base64.b64encode(JPEG) + b'\0'
        writer.add_message(cid, log_time=2, publish_time=2,
                           data=b'\0\1\0\0' + len(text).to_bytes(4, 'little') + text)
    elif kind == 'bytes field':
        sid = writer.register_schema('my_msgs/msg/Blob', 'ros2msg', b'uint8[] data\n')
        cid = writer.register_channel('/blob', 'cdr', sid)
        writer.add_message(cid, log_time=2, publish_time=2,
                           data=b'\0\1\0\0' + len(JPEG).to_bytes(4, 'little') + JPEG)
    elif kind == 'metadata':
        writer.add_metadata('notes', {'snap': base64.b64encode(JPEG).decode()})
    writer.add_metadata('incident', {'reasons': '["bumper"]'})
    writer.finish()
    return out.getvalue()


@pytest.mark.parametrize('kind, named', [
    ('no schema', '/blob'), ('json schema', '/picture'), ('metadata', 'notes'),
    ('string message', '/chatter'), ('bytes field', '/blob'), ('clean', '')])
def test_a_picture_hidden_in_an_incident_recording_is_refused(tmp_path, kind, named):
    database = str(tmp_path / 'platform.sqlite3')
    tokens = chain(database)
    server = start_server(database)
    try:
        body = recording(kind)
        answer = server.client(tokens['robot']).post(
            '/v1/robots/robot-1/incidents', content=body, headers={
                'Idempotency-Key': 'k-1', 'Content-Digest': content_digest(body),
                'Content-Type': 'application/octet-stream'})
        stored = server.client(ADMIN).get('/v1/stores/s-1/incidents').json()
        if not named:
            assert answer.status_code == 201, answer.text
            assert len(stored) == 1
            return
        assert answer.status_code == 422, answer.text
        assert named in answer.json()['detail'] and '\n' not in answer.json()['detail']
        assert stored == []
    finally:
        stop_process(server.process)
