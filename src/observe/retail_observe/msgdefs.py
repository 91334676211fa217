"""Full ROS 2 message definitions (the `ros2msg` schema encoding of MCAP and Foxglove).

A schema is the message's own .msg text followed, for every message type it uses (depth first,
each once), by a line of 80 `=`, a line `MSG: pkg/Type` and that type's .msg text: the layout
rosbag2 writes and the `mcap-ros2-support` decoder and Foxglove read. Pure: `read_msg(package,
name)` supplies the .msg files (from the installed share/ folders in the node).
"""

from __future__ import annotations

from typing import Callable

SEPARATOR = '=' * 80
PRIMITIVES = frozenset(
    {
        'bool',
        'byte',
        'char',
        'float32',
        'float64',
        'int8',
        'uint8',
        'int16',
        'uint16',
        'int32',
        'uint32',
        'int64',
        'uint64',
        'string',
        'wstring',
    }
)
MAX_DEPTH = 32  # nesting bound: a definition cycle or a runaway tree is refused, not followed


class DefinitionError(ValueError):
    """A message type whose definition cannot be found or read."""


def split_type(type_name: str) -> tuple[str, str]:
    """'sensor_msgs/msg/LaserScan' or 'sensor_msgs/LaserScan' -> ('sensor_msgs', 'LaserScan')."""
    parts = type_name.split('/')
    if len(parts) == 3 and parts[1] == 'msg' and all(parts):
        return parts[0], parts[2]
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    raise DefinitionError(f'{type_name!r} is not a message type (pkg/msg/Name)')


def field_types(msg_text: str, package: str) -> list[str]:
    """The non-primitive types ('pkg/Name') a .msg text uses, in order of first use."""
    found: list[str] = []
    for raw in msg_text.splitlines():
        line = raw.split('#', 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if len(words) < 2 or '=' in words[1] or (len(words) > 2 and words[2].startswith('=')):
            continue  # a constant (`uint8 STOP=1`) has no type of its own to resolve
        base = words[0].split('[', 1)[0].split('<=', 1)[0]
        if base in PRIMITIVES:
            continue
        if '/' not in base:
            base = f'{package}/{base}'
        if base.count('/') == 2:
            pkg, _, name = base.split('/')
            base = f'{pkg}/{name}'
        if base not in found:
            found.append(base)
    return found


def message_definition(type_name: str, read_msg: Callable[[str, str], str]) -> str:
    """The full `ros2msg` definition of `type_name` with every type it uses."""
    package, name = split_type(type_name)
    main = _read(read_msg, package, name)
    order: list[str] = []
    texts: dict[str, str] = {}

    def visit(text: str, pkg: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise DefinitionError(f'{type_name}: message definitions nest deeper than {MAX_DEPTH}')
        for dep in field_types(text, pkg):
            if dep in texts or dep == f'{package}/{name}':
                continue
            dep_pkg, dep_name = dep.split('/')
            texts[dep] = _read(read_msg, dep_pkg, dep_name)
            order.append(dep)
            visit(texts[dep], dep_pkg, depth + 1)

    visit(main, package, 0)
    parts = [main.rstrip('\n')]
    for dep in order:
        parts.append(f'{SEPARATOR}\nMSG: {dep}\n{texts[dep].rstrip(chr(10))}')
    return '\n'.join(parts) + '\n'


def _read(read_msg: Callable[[str, str], str], package: str, name: str) -> str:
    try:
        return read_msg(package, name)
    except (OSError, LookupError, UnicodeDecodeError) as exc:
        raise DefinitionError(f'no definition of {package}/msg/{name}: {exc}') from None
