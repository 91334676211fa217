"""MCAP recordings of the ROS graph: which topics to record, the bounded writer, the replay schedule.

Pure (no rclpy): the record and replay nodes discover the graph and move the CDR bytes; this module
decides and writes. Files are MCAP with the `ros2` profile, `cdr` message encoding and `ros2msg`
schemas (the full .msg definitions), as rosbag2 writes them: Foxglove, the `mcap` reader and the
`mcap-ros2-support` decoder read them unchanged.

Privacy: camera images (sensor_msgs Image/CompressedImage) are never recorded: they show faces
unblurred. Asking for an image topic by name is refused with a clear error, not silently dropped.
Every message of a type that carries a member's identity (`recording_privacy.FIELDS`: customer
events, greetings and utterances, interaction events, staff requests, log lines) is pseudonymised
before it is written (display names blanked, free text replaced by its length); one that cannot be
decoded for that is not written and is counted in `McapRecorder.withheld`.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from mcap.exceptions import McapError
from mcap.reader import make_reader
from mcap.well_known import MessageEncoding, SchemaEncoding
from mcap.writer import CompressionType, Writer

from retail_observe.recording_privacy import Pseudonymiser, UnreadableMessage
from retail_observe.replay_safety import unreadable_reason

IMAGE_TYPES = frozenset({'sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage'})
# The graph's own housekeeping: recorded only when asked for by name.
HOUSEKEEPING = frozenset({'/rosout', '/parameter_events'})
MAX_DURATION_S = 24 * 3600.0
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_REPLAY_GAP_S = 60.0  # a longer pause between two recorded messages is cut to this on replay
# The live parameters a re-run needs from the recorded robot, per node: written into the recording
# as one `parameters` metadata record per node (values JSON), set on the re-run node by replay.
RERUN_PARAMETERS: dict[str, tuple[str, ...]] = {'/navigation/localization': ('seed',)}
PARAMETERS_RECORD = 'parameters'
MAX_PARAMETER_TEXT = 4096
# What the mcap reader raises on a truncated, corrupt or hostile file.
READ_ERRORS = (OSError, McapError, ValueError, EOFError, struct.error, KeyError, IndexError, UnicodeDecodeError)


class RecordingError(ValueError):
    """A recording that cannot be made or read (one line, names the file or topic)."""


@dataclass(frozen=True)
class TopicChoice:
    record: dict[str, str]  # topic -> type ('pkg/msg/Name')
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (topic, why)
    missing: list[str] = field(default_factory=list)  # asked for, not on the graph (yet)


def choose_topics(graph: list[tuple[str, list[str]]], wanted: list[str] | None) -> TopicChoice:
    """Topics to record from the graph's (name, [types]): all (but housekeeping) or the `wanted`."""
    types = {name: list(kinds) for name, kinds in graph}
    if wanted:
        for topic in wanted:
            for kind in types.get(topic, []):
                if kind in IMAGE_TYPES:
                    raise RecordingError(f'{topic}: camera images are never recorded (faces unblurred)')
    record: dict[str, str] = {}
    skipped: list[tuple[str, str]] = []
    for name in sorted(types):
        kinds = types[name]
        if wanted and name not in wanted:
            continue
        if not wanted and (name in HOUSEKEEPING or any(part.startswith('_') for part in name.split('/'))):
            continue
        if len(set(kinds)) != 1:
            skipped.append((name, f'published with several types ({", ".join(sorted(set(kinds)))})'))
        elif kinds[0] in IMAGE_TYPES:
            skipped.append((name, 'camera image (faces unblurred): never recorded'))
        else:
            record[name] = kinds[0]
    missing = [t for t in (wanted or []) if t not in types]
    return TopicChoice(record=record, skipped=skipped, missing=missing)


def check_duration(seconds: float) -> float:
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_DURATION_S:
        raise RecordingError(f'--duration must be in (0, {MAX_DURATION_S:.0f}] seconds, not {seconds}')
    return seconds


def check_rate(rate: float) -> float:
    if not math.isfinite(rate) or not 0.01 <= rate <= 100.0:
        raise RecordingError(f'--rate must be in [0.01, 100], not {rate}')
    return rate


def _withhold(data: bytes) -> bytes:
    raise UnreadableMessage('schema not usable to pseudonymise')


