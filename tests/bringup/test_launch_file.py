"""The YAML launch files resolve to the same nodes `ros2 launch` would start, and anything the
launcher does not understand is refused with file, line and construct."""
import textwrap

import pytest

from retail_ros.launch_file import LaunchError, load_launch, parse_launch_arguments


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


# --- a substituted value is never split (issue 12 item 8), as ros2 launch forms arguments -----

STORES = ['/srv/retail/Store 12', "/srv/retail/Joe's Store", '/srv/retail/"Big" Store', '/srv/a  b',
          '/srv/tab\there', '/srv/$HOME', '/srv/back\\slash', '/srv/a;rm -rf', ' /srv/lead', '/srv/门店 12号', '']


@pytest.mark.parametrize('store', STORES)
def test_substituted_values_are_never_split_or_requoted(tmp_path, store):
    f = write(tmp_path, 'a.launch.yaml', '''
        launch:
        - arg: {name: store, default: /srv/demo}
        - node:
            pkg: p
            exec: e
            name: sim
            args: "--link /tmp/base --map $(var store)/map.yaml --title=$(var store) --raw $(var store)"
            param:
            - {name: store_dir, value: "$(var store)"}
            - {name: map, value: "$(env NOT_SET_ANYWHERE $(var store))/map.yaml"}
        ''')
    node, = load(f, store=store).nodes
    assert node.args == ['--link', '/tmp/base', '--map', f'{store}/map.yaml', f'--title={store}', '--raw', store]
    assert ('param', ('store_dir', store)) in node.params
    assert ('param', ('map', f'{store}/map.yaml')) in node.params


@pytest.mark.parametrize('args, expected', [
    ('a b', ['a', 'b']),
    ('"a b" c', ['a b', 'c']),
    ("'a b'", ['a b']),
    ('$(var v)', ['x y']),
    ('$(var v)$(var v)', ['x yx y']),
    ('$(var v) $(var v)', ['x y', 'x y']),
    ('pre$(var v)post', ['prex ypost']),
    ('--opt=$(var v)', ['--opt=x y']),
    ('  a   b  ', ['a', 'b']),
    ("--objects '$(var v)' --pose '[1, 2]'", ['--objects', 'x y', '--pose', '[1, 2]']),
    ("--objects '$(var e)' next", ['--objects', '', 'next']),          # an empty value stays an argument
    ('"pre $(var v) post"', ['pre x y post']),
])
def test_args_are_split_only_in_the_files_own_text(tmp_path, args, expected):
    quoted = args.replace('"', '\\"')
    f = write(tmp_path, 'a.launch.yaml', f'''
        launch:
        - let: {{name: v, value: "x y"}}
        - arg: {{name: e, default: ""}}
        - node: {{pkg: p, exec: e, args: "{quoted}"}}
        ''')
    node, = load(f).nodes
    assert node.args == expected


@pytest.mark.parametrize('body, value', [
    ("$(env NOT_SET_ANYWHERE 'a b')", 'a b'),
    ('$(env NOT_SET_ANYWHERE "a b")', 'a b'),
    ("$(env NOT_SET_ANYWHERE $(var v))", "Joe's x"),
    ("$(env NOT_SET_ANYWHERE $(var v)/sub)", "Joe's x/sub"),
])
def test_substitution_arguments_keep_nested_values_whole(tmp_path, body, value):
    quoted = body.replace('"', '\\"')
    f = write(tmp_path, 'a.launch.yaml', f'''
        launch:
        - let: {{name: v, value: "Joe's x"}}
        - node: {{pkg: p, exec: e, param: [{{name: k, value: "{quoted}"}}]}}
        ''')
    node, = load(f).nodes
    assert node.params == [('param', ('k', value))]


