"""ROS 2 YAML launch files, resolved to the list of node processes they describe.

The pip environment has no `launch` package, yet the robot's launch files must stay the ones
`ros2 launch` reads on a full ROS install. This module understands the subset of the YAML
frontend the project uses and rejects everything else with file, line and construct: a
silently ignored line in a launch file is a robot that misbehaves in the store. Pure: no rclpy.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml


class LaunchError(Exception):
    """A launch file problem, worded as `file:line: message`."""


# --- YAML with line numbers -------------------------------------------------------------------


class _LineDict(dict):
    line = 0
    key_lines: dict


class _LineList(list):
    line = 0


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    mapping = _LineDict()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1
    return mapping


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _LineList:
    seq = _LineList(loader.construct_object(child, deep=True) for child in node.value)
    seq.line = node.start_mark.line + 1
    return seq


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


# --- the resolved description -----------------------------------------------------------------


@dataclass(frozen=True)
class ArgDeclaration:
    name: str
    default: str | None
    description: str
    source: str


@dataclass
class NodeLaunch:
    """One node process: what `ros2 launch` would start for a `node:` entry."""

    pkg: str
    executable: str
    name: str
    namespace: str
    params: list[tuple[str, Any]] = field(default_factory=list)  # ('file', path) | ('param', (k, v))
    remaps: list[tuple[str, str]] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    respawn: bool = False
    respawn_delay: float = 0.0
    on_exit: str = ''  # 'shutdown': the robot stops when this node ends
    output: str = 'screen'
    source: str = ''

    @property
    def fully_qualified_name(self) -> str:
        ns = self.namespace.rstrip('/')
        return f'{ns}/{self.name}' if ns else f'/{self.name}'

    def ros_arguments(self) -> list[str]:
        """The `--ros-args ...` part of the command line."""
        out = ['--ros-args', '-r', f'__node:={self.name}']
        if self.namespace not in ('', '/'):
            out += ['-r', f'__ns:={self.namespace}']
        for kind, value in self.params:
            if kind == 'file':
                out += ['--params-file', value]
            else:
                key, raw = value
                out += ['-p', f'{key}:={param_value_text(raw)}']
        for src, dst in self.remaps:
            out += ['-r', f'{src}:={dst}']
        return out

    def to_json(self) -> dict:
        return {
            'name': self.fully_qualified_name,
            'pkg': self.pkg,
            'exec': self.executable,
            'params': [{'file': v} if k == 'file' else {'name': v[0], 'value': v[1]} for k, v in self.params],
            'remaps': [{'from': a, 'to': b} for a, b in self.remaps],
            'args': self.args,
            'respawn': self.respawn,
            'respawn_delay': self.respawn_delay,
            'on_exit': self.on_exit,
            'source': self.source,
        }


def param_value_text(raw: str) -> str:
    """The `-p name:=VALUE` text for a launch parameter value, so that rcl (which reads VALUE as
    YAML) and the node see exactly what the launch gave: numbers, booleans and lists stay YAML
    (the node's declared type decides, a text parameter keeps the digits as written); any text
    YAML would change (empty, quotes, `#`, `: `, a leading `*`, `&`, `!`...) is single-quoted."""
    try:
        parsed = yaml.safe_load(raw)
    except yaml.YAMLError:
        parsed = None
    if isinstance(parsed, (bool, int, float)) or (isinstance(parsed, str) and parsed == raw):
        return raw
    if isinstance(parsed, list) and all(isinstance(v, (bool, int, float, str)) for v in parsed):
        return raw
    return "'" + raw.replace("'", "''") + "'"


@dataclass
class LaunchDescription:
    nodes: list[NodeLaunch]
    arguments: list[ArgDeclaration]
    warnings: list[str] = field(default_factory=list)  # one line each, said before anything starts


# --- substitutions ----------------------------------------------------------------------------

_SUBSTITUTIONS = ('var', 'env', 'find-pkg-share', 'dirname', 'filename')


@dataclass
class _Scope:
    variables: dict[str, str]
    namespace: str
    file: Path

    def child(self) -> '_Scope':
        return _Scope(dict(self.variables), self.namespace, self.file)


def _find_closing(text: str, start: int) -> int:
    depth = 0
    i = start
    while i < len(text):
        if text.startswith('$(', i):
            depth += 1
            i += 2
            continue
        if text[i] == ')':
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


class _Resolver:
    def __init__(self, find_share: Callable[[str], str]):
        self.find_share = find_share

    def segments(self, value: Any, scope: _Scope, where: str) -> list[tuple[bool, str]]:
        """`value` as (literal?, text) pieces: literal text of the file, and substitution results."""
        if isinstance(value, bool):
            return [(True, 'true' if value else 'false')]
        if isinstance(value, (int, float)):
            return [(True, str(value))]
        if isinstance(value, list):
            return [(True, '[' + ', '.join(self.text(v, scope, where) for v in value) + ']')]
        if not isinstance(value, str):
            raise LaunchError(f'{where}: expected a text value, got {type(value).__name__}')
        out: list[tuple[bool, str]] = []
        literal = []
        i = 0
        while i < len(value):
            if value.startswith('$(', i):
                end = _find_closing(value, i)
                if end < 0:
                    raise LaunchError(f'{where}: unclosed substitution in {value!r}')
                if literal:
                    out.append((True, ''.join(literal)))
                    literal = []
                out.append((False, self._one(value[i + 2 : end], scope, where)))
                i = end + 1
            else:
                literal.append(value[i])
                i += 1
        if literal:
            out.append((True, ''.join(literal)))
        return out

    def text(self, value: Any, scope: _Scope, where: str) -> str:
        """Substitute `$(...)` in a scalar; non-strings come back as YAML text."""
        return ''.join(text for _, text in self.segments(value, scope, where))

    def arguments(self, value: Any, scope: _Scope, where: str) -> list[str]:
        """Command-line arguments of `args:` as ros2 launch forms them: the file's own text is
        split like a shell line (quotes and backslashes, even around a substitution), a
        substitution's value never is (spaces, quotes and all)."""
        args: list[str] = []
        current: list[str] | None = None  # the argument being built; None: between arguments
        quote = ''
        for literal, text in self.segments(value, scope, where):
            if not literal:
                current = (current or []) + [text]
                continue
            i = 0
            while i < len(text):
                c = text[i]
                if quote:
                    if c == quote:
                        quote = ''
                    elif c == '\\' and quote == '"' and text[i + 1 : i + 2] in ('"', '\\', '$', '`'):
                        i += 1
                        current.append(text[i])
                    else:
                        current.append(c)
                elif c in ('"', "'"):
                    quote, current = c, current if current is not None else []
                elif c.isspace():
                    if current is not None:
                        args.append(''.join(current))
                        current = None
                elif c == '\\' and i + 1 < len(text):
                    i += 1
                    current = (current or []) + [text[i]]
                else:
                    current = (current or []) + [c]
                i += 1
        if quote:
            raise LaunchError(f'{where}: args: no closing quotation mark ({quote}) in {value!r}')
        if current is not None:
            args.append(''.join(current))
        return args

    def _substitution_args(self, body: str, scope: _Scope, where: str) -> list[str]:
        """Words of `$(kind arg ...)`: split at unquoted spaces; quotes group; nested
        substitutions are resolved and kept whole."""
        words: list[str] = []
        current: list[str] | None = None
        quote = ''
        i = 0
        while i < len(body):
            char = body[i]
            if body.startswith('$(', i):
                end = _find_closing(body, i)
                if end < 0:
                    raise LaunchError(f'{where}: unclosed substitution in $({body})')
                current = (current or []) + [self._one(body[i + 2 : end], scope, where)]
                i = end + 1
                continue
            if quote:
                if char == quote:
                    quote = ''
                else:
                    current.append(char)
            elif char in '\'"':
                quote = char
                current = current or []
            elif char.isspace():
                if current is not None:
                    words.append(''.join(current))
                    current = None
            else:
                current = (current or []) + [char]
            i += 1
        if quote:
            raise LaunchError(f'{where}: unclosed quote in $({body})')
        if current is not None:
            words.append(''.join(current))
        return words

    def _one(self, body: str, scope: _Scope, where: str) -> str:
        parts = self._substitution_args(body, scope, where)
        if not parts:
            raise LaunchError(f'{where}: empty substitution $()')
        kind, rest = parts[0], parts[1:]
        if kind == 'var':
            if len(rest) != 1:
                raise LaunchError(f'{where}: $(var NAME) takes one name')
            if rest[0] not in scope.variables:
                raise LaunchError(f'{where}: $(var {rest[0]}): no argument or variable named {rest[0]!r}')
            return scope.variables[rest[0]]
        if kind == 'env':
            if len(rest) not in (1, 2):
                raise LaunchError(f'{where}: $(env NAME [DEFAULT]) takes a name and an optional default')
            if rest[0] in os.environ:
                return os.environ[rest[0]]
            if len(rest) == 2:
                return rest[1]
            raise LaunchError(f'{where}: environment variable {rest[0]} is not set')
        if kind == 'find-pkg-share':
            if len(rest) != 1:
                raise LaunchError(f'{where}: $(find-pkg-share PACKAGE) takes one package')
            try:
                return self.find_share(rest[0])
            except LookupError as exc:
                raise LaunchError(f'{where}: $(find-pkg-share {rest[0]}): {exc}') from None
        if kind == 'dirname':
            return str(scope.file.parent)
        if kind == 'filename':
            return str(scope.file)
        raise LaunchError(f'{where}: unsupported substitution $({kind} ...) (supported: {", ".join(_SUBSTITUTIONS)})')

    def condition(self, entry: dict, scope: _Scope, where: str) -> bool:
        """Evaluate `if:` / `unless:` of an entry."""
        result = True
        for key, wanted in (('if', True), ('unless', False)):
            if key in entry:
                raw = self.text(entry[key], scope, where).strip().lower()
                if raw in ('true', '1'):
                    value = True
                elif raw in ('false', '0'):
                    value = False
                else:
                    raise LaunchError(f'{where}: {key}: expected true or false, got {raw!r}')
                result = result and (value == wanted)
        return result


# --- the walker -------------------------------------------------------------------------------

_ALLOWED = {
    'arg': {'name', 'default', 'description', 'if', 'unless'},
    'let': {'name', 'value', 'if', 'unless'},
    'node': {
        'pkg',
        'exec',
        'name',
        'namespace',
        'param',
        'remap',
        'args',
        'respawn',
        'respawn_delay',
        'on_exit',
        'output',
        'if',
        'unless',
    },
    'include': {'file', 'arg', 'if', 'unless'},
    'group': {'scoped', 'children', 'if', 'unless'},
    'push-ros-namespace': {'namespace', 'if', 'unless'},
}
_ALIASES = {'push_ros_namespace': 'push-ros-namespace'}
_BOOL = re.compile(r'^(true|false|1|0)$', re.IGNORECASE)


class _Walker:
    def __init__(self, resolver: _Resolver, given: dict[str, str], every_branch: bool = False):
        self.resolver = resolver
        self.every_branch = every_branch  # conditions ignored: every node the files declare
        self.given = dict(given)
        self.used_given: set[str] = set()
        self.nodes: list[NodeLaunch] = []
        self.arguments: list[ArgDeclaration] = []
        self.stack: list[Path] = []

    def load(self, path: Path, scope_vars: dict[str, str], namespace: str, top: bool) -> None:
        path = path.resolve()
        if path in self.stack:
            raise LaunchError(f'{self.stack[-1]}: include cycle through {path}')
        try:
            text = path.read_text(encoding='utf-8')
        except FileNotFoundError:
            where = f'{self.stack[-1]}' if self.stack else 'launch'
            raise LaunchError(f'{where}: launch file {path} does not exist') from None
        try:
            data = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, 'problem_mark', None)
            line = mark.line + 1 if mark is not None else 0
            raise LaunchError(f'{path}:{line}: invalid YAML: {getattr(exc, "problem", exc)}') from None
        if path.suffix not in ('.yaml', '.yml'):
            raise LaunchError(
                f'{path}:1: only YAML launch files are supported here (Python and XML launch files need `ros2 launch`)'
            )
        if not isinstance(data, dict) or set(data) != {'launch'} or not isinstance(data['launch'], list):
            raise LaunchError(
                f'{path}:1: a YAML launch file is a mapping with one key, `launch:`, holding a list of actions'
            )
        self.stack.append(path)
        scope = _Scope(scope_vars, namespace, path)
        self._actions(data['launch'], scope, top)
        self.stack.pop()

    def _where(self, scope: _Scope, line: int) -> str:
        return f'{scope.file}:{line}'

    def _actions(self, actions: list, scope: _Scope, top: bool) -> None:
        for action in actions:
            line = getattr(action, 'line', getattr(actions, 'line', 0))
            where = self._where(scope, line)
            if not isinstance(action, dict) or len(action) != 1:
                raise LaunchError(f'{where}: each launch action is a mapping with one key ({", ".join(_ALLOWED)})')
            ((kind, body),) = action.items()
            kind = _ALIASES.get(kind, kind)
            if kind not in _ALLOWED:
                raise LaunchError(f'{where}: unsupported launch action {kind!r} (supported: {", ".join(_ALLOWED)})')
            if kind == 'group' and isinstance(body, list):
                body = {'children': body}
            if not isinstance(body, dict):
                raise LaunchError(f'{where}: {kind}: expected a mapping of attributes')
            line = getattr(body, 'line', line)
            where = self._where(scope, line)
            unknown = set(body) - _ALLOWED[kind]
            if unknown:
                key = sorted(unknown)[0]
                key_line = getattr(body, 'key_lines', {}).get(key, line)
                raise LaunchError(
                    f'{self._where(scope, key_line)}: {kind}: unsupported attribute '
                    f'{key!r} (supported: {", ".join(sorted(_ALLOWED[kind]))})'
                )
            if not self.resolver.condition(body, scope, where) and not self.every_branch:
                continue
            getattr(self, '_' + kind.replace('-', '_'))(body, scope, where, top)

    def _require(self, body: dict, key: str, kind: str, where: str) -> Any:
        if key not in body or body[key] in (None, ''):
            raise LaunchError(f'{where}: {kind}: missing required attribute {key!r}')
        return body[key]

    def _arg(self, body: dict, scope: _Scope, where: str, top: bool) -> None:
        name = str(self._require(body, 'name', 'arg', where))
        default = body.get('default')
        default = None if default is None else self.resolver.text(default, scope, where)
        description = str(body.get('description', ''))
        if top:
            self.arguments.append(ArgDeclaration(name, default, description, where))
        if name in self.given:
            self.used_given.add(name)
        if name in self.given and top:
            scope.variables[name] = self.given[name]
        elif name in scope.variables and not top:
            pass  # given by the including file
        elif name in self.given:
            # As under ros2 launch, a command-line argument is a launch configuration of the whole
            # launch: an included file's own argument takes it (`robot.launch.yaml base_port:=...`).
            scope.variables[name] = self.given[name]
        elif default is not None:
            scope.variables[name] = default
        else:
            raise LaunchError(
                f'{where}: launch argument {name!r} is required ({description or "no description"}); give {name}:=VALUE'
            )

    def _let(self, body: dict, scope: _Scope, where: str, top: bool) -> None:
        name = str(self._require(body, 'name', 'let', where))
        scope.variables[name] = self.resolver.text(self._require(body, 'value', 'let', where), scope, where)

    def _push_ros_namespace(self, body: dict, scope: _Scope, where: str, top: bool) -> None:
        ns = self.resolver.text(self._require(body, 'namespace', 'push-ros-namespace', where), scope, where)
        scope.namespace = _join_namespace(scope.namespace, ns)

    def _group(self, body: dict, scope: _Scope, where: str, top: bool) -> None:
        scoped = self._bool(body.get('scoped', True), scope, where, 'scoped')
        children = body.get('children') or []
        if not isinstance(children, list):
            raise LaunchError(f'{where}: group: children must be a list of actions')
        if scoped:
            inner = scope.child()
            self._actions(children, inner, top)
        else:
            self._actions(children, scope, top)

    def _include(self, body: dict, scope: _Scope, where: str, top: bool) -> None:
        file = Path(self.resolver.text(self._require(body, 'file', 'include', where), scope, where))
        if not file.is_absolute():
            file = scope.file.parent / file
        variables = dict(scope.variables)
        for item in body.get('arg') or []:
            if not isinstance(item, dict) or 'name' not in item or 'value' not in item:
                raise LaunchError(f'{where}: include: each arg needs name and value')
            variables[str(item['name'])] = self.resolver.text(item['value'], scope, where)
        self.load(file, variables, scope.namespace, top=False)

    def _bool(self, raw: Any, scope: _Scope, where: str, key: str) -> bool:
        text = self.resolver.text(raw, scope, where).strip()
        if not _BOOL.match(text):
            raise LaunchError(f'{where}: {key}: expected true or false, got {text!r}')
        return text.lower() in ('true', '1')

    def _node(self, body: dict, scope: _Scope, where: str, top: bool) -> None:
        text = lambda v: self.resolver.text(v, scope, where)  # noqa: E731
        pkg = text(self._require(body, 'pkg', 'node', where))
        executable = text(self._require(body, 'exec', 'node', where))
        name = text(body.get('name', executable))
        namespace = _join_namespace(scope.namespace, text(body.get('namespace', '')))
        node = NodeLaunch(pkg=pkg, executable=executable, name=name, namespace=namespace, source=where)
        _node_params(body, node, text, where)
        if 'args' in body:
            node.args = self.resolver.arguments(body['args'], scope, where)
        if 'respawn' in body:
            node.respawn = self._bool(body['respawn'], scope, where, 'respawn')
        _node_process_options(body, node, text, where)
        duplicate = next((n for n in self.nodes if n.fully_qualified_name == node.fully_qualified_name), None)
        if duplicate is not None and not self.every_branch:
            raise LaunchError(f'{where}: node {node.fully_qualified_name} is already launched at {duplicate.source}')
        self.nodes.append(node)


