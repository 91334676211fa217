"""Layering and declared dependencies: each package's package.xml declares what its modules import,
and no module imports a package above its own layer.

Layers (bottom to top): retail_interfaces and retail_common (the domain: store, catalog,
appointments, event contracts, intents, topic names; no ROS client library); retail_ros (what the
robot copies of ROS: launch, rcl params, executor, node support, TF, QoS); the areas (navigation,
perception, recommendation, sync); dialogue (it talks to every area) and observe (it records and
shows every area: perception's camera view, the sync's platform client); ui; retail_bringup (composes
the robot); retail_demo (a client of the robot). retail_platform (the online side)
sits above retail_sync, whose rules for events it shares; the robot's packages never import it.
"""
from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / 'src'
LAYER = {
    'retail_interfaces': 0, 'retail_common': 1, 'retail_ros': 2,
    'retail_navigation': 3, 'retail_perception': 3, 'retail_recommendation': 3, 'retail_sync': 3,
    'retail_dialogue': 4, 'retail_ui': 5, 'retail_bringup': 6, 'retail_demo': 7,
    'retail_platform': 4, 'retail_observe': 4,
}
# The robot's own packages: none of them may import the platform (it runs elsewhere).
ROBOT_PACKAGES = {'retail_interfaces', 'retail_common', 'retail_ros', 'retail_navigation', 'retail_perception',
                  'retail_recommendation', 'retail_sync', 'retail_dialogue', 'retail_ui', 'retail_bringup', 'retail_observe'}
# Python module -> the package.xml key (rosdep's python3-* names for PyPI packages).
THIRD_PARTY = {
    'yaml': 'python3-yaml', 'numpy': 'python3-numpy', 'scipy': 'python3-scipy', 'cv2': 'python3-opencv',
    'serial': 'python3-serial', 'cryptography': 'python3-cryptography', 'httpx': 'python3-httpx',
    'fastapi': 'python3-fastapi', 'uvicorn': 'python3-uvicorn', 'pydantic': 'python3-pydantic',
    'pydantic_core': 'python3-pydantic',   # pydantic 2's own core (pinned beside it in requirements.txt)
    'rich': 'python3-rich', 'jieba': 'python3-jieba', 'pypinyin': 'python3-pypinyin',
    'rapidfuzz': 'python3-rapidfuzz', 'vosk': 'python3-vosk', 'webrtcvad': 'python3-webrtcvad',
    'sounddevice': 'python3-sounddevice', 'face_recognition': 'python3-face-recognition',
    'implicit': 'python3-implicit', 'threadpoolctl': 'python3-threadpoolctl',
    'starlette': 'python3-starlette', 'websockets': 'python3-websockets', 'PIL': 'python3-pil',
    'httpcore': 'python3-httpx', 'selenium': 'python3-selenium', 'opencc': 'python3-opencc',
    'sqlalchemy': 'python3-sqlalchemy', 'alembic': 'python3-alembic', 'psycopg': 'python3-psycopg',
    'faster_whisper': 'faster-whisper-pip', 'yuface': 'yuface-pip',
    'ctranslate2': 'ctranslate2-pip',   # faster-whisper's engine, asked directly for the window
    'tqdm': 'python3-tqdm', 'httptools': 'python3-httptools', 'h11': 'python3-h11',
    'mcap': 'python3-mcap', 'foxglove': 'python3-foxglove-sdk', 'mcap_ros2': 'python3-mcap-ros2-support',
    'pyarrow': 'pyarrow-pip',       # not packaged in Debian 12: PyPI (robot_ws/requirements.txt)
}
ROS_PACKAGES = {'rclpy', 'rcl_interfaces', 'builtin_interfaces', 'std_msgs', 'std_srvs', 'geometry_msgs',
                'nav_msgs', 'sensor_msgs', 'diagnostic_msgs', 'lifecycle_msgs', 'action_msgs',
                'tf2_msgs', 'unique_identifier_msgs', 'visualization_msgs', 'rosgraph_msgs'}


def python_packages():
    for package_xml in sorted(SRC.glob('*/package.xml')):
        root = ET.parse(package_xml).getroot()
        if root.find('export/build_type') is not None and root.findtext('export/build_type') == 'ament_python':
            yield root.findtext('name'), package_xml.parent, root


