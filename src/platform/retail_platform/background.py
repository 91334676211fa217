"""The platform's background tasks: one registry the app's lifespan starts and stops.

Each task is a name, a period and a blocking function (run in a worker thread, so the event loop
keeps answering requests). A task runs every `every_s` seconds (± `jitter`, so several API
processes spread out), first at once or after one period; a failure (the database away) is one
log line naming the task (repeated only when the failure changes), and the task keeps its
schedule. `stop` cancels every task and waits
for it. `runs[name]` counts the completed runs (what a test reads to see that a task ran under
the served app). Registered by create_app: the pruner (retention.py), the funnel's refresher
(funnel.refresh_once), the fleet's silent-robot sweeper (fleet.Fleet.sweep) and, with a forget
ledger, the check for a database restored while serving (chain.Chain.check_restored).
"""
from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Task:
    name: str
    every_s: float
    run: Callable[[], object]
    at_start: bool = True          # False: the first run one period after the start
    jitter: float = 0.0            # a fraction of the period (0.1: ±10 %)
    period: Callable[[], float] | None = None   # the period now, when it changes (else every_s)


class Background:
    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self.tasks: list[Task] = []
        self.runs: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self._running: list[asyncio.Task] = []

    def add(self, name: str, every_s: float, run: Callable[[], object], at_start: bool = True,
            jitter: float = 0.0, period: Callable[[], float] | None = None) -> None:
        """Register a task (before the app starts); ValueError for a bad period or a name
        registered twice. A period of 0 or less: not registered (turned off)."""
        if every_s <= 0:
            return
        if not 0 <= jitter < 1:
            raise ValueError(f'background task {name}: jitter must be in [0, 1), not {jitter}')
        if any(task.name == name for task in self.tasks):
            raise ValueError(f'background task {name} is registered twice')
        self.tasks.append(Task(name, every_s, run, at_start, jitter, period))
        self.runs[name] = self.failures[name] = 0

    async def start(self) -> None:
        self._running = [asyncio.create_task(self._loop(task), name=f'platform-{task.name}')
                         for task in self.tasks]

    async def stop(self) -> None:
        for running in self._running:
            running.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        self._running = []

    def _period(self, task: Task) -> float:
        every_s = min(task.every_s, task.period()) if task.period else task.every_s
        return every_s * random.uniform(1 - task.jitter, 1 + task.jitter)

    async def _loop(self, task: Task) -> None:
        last_error = ''
        if not task.at_start:
            await asyncio.sleep(self._period(task))
        while True:
            try:
                await asyncio.to_thread(task.run)
                self.runs[task.name] += 1
                if last_error:
                    self.log.info('%s works again', task.name)
                last_error = ''
            except Exception as exc:     # noqa: BLE001 - one line; the schedule goes on
                self.failures[task.name] += 1
                text = str(getattr(exc, 'orig', None) or exc).strip()
                error = text.splitlines()[0][:300] if text else type(exc).__name__
                if error != last_error:       # an outage is one line, not one per period
                    self.log.warning('%s failed (tried again every %.0f s): %s', task.name,
                                     task.every_s, error)
                last_error = error
            await asyncio.sleep(self._period(task))
