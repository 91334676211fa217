"""Final utterance → reply text: median and p99, for the manager core and through the real node.

    .venv/bin/python benches/dialogue_latency.py [--n 200]
Goal: median <= 50 ms. Peer in the same run: the NLU parse alone (the floor of the core's time).
The core path runs multi-turn conversations (follow-ups, refinements, references, a tour), so each
turn works on the dialogue state the earlier ones left.
The node path publishes an Utterance and waits for the RobotReply on DDS (loopback, own domain).
"""
import argparse
import os
import statistics
import threading
import time

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('ROS_DOMAIN_ID', '91')

from retail_dialogue.manager import DialogueManager  # noqa: E402
from retail_dialogue.manager_node import DEFAULT_STORE  # noqa: E402
from retail_dialogue.standalone import StandaloneRobot, catalog_recommender  # noqa: E402
from retail_common.store import load_store  # noqa: E402

TEXTS = ['帮我推荐一款三千以下的手机', 'How much is the iPhone 16?', '电视在哪里？', '小米14有优惠吗',
         'recommend a laptop under 6000', '带我去收银台', 'do you sell air fryers', '花为的手机多少钱']
CONVERSATIONS = [['帮我推荐一款三千以下的手机', '第二个怎么样', '便宜一点的', '那华为的呢', '带我过去'],
                 ['any good laptops under 6000?', 'what about Apple?', 'how much is the MacBook Air', 'take me there'],
                 ['最近有什么优惠活动吗', '第一个多少钱', '还有别的吗', '哪个更好'],
                 ['do you have Huawei tablets?', 'the first one', 'any others?', 'ok take me there'],
                 ['带我参观一下', 'iPhone 16多少钱', '下一站', '结束参观']]


def stats(samples):
    samples = sorted(samples)
    return statistics.median(samples) * 1000, samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000


def bench_core(n):
    """Multi-turn conversations (each turn on the state the earlier ones left), effects carried
    out in-process (catalog recommender, simulated guide and tour)."""
    store = load_store(DEFAULT_STORE)
    manager = DialogueManager(store)
    robot = StandaloneRobot(manager, catalog_recommender(store.catalog))
    core, parse = [], []
    track = 0
    while len(core) < n:
        track += 1
        robot.customer(track)
        for text in CONVERSATIONS[track % len(CONVERSATIONS)]:
            started = time.perf_counter()
            robot.say(track, text)
            core.append(time.perf_counter() - started)
            started = time.perf_counter()
            manager.nlu.parse(text)
            parse.append(time.perf_counter() - started)
        robot.run(manager.on_customer_left(track))
        robot.end_missions()
    return stats(core), stats(parse)


def bench_node(n):
    import rclpy
    from retail_ros.executor import RobotExecutor
    from rclpy.node import Node
    from retail_dialogue.manager_node import ManagerNode
    from retail_interfaces.msg import CustomerEvent, RobotReply, Utterance
    rclpy.init()
    from rclpy.parameter import Parameter
    manager = ManagerNode(parameter_overrides=[Parameter('greet_delay_s', value=0.0)])   # greet at once
    client = Node('bench_customer')
    replies = []
    arrived = threading.Event()
    client.create_subscription(RobotReply, '/dialogue/replies',
                               lambda m: (replies.append(time.perf_counter()), arrived.set()), 10)
    customers = client.create_publisher(CustomerEvent, '/perception/customer_events', 10)
    utterances = client.create_publisher(Utterance, '/dialogue/utterances', 10)
    executor = RobotExecutor()
    executor.add_node(manager)
    executor.add_node(client)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not (client.count_subscribers('/dialogue/utterances') and manager.count_publishers('/dialogue/utterances')
               and client.count_publishers('/dialogue/replies')) and time.monotonic() < deadline:
        time.sleep(0.05)
    samples = []
    for i in range(n):
        track = i + 1
        arrived.clear()
        customers.publish(CustomerEvent(kind=CustomerEvent.APPEARED, track_id=track))
        arrived.wait(5)
        arrived.clear()
        started = time.perf_counter()
        utterances.publish(Utterance(text=TEXTS[i % len(TEXTS)], is_final=True, track_id=track))
        if arrived.wait(5):
            samples.append(replies[-1] - started)
        customers.publish(CustomerEvent(kind=CustomerEvent.LEFT, track_id=track))
    executor.shutdown()
    thread.join()
    rclpy.shutdown()
    return stats(samples), len(samples)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--n', type=int, default=200)
    args = parser.parse_args()
    (core_med, core_p99), (parse_med, parse_p99) = bench_core(args.n)
    print(f'core  utterance→reply: median {core_med:.2f} ms  p99 {core_p99:.2f} ms  (n={args.n})')
    print(f'peer  NLU parse only : median {parse_med:.2f} ms  p99 {parse_p99:.2f} ms  '
          f'(core/parse {core_med / parse_med:.1f}x)')
    (node_med, node_p99), count = bench_node(min(args.n, 100))
    print(f'node  utterance→reply over DDS: median {node_med:.2f} ms  p99 {node_p99:.2f} ms  (n={count}); '
          f'goal median <= 50 ms: {"met" if node_med <= 50 else "NOT met"}')


if __name__ == '__main__':
    main()
