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
from typing import Any, Iterable

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
    while it runs (see `retail_common.node_support.declare_params`).
    """

    name: str
    default: Any
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    read_only: bool = True
    type: str | None = None

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
            item = ParamSpec(self.name, None, '', self.min, self.max, self.choices, type=self.type[:-5])
            return [item.coerce(v) for v in value]
        if self.type == 'bool':
            if not isinstance(value, bool):
                raise ValueError(f'expected true or false, got {_describe(value)}')
        elif self.type == 'int':
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f'expected a whole number, got {_describe(value)}')
        elif self.type == 'float':
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f'expected a number, got {_describe(value)}')
            value = float(value)
            if math.isnan(value):
                raise ValueError('expected a number, got NaN')
        elif self.type == 'str':
            if not isinstance(value, str):
                raise ValueError(f'expected text, got {_describe(value)}')
        if self.min is not None and value < self.min:
            raise ValueError(f'{value!r} is below the minimum {self.min!r}')
        if self.max is not None and value > self.max:
            raise ValueError(f'{value!r} is above the maximum {self.max!r}')
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{value!r} is not one of {', '.join(map(repr, self.choices))}")
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
    source: str          # params file path, or COMMAND_LINE
    wildcard: bool       # given through a wildcard section such as `/**`


def _flatten(prefix: str, mapping: dict, out: dict[str, Any]) -> None:
    for key, value in mapping.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            _flatten(name + '.', value, out)
        else:
            out[name] = value


def load_params_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a ROS 2 params file: {node key: {dotted parameter name: value}}."""
    path = Path(path)
    try:
        text = path.read_text(encoding='utf-8')
    except FileNotFoundError:
        raise ConfigError(f'params file {path}: no such file') from None
    except OSError as exc:
        raise ConfigError(f'params file {path}: cannot read ({exc.strerror})') from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        where = f' line {mark.line + 1}' if mark is not None else ''
        problem = getattr(exc, 'problem', None) or 'invalid YAML'
        raise ConfigError(f'params file {path}{where}: {problem}') from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f'params file {path}: expected node sections at the top level')
    sections: dict[str, dict[str, Any]] = {}
    for node_key, body in data.items():
        if not isinstance(body, dict) or not isinstance(body.get('ros__parameters'), dict):
            raise ConfigError(f'params file {path}: section {node_key!r} has no ros__parameters mapping')
        flat: dict[str, Any] = {}
        _flatten('', body['ros__parameters'], flat)
        sections[str(node_key)] = flat
    return sections


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


def _command_line_params(args: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, a in enumerate(args[:-1]):
        if a in ('-p', '--param') and ':=' in args[i + 1]:
            name, _, raw = args[i + 1].partition(':=')
            try:
                out[name] = yaml.safe_load(raw) if raw else ''
            except yaml.YAMLError:
                out[name] = raw
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
    for name, value in _command_line_params(args).items():
        found[name] = Override(name, value, COMMAND_LINE, False)
    return found


def _is_builtin(name: str) -> bool:
    return name in BUILTIN_PARAMETERS or name.startswith(BUILTIN_PREFIXES)


def resolve(fully_qualified_name: str, specs: Iterable[ParamSpec],
            overrides: dict[str, Override]) -> dict[str, Any]:
    """Validated values of every declared parameter; ConfigError on the first problem."""
    specs = list(specs)
    declared = {s.name for s in specs}
    for name, given in overrides.items():
        if name not in declared and not given.wildcard and not _is_builtin(name):
            hint = _closest(name, declared)
            raise ConfigError(f'{given.source}: node {fully_qualified_name}: unknown key {name!r}'
                              + (f' (did you mean {hint!r}?)' if hint else ''))
    values: dict[str, Any] = {}
    for spec in specs:
        given = overrides.get(spec.name)
        if given is None:
            values[spec.name] = spec.default
            continue
        try:
            values[spec.name] = spec.coerce(given.value)
        except ValueError as exc:
            raise ConfigError(
                f'{given.source}: node {fully_qualified_name}: key {spec.name!r}: {exc}') from None
    return values


def _closest(name: str, candidates: Iterable[str]) -> str | None:
    import difflib
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.7)
    return matches[0] if matches else None
