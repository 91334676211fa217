"""Declared node parameters and the validation of ROS 2 params files against them.

A store technician edits YAML params files by hand. A typo must stop the node at start with one
line naming the file, the node and the key, instead of being silently ignored (rclpy ignores
unknown keys) or surfacing later as odd behaviour. Pure: no rclpy import.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

# Parameters every rclpy node accepts without declaring them itself.
BUILTIN_PARAMETERS = ('use_sim_time', 'start_type_description_service', 'start_parameter_event_publisher')
BUILTIN_PREFIXES = ('qos_overrides.',)
COMMAND_LINE = 'command line'

_KINDS = ('bool', 'int', 'float', 'str', 'bool_list', 'int_list', 'float_list', 'str_list')


class ConfigError(Exception):
    """A configuration problem, worded as one line for the technician."""


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return 'bool'
    if isinstance(value, int):
        return 'int'
    if isinstance(value, float):
        return 'float'
    if isinstance(value, str):
        return 'str'
    if isinstance(value, (list, tuple)) and value:
        return _kind_of(value[0]) + '_list'
    raise TypeError(f'cannot infer a parameter type from {value!r}; give type=')


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter: its default also fixes its type unless `type` is given.

    Parameters are read at start and read-only; `read_only=False` marks one the node applies
    while it runs (see `retail_ros.node_support.declare_params`).
    """

    name: str
    default: Any
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    read_only: bool = True
    type: str | None = None
    check: Callable[[Any], object] | None = None  # a further rule: raises ValueError (one line) on a bad value

    def __post_init__(self) -> None:
        kind = self.type or _kind_of(self.default)
        if kind not in _KINDS:
            raise ValueError(f'parameter {self.name}: unknown type {kind!r}')
        object.__setattr__(self, 'type', kind)
        if isinstance(self.default, tuple):
            object.__setattr__(self, 'default', list(self.default))
        if self.choices is not None:
            object.__setattr__(self, 'choices', tuple(self.choices))

    @property
    def attribute(self) -> str:
        """Python attribute name of the value (dots of nested keys become underscores)."""
        return self.name.replace('.', '_')

    def coerce(self, value: Any) -> Any:
        """Return `value` as this parameter's type, or raise ValueError saying what is wrong."""
        if self.type.endswith('_list'):
            if not isinstance(value, (list, tuple)):
                raise ValueError(f'expected a list of {self.type[:-5]}, got {_describe(value)}')
            item = ParamSpec(
                self.name, None, '', self.min, self.max, self.choices, type=self.type[:-5], check=self.check
            )
            return [item.coerce(v) for v in value]
        value = _of_type(self.type, value)
        if self.min is not None and value < self.min:
            raise ValueError(f'{value!r} is below the minimum {self.min!r}')
        if self.max is not None and value > self.max:
            raise ValueError(f'{value!r} is above the maximum {self.max!r}')
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{value!r} is not one of {', '.join(map(repr, self.choices))}")
        if self.check is not None:
            self.check(value)
        return value


def _of_type(kind: str, value: Any) -> Any:
    """`value` as a scalar of `kind` (an int is a float too; NaN is no number), or ValueError."""
    if kind == 'bool' and not isinstance(value, bool):
        raise ValueError(f'expected true or false, got {_describe(value)}')
    if kind == 'int' and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f'expected a whole number, got {_describe(value)}')
    if kind == 'float':
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f'expected a number, got {_describe(value)}')
        value = float(value)
        if math.isnan(value):
            raise ValueError('expected a number, got NaN')
    if kind == 'str' and not isinstance(value, str):
        raise ValueError(f'expected text, got {_describe(value)}')
    return value


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f'the boolean {str(value).lower()}'
    if isinstance(value, (int, float)):
        return f'the number {value!r}'
    if isinstance(value, str):
        return f'the text {value!r}'
    if isinstance(value, (list, tuple)):
        return f'the list {list(value)!r}'
    return repr(value)


