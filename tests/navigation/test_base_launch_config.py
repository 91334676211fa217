"""The base entries of launch/navigation.launch.yaml and config/navigation.yaml are valid."""
from __future__ import annotations

from pathlib import Path

from retail_ros.launch_file import load_launch
from retail_ros.params import overrides_for, resolve
from retail_navigation.base_driver_node import PARAMS

REPO = Path(__file__).resolve().parents[2]


def share(_package: str) -> str:
    return str(REPO)


def test_sim_true_starts_the_simulator_and_points_the_driver_at_its_pty():
    nodes = {n.fully_qualified_name: n for n in
             load_launch(REPO / 'launch' / 'navigation.launch.yaml', {'sim': 'true'}, share).nodes}
    sim, driver = nodes['/navigation/base_sim'], nodes['/navigation/base']
    assert sim.executable == 'retail_navigation_base_sim' and driver.executable == 'retail_navigation_base_driver'
    link = sim.args[sim.args.index('--link') + 1]
    assert ('param', ('port', link)) in driver.params
    assert sim.args[sim.args.index('--map') + 1].endswith('stores/demo/map.yaml')


def test_sim_false_drives_the_real_port_without_a_simulator():
    nodes = {n.fully_qualified_name: n for n in
             load_launch(REPO / 'launch' / 'navigation.launch.yaml', {'sim': 'false'}, share).nodes}
    assert '/navigation/base_sim' not in nodes
    assert ('param', ('port', '/dev/ttyUSB0')) in nodes['/navigation/base'].params


def test_the_params_file_section_of_the_base_validates():
    path = REPO / 'config' / 'navigation.yaml'
    values = resolve('/navigation/base', PARAMS, overrides_for('/navigation/base', ['--params-file', str(path)]))
    assert values['watchdog_s'] == 0.6 and values['max_vx'] <= 0.7
