"""The YAML launch files resolve to the same nodes `ros2 launch` would start, and anything the
launcher does not understand is refused with file, line and construct."""
import textwrap

import pytest

from retail_bringup.launch_file import LaunchError, load_launch, parse_launch_arguments


def shares(package):
    if package == 'known_pkg':
        return '/opt/share/known_pkg'
    raise LookupError(f'package {package!r} is not installed')


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load(path, **args):
    return load_launch(path, {k: str(v) for k, v in args.items()}, find_share=shares)


def test_args_defaults_and_substitutions(tmp_path, monkeypatch):
    monkeypatch.setenv('ROBOT_PORT', '/dev/ttyACM7')
    f = write(tmp_path, 'a.launch.yaml', '''
        launch:
        - arg: {name: rate, default: "5.0", description: camera rate}
        - let: {name: cfg, value: "$(find-pkg-share known_pkg)/config"}
        - node:
            pkg: p
            exec: e
            name: cam
            namespace: perception
            param:
            - {from: "$(var cfg)/cam.yaml"}
            - {name: rate, value: "$(var rate)"}
            - {name: port, value: "$(env ROBOT_PORT /dev/ttyUSB0)"}
            - {name: home, value: "$(env NOT_SET_ANYWHERE $(var rate)x)"}
            - {name: here, value: "$(dirname)"}
        ''')
    node, = load(f).nodes
    assert node.fully_qualified_name == '/perception/cam'
    assert node.params == [('file', '/opt/share/known_pkg/config/cam.yaml'), ('param', ('rate', '5.0')),
                           ('param', ('port', '/dev/ttyACM7')), ('param', ('home', '5.0x')),
                           ('param', ('here', str(tmp_path)))]
    node, = load(f, rate=9).nodes
    assert ('param', ('rate', '9')) in node.params


def test_conditions(tmp_path):
    f = write(tmp_path, 'a.launch.yaml', '''
        launch:
        - arg: {name: sim, default: "false"}
        - node: {pkg: p, exec: sim_base, name: sim_base, if: "$(var sim)"}
        - node: {pkg: p, exec: real_base, name: real_base, unless: "$(var sim)"}
        ''')
    assert [n.name for n in load(f).nodes] == ['real_base']
    assert [n.name for n in load(f, sim='true').nodes] == ['sim_base']
    with pytest.raises(LaunchError, match=r'a.launch.yaml:4: if: expected true or false, got .maybe.'):
        load(f, sim='maybe')


def test_include_passes_args_and_namespaces(tmp_path):
    write(tmp_path, 'child.launch.yaml', '''
        launch:
        - arg: {name: who, default: nobody}
        - arg: {name: sim, default: "false"}
        - node: {pkg: p, exec: e, name: "$(var who)", if: "$(var sim)"}
        ''')
    parent = write(tmp_path, 'parent.launch.yaml', '''
        launch:
        - arg: {name: sim, default: "true"}
        - include:
            file: "$(dirname)/child.launch.yaml"
            arg:
            - {name: who, value: alice}
        - group:
          - push-ros-namespace: {namespace: dialogue}
          - include: {file: child.launch.yaml, arg: [{name: who, value: bob}]}
        - node: {pkg: p, exec: e, name: carol}
        ''')
    nodes = load(parent).nodes
    assert [n.fully_qualified_name for n in nodes] == ['/alice', '/dialogue/bob', '/carol']
    assert load(parent, sim='false').nodes[-1].name == 'carol' and len(load(parent, sim='false').nodes) == 1


def test_group_scoping(tmp_path):
    f = write(tmp_path, 'a.launch.yaml', '''
        launch:
        - let: {name: x, value: outer}
        - group:
            scoped: true
            children:
            - let: {name: x, value: inner}
            - node: {pkg: p, exec: e, name: "in_$(var x)"}
        - node: {pkg: p, exec: e, name: "out_$(var x)"}
        - group:
            scoped: false
            children:
            - let: {name: x, value: leaked}
        - node: {pkg: p, exec: e, name: "after_$(var x)"}
        ''')
    assert [n.name for n in load(f).nodes] == ['in_inner', 'out_outer', 'after_leaked']


def test_node_remaps_args_respawn_and_command_line(tmp_path):
    f = write(tmp_path, 'a.launch.yaml', '''
        launch:
        - node:
            pkg: p
            exec: e
            name: base
            namespace: /navigation
            remap: [{from: cmd_vel, to: /cmd_vel}]
            args: "--link /tmp/base 'two words'"
            respawn: "true"
            respawn_delay: "1.5"
            param: [{name: ids, value: [1, 2]}]
        ''')
    node, = load(f).nodes
    assert node.respawn and node.respawn_delay == 1.5
    assert node.args == ['--link', '/tmp/base', 'two words']
    assert node.ros_arguments() == ['--ros-args', '-r', '__node:=base', '-r', '__ns:=/navigation',
                                    '-p', 'ids:=[1, 2]', '-r', 'cmd_vel:=/cmd_vel']


@pytest.mark.parametrize('text, message', [
    ('launch:\n- executable: {cmd: ls}\n', r":2: unsupported launch action 'executable'"),
    ('launch:\n- node:\n    pkg: p\n    exec: e\n    launch-prefix: gdb\n', r":5: node: unsupported attribute 'launch-prefix'"),
    ('launch:\n- node: {pkg: p, exec: "$(eval 1+1)"}\n', r':2: unsupported substitution \$\(eval'),
    ('launch:\n- node: {pkg: p, exec: "$(var nope)"}\n', r":2: \$\(var nope\): no argument or variable named 'nope'"),
    ('launch:\n- node: {exec: e}\n', r":2: node: missing required attribute 'pkg'"),
    ('launch:\n- include: {file: missing.launch.yaml}\n', r'missing.launch.yaml does not exist'),
    ('launch:\n- node: {pkg: p, exec: "$(find-pkg-share ghost)"}\n', r"package 'ghost' is not installed"),
    ('launch:\n- arg: {name: must}\n', r":2: launch argument 'must' is required"),
    ('launch:\n- node: {pkg: p, exec: e, name: a}\n- node: {pkg: p, exec: e, name: a}\n', r'node /a is already launched'),
    ('nodes: []\n', r':1: a YAML launch file is a mapping with one key'),
    ('launch:\n- node: {pkg: p, exec: e\n', r'invalid YAML'),
])
def test_unsupported_or_wrong_syntax_is_refused_with_file_and_line(tmp_path, text, message):
    f = tmp_path / 'bad.launch.yaml'
    f.write_text(text)
    with pytest.raises(LaunchError, match=message) as err:
        load(f)
    assert str(err.value).startswith(str(tmp_path))


def test_unknown_command_line_argument_is_refused(tmp_path):
    f = write(tmp_path, 'a.launch.yaml', 'launch:\n- arg: {name: sim, default: "false"}\n')
    with pytest.raises(LaunchError, match=r'unknown launch argument\(s\) simm \(this file declares: sim\)'):
        load(f, simm='true')


def test_launch_argument_syntax():
    assert parse_launch_arguments(['sim:=true', 'store:=/a:=b']) == {'sim': 'true', 'store': '/a:=b'}
    with pytest.raises(LaunchError, match='expected name:=value'):
        parse_launch_arguments(['sim=true'])