# --- params files -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Override:
    """A value given to a node by a params file or by `-p name:=value`."""

    name: str
    value: Any
    source: str  # params file path, or COMMAND_LINE
    wildcard: bool  # given through a wildcard section such as `/**`
    text: str | None = None  # `-p` only: the value as written (a text parameter keeps "0" as "0")


# rcl_yaml_param_parser's typing of plain (unquoted) scalars: YAML 1.1-style booleans, C strtol
# (base 0: 0x1F, 010 octal) for integers, C strtod (plus .inf/.nan) for doubles, text otherwise.
# Quoted scalars are always text. Source: ros2/rcl rcl_yaml_param_parser/src/parse.c get_value().
_RCL_TRUE = {'Y', 'y', 'yes', 'Yes', 'YES', 'true', 'True', 'TRUE', 'on', 'On', 'ON'}
_RCL_FALSE = {'N', 'n', 'no', 'No', 'NO', 'false', 'False', 'FALSE', 'off', 'Off', 'OFF'}
_RCL_INT = re.compile(r'\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\Z')
_RCL_FLOAT = re.compile(r'\s*[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf|infinity|nan)\Z', re.IGNORECASE)
_RCL_YAML_FLOATS = {'.nan': math.nan, '.NaN': math.nan, '.NAN': math.nan}
for _sign, _factor in (('', 1.0), ('+', 1.0), ('-', -1.0)):
    for _text in ('.inf', '.Inf', '.INF'):
        _RCL_YAML_FLOATS[_sign + _text] = _factor * math.inf
_INT64 = 2**63
_NAME_TOKEN = re.compile(r'[A-Za-z_*][A-Za-z0-9_*]*\Z')
PARAMS_KEY = 'ros__parameters'


def rcl_scalar(text: str, quoted: bool) -> Any:
    """The value rcl gives a scalar of a params file (see the table above)."""
    if quoted:
        return text
    if text in _RCL_TRUE:
        return True
    if text in _RCL_FALSE:
        return False
    match = _RCL_INT.match(text)
    if match:
        sign, digits = match.groups()
        base = 16 if digits[:2] in ('0x', '0X') else 8 if len(digits) > 1 and digits[0] == '0' else 10
        value = int(sign + digits, base)
        if -_INT64 <= value < _INT64:  # strtol overflows (ERANGE): then it is read as a double
            return value
    if text in _RCL_YAML_FLOATS:
        return _RCL_YAML_FLOATS[text]
    if _RCL_FLOAT.match(text):
        return float(text)
    return text


