"""The fleet at scale: R light simulated robots (asyncio httpx clients, not ROS graphs) against a
real `retailbot platform serve` over PostgreSQL (a throwaway 15 cluster, as in the tests).

Three measurements in one run:
 1. Heartbeat load: every robot sends its heartbeat every P seconds for D seconds; the platform's
    CPU time (its process tree, from /proc) per heartbeat and per 1,000 robots at period P. The
    peer, measured in the same run the same way: each robot uploading one event per period on the
    platform's existing ingest path (POST /events) — ratio heartbeat / event upload.
 2. Silent detection: K robots stop; three HQ readers poll /v1/fleet/robots at once. Per stopped
    robot, in heartbeat periods, from the answers judged by its last heartbeat the platform
    received (`last_heartbeat_at`): when the platform first answered `silent` after that
    heartbeat ARRIVED (the guarantee: silent within 2) and after it was SENT (adds the time it
    waited in a busy platform's queue), when a reader got the answer, the latest age at which
    it was still shown alive and how many answers showed it alive over 2 periods on (target:
    none); live robots' heartbeat round trip (the load) and how many were shown silent, with how
    many of those this bench itself sent late (a starved bench process); when its `silent` task
    was opened by the platform's timer (the serve process's background sweep; nobody reads the
    tasks). Median and max of each; the load average before and after the phase.
 3. A rollout wave: a desired-state version rolled out to all R robots (canary -> 10 % -> all);
    robots fetch and run it; one canary reports a safety stop: the rollout must halt with no
    robot beyond the canary wave assigned. A control rollout without the failing canary must
    reach every robot (`done`).

Given `--peer-src DIR` (a source tree of an earlier version: `git archive <commit> src | tar -x
-C DIR`), only the silent phase runs, against that version's platform and then this tree's, each
on a database of its own, in the same run: live robots shown silent, split into those whose
heartbeats this bench itself sent late (a starved load generator: nothing the platform can see)
and those sent on time (the platform's own lateness, the fault `Pulse` fixes).

    .venv/bin/python benches/fleet_scale.py                       # 200 robots, period 5 s
    .venv/bin/python benches/fleet_scale.py --peer-src /tmp/before --period 5
    .venv/bin/python benches/fleet_scale.py --robots 500 --period 5 --duration 30
"""
from __future__ import annotations

import argparse
import asyncio
import math
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
        self.last_sent = 0.0         # when the last heartbeat the platform acknowledged was sent
        self.seq = 0
        self.requests = 0
        self.round_trips: list[float] = []
        self.sends: list[float] = []     # when each heartbeat was sent (this phase)


async def heartbeat(client: httpx.AsyncClient, robot: Robot, period: float) -> dict | None:
    body = {'period_s': period, 'software_version': '1.4.2', 'desired_version': robot.running,
            'safety_stop': robot.trouble, 'base': {'level': 'ok', 'message': 'driving'},
            'sync_backlog': 3, 'sync_oldest_s': 2.0, 'battery_percent': 81.0,
            'disk_free_fraction': 0.6}
    sent = time.time()
    robot.sends.append(sent)
    try:
        response = await client.post(f'/v1/robots/{robot.id}/heartbeat', json=body,
                                     headers=robot.headers)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    robot.last_ok = time.time()
    robot.last_sent = sent
    robot.round_trips.append(robot.last_ok - sent)
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


READERS = 3          # HQ readers polling at once: a slow answer under load leaves no long gap


