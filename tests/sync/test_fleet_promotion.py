"""A promotion rolled out from the platform reaches what the running robot says: the real
platform process, the real /sync/agent and the real /dialogue/manager on DDS. The rollout's
content is swapped in by the agent (desired.json in the platform data the store model overlays),
the dialogue reloads its store on the DataUpdate and answers "any promotions?" with it; a later
version naming a product the store does not sell is refused whole (the store files' rules), the
rollout halts, the robot reports why, and the dialogue keeps answering with the last good one."""
from __future__ import annotations

from rclpy.node import Node
from rclpy.parameter import Parameter

from retail_dialogue.manager_node import DEFAULT_STORE, ManagerNode
from retail_interfaces.msg import CustomerEvent, RobotReply, Utterance
from retail_platform.storage import Storage
from retail_sync.agent_node import SyncAgent
from rostest_support import wait_for

ROBOT = 'robot-promo'
PROMOTION = {'sku': 'MD-AF55', 'text': 'Air fryers 20% off today', 'discount': 0.2}


def test_a_rolled_out_promotion_is_what_the_dialogue_answers(ros_context, spin, platform, tmp_path):
    storage = Storage(str(platform.db))
    storage.add_store('s-1', 'Store one')
    token = storage.issue_robot_token(ROBOT, 's-1')
    storage.close()
    robot_data = tmp_path / 'robot'
    params = dict(robot_id=ROBOT, platform_url=platform.url, token=token,
                  outbox=str(tmp_path / 'outbox.sqlite3'), data_dir=str(robot_data / 'platform'),
                  store_dir=DEFAULT_STORE, downlink_interval_s=600.0, diagnostics_period_s=0.5,
                  fleet_period_s=1.0)
    agent = SyncAgent(context=ros_context, namespace='sync',
                      parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    manager = ManagerNode(context=ros_context, parameter_overrides=[
        Parameter('store_dir', value=DEFAULT_STORE), Parameter('data_dir', value=str(robot_data))])
    shopper = Node('shopper', context=ros_context)
    customers = shopper.create_publisher(CustomerEvent, '/perception/customer_events', 10)
    utterances = shopper.create_publisher(Utterance, '/dialogue/utterances', 10)
    replies: list[RobotReply] = []
    shopper.create_subscription(RobotReply, '/dialogue/replies', replies.append, 10)
    spin(agent, manager, shopper)
    admin = platform.client()
    wait_for(lambda: admin.get('/v1/stores/s-1/fleet').json()['robots'], timeout=30,
             what='the robot\'s heartbeat on the platform')

    def ask(track: int) -> str:
        wait_for(lambda: shopper.count_subscribers('/dialogue/utterances')
                 and manager.count_publishers('/perception/customer_events'), timeout=30, what='the dialogue')
        customers.publish(CustomerEvent(kind=CustomerEvent.APPEARED, track_id=track))
        wait_for(lambda: any(r.track_id == track for r in replies), timeout=30, what='the greeting')
        before = len(replies)
        utterances.publish(Utterance(text='any promotions?', language='en', is_final=True,
                                     confidence=0.9, track_id=track))
        answer = wait_for(lambda: next((r for r in replies[before:] if r.track_id == track
                                        and r.intent == 'ask_promotion'), None),
                          timeout=30, what='the answer to "any promotions?"')
        customers.publish(CustomerEvent(kind=CustomerEvent.LEFT, track_id=track))
        return answer.text

    assert PROMOTION['text'] not in ask(21)        # before the rollout: the catalog's offers

    # the rollout: the group's desired state with the promotion, canary -> all
    admin.put('/v1/admin/fleet/groups/g', json={'robots': [ROBOT]}).raise_for_status()
    version = admin.post('/v1/admin/fleet/groups/g/desired',
                         json={'content': {'promotions': [PROMOTION]}}).json()['version']
    admin.post('/v1/admin/fleet/groups/g/rollouts', json={'version': version, 'soak_s': 0}
               ).raise_for_status()
    wait_for(lambda: admin.get('/v1/stores/s-1/fleet').json()['robots'][0]['heartbeat'][
        'desired_version'] == version, timeout=30, what=f'the robot running v{version}')
    spoken = wait_for(lambda: (lambda text: PROMOTION['text'] in text and text)(ask(22)),
                      timeout=30, what='the rolled-out promotion in the answer')
    assert 'Midea air fryer' in spoken

    # a version naming a product this store does not sell: refused whole, reported, v1 kept
    bad = admin.post('/v1/admin/fleet/groups/g/desired', json={'content': {'promotions': [
        {'sku': 'NO-SUCH-SKU', 'text': 'Everything free'}]}}).json()['version']
    rollout = admin.post('/v1/admin/fleet/groups/g/rollouts', json={'version': bad}).json()
    halted = wait_for(lambda: (lambda r: r['state'] == 'halted' and r)(
        admin.get(f'/v1/admin/fleet/rollouts/{rollout["id"]}').json()), timeout=30,
        what='the rollout halted by the robot\'s refusal')
    assert 'NO-SUCH-SKU' in halted['reason'] and 'not in the catalog' in halted['reason']
    beat = admin.get('/v1/stores/s-1/fleet').json()['robots'][0]['heartbeat']
    assert beat['desired_version'] == version and 'NO-SUCH-SKU' in beat['desired_error']
    assert PROMOTION['text'] in ask(23)
    admin.close()
