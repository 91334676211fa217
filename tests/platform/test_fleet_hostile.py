"""Fleet operations as a careless operator or a hostile robot would use them, on SQLite and
PostgreSQL: a robot moved to another group converges on that group's content (desired-state
versions are chain-wide: the robot knows a document only by its number), and an incident upload
that could show a face (an image channel, an image inside a message, an attachment) is refused."""
from __future__ import annotations

import io
import json

import pytest
from fastapi.testclient import TestClient
from mcap.writer import Writer

from platform_support import ADMIN
from retail_common.incidents import content_digest, image_problem
from retail_platform.app import create_app
from retail_platform.storage import Storage
from retail_sync.fleet import Heartbeat
from retail_sync.fleet_link import DESIRED_FILE, FleetLink

A = {'Authorization': f'Bearer {ADMIN}'}


@pytest.fixture
def platform(engine_target):
    storage = Storage(engine_target)
    from retail_platform.database import upgrade
    upgrade(storage.engine)
    storage.add_store('s-1', 'Store one')
    robots = {r: storage.issue_robot_token(r, 's-1') for r in ('r-1', 'r-2')}
    storage.close()
    with TestClient(create_app(engine_target, ADMIN), raise_server_exceptions=False) as client:
        yield client, {r: {'Authorization': f'Bearer {tok}'} for r, tok in robots.items()}
        client.app.state.storage.close()


def _roll(client, group: str, robots: list[str], greeting: str) -> dict:
    assert client.put(f'/v1/admin/fleet/groups/{group}', headers=A, json={'robots': robots}).status_code == 200
    made = client.post(f'/v1/admin/fleet/groups/{group}/desired', headers=A,
                       json={'content': {'greetings': {'anonymous': {'en': greeting}}}})
    assert made.status_code == 200, made.text
    rollout = client.post(f'/v1/admin/fleet/groups/{group}/rollouts', headers=A,
                          json={'version': made.json()['version'], 'soak_s': 0})
    assert rollout.status_code == 200, rollout.text
    return rollout.json()


@pytest.mark.parametrize('second', ['another group', 'the same group'])
def test_a_robot_moved_to_another_group_runs_that_groups_content(platform, tmp_path, second):
    """Each group used to number its versions from 1: a robot running group g1's v1, moved to g2
    whose first version is also v1, was told 'v1' and kept g1's greeting while g2's rollout said
    done (and its ETag "v1" answered 304)."""
    client, robots = platform
    client.headers.update(robots['r-1'])
    link = FleetLink('http://testserver', '', 'r-1', tmp_path, client=client, log=lambda _: None)

    def beat() -> None:
        answer = link.heartbeat(Heartbeat(period_s=30))
        link.apply_desired(answer.desired_version)
    try:
        first = _roll(client, 'g1', ['r-1'], 'hello from g1')
        beat(), beat()
        assert client.get(f'/v1/admin/fleet/rollouts/{first["id"]}', headers=A).json()['state'] == 'done'
        group = 'g2' if second == 'another group' else 'g1'
        rollout = _roll(client, group, ['r-1'], 'hello from the new content')
        assert rollout['running'] == 0          # nobody runs the new version yet
        beat(), beat()
        runs = json.loads((tmp_path / DESIRED_FILE).read_text())['content']['greetings']
        assert runs['anonymous']['en'] == 'hello from the new content'
        state = client.get(f'/v1/admin/fleet/rollouts/{rollout["id"]}', headers=A).json()
        assert state['state'] == 'done' and state['running'] == 1
    finally:
        link.calls.close()


IMAGE_DEF = b'std_msgs/Header header\nstring format\nuint8[] data\n'


def recording(schemas: list[tuple[str, bytes]], attachment: str | None = None) -> bytes:
    out = io.BytesIO()
    writer = Writer(out)
    writer.start('ros2', 'test')
    for i, (name, text) in enumerate(schemas):
        sid = writer.register_schema(name, 'ros2msg', text)
        cid = writer.register_channel(f'/t{i}', 'cdr', sid)
        writer.add_message(cid, log_time=1, data=b'\0\1\0\0', publish_time=1)
    if attachment:
        writer.add_attachment(create_time=1, log_time=1, name='x', media_type=attachment,
                              data=b'\xff\xd8\xff')
    writer.add_metadata('incident', {'reasons': '["bumper"]'})
    writer.finish()
    return out.getvalue()


OK = ('std_msgs/msg/String', b'string data\n')
CAMERA_INFO = ('sensor_msgs/msg/CameraInfo', b'# goes with sensor_msgs/Image topics\nuint32 height\n')