async def silent_phase(url: str, robots: list[Robot], period: float, stop: int,
                       reset) -> dict:
    """Robots beat; after 3 periods `stop` of them stop; HQ readers poll /v1/fleet/robots and
    keep, per answer and stopped robot, (asked, answered, state, age the platform reported)."""
    # asked, got, robot, state, age, arrival of the heartbeat the answer judged by
    answers: list[tuple[float, float, str, str, float, float]] = []
    false_alarms: set[str] = set()
    late_alive: set[str] = set()      # live robots shown alive but `platform_late` (the fix)
    behind: list[dict] = []
    async with client_for(url) as client:
        until = time.time() + 12 * period
        loops = [asyncio.create_task(robot_loop(client, r, period, until, 'heartbeat'))
                 for r in robots]
        await asyncio.sleep(3 * period)
        await asyncio.to_thread(reset)     # every robot has beaten again: earlier tasks closed
        for robot in robots:
            robot.round_trips.clear()
            robot.sends.clear()
        stopped = random.sample(robots, stop)
        stopped_ids = {r.id for r in stopped}
        for robot in stopped:
            robot.alive = False
        stopped_at = time.time()
        admin = {'Authorization': f'Bearer {ADMIN}'}
        shown_silent: set[str] = set()

        async def reader(offset: float) -> None:
            await asyncio.sleep(offset)
            # until every stopped robot was shown silent and 2.5 periods passed since the stop
            # (answers showing one alive that late would be the fault this looks for)
            while time.time() < until and not (stopped_ids <= shown_silent
                                               and time.time() > stopped_at + 2.5 * period):
                asked = time.time()
                try:
                    states = (await client.get('/v1/fleet/robots', headers=admin)).json()
                except httpx.HTTPError:
                    await asyncio.sleep(0.25)
                    continue
                got = time.time()
                try:
                    platform = (await client.get('/v1/fleet/platform', headers=admin))
                    if platform.status_code == 200:
                        behind.append(platform.json())
                except httpx.HTTPError:
                    pass
                for row in states:
                    if row['robot_id'] in stopped_ids:
                        answers.append((asked, got, row['robot_id'], row['state'],
                                        row['last_heartbeat_s'], row['last_heartbeat_at']))
                        if row['state'] == 'silent':
                            shown_silent.add(row['robot_id'])
                    elif row['state'] == 'silent':
                        false_alarms.add(row['robot_id'])
                    elif row.get('platform_late'):
                        late_alive.add(row['robot_id'])
                await asyncio.sleep(0.25)
        await asyncio.gather(*(reader(i * 0.25 / READERS) for i in range(READERS)))
        ended = time.time()                         # the other robots stop beating now
        for robot in robots:
            robot.alive = False
        await asyncio.gather(*loops)
    trips = sorted(t for r in robots if r.id not in stopped_ids for t in r.round_trips)
    # a live robot shown silent: did this process send its heartbeats late (a starved bench), or
    # did they wait in the platform? (the longest gap between its sends, in periods)
    gaps = {r.id: max((b - a for a, b in zip(r.sends, r.sends[1:])), default=0.0) / period
            for r in robots if r.id in false_alarms}
    return {'sent_late': sum(1 for g in gaps.values() if g > 1.5), 'answers': answers,
            'false_alarms': len(false_alarms), 'ended': ended,
            'platform_late': len(late_alive - false_alarms),
            'behind_answers': sum(1 for b in behind if b.get('behind')), 'platform_reads': len(behind),
            'offered': sum(len(r.sends) for r in robots) / max(1e-9, ended - stopped_at),
            'sends': {r.id: list(r.sends) for r in stopped},
            'round_trip_median': statistics.median(trips) if trips else math.nan,
            'round_trip_p95': trips[int(0.95 * (len(trips) - 1))] if trips else math.nan}


def received_at(target: str, robot_ids) -> dict[str, float]:
    """The platform's arrival time of each robot's last heartbeat (its own clock)."""
    import sqlalchemy as sa
    from retail_platform import schema as t
    storage = Storage(target)
    try:
        with storage.engine.connect() as c:
            rows = c.execute(sa.select(t.fleet_heartbeats.c.robot_id, t.fleet_heartbeats.c.received_at)
                             .where(t.fleet_heartbeats.c.robot_id.in_(list(robot_ids)))).all()
    finally:
        storage.close()
    return {r.robot_id: r.received_at for r in rows}


