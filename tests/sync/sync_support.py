"""Sync test helpers: a real reference platform process on 127.0.0.1, the CLI, event files."""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from rostest_support import console_script, free_port, wait_for  # noqa: F401  (free_port: re-exported)

TOKEN = 'test-token-7'
ROBOT = 'robot-test'



@dataclass
class Platform:
    url: str
    db: Path
    token: str
    process: subprocess.Popen

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={'Authorization': f'Bearer {self.token}'},
                            timeout=10)

    def export(self, robot_id: str = ROBOT) -> list[dict]:
        """What the platform stored, through `retailbot platform export`."""
        result = subprocess.run([console_script('retailbot'), 'platform', 'export', '--db',
                                 str(self.db), '--robot-id', robot_id],
                                capture_output=True, text=True, timeout=60)
        if result.returncode == 2 and f'no robot {robot_id!r}' in result.stderr:
            return []      # the platform never stored anything of this robot (it says so)
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]


def start_platform(db: Path, port: int, token: str = TOKEN, contracts: str = 'generic') -> Platform:
    process = subprocess.Popen(
        [console_script('retailbot'), 'platform', 'serve', '--db', str(db), '--host', '127.0.0.1',
         '--port', str(port), '--token', token,
         '--event-contracts', contracts],   # generic (default here): free-form test events
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    platform = Platform(f'http://127.0.0.1:{port}', db, token, process)

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f'platform exited: {process.stdout.read().decode()}')
        try:
            return platform.client().get('/v1/health').status_code == 200
        except httpx.HTTPError:
            return False
    wait_for(up, timeout=30, what='the reference platform to answer', interval=0.1)
    return platform



def sync_cli(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([console_script('retailbot'), 'sync', *args], capture_output=True,
                          text=True, timeout=timeout, **kwargs)


def make_events(count: int, start: int = 0, bad_types: set[int] = frozenset()) -> list[dict]:
    """Store-day-like events of ~300 bytes, each carrying its index `i` in data."""
    kinds = ('greeting', 'dialogue_turn', 'recommendation', 'guide', 'vip_checkin')
    events = []
    for i in range(start, start + count):
        events.append({
            'type': 'Bad Type!' if i in bad_types else kinds[i % len(kinds)],
            'customer': f'p-{i % 97:04d}',
            'data': {'i': i, 'zone': 'phones', 'lang': 'zh',
                     'text': f'顾客询问 华为 Mate 60 Pro 的价格 #{i}', 'sku': 'HW-MATE60P',
                     'score': round(i * 0.001, 3), 'source': 'dialogue/manager'}})
    return events


def write_events(path: Path, events: list[dict]) -> Path:
    path.write_text(''.join(json.dumps(e, ensure_ascii=False) + '\n' for e in events),
                    encoding='utf-8')
    return path


def emit(outbox: Path, events: list[dict], tmp_path: Path) -> None:
    source = write_events(tmp_path / f'events-{len(events)}-{events[0]["data"]["i"]}.jsonl', events)
    result = sync_cli('emit', '--event-contracts', 'generic',   # free-form test events
                      '--outbox', str(outbox), '--create', '--robot-id', ROBOT, '--from-file',
                      str(source))
    assert result.returncode == 0, result.stderr


def outbox_status(outbox: Path) -> dict:
    result = sync_cli('status', '--outbox', str(outbox), '--json')
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def gzip_bomb(expands_to: int = 1 << 30) -> bytes:
    """A small gzip body that expands to `expands_to` bytes of zeros: one 16 MiB member
    (about 16 KB compressed) repeated, as gzip allows concatenated members."""
    import gzip as gziplib
    member = gziplib.compress(b'\0' * (16 << 20), compresslevel=9)
    return member * max(1, expands_to // (16 << 20))


# Declared events (retail_common.events) numbered for tests that count and order them.
def guide_event(i: int, zone: str = 'kitchen'):
    from retail_common.events import GuideMission
    return GuideMission(zone=zone, status='ended', reason='arrived', success=True, stops_visited=i)


def turn_event(i: int, text: str = '', products: int = 1):
    from retail_common.events import DialogueTurn, ShownProduct
    return DialogueTurn(intent='find_product', language='zh', confidence=0.5, text=text or None,
                        products=[ShownProduct(sku=f'P-{i}', price_cny=float(i), zone='kitchen')] * products)


def number(data: dict) -> int:
    """The number of an event made by `guide_event` or `turn_event`."""
    return data['stops_visited'] if 'stops_visited' in data else int(data['products'][0]['price_cny'])


def provision_robot(platform: Platform, robot_id: str = ROBOT, store_id: str = 'store-test') -> str:
    """Register `robot_id` in a store of the platform's database (the store made when missing), as
    `retailbot platform store add` and `token issue --store` do; the robot's own token."""
    from retail_platform.database import upgrade
    from retail_platform.storage import Refused, Storage

    storage = Storage(str(platform.db))
    try:
        upgrade(storage.engine)
        try:
            storage.add_store(store_id, f'Store {store_id}')
        except Refused:
            pass
        return storage.issue_robot_token(robot_id, store_id, replace=True)
    finally:
        storage.close()


def catalog_rows(path: Path) -> list[dict]:
    """A catalog CSV's rows as the platform's product master takes them (`PUT /v1/products`)."""
    import csv
    with path.open(encoding='utf-8-sig', newline='') as handle:
        return [{k: v for k, v in row.items() if k} for row in csv.DictReader(handle)]


def robot_data(tmp_path: Path, token: str) -> tuple[Path, Path]:
    """(a robot's data folder holding its platform token in sync/token, a folder for node logs)."""
    data = tmp_path / 'data'
    (data / 'sync').mkdir(parents=True)
    (data / 'sync' / 'token').write_text(token + '\n')
    logs = tmp_path / 'logs'
    logs.mkdir()
    return data, logs


def node_starter(processes, env: dict, logs: Path):
    """start(console script, namespace, *'name:=value'): a robot node process (the `processes`
    fixture stops it), its output in logs/<console script>.log."""
    def start(name: str, namespace: str, *params: str) -> subprocess.Popen:
        args = [console_script(name), '--ros-args', '-r', f'__ns:={namespace}']
        for param in params:
            args += ['-p', param]
        return processes(args, env=env, stdout=(logs / f'{name}.log').open('a'), stderr=subprocess.STDOUT)
    return start