@pytest.mark.parametrize('schemas, attachment, refused', [
    ([OK], None, ''),
    ([OK, CAMERA_INFO], None, ''),                        # a comment naming an image type is fine
    ([('retail_interfaces/msg/CustomerEvent', b'sensor_msgs/RegionOfInterest box  # face box in the image\n')],
     None, ''),
    ([OK, ('sensor_msgs/msg/Image', IMAGE_DEF)], None, 'sensor_msgs/msg/Image'),
    ([('sensor_msgs/msg/CompressedImage', IMAGE_DEF)], None, 'sensor_msgs/msg/CompressedImage'),
    ([('sensor_msgs/CompressedImage', IMAGE_DEF)], None, 'sensor_msgs/CompressedImage'),
    ([('foxglove.CompressedImage', b'')], None, 'foxglove.CompressedImage'),
    ([('foxglove.RawImage', b'')], None, 'foxglove.RawImage'),
    ([('foxglove_msgs/msg/CompressedVideo', b'')], None, 'foxglove_msgs/msg/CompressedVideo'),
    ([('my_pkg/msg/Snapshot', b'sensor_msgs/Image[] frames\n')], None, 'holds sensor_msgs/Image'),
    ([('my_pkg/msg/Snap', b'int32 a\n====\nMSG: sensor_msgs/msg/CompressedImage\nuint8[] data\n')],
     None, 'holds sensor_msgs/msg/CompressedImage'),
    ([OK], 'image/jpeg', 'attachments'),
    ([OK], 'application/octet-stream', 'attachments'),
])
def test_an_incident_that_could_show_a_face_is_refused(platform, schemas, attachment, refused):
    client, robots = platform
    body = recording(schemas, attachment)
    answer = client.post('/v1/robots/r-1/incidents', content=body, headers={
        **robots['r-1'], 'Idempotency-Key': 'k-1', 'Content-Digest': content_digest(body),
        'Content-Type': 'application/octet-stream'})
    if not refused:
        assert answer.status_code == 201, answer.text
        return
    assert answer.status_code == 422 and refused in answer.json()['detail'], answer.text
    assert client.get('/v1/stores/s-1/incidents', headers=A).json() == []


def test_image_problem_names_the_type():
    assert image_problem('sensor_msgs/msg/Image', '') == 'sensor_msgs/msg/Image'
    assert image_problem('std_msgs/msg/String', 'string data # not sensor_msgs/Image') == ''


def _call(client, robots, call_id: str, wanted: str = 'a kettle') -> int:
    answer = client.post('/v1/robots/r-1/staff-calls', headers=robots['r-1'],
                         json={'call_id': call_id, 'reason': 'product_help', 'wanted': wanted})
    assert answer.status_code == 200, answer.text
    return answer.json()['id']


@pytest.mark.parametrize('kind', ['answer', 'say'])
def test_a_closed_call_is_not_answered_and_the_robot_says_nothing(platform, kind):
    client, robots = platform
    call = _call(client, robots, 'c-1')
    assert client.post(f'/v1/stores/s-1/staff-calls/{call}/close', headers=A).status_code == 200
    answer = client.post(f'/v1/stores/s-1/staff-calls/{call}/reply', headers=A,
                         json={'kind': kind, 'text': 'coming in 2 minutes'})
    assert answer.status_code == 409 and 'closed' in answer.json()['detail']
    assert client.get('/v1/robots/r-1/staff-messages', headers=robots['r-1']).json() == []


def test_an_old_open_call_stays_on_the_store_page_under_many_newer_closed_ones(platform):
    from retail_platform.pages import _fleet_calls
    client, robots = platform
    waiting = _call(client, robots, 'old-open', wanted='the oldest waiting customer')
    assert client.post(f'/v1/stores/s-1/staff-calls/{waiting}/reply', headers=A,   # answered,
                       json={'kind': 'answer', 'text': 'coming'}).status_code == 200   # not closed
    for i in range(205):
        closed = _call(client, robots, f'c-{i}')
        assert client.post(f'/v1/stores/s-1/staff-calls/{closed}/close', headers=A).status_code == 200
    page = _fleet_calls(client.app.state.fleet, 's-1', None)
    assert f'id="call-{waiting}"' in page and 'the oldest waiting customer' in page


HEARTBEAT = '/v1/robots/r-1/heartbeat'


