"""The executor every node process of the robot spins: rclpy's MultiThreadedExecutor, minus a
busy loop that starves callbacks on a 2-core computer.

rclpy (Kilted) yields a callback's task again while the task still waits in the thread pool's
queue for a free worker, and submits it again. When the workers are busy (an action's execute
callback waiting for its mission, a slow planner call), the spin thread goes round and round
re-queueing the same few tasks (thousands of copies were measured), holds the GIL and delays
the callbacks it means to run: odometry arrived seconds late and guiding stopped. Here a task is
submitted once; while it waits, the spin thread sleeps until a worker finishes something.
"""

from __future__ import annotations

import sys
import threading

from rclpy.executors import (
    ConditionReachedException,
    ExternalShutdownException,
    MultiThreadedExecutor,
    ShutdownException,
    TimeoutException,
)

# Threads per node process. Some callbacks wait (an action's execute callback waits for its
# mission to end); the default (one per core: 2 on the robot) would leave too few for the rest.
EXECUTOR_THREADS = 4


class RobotExecutor(MultiThreadedExecutor):
    def __init__(self, num_threads: int = EXECUTOR_THREADS, **kwargs) -> None:
        super().__init__(num_threads=num_threads, **kwargs)
        self._queued: set = set()  # tasks submitted and not finished by a worker
        self._worker_done = threading.Condition()

    def _spin_once_impl(self, timeout_sec=None, wait_condition=lambda: False) -> None:
        try:
            handler, _entity, _node = self.wait_for_ready_callbacks(timeout_sec, None, wait_condition)
        except (ExternalShutdownException, ShutdownException, TimeoutException, ConditionReachedException):
            return
        with self._worker_done:
            if handler in self._queued:  # yielded again while still queued: wait, don't spin
                self._worker_done.wait(timeout=0.05)
                return
            self._queued.add(handler)
        self._executor.submit(self._run, handler)
        if handler not in self._futures:
            self._futures.append(handler)
        for task in self._futures[:]:
            if task.done():
                self._futures.remove(task)
                task.result()  # raise what a callback raised, as rclpy does

    def _run(self, handler) -> None:
        try:
            handler()
        finally:
            with self._worker_done:
                self._queued.discard(handler)
                self._worker_done.notify_all()

    def shutdown(self, timeout_sec: float | None = None, *, wait_for_threads: bool = True) -> bool:
        """rclpy's shutdown; then the callbacks that failed because the process was stopping
        (a handle destroyed under them) are collected here, so rclpy does not print "The following
        exception was never retrieved" for each when the tasks are freed. Any other failure is
        reported in one line on stderr (the process is stopping: nothing is left to raise it to)."""
        done = super().shutdown(timeout_sec, wait_for_threads=wait_for_threads)
        for task in list(self._futures):
            if not task.done():
                continue
            self._futures.remove(task)
            error = task.exception()
            if error is not None and not _stopping_error(error):
                print(f'a callback failed while stopping: {type(error).__name__}: {error}', file=sys.stderr)
        return done


def _stopping_error(error: BaseException) -> bool:
    """A callback's failure that only means the node or context was being destroyed."""
    from rclpy._rclpy_pybind11 import InvalidHandle

    return isinstance(error, (InvalidHandle, ShutdownException, ExternalShutdownException)) or (
        'destruction was requested' in str(error)
    )
