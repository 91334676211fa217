"""MCAP recordings of the ROS graph: which topics to record, the bounded writer, the replay schedule.

Pure (no rclpy): the record and replay nodes discover the graph and move the CDR bytes; this module
decides and writes. Files are MCAP with the `ros2` profile, `cdr` message encoding and `ros2msg`
schemas (the full .msg definitions), as rosbag2 writes them: Foxglove, the `mcap` reader and the
`mcap-ros2-support` decoder read them unchanged.

Privacy: camera images (sensor_msgs Image/CompressedImage) are never recorded: they show faces
unblurred. Asking for an image topic by name is refused with a clear error, not silently dropped.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

from mcap.exceptions import McapError
from mcap.reader import make_reader
from mcap.well_known import MessageEncoding, SchemaEncoding
from mcap.writer import CompressionType, Writer

IMAGE_TYPES = frozenset({'sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage'})
# The graph's own housekeeping: recorded only when asked for by name.
HOUSEKEEPING = frozenset({'/rosout', '/parameter_events'})
MAX_DURATION_S = 24 * 3600.0
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
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


class McapRecorder:
    """Writes CDR messages to an MCAP file, stopping (full) once `max_bytes` of messages are in it."""

    def __init__(self, out: BinaryIO, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.messages = 0
        self.per_topic: dict[str, int] = {}
        self.full = False
        self._channels: dict[str, int] = {}
        self._sequence = 0
        self._writer = Writer(out, compression=CompressionType.ZSTD)
        self._writer.start(profile='ros2', library='retailbot record')
        self._finished = False

    def add_topic(self, topic: str, type_name: str, definition: str, qos: dict[str, str]) -> None:
        """Declare a topic: its schema (the full .msg definition) and its publishers' QoS as metadata."""
        if topic in self._channels:
            return
        schema_id = self._writer.register_schema(type_name, SchemaEncoding.ROS2, definition.encode())
        self._channels[topic] = self._writer.register_channel(topic, MessageEncoding.CDR, schema_id, metadata=dict(qos))
        self.per_topic[topic] = 0

    def write(self, topic: str, data: bytes, log_time_ns: int, publish_time_ns: int | None = None) -> bool:
        """Add one message; False once the size bound is reached (the message is not written)."""
        if self.full or self._finished:
            return False
        if topic not in self._channels:
            raise RecordingError(f'{topic}: not declared with add_topic')
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
    """The channels of a recording (its summary)."""
    try:
        with open(path, 'rb') as stream:
            summary = make_reader(stream).get_summary()
    except READ_ERRORS as exc:
        raise RecordingError(f'{path}: not a readable MCAP file ({exc})') from None
    if summary is None:
        raise RecordingError(f'{path}: MCAP file has no summary (not finished?)')
    topics = []
    for channel in summary.channels.values():
        schema = summary.schemas.get(channel.schema_id)
        if schema is None or channel.message_encoding != MessageEncoding.CDR:
            continue
        topics.append(RecordedTopic(channel.topic, schema.name, dict(channel.metadata)))
    return topics


def read_messages(path: Path, topics: list[str] | None = None) -> Iterator[Recorded]:
    """The recording's CDR messages in log-time order (only `topics` if given)."""
    try:
        with open(path, 'rb') as stream:
            reader = make_reader(stream)
            for _, channel, message in reader.iter_messages(topics=topics, log_time_order=True):
                if channel.message_encoding == MessageEncoding.CDR:
                    yield Recorded(channel.topic, message.data, message.log_time)
    except READ_ERRORS as exc:
        raise RecordingError(f'{path}: unreadable MCAP data ({exc})') from None


def replay_offset_s(log_time_ns: int, first_ns: int, rate: float) -> float:
    """Seconds after the replay's start at which a message logged at `log_time_ns` is published."""
    return max(0.0, (log_time_ns - first_ns) / 1e9 / rate)