class McapRecorder:
    """Writes CDR messages to an MCAP file, stopping (full) once `max_bytes` of messages are in it."""

    def __init__(self, out: BinaryIO, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.messages = 0
        self.per_topic: dict[str, int] = {}
        self.withheld: dict[str, int] = {}  # topic -> identity-carrying messages not decodable: not written
        self.full = False
        self._channels: dict[str, int] = {}
        self.schema_problems: dict[str, str] = {}  # topic -> why its messages cannot be pseudonymised
        self._pseudonymise: dict[str, Callable[[bytes], bytes]] = {}
        self._aliases: dict[str, str] = {}  # member id -> this file's alias (recording_privacy), never written
        self._sequence = 0
        self._writer = Writer(out, compression=CompressionType.ZSTD)
        self._writer.start(profile='ros2', library='retailbot record')
        self._finished = False

    def add_topic(self, topic: str, type_name: str, definition: str, qos: dict[str, str]) -> None:
        """Declare a topic: its schema (the full .msg definition) and its publishers' QoS as metadata.

        A type carrying a member's identity whose schema cannot be used to pseudonymise it has its
        messages withheld (counted in `withheld`, `schema_problems` says why), never written as received."""
        if topic in self._channels:
            return
        pseudonymiser: Callable[[bytes], bytes] | None
        try:
            pseudonymiser = Pseudonymiser.for_type(type_name, definition, self._aliases)
        except UnreadableMessage as exc:
            self.schema_problems[topic] = str(exc)
            pseudonymiser = _withhold
        if pseudonymiser is not None:
            self._pseudonymise[topic] = pseudonymiser
        schema_id = self._writer.register_schema(type_name, SchemaEncoding.ROS2, definition.encode())
        self._channels[topic] = self._writer.register_channel(topic, MessageEncoding.CDR, schema_id, metadata=dict(qos))
        self.per_topic[topic] = 0

    def write(self, topic: str, data: bytes, log_time_ns: int, publish_time_ns: int | None = None) -> bool:
        """Add one message; False once the size bound is reached (the message is not written).

        A message of an identity-carrying type is written pseudonymised; one that cannot be decoded
        for that is not written and is counted in `withheld`."""
        if self.full or self._finished:
            return False
        if topic not in self._channels:
            raise RecordingError(f'{topic}: not declared with add_topic')
        if topic in self._pseudonymise and len(data) <= MAX_MESSAGE_BYTES:
            try:
                data = self._pseudonymise[topic](data)
            except UnreadableMessage:
                self.withheld[topic] = self.withheld.get(topic, 0) + 1
                return True  # not written (never as received); counted, the recording goes on
        if len(data) > MAX_MESSAGE_BYTES or self.bytes + len(data) > self.max_bytes:
            self.full = True
            return False
        self._sequence += 1
        self._writer.add_message(
            self._channels[topic],
            log_time=log_time_ns,
            data=data,
            publish_time=publish_time_ns if publish_time_ns is not None else log_time_ns,
            sequence=self._sequence,
        )
        self.bytes += len(data)
        self.messages += 1
        self.per_topic[topic] += 1
        return True

    def metadata(self, name: str, values: dict[str, str]) -> None:
        """An MCAP metadata record (e.g. `incident`: its reasons and time), read with `iter_metadata`."""
        self._writer.add_metadata(name, values)

    def finish(self) -> None:
        if not self._finished:
            self._writer.finish()
            self._finished = True


@dataclass(frozen=True)
class RecordedTopic:
    topic: str
    type_name: str
    qos: dict[str, str]


@dataclass(frozen=True)
class Recorded:
    topic: str
    data: bytes
    log_time_ns: int


def read_topics(path: Path) -> list[RecordedTopic]:
    """The channels of a recording (its summary) that can be replayed."""
    return read_channels(path)[0]


def read_channels(path: Path) -> tuple[list[RecordedTopic], list[str]]:
    """(the channels that can be replayed, one line for each that cannot and why)."""
    try:
        with open(path, 'rb') as stream:
            summary = make_reader(stream).get_summary()
    except READ_ERRORS as exc:
        raise RecordingError(f'{path}: {_unreadable(path, exc)}') from None
    if summary is None:
        raise RecordingError(f'{path}: MCAP file has no summary (not finished?)')
    topics, skipped = [], []
    for channel in summary.channels.values():
        schema = summary.schemas.get(channel.schema_id)
        if channel.message_encoding != MessageEncoding.CDR:
            skipped.append(
                f'{channel.topic[:200]}: skipped: message encoding {channel.message_encoding[:50]!r}, not cdr (ROS 2)'
            )
        elif schema is None:
            skipped.append(f'{channel.topic[:200]}: skipped: no schema (message type unknown)')
        else:
            topics.append(RecordedTopic(channel.topic, schema.name, dict(channel.metadata)))
    return topics, skipped


def parameters_record(node: str, values: dict[str, object]) -> dict[str, str]:
    """The `parameters` metadata record of `node`'s parameter values (each JSON)."""
    return {'node': node, **{name: json.dumps(value) for name, value in sorted(values.items())}}


def read_parameters(path: Path) -> tuple[dict[str, dict[str, object]], list[str]]:
    """The recorded live parameters per node ({node: {name: value}}) and a note per record that
    cannot be used (not one of RERUN_PARAMETERS, not JSON, too long, not an int seed): reported
    and skipped, never a traceback. A recording without any (older, or no localisation running
    while recording) gives {}."""
    found: dict[str, dict[str, object]] = {}
    notes: list[str] = []
    try:
        with open(path, 'rb') as stream:
            records = [(m.name, dict(m.metadata)) for m in make_reader(stream).iter_metadata()]
    except READ_ERRORS as exc:
        raise RecordingError(f'{path}: unreadable MCAP metadata ({exc})') from None
    for name, values in records:
        if name != PARAMETERS_RECORD:
            continue
        node = values.pop('node', '')
        wanted = RERUN_PARAMETERS.get(node)
        if wanted is None:
            notes.append(f'{path}: parameters of {node[:100]!r}: not a node a replay re-runs: skipped')
            continue
        for key, text in values.items():
            if key not in wanted:
                continue
            try:
                if len(text) > MAX_PARAMETER_TEXT:
                    raise ValueError('too long')
                value = json.loads(text)
                if key == 'seed' and (type(value) is not int or not 0 <= value < 2**31):
                    raise ValueError('not an integer in [0, 2^31)')
            except ValueError as exc:
                notes.append(f'{path}: parameter {node} {key}: {exc}: skipped')
                continue
            found.setdefault(node, {})[key] = value
    return found, notes


def read_messages(path: Path, topics: list[str] | None = None) -> Iterator[Recorded]:
    """The recording's CDR messages in log-time order (only `topics` if given)."""
    try:
        with open(path, 'rb') as stream:
            reader = make_reader(stream)
            for _, channel, message in reader.iter_messages(topics=topics, log_time_order=True):
                if channel.message_encoding == MessageEncoding.CDR:
                    yield Recorded(channel.topic, message.data, message.log_time)
    except READ_ERRORS as exc:
        raise RecordingError(f'{path}: {_unreadable(path, exc)}') from None


@dataclass
class ReplaySchedule:
    """When each message of a replay is published (seconds after the start), at the recorded pace
    scaled by `rate`, except that a gap longer than `max_gap_s` (after scaling) between two
    messages is cut to `max_gap_s`: a recording spanning an idle night, or with a corrupt or
    hostile log time years ahead, must not leave the replay waiting for it. `gaps` counts the cuts
    and `skipped_s` the recorded time left out (reported by the replay)."""

    rate: float
    max_gap_s: float = MAX_REPLAY_GAP_S
    gaps: int = 0
    skipped_s: float = 0.0
    _first_ns: int | None = None
    _last_ns: int = 0
    _skipped_ns: int = 0

    def offset_s(self, log_time_ns: int) -> float:
        if self._first_ns is None:
            self._first_ns = self._last_ns = log_time_ns
        gap_ns = log_time_ns - self._last_ns
        if gap_ns / 1e9 / self.rate > self.max_gap_s:
            cut = gap_ns - int(self.max_gap_s * self.rate * 1e9)
            self._skipped_ns += cut
            self.gaps += 1
            self.skipped_s = self._skipped_ns / 1e9
        self._last_ns = max(self._last_ns, log_time_ns)
        return replay_offset_s(log_time_ns - self._skipped_ns, self._first_ns, self.rate)


def replay_offset_s(log_time_ns: int, first_ns: int, rate: float) -> float:
    """Seconds after the replay's start at which a message logged at `log_time_ns` is published."""
    return max(0.0, (log_time_ns - first_ns) / 1e9 / rate)


def _unreadable(path: Path, exc: BaseException) -> str:
    """Why the reader failed, in one line: empty file, not MCAP, or truncated/corrupt (the reader's words)."""
    try:
        size = path.stat().st_size
        with open(path, 'rb') as stream:
            head = stream.read(8)
            stream.seek(max(0, size - 8))
            tail = stream.read(8)
    except OSError as err:
        return f'cannot read ({err.strerror})'
    return unreadable_reason(size, head, tail, str(exc)[:200])
