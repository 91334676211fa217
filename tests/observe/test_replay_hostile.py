"""`retailbot replay` against hostile or odd recordings: a schema name never makes it import an
arbitrary Python module, channels it cannot replay are named with the reason (never a traceback or
a silent drop), a long pause or a log time years ahead is cut short, not waited for."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcap.writer import Writer

from retail_observe.graph import message_class
from retail_observe.msgdefs import DefinitionError
from retail_observe.recording import MAX_REPLAY_GAP_S, ReplaySchedule, read_channels

HI = b'\x00\x01\x00\x00\x03\x00\x00\x00hi\x00'


def write_mcap(path: Path, channels: list[tuple[str, str, str, str]], times=(1,)) -> Path:
    """channels: (topic, message encoding, schema name, schema encoding)."""
    out = io.BytesIO()
    writer = Writer(out)
    writer.start('ros2', 'test')
    for topic, encoding, schema, schema_encoding in channels:
        sid = writer.register_schema(schema, schema_encoding, b'string data') if schema else 0
        cid = writer.register_channel(topic, encoding, sid)
        for t in times:
            writer.add_message(cid, log_time=t, data=HI, publish_time=t)
    writer.finish()
    path.write_bytes(out.getvalue())
    return path


@pytest.mark.parametrize('type_name', [
    'this/msg/String',                 # Python's `this` prints on import
    'antigravity/msg/Foo',             # opens a web browser on import
    'os/msg/Foo', 'retail_platform/msg/App', 'std_msgs/msg/NoSuchType',
    'std_msgs/msg/string', 'Std_msgs/msg/String', 'std_msgs/msg/Str..ing', '../x/msg/Y', 'a b/msg/C',
])
def test_a_type_name_from_a_file_or_the_graph_never_imports_another_module(type_name):
    before = set(sys.modules)
    with pytest.raises(DefinitionError):
        message_class(type_name)
    assert not {m for m in set(sys.modules) - before if m.split('.')[0] in ('this', 'antigravity', 'os')}


def test_an_installed_message_type_still_loads():
    assert message_class('std_msgs/msg/String').__name__ == 'String'
    assert message_class('sensor_msgs/LaserScan').__name__ == 'LaserScan'


@pytest.mark.parametrize('channel, why', [
    (('/j', 'json', 'Foo', 'jsonschema'), "message encoding 'json', not cdr"),
    (('/p', 'protobuf', 'pkg.Foo', 'protobuf'), "message encoding 'protobuf', not cdr"),
    (('/n', 'cdr', '', ''), 'no schema'),
])
def test_channels_that_cannot_be_replayed_are_named_with_why(tmp_path, channel, why):
    path = write_mcap(tmp_path / 'odd.mcap', [channel, ('/chat', 'cdr', 'std_msgs/msg/String', 'ros2msg')])
    topics, skipped = read_channels(path)
    assert [t.topic for t in topics] == ['/chat']
    assert len(skipped) == 1 and skipped[0].startswith(f'{channel[0]}: skipped: ') and why in skipped[0]


@pytest.mark.parametrize('times_s, rate, offsets', [
    ([0, 1, 2], 1.0, [0, 1, 2]),                                    # ordinary pace kept
    ([0, 1, 2], 2.0, [0, 0.5, 1]),
    ([0, 1, 1 + 3600, 1 + 3601], 1.0, [0, 1, 1 + MAX_REPLAY_GAP_S, 2 + MAX_REPLAY_GAP_S]),  # an idle hour
    ([0, 10 ** 9], 1.0, [0, MAX_REPLAY_GAP_S]),                     # a log time 31 years ahead
    ([0, 100, 200], 0.5, [0, MAX_REPLAY_GAP_S, 2 * MAX_REPLAY_GAP_S]),  # slowed: the scaled gap counts
    ([0, 100], 100.0, [0, 1]),                                      # sped up: 100 s is 1 s, kept
])
def test_long_pauses_are_cut_short_not_waited_for(times_s, rate, offsets):
    schedule = ReplaySchedule(rate)
    got = [schedule.offset_s(int(t * 1e9)) for t in times_s]
    assert got == pytest.approx(offsets)
    assert schedule.gaps == sum(1 for a, b in zip(times_s, times_s[1:]) if (b - a) / rate > MAX_REPLAY_GAP_S)


def test_replay_of_hostile_channels_says_why_in_one_line_each(tmp_path, ros_env):
    path = write_mcap(tmp_path / 'hostile.mcap', [
        ('bad topic!!', 'cdr', 'std_msgs/msg/String', 'ros2msg'),
        ('/zen', 'cdr', 'this/msg/String', 'ros2msg'),
        ('/chat', 'cdr', 'std_msgs/msg/String', 'ros2msg')], times=(1, 2))
    replay = [str(Path(sys.executable).with_name('retailbot')), 'replay', str(path), '--json', '--topics']
    absent = subprocess.run([*replay, '/chat', '/absent'], capture_output=True, text=True, timeout=120, env=ros_env)
    assert absent.returncode == 2 and '/absent' in absent.stderr and len(absent.stderr.splitlines()) == 1
    done = subprocess.run([*replay, '/chat', 'bad topic!!', '/zen'],
                          capture_output=True, text=True, timeout=120, env=ros_env)
    assert done.returncode == 0, done.stderr
    assert 'Traceback' not in done.stderr and 'Beautiful is better' not in done.stdout
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary['published'] == 2 and summary['topics'] == ['/chat']
    assert sorted(summary['notes']) == sorted([
        "'bad topic!!': skipped: not a valid ROS topic name",
        '/zen: skipped: message type this/msg/String is not installed'])


def _record(args: list[str], limit_bytes: int | None = None) -> subprocess.CompletedProcess:
    import resource
    import signal

    def limit() -> None:  # a file system that refuses more bytes (EFBIG, as ENOSPC on a full disk)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    env = {**os.environ, 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
    return subprocess.run([str(Path(sys.executable).with_name('retailbot')), 'record', *args],
                          capture_output=True, text=True, timeout=120, env=env,
                          preexec_fn=limit if limit_bytes else None)


def test_record_never_overwrites_an_earlier_recording(tmp_path):
    kept = tmp_path / 'incident.mcap'
    kept.write_bytes(b'an earlier recording')
    done = _record(['--out', str(kept), '--duration', '1'])
    assert done.returncode == 2 and f'{kept} exists' in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert kept.read_bytes() == b'an earlier recording'


def test_a_file_that_cannot_grow_is_one_line_not_a_traceback(tmp_path):
    done = _record(['--out', str(tmp_path / 'x.mcap'), '--duration', '1'], limit_bytes=64)
    assert done.returncode == 1 and 'Traceback' not in done.stderr, done.stderr
    ours = [line for line in done.stderr.splitlines() if line.startswith('retailbot record:')]
    assert len(ours) == 1 and 'cannot write' in ours[0] and 'incomplete' in ours[0], done.stderr
    # (the limit also stops DDS's shared-memory files: FastDDS logs that, and falls back to UDP)
