"""The robot's fleet link in /sync/agent, on real DDS against a real platform process: the
heartbeat carries what the robot's diagnostics and safety state say; a staff request reaches the
store's staff on the platform and staff's typed words come back on /dialogue/replies (spoken by
the TTS, marked as staff's); a rolled-out desired state is swapped in, a bad one is refused,
reported, the last good one kept and the rollout halted."""
from __future__ import annotations

import json
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.parameter import Parameter

from retail_interfaces.msg import BaseSafety, DataUpdate, RobotReply, StaffRequest
from retail_common.store import load_zones_file
from retail_dialogue.manager_node import DEFAULT_STORE
from retail_platform.storage import Storage
from retail_ros.node_support import diagnostic_status
from retail_ros.qos import latched
from retail_sync.agent_node import SyncAgent
from rostest_support import wait_for

ROBOT = 'robot-fleet'


def test_heartbeat_staff_help_and_desired_state_through_the_agent(ros_context, spin, platform,
                                                                    tmp_path):
    storage = Storage(str(platform.db))
    storage.add_store('s-1', 'Store one')
    token = storage.issue_robot_token(ROBOT, 's-1')
    storage.close()
    params = dict(robot_id=ROBOT, platform_url=platform.url, token=token,
                  outbox=str(tmp_path / 'outbox.sqlite3'), data_dir=str(tmp_path / 'data'),
                  downlink_interval_s=600.0, diagnostics_period_s=0.5, fleet_period_s=1.0,
                  store_dir=DEFAULT_STORE)
    agent = SyncAgent(context=ros_context, namespace='sync',
                      parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    peer = Node('store_peer', context=ros_context)
    diagnostics = peer.create_publisher(DiagnosticArray, '/diagnostics', 10)
    safety = peer.create_publisher(BaseSafety, '/navigation/safety', latched(1))
    staff = peer.create_publisher(StaffRequest, '/dialogue/staff_requests', 10)
    replies: list[RobotReply] = []
    updates: list[DataUpdate] = []
    peer.create_subscription(RobotReply, '/dialogue/replies', replies.append, 10)
    peer.create_subscription(DataUpdate, '/sync/data_updates', updates.append, 10)
    spin(agent, peer)
    admin = platform.client()

    # 1. health: the localisation says lost, the base holds a safety stop
    safety.publish(BaseSafety(bumper_centre=True, latched=True))

    def robot_on_platform():
        diagnostics.publish(DiagnosticArray(status=[diagnostic_status(
            'navigation/localization', 1, 'lost: the scans match nowhere', {'state': 'lost'})]))
        robots = admin.get('/v1/stores/s-1/fleet').json()['robots']
        beat = robots[0]['heartbeat'] if robots else {}
        return beat.get('localisation_lost') and beat.get('safety_stop') and robots[0]
    robot = wait_for(robot_on_platform, timeout=30, what='the heartbeat on the platform')
    assert robot['state'] == 'degraded' and robot['heartbeat']['localisation']['level'] == 'warn'
    tasks = admin.get('/v1/stores/s-1/tasks').json()
    assert [t['kind'] for t in tasks] == ['lost']
    safety.publish(BaseSafety(latched=False))       # staff reset it: a canary must be healthy
    wait_for(lambda: not admin.get('/v1/stores/s-1/fleet').json()['robots'][0]['heartbeat'][
        'safety_stop'], timeout=30, what='the cleared safety stop on the platform')

    # 2. staff help: the request reaches the store's staff with where the robot is (standing
    # still: the place its localisation reports, named as the store names it), staff's words
    # come back
    kitchen = load_zones_file(f'{DEFAULT_STORE}/zones.yaml')[0]['kitchen']
    diagnostics.publish(DiagnosticArray(status=[diagnostic_status(
        'navigation/localization', 0, 'tracking', {'state': 'tracking', 'x': str(kitchen.pose[0]),
                                                   'y': str(kitchen.pose[1] + 0.4)})]))
    wait_for(lambda: agent._reported_pose() is not None, timeout=30,
             what='the localisation\'s reported pose at the agent')
    request = StaffRequest(reason='product_help', looking_for='a kettle under 200 yuan',
                           zone='kitchen', language='en')
    request.header.stamp = agent.get_clock().now().to_msg()
    staff.publish(request)
    call = wait_for(lambda: next(iter(admin.get('/v1/stores/s-1/staff-calls').json()), None),
                    timeout=30, what='the staff call on the platform')
    assert call['wanted'] == 'a kettle under 200 yuan' and call['where']['zone'] == 'kitchen'
    assert call['where']['place'] == kitchen.label and call['language'] == 'en'
    admin.post(f'/v1/stores/s-1/staff-calls/{call["id"]}/reply',
               json={'kind': 'say', 'text': 'Kettles are on aisle 4'}).raise_for_status()
    said = wait_for(lambda: next((r for r in replies if r.intent == 'staff_words'), None),
                    timeout=30, what='staff\'s words on /dialogue/replies')
    assert said.text == 'Kettles are on aisle 4' and said.language == 'en'

    # 3. desired state: v1 is swapped in; a bad v2 is refused, v1 kept, the rollout halted
    admin.put('/v1/admin/fleet/groups/g', json={'robots': [ROBOT]}).raise_for_status()
    admin.post('/v1/admin/fleet/groups/g/desired', json={
        'settings': {'volume': 0.4}, 'content': {'greetings': {'anonymous': {'en': 'Welcome!'}}}}).raise_for_status()
    admin.post('/v1/admin/fleet/groups/g/rollouts', json={'version': 1, 'soak_s': 0}).raise_for_status()
    update = wait_for(lambda: next((u for u in updates if u.kind == 'desired'), None), timeout=30,
                      what='the desired state swapped in')
    desired = Path(update.path)
    assert json.loads(desired.read_text())['settings']['volume'] == 0.4
    admin.post('/v1/admin/fleet/groups/g/desired', params={'unchecked': 'true'},
               json={'settings': {'volume': 3}}).raise_for_status()
    rollout = admin.post('/v1/admin/fleet/groups/g/rollouts', json={'version': 2}).json()
    halted = wait_for(lambda: (lambda r: r['state'] == 'halted' and r)(
        admin.get(f'/v1/admin/fleet/rollouts/{rollout["id"]}').json()), timeout=30,
        what='the rollout halted by the robot\'s refusal')
    assert 'settings.volume' in halted['reason']
    assert json.loads(desired.read_text())['settings']['volume'] == 0.4
    history = admin.get(f'/v1/admin/fleet/robots/{ROBOT}/history').json()
    # (v1 may be reported running after v2 was assigned: each version's rows keep their order)
    assert [h['status'] for h in history if h['version'] == 1] == ['assigned', 'running']
    # the halted rollout's v2 is withdrawn: the robot is told v1 again, never v2
    assert [h['status'] for h in history if h['version'] == 2] == ['assigned', 'refused', 'withdrawn']
    admin.close()


def test_a_staff_call_survives_a_sync_agent_restart(ros_context, spin, platform, tmp_path):
    """A staff call raised while the platform is unreachable is kept on the robot; the agent is
    stopped and started again (the platform reachable now): the call reaches the store's staff,
    once, and is then gone from the robot."""
    import sqlite3

    from sync_support import free_port
    from retail_sync.fleet_link import CALLS_FILE
    storage = Storage(str(platform.db))
    storage.add_store('s-1', 'Store one')
    token = storage.issue_robot_token(ROBOT, 's-1')
    storage.close()
    data = tmp_path / 'data'

    def agent_for(url: str) -> SyncAgent:
        params = dict(robot_id=ROBOT, platform_url=url, token=token,
                      outbox=str(tmp_path / 'outbox.sqlite3'), data_dir=str(data),
                      downlink_interval_s=600.0, diagnostics_period_s=0.5, fleet_period_s=1.0)
        return SyncAgent(context=ros_context, namespace='sync',
                         parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])

    def waiting() -> int:
        if not (data / CALLS_FILE).exists():
            return 0
        with sqlite3.connect(str(data / CALLS_FILE)) as db:
            return db.execute('SELECT count(*) FROM calls').fetchone()[0]

    agent = agent_for(f'http://127.0.0.1:{free_port()}')          # nothing listens there
    peer = Node('store_peer', context=ros_context)
    staff = peer.create_publisher(StaffRequest, '/dialogue/staff_requests', 10)
    executor = spin(agent, peer)
    request = StaffRequest(reason='product_help', looking_for='a rice cooker for two',
                           zone='kitchen', language='en')
    request.header.stamp = agent.get_clock().now().to_msg()

    def kept() -> bool:
        if waiting() == 0:
            staff.publish(request)               # until the agent has discovered the peer
        return waiting() == 1
    wait_for(kept, timeout=30, what='the staff call kept on the robot')
    executor.remove_node(agent)
    agent.destroy_node()                          # the sync agent stops with the call unsent
    assert waiting() == 1

    admin = platform.client()
    assert admin.get('/v1/stores/s-1/staff-calls').json() == []
    agent = agent_for(platform.url)
    spin(agent)
    call = wait_for(lambda: next(iter(admin.get('/v1/stores/s-1/staff-calls').json()), None),
                    timeout=30, what='the kept staff call on the platform after the restart')
    assert call['wanted'] == 'a rice cooker for two' and call['where']['zone'] == 'kitchen'
    wait_for(lambda: waiting() == 0, timeout=30, what='the acknowledged call deleted on the robot')
    assert len(admin.get('/v1/stores/s-1/staff-calls').json()) == 1
    admin.close()


