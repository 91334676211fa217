"""Final utterance → reply text: median and p99, for the manager core and through the real node.

    .venv/bin/python benches/dialogue_latency.py [--n 200]
Goal: median <= 50 ms. Peer in the same run: the NLU parse alone (the floor of the core's time).
The node path publishes an Utterance and waits for the RobotReply on DDS (loopback, own domain).
"""
import argparse
import os
import statistics
import threading
import time

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('ROS_DOMAIN_ID', '91')

from retail_common.catalog import load_catalog  # noqa: E402
from retail_dialogue.manager import DialogueManager  # noqa: E402
from retail_dialogue.manager_node import DEFAULT_STORE  # noqa: E402
from retail_dialogue.standalone import catalog_recommender  # noqa: E402

TEXTS = ['帮我推荐一款三千以下的手机', 'How much is the iPhone 16?', '电视在哪里？', '小米14有优惠吗',
         'recommend a laptop under 6000', '带我去收银台', 'do you sell air fryers', '花为的手机多少钱']


def stats(samples):
    samples = sorted(samples)
    return statistics.median(samples) * 1000, samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000


def bench_core(n):
    catalog = load_catalog(f'{DEFAULT_STORE}/catalog.csv')
    got = []
    manager = DialogueManager(catalog, say=got.append, emit=lambda e: None, recommend=catalog_recommender(catalog),
                              guide=lambda t, z: None)
    core, parse = [], []
    for i in range(n):
        text = TEXTS[i % len(TEXTS)]
        manager.on_customer(i + 1)
        started = time.perf_counter()
        manager.on_utterance(i + 1, text)
        core.append(time.perf_counter() - started)
        started = time.perf_counter()
        manager.nlu.parse(text)
        parse.append(time.perf_counter() - started)
        manager.on_customer_left(i + 1)
    return stats(core), stats(parse)


def bench_node(n):
    import rclpy
    from retail_common.executor import RobotExecutor
    from rclpy.node import Node
    from retail_dialogue.manager_node import ManagerNode
    from retail_interfaces.msg import CustomerEvent, RobotReply, Utterance
    rclpy.init()
    manager = ManagerNode()
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