def _node_params(body: dict, node: NodeLaunch, text: Callable[[Any], str], where: str) -> None:
    """A <node>'s `param` (params files and single values) and `remap` entries, in order."""
    for item in body.get('param') or []:
        if isinstance(item, dict) and set(item) == {'from'}:
            node.params.append(('file', text(item['from'])))
        elif isinstance(item, dict) and set(item) == {'name', 'value'}:
            node.params.append(('param', (text(item['name']), text(item['value']))))
        else:
            raise LaunchError(
                f'{where}: node {node.name}: each param is either {{from: FILE}} or {{name: N, value: V}}'
            )
    for item in body.get('remap') or []:
        if not isinstance(item, dict) or set(item) != {'from', 'to'}:
            raise LaunchError(f'{where}: node {node.name}: each remap is {{from: A, to: B}}')
        node.remaps.append((text(item['from']), text(item['to'])))


def _node_process_options(body: dict, node: NodeLaunch, text: Callable[[Any], str], where: str) -> None:
    """A <node>'s `on_exit` (only shutdown, not with respawn), `respawn_delay` and `output`."""
    if 'on_exit' in body:
        node.on_exit = text(body['on_exit'])
        if node.on_exit != 'shutdown':
            raise LaunchError(f'{where}: on_exit: only "shutdown" is supported, got {node.on_exit!r}')
        if node.respawn:
            raise LaunchError(f'{where}: node {node.name}: respawn and on_exit: shutdown contradict each other')
    if 'respawn_delay' in body:
        try:
            node.respawn_delay = float(text(body['respawn_delay']))
        except ValueError:
            raise LaunchError(f'{where}: respawn_delay: expected seconds') from None
    if 'output' in body:
        node.output = text(body['output'])
        if node.output not in ('screen', 'log', 'both'):
            raise LaunchError(f'{where}: output: expected screen, log or both')


