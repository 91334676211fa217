"""Live settings of a desired state, applied to the running nodes as rcl parameters (no rclpy
import here: the agent hands in a `ParamPort` that talks to the parameter services).

`plan(settings)` maps the document's settings onto (node, parameter) pairs — only the settings
some node can change live (a `read_only=False` ParamSpec); the others stay in desired.json for
the readers that reload it. `apply(plan, port)` sets them node by node, each node with
`set_parameters_atomically` (the node checks each value with the same ParamSpec rules as its
own params file and refuses the whole call on one bad value). When a node refuses or does not
answer, every node already changed is set back to the values it had (read before the change),
and the one-line reason is returned: the caller keeps the last good version and reports it. A
target node not on the graph is skipped and named (it reads its own file when it starts).
Nodes are changed in the order of NODE_ORDER: the base's speed last, after everything else
took its values.
"""
from __future__ import annotations

from typing import Any, Protocol

from retail_sync.fleet import Settings

# setting -> (node, parameter) it sets; a setting not here is not applied live
SETTING_TARGETS: dict[str, tuple[tuple[str, str], ...]] = {
    'greeting_distance_m': (('/perception/faces', 'approach_distance_m'),),
    'volume': (('/dialogue/tts', 'volume'),),
    'max_speed_mps': (('/navigation/guide', 'max_vx'),),
    'near_people_speed_mps': (('/navigation/guide', 'near_people_vx'),),
    'safety_distance_m': (('/navigation/collision_monitor', 'stop_margin_m'),),
    'opening_hours': (('/dialogue/manager', 'opening_hours'),),   # what the robot answers and reports
}
NODE_ORDER = ('/dialogue/manager', '/dialogue/tts', '/perception/faces', '/navigation/collision_monitor', '/navigation/guide')
NOT_LIVE = tuple(name for name in Settings.model_fields if name not in SETTING_TARGETS)


class PortError(Exception):
    """A node's parameter service did not answer (one line)."""


class ParamPort(Protocol):
    def running(self) -> set[str]:
        """Fully qualified names of the nodes on the graph now."""

    def get(self, node: str, names: list[str]) -> dict[str, Any]:
        """The parameters' current values (PortError when the node does not answer)."""

    def set_atomically(self, node: str, values: dict[str, Any]) -> str:
        """'' when the node took all of them, else its one-line reason (PortError: no answer)."""


def plan(settings: Settings) -> dict[str, dict[str, Any]]:
    """node -> {parameter: value} for the settings the document gives (in NODE_ORDER)."""
    by_node: dict[str, dict[str, Any]] = {}
    for name, targets in SETTING_TARGETS.items():
        value = getattr(settings, name)
        if value is None:
            continue
        for node, parameter in targets:
            by_node.setdefault(node, {})[parameter] = value
    return {node: by_node[node] for node in sorted(by_node, key=_rank)}


def _rank(node: str) -> tuple[int, str]:
    return (NODE_ORDER.index(node) if node in NODE_ORDER else -1, node)


def apply(changes: dict[str, dict[str, Any]], port: ParamPort) -> tuple[str, list[str]]:
    """Apply all or nothing; returns (problem or '', nodes skipped as not running)."""
    running = port.running()
    skipped = [node for node in changes if node not in running]
    done: list[tuple[str, dict[str, Any]]] = []          # (node, its values before)
    problem = ''
    for node, values in changes.items():
        if node in skipped:
            continue
        try:
            before = port.get(node, list(values))
            reason = port.set_atomically(node, values)
        except PortError as exc:
            reason = str(exc)
        if reason:
            problem = f'node {node} refused {", ".join(f"{k}={v!r}" for k, v in values.items())}: {reason}'
            break
        done.append((node, before))
    if problem:
        for node, before in reversed(done):
            try:
                back = port.set_atomically(node, before)
            except PortError as exc:
                back = str(exc)
            if back:
                problem += f'; and node {node} could not be set back: {back}'
    return problem[:300], skipped