def detection(phase: dict, arrived: dict[str, float], period: float) -> dict:
    """Per stopped robot, in heartbeat periods. Its last heartbeat is the last one the platform
    received (a beat still in flight when it stopped can land late and make it alive again);
    `sent` is when that heartbeat left the robot. From the answers judged by that heartbeat
    (the API says which: `last_heartbeat_at`): when the platform first answered `silent` (the
    answer's evaluation time on the platform's clock: arrival + the age it reported), after the
    arrival and after the send; when a reader got that answer (after the send); how late the
    heartbeat reached the platform; the latest age at which it was still shown alive; and how
    many answers showed it alive over 2 periods after its last heartbeat arrived."""
    arrival_based, decided, seen, queued, alive_age, late_alive = [], [], [], [], [], 0
    for robot, sends in phase['sends'].items():
        arrival = arrived[robot]
        sent = max((t for t in sends if t <= arrival), default=arrival)
        mine = [a for a in phase['answers'] if a[2] == robot and abs(a[5] - arrival) < 1e-6]
        queued.append((arrival - sent) / period)
        silent = [a for a in mine if a[3] == 'silent']
        arrival_based.append(min(a[4] / period for a in silent) if silent else math.inf)
        decided.append(min((arrival + a[4] - sent) / period for a in silent) if silent else math.inf)
        seen.append(min((a[1] - sent) / period for a in silent) if silent else math.inf)
        alive = [a for a in mine if a[3] != 'silent']
        alive_age.append(max((a[4] / period for a in alive), default=0.0))
        late_alive += sum(1 for a in alive if a[4] > 2 * period)
    return {'arrival': arrival_based, 'decided': decided, 'seen': seen, 'queued': queued,
            'alive_age': alive_age, 'late_alive': late_alive}


def spread(values: list[float]) -> str:
    return f'median {statistics.median(values):.2f}, max {max(values):.2f}'


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


def task_delays(target: str, last_ok: dict[str, float], period: float,
                ended: float) -> tuple[list[float], int]:
    """Per stopped robot: (its silent task's opened_at - its last heartbeat) / period; and how
    many silent tasks robots still beating got (opened before `ended`, when the phase stopped
    every robot: tasks opened after it are right)."""
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
            len({robot for robot, at in opened.items() if at < ended} - set(last_ok)))


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


