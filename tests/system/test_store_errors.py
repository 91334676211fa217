"""One error policy: the same broken zones.yaml gives the same one-line reason from every node
that reads the store (real console scripts, as the launch files start them)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from rclpy.node import Node

from retail_common.store import StoreError, load_store
from retail_interfaces.srv import Recommend
from rostest_support import console_script, wait_for

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.mark.parametrize('broken', [
    "zones:\n  phones: {kind: product, name_zh: 手机区, name_en: Phones, pose: [1, 2]}\n",       # pose without theta
    "zones:\n  phones: {kind: product\n",                                                       # not YAML
])
def test_every_node_reports_a_broken_zones_file_with_the_same_line(ros_env, ros_context, spin, processes,
                                                                    tmp_path, broken):
    store = tmp_path / 'store'
    shutil.copytree(DEMO, store)
    (store / 'zones.yaml').write_text(broken, encoding='utf-8')
    with pytest.raises(StoreError) as info:
        load_store(store, tmp_path / 'data')
    expected = str(info.value)
    assert '\n' not in expected and str(store / 'zones.yaml') in expected
    for script, namespace in (('retail_navigation_guide', '/navigation'), ('retail_dialogue_manager', '/dialogue')):
        done = subprocess.run([console_script(script), '--ros-args', '-r', f'__ns:={namespace}',
                               '-p', f'store_dir:={store}', '-p', f'data_dir:={tmp_path / "data"}'],
                              env=ros_env, capture_output=True, text=True, timeout=60)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, (script, done.stderr[-2000:])
        assert lines[0].endswith(expected), (script, lines[0])
    # The recommendation service stays up and answers with the same reason until the store is fixed.
    log = (tmp_path / 'server.log').open('w')
    processes([console_script('retail_recommendation_server'), '--ros-args', '-r', '__ns:=/recommendation',
               '-p', f'store_dir:={store}', '-p', f'data_dir:={tmp_path / "data"}', '-p', 'watch_period_s:=0.2'],
              env=ros_env, stdout=log, stderr=subprocess.STDOUT)
    node = Node('store_error_client', context=ros_context)
    client = node.create_client(Recommend, '/recommendation/recommend')
    spin(node)
    wait_for(client.service_is_ready, 30, 'the recommend service')

    def ask():
        future = client.call_async(Recommend.Request(k=3))
        wait_for(future.done, 10, 'a Recommend answer')
        return future.result()
    answer = wait_for(lambda: (a := ask()) and expected in a.message and a, 20, 'the answer naming the broken file')
    assert not answer.success
    shutil.copy(DEMO / 'zones.yaml', store / 'zones.yaml')
    wait_for(lambda: ask().success, 30, 'recommendations once zones.yaml is fixed')
