"""The localisation's seed travels with the recording: `retailbot record` writes the running
localisation's `seed` into the MCAP (a `parameters` metadata record), `retailbot replay` sets it on
the re-run localisation node before the first message without being told, `--seed` overrides it;
a recording without one leaves the node's seed alone; a bad record is reported and skipped."""
from __future__ import annotations

import json
import subprocess

import pytest

from retail_observe.recording import (
    PARAMETERS_RECORD,
    McapRecorder,
    parameters_record,
    read_parameters,
)
from rostest_support import REPO, console_script, localization_launch, localization_seed, stop_process, wait_for

NODE = '/navigation/localization'


def _file(path, *records: tuple[str, dict[str, str]]):
    with open(path, 'wb') as stream:
        recorder = McapRecorder(stream)
        recorder.add_topic('/navigation/localization_state', 'std_msgs/msg/String', 'string data\n',
                           {'durability': 'volatile', 'reliability': 'reliable'})
        for name, values in records:
            recorder.metadata(name, values)
        recorder.finish()
    return path


@pytest.mark.parametrize('values, found, note', [
    (parameters_record(NODE, {'seed': 5}), {NODE: {'seed': 5}}, ''),
    ({'node': NODE, 'seed': '"5"'}, {}, 'not an integer'),
    ({'node': NODE, 'seed': '1.5'}, {}, 'not an integer'),
    ({'node': NODE, 'seed': 'true'}, {}, 'not an integer'),
    ({'node': NODE, 'seed': '-1'}, {}, 'not an integer'),
    ({'node': NODE, 'seed': str(2**31)}, {}, 'not an integer'),
    ({'node': NODE, 'seed': '{'}, {}, 'seed'),
    ({'node': NODE, 'seed': '1' * 5000}, {}, 'too long'),
    ({'node': '/elsewhere', 'seed': '5'}, {}, 'not a node a replay re-runs'),
    ({'node': NODE, 'max_particles': '9'}, {}, ''),               # not a re-run parameter: ignored
])
def test_recorded_parameters_are_read_or_reported(tmp_path, values, found, note):
    path = _file(tmp_path / 'f.mcap', (PARAMETERS_RECORD, values), ('incident', {'reasons': '[]'}))
    got, notes = read_parameters(path)
    assert got == found
    assert (note in notes[0] and 'f.mcap' in notes[0]) if note else notes == []


def test_a_recording_without_parameters_has_none(tmp_path):
    assert read_parameters(_file(tmp_path / 'old.mcap')) == ({}, [])


def _run(ros_env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([console_script('retailbot'), *args], env=ros_env, capture_output=True,
                          text=True, timeout=120)


def test_record_writes_the_seed_and_replay_sets_it_or_the_override(ros_context, spin, ros_env, tmp_path):
    import rclpy

    from retail_observe.graph import set_parameters

    launch_file = localization_launch(tmp_path / 'localization.launch.yaml', tmp_path / 'data', seed=5)
    asker = rclpy.create_node('test_params', context=ros_context)
    launch = subprocess.Popen([console_script('retailbot'), 'launch', str(launch_file)], env=ros_env,
                              stdout=open(tmp_path / 'launch.log', 'w'), stderr=subprocess.STDOUT,
                              start_new_session=True)
    out = tmp_path / 'rec.mcap'
    try:
        assert localization_seed(asker) == 5
        done = _run(ros_env, 'record', '--out', str(out), '--duration', '3', '--topics',
                    '/navigation/localization_state', '--json')
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)['parameters'] == {NODE: {'seed': 5}}
        assert read_parameters(out) == ({NODE: {'seed': 5}}, [])

        # a re-run node started with another seed gets the recorded one from the replay
        assert set_parameters(asker, NODE, {'seed': 9}, 30) == ''
        assert localization_seed(asker) == 9
        done = _run(ros_env, 'replay', str(out), '--json')
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary['parameters'] == {NODE: {'seed': 5}} and summary['seed_from'] == 'recording'
        assert localization_seed(asker) == 5
        # --seed overrides the recorded one
        done = _run(ros_env, 'replay', str(out), '--seed', '11', '--json')
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)['seed_from'] == '--seed' and localization_seed(asker) == 11
        # a recording made without one leaves the node's seed alone
        done = _run(ros_env, 'replay', str(_file(tmp_path / 'old.mcap')), '--json')
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)['parameters'] == {} and localization_seed(asker) == 11
        # the node checks a seed set live with its own rules (one line naming node and key)
        refused = set_parameters(asker, NODE, {'seed': -3}, 30)
        assert NODE in refused and 'seed' in refused and localization_seed(asker) == 11
    finally:
        stop_process(launch, timeout=30)

    # no localisation on the graph: replayed anyway, the seed not set is said
    done = _run(ros_env, 'replay', str(out), '--json')
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary['parameters'] == {} and any('seed=5 not set' in n for n in summary['notes'])
    for bad in ('-1', str(2**31)):
        done = _run(ros_env, 'replay', str(out), '--seed', bad)
        assert done.returncode == 2 and '--seed' in done.stderr and 'Traceback' not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_each_incident_file_has_the_seed_in_use_when_it_happened(ros_context, spin, tmp_path):
    import rclpy
    from rclpy.parameter import Parameter

    from retail_interfaces.msg import BaseSafety
    from retail_navigation.localization_node import LocalizationNode
    from retail_observe.incident_node import IncidentRecorderNode
    from retail_ros.qos import LATCHED

    localisation = LocalizationNode(context=ros_context, namespace='navigation', parameter_overrides=[
        Parameter('store_dir', value=str(REPO / 'config' / 'stores' / 'demo')),
        Parameter('data_dir', value=str(tmp_path / 'loc')), Parameter('seed', value=5)])
    talker = rclpy.create_node('talker', context=ros_context)
    safety = talker.create_publisher(BaseSafety, '/navigation/safety', LATCHED)
    recorder = IncidentRecorderNode(context=ros_context, parameter_overrides=[
        Parameter('data_dir', value=str(tmp_path)), Parameter('before_s', value=1.0),
        Parameter('after_s', value=3.0)])      # the file is written 3 s after (a robot's: 60 s)
    spin(localisation, talker, recorder)
    wait_for(lambda: recorder.snapshot.values, 30, 'the recorder asking the localisation its seed')
    safety.publish(BaseSafety(bumper_centre=True, latched=True, reason='bumper'))
    first = wait_for(lambda: list(recorder.written), 30, 'the first incident file')[0]
    assert read_parameters(first) == ({NODE: {'seed': 5}}, [])
    # the seed changed live: the next incident's file has the new one (an incident asks again)
    localisation.set_parameters([Parameter('seed', value=8)])
    safety.publish(BaseSafety(latched=False, reason=''))
    wait_for(lambda: recorder.detector.last.get('bumper') is False, 30, 'the bumper released')
    safety.publish(BaseSafety(bumper_centre=True, latched=True, reason='bumper'))
    second = wait_for(lambda: [p for p in recorder.written if p != first], 30, 'the second incident file')[0]
    assert read_parameters(second) == ({NODE: {'seed': 8}}, [])
