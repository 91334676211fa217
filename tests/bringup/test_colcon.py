"""The same packages build with colcon (as on a robot with a full ROS 2 install).

Here the underlay is this venv's ROS 2 wheels instead of /opt/ros/kilted; colcon and its
extensions come from PyPI.
"""
import os
import shutil
import subprocess
import sys

import pytest

from rostest_support import BIN, REPO

pytestmark = [pytest.mark.slow, pytest.mark.colcon]


@pytest.mark.timeout(1000)   # the build itself may take up to 900 s on a loaded machine
def test_colcon_build_installs_interfaces_nodes_and_launch_files(tmp_path, ros_env):
    workspace = tmp_path / 'ws'
    shutil.copytree(REPO / 'src', workspace / 'src',
                    ignore=shutil.ignore_patterns('__pycache__', '*.egg-info', 'build', 'install'))
    shutil.copytree(REPO / 'launch', workspace / 'launch')
    shutil.copytree(REPO / 'config', workspace / 'config', ignore=shutil.ignore_patterns('*.csv'))
    env = dict(ros_env, AMENT_PREFIX_PATH=sys.prefix, CMAKE_PREFIX_PATH=sys.prefix,
               PATH=f"{BIN}{os.pathsep}{ros_env['PATH']}",
               COLCON_DEFAULTS_FILE=str(REPO / 'robot_ws' / 'colcon_defaults.yaml'))
    build = subprocess.run([str(BIN / 'colcon'), 'build', '--event-handlers', 'console_cohesion-'],
                           cwd=workspace, env=env, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    install = workspace / 'install'
    packages = sorted(p.name for p in install.iterdir() if p.is_dir())
    assert packages == ['retail_bringup', 'retail_common', 'retail_demo', 'retail_dialogue', 'retail_interfaces',
                        'retail_navigation', 'retail_observe', 'retail_perception', 'retail_platform',
                        'retail_recommendation', 'retail_ros', 'retail_sync', 'retail_ui']
    assert (install / 'retail_platform/lib/python3.11/site-packages/retail_platform/migrations/versions/'
            '0001_chain.py').is_file()
    assert (install / 'retail_perception/share/retail_perception/sim_camera').is_dir()
    assert (install / 'retail_demo/lib/python3.11/site-packages/retail_demo/assets/faces/obama/obama.jpg').is_file()
    assert (install / 'retail_bringup/share/retail_bringup/launch/robot.launch.yaml').is_file()
    assert os.access(install / 'retail_bringup/lib/retail_bringup/retail_bringup_health', os.X_OK)

    # What `source install/setup.bash` would give: the colcon-built interfaces and packages win.
    prefixes = [str(install / p) for p in packages] + [sys.prefix]
    site = [str(install / p / 'lib/python3.11/site-packages') for p in packages]
    run_env = dict(env, AMENT_PREFIX_PATH=os.pathsep.join(prefixes), PYTHONPATH=os.pathsep.join(site),
                   LD_LIBRARY_PATH=str(install / 'retail_interfaces/lib'))
    check = subprocess.run([sys.executable, '-c', '''
import retail_interfaces, retail_bringup
from retail_interfaces.srv import Recommend
from retail_ros.packages import find_executable, find_package_share
print(retail_interfaces.__file__); print(retail_bringup.__file__)
print(find_executable("retail_bringup", "retail_bringup_health")[0]); print(find_package_share("retail_bringup"))
print(Recommend.Request(k=3).k)
'''], env=run_env, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    lines = check.stdout.split()
    assert all(line.startswith(str(install)) for line in lines[:4]), lines
    assert lines[4] == '3'