@pytest.mark.parametrize('raw, text', [
    ('0', '0'), ('1.5', '1.5'), ('true', 'true'), ('[zh, en]', '[zh, en]'), ('/dev/ttyUSB0', '/dev/ttyUSB0'),
    ('/srv/Store 12', '/srv/Store 12'), ("/srv/Joe's", "/srv/Joe's"), ('', "''"), ('a #1', "'a #1'"),
    ('a: b', "'a: b'"), ("'q'", "'''q'''"), ('*x', "'*x'"), ('[1, 2', "'[1, 2'"), ('{a: 1}', "'{a: 1}'"),
])
def test_param_values_reach_the_node_exactly(raw, text):
    from retail_ros.launch_file import param_value_text
    from retail_ros.params import command_line_value
    assert param_value_text(raw) == text
    back = command_line_value(text)
    assert back == raw or (isinstance(back, (bool, int, float, list)) and text == raw)


def test_on_exit_shutdown_and_respawn(tmp_path):
    f = write(tmp_path, 'a.launch.yaml', '''
        launch:
        - node: {pkg: p, exec: e, name: base, on_exit: shutdown}
        ''')
    node, = load(f).nodes
    assert node.on_exit == 'shutdown' and not node.respawn
    for body, message in (('on_exit: restart', 'only "shutdown"'),
                          ('respawn: "true", on_exit: shutdown', 'contradict')):
        f = write(tmp_path, 'b.launch.yaml', f'launch:\n- node: {{pkg: p, exec: e, {body}}}\n')
        with pytest.raises(LaunchError, match=message):
            load(f)


def test_the_shipped_launch_files_decide_what_respawns():
    """issue 12 item 4: every node of the robot either respawns or stops the robot, on purpose."""
    from rostest_support import REPO
    for sim in ('true', 'false'):
        nodes = {n.fully_qualified_name: n for n in load_launch(
            REPO / 'launch' / 'robot.launch.yaml', {'sim': sim}, find_share=lambda p: str(REPO)).nodes}
        stop = {name for name, n in nodes.items() if n.on_exit == 'shutdown'}
        respawn = {name for name, n in nodes.items() if n.respawn}
        assert stop == ({'/navigation/base', '/navigation/base_sim'} if sim == 'true' else {'/navigation/base'})
        assert respawn == set(nodes) - stop, f'nodes with no decided policy: {set(nodes) - stop - respawn}'
        assert nodes['/sync/agent'].respawn_delay <= 2.0


def test_command_line_arguments_reach_included_files(tmp_path):
    """ros2 launch: `robot.launch.yaml base_port:=/dev/ttyACM0` sets the included file's argument."""
    write(tmp_path, 'child.launch.yaml', '''
        launch:
        - arg: {name: base_port, default: /dev/ttyUSB0}
        - arg: {name: who, default: nobody}
        - node: {pkg: p, exec: e, name: "$(var who)", param: [{name: port, value: "$(var base_port)"}]}
        ''')
    parent = write(tmp_path, 'parent.launch.yaml', '''
        launch:
        - include: {file: child.launch.yaml, arg: [{name: who, value: base}]}
        ''')
    node, = load(parent).nodes
    assert node.params == [('param', ('port', '/dev/ttyUSB0'))]
    node, = load(parent, base_port='/dev/ttyACM0', who='ignored').nodes
    assert node.name == 'base', 'the including file\'s own value wins over the command line'
    assert node.params == [('param', ('port', '/dev/ttyACM0'))]
    with pytest.raises(LaunchError, match=r'unknown launch argument\(s\) base_prot'):
        load(parent, base_prot='/dev/ttyACM0')


def _two_nodes(tmp_path, params_text):
    params = write(tmp_path, 'p.yaml', params_text)
    return write(tmp_path, 'a.launch.yaml', f'''
        launch:
        - arg: {{name: speech, default: "false"}}
        - node: {{pkg: p, exec: e, name: manager, namespace: dialogue, param: [{{from: "{params}"}}]}}
        - group:
            if: "$(var speech)"
            children:
            - node: {{pkg: p, exec: e, name: asr, namespace: dialogue, param: [{{from: "{params}"}}]}}
        ''')