@pytest.mark.parametrize('path, body, key', [
    (HEARTBEAT, '{"period_s": "5"}', 'period_s'),                      # a string is not a number
    (HEARTBEAT, '{"period_s": true}', 'period_s'),                     # nor is a boolean
    (HEARTBEAT, '{"period_s": 5, "safety_stop": 1}', 'safety_stop'),   # 1 is not a boolean
    (HEARTBEAT, '{"period_s": 5, "safety_stop": "false"}', 'safety_stop'),
    (HEARTBEAT, '{"period_s": 5, "sync_backlog": 3.5}', 'sync_backlog'),   # 3.0 is an integer (JSON Schema); 3.5 is not
    (HEARTBEAT, '{"period_s": 5, "safety_stop": true, "safety_stop": false}', 'safety_stop'),
    (HEARTBEAT, '{"period_s": 5, "base": {"level": "error", "level": "ok"}}', 'level'),
    (HEARTBEAT, '{"period_s": 5, "period_s": 3600}', 'period_s'),
    ('/v1/robots/r-1/staff-calls', '{"call_id": "c", "reason": "x", "x": "1.5"}', 'x'),
    ('/v1/robots/r-1/staff-calls', '{"call_id": "c", "call_id": "d", "reason": "x"}', 'call_id'),
    ('/v1/admin/fleet/groups/g/desired', '{"settings": {"volume": "0.5"}}', 'settings.volume'),
    ('/v1/admin/fleet/groups/g/desired', '{"settings": {"volume": 0.2, "volume": 1.0}}', 'volume'),
    ('/v1/admin/fleet/groups/g/rollouts', '{"version": "1"}', 'version'),
])
def test_wrong_types_and_keys_given_twice_are_refused_naming_the_key(platform, path, body, key):
    client, robots = platform
    who = robots['r-1'] if path.startswith('/v1/robots/') else A
    answer = client.post(path, content=body, headers={**who, 'Content-Type': 'application/json'})
    assert answer.status_code == 422, answer.text
    assert key in answer.json()['detail']


@pytest.mark.parametrize('body', [
    '{"period_s": 5}', '{"period_s": 5.5, "battery_percent": 40, "safety_stop": false}',
    '{"period_s": 10, "base": {"level": "ok", "message": "fine"}, "sync": {"level": "warn"}}',
    '{"period_s": 5.0, "sync_backlog": 3.0}'])   # whole numbers with a point are integers (JSON Schema)
def test_well_typed_heartbeats_still_pass(platform, body):
    client, robots = platform
    answer = client.post(HEARTBEAT, content=body,
                         headers={**robots['r-1'], 'Content-Type': 'application/json'})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize('path, body', [
    ('/v1/robots/ghost/heartbeat', {'period_s': 5}),
    ('/v1/robots/ghost/staff-calls', {'call_id': 'c-1', 'reason': 'lost'}),
])
def test_fleet_writes_for_a_robot_registered_at_no_store_are_404(platform, path, body):
    """The admin credential may act for any robot id: one no store knows got a fleet row with an
    empty store (a 'store ""' on /v1/fleet/stores and in /metrics, silent tasks nobody sees)."""
    client, _ = platform
    answer = client.post(path, headers=A, json=body)
    assert answer.status_code == 404 and 'not registered' in answer.json()['detail']
    assert client.get('/v1/fleet/robots', headers=A).json() == []
    assert client.post('/v1/robots/r-1/heartbeat', headers=A, json={'period_s': 5}).status_code == 200



@pytest.mark.parametrize('order, shown', [
    # (boot, seq, safety_stop) in the order they arrive -> the robot's state shown
    ([('b1', 1, True), ('b1', 2, False), ('b1', 1, True)], 'ok'),          # a late copy of the stop
    ([('b1', 1, False), ('b1', 3, True), ('b1', 2, False)], 'degraded'),   # older than the stop
    ([('b1', 5, True), ('b2', 1, False)], 'ok'),                            # restarted: a new run
    ([('b1', 2, True), ('b1', 2, False)], 'ok'),                            # a resend: applied
    ([('', 0, True), ('', 0, False), ('', 0, True)], 'degraded'),           # v2 robots: as they come
])
def test_a_late_copy_of_an_older_heartbeat_is_answered_but_not_applied(platform, order, shown):
    """An attacker's replay (and a network's late copy) of the heartbeat with the safety stop held
    showed a robot degraded after its stop had cleared, and could halt a rollout for good."""
    client, robots = platform
    for boot, seq, stop in order:
        body = {'period_s': 5, 'safety_stop': stop, 'safety_stop_age_s': 700 if stop else 0}
        if boot:
            body.update(version=3, boot_id=boot, seq=seq)
        answer = client.post(HEARTBEAT, json=body, headers=robots['r-1'])
        assert answer.status_code == 200, answer.text
        assert 'stale' not in answer.json()
    robot = next(r for r in client.get('/v1/fleet/robots', headers=A).json() if r['robot_id'] == 'r-1')
    assert robot['state'] == shown, robot