class _ParamsReader:
    """Walks a composed YAML document as rcl does, raising ConfigError with file, line, node, key."""

    def __init__(self, path: Path):
        self.path = path
        self.sections: dict[str, dict[str, Any]] = {}

    def fail(self, node: yaml.Node | None, message: str) -> None:
        line = f' line {node.start_mark.line + 1}' if node is not None else ''
        raise ConfigError(f'params file {self.path}{line}: {message}')

    def top(self, root: yaml.Node | None) -> None:
        if root is None:
            return
        if not isinstance(root, yaml.MappingNode):
            self.fail(root, 'expected node names at the top level (e.g. `navigation/base:` or `/**:`)')
        self.names(root, '')

    def names(self, mapping: yaml.MappingNode, prefix: str) -> None:
        """The node-name levels: `ns: node: ros__parameters:` equals `ns/node: ros__parameters:`."""
        for key_node, value in mapping.value:
            key = str(key_node.value)
            if key == PARAMS_KEY:
                if not prefix:
                    self.fail(key_node, f'{PARAMS_KEY} needs a node name above it (e.g. `/**:`)')
                if not isinstance(value, yaml.MappingNode):
                    self.fail(value, f'node {prefix}: {PARAMS_KEY} must be a mapping of parameters')
                self.parameters(value, prefix, '', self.sections.setdefault(prefix, {}), 0)
                continue
            name = prefix.rstrip('/') + '/' + key.strip('/') if prefix else key
            if key.strip('/') == '' and key != '/':
                self.fail(key_node, f'empty node name {key!r}')
            for token in key.strip('/').split('/'):
                if key != '/' and not _NAME_TOKEN.match(token):
                    self.fail(
                        key_node,
                        f'{key!r} is not a valid node name or namespace (letters, digits, '
                        '_ and wildcards *, ** between slashes; not starting with a digit)',
                    )
            if not isinstance(value, yaml.MappingNode):
                if prefix:
                    self.fail(
                        key_node,
                        f'section {prefix!r} has no {PARAMS_KEY} mapping ({key!r} must be under {PARAMS_KEY}:)',
                    )
                self.fail(key_node, f'section {name!r} has no {PARAMS_KEY} mapping')
            if len(prefix.split('/')) > 64:
                self.fail(key_node, 'node names nested too deeply')
            self.names(value, name)
        if prefix and not mapping.value:
            self.fail(mapping, f'section {prefix!r} has no {PARAMS_KEY} mapping')

    def parameters(self, mapping: yaml.MappingNode, node: str, prefix: str, out: dict, depth: int) -> None:
        if depth > 64:
            self.fail(mapping, f'node {node}: parameters nested too deeply')
        for key_node, value in mapping.value:
            name = prefix + str(key_node.value)
            if isinstance(value, yaml.MappingNode):
                self.parameters(value, node, name + '.', out, depth + 1)
            elif isinstance(value, yaml.SequenceNode):
                out[name] = self.sequence(value, node, name)
            else:
                out[name] = self.scalar(value, node, name)

    def scalar(self, value: yaml.ScalarNode, node: str, name: str) -> Any:
        quoted = value.style in ("'", '"')
        if not quoted and value.value == '':
            self.fail(value, f'node {node}: key {name!r} has no value (write "" for empty text)')
        return rcl_scalar(value.value, quoted)

    def sequence(self, value: yaml.SequenceNode, node: str, name: str) -> list:
        items = []
        for item in value.value:
            if not isinstance(item, yaml.ScalarNode):
                self.fail(
                    item, f'node {node}: key {name!r}: a list holds plain values only (no nested lists or mappings)'
                )
            items.append(self.scalar(item, node, name))
        kinds = {
            (
                'float'
                if isinstance(v, float)
                else 'bool'
                if isinstance(v, bool)
                else 'int'
                if isinstance(v, int)
                else 'text'
            )
            for v in items
        }
        if len(kinds) > 1:
            self.fail(
                value,
                f'node {node}: key {name!r}: all items of a list must have one type, got {", ".join(sorted(kinds))}',
            )
        return items


def _decode(path: Path, data: bytes) -> str:
    """Params file text: UTF-8 (or UTF-16 with a BOM, which libyaml also reads)."""
    if data.startswith((b'\xff\xfe', b'\xfe\xff')):
        encoding = 'utf-16'
    else:
        encoding = 'utf-8-sig'
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b'\n') + 1
        raise ConfigError(
            f'params file {path} line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8'
        ) from None


def load_params_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a ROS 2 params file as rcl does: {node key: {dotted parameter name: value}}.

    Node names may be nested mappings (`navigation: base: ros__parameters:` is the node key
    `navigation/base`); values are typed with rcl's rules (`rcl_scalar`). Any problem is a
    ConfigError of one line naming the file, the line and, where known, the node and the key.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f'params file {path}: no such file') from None
    except IsADirectoryError:
        raise ConfigError(f'params file {path}: is a folder, not a file') from None
    except OSError as exc:
        raise ConfigError(f'params file {path}: cannot read ({exc.strerror})') from None
    text = _decode(path, data)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        where = f' line {mark.line + 1}' if mark is not None else ''
        if isinstance(exc, yaml.reader.ReaderError):
            where = f' line {text[: exc.position].count(chr(10)) + 1}'
            problem = f'character {exc.character!r} is not allowed in YAML'
        else:
            problem = getattr(exc, 'problem', None) or 'invalid YAML'
        raise ConfigError(f'params file {path}{where}: invalid YAML: {problem}') from None
    except RecursionError:
        raise ConfigError(f'params file {path}: invalid YAML: nested too deeply') from None
    reader = _ParamsReader(path)
    try:
        reader.top(root)
    except RecursionError:
        raise ConfigError(f'params file {path}: nested too deeply (a recursive alias?)') from None
    return reader.sections


