"""The live-settings core (no ROS): the plan, all-or-nothing across nodes, a node that does not
answer, a node not running. The nodes here are a table in memory (a unit test); the real
parameter services are in test_fleet_agent.py."""
from __future__ import annotations

import pytest

from retail_sync import live_settings
from retail_sync.fleet import Settings


class Nodes:
    def __init__(self, limits: dict[str, float], silent: set[str] = frozenset(),
                 gone: set[str] = frozenset()) -> None:
        self.values = {'/dialogue/tts': {'volume': 1.0},
                       '/perception/faces': {'approach_distance_m': 2.0},
                       '/navigation/guide': {'max_vx': 0.45}}
        self.limits, self.silent, self.gone = limits, silent, gone
        self.calls: list[tuple[str, dict]] = []

    def running(self) -> set[str]:
        return set(self.values) - self.gone

    def get(self, node, names):
        return {n: self.values[node][n] for n in names}

    def set_atomically(self, node, values):
        self.calls.append((node, dict(values)))
        if node in self.silent:
            raise live_settings.PortError(f'{node}: no answer within 5 s')
        for name, value in values.items():
            if isinstance(value, float) and value > self.limits.get(name, float('inf')):
                return f"key '{name}': {value} is above the maximum"
        self.values[node].update(values)
        return ''


def test_plan_orders_the_base_speed_last_and_every_setting_has_a_node():
    changes = live_settings.plan(Settings(max_speed_mps=0.6, greeting_distance_m=1.5, volume=0.3,
                                          opening_hours='09:00-21:00'))
    assert list(changes.items()) == [('/dialogue/manager', {'opening_hours': '09:00-21:00'}),
                                     ('/dialogue/tts', {'volume': 0.3}),
                                     ('/perception/faces', {'approach_distance_m': 1.5}),
                                     ('/navigation/guide', {'max_vx': 0.6})]
    # two settings of one node go in its one atomic call
    assert live_settings.plan(Settings(max_speed_mps=0.6, near_people_speed_mps=0.3)) == {
        '/navigation/guide': {'max_vx': 0.6, 'near_people_vx': 0.3}}
    assert live_settings.NOT_LIVE == ()
    # the stop distance is set before the speed (a faster robot never runs with the old margin)
    assert list(live_settings.plan(Settings(max_speed_mps=0.6, safety_distance_m=0.5))) == [
        '/navigation/collision_monitor', '/navigation/guide']


@pytest.mark.parametrize('setting, value, node, parameter', [
    ('max_speed_mps', 0.6, '/navigation/guide', 'max_vx'),
    ('greeting_distance_m', 1.5, '/perception/faces', 'approach_distance_m'),
    ('volume', 0.5, '/dialogue/tts', 'volume'),
    ('near_people_speed_mps', 0.3, '/navigation/guide', 'near_people_vx'),
    ('safety_distance_m', 0.5, '/navigation/collision_monitor', 'stop_margin_m'),
    ('opening_hours', '10:00-01:00', '/dialogue/manager', 'opening_hours'),
])
def test_each_live_setting_reaches_its_node_parameter(setting, value, node, parameter):
    """One row per setting a node takes live (the node's ParamSpec of that name is read_only=False:
    tests/navigation, tests/perception, tests/dialogue set it on the running node)."""
    assert live_settings.plan(Settings(**{setting: value})) == {node: {parameter: value}}


@pytest.mark.parametrize('limits, silent, problem', [
    ({'max_vx': 1.0}, set(), "node /navigation/guide refused max_vx=1.1: key 'max_vx'"),
    ({}, {'/navigation/guide'}, 'node /navigation/guide refused max_vx=1.1: /navigation/guide: no answer'),
])
def test_a_refusal_or_silence_sets_every_changed_node_back(limits, silent, problem):
    nodes = Nodes(limits, silent)
    changes = live_settings.plan(Settings(max_speed_mps=1.1, greeting_distance_m=3.0))
    found, skipped = live_settings.apply(changes, nodes)
    assert found.startswith(problem) and skipped == []
    assert nodes.values == {'/dialogue/tts': {'volume': 1.0}, '/perception/faces': {'approach_distance_m': 2.0},
                            '/navigation/guide': {'max_vx': 0.45}}
    assert nodes.calls[-1] == ('/perception/faces', {'approach_distance_m': 2.0})


def test_all_taken_and_a_node_not_running_is_skipped():
    nodes = Nodes({'max_vx': 1.0}, gone={'/perception/faces'})
    found, skipped = live_settings.apply(
        live_settings.plan(Settings(max_speed_mps=0.6, greeting_distance_m=3.0)), nodes)
    assert (found, skipped) == ('', ['/perception/faces'])
    assert nodes.values['/navigation/guide'] == {'max_vx': 0.6}


def test_opening_hours_are_all_or_nothing_with_the_others():
    """A rollout setting the hours and a speed the guide refuses: the dialogue manager's hours are
    set back to what it had (the hours never change alone)."""
    nodes = Nodes({'max_vx': 1.0})
    nodes.values['/dialogue/manager'] = {'opening_hours': ''}
    found, _ = live_settings.apply(live_settings.plan(Settings(opening_hours='09:00-21:00', max_speed_mps=1.1)),
                                   nodes)
    assert found.startswith("node /navigation/guide refused max_vx=1.1")
    assert nodes.values['/dialogue/manager'] == {'opening_hours': ''}
    assert ('/dialogue/manager', {'opening_hours': '09:00-21:00'}) in nodes.calls


@pytest.mark.parametrize('hours, problem', [('24:00-10:00', 'opening_hours'), ('10:00-10:00', 'both 10:00'),
                                            ('9-21', 'opening_hours')])
def test_a_desired_state_with_bad_hours_is_refused_whole(hours, problem):
    from retail_sync.fleet import check_desired
    document, why = check_desired('{"settings": {"opening_hours": "%s", "volume": 0.5}}' % hours)
    assert document is None and problem in why and '\n' not in why
