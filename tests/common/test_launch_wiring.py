"""One data dir for all nodes: every node the launch files give a store also gets the data dir,
and the sync agent downloads into the `<data_dir>/platform` folder the store model overlays."""
from __future__ import annotations

from pathlib import Path

import pytest

from retail_ros.launch_file import load_launch
from retail_common.store import PLATFORM_DIR

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize('sim', ['true', 'false'])
def test_every_store_reader_gets_store_dir_and_data_dir(sim):
    description = load_launch(REPO / 'launch' / 'robot.launch.yaml',
                              {'sim': sim, 'store': '/srv/store', 'data_dir': '/srv/data'})
    values = {node.fully_qualified_name: dict(v for kind, v in node.params if kind == 'param')
              for node in description.nodes}
    readers = {name for name, params in values.items() if 'store_dir' in params}
    assert {'/navigation/guide', '/dialogue/manager', '/recommendation/server', '/dialogue/asr'} <= readers
    for name in readers - {'/sync/agent'}:
        assert (values[name]['store_dir'], values[name]['data_dir']) == ('/srv/store', '/srv/data'), name
    # the sync agent writes the platform's downloads and checks rolled-out content against the store
    assert values['/sync/agent']['data_dir'] == f'/srv/data/{PLATFORM_DIR}'
    assert values['/sync/agent']['store_dir'] == '/srv/store'
    for name, params in values.items():          # nobody reads a store file by another path
        assert not {'catalog', 'catalog_path', 'zones_yaml', 'zones_path', 'appointments_path'} & set(params), name