def _join_namespace(outer: str, inner: str) -> str:
    inner = inner.strip()
    if inner.startswith('/'):
        joined = inner
    else:
        joined = outer.rstrip('/') + '/' + inner if inner else outer
    joined = '/' + '/'.join(part for part in joined.split('/') if part)
    return '' if joined == '/' else joined


def parse_launch_arguments(items: list[str]) -> dict[str, str]:
    """`name:=value` items from the command line."""
    out = {}
    for item in items:
        name, sep, value = item.partition(':=')
        if not sep or not name:
            raise LaunchError(f'launch argument {item!r}: expected name:=value')
        out[name] = value
    return out


def load_launch(
    path: str | Path, arguments: dict[str, str] | None = None, find_share: Callable[[str], str] | None = None
) -> LaunchDescription:
    """Resolve a YAML launch file with `arguments` into the node processes to start."""
    from retail_ros.packages import find_package_share

    walker = _Walker(_Resolver(find_share or find_package_share), arguments or {})
    walker.load(Path(path), {}, '', top=True)
    unused = set(walker.given) - walker.used_given
    if unused:
        known = ', '.join(a.name for a in walker.arguments) or 'none'
        raise LaunchError(
            f'{path}: unknown launch argument(s) {", ".join(sorted(unused))} (this file declares: {known})'
        )
    every = _Walker(_Resolver(find_share or find_package_share), arguments or {}, every_branch=True)
    try:
        every.load(Path(path), {}, '', top=True)
    except LaunchError:  # a branch not taken that cannot even be read: judged by the nodes launched
        every.nodes = walker.nodes
    warnings = check_params_sections(walker.nodes, {n.fully_qualified_name for n in every.nodes + walker.nodes})
    return LaunchDescription(walker.nodes, walker.arguments, warnings)


