"""Incident recordings on the platform, on SQLite and PostgreSQL: a robot uploads its own
recordings (idempotent by key, checked against the content digest, bounded), the store's staff
list and download them, other stores and robots may not; the robot's uploader deletes a copy
only after the platform's receipt confirms it."""
from __future__ import annotations

import hashlib
import io
import json

import httpx
import pytest
from fastapi.testclient import TestClient
from mcap.reader import make_reader

from platform_support import ADMIN
from retail_common.incidents import MAX_INCIDENT_BYTES, content_digest, parse_content_digest
from retail_observe.incident_upload import upload_pending
from retail_observe.recording import McapRecorder
from retail_platform.app import create_app
from retail_platform.storage import Storage

STRING_DEF = 'string data\n'


def recording(text: str = 'hello', reasons=('bumper',)) -> bytes:
    out = io.BytesIO()
    recorder = McapRecorder(out)
    recorder.metadata('incident', {'reasons': json.dumps(list(reasons)), 'at_ns': '1'})
    recorder.add_topic('/chatter', 'std_msgs/msg/String', STRING_DEF, {'durability': 'volatile'})
    data = text.encode()
    recorder.write('/chatter', b'\0\1\0\0' + (len(data) + 1).to_bytes(4, 'little') + data + b'\0', 1_000)
    recorder.finish()
    return out.getvalue()


@pytest.fixture
def platform(engine_target):
    storage = Storage(engine_target)
    from retail_platform.database import upgrade
    upgrade(storage.engine)
    storage.add_store('s-1', 'Store one')
    storage.add_store('s-2', 'Store two')
    tokens = {'r-1': storage.issue_robot_token('r-1', 's-1'),
              'r-2': storage.issue_robot_token('r-2', 's-2'),
              'ann': storage.issue_staff_token('store_manager', 'ann', ['s-1']),
              'bob': storage.issue_staff_token('store_manager', 'bob', ['s-2'])}
    storage.close()
    with TestClient(create_app(engine_target, ADMIN), raise_server_exceptions=False) as client:
        yield client, {who: {'Authorization': f'Bearer {tok}'} for who, tok in tokens.items()}
        client.app.state.storage.close()


def post(client, headers, body: bytes, key='20261206T100000Z-bumper', digest=None, robot='r-1'):
    return client.post(f'/v1/robots/{robot}/incidents', content=body, headers={
        **headers, 'Idempotency-Key': key, 'Content-Digest': digest or content_digest(body),
        'Content-Type': 'application/octet-stream'})


def test_upload_is_idempotent_by_key_and_checked_by_hash(platform):
    client, who = platform
    body = recording()
    first = post(client, who['r-1'], body)
    assert first.status_code == 201, first.text
    receipt = first.json()
    assert receipt['sha256'] == hashlib.sha256(body).hexdigest() and receipt['reasons'] == ['bumper']
    assert receipt['store_id'] == 's-1' and not receipt['duplicate']
    again = post(client, who['r-1'], body)
    assert again.status_code == 200 and again.json()['duplicate'] and again.json()['id'] == receipt['id']
    other = post(client, who['r-1'], recording('other'))
    assert other.status_code == 409 and 'other content' in other.json()['detail']
    # the same key from another robot is that robot's own recording
    assert post(client, who['r-2'], body, robot='r-2').status_code == 201


def test_a_gzipped_upload_is_checked_against_the_digest_of_the_bytes_as_sent(platform):
    """RFC 9530: Content-Digest is of the content as sent, i.e. of the gzip bytes when the body
    is `Content-Encoding: gzip`; the digest of the decoded recording is refused (422) and nothing
    is stored. The receipt's sha256 stays that of the recording, so the same recording sent plain
    or gzipped at another level is a duplicate, not a conflict."""
    import gzip
    client, who = platform
    body = recording()
    sent = gzip.compress(body, compresslevel=1)
    gz = {**who['r-1'], 'Content-Encoding': 'gzip'}
    wrong = post(client, gz, sent, digest=content_digest(body))        # of the decoded bytes
    assert wrong.status_code == 422 and 'as sent' in wrong.json()['detail'], wrong.text
    assert client.get('/v1/stores/s-1/incidents', headers=who['ann']).json() == []
    first = post(client, gz, sent)                                      # of the gzip bytes
    assert first.status_code == 201, first.text
    assert first.json()['sha256'] == hashlib.sha256(body).hexdigest()
    download = client.get(f'/v1/stores/s-1/incidents/{first.json()["id"]}', headers=who['ann'])
    assert download.content == body
    for again in (post(client, who['r-1'], body),
                  post(client, gz, gzip.compress(body, compresslevel=9))):
        assert again.status_code == 200 and again.json()['duplicate'], again.text