def test_live_settings_are_set_on_the_running_nodes_all_or_nothing(ros_context, spin, platform,
                                                                    tmp_path):
    """Real /navigation/guide, /perception/faces, /navigation/collision_monitor and /dialogue/tts
    nodes: a rolled-out desired state's max_speed_mps, near_people_speed_mps, greeting_distance_m,
    safety_distance_m and volume become their max_vx, near_people_vx, approach_distance_m,
    stop_margin_m and volume (what the nodes drive, greet, stop and speak with). A version the
    guide refuses by its own rules (max_vx at most 1.0 m/s) is refused whole: the nodes changed
    before it are set back; desired.json keeps the last good version; the rollout halts with the
    guide's reason."""
    from retail_dialogue.tts_node import TtsNode
    from retail_navigation.collision_monitor_node import CollisionMonitorNode
    from retail_navigation.guide_node import GuideNode
    from retail_perception.faces_node import FacesNode
    store = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'
    guide = GuideNode(context=ros_context, namespace='navigation', parameter_overrides=[
        Parameter('store_dir', value=str(store)), Parameter('localization', value=False),
        Parameter('scan_topic', value='')])
    faces = FacesNode(context=ros_context, parameter_overrides=[
        Parameter('anonymous_mode', value=True)])
    # no lidar here: its 'no scan' error goes elsewhere than /diagnostics, or it would halt the rollout
    monitor = CollisionMonitorNode(context=ros_context, namespace='navigation', cli_args=[
        '--ros-args', '-r', '/diagnostics:=/test/monitor_diagnostics'])
    tts = TtsNode(context=ros_context, parameter_overrides=[
        Parameter('audio_device', value='none'), Parameter('output_dir', value=str(tmp_path / 'speech'))])
    storage = Storage(str(platform.db))
    storage.add_store('s-1', 'Store one')
    token = storage.issue_robot_token(ROBOT, 's-1')
    storage.close()
    params = dict(robot_id=ROBOT, platform_url=platform.url, token=token,
                  outbox=str(tmp_path / 'outbox.sqlite3'), data_dir=str(tmp_path / 'data'),
                  downlink_interval_s=600.0, diagnostics_period_s=0.5, fleet_period_s=1.0)
    agent = SyncAgent(context=ros_context, namespace='sync',
                      parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    spin(guide, faces, monitor, tts, agent)
    admin = platform.client()
    assert (guide.params.max_vx, faces.params.approach_distance_m) == (0.45, 2.0)   # their files

    admin.put('/v1/admin/fleet/groups/g', json={'robots': [ROBOT]}).raise_for_status()
    admin.post('/v1/admin/fleet/groups/g/desired', json={
        'settings': {'max_speed_mps': 0.6, 'greeting_distance_m': 1.5, 'near_people_speed_mps': 0.3,
                     'safety_distance_m': 0.5, 'volume': 0.5}}).raise_for_status()
    admin.post('/v1/admin/fleet/groups/g/rollouts', json={'version': 1, 'soak_s': 0}).raise_for_status()
    wait_for(lambda: (guide.params.max_vx, faces.params.approach_distance_m) == (0.6, 1.5),
             timeout=60, what='v1\'s settings on the running nodes')
    # what the nodes drive, stop and speak with (set by the executor's thread: waited for, not raced)
    wait_for(lambda: (guide.supervisor.follower_config.near_people_vx, monitor.monitor.config.stop_margin_m,
                      tts.synthesizer.volume) == (0.3, 0.5, 0.5), timeout=30, what='v1 in the nodes\' configs')
    desired = tmp_path / 'data' / 'desired.json'
    wait_for(lambda: desired.exists() and json.loads(desired.read_text())['settings'][
        'max_speed_mps'] == 0.6, timeout=30, what='v1 in desired.json')

    # the faces node restarts (its params file says 2.0): the agent sets v1's value on it again
    executor = spin()
    executor.remove_node(faces)
    faces.destroy_node()
    faces = FacesNode(context=ros_context, parameter_overrides=[
        Parameter('anonymous_mode', value=True)])
    assert faces.params.approach_distance_m == 2.0
    spin(faces)
    wait_for(lambda: faces.params.approach_distance_m == 1.5, timeout=60,
             what='v1\'s setting on the restarted faces node')

    # v2 passes the document's bounds (speed up to 1.2) but not the guide's own (max_vx <= 1.0)
    admin.post('/v1/admin/fleet/groups/g/desired', json={
        'settings': {'max_speed_mps': 1.1, 'greeting_distance_m': 3.0, 'safety_distance_m': 0.8,
                     'volume': 0.2}}).raise_for_status()
    rollout = admin.post('/v1/admin/fleet/groups/g/rollouts', json={'version': 2, 'soak_s': 0}).json()
    halted = wait_for(lambda: (lambda r: r['state'] == 'halted' and r)(
        admin.get(f'/v1/admin/fleet/rollouts/{rollout["id"]}').json()), timeout=60,
        what='the rollout halted by the guide\'s refusal')
    assert 'max_vx' in halted['reason'] and '/navigation/guide' in halted['reason']
    assert (guide.params.max_vx, faces.params.approach_distance_m) == (0.6, 1.5)
    assert (monitor.params.stop_margin_m, tts.params.volume) == (0.5, 0.5)     # set back
    kept = json.loads(desired.read_text())['settings']
    assert (kept['max_speed_mps'], kept['greeting_distance_m']) == (0.6, 1.5)
    robots = admin.get('/v1/stores/s-1/fleet').json()['robots']
    assert robots[0]['heartbeat']['desired_version'] == 1
    assert 'max_vx' in robots[0]['heartbeat']['desired_error']
    admin.close()