def check_params_sections(nodes: list[NodeLaunch], declared: set[str]) -> list[str]:
    """A params file's node section that names no node of this launch tree but looks like a typo of
    one (`dialogue/manger`, `helth`) would silently lose its settings: LaunchError in one line. A
    section for a node of another launch file (a shared config file) is left alone. Returns a
    warning for each file that sets nothing for any node given it (empty, only comments, or only
    sections of other nodes): rcl accepts it, but every such node keeps its defaults."""
    from retail_common.cli_output import name_some
    from retail_ros.params import ConfigError, is_wildcard, load_params_file, node_key_matches

    given: dict[str, list[str]] = {}
    for node in nodes:
        for kind, value in node.params:
            if kind == 'file':
                given.setdefault(value, []).append(node.fully_qualified_name)
    warnings = []
    for file, names in given.items():
        if not Path(file).exists():
            continue  # the node says so at start, in one line (a launch file read here with other shares)
        try:
            sections = load_params_file(file)
        except ConfigError as exc:  # every node given it would refuse it at start: say so before starting any
            raise LaunchError(str(exc)) from None
        for key in sections:
            if is_wildcard(key) or any(node_key_matches(key, name) for name in declared):
                continue
            wanted = key if key.startswith('/') else '/' + key
            close = difflib.get_close_matches(wanted, sorted(declared), n=1, cutoff=0.8)
            if close:
                raise LaunchError(
                    f'params file {file}: section {key!r} names no node of this launch '
                    f'(did you mean {close[0].lstrip("/")!r}?): its settings would be ignored'
                )
        if not any(sections.values()):
            warnings.append(
                f'params file {file} sets no parameter: the nodes given it ({name_some(names, 3)}) keep their defaults'
            )
        elif not any(node_key_matches(key, name) for key in sections for name in names):
            warnings.append(
                f'params file {file} has no section for the nodes given it ({name_some(names, 3)}; '
                f'it has {name_some(sorted(sections), 3)}): they keep their defaults'
            )
    return warnings


def describe(description: LaunchDescription) -> str:
    """Human-readable node list for `retailbot launch --show`."""
    lines = []
    for node in description.nodes:
        lines.append(
            f'{node.fully_qualified_name}  ({node.pkg} {node.executable})'
            + ('  respawn' if node.respawn else '')
            + ('  on_exit: shutdown' if node.on_exit == 'shutdown' else '')
        )
        for kind, value in node.params:
            lines.append(f'    params file {value}' if kind == 'file' else f'    param {value[0]} = {value[1]}')
        for src, dst in node.remaps:
            lines.append(f'    remap {src} -> {dst}')
        if node.args:
            lines.append(f'    args {shlex.join(node.args)}')
    return '\n'.join(lines)


def to_json(description: LaunchDescription) -> str:
    return json.dumps(
        {'nodes': [n.to_json() for n in description.nodes], 'arguments': [a.__dict__ for a in description.arguments]},
        ensure_ascii=False,
    )
