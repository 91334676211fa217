"""`retailbot replay` and `record` on real DDS: a replay never drives the robot by default and refuses a
graph where the robot's base runs; bad arguments and files are one line (exit 2, or 1 for a file it
cannot read), and a refused recording writes nothing."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from geometry_msgs.msg import Twist
from rclpy.qos import QoSProfile
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image, LaserScan

from retail_observe.graph import definition_of
from retail_observe.recording import McapRecorder
from rostest_support import console_script, wait_for

RELIABLE = {'durability': 'volatile', 'reliability': 'reliable'}
SCANS = 30


def _recording(path: Path) -> Path:
    """/scan (ranges[0] = 1..SCANS) every 50 ms, and a /cmd_vel of 0.45 m/s before and between them."""
    with open(path, 'wb') as stream:
        recorder = McapRecorder(stream)
        recorder.add_topic('/scan', 'sensor_msgs/msg/LaserScan', definition_of('sensor_msgs/msg/LaserScan'), RELIABLE)
        recorder.add_topic('/cmd_vel', 'geometry_msgs/msg/Twist', definition_of('geometry_msgs/msg/Twist'), RELIABLE)
        t0 = 1_000_000_000
        for i in range(SCANS):
            twist = Twist()
            twist.linear.x = 0.45
            recorder.write('/cmd_vel', serialize_message(twist), t0 + i * 50_000_000)
            recorder.write('/scan', serialize_message(LaserScan(ranges=[float(i + 1)])), t0 + i * 50_000_000 + 1)
        recorder.finish()
    return path


def _run(env, *args, timeout=90):
    return subprocess.run([console_script('retailbot'), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _listen(node, scans, commands):
    node.create_subscription(LaserScan, '/scan', lambda m: scans.append(m.ranges[0]), QoSProfile(depth=100))
    node.create_subscription(Twist, '/cmd_vel', lambda m: commands.append(m.linear.x), QoSProfile(depth=100))


def test_replay_leaves_out_cmd_vel_on_an_empty_graph(ros_context, spin, ros_env, tmp_path):
    import rclpy
    recording = _recording(tmp_path / 'drive.mcap')
    scans: list[float] = []
    commands: list[float] = []
    listener = rclpy.create_node('listener', context=ros_context)
    _listen(listener, scans, commands)
    spin(listener)

    done = _run(ros_env, 'replay', str(recording), '--json')
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary['topics'] == ['/scan'] and summary['published'] == SCANS
    assert any(n.startswith('/cmd_vel: left out: ') for n in summary['notes'])
    wait_for(lambda: float(SCANS) in scans, 20, 'the last replayed scan')
    assert commands == []

    # the control: the same file with --include-commands does publish /cmd_vel (the test can fail)
    done = _run(ros_env, 'replay', str(recording), '--include-commands', '--json')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)['topics'] == ['/cmd_vel', '/scan']
    wait_for(lambda: commands, 20, 'the replayed /cmd_vel with --include-commands')
    assert set(commands) == {0.45}


def test_replay_refuses_a_graph_with_the_robots_base(ros_context, spin, ros_env, tmp_path):
    import rclpy
    recording = _recording(tmp_path / 'drive.mcap')
    scans: list[float] = []
    commands: list[float] = []
    base = rclpy.create_node('base', namespace='/navigation', context=ros_context)
    _listen(base, scans, commands)
    spin(base)

    for args in [(), ('--topics', '/scan'), ('--include-commands',), ('--rate', '2', '--clock')]:
        done = _run(ros_env, 'replay', str(recording), *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        line = done.stderr.strip()
        assert len(line.splitlines()) == 1 and 'Traceback' not in line, line
        assert '/navigation/base' in line and '--on-live-robot' in line and 'ROS_DOMAIN_ID' in line
    assert scans == [] and commands == []

    # asked for explicitly it runs, and still without the commands
    done = _run(ros_env, 'replay', str(recording), '--on-live-robot', '--json')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)['topics'] == ['/scan']
    wait_for(lambda: float(SCANS) in scans, 20, 'the last replayed scan')
    assert commands == []


def test_replay_arguments_and_files_are_one_line(ros_env, tmp_path):
    recording = _recording(tmp_path / 'drive.mcap')
    data = recording.read_bytes()
    (tmp_path / 'empty.mcap').write_bytes(b'')
    (tmp_path / 'cut.mcap').write_bytes(data[: len(data) // 2])
    (tmp_path / 'tail.mcap').write_bytes(data[:-3])
    (tmp_path / 'text.mcap').write_text('hello\n')
    cases = [
        ((str(tmp_path / 'empty.mcap'),), 1, ['empty.mcap', 'empty file']),
        ((str(tmp_path / 'cut.mcap'),), 1, ['cut.mcap', 'truncated or corrupt MCAP (']),
        ((str(tmp_path / 'tail.mcap'),), 1, ['tail.mcap', 'truncated or corrupt MCAP (']),
        ((str(tmp_path / 'text.mcap'),), 1, ['text.mcap', 'not an MCAP file']),
        ((str(tmp_path / 'none.mcap'),), 1, ['none.mcap', 'cannot read']),
        ((str(recording), '--topics', '/sacn'), 2, ['/sacn', 'it has /cmd_vel, /scan (2 topics)']),
        ((str(recording), '--topics', '/scan', '/sacn', '/odom'), 2, ['/sacn, /odom', 'it has /cmd_vel, /scan']),
        ((str(recording), '--topics', '/cmd_vel'), 2, ['/cmd_vel (a velocity command: drives the base)', '--include-commands']),
        ((str(recording), '--topics', '/scan', '/cmd_vel'), 2, ['/cmd_vel', '--include-commands']),
        ((str(recording), '--rate', '0'), 2, ['--rate']),
    ]
    for args, code, words in cases:
        done = _run(ros_env, 'replay', *args)
        line = done.stderr.strip()
        assert done.returncode == code, (args, done.stderr)
        assert len(line.splitlines()) == 1 and 'Traceback' not in line, line
        assert all(w in line for w in words), (words, line)
        assert 'record has length' not in line or 'truncated' in line


def test_record_refuses_what_it_cannot_record_and_writes_nothing(ros_context, spin, ros_env, tmp_path):
    import rclpy
    talker = rclpy.create_node('talker', context=ros_context)
    scan_pub = talker.create_publisher(LaserScan, '/scan', 10)
    image_pub = talker.create_publisher(Image, '/perception/image_raw', 10)
    talker.create_subscription(LaserScan, '/only_read', lambda m: None, 10)
    talker.create_timer(0.1, lambda: (scan_pub.publish(LaserScan(ranges=[1.0])),
                                      image_pub.publish(Image(height=1, width=1, encoding='mono8', step=1, data=[7]))))
    spin(talker)
    kept = tmp_path / 'kept.mcap'
    kept.write_bytes(b'an earlier recording')
    cases = [
        (['--out', str(kept)], 2, ['kept.mcap exists', '--force']),
        (['--topics', '/sacn'], 2, ['/sacn (did you mean /scan?)', 'nothing written']),
        (['--topics', '/scan', '/sacn', '/odmo'], 2, ['/sacn', '/odmo', 'nothing written']),
        (['--topics', '/only_read'], 2, ['/only_read (on the graph, but nothing publishes it)']),
        (['--topics', '/perception/image_raw'], 2, ['/perception/image_raw', 'never recorded', 'nothing written']),
        (['--topics', '/scan', '/perception/image_raw'], 2, ['/perception/image_raw', 'never recorded']),
    ]
    for i, (args, code, words) in enumerate(cases):
        out = tmp_path / f'r{i}.mcap'
        full = args if '--out' in args else ['--out', str(out), *args]
        done = _run(ros_env, 'record', *full, '--duration', '2')
        line = done.stderr.strip()
        assert done.returncode == code, (args, done.stdout, done.stderr)
        assert len(line.splitlines()) == 1 and 'Traceback' not in line, line
        assert all(w in line for w in words), (words, line)
        assert not out.exists() and not list(tmp_path.glob('*.part')), args
    assert kept.read_bytes() == b'an earlier recording'

    # --force overwrites; a topic that is there is recorded
    done = _run(ros_env, 'record', '--out', str(kept), '--force', '--topics', '/scan', '--duration', '2', '--json')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)['topics']['/scan'] > 0
    assert kept.read_bytes()[:8] == b'\x89MCAP0\r\n' and not list(tmp_path.glob('*.part'))