def imports_of(folder: Path, name: str) -> dict[str, str]:
    """{imported top-level module: 'file:line' of its first use} over the package's modules."""
    found: dict[str, str] = {}
    for path in sorted((folder / name).rglob('*.py')):
        tree = ast.parse(path.read_text(encoding='utf-8'))
        for node in ast.walk(tree):
            modules = []
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            for module in modules:
                top = module.split('.')[0]
                if top not in sys.stdlib_module_names and top != name:
                    found.setdefault(top, f'{path.relative_to(SRC)}:{node.lineno}')
    return found


PACKAGES = list(python_packages())


def test_every_python_package_has_a_layer():
    assert {name for name, _, _ in PACKAGES} <= set(LAYER), 'add the new package to LAYER'


@pytest.mark.parametrize('name,folder,root', PACKAGES, ids=[p[0] for p in PACKAGES])
def test_package_xml_declares_what_modules_import(name, folder, root):
    declared = {e.text for tag in ('depend', 'exec_depend') for e in root.findall(tag)}
    missing = []
    for module, where in imports_of(folder, name).items():
        key = module if (module in LAYER or module in ROS_PACKAGES) else THIRD_PARTY.get(module)
        assert key is not None, f'{where}: imports {module!r}; add it to THIRD_PARTY in this test'
        if key not in declared:
            missing.append(f'{where}: {module} -> <exec_depend>{key}</exec_depend>')
    assert not missing, f'{folder.name}/package.xml lacks:\n' + '\n'.join(missing)


@pytest.mark.parametrize('name,folder,root', PACKAGES, ids=[p[0] for p in PACKAGES])
def test_no_module_imports_a_package_above_its_layer(name, folder, root):
    upward = [f'{where}: {name} imports {module}' for module, where in imports_of(folder, name).items()
              if module in LAYER and LAYER[module] >= LAYER[name]]
    assert not upward, '\n'.join(upward)


@pytest.mark.parametrize('name,folder,root', PACKAGES, ids=[p[0] for p in PACKAGES])
def test_the_robot_never_imports_the_platform(name, folder, root):
    if name not in ROBOT_PACKAGES:
        pytest.skip('not a robot package')
    assert 'retail_platform' not in imports_of(folder, name), f'{name} imports retail_platform'


@pytest.mark.parametrize('name,folder,root', PACKAGES, ids=[p[0] for p in PACKAGES])
def test_shipped_code_never_reads_tests(name, folder, root):
    offenders = [f'{p.relative_to(SRC)}' for p in (folder / name).rglob('*.py')
                 if "'tests'" in p.read_text(encoding='utf-8') or '"tests"' in p.read_text(encoding='utf-8')
                 or '/tests/' in p.read_text(encoding='utf-8')]
    assert not offenders


def test_console_scripts_carry_their_package_prefix():
    from importlib import metadata
    for name, _, _ in PACKAGES:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        bare = [ep.name for ep in dist.entry_points if ep.group == 'console_scripts'
                and ep.name != 'retailbot' and not ep.name.startswith(name + '_')]
        assert not bare, f'{name}: console scripts without the package prefix: {bare}'


def test_launch_files_do_not_read_tests():
    launch = SRC.parent / 'launch'
    for path in launch.glob('*.yaml'):
        assert 'tests/' not in path.read_text(encoding='utf-8'), path


def test_the_domain_package_uses_no_ros():
    """retail_common is the domain (store, catalog, appointments, event contracts, intents, names):
    plain Python a test, a tool or the platform can import without ROS."""
    folder = SRC / 'common'
    ros = {m: where for m, where in imports_of(folder, 'retail_common').items()
           if m in ROS_PACKAGES or m in ('retail_interfaces', 'retail_ros', 'tf2_msgs')}
    assert not ros, f'retail_common imports ROS: {ros}'


def test_the_latched_qos_profile_is_defined_once():
    defined = [f'{p.relative_to(SRC)}' for p in SRC.rglob('*.py') if 'TRANSIENT_LOCAL' in p.read_text(encoding='utf-8')]
    assert defined == ['ros/retail_ros/qos.py'], defined