@pytest.mark.parametrize('section, hint', [('dialogue/manger', 'dialogue/manager'), ('/dialog/manager', 'dialogue/manager'),
                                           ('dialogue/asrr', 'dialogue/asr')])
def test_a_params_section_that_looks_like_a_typo_of_a_node_is_refused(tmp_path, section, hint):
    """Attack (session 12): `dialogue/manger:` started the manager with its defaults, silently."""
    f = _two_nodes(tmp_path, f'{section}:\n  ros__parameters:\n    silence_timeout_s: 9.0\n')
    with pytest.raises(LaunchError, match=f"section '{section}' names no node of this launch "
                                          f"\\(did you mean '{hint}'\\?\\)") as refused:
        load(f)
    assert 'p.yaml' in str(refused.value)


@pytest.mark.parametrize('section', ['dialogue/manager', '/dialogue/asr', '/**', 'dialogue/*',
                                     'navigation/guide', 'perception/faces'])
def test_params_sections_of_skipped_or_other_nodes_are_left_alone(tmp_path, section):
    """A node behind a false condition (asr without speech) or of another launch file (a shared
    config file: the guide's section in a file given only to the dialogue) is no typo."""
    f = _two_nodes(tmp_path, f'{section}:\n  ros__parameters:\n    x: 1\n')
    assert [n.name for n in load(f).nodes] == ['manager']


@pytest.mark.parametrize('text, says', [('a: [', 'invalid YAML'), ('health:\n  ros_parameters:\n    x: 1\n', 'ros__parameters')])
def test_a_broken_params_file_is_refused_before_any_node_starts(tmp_path, text, says):
    """Newcomer (session 12): `launch --show` passed a params file every node would refuse at start."""
    f = _two_nodes(tmp_path, text)
    with pytest.raises(LaunchError, match=says):
        load(f)


@pytest.mark.parametrize('text, says', [
    ('', 'sets no parameter: the nodes given it (/dialogue/manager) keep their defaults'),
    ('# all commented out\n# dialogue/manager:\n', 'sets no parameter'),
    ('dialogue/manager:\n  ros__parameters: {}\n', 'sets no parameter'),
    ('navigation/guide:\n  ros__parameters:\n    x: 1\n',
     'has no section for the nodes given it (/dialogue/manager; it has navigation/guide): they keep their '
     'defaults'),
])
def test_a_params_file_that_sets_nothing_for_its_nodes_is_a_warning(tmp_path, text, says):
    """Newcomer (session 12): an empty params file (a copy that failed, an edit not saved) started
    every node on its defaults without a word. rcl accepts it, so it starts; the launch says so."""
    described = load(_two_nodes(tmp_path, text))
    assert [n.name for n in described.nodes] == ['manager']
    assert len(described.warnings) == 1 and says in described.warnings[0], described.warnings
    assert 'p.yaml' in described.warnings[0]


@pytest.mark.parametrize('section', ['dialogue/manager', '/**', 'dialogue/*'])
def test_a_params_file_with_a_section_for_its_node_gives_no_warning(tmp_path, section):
    assert load(_two_nodes(tmp_path, f'{section}:\n  ros__parameters:\n    x: 1\n')).warnings == []


def test_retailbot_launch_says_the_warning_before_anything(tmp_path):
    import subprocess

    from rostest_support import REPO, console_script
    empty = tmp_path / 'empty.yaml'
    empty.write_text('')
    shown = subprocess.run([console_script('retailbot'), 'launch', str(REPO / 'launch' / 'robot.launch.yaml'),
                            f'config:={empty}', '--show'], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert shown.stderr.strip() == (f'retailbot launch: warning: params file {empty} sets no parameter: '
                                    'the nodes given it (/health) keep their defaults')
