"""Params files are checked against the declared parameters: a technician's typo stops the node
with one line naming file, node and key."""
import pytest

from retail_common.params import (COMMAND_LINE, ConfigError, ParamSpec, load_params_file,
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
