"""The fleet at scale: R light simulated robots (asyncio httpx clients, not ROS graphs) against a
real `retailbot platform serve` over PostgreSQL (a throwaway 15 cluster, as in the tests).

Three measurements in one run:
 1. Heartbeat load: every robot sends its heartbeat every P seconds for D seconds; the platform's
    CPU time (its process tree, from /proc) per heartbeat and per 1,000 robots at period P. The
    peer, measured in the same run the same way: each robot uploading one event per period on the
    platform's existing ingest path (POST /events) — ratio heartbeat / event upload.
 2. Silent detection: K robots stop; an HQ reader polls /v1/fleet/robots; the time from each
    stopped robot's last accepted heartbeat until it shows `silent`, in heartbeat periods
    (target: within 2); and until its `silent` task was opened by the platform's timer (the
    serve process's background sweep; nobody reads the tasks during the run).
 3. A rollout wave: a desired-state version rolled out to all R robots (canary -> 10 % -> all);
    robots fetch and run it; one canary reports a safety stop: the rollout must halt with no
    robot beyond the canary wave assigned. A control rollout without the failing canary must
    reach every robot (`done`).

    .venv/bin/python benches/fleet_scale.py                       # 200 robots, period 5 s
    .venv/bin/python benches/fleet_scale.py --robots 500 --period 5 --duration 30
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests' / 'platform'))
from pg_support import Cluster, free_port  # noqa: E402  (the tests' throwaway cluster)

from retail_platform.storage import Storage  # noqa: E402
from retail_sync.fleet import check_desired  # noqa: E402

BIN = Path(sys.prefix) / 'bin'
ADMIN = 'bench-admin'
TICK = os.sysconf('SC_CLK_TCK')


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (from /proc)."""
    total = 0.0
    children: dict[int, list[int]] = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                fields = Path(f'/proc/{entry}/stat').read_text().rsplit(')', 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            fields = Path(f'/proc/{current}/stat').read_text().rsplit(')', 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
        stack += children.get(current, [])
    return total


class Robot:
    def __init__(self, index: int, token: str) -> None:
        self.id = f'robot-{index}'
        self.headers = {'Authorization': f'Bearer {token}'}
        self.running = 0
        self.trouble = False
        self.alive = True
        self.last_ok = 0.0
        self.seq = 0
        self.requests = 0


async def heartbeat(client: httpx.AsyncClient, robot: Robot, period: float) -> dict | None:
    body = {'period_s': period, 'software_version': '1.4.2', 'desired_version': robot.running,
            'safety_stop': robot.trouble, 'base': {'level': 'ok', 'message': 'driving'},
            'sync_backlog': 3, 'sync_oldest_s': 2.0, 'battery_percent': 81.0,
            'disk_free_fraction': 0.6}
    try:
        response = await client.post(f'/v1/robots/{robot.id}/heartbeat', json=body,
                                     headers=robot.headers)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    robot.last_ok = time.time()
    return response.json()


async def event(client: httpx.AsyncClient, robot: Robot) -> None:
    robot.seq += 1
    body = {'events': [{'event_id': f'{robot.id}-{robot.seq}', 'seq': robot.seq, 'type': 'guide',
                        'time': time.time(), 'data': {'zone': 'kitchen', 'status': 'started'}}]}
    try:
        await client.post(f'/v1/robots/{robot.id}/events', json=body, headers=robot.headers)
    except httpx.HTTPError:
        pass


async def robot_loop(client, robot: Robot, period: float, until: float, kind: str,
                     failing: dict | None = None) -> None:
    await asyncio.sleep(random.random() * period)          # robots do not beat in lockstep
    while time.time() < until and robot.alive:
        started = time.time()
        robot.requests += 1
        if kind == 'events':
            await event(client, robot)
        else:
            answer = await heartbeat(client, robot, period)
            wanted = answer['desired_version'] if answer else 0
            if wanted and wanted != robot.running:
                try:
                    response = await client.get(f'/v1/robots/{robot.id}/desired',
                                                headers=robot.headers)
                except httpx.HTTPError:
                    continue                             # asked again after the next heartbeat
                if response.status_code == 200 and check_desired(response.content)[0] is not None:
                    robot.running = wanted
                    if failing is not None and not failing.get('chosen'):
                        failing['chosen'] = robot.id      # the first canary to run it fails
                        robot.trouble = True
                    await heartbeat(client, robot, period)      # report at once (on change)
        await asyncio.sleep(max(0.0, period - (time.time() - started)))


def client_for(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=30,
                             limits=httpx.Limits(max_connections=256, max_keepalive_connections=256))


async def cpu_phase(url: str, robots: list[Robot], period: float, duration: float, kind: str,
                    server: int) -> dict:
    async with client_for(url) as client:
        for robot in robots:
            robot.alive = True
        await asyncio.sleep(0)
        sent = sum(r.requests for r in robots)
        before = tree_cpu_s(server)
        started = time.time()
        await asyncio.gather(*(robot_loop(client, r, period, started + duration, kind)
                               for r in robots))
        elapsed = time.time() - started
        used = tree_cpu_s(server) - before
    requests = sum(r.requests for r in robots) - sent      # as sent (a late robot sends fewer)
    return {'kind': kind, 'cpu_s': used, 'elapsed': elapsed, 'requests': requests,
            'cpu_ms_per_request': 1000 * used / requests,
            'rate': requests / elapsed,
            'cores_per_1000': (used / requests) * 1000 / period}    # CPU-s per s for 1,000 robots


async def silent_phase(url: str, robots: list[Robot], period: float, stop: int,
                       reset) -> tuple[list[float], int, dict[str, float]]:
    async with client_for(url) as client:
        until = time.time() + 12 * period
        loops = [asyncio.create_task(robot_loop(client, r, period, until, 'heartbeat'))
                 for r in robots]
        await asyncio.sleep(3 * period)
        await asyncio.to_thread(reset)     # every robot has beaten again: earlier tasks closed
        stopped = random.sample(robots, stop)
        for robot in stopped:
            robot.alive = False
        await asyncio.sleep(period)                 # let each finish the beat in flight
        seen: dict[str, float] = {}
        admin = {'Authorization': f'Bearer {ADMIN}'}
        stopped_ids = {r.id for r in stopped}
        while not stopped_ids <= set(seen) and time.time() < until:
            try:
                states = (await client.get('/v1/fleet/robots', headers=admin)).json()
            except httpx.HTTPError:
                continue
            now = time.time()
            for row in states:
                if row['state'] == 'silent' and row['robot_id'] not in seen:
                    seen[row['robot_id']] = now
            await asyncio.sleep(0.5)
        for robot in robots:
            robot.alive = False
        await asyncio.gather(*loops)
    false_alarms = set(seen) - {r.id for r in stopped}
    return ([(seen.get(r.id, float('inf')) - r.last_ok) / period for r in stopped],
            len(false_alarms), {r.id: r.last_ok for r in stopped})


def resolve_all(target: str) -> None:
    """Close every open task (the event-upload phase sent no heartbeats: every robot was
    silent then, and its task would still be open)."""
    from retail_platform import schema as t
    storage = Storage(target)
    try:
        with storage.engine.begin() as c:
            c.execute(t.fleet_tasks.update().where(t.fleet_tasks.c.resolved_at.is_(None))
                      .values(resolved_at=time.time(), resolved_by='bench'))
    finally:
        storage.close()


def task_delays(target: str, last_ok: dict[str, float], period: float) -> tuple[list[float], int]:
    """Per stopped robot: (its silent task's opened_at - its last heartbeat) / period; and how
    many silent tasks robots still beating got."""
    import sqlalchemy as sa
    from retail_platform import schema as t
    storage = Storage(target)
    try:
        with storage.engine.connect() as c:
            rows = c.execute(sa.select(t.fleet_tasks.c.robot_id, t.fleet_tasks.c.opened_at)
                             .where(t.fleet_tasks.c.kind == 'silent',
                                    t.fleet_tasks.c.resolved_at.is_(None))).all()
    finally:
        storage.close()
    opened = {r.robot_id: r.opened_at for r in rows}
    return ([(opened.get(robot, float('inf')) - last) / period for robot, last in last_ok.items()],
            len(set(opened) - set(last_ok)))


async def rollout_phase(url: str, robots: list[Robot], period: float, fail: bool,
                        volume: float) -> dict:
    admin = {'Authorization': f'Bearer {ADMIN}'}
    failing: dict | None = {} if fail else None
    async with client_for(url) as client:
        for robot in robots:
            robot.alive, robot.trouble = True, False
        version = (await client.post('/v1/admin/fleet/groups/all/desired', headers=admin,
                                     json={'settings': {'volume': volume}})).json()['version']
        rollout = (await client.post('/v1/admin/fleet/groups/all/rollouts', headers=admin,
                                     json={'version': version, 'soak_s': period})).json()
        until = time.time() + 30 * period
        loops = [asyncio.create_task(robot_loop(client, r, period, until, 'heartbeat', failing))
                 for r in robots]
        async def read_state() -> dict | None:     # an answer slower than 30 s: ask again
            try:
                return (await client.get(f'/v1/admin/fleet/rollouts/{rollout["id"]}',
                                         headers=admin)).json()
            except httpx.HTTPError:
                return None
        state = rollout
        while time.time() < until:
            state = await read_state() or state
            if state['state'] != 'running':
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(2 * period)             # any further wave would show by now
        while (final := await read_state()) is None and time.time() < until + 10 * period:
            pass
        state = final or state
        for robot in robots:
            robot.alive = False
        await asyncio.gather(*loops)
    state['robots_running_it'] = sum(r.running == version for r in robots)
    state['failing'] = (failing or {}).get('chosen')
    return state


def report(phase: dict, args) -> None:
    print(f'  {phase["kind"]:>9}: {phase["requests"]:.0f} requests in {phase["elapsed"]:.1f} s '
          f'({phase["rate"]:.0f}/s), '
          f'platform CPU {phase["cpu_s"]:.2f} s = {phase["cpu_ms_per_request"]:.2f} ms each; '
          f'{phase["cores_per_1000"]:.2f} cores per 1,000 robots at one per {args.period:g} s',
          flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--robots', type=int, default=200)
    parser.add_argument('--stores', type=int, default=20)
    parser.add_argument('--period', type=float, default=5.0, help='heartbeat period, s')
    parser.add_argument('--duration', type=float, default=20.0, help='load phase length, s')
    parser.add_argument('--stop', type=int, default=10, help='robots that go silent')
    args = parser.parse_args()
    cluster = Cluster()
    try:
        target = cluster.url(cluster.new_database())
        storage = Storage(target)
        from retail_platform.database import upgrade
        upgrade(storage.engine)
        for s in range(args.stores):
            storage.add_store(f'store-{s}', f'Store {s}')
        robots = [Robot(r, storage.issue_robot_token(f'robot-{r}', f'store-{r % args.stores}'))
                  for r in range(args.robots)]
        storage.close()
        port = free_port()
        server = subprocess.Popen([str(BIN / 'retailbot'), 'platform', 'serve', '--database',
                                   target, '--port', str(port), '--token', ADMIN],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f'http://127.0.0.1:{port}'
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(url + '/v1/ready', timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit('the platform did not start')
                time.sleep(0.2)
            httpx.put(url + '/v1/admin/fleet/groups/all', headers={'Authorization': f'Bearer {ADMIN}'},
                      json={'robots': [r.id for r in robots]}, timeout=30).raise_for_status()
            beats = asyncio.run(cpu_phase(url, robots, args.period, args.duration, 'heartbeat',
                                          server.pid))
            events = asyncio.run(cpu_phase(url, robots, args.period, args.duration, 'events',
                                           server.pid))
            report(beats, args)
            report(events, args)
            silent, false_alarms, last_ok = asyncio.run(silent_phase(
                url, robots, args.period, args.stop, lambda: resolve_all(target)))
            tasks, false_tasks = task_delays(target, last_ok, args.period)
            print(f'  silent phase: {false_alarms} robots still beating were shown silent',
                  flush=True)
            halted = asyncio.run(rollout_phase(url, robots, args.period, True, 0.3))
            control = asyncio.run(rollout_phase(url, robots, args.period, False, 0.4))
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        cluster.remove()
    print(f'{args.robots} robots in {args.stores} stores, PostgreSQL 15, 1 API process, '
          f'heartbeat period {args.period:g} s')
    for phase in (beats, events):
        report(phase, args)
    print(f'  heartbeat / one-event upload CPU: '
          f'{beats["cpu_ms_per_request"] / events["cpu_ms_per_request"]:.2f}x')
    print(f'  silent detection of {args.stop} stopped robots (periods after the last heartbeat): '
          f'median {statistics.median(silent):.2f}, max {max(silent):.2f} '
          f'({"within" if max(silent) <= 2 else "NOT within"} 2 periods)')
    print(f'  silent tasks opened by the timer (periods after the last heartbeat): median '
          f'{statistics.median(tasks):.2f}, max {max(tasks):.2f}; {false_tasks} for robots still '
          f'beating')
    print(f'  rollout with a failing canary ({halted["failing"]}): {halted["state"]} at wave '
          f'{halted["wave"]} of waves {halted["waves"]}; robots assigned {halted["assigned"]}, '
          f'running it {halted["robots_running_it"]}; reason: {halted["reason"]}')
    print(f'  control rollout: {control["state"]}, {control["robots_running_it"]} of '
          f'{args.robots} robots running it')
    ok = (max(silent) <= 2 and false_alarms == 0 and max(tasks) <= 2 and false_tasks == 0 and halted['state'] == 'halted' and halted['wave'] == 0
          and halted['assigned'] == halted['waves'][0] and control['state'] == 'done')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
