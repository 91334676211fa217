"""What every node of the robot shares: validated parameters, a clean main(), diagnostics.

Nodes stay thin: they call `declare_params` with their ParamSpecs and get checked values back,
and `run_node` gives every console script the same start/stop behaviour (local-only discovery,
one-line config errors, exit 0 on Ctrl-C / SIGTERM, lifecycle autostart).
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterable

import rclpy
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType, SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter

from retail_common import names
from retail_ros.executor import RobotExecutor
from retail_ros.qos import latched
from retail_common.live_store import LiveStore
from retail_common.store import Store, StoreError
from retail_ros.params import (
    ConfigError,
    Override,
    ParamSpec,
    load_params_file,
    overrides_for,
    params_files_in_args,
    resolve,
)

__all__ = [
    'ConfigError',
    'ParamSpec',
    'declare_params',
    'run_node',
    'diagnostic_status',
    'use_robot_dds_profile',
    'watch_store',
    'live_store_for',
    'DATA_UPDATES_QOS',
]

_TYPES = {
    'bool': ParameterType.PARAMETER_BOOL,
    'int': ParameterType.PARAMETER_INTEGER,
    'float': ParameterType.PARAMETER_DOUBLE,
    'str': ParameterType.PARAMETER_STRING,
    'bool_list': ParameterType.PARAMETER_BOOL_ARRAY,
    'int_list': ParameterType.PARAMETER_INTEGER_ARRAY,
    'float_list': ParameterType.PARAMETER_DOUBLE_ARRAY,
    'str_list': ParameterType.PARAMETER_STRING_ARRAY,
}
_INT64 = 2**63 - 1
SET_PARAMETERS = 'set_parameters'
# /sync/data_updates is latched: a node that starts after an update still hears which data is current.
DATA_UPDATES_QOS = latched(10)
_process_args: list[str] | None = None


def _limits_text(spec: ParamSpec) -> str:
    parts = []
    if spec.min is not None:
        parts.append(f'min {spec.min}')
    if spec.max is not None:
        parts.append(f'max {spec.max}')
    if spec.choices is not None:
        parts.append('one of: ' + ', '.join(map(str, spec.choices)))
    return '; '.join(parts)


def _descriptor(spec: ParamSpec) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(
        name=spec.name, type=_TYPES[spec.type], description=spec.description, read_only=spec.read_only
    )
    if not spec.read_only:
        # Changeable live: the spec itself checks type and range (declare_params), so a refused
        # value gets the same reason as in a params file rather than rclpy's own wording.
        descriptor.description += ' (can be changed while the node runs)'
        descriptor.additional_constraints = _limits_text(spec)
        descriptor.dynamic_typing = True
        return descriptor
    if spec.min is not None or spec.max is not None:
        if spec.type in ('int', 'int_list'):
            descriptor.integer_range = [
                IntegerRange(
                    from_value=int(spec.min if spec.min is not None else -_INT64),
                    to_value=int(spec.max if spec.max is not None else _INT64),
                    step=0,
                )
            ]
        elif spec.type in ('float', 'float_list'):
            descriptor.floating_point_range = [
                FloatingPointRange(
                    from_value=float(spec.min if spec.min is not None else -sys.float_info.max),
                    to_value=float(spec.max if spec.max is not None else sys.float_info.max),
                    step=0.0,
                )
            ]
    if spec.choices is not None:
        descriptor.additional_constraints = 'one of: ' + ', '.join(map(str, spec.choices))
    return descriptor


def declare_params(
    node: Node, specs: Iterable[ParamSpec], on_change: Callable[[str, Any], None] | None = None
) -> SimpleNamespace:
    """Declare `specs` on `node` and return their validated values as attributes.

    Raises ConfigError naming the params file, the node and the key when a file or `-p` gives an
    unknown key, a wrong type or an out-of-range value.

    A spec with `read_only=False` can be changed while the node runs (`ros2 param set`,
    `set_parameters`): the new value is checked with the same rules (type, range, choices) and
    refused with the same one-line reason as in a params file; an accepted value updates the
    returned namespace and then `on_change(name, value)` is called. Every other parameter is
    read-only (rclpy refuses the change).
    """
    specs = list(specs)
    fqn = node.get_fully_qualified_name()
    overrides = overrides_for(fqn, _process_args if _process_args is not None else sys.argv)
    # Values handed to the Node constructor (parameter_overrides=...) in tests or compositions.
    for name, param in node._parameter_overrides.items():
        overrides.setdefault(name, Override(name, param.value, 'parameter overrides', False))
    values = resolve(fqn, specs, overrides)
    for spec in specs:
        node.declare_parameter(spec.name, values[spec.name], _descriptor(spec), ignore_override=True)
    namespace = SimpleNamespace(**{spec.attribute: values[spec.name] for spec in specs})
    live = {spec.name: spec for spec in specs if not spec.read_only}
    if live:
        _watch_live_params(node, fqn, live, namespace, on_change)
    return namespace


def _watch_live_params(
    node: Node,
    fqn: str,
    live: dict[str, ParamSpec],
    namespace: SimpleNamespace,
    on_change: Callable[[str, Any], None] | None,
) -> None:
    def widen(parameters: list[Parameter]) -> list[Parameter]:
        # A float parameter given a whole number (`ros2 param set ... max_vx 1`) is that float,
        # as in a params file.
        out = []
        for param in parameters:
            spec = live.get(param.name)
            if spec is not None and spec.type == 'float' and param.type_ == Parameter.Type.INTEGER:
                param = Parameter(param.name, Parameter.Type.DOUBLE, float(param.value))
            out.append(param)
        return out

    def check(parameters: list[Parameter]) -> SetParametersResult:
        for param in parameters:
            spec = live.get(param.name)
            if spec is None:
                continue
            try:
                spec.coerce(param.value)
            except ValueError as exc:
                return SetParametersResult(
                    successful=False, reason=f'{SET_PARAMETERS}: node {fqn}: key {spec.name!r}: {exc}'
                )
        return SetParametersResult(successful=True)

    def apply(parameters: list[Parameter]) -> None:
        # Every value of one set_parameters call is in the namespace before any on_change runs, so
        # a callback that rebuilds a config from the namespace never mixes old and new values.
        changed = []
        for param in parameters:
            spec = live.get(param.name)
            if spec is None:
                continue
            value = spec.coerce(param.value)
            setattr(namespace, spec.attribute, value)
            node.get_logger().info(f'parameter {spec.name} set to {value!r} (live)')
            changed.append((spec, value))
        for spec, value in changed:
            if on_change is not None:
                try:
                    on_change(spec.name, value)
                except Exception as exc:  # a callback bug must not take the parameter service down
                    node.get_logger().error(f'applying {spec.name}={value!r} failed: {exc!r}')

    node.add_pre_set_parameters_callback(widen)
    node.add_on_set_parameters_callback(check)
    node.add_post_set_parameters_callback(apply)


def watch_store(node: Node, live_store: LiveStore, on_swap: Callable[[Store], None] | None = None, callback_group=None):
    """Reload `live_store` whenever the sync agent reports new data on `/sync/data_updates`
    (retail_interfaces/DataUpdate, transient local) and call `on_swap(store)` when the store in
    use changed. A store that fails to load leaves the previous one in use (error logged).
    Returns the subscription."""
    from retail_interfaces.msg import DataUpdate

    def on_update(msg) -> None:
        before = live_store.current().version
        node.get_logger().info(f'new {msg.kind or "data"} from the sync ({msg.version or "?"}): reloading the store')
        if not live_store.reload():
            return
        store = live_store.current()
        if store.version != before:
            node.get_logger().info(
                f'store reloaded: {len(store.catalog)} products, {len(store.zones)} zones, '
                f'{len(store.appointments)} appointments (version {store.version})'
            )
            if on_swap is not None:
                on_swap(store)

    return node.create_subscription(
        DataUpdate, names.DATA_UPDATES, on_update, DATA_UPDATES_QOS, callback_group=callback_group
    )


def live_store_for(node: Node, store_dir: str, data_dir: str) -> LiveStore:
    """A LiveStore logging to `node`; ConfigError (one line naming the node) when it cannot load."""
    try:
        return LiveStore(store_dir, data_dir or None, log=node.get_logger().error, warn=node.get_logger().warning)
    except StoreError as exc:
        raise ConfigError(f'{node.get_fully_qualified_name()}: {exc}') from None


def use_robot_dds_profile() -> None:
    """Point Fast DDS at config/fastdds.xml (shared memory big enough for camera frames) unless
    the environment chose a profile already. Call before the process's first rclpy.init."""
    if os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE'):
        return
    from retail_ros.packages import find_package_share

    candidates = [Path(__file__).resolve().parents[3] / 'config' / 'fastdds.xml']  # a source checkout
    try:
        candidates.append(Path(find_package_share('retail_bringup')) / 'config' / 'fastdds.xml')
    except Exception:  # not installed as a ROS package: the checkout's file only
        pass
    for candidate in candidates:
        if candidate.is_file():
            os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(candidate)
            return


