"""Store maps (map_server format) and zones files: loading, conversions, clear errors."""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from retail_navigation.maps import MapError, StoreMap, load_map, occupancy_from_pixels, save_map
from retail_common.store import StoreError, load_store, load_zones_file, parse_zones

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / 'config' / 'stores' / 'demo'
CATALOG_ZONES = {
    'phones': {'phone', 'smartwatch', 'tablet', 'phone_accessory'}, 'computers': {'laptop', 'printer', 'printer_ink'},
    'audio_video': {'tv', 'headphones'}, 'cameras_gaming': {'camera', 'game_console'},
    'kitchen': {'air_fryer', 'rice_cooker', 'microwave', 'coffee_machine', 'coffee_capsule'},
    'large_appliances': {'refrigerator', 'washing_machine', 'air_conditioner'},
    'home_care': {'vacuum', 'water_purifier', 'water_filter', 'hair_dryer'}}
SERVICE_ZONES = {'entrance', 'exit', 'checkout', 'service_desk', 'vip_lounge', 'restroom', 'dock'}


def write_map(folder: Path, pixels: np.ndarray, name: str = 'm', image: str | None = None, **meta) -> Path:
    image = image or f'{name}.png'
    cv2.imwrite(str(folder / image), pixels)
    fields = {'image': image, 'resolution': 0.5, 'origin': [1.0, 2.0, 0.0], 'negate': 0,
              'occupied_thresh': 0.65, 'free_thresh': 0.196, **meta}
    path = folder / f'{name}.yaml'
    path.write_text(yaml.safe_dump(fields), encoding='utf-8')
    return path


def test_trinary_pixels_become_free_occupied_unknown_bottom_up(tmp_path):
    pixels = np.full((3, 4), 254, np.uint8)
    pixels[0, :] = 0          # top row of the picture: a wall along the map's top edge
    pixels[2, 0] = 205        # bottom-left: unknown
    m = load_map(write_map(tmp_path, pixels))
    assert (m.width, m.height) == (4, 3)
    assert m.grid.dtype == np.int8
    assert m.grid[2].tolist() == [100, 100, 100, 100]
    assert m.grid[0, 0] == -1 and m.grid[0, 1] == 0
    assert m.world_to_cell(1.1, 2.1) == (0, 0)
    assert m.cell_to_world(1, 2) == (1.75, 3.25)
    assert m.is_occupied_world(1.75, 3.25) and not m.is_free_world(1.75, 3.25)
    assert not m.is_free_world(1.1, 2.1) and not m.is_occupied_world(1.1, 2.1)   # unknown: neither
    assert m.is_free_world(1.75, 2.25)
    assert not m.is_free_world(0.0, 0.0) and not m.is_occupied_world(0.0, 0.0)    # outside the map


def test_negate_scale_and_raw_modes():
    pixels = np.array([[0, 128, 255]], np.uint8)
    assert occupancy_from_pixels(pixels, negate=True).tolist() == [[0, -1, 100]]
    scaled = occupancy_from_pixels(pixels, mode='scale')
    assert scaled[0, 0] == 100 and scaled[0, 2] == 0 and 0 < scaled[0, 1] < 100
    assert occupancy_from_pixels(np.array([[0, 42, 100, 200]], np.uint8), mode='raw').tolist() == [[0, 42, 100, -1]]


def test_pgm_and_rotated_origin_round_trip(tmp_path):
    grid = np.zeros((5, 8), np.int8)
    grid[1, 2] = 100
    grid[4, 7] = -1
    original = StoreMap(grid=grid, resolution=0.1, origin=(2.0, -1.0, math.pi / 2))
    loaded = load_map(save_map(original, tmp_path / 'store.yaml'))
    assert (tmp_path / 'store.pgm').is_file()
    np.testing.assert_array_equal(loaded.grid, grid)
    x, y = loaded.cell_to_world(2, 1)
    assert loaded.world_to_cell(x, y) == (2, 1)
    assert loaded.is_occupied_world(x, y)
    assert x == pytest.approx(2.0 - 0.15) and y == pytest.approx(-1.0 + 0.25)


