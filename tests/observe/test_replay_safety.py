"""What a replay publishes (pure): never what commands the robot or starts its behaviour by default,
never on a graph where the robot's own nodes run; one-line reasons for files it cannot read."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from retail_common import names
from retail_common.cli_output import name_some
from retail_observe.replay_safety import (ROBOT_NODES, command_reason, robot_nodes_among, split_commands,
                                          unreadable_reason)

REPO = Path(__file__).resolve().parents[2]

# topic -> left out by default (True) or replayed (False)
TOPICS = [
    ('/cmd_vel', True), ('/navigation/guide/cmd_vel', True), ('/base/cmd_vel', True), ('/cmd_vel_nav', True),
    ('/navigation/cmd_vel_stamped', True),
    ('/dialogue/utterances', True), ('/perception/customer_events', True), ('/dialogue/replies', True),
    ('/dialogue/tts_stop', True), ('/dialogue/speech_status', True), ('/dialogue/listen_context', True),
    ('/dialogue/staff_requests', True), ('/navigation/safety', True), ('/navigation/localization_state', True),
    ('/initialpose', True), ('/sync/data_updates', True), ('/ui/staff_session', True), ('/parameter_events', True),
    ('/navigation/arrivals', True), ('/sync/interaction_events', True),
    ('/navigation/guide_to/_action/feedback', True), ('/navigation/guide_to/_action/status', True),
    ('/navigation/tour/_action/status', True), ('/some/_service/request', True),
    ('/navigation/relocalise', True), ('/recommendation/recommend', True), ('/sync/record_events', True),
    ('/perception/enroll_face', True), ('/perception/delete_member', True),
    ('/scan', False), ('/odom', False), ('/tf', False), ('/tf_static', False), ('/map', False),
    ('/navigation/pose', False), ('/navigation/particle_cloud', False), ('/perception/people', False),
    ('/diagnostics', False), ('/rosout', False), ('/navigation/battery', False), ('/clock', False),
    ('/navigation/plan', False), ('/dialogue/utterances_log', False), ('/cmd', False),
    ('/navigation/guide_tour_notes', False),
]


@pytest.mark.parametrize('topic,left_out', TOPICS)
def test_each_topic_is_kept_or_left_out(topic, left_out):
    choice = split_commands([topic], include_commands=False)
    assert (choice.left_out != []) is left_out and (choice.kept == []) is left_out
    assert split_commands([topic], include_commands=True).kept == [topic]
    if left_out:
        assert choice.left_out[0][0] == topic and choice.left_out[0][1]


# Every name of retail_common.names is decided: a command (left out) or what the robot sensed or
# produced (replayed so its own nodes can re-run on it). A new name fails here until it is decided.
REPLAYED_NAMES = {'ODOM', 'MAP', 'DIAGNOSTICS', 'PEOPLE', 'TF', 'TF_STATIC', 'SCAN', 'POSE', 'PARTICLE_CLOUD',
                  'LOCALIZATION_UPDATES'}  # a re-run's inputs (what each live update used), no command


def test_every_name_of_the_robot_is_decided():
    constants = {k: v for k, v in vars(names).items() if k.isupper() and isinstance(v, str)}
    assert REPLAYED_NAMES <= set(constants)
    for key, topic in constants.items():
        assert (command_reason(topic) is None) is (key in REPLAYED_NAMES), key


def _launched_nodes() -> set[str]:
    found: set[str] = set()

    def walk(item):
        if isinstance(item, dict):
            node = item.get('node')
            if isinstance(node, dict) and 'name' in node:
                found.add('/' + '/'.join(p for p in (node.get('namespace', ''), node['name']) if p))
            for value in item.values():
                walk(value)
        elif isinstance(item, list):
            for value in item:
                walk(value)

    for path in (REPO / 'launch').glob('*.yaml'):
        walk(yaml.safe_load(path.read_text()))
    return found


# Launched nodes a replay may run beside (re-run against a recording); every other is the robot.
RERUNNABLE = {'/navigation/localization', '/navigation/collision_monitor', '/perception/camera', '/perception/faces',
              '/recommendation/server', '/health', '/foxglove', '/incident_recorder'}


def test_robot_nodes_are_the_launch_files_nodes_that_act():
    launched = _launched_nodes()
    assert {'/navigation/base', '/navigation/base_sim', '/dialogue/manager'} <= launched
    assert ROBOT_NODES <= launched
    assert launched - ROBOT_NODES == RERUNNABLE


@pytest.mark.parametrize('graph,live', [
    ([], []), (['/retailbot_replay', '/listener'], []), (['/navigation/localization'], []),
    (['/navigation/base'], ['/navigation/base']), (['/navigation/base_sim', '/x'], ['/navigation/base_sim']),
    (['/dialogue/manager', '/navigation/guide'], ['/dialogue/manager', '/navigation/guide']),
    (['/base'], []), (['/other/navigation/base'], []),
])
def test_robot_nodes_on_a_graph(graph, live):
    assert robot_nodes_among(graph) == live


MAGIC = b'\x89MCAP0\r\n'


@pytest.mark.parametrize('size,head,tail,error,words', [
    (0, b'', b'', '', 'empty file'),
    (7, b'garbage', b'garbage', 'x', 'not an MCAP file'),
    (4, MAGIC[:4], MAGIC[:4], 'unpack requires a buffer of 8 bytes', 'truncated or corrupt MCAP (unpack'),
    (9000, MAGIC, b'\x00' * 8, 'record has length 8491837142723626273 that exceeds limit',
     'truncated or corrupt MCAP (record has length'),
    (9000, MAGIC, b'\x00' * 8, '', 'truncated or corrupt MCAP (the file ends before its footer'),
    (9000, MAGIC, MAGIC, 'FOOTER record has length 1 that exceeds limit', 'truncated or corrupt MCAP (FOOTER'),
])
def test_unreadable_files_say_why_in_one_line(size, head, tail, error, words):
    said = unreadable_reason(size, head, tail, error)
    assert said.startswith(words) and '\n' not in said


def test_name_some_is_bounded():
    assert name_some([]) == 'none'
    assert name_some(['/a', '/b']) == '/a, /b'
    assert name_some([f'/t{i}' for i in range(9)]) == '/t0, /t1, /t2, /t3, /t4 and 4 more'