def start_server(target: str, src: str | None = None) -> tuple[subprocess.Popen, str]:
    """`retailbot platform serve` over `target`; `src`: a source tree of another version of the
    project (its src/* packages first on PYTHONPATH: the peer measured in the same run)."""
    env = dict(os.environ)
    if src:
        env['PYTHONPATH'] = os.pathsep.join(str(p) for p in sorted(Path(src, 'src').iterdir())
                                            if p.is_dir())
    port = free_port()
    server = subprocess.Popen([str(BIN / 'retailbot'), 'platform', 'serve', '--database',
                               target, '--port', str(port), '--token', ADMIN],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f'http://127.0.0.1:{port}'
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(url + '/v1/ready', timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.terminate()
            raise SystemExit(f'the platform{" of " + src if src else ""} did not start')
        time.sleep(0.2)


def register(target: str, args) -> list[Robot]:
    storage = Storage(target)
    try:
        for s in range(args.stores):
            storage.add_store(f'store-{s}', f'Store {s}')
        return [Robot(r, storage.issue_robot_token(f'robot-{r}', f'store-{r % args.stores}'))
                for r in range(args.robots)]
    finally:
        storage.close()


def silent_only(cluster, args, src: str | None) -> dict:
    """The silent phase alone against a platform of `src` (None: this tree), on a database of
    its own (migrated by that platform's own serve)."""
    target = cluster.url(cluster.new_database())
    server, url = start_server(target, src)
    try:
        robots = register(target, args)
        load_before = os.getloadavg()[0]
        run = asyncio.run(silent_phase(url, robots, args.period, args.stop,
                                       lambda: resolve_all(target)))
        run['load'] = (load_before, os.getloadavg()[0])
        arrived = received_at(target, run['sends'])
        run['found'] = detection(run, arrived, args.period)
        run['tasks'], run['false_tasks'] = task_delays(target, arrived, args.period, run['ended'])
    finally:
        server.terminate()
        server.wait(timeout=30)
    return run


def report_silent(name: str, run: dict, args) -> None:
    found = run['found']
    print(f'  {name} (load {run["load"][0]:.1f} -> {run["load"][1]:.1f}): offered '
          f'{run["offered"]:.1f} heartbeats/s; round trip median {run["round_trip_median"]:.2f} s, '
          f'p95 {run["round_trip_p95"]:.2f} s; live robots shown SILENT: {run["false_alarms"]} of '
          f'{args.robots - args.stop} (of them {run["sent_late"]} sent over 1.5 periods apart by '
          f'this bench; the others, {run["false_alarms"] - run["sent_late"]}, were sent on time: '
          f'the platform\'s fault); shown alive marked platform late: {run["platform_late"]}; the platform '
          f'said it was behind in {run["behind_answers"]} of {run["platform_reads"]} reads; '
          f'stopped robots shown silent after their last heartbeat arrived: '
          f'{spread(found["arrival"])} periods; silent tasks for live robots: {run["false_tasks"]}',
          flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--robots', type=int, default=200)
    parser.add_argument('--stores', type=int, default=20)
    parser.add_argument('--period', type=float, default=5.0, help='heartbeat period, s')
    parser.add_argument('--duration', type=float, default=20.0, help='load phase length, s')
    parser.add_argument('--stop', type=int, default=10, help='robots that go silent')
    parser.add_argument('--peer-src', default='', help='a source tree of an earlier version '
                        '(e.g. `git archive <commit> src | tar -x -C DIR`): only the silent phase, '
                        'against its platform and then this one, in the same run')
    args = parser.parse_args()
    if args.peer_src:
        cluster = Cluster()
        try:
            runs = [('peer ' + args.peer_src, silent_only(cluster, args, args.peer_src)),
                    ('this tree', silent_only(cluster, args, None))]
        finally:
            cluster.remove()
        print(f'{args.robots} robots in {args.stores} stores, PostgreSQL 15, 1 API process, '
              f'heartbeat period {args.period:g} s; silent phase, {args.stop} robots stopped:')
        for name, run in runs:
            report_silent(name, run, args)
        return 0 if runs[1][1]['false_alarms'] == 0 else 1
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
            load_before = os.getloadavg()[0]
            silent_run = asyncio.run(silent_phase(
                url, robots, args.period, args.stop, lambda: resolve_all(target)))
            load_after = os.getloadavg()[0]
            arrived = received_at(target, silent_run['sends'])
            found = detection(silent_run, arrived, args.period)
            tasks, false_tasks = task_delays(target, arrived, args.period, silent_run['ended'])
            print(f'  silent phase: {silent_run["false_alarms"]} robots still beating were shown '
                  f'silent', flush=True)
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
    decided = found['arrival']
    print(f'  silent detection of {args.stop} stopped robots, in heartbeat periods (load average '
          f'{load_before:.1f} -> {load_after:.1f}; {READERS} HQ readers polling /v1/fleet/robots):')
    print(f'    the platform answered silent, after its last heartbeat ARRIVED: {spread(decided)} '
          f'({"within" if max(decided) <= 2 else "NOT within"} 2 periods)')
    print(f'    the same, after that heartbeat was SENT: {spread(found["decided"])}; a reader got '
          f'the answer: {spread(found["seen"])}')
    print(f'    last heartbeat reached the platform: {spread(found["queued"])} after it was sent '
          f'(the platform\'s queue); live robots\' heartbeat round trip median '
          f'{silent_run["round_trip_median"]:.2f} s, p95 {silent_run["round_trip_p95"]:.2f} s')
    print(f'    latest age at which a stopped robot was still shown alive: '
          f'{max(found["alive_age"]):.2f} periods after its heartbeat arrived (silent after 1.5); '
          f'answers showing one alive over 2 periods after its last heartbeat arrived: '
          f'{found["late_alive"]}; robots still beating shown silent: '
          f'{silent_run["false_alarms"]} (of them {silent_run["sent_late"]} whose heartbeats this '
          f'bench itself sent over 1.5 periods apart)')
    print(f'  silent tasks opened by the timer (periods after the last heartbeat arrived): '
          f'{spread(tasks)}; {false_tasks} for robots still beating')
    print(f'  rollout with a failing canary ({halted["failing"]}): {halted["state"]} at wave '
          f'{halted["wave"]} of waves {halted["waves"]}; robots assigned {halted["assigned"]}, '
          f'running it {halted["robots_running_it"]}; reason: {halted["reason"]}')
    print(f'  control rollout: {control["state"]}, {control["robots_running_it"]} of '
          f'{args.robots} robots running it')
    ok = (max(decided) <= 2 and found['late_alive'] == 0 and silent_run['false_alarms'] == 0
          and max(tasks) <= 2 and false_tasks == 0 and halted['state'] == 'halted' and halted['wave'] == 0
          and halted['assigned'] == halted['waves'][0] and control['state'] == 'done')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