@pytest.mark.parametrize('text, message', [
    ('image: [map.pgm\n', 'not valid YAML'),
    ('- just\n- a list\n', 'expected a mapping'),
    ('resolution: 0.05\norigin: [0, 0, 0]\n', "missing key 'image'"),
    ('image: map.png\norigin: [0, 0, 0]\n', "missing key 'resolution'"),
    ('image: map.png\nresolution: -1\norigin: [0, 0, 0]\n', 'resolution must be > 0'),
    ('image: map.png\nresolution: 0.05\norigin: [0, 0]\n', 'origin must be [x, y, yaw]'),
    ('image: map.png\nresolution: 0.05\norigin: [0, 0, 0]\nmode: fancy\n', 'mode must be one of'),
    ('image: map.png\nresolution: 0.05\norigin: [0, 0, 0]\nfree_thresh: 0.9\n', 'free_thresh'),
    ('image: missing.pgm\nresolution: 0.05\norigin: [0, 0, 0]\n', 'missing.pgm does not exist'),
    ('image: notapicture.png\nresolution: 0.05\norigin: [0, 0, 0]\n', 'not a readable PGM/PNG'),
])
def test_bad_map_files_give_one_line_errors_naming_the_file(tmp_path, text, message):
    cv2.imwrite(str(tmp_path / 'map.png'), np.full((4, 4), 254, np.uint8))
    (tmp_path / 'notapicture.png').write_text('hello', encoding='utf-8')
    path = tmp_path / 'bad.yaml'
    path.write_text(text, encoding='utf-8')
    with pytest.raises(MapError) as info:
        load_map(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert '\n' not in str(info.value)


def test_missing_map_file(tmp_path):
    with pytest.raises(MapError, match='does not exist'):
        load_map(tmp_path / 'nope.yaml')


def test_demo_store_map_is_a_store_sized_grid_with_its_features():
    m = load_map(DEMO / 'map.yaml')
    assert m.resolution == 0.05 and (m.width, m.height) == (620, 420)
    assert m.is_free_world(15.0, 5.0)                       # shop floor
    assert m.is_occupied_world(15.0, 10.0)                  # a gondola shelf (9.3-10.1)
    assert m.is_occupied_world(-0.1, 10.0)                  # west wall
    assert not m.is_free_world(9.5, -0.3)                   # beyond the entrance doors: unmapped
    assert not m.is_free_world(0.7, 17.0)                   # restroom rooms: unmapped


def test_demo_zones_cover_the_catalog_contract():
    zones = load_store(DEMO)
    product = {z.id: set(z.categories) for z in zones.zones.values() if z.kind == 'product'}
    assert product == CATALOG_ZONES
    assert {z.id for z in zones.zones.values() if z.kind == 'service'} == SERVICE_ZONES
    assert zones.zone_for_category('printer_ink') == 'computers'
    assert [s.zone for s in zones.tours['showroom']][0] == 'phones'
    assert all(s.narration_zh and s.narration_en for s in zones.tours['showroom'])
    assert zones.zones['phones'].label == '手机数码区 (Phones & Wearables)'


def test_every_demo_zone_is_reachable_from_the_dock():
    from retail_navigation.costmap import Costmap
    from retail_navigation.planner import GlobalPlanner
    from retail_navigation.zones import check_on_map
    zones = load_store(DEMO)
    costmap = Costmap(load_map(DEMO / 'map.yaml'), 0.18, 0.12)
    assert check_on_map(zones, costmap) == []
    planner = GlobalPlanner(costmap)
    for zone in zones.zones.values():
        if zone.id != 'dock':
            assert planner.plan(zones.zones['dock'].pose[:2], zone.pose[:2]).length_m > 1.0


@pytest.mark.parametrize('data, message', [
    ({'zones': {}}, 'non-empty `zones:`'),
    ({'zones': {'Bad-Id': {'kind': 'service', 'name_zh': 'a', 'name_en': 'a', 'pose': [0, 0, 0]}}}, 'ids are lower-case'),
    ({'zones': {'a': {'kind': 'shop', 'name_zh': 'a', 'name_en': 'a', 'pose': [0, 0, 0]}}}, 'kind must be'),
    ({'zones': {'a': {'kind': 'service', 'name_zh': 'a', 'name_en': 'a', 'pose': [0, 0]}}}, 'pose must be'),
    ({'zones': {'a': {'kind': 'service', 'name_en': 'a', 'pose': [0, 0, 0]}}}, 'name_zh must be'),
    ({'zones': {'a': {'kind': 'product', 'name_zh': 'a', 'name_en': 'a', 'categories': ['tv'], 'pose': [0, 0, 0]},
                'b': {'kind': 'product', 'name_zh': 'b', 'name_en': 'b', 'categories': ['tv'], 'pose': [0, 0, 0]}}},
     "category 'tv' is already in zone 'a'"),
    ({'zones': {'a': {'kind': 'service', 'name_zh': 'a', 'name_en': 'a', 'pose': [0, 0, 0]}},
      'tours': {'t': [{'zone': 'b', 'narration': 'x'}]}}, 'stop 1 must name a known zone'),
    ({'zones': {'a': {'kind': 'service', 'name_zh': 'a', 'name_en': 'a', 'pose': [0, 0, 0]}},
      'tours': {'t': [{'zone': 'a', 'narration': 3}]}}, 'narration must be a text'),
])
def test_bad_zones_give_one_line_errors(data, message):
    with pytest.raises(StoreError) as info:
        parse_zones(data, 'zones.yaml')
    assert message in str(info.value) and str(info.value).startswith('zones.yaml')


def test_zones_file_with_bad_yaml(tmp_path):
    path = tmp_path / 'zones.yaml'
    path.write_text('zones: {a: [\n', encoding='utf-8')
    with pytest.raises(StoreError, match='not valid YAML'):
        load_zones_file(path)
