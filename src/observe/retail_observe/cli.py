"""`retailbot record` and `retailbot replay`: MCAP recordings of the running graph.

record: subscribes (raw CDR) to the graph's topics with the types and QoS their publishers offer,
re-scanning the graph every second for topics that appear later, and writes them as received with
their full .msg definitions as schemas, until --duration, Ctrl-C or --max-mb.
replay: publishes a recording's messages on the graph with their recorded types and QoS, at their
recorded pace scaled by --rate, so the robot's own nodes can be re-run against it; never the topics
that command the robot (retail_observe.replay_safety) unless --include-commands, and not while the
robot's own nodes are on the graph unless --on-live-robot.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
import time
from pathlib import Path

from retail_observe.msgdefs import DefinitionError
from retail_observe.recording import (
    DEFAULT_MAX_BYTES,
    PARAMETERS_RECORD,
    RERUN_PARAMETERS,
    McapRecorder,
    RecordingError,
    ReplaySchedule,
    check_duration,
    check_rate,
    choose_topics,
    parameters_record,
    read_channels,
    read_messages,
    read_parameters,
)
from retail_common.cli_output import name_some
from retail_observe.replay_safety import robot_nodes_among, split_commands

SCAN_PERIOD_S = 1.0
MATCH_TIMEOUT_S = 3.0
LOCALIZATION = '/navigation/localization'
# How long record waits for the --topics to appear, and replay looks for the robot's own nodes
# (discovery of other processes takes a few seconds on a loaded robot).
DISCOVERY_S = 5.0


def register_record(subparsers) -> None:
    parser = subparsers.add_parser(
        'record',
        help='record the running ROS graph to an MCAP file (ROS 2 encoding)',
        description='Record the topics of the running robot (all but /rosout, /parameter_events and hidden '
        'ones, or --topics) to an MCAP file with ROS 2 message encoding and the message '
        'definitions as schemas; it opens in Foxglove and with the mcap reader. Camera images '
        'are never recorded (they show faces). An existing --out is never overwritten. Exit 0 '
        'when done, 1 when the file cannot be written, 2 on bad arguments.',
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
    parser.add_argument('--force', action='store_true', help='overwrite --out if it exists')
    parser.add_argument('--json', action='store_true', help='print the summary as JSON')
    parser.set_defaults(func=_record)


def register_replay(subparsers) -> None:
    parser = subparsers.add_parser(
        'replay',
        help='republish an MCAP recording on the ROS graph',
        description="Publish a recording's messages with their original types and QoS at the recorded "
        "pace (scaled by --rate), so the robot's nodes (localisation, collision monitor) can "
        'run against it. Topics that command the robot or start its behaviour (cmd_vel, utterances, '
        'customer events, data updates, service/action traffic, ...) are left out unless '
        "--include-commands; it refuses to run while the robot's own nodes (base, guide, dialogue, "
        'sync) are on the graph unless --on-live-robot. Exit 0 when done, 1 on an unreadable file, '
        '2 on bad arguments or a refusal.',
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
    parser.add_argument(
        '--seed',
        type=int,
        metavar='N',
        help=f"the localisation's seed for the re-run (default: the one recorded with the file); set on "
        f'{LOCALIZATION} (the re-run node, started before the replay) through its parameter service',
    )
    parser.add_argument(
        '--include-commands',
        action='store_true',
        help='also replay the topics that command the robot or start its behaviour (/cmd_vel, utterances, ...)',
    )
    parser.add_argument(
        '--on-live-robot',
        action='store_true',
        help="replay even though the robot's own nodes are on this ROS domain (commands stay out "
        'unless --include-commands too)',
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


def _record_target(args) -> tuple[float, Path]:
    """(duration, --out) once the arguments are usable; _Refused(2) with one line when not."""
    try:
        duration = check_duration(args.duration)
        if not 0 < args.max_mb <= 100_000:
            raise RecordingError(f'--max-mb must be in (0, 100000], not {args.max_mb}')
    except RecordingError as exc:
        raise _Refused(2, str(exc)) from None
    out = Path(args.out)
    if out.exists() and not args.force:
        raise _Refused(2, f'{out} exists: choose another --out or add --force to overwrite it')
    return duration, out


class _GraphRecording:
    """One `retailbot record` run: subscriptions follow the graph (re-scanned every second), the
    refusals (image topics, topics still missing after the discovery wait) and notes it collects."""

    def __init__(self, rclpy, context, recorder: McapRecorder, wanted: list[str] | None) -> None:
        from rclpy.executors import SingleThreadedExecutor

        from retail_observe.graph import ParameterSnapshot

        self.context, self.recorder, self.wanted = context, recorder, wanted
        self.node = rclpy.create_node('retailbot_record', context=context)
        self.snapshot = ParameterSnapshot(self.node, RERUN_PARAMETERS)  # the localisation's seed, for a re-run
        self.subscriptions: dict[str, object] = {}
        self.notes: list[str] = []
        self.refusal: list[str] = []
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.node.create_timer(SCAN_PERIOD_S, self.scan_graph)
        self.scan_graph()

    def scan_graph(self) -> None:
        from retail_observe.graph import definition_of, offered_qos, subscribe_raw

        self.snapshot.poll()
        try:
            choice = choose_topics(self.node.get_topic_names_and_types(), self.wanted)
        except RecordingError as exc:
            self.refusal[:] = [str(exc)]
            return
        for topic, type_name in choice.record.items():
            if topic in self.subscriptions or not self.node.get_publishers_info_by_topic(topic):
                continue  # seen through its subscribers only: its QoS (latched?) is known once a publisher is
            try:
                qos = offered_qos(self.node, topic)
                self.recorder.add_topic(topic, type_name, definition_of(type_name), qos)
                self.subscriptions[topic] = subscribe_raw(
                    self.node,
                    topic,
                    type_name,
                    qos,
                    lambda data, topic=topic: self.recorder.write(topic, data, time.time_ns()),
                )
            except DefinitionError as exc:
                if str(exc) not in self.notes:
                    self.notes.append(f'{topic}: skipped: {exc}')
        for topic, why in choice.skipped:
            if f'{topic}: {why}' not in self.notes:
                self.notes.append(f'{topic}: {why}')

    def unresolved(self) -> list[str]:
        return [
            t
            for t in self.wanted or []
            if t not in self.subscriptions and not any(n.startswith(f'{t}:') for n in self.notes)
        ]

    def _spin_while(self, keep_going, until: float) -> None:
        while keep_going() and time.monotonic() < until and self.context.ok():
            self.executor.spin_once(timeout_sec=min(0.1, max(0.0, until - time.monotonic())))

    def run(self, duration: float) -> None:
        """Wait (bounded) for the --topics, record `duration`, then let the localisation's
        parameters answer (bounded) with no message recorded past --duration meanwhile."""
        self._spin_while(lambda: not self.refusal and self.unresolved(), time.monotonic() + DISCOVERY_S)
        if not self.refusal and self.unresolved():
            self.refusal.append(_missing_topics(self.unresolved(), self.node.get_topic_names_and_types()))
        self._spin_while(lambda: not self.refusal and not self.recorder.full, time.monotonic() + duration)
        for subscription in self.subscriptions.values():
            self.node.destroy_subscription(subscription)
        deadline = time.monotonic() + MATCH_TIMEOUT_S
        while self.snapshot.pending() and time.monotonic() < deadline and self.context.ok():
            self.snapshot.poll()
            self.executor.spin_once(timeout_sec=0.1)

    def close(self, stream) -> OSError | None:
        """Parameters record, MCAP footer, file closed; the first OSError (disk full) or None."""
        failed: OSError | None = None
        try:
            for target, values in sorted(self.snapshot.values.items()):
                self.recorder.metadata(PARAMETERS_RECORD, parameters_record(target, values))
        except OSError as exc:
            failed = exc
        for close in (self.recorder.finish, stream.close):
            try:
                close()
            except OSError as exc:
                failed = failed or exc
        self.node.destroy_node()
        self.context.try_shutdown()
        return failed


def _record(args) -> int:
    try:
        duration, out = _record_target(args)
    except _Refused as refused:
        print(f'retailbot record: {refused}', file=sys.stderr)
        return refused.code
    part = out.with_name(out.name + '.part')  # renamed to --out once recorded: a refusal writes nothing
    try:
        stream = open(part, 'wb')
    except OSError as exc:
        print(f'retailbot record: cannot write {out}: {exc.strerror}', file=sys.stderr)
        return 1
    rclpy, context = _init_ros()
    recorder = McapRecorder(stream, max_bytes=int(args.max_mb * 1e6))
    run = _GraphRecording(rclpy, context, recorder, args.topics)
    failed: OSError | None = None
    try:
        run.run(duration)
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # disk full, file system gone: said in one line, not a traceback
        failed = exc
    finally:
        failed = run.close(stream) or failed
    code = _record_outcome(out, part, failed, run.refusal, recorder)
    if code is not None:
        return code
    notes = run.notes + [f'{topic}: not pseudonymised ({why})' for topic, why in recorder.schema_problems.items()]
    notes += [
        f'{topic}: {count} message(s) left out: could not be decoded to pseudonymise them'
        for topic, count in recorder.withheld.items()
    ]
    summary = {
        'file': str(out),
        'messages': recorder.messages,
        'bytes': recorder.bytes,
        'topics': recorder.per_topic,
        'full': recorder.full,
        'parameters': run.snapshot.values,
        'notes': notes,
    }
    _print(
        args,
        summary,
        f'recorded {recorder.messages} messages on {len(recorder.per_topic)} topics to {out}'
        + (' (size limit reached)' if recorder.full else ''),
    )
    return 0


def _record_outcome(
    out: Path, part: Path, failed: OSError | None, refusal: list[str], recorder: McapRecorder
) -> int | None:
    """The .part file renamed to --out (kept, incomplete, after a write failure; removed after a
    refusal); an exit code with its one line, or None when the recording is done."""
    if failed is not None:
        try:
            os.replace(part, out)  # what was recorded before the failure is kept
        except OSError:
            pass
        print(
            f'retailbot record: cannot write {out}: {failed.strerror or failed} '
            f'(the file is incomplete: {recorder.messages} messages were recorded before)',
            file=sys.stderr,
        )
        return 1
    if refusal:
        part.unlink(missing_ok=True)
        print(f'retailbot record: {refusal[0]}; nothing written', file=sys.stderr)
        return 2
    try:
        os.replace(part, out)
    except OSError as exc:
        print(f'retailbot record: cannot write {out}: {exc.strerror}', file=sys.stderr)
        return 1
    return None


def _missing_topics(topics: list[str], graph: list[tuple[str, list[str]]]) -> str:
    """One line naming each requested topic that has no publisher after the discovery wait."""
    on_graph = sorted(name for name, _ in graph)
    said = []
    for topic in topics[:10]:
        if topic in on_graph:
            said.append(f'{topic} (on the graph, but nothing publishes it)')
            continue
        close = difflib.get_close_matches(topic[:200], on_graph[:2000], n=1)
        said.append(f'{topic}' + (f' (did you mean {close[0]}?)' if close else ''))
    return f'not on the graph after {DISCOVERY_S:.0f} s: ' + ', '.join(said)


class _Refused(Exception):
    """A replay refused before it publishes anything: one line and its exit code."""

    def __init__(self, code: int, line: str) -> None:
        super().__init__(line)
        self.code = code


def _replay_choice(args, path: Path):
    """The recorded topics to publish and the choice (commands left out); _Refused on a bad file or --topics."""
    try:
        check_rate(args.rate)
    except RecordingError as exc:
        raise _Refused(2, str(exc)) from None
    try:
        recorded, skipped = read_channels(path)
    except RecordingError as exc:
        raise _Refused(1, str(exc)) from None
    in_file = sorted({t.topic for t in recorded} | {n.split(': skipped: ')[0] for n in skipped})
    absent = [t for t in args.topics or [] if t not in in_file]
    if absent:
        raise _Refused(2, f'not in {path}: {name_some(absent)}; it has {name_some(in_file)} ({len(in_file)} topics)')
    choice = split_commands([t for t in in_file if not args.topics or t in args.topics], args.include_commands)
    asked = [f'{topic} ({why})' for topic, why in choice.left_out if args.topics]
    if asked:
        raise _Refused(
            2,
            f'{name_some(asked, 3)} commands the robot: add --include-commands to replay it, on a ROS domain of its own',
        )
    if args.topics:
        skipped = [n for n in skipped if n.split(': skipped: ')[0] in args.topics]
    return [t for t in recorded if t.topic in choice.kept], choice, skipped


def _live_robot_refusal(node) -> str | None:
    live = _robot_nodes_on_graph(node)
    if not live:
        return None
    return (
        f"the robot's own nodes are on ROS_DOMAIN_ID {os.environ.get('ROS_DOMAIN_ID', '0')} ({name_some(live, 3)}): "
        'replay on a domain of its own (ROS_DOMAIN_ID=<a free one>), or add --on-live-robot'
    )


def _replay(args) -> int:
    path = Path(args.file)
    try:
        topics, choice, skipped = _replay_choice(args, path)
        try:
            rerun, seed_from, parameter_notes = _rerun_parameters(path, args.seed)
        except RecordingError as exc:
            raise _Refused(2 if str(exc).startswith('--') else 1, str(exc)) from None
    except _Refused as refused:
        print(f'retailbot replay: {refused}', file=sys.stderr)
        return refused.code
    rate = args.rate
    rclpy, context = _init_ros()
    from retail_observe.graph import message_class, qos_profile

    node = rclpy.create_node('retailbot_replay', context=context)
    refusal = None if args.on_live_robot else _live_robot_refusal(node)
    if refusal:
        node.destroy_node()
        context.try_shutdown()
        print(f'retailbot replay: {refusal}', file=sys.stderr)
        return 2
    clock_pub = None
    if args.clock:
        from rosgraph_msgs.msg import Clock

        clock_pub = node.create_publisher(Clock, '/clock', 10)
    from rclpy.exceptions import InvalidTopicNameException

    publishers = {}
    notes: list[str] = skipped + [f'{topic}: left out: {why} (--include-commands)' for topic, why in choice.left_out]
    notes += parameter_notes
    # before any message: the re-run node runs with the live robot's parameters from the start
    applied = _set_on_graph(node, rerun, notes)
    for topic in topics:
        try:
            publishers[topic.topic] = node.create_publisher(
                message_class(topic.type_name), topic.topic, qos_profile(topic.qos)
            )
        except DefinitionError as exc:
            notes.append(f'{topic.topic}: skipped: {exc}')
        except InvalidTopicNameException:
            notes.append(f'{topic.topic[:200]!r}: skipped: not a valid ROS topic name')
    published = 0
    status = 0
    schedule: ReplaySchedule | None = None
    try:
        _wait_for_subscribers(publishers)
        start = time.monotonic()
        schedule = ReplaySchedule(rate)
        for message in read_messages(path, list(publishers)):
            wait = start + schedule.offset_s(message.log_time_ns) - time.monotonic()
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
    if schedule is not None and schedule.gaps:
        notes.append(
            f'{schedule.gaps} pause(s) longer than {schedule.max_gap_s:.0f} s cut short '
            f'({schedule.skipped_s:.0f} s of recorded time not waited for)'
        )
    _print(
        args,
        {
            'file': str(path),
            'published': published,
            'topics': sorted(publishers),
            'parameters': applied,
            'seed_from': seed_from,
            'notes': notes,
        },
        f'replayed {published} messages on {len(publishers)} topics from {path}',
    )
    return status


def _set_on_graph(node, rerun: dict[str, dict], notes: list[str]) -> dict[str, dict]:
    """Set each node's recorded parameters through its parameter service; what was set (a node
    not on the graph or a refusal is a note)."""
    from retail_observe.graph import set_parameters

    applied: dict[str, dict] = {}
    for target, values in sorted(rerun.items()):
        refused = set_parameters(node, target, values, MATCH_TIMEOUT_S)
        if refused:
            notes.append(f'{target}: {", ".join(f"{k}={v}" for k, v in values.items())} not set: {refused}')
        else:
            applied[target] = values
    return applied


def _rerun_parameters(path: Path, seed: int | None) -> tuple[dict[str, dict], str, list[str]]:
    """The parameters to set on the re-run nodes (the recorded ones, `--seed` over the recorded
    seed), where the seed comes from ('recording', '--seed' or '') and notes on skipped records."""
    if seed is not None and not 0 <= seed < 2**31:
        raise RecordingError(f'--seed must be in [0, 2^31), not {seed}')
    recorded, notes = read_parameters(path)
    rerun = {target: dict(values) for target, values in recorded.items()}
    seed_from = 'recording' if 'seed' in rerun.get(LOCALIZATION, {}) else ''
    if seed is not None:
        rerun.setdefault(LOCALIZATION, {})['seed'] = seed
        seed_from = '--seed'
    return rerun, seed_from, notes


def _robot_nodes_on_graph(node, timeout: float = DISCOVERY_S) -> list[str]:
    """The robot's own nodes seen on the graph within the discovery wait (returns at the first seen)."""
    deadline = time.monotonic() + timeout
    while True:
        names = [ns.rstrip('/') + '/' + name for name, ns in node.get_node_names_and_namespaces()]
        live = robot_nodes_among(names)
        if live or time.monotonic() >= deadline:
            return live
        time.sleep(0.1)


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