def _node_key_pattern(key: str) -> re.Pattern:
    """rcl's node-name matching: `*` is one name token, `**` any number of them."""
    if not key.startswith('/'):
        key = '/' + key
    tokens = key.split('/')[1:]
    regex = ''
    for token in tokens:
        if token == '**':
            regex += '(/[^/]+)*'
        else:
            regex += '/' + re.escape(token).replace(r'\*', '[^/]*')
    return re.compile(f'^{regex}$')


def is_wildcard(key: str) -> bool:
    return '*' in key


def node_key_matches(key: str, fully_qualified_name: str) -> bool:
    return bool(_node_key_pattern(key).match(fully_qualified_name))


def params_files_in_args(args: Iterable[str]) -> list[str]:
    """The `--params-file` paths among ROS arguments, in order."""
    args = list(args)
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == '--params-file']


def command_line_value(raw: str) -> Any:
    """The value of `-p name:=RAW` as rcl reads it (RAW is one YAML value, typed by rcl's rules)."""
    if raw == '':
        return ''
    try:
        node = yaml.compose(raw, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return raw
    if isinstance(node, yaml.ScalarNode):
        return rcl_scalar(node.value, node.style in ("'", '"'))
    if isinstance(node, yaml.SequenceNode) and all(isinstance(i, yaml.ScalarNode) for i in node.value):
        return [rcl_scalar(i.value, i.style in ("'", '"')) for i in node.value]
    return raw


def _command_line_params(args: list[str]) -> dict[str, tuple[Any, str]]:
    out: dict[str, tuple[Any, str]] = {}
    for i, a in enumerate(args[:-1]):
        if a in ('-p', '--param') and ':=' in args[i + 1]:
            name, _, raw = args[i + 1].partition(':=')
            out[name] = (command_line_value(raw), raw)
    return out


def overrides_for(fully_qualified_name: str, args: Iterable[str]) -> dict[str, Override]:
    """Every value the ROS arguments give to this node, with where it came from (last wins)."""
    args = list(args)
    found: dict[str, Override] = {}
    for path in params_files_in_args(args):
        for key, params in load_params_file(path).items():
            if node_key_matches(key, fully_qualified_name):
                for name, value in params.items():
                    found[name] = Override(name, value, path, is_wildcard(key))
    for name, (value, raw) in _command_line_params(args).items():
        found[name] = Override(name, value, COMMAND_LINE, False, raw)
    return found


def _is_builtin(name: str) -> bool:
    return name in BUILTIN_PARAMETERS or name.startswith(BUILTIN_PREFIXES)


def resolve(fully_qualified_name: str, specs: Iterable[ParamSpec], overrides: dict[str, Override]) -> dict[str, Any]:
    """Validated values of every declared parameter; ConfigError on the first problem."""
    specs = list(specs)
    declared = {s.name for s in specs}
    for name, given in overrides.items():
        if name not in declared and not given.wildcard and not _is_builtin(name):
            hint = _closest(name, declared)
            raise ConfigError(
                f'{given.source}: node {fully_qualified_name}: unknown key {name!r}'
                + (f' (did you mean {hint!r}?)' if hint else '')
            )
    values: dict[str, Any] = {}
    for spec in specs:
        given = overrides.get(spec.name)
        if given is None:
            values[spec.name] = spec.default
            continue
        value = given.value
        if spec.type == 'str' and given.text is not None and isinstance(value, (bool, int, float)):
            value = given.text  # a launch argument `camera_device:=0` means the text "0"
        try:
            values[spec.name] = spec.coerce(value)
        except ValueError as exc:
            raise ConfigError(f'{given.source}: node {fully_qualified_name}: key {spec.name!r}: {exc}') from None
    return values


def _closest(name: str, candidates: Iterable[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.7)
    return matches[0] if matches else None
