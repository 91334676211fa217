"""The rclpy side of recording, replay and the Foxglove server: raw (CDR) subscriptions and publishers
with the types and QoS found on the graph, and the .msg definitions from the installed packages."""

from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from retail_observe.msgdefs import DefinitionError, message_definition, split_type
from retail_ros.packages import find_package_share
from retail_ros.qos import latched

MAX_MSG_FILE = 256 * 1024


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


def subscribe_raw(
    node: Node, topic: str, type_name: str, qos: dict[str, str], callback: Callable[[bytes], None]
) -> Any:
    return node.create_subscription(message_class(type_name), topic, callback, qos_profile(qos), raw=True)
