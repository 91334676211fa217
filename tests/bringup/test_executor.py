"""RobotExecutor: callbacks keep their rate while other callbacks wait, and nothing is queued twice."""
from __future__ import annotations

import threading
import time

import pytest
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node

from retail_ros.executor import RobotExecutor
from rostest_support import wait_for


def _run(ros_context, executor_class):
    """A 50 Hz 'odometry' timer beside slow callbacks that keep every worker busy for 2 s.

    Returns (odometry ticks, callbacks handed to the thread pool, callbacks that ran)."""
    node = Node('executor_probe', context=ros_context)
    executor = executor_class(context=ros_context, num_threads=3)
    submitted = 0
    ran = 0
    lock = threading.Lock()
    submit = executor._executor.submit

    def counting_submit(fn, *args):
        nonlocal submitted
        with lock:
            submitted += 1
        return submit(fn, *args)
    executor._executor.submit = counting_submit

    ticks = []
    release = threading.Event()

    def odometry():
        nonlocal ran
        ticks.append(time.monotonic())
        with lock:
            ran += 1

    def slow():
        nonlocal ran
        with lock:
            ran += 1
        release.wait(0.05)                      # a planner call, a service waiting for a reply
    group = ReentrantCallbackGroup()
    node.create_timer(0.02, odometry)
    for _ in range(3):
        node.create_timer(0.02, slow, callback_group=group)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(ticks) >= 60, 30, 'odometry ticks')
    finally:
        release.set()
        executor.shutdown(timeout_sec=5)
        thread.join(timeout=10)
        node.destroy_node()
    return len(ticks), submitted, ran


@pytest.mark.timeout(120)
def test_each_ready_callback_is_handed_to_the_pool_once(ros_context):
    _, submitted, ran = _run(ros_context, RobotExecutor)
    assert submitted <= ran + 10, f'{submitted} submissions for {ran} callbacks'


@pytest.mark.timeout(120)
def test_rclpy_own_executor_requeues_waiting_callbacks(ros_context):
    """The peer this executor exists for: if rclpy stops re-queueing, RobotExecutor can go."""
    _, submitted, ran = _run(ros_context, MultiThreadedExecutor)
    assert submitted > 2 * ran, f'{submitted} submissions for {ran} callbacks'


def test_a_callback_failing_because_the_node_is_stopping_prints_nothing_at_shutdown(ros_context, capfd):
    """`retailbot chat --ros` and the demo printed rclpy's "The following exception was never
    retrieved: cannot use Destroyable because destruction was requested" on every exit."""
    import gc

    from rclpy._rclpy_pybind11 import InvalidHandle

    gc.collect()                # earlier tests' leftovers are theirs
    capfd.readouterr()
    node = Node('executor_stopping', context=ros_context)
    executor = RobotExecutor(context=ros_context, num_threads=2)
    running, stopping = threading.Event(), threading.Event()

    def destroyed_under_it():   # runs while the process stops, and fails because it does
        if running.is_set():
            return
        running.set()
        stopping.wait(10)
        raise InvalidHandle('cannot use Destroyable because destruction was requested')

    node.create_timer(0.01, destroyed_under_it)
    executor.add_node(node)
    spinner = threading.Thread(target=_spin_quietly, args=(executor,), daemon=True)
    spinner.start()
    assert running.wait(10)
    threading.Timer(0.3, stopping.set).start()
    executor.shutdown(timeout_sec=2.0)
    spinner.join(5)
    node.destroy_node()
    del executor, spinner
    gc.collect()
    out, err = capfd.readouterr()
    assert 'never retrieved' not in out + err


def _spin_quietly(executor):
    try:
        executor.spin()
    except Exception:   # the spin loop raises the callback's error, as rclpy does; shutdown is under test
        pass