@pytest.mark.parametrize('case, status', [
    ('wrong digest', 422), ('digest not sha-256', 422), ('not mcap', 422), ('truncated mcap', 422),
    ('bad key', 422), ('no key', 422), ('too large', 413), ('another robot', 403), ('no token', 401),
])
def test_bad_uploads_are_refused_and_nothing_is_stored(platform, case, status):
    client, who = platform
    body = recording()
    headers = {**who['r-1'], 'Idempotency-Key': 'k-1', 'Content-Digest': content_digest(body)}
    robot = 'r-1'
    if case == 'wrong digest':
        headers['Content-Digest'] = content_digest(b'something else')
    elif case == 'digest not sha-256':
        headers['Content-Digest'] = 'md5=:' + content_digest(body).split(':')[1] + ':'
    elif case == 'not mcap':
        body = b'not an mcap file at all'
        headers['Content-Digest'] = content_digest(body)
    elif case == 'truncated mcap':
        body = body[: len(body) // 2]
        headers['Content-Digest'] = content_digest(body)
    elif case == 'bad key':
        headers['Idempotency-Key'] = '../etc/passwd'
    elif case == 'no key':
        del headers['Idempotency-Key']
    elif case == 'too large':
        headers['Content-Length'] = str(MAX_INCIDENT_BYTES + 1)
    elif case == 'another robot':
        robot = 'r-2'
    elif case == 'no token':
        del headers['Authorization']
    answer = client.post(f'/v1/robots/{robot}/incidents', content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert client.get('/v1/stores/s-1/incidents', headers=who['ann']).json() == []


def test_store_staff_list_and_download_their_stores_incidents_only(platform):
    client, who = platform
    body = recording(reasons=['bumper', 'staff call'])
    incident = post(client, who['r-1'], body).json()
    listed = client.get('/v1/stores/s-1/incidents', headers=who['ann'])
    assert listed.status_code == 200 and [i['id'] for i in listed.json()] == [incident['id']]
    assert listed.json()[0]['reasons'] == ['bumper', 'staff call']
    download = client.get(f'/v1/stores/s-1/incidents/{incident["id"]}', headers=who['ann'])
    assert download.status_code == 200 and download.content == body
    assert parse_content_digest(download.headers['content-digest']) == hashlib.sha256(body).digest()
    reader = make_reader(io.BytesIO(download.content))
    assert [c.topic for _, c, _ in reader.iter_messages()] == ['/chatter']
    # HQ (admin) too; the other store's manager, robots, and a wrong store may not
    assert client.get(f'/v1/stores/s-1/incidents/{incident["id"]}',
                      headers={'Authorization': f'Bearer {ADMIN}'}).status_code == 200
    assert client.get('/v1/stores/s-1/incidents', headers=who['bob']).status_code == 403
    assert client.get(f'/v1/stores/s-1/incidents/{incident["id"]}', headers=who['bob']).status_code == 403
    assert client.get(f'/v1/stores/s-2/incidents/{incident["id"]}', headers=who['bob']).status_code == 404
    assert client.get('/v1/stores/s-1/incidents', headers=who['r-1']).status_code == 403


def test_the_robot_deletes_its_copy_only_after_the_receipt(platform, tmp_path):
    client, who = platform
    folder = tmp_path / 'incidents'
    folder.mkdir()
    good = folder / '20261206T100000Z-bumper.mcap'
    good.write_bytes(recording())
    broken = folder / '20261206T100100Z-lost.mcap'
    broken.write_bytes(b'cut short')
    (folder / '20261206T100200Z-lost.mcap.part').write_bytes(b'still being written')
    client.headers.update(who['r-1'])
    done, problems = upload_pending(client, 'http://testserver', 'r-1', folder)
    assert [u.path.name for u in done] == [good.name] and not good.exists()
    assert done[0].receipt.id >= 1
    # the platform refused the broken one: set aside, reported, not retried
    assert not broken.exists() and (folder / 'refused' / broken.name).exists()
    assert any('422' in p for p in problems)
    assert (folder / '20261206T100200Z-lost.mcap.part').exists()
    stored = client.get('/v1/stores/s-1/incidents', headers=who['ann']).json()
    assert [i['key'] for i in stored] == ['20261206T100000Z-bumper']


def test_a_robot_not_registered_or_a_wrong_token_keeps_its_copies(platform, tmp_path):
    client, who = platform
    folder = tmp_path / 'incidents'
    folder.mkdir()
    kept = [folder / '20261206T100000Z-bumper.mcap', folder / '20261206T100100Z-lost.mcap']
    for path in kept:
        path.write_bytes(recording(path.name))
    client.headers.update({'Authorization': f'Bearer {ADMIN}'})
    done, problems = upload_pending(client, 'http://testserver', 'r-unregistered', folder)
    assert done == [] and all(p.exists() for p in kept) and '404' in problems[0] and len(problems) == 1
    client.headers.update({'Authorization': 'Bearer wrong'})
    done, problems = upload_pending(client, 'http://testserver', 'r-1', folder)
    assert done == [] and all(p.exists() for p in kept) and '401' in problems[0]
    assert not (folder / 'refused').exists()


def test_a_platform_that_is_down_leaves_the_copies(tmp_path):
    folder = tmp_path / 'incidents'
    folder.mkdir()
    kept = folder / '20261206T100000Z-bumper.mcap'
    kept.write_bytes(recording())
    with httpx.Client(timeout=2) as client:    # nothing listens on port 9 of loopback
        done, problems = upload_pending(client, 'http://127.0.0.1:9', 'r-1', folder)
    assert done == [] and kept.exists() and 'kept for later' in problems[0]


def test_the_incident_recorder_uploads_a_bumper_press_on_request(ros_context, spin, tmp_path):
    """End to end on a real graph and a real platform process: bumper pressed, the recording
    written, the upload service called, the robot's copy gone, the store manager reads it back."""
    import math

    import rclpy
    from mcap_ros2.decoder import DecoderFactory
    from rclpy.parameter import Parameter
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import LaserScan
    from std_srvs.srv import Trigger

    from platform_support import start_server
    from retail_interfaces.msg import BaseSafety
    from retail_observe.incident_node import IncidentRecorderNode
    from retail_ros.qos import LATCHED
    from rostest_support import wait_for

    database = str(tmp_path / 'platform.sqlite3')
    storage = Storage(database)
    from retail_platform.database import upgrade
    upgrade(storage.engine)
    storage.add_store('s-1', 'Store one')
    (tmp_path / 'sync').mkdir()
    (tmp_path / 'sync' / 'token').write_text(storage.issue_robot_token('r-1', 's-1') + '\n')
    manager = {'Authorization': f'Bearer {storage.issue_staff_token("store_manager", "ann", ["s-1"])}'}
    storage.close()
    server = start_server(database)
    try:
        talker = rclpy.create_node('talker', context=ros_context)
        scan_pub = talker.create_publisher(LaserScan, '/scan', qos_profile_sensor_data)
        safety_pub = talker.create_publisher(BaseSafety, '/navigation/safety', LATCHED)
        talker.create_timer(0.05, lambda: scan_pub.publish(LaserScan(ranges=[2.0, math.inf])))
        upload = talker.create_client(Trigger, '/incident_recorder/upload')
        recorder = IncidentRecorderNode(context=ros_context, parameter_overrides=[
            Parameter('data_dir', value=str(tmp_path)), Parameter('before_s', value=1.0),
            Parameter('after_s', value=1.0), Parameter('platform_url', value=server.url),
            Parameter('robot_id', value='r-1'),
            Parameter('token_file', value=str(tmp_path / 'sync' / 'token'))])
        spin(talker, recorder)
        wait_for(lambda: len(recorder.buffer.ring) > 10, 20, 'scans in the ring')
        safety_pub.publish(BaseSafety(bumper_centre=True, latched=True, reason='bumper'))
        written = wait_for(lambda: recorder.written, 20, 'the incident file')[0]
        assert upload.wait_for_service(timeout_sec=20)
        future = upload.call_async(Trigger.Request())
        wait_for(future.done, 60, 'the upload answer')
        answer = future.result()
        assert answer.success and 'is incident 1' in answer.message, answer.message
        assert not written.exists()
        with server.client() as client:
            listed = client.get('/v1/stores/s-1/incidents', headers=manager).json()
            assert [i['reasons'] for i in listed] == [['bumper']]
            body = client.get(f'/v1/stores/s-1/incidents/{listed[0]["id"]}', headers=manager).content
        decoded = [(c.topic, m) for _, c, _, m in
                   make_reader(io.BytesIO(body), decoder_factories=[DecoderFactory()]).iter_decoded_messages()]
        assert any(t == '/navigation/safety' and m.bumper_centre for t, m in decoded)
        assert sum(t == '/scan' for t, _ in decoded) > 10
        # asked again: nothing waits
        again = upload.call_async(Trigger.Request())
        wait_for(again.done, 30, 'the second answer')
        assert again.result().message == 'no incident recordings waiting'
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)
