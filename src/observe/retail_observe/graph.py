"""The rclpy side of recording, replay and the Foxglove server: raw (CDR) subscriptions and publishers
with the types and QoS found on the graph, and the .msg definitions from the installed packages."""

from __future__ import annotations

import importlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from retail_observe.msgdefs import DefinitionError, message_definition, split_type
from retail_ros.packages import find_package_share
from retail_ros.qos import latched

MAX_MSG_FILE = 256 * 1024
ROS_PACKAGE = re.compile(r'[a-z][a-z0-9_]{0,99}')  # REP-144 package names
MSG_NAME = re.compile(r'[A-Z][A-Za-z0-9]{0,99}')  # rosidl message names


def read_msg_file(package: str, name: str) -> str:
    path = Path(find_package_share(package)) / 'msg' / f'{name}.msg'
    if path.stat().st_size > MAX_MSG_FILE:
        raise OSError(f'{path} is larger than {MAX_MSG_FILE} bytes')
    return path.read_text(encoding='utf-8')


@lru_cache(maxsize=256)
def definition_of(type_name: str) -> str:
    return message_definition(type_name, read_msg_file)


def message_class(type_name: str) -> Any:
    """The Python class of 'pkg/msg/Name' (DefinitionError when the package is not installed)."""
    package, name = split_type(type_name)
    # The name comes from a recording or from any node on the graph: import only a ROS interface
    # package that declares this message (its .msg file installed), never an arbitrary module
    # (`this/msg/X` would run Python's `this` on import, `antigravity/msg/X` open a browser).
    if not (ROS_PACKAGE.fullmatch(package) and MSG_NAME.fullmatch(name)):
        raise DefinitionError(f'{type_name!r} is not a ROS message type name (pkg/msg/Name)')
    try:
        if not (Path(find_package_share(package)) / 'msg' / f'{name}.msg').is_file():
            raise LookupError(name)
    except LookupError:
        raise DefinitionError(f'message type {type_name} is not installed') from None
    try:
        return getattr(importlib.import_module(f'{package}.msg'), name)
    except (ImportError, AttributeError):
        raise DefinitionError(f'message type {type_name} is not installed') from None


def offered_qos(node: Node, topic: str) -> dict[str, str]:
    """What the topic's publishers offer: latched (transient local) if all are, best effort if any is."""
    infos = node.get_publishers_info_by_topic(topic)
    keeps = latched().durability
    is_latched = bool(infos) and all(i.qos_profile.durability == keeps for i in infos)
    best_effort = any(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos)
    return {
        'durability': 'transient_local' if is_latched else 'volatile',
        'reliability': 'best_effort' if best_effort else 'reliable',
    }


def qos_profile(qos: dict[str, str], depth: int = 10) -> QoSProfile:
    """The profile for recorded QoS metadata: latched (reliable) when its publishers latched, else volatile."""
    if qos.get('durability') == 'transient_local':
        return latched(depth)
    return QoSProfile(
        depth=depth,
        reliability=(
            ReliabilityPolicy.BEST_EFFORT if qos.get('reliability') == 'best_effort' else ReliabilityPolicy.RELIABLE
        ),
    )


# A recorder's queue per topic: 10 s of a 10 Hz lidar. With rclpy's usual 10 a recorder that falls
# ~1 s behind under load lost odometry and TF the robot's own nodes had used (a re-run then differed).
RECORD_DEPTH = 100


def subscribe_raw(
    node: Node, topic: str, type_name: str, qos: dict[str, str], callback: Callable[[bytes], None]
) -> Any:
    return node.create_subscription(message_class(type_name), topic, callback, qos_profile(qos, RECORD_DEPTH), raw=True)


class ParameterSnapshot:
    """The live parameters a re-run needs (`wanted`: {node full name: names}), asked of each node's
    parameter service once it is on the graph; `poll()` from a timer of the node's executor (which
    delivers the answers); `values` is {node: {name: value}} for the nodes that answered."""

    def __init__(self, node: Node, wanted: dict[str, tuple[str, ...]]) -> None:
        from rcl_interfaces.srv import GetParameters

        self.node = node
        self.wanted = wanted
        self.values: dict[str, dict[str, Any]] = {}
        self._clients = {target: node.create_client(GetParameters, f'{target}/get_parameters') for target in wanted}
        self._asked: set[str] = set()

    def poll(self) -> None:
        from rcl_interfaces.srv import GetParameters

        for target, client in self._clients.items():
            if target in self._asked or not client.service_is_ready():
                continue
            self._asked.add(target)
            names = self.wanted[target]
            future = client.call_async(GetParameters.Request(names=list(names)))
            future.add_done_callback(lambda f, target=target, names=names: self._answer(target, names, f))

    def refresh(self) -> None:
        """Ask every node again at the next poll (a live parameter may have changed); the values
        answered before are kept until the new answer."""
        self._asked.clear()

    def pending(self) -> bool:
        """A wanted node is on the graph but has not answered yet."""
        return any(target not in self.values and client.service_is_ready() for target, client in self._clients.items())

    def _answer(self, target: str, names: tuple[str, ...], future) -> None:
        from rclpy.parameter import parameter_value_to_python

        answer = future.result()
        if answer is None or len(answer.values) != len(names):
            self._asked.discard(target)  # asked again at the next poll
            return
        self.values[target] = {name: parameter_value_to_python(value) for name, value in zip(names, answer.values)}


def set_parameters(node: Node, target: str, values: dict[str, Any], timeout_s: float) -> str:
    """Set `values` on `target` (a node's full name) through its parameter service, waiting at
    most `timeout_s` for the service and its answer; '' when set, else the reason (one line)."""
    from rcl_interfaces.srv import SetParameters
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    client = node.create_client(SetParameters, f'{target}/set_parameters')
    try:
        if not client.wait_for_service(timeout_sec=timeout_s):
            return f'{target} is not on the graph'
        request = SetParameters.Request(
            parameters=[Parameter(name, value=value).to_parameter_msg() for name, value in values.items()]
        )
        future = client.call_async(request)
        executor = SingleThreadedExecutor(context=node.context)
        executor.add_node(node)
        try:
            executor.spin_until_future_complete(future, timeout_sec=timeout_s)
        finally:
            executor.remove_node(node)
            executor.shutdown()
        if not future.done() or future.result() is None:
            return f'{target} did not answer in {timeout_s:.0f} s'
        refused = [r.reason for r in future.result().results if not r.successful]
        return refused[0] if refused else ''
    finally:
        node.destroy_client(client)
