"""Staff ask a robot for its incident recordings from the platform: the real platform process,
the real /sync/agent and the real incident recorder on DDS. The request reaches the robot in its
heartbeat's answer, the recorder uploads with its own path (Idempotency-Key, Content-Digest,
deleted on the robot only once confirmed by id), the robot reports the request done; asking
again while one is open answers the same request; only staff of that store may ask."""
from __future__ import annotations

import math

from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import LaserScan

from retail_interfaces.msg import BaseSafety
from retail_platform.storage import Storage
from retail_ros.qos import latched
from retail_sync.agent_node import SyncAgent
from rostest_support import wait_for

ROBOT = 'robot-inc'


def test_staff_ask_and_the_robot_uploads_its_incidents(ros_context, spin, platform, tmp_path):
    from retail_observe.incident_node import IncidentRecorderNode
    storage = Storage(str(platform.db))
    storage.add_store('s-1', 'Store one')
    storage.add_store('s-2', 'Store two')
    token = storage.issue_robot_token(ROBOT, 's-1')
    manager = storage.issue_staff_token('store_manager', 'ann', ['s-1'])
    other = storage.issue_staff_token('store_manager', 'bob', ['s-2'])
    storage.close()
    (tmp_path / 'sync').mkdir()
    (tmp_path / 'sync' / 'token').write_text(token)
    recorder = IncidentRecorderNode(context=ros_context, parameter_overrides=[
        Parameter('data_dir', value=str(tmp_path)), Parameter('before_s', value=1.0),
        Parameter('after_s', value=1.0), Parameter('platform_url', value=platform.url),
        Parameter('robot_id', value=ROBOT), Parameter('token_file', value=str(tmp_path / 'sync' / 'token'))])
    params = dict(robot_id=ROBOT, platform_url=platform.url, token=token,
                  outbox=str(tmp_path / 'outbox.sqlite3'), data_dir=str(tmp_path / 'platform'),
                  downlink_interval_s=600.0, diagnostics_period_s=0.5, fleet_period_s=1.0)
    agent = SyncAgent(context=ros_context, namespace='sync',
                      parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    talker = Node('talker', context=ros_context)
    scans = talker.create_publisher(LaserScan, '/scan', qos_profile_sensor_data)
    safety = talker.create_publisher(BaseSafety, '/navigation/safety', latched(1))
    talker.create_timer(0.05, lambda: scans.publish(LaserScan(ranges=[2.0, math.inf])))
    spin(recorder, agent, talker)
    wait_for(lambda: len(recorder.buffer.ring) > 10, 30, 'scans in the ring')
    safety.publish(BaseSafety(bumper_centre=True, latched=True, reason='bumper'))
    written = wait_for(lambda: recorder.written, 30, 'the incident file')[0]
    safety.publish(BaseSafety(latched=False))

    staff = platform.client()
    ann = {'Authorization': f'Bearer {manager}'}
    # another store's manager and the robot itself may not ask; an unknown robot is 404
    assert staff.post(f'/v1/stores/s-1/robots/{ROBOT}/incident-request',
                      headers={'Authorization': f'Bearer {other}'}).status_code == 403
    assert staff.post(f'/v1/stores/s-1/robots/{ROBOT}/incident-request',
                      headers={'Authorization': f'Bearer {token}'}).status_code == 403
    assert staff.post('/v1/stores/s-1/robots/nobody/incident-request', headers=ann).status_code == 404
    first = staff.post(f'/v1/stores/s-1/robots/{ROBOT}/incident-request', headers=ann)
    again = staff.post(f'/v1/stores/s-1/robots/{ROBOT}/incident-request', headers=ann)
    assert first.status_code == 200 and again.json()['id'] == first.json()['id']   # one open request

    done = wait_for(lambda: next((r for r in staff.get('/v1/stores/s-1/incident-requests', headers=ann)
                                  .json() if r['state'] == 'done'), None), 60, 'the request done')
    assert done['id'] == first.json()['id'] and 'is incident' in done['result'], done
    incidents = staff.get('/v1/stores/s-1/incidents', headers=ann).json()
    assert [i['key'] for i in incidents] == [written.name.removesuffix('.mcap')]
    assert not written.exists()                       # deleted on the robot once confirmed by id
    # a new request after it: carried out again (nothing waiting now), not confused with the first
    second = staff.post(f'/v1/stores/s-1/robots/{ROBOT}/incident-request', headers=ann).json()
    assert second['id'] > first.json()['id']
    wait_for(lambda: all(r['state'] == 'done' for r in staff.get(
        '/v1/stores/s-1/incident-requests', headers=ann).json()), 60, 'the second request done')
    assert len(staff.get('/v1/stores/s-1/incidents', headers=ann).json()) == 1
    staff.close()