def check_params_files(args: Iterable[str]) -> None:
    """Fail early, with one line, on a missing or malformed params file (before rcl does, worse)."""
    for path in params_files_in_args(args):
        load_params_file(path)


def diagnostic_status(
    name: str, level: int | bytes, message: str, values: dict[str, Any] | None = None, hardware_id: str = ''
) -> DiagnosticStatus:
    """A diagnostic_msgs/DiagnosticStatus; `level` is DiagnosticStatus.OK/WARN/ERROR/STALE."""
    if isinstance(level, int):
        level = bytes([level])
    return DiagnosticStatus(
        level=level,
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=str(k), value=str(v)) for k, v in (values or {}).items()],
    )


def _autostart(node: Node) -> None:
    if not isinstance(node, LifecycleNode):
        return
    if not (node.has_parameter('autostart') and node.get_parameter('autostart').value):
        return
    for step in (node.trigger_configure, node.trigger_activate):
        if step() != TransitionCallbackReturn.SUCCESS:
            node.get_logger().error(
                f'{step.__name__.removeprefix("trigger_")} failed; staying inactive until asked again'
            )
            return


def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """Main of a node's console script: run `factory()`'s node until Ctrl-C or SIGTERM."""
    global _process_args
    args = list(sys.argv if args is None else args)
    _process_args = args
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    use_robot_dds_profile()
    program = os.path.basename(args[0]) if args else 'node'
    try:
        check_params_files(args)
    except ConfigError as exc:
        print(f'{program}: config error: {exc}', file=sys.stderr)
        return 2
    rclpy.init(args=args)
    node = None
    try:
        node = factory()
        _autostart(node)
        executor = RobotExecutor()
        executor.add_node(node)
        executor.spin()
    except (ConfigError, StoreError) as exc:
        kind = 'config' if isinstance(exc, ConfigError) else 'store'
        print(f'{program}: {kind} error: {exc}', file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        else:
            # A node whose constructor failed (kept alive only by its own callbacks) must not be
            # destroyed half-built by the context's shutdown: collect it first.
            gc.collect()
        rclpy.try_shutdown()
    return 0


def main_for(factory: Callable[[], Node]) -> Callable[[], None]:
    """`main = main_for(MyNode)` gives a console-script entry point."""

    def main() -> None:
        sys.exit(run_node(factory))

    return main
