"""`retailbot record` and `retailbot replay`: MCAP recordings of the running graph.

record: subscribes (raw CDR) to the graph's topics with the types and QoS their publishers offer,
re-scanning the graph every second for topics that appear later, and writes them as received with
their full .msg definitions as schemas, until --duration, Ctrl-C or --max-mb.
replay: publishes a recording's messages on the graph with their recorded types and QoS, at their
recorded pace scaled by --rate, so the robot's own nodes can be re-run against it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from retail_observe.msgdefs import DefinitionError
from retail_observe.recording import (
    DEFAULT_MAX_BYTES,
    McapRecorder,
    RecordingError,
    check_duration,
    check_rate,
    choose_topics,
    read_messages,
    read_topics,
    replay_offset_s,
)

SCAN_PERIOD_S = 1.0
MATCH_TIMEOUT_S = 3.0


def register_record(subparsers) -> None:
    parser = subparsers.add_parser(
        'record',
        help='record the running ROS graph to an MCAP file (ROS 2 encoding)',
        description='Record the topics of the running robot (all but /rosout, /parameter_events and hidden '
        'ones, or --topics) to an MCAP file with ROS 2 message encoding and the message '
        'definitions as schemas; it opens in Foxglove and with the mcap reader. Camera images '
        'are never recorded (they show faces). Exit 0 when done, 1 when the file cannot be '
        'written, 2 on bad arguments.',
    )
    parser.add_argument('--out', required=True, metavar='FILE.mcap', help='the MCAP file to write')
    parser.add_argument('--duration', type=float, required=True, metavar='S', help='seconds to record')
    parser.add_argument('--topics', nargs='+', metavar='TOPIC', help='record only these topics')
    parser.add_argument(
        '--max-mb',
        type=float,
        default=DEFAULT_MAX_BYTES / 1e6,
        metavar='MB',
        help=f'stop when the messages reach this size (default {DEFAULT_MAX_BYTES / 1e6:.0f})',
    )
    parser.add_argument('--json', action='store_true', help='print the summary as JSON')
    parser.set_defaults(func=_record)


def register_replay(subparsers) -> None:
    parser = subparsers.add_parser(
        'replay',
        help='republish an MCAP recording on the ROS graph',
        description="Publish a recording's messages with their original types and QoS at the recorded "
        "pace (scaled by --rate), so the robot's nodes (localisation, collision monitor) can "
        'run against it. Exit 0 when done, 1 on an unreadable file, 2 on bad arguments.',
    )
    parser.add_argument('file', metavar='FILE.mcap', help='the MCAP recording to publish')
    parser.add_argument('--rate', type=float, default=1.0, help='playback speed (default 1.0)')
    parser.add_argument('--topics', nargs='+', metavar='TOPIC', help='replay only these topics')
    parser.add_argument(
        '--clock',
        action='store_true',
        help="publish /clock with the recording's time, for nodes run with use_sim_time:=true "
        '(they judge the replayed stamps against it, not against now)',
    )
    parser.add_argument('--json', action='store_true', help='print the summary as JSON')
    parser.set_defaults(func=_replay)


def _init_ros():
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    from retail_ros.node_support import use_robot_dds_profile

    use_robot_dds_profile()
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    return rclpy, context


def _record(args) -> int:
    try:
        duration = check_duration(args.duration)
        if not 0 < args.max_mb <= 100_000:
            raise RecordingError(f'--max-mb must be in (0, 100000], not {args.max_mb}')
    except RecordingError as exc:
        print(f'retailbot record: {exc}', file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        stream = open(out, 'wb')
    except OSError as exc:
        print(f'retailbot record: cannot write {out}: {exc.strerror}', file=sys.stderr)
        return 1
    rclpy, context = _init_ros()
    from rclpy.executors import SingleThreadedExecutor

    from retail_observe.graph import definition_of, offered_qos, subscribe_raw

    node = rclpy.create_node('retailbot_record', context=context)
    recorder = McapRecorder(stream, max_bytes=int(args.max_mb * 1e6))
    subscriptions: dict[str, object] = {}
    notes: list[str] = []

    def scan_graph() -> None:
        try:
            choice = choose_topics(node.get_topic_names_and_types(), args.topics)
        except RecordingError as exc:
            notes.append(str(exc))
            return
        for topic, type_name in choice.record.items():
            if topic in subscriptions:
                continue
            if not node.get_publishers_info_by_topic(topic):
                continue  # seen through its subscribers only: its QoS (latched?) is known once a publisher is
            try:
                qos = offered_qos(node, topic)
                recorder.add_topic(topic, type_name, definition_of(type_name), qos)
                subscriptions[topic] = subscribe_raw(
                    node, topic, type_name, qos, lambda data, topic=topic: recorder.write(topic, data, time.time_ns())
                )
            except DefinitionError as exc:
                if str(exc) not in notes:
                    notes.append(f'{topic}: skipped: {exc}')
        for topic, why in choice.skipped:
            if f'{topic}: {why}' not in notes:
                notes.append(f'{topic}: {why}')

    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    node.create_timer(SCAN_PERIOD_S, scan_graph)
    scan_graph()
    end = time.monotonic() + duration
    try:
        while time.monotonic() < end and not recorder.full and context.ok():
            executor.spin_once(timeout_sec=min(0.1, max(0.0, end - time.monotonic())))
    except KeyboardInterrupt:
        pass
    finally:
        recorder.finish()
        stream.close()
        node.destroy_node()
        context.try_shutdown()
    notes += [
        f'{topic}: not on the graph: nothing recorded'
        for topic in args.topics or []
        if topic not in recorder.per_topic and not any(n.startswith(f'{topic}:') for n in notes)
    ]
    summary = {
        'file': str(out),
        'messages': recorder.messages,
        'bytes': recorder.bytes,
        'topics': recorder.per_topic,
        'full': recorder.full,
        'notes': notes,
    }
    _print(
        args,
        summary,
        f'recorded {recorder.messages} messages on {len(recorder.per_topic)} topics to {out}'
        + (' (size limit reached)' if recorder.full else ''),
    )
    return 0


def _replay(args) -> int:
    try:
        rate = check_rate(args.rate)
        path = Path(args.file)
        topics = [t for t in read_topics(path) if not args.topics or t.topic in args.topics]
    except RecordingError as exc:
        print(f'retailbot replay: {exc}', file=sys.stderr)
        return 2 if 'rate' in str(exc) else 1
    rclpy, context = _init_ros()
    from retail_observe.graph import message_class, qos_profile

    node = rclpy.create_node('retailbot_replay', context=context)
    clock_pub = None
    if args.clock:
        from rosgraph_msgs.msg import Clock

        clock_pub = node.create_publisher(Clock, '/clock', 10)
    publishers = {}
    notes: list[str] = []
    for topic in topics:
        try:
            publishers[topic.topic] = node.create_publisher(
                message_class(topic.type_name), topic.topic, qos_profile(topic.qos)
            )
        except DefinitionError as exc:
            notes.append(f'{topic.topic}: skipped: {exc}')
    published = 0
    status = 0
    try:
        _wait_for_subscribers(publishers)
        start = time.monotonic()
        first: int | None = None
        for message in read_messages(path, list(publishers)):
            first = message.log_time_ns if first is None else first
            wait = start + replay_offset_s(message.log_time_ns, first, rate) - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if clock_pub is not None:
                clock = Clock()
                clock.clock.sec, clock.clock.nanosec = divmod(message.log_time_ns, 1_000_000_000)
                clock_pub.publish(clock)
            publishers[message.topic].publish(message.data)
            published += 1
        time.sleep(0.2)  # the last messages leave before the publishers go
    except RecordingError as exc:
        print(f'retailbot replay: {exc}', file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        context.try_shutdown()
    _print(
        args,
        {'file': str(path), 'published': published, 'topics': sorted(publishers), 'notes': notes},
        f'replayed {published} messages on {len(publishers)} topics from {path}',
    )
    return status


def _wait_for_subscribers(publishers: dict, timeout: float = MATCH_TIMEOUT_S) -> None:
    """Give the graph's subscribers time to match the new publishers (bounded: topics nobody reads
    on this robot are replayed anyway), so the first messages are not lost to discovery."""
    deadline = time.monotonic() + timeout
    time.sleep(0.2)
    while time.monotonic() < deadline and any(p.get_subscription_count() == 0 for p in publishers.values()):
        time.sleep(0.05)


def _print(args, summary: dict, line: str) -> None:
    if args.json:
        print(json.dumps(summary))
        return
    print(line)
    for note in summary['notes']:
        print(f'  {note}')
