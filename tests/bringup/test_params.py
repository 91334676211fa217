"""Params files are checked against the declared parameters: a technician's typo stops the node
with one line naming file, node and key."""
import pytest

from retail_ros.params import (COMMAND_LINE, ConfigError, ParamSpec, load_params_file,
                                   node_key_matches, overrides_for, resolve)

SPECS = [
    ParamSpec('max_speed', 0.5, 'm/s', min=0.0, max=1.0),
    ParamSpec('port', '/dev/ttyUSB0', 'serial port'),
    ParamSpec('retries', 3, 'count', min=0),
    ParamSpec('enabled', True, 'on/off'),
    ParamSpec('zones', ['a'], 'zone ids'),
    ParamSpec('mode', 'auto', 'mode', choices=('auto', 'manual')),
]


def write(tmp_path, text, name='p.yaml'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_values_from_file_and_command_line_override_defaults(tmp_path):
    f = write(tmp_path, '/navigation/base:\n  ros__parameters:\n    max_speed: 0.3\n    retries: 5\n')
    values = resolve('/navigation/base', SPECS,
                     overrides_for('/navigation/base', ['x', '--ros-args', '--params-file', f, '-p', 'retries:=7']))
    assert values['max_speed'] == 0.3
    assert values['retries'] == 7          # -p comes after the file and wins
    assert values['port'] == '/dev/ttyUSB0'


def test_integer_is_accepted_for_a_float_parameter(tmp_path):
    f = write(tmp_path, 'navigation/base:\n  ros__parameters:\n    max_speed: 1\n')
    values = resolve('/navigation/base', SPECS, overrides_for('/navigation/base', ['--params-file', f]))
    assert values['max_speed'] == 1.0 and isinstance(values['max_speed'], float)


@pytest.mark.parametrize('body, expected', [
    ('max_sped: 0.3', "unknown key 'max_sped' (did you mean 'max_speed'?)"),
    ('max_speed: 2.5', "key 'max_speed': 2.5 is above the maximum 1.0"),
    ('max_speed: fast', "key 'max_speed': expected a number, got the text 'fast'"),
    ('retries: 1.5', "key 'retries': expected a whole number"),
    ('enabled: "yes please"', "key 'enabled': expected true or false"),
    ('zones: a', "key 'zones': expected a list of str"),
    ('mode: turbo', "key 'mode': 'turbo' is not one of 'auto', 'manual'"),
])
def test_bad_value_names_file_node_and_key(tmp_path, body, expected):
    f = write(tmp_path, f'/navigation/base:\n  ros__parameters:\n    {body}\n')
    with pytest.raises(ConfigError) as err:
        resolve('/navigation/base', SPECS, overrides_for('/navigation/base', ['--params-file', f]))
    message = str(err.value)
    assert message.startswith(f'{f}: node /navigation/base: ')
    assert expected in message
    assert '\n' not in message


def test_command_line_error_says_command_line():
    with pytest.raises(ConfigError, match=f'^{COMMAND_LINE}: node /n: key .max_speed.'):
        resolve('/n', SPECS, overrides_for('/n', ['-p', 'max_speed:=-1.0']))


def test_wildcard_sections_may_hold_keys_for_other_nodes(tmp_path):
    f = write(tmp_path, '/**:\n  ros__parameters:\n    store_dir: /x\n    max_speed: 0.2\n')
    values = resolve('/navigation/base', SPECS, overrides_for('/navigation/base', ['--params-file', f]))
    assert values['max_speed'] == 0.2


def test_sections_for_other_nodes_are_not_applied(tmp_path):
    f = write(tmp_path, '/perception/camera:\n  ros__parameters:\n    rate: 5\n')
    assert overrides_for('/navigation/base', ['--params-file', f]) == {}


@pytest.mark.parametrize('key, fqn, matches', [
    ('/**', '/navigation/base', True), ('navigation/base', '/navigation/base', True),
    ('/navigation/*', '/navigation/base', True), ('/*/base', '/navigation/base', True),
    ('base', '/navigation/base', False), ('/**/base', '/navigation/base', True),
    ('/navigation/base', '/navigation/base2', False),
])
def test_node_key_matching_follows_rcl(key, fqn, matches):
    assert node_key_matches(key, fqn) is matches


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(ConfigError, match='params file .*nope.yaml: no such file'):
        load_params_file(tmp_path / 'nope.yaml')


def test_malformed_yaml_names_the_line(tmp_path):
    f = write(tmp_path, 'a:\n  ros__parameters:\n    x: [1, 2\n')
    with pytest.raises(ConfigError, match=r'p.yaml line \d+'):
        load_params_file(f)


def test_section_without_ros_parameters_is_an_error(tmp_path):
    f = write(tmp_path, 'navigation/base:\n  port: /dev/x\n')
    with pytest.raises(ConfigError, match="section 'navigation/base' has no ros__parameters"):
        load_params_file(f)


def test_nested_parameters_are_dotted(tmp_path):
    f = write(tmp_path, 'n:\n  ros__parameters:\n    limits:\n      speed: 0.4\n')
    assert load_params_file(f) == {'n': {'limits.speed': 0.4}}


# --- rcl's params grammar (rcl_yaml_param_parser), as a table (issue 12 item 8) -------------------

@pytest.mark.parametrize('text, expected', [
    # node names: a path, or nested mappings, or both; wildcards
    ('navigation/base:\n  ros__parameters:\n    x: 1\n', {'navigation/base': {'x': 1}}),
    ('/navigation/base:\n  ros__parameters:\n    x: 1\n', {'/navigation/base': {'x': 1}}),
    ('navigation:\n  base:\n    ros__parameters:\n      x: 1\n', {'navigation/base': {'x': 1}}),
    ('/navigation:\n  base:\n    ros__parameters:\n      x: 1\n', {'/navigation/base': {'x': 1}}),
    ('robot:\n  navigation:\n    base:\n      ros__parameters:\n        x: 1\n', {'robot/navigation/base': {'x': 1}}),
    ('navigation:\n  base:\n    ros__parameters:\n      x: 1\n  guide:\n    ros__parameters:\n      y: 2\n',
     {'navigation/base': {'x': 1}, 'navigation/guide': {'y': 2}}),
    ('/**:\n  ros__parameters:\n    x: 1\n', {'/**': {'x': 1}}),
    ('/**:\n  base:\n    ros__parameters:\n      x: 1\n', {'/**/base': {'x': 1}}),
    # public reports: ros2/rcl#299 (`/:` is the root namespace, not `//talker`), ros2/rclcpp#2166
    # (two nodes under one namespace; the same namespace key written twice)
    ('/:\n  talker:\n    ros__parameters:\n      x: 1\n', {'/talker': {'x': 1}}),
    ('/*:\n  talker:\n    ros__parameters:\n      x: 1\n', {'/*/talker': {'x': 1}}),
    ('ns:\n  a:\n    ros__parameters:\n      x: 1\nns:\n  b:\n    ros__parameters:\n      y: 2\n',
     {'ns/a': {'x': 1}, 'ns/b': {'y': 2}}),
    # values typed as rcl types them
    ('n:\n  ros__parameters:\n    a: yes\n    b: Off\n    c: y\n', {'n': {'a': True, 'b': False, 'c': True}}),
    ('n:\n  ros__parameters:\n    a: 0x1F\n    b: 010\n    c: -7\n', {'n': {'a': 31, 'b': 8, 'c': -7}}),
    ('n:\n  ros__parameters:\n    a: 1e3\n    b: .5\n    c: -.inf\n', {'n': {'a': 1000.0, 'b': 0.5, 'c': float('-inf')}}),
    ('n:\n  ros__parameters:\n    a: "0"\n    b: \'true\'\n    c: 2026-01-01\n    d: 1_000\n',
     {'n': {'a': '0', 'b': 'true', 'c': '2026-01-01', 'd': '1_000'}}),
    ('n:\n  ros__parameters:\n    a: null\n    b: ~\n    c: ""\n', {'n': {'a': 'null', 'b': '~', 'c': ''}}),
    ('n:\n  ros__parameters:\n    a: 99999999999999999999\n', {'n': {'a': 1e20}}),
    ('n:\n  ros__parameters:\n    a: [1, 2]\n    b: [zh, en]\n    c: [1.5, 2.0]\n',
     {'n': {'a': [1, 2], 'b': ['zh', 'en'], 'c': [1.5, 2.0]}}),
    ('n:\n  ros__parameters:\n    a: &x 5\n    b: *x\n', {'n': {'a': 5, 'b': 5}}),
    ('', {}),
])
def test_params_files_read_as_rcl_reads_them(tmp_path, text, expected):
    got = load_params_file(write(tmp_path, text))
    assert got == expected
    for section, params in expected.items():      # types too: 1 is not True, 8 is not 8.0
        assert {k: type(v) for k, v in got[section].items()} == {k: type(v) for k, v in params.items()}


@pytest.mark.parametrize('text, message', [
    ('n:\n  ros__parameters:\n    a:\n', "line 3: node n: key 'a' has no value"),
    ('n:\n  ros__parameters:\n    a: [1, x]\n', "line 3: node n: key 'a': all items of a list must have one type"),
    ('n:\n  ros__parameters:\n    a: [[1], [2]]\n', "line 3: node n: key 'a': a list holds plain values only"),
    ('n:\n  ros__parameters:\n    a: [{b: 1}]\n', "line 3: node n: key 'a': a list holds plain values only"),
    ('n:\n  ros__parameters: 5\n', "line 2: node n: ros__parameters must be a mapping"),
    ('ros__parameters:\n  a: 1\n', 'line 1: ros__parameters needs a node name above it'),
    ('- a\n- b\n', 'line 1: expected node names at the top level'),
    ('9lives:\n  ros__parameters:\n    a: 1\n', "line 1: '9lives' is not a valid node name"),
    ('na-me:\n  ros__parameters:\n    a: 1\n', "line 1: 'na-me' is not a valid node name"),
    ('n:\n  ros__parameters:\n    a: [1, 2\n', 'line 4: invalid YAML'),
    ('n:\n  ros__parameters:\n  a: 1\n   b: 2\n', 'line 4: invalid YAML'),
    ('n:\n  ros__parameters:\n    a: "x\x07"\n', 'line 3: invalid YAML'),
    ('navigation/base:\n  port: /dev/x\n', "section 'navigation/base' has no ros__parameters mapping"),
    ('navigation/base: 5\n', "section 'navigation/base' has no ros__parameters mapping"),
])
def test_params_file_errors_are_one_line_with_file_and_line(tmp_path, text, message):
    f = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_params_file(f)
    assert str(err.value).startswith(f'params file {f}')
    assert message in str(err.value)
    assert '\n' not in str(err.value)


@pytest.mark.parametrize('data, line', [
    (b'n:\n  ros__parameters:\n    name: caf\xe9\n', 3),                 # Latin-1
    (b'n:\n  ros__parameters:\n    name: \xc4\xe3\xba\xc3\n', 3),        # GBK
    (b'\xff\n', 1),
])
def test_a_params_file_that_is_not_utf8_is_one_line(tmp_path, data, line):
    f = tmp_path / 'p.yaml'
    f.write_bytes(data)
    with pytest.raises(ConfigError, match=rf'^params file {f} line {line}: not UTF-8 text \(byte 0x[0-9a-f]{{2}}\); save'):
        load_params_file(f)


def test_utf8_with_a_bom_and_utf16_are_read(tmp_path):
    f = tmp_path / 'p.yaml'
    text = 'n:\n  ros__parameters:\n    name: 王女士\n'
    for data in (b'\xef\xbb\xbf' + text.encode('utf-8'), text.encode('utf-16')):
        f.write_bytes(data)
        assert load_params_file(f) == {'n': {'name': '王女士'}}


def test_a_folder_instead_of_a_params_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match='is a folder, not a file'):
        load_params_file(tmp_path)


@pytest.mark.parametrize('raw, value', [
    ('0', '0'), ('007', '007'), ('1.50', '1.50'), ('true', 'true'), ("'0'", '0'), ('/dev/video0', '/dev/video0'),
    ("/srv/Joe's Store 12", "/srv/Joe's Store 12"), ('', ''),
])
def test_a_text_parameter_keeps_the_text_given_on_the_command_line(raw, value):
    """`camera_device:=0` from the launch reaches a text parameter as "0" (issue 17)."""
    specs = [ParamSpec('source', 'x', 'camera source')]
    assert resolve('/c', specs, overrides_for('/c', ['-p', f'source:={raw}'])) == {'source': value}


@pytest.mark.parametrize('raw, value', [('0', 0), ('0x10', 16), ('7', 7)])
def test_a_number_parameter_still_gets_the_number(raw, value):
    assert resolve('/c', [ParamSpec('n', 1, 'count')], overrides_for('/c', ['-p', f'n:={raw}'])) == {'n': value}
