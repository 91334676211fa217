"""`retailbot plan` as a technician types it: negative coordinates, zones by any name, one-line errors."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import yaml

from retail_common.catalog import Catalog
from retail_common.store import Store, StoreError, load_store, parse_zones
from retail_navigation.maps import StoreMap, save_map
from retail_navigation.zones import find_zone, load_zones_store
from rostest_support import REPO, console_script

DEMO = REPO / 'config' / 'stores' / 'demo'
ZONES = {'frame_id': 'map', 'zones': {
    'kitchen': {'kind': 'product', 'name_zh': '厨房电器区', 'name_en': 'Kitchen Appliances',
                'categories': ['air_fryer'], 'pose': [-6.0, -2.0, 0.0]},
    'phones': {'kind': 'product', 'name_zh': '手机数码区', 'name_en': 'Phones & Wearables',
               'categories': ['phone'], 'pose': [-8.0, -1.0, 0.0]},
    'dock': {'kind': 'service', 'name_zh': '充电桩', 'name_en': 'Dock', 'pose': [-8.5, -3.5, 0.0]}}}


@pytest.fixture
def store(tmp_path):
    """A 6 m x 5 m free room whose map origin is (-10, -5): every coordinate in it is negative."""
    grid = np.zeros((100, 120), np.int8)
    grid[0, :] = grid[-1, :] = grid[:, 0] = grid[:, -1] = 100
    save_map(StoreMap(grid=grid, resolution=0.05, origin=(-10.0, -5.0, 0.0)), tmp_path / 'map.yaml')
    (tmp_path / 'zones.yaml').write_text(yaml.safe_dump(ZONES, allow_unicode=True), encoding='utf-8')
    return tmp_path


def plan(store, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([console_script('retailbot'), 'plan', '--map', str(store / 'map.yaml'), '--radius', '0.2',
                           '--json', *args], capture_output=True, text=True, timeout=60)


def end_points(result: subprocess.CompletedProcess) -> tuple[list[float], list[float]]:
    assert result.returncode == 0, result.stderr
    path = json.loads(result.stdout.strip().splitlines()[-1])['path']
    return path[0], path[-1]


@pytest.mark.parametrize('args', [
    ('--from', '-8,-3', '--to', '-7,-2'),            # the form that failed: "expected one argument"
    ('--from=-8,-3', '--to=-7,-2'),
    ('--from', '-8.0,-3.0', '--to', '-7e0,-2'),
])
def test_negative_coordinates(store, args):
    assert end_points(plan(store, *args)) == ([-8.0, -3.0], [-7.0, -2.0])


@pytest.mark.parametrize('name', ['kitchen', 'KITCHEN', ' Kitchen ', '厨房电器区', '厨房电器', 'Kitchen Appliances',
                                  'kitchen appliances', 'kitchen_appliances', 'KITCHEN-APPLIANCES'])
def test_zone_names_in_any_case_and_display_names(store, name):
    assert find_zone(load_zones_store(store / 'zones.yaml'), name).id == 'kitchen'


@pytest.mark.parametrize('name', ['KITCHEN', '厨房电器区', 'Kitchen Appliances'])
def test_plan_to_a_zone_by_any_name(store, name):
    assert end_points(plan(store, '--from', '-8,-3', '--to', name))[1] == [-6.0, -2.0]


def test_from_takes_a_zone_too(store):
    start, goal = end_points(plan(store, '--from', 'Dock', '--to', 'phones and wearables'))
    assert start == [-8.5, -3.5] and goal == [-8.0, -1.0]


@pytest.mark.parametrize('args, words', [
    (('--from', '-8,-3', '--to', 'kitchn'), "unknown zone 'kitchn' (did you mean 'kitchen'"),
    (('--from', 'dok', '--to', 'kitchen'), "--from: "),
    (('--from', '-8,-3', '--to', '厨房电气区'), "unknown zone '厨房电气区' (did you mean '厨房电器区'"),
    (('--from', 'nan,1', '--to', 'kitchen'), "--from: expected finite X,Y in metres, got 'nan,1'"),
    (('--from', '-8,-3', '--to', '1e400,3'), "--to: expected finite X,Y"),
    (('--from', '-8,-3', '--to', 'kitchen', '--step', '-1'), '--step must be between 0 and 100 m'),
    (('--from', '-8,-3', '--to', 'kitchen', '--radius', '-0.1'), '--radius must be between 0 and 100 m'),
])
def test_unknown_zones_and_bad_values_are_one_line(store, args, words):
    result = plan(store, *args)
    assert result.returncode == 2 and words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_png_into_a_missing_folder_is_one_line(store, tmp_path):
    result = plan(store, '--from', '-8,-3', '--to', 'kitchen', '--png', str(tmp_path / 'nowhere' / 'path.png'))
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert result.stderr.strip() == (f'retailbot plan: cannot write --png {tmp_path / "nowhere" / "path.png"}: '
                                     f'folder {tmp_path / "nowhere"} does not exist')
    result = plan(store, '--from', '-8,-3', '--to', 'kitchen', '--png', str(tmp_path / 'path.png'))
    assert result.returncode == 0 and (tmp_path / 'path.png').stat().st_size > 0


def test_find_zone_on_the_demo_store():
    zones = load_store(DEMO)
    assert find_zone(zones, '厨房电器区').id == 'kitchen'
    assert find_zone(zones, 'TV & Audio').id == find_zone(zones, 'tv and audio').id == 'audio_video'
    assert find_zone(zones, 'VIP Lounge').id == 'vip_lounge'
    with pytest.raises(StoreError, match="did you mean 'kitchen'"):
        find_zone(zones, 'kitchem')


def test_an_ambiguous_prefix_is_not_guessed():
    zone_map, tours, frame_id = parse_zones({'zones': {
        'tv_wall': {'kind': 'service', 'name_zh': '电视墙', 'name_en': 'TV Wall', 'pose': [0, 0, 0]},
        'tv_audio': {'kind': 'service', 'name_zh': '电视音响', 'name_en': 'TV Audio', 'pose': [1, 0, 0]}}})
    zones = Store(catalog=Catalog(path=''), zones=zone_map, tours=tours, frame_id=frame_id)
    with pytest.raises(StoreError):
        find_zone(zones, 'tv')
    assert find_zone(zones, 'tv wall').id == 'tv_wall'
