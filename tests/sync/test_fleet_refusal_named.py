"""The robot names the version it refused (Heartbeat v2 `desired_refused`), so the platform
halts only the rollout of that version (unit: the platform stand-in is an httpx MockTransport;
the real platform: tests/platform/test_rollout_versions.py)."""
from __future__ import annotations

import json

import httpx
import pytest

from retail_sync.fleet import HEARTBEAT_VERSION, Heartbeat, HeartbeatCore
from retail_sync.fleet_link import FleetLink


def _link(tmp_path, document: bytes, sent: list[dict]) -> FleetLink:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith('/heartbeat'):
            sent.append(json.loads(request.content))
            return httpx.Response(200, json={'state': 'ok', 'desired_version': 7, 'messages': 0})
        return httpx.Response(200, content=document, headers={'X-Desired-Version': '7'})
    client = httpx.Client(transport=httpx.MockTransport(answer))
    return FleetLink('http://127.0.0.1:1', 'token', 'r-1', tmp_path, client=client,
                     log=lambda line: None)


@pytest.mark.parametrize('document, refused', [
    (b'{"settings": {"volume": 3}}', 7),                 # refused: named
    (b'{"settings": {"turbo": 1}}', 7),
    (b'{"settings": {"volume": 0.5}}', 0),               # in use: nothing refused
])
def test_the_heartbeat_names_the_refused_version(tmp_path, document, refused):
    sent: list[dict] = []
    link = _link(tmp_path, document, sent)
    answer = link.heartbeat(Heartbeat(period_s=10))
    link.apply_desired(answer.desired_version)
    link.heartbeat(Heartbeat(period_s=10))
    assert sent[-1]['version'] == HEARTBEAT_VERSION and sent[-1]['desired_refused'] == refused
    assert bool(sent[-1]['desired_error']) == bool(refused)
    assert sent[-1]['desired_error'].startswith('v7: ') or not refused
    link.close()


def test_the_core_reports_a_refused_version_only_with_its_error():
    core = HeartbeatCore(period_s=10)
    core.desired_refused = 4
    assert core.heartbeat(0).desired_refused == 0          # no error: nothing refused
    core.desired_error = 'v4: settings.volume: 3'
    beat = core.heartbeat(0)
    assert beat.desired_refused == 4 and beat.version == HEARTBEAT_VERSION
    assert Heartbeat.model_validate_json(beat.model_dump_json()) == beat


@pytest.mark.parametrize('named', ['abc', '-4', '0', '99999999999', '7.5', '+7'])
def test_a_desired_version_header_that_is_not_a_version_is_refused_not_kept(tmp_path, named):
    """Attack round: the robot took X-Desired-Version as the version in use without a check: a
    number out of the heartbeat's range went out in every later heartbeat, which the platform
    refused (422) — the robot went silent for good; one that was not a number raised ValueError
    at every heartbeat. Now the document is refused naming the version the heartbeat named,
    and every later heartbeat is one the platform takes."""
    sent: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith('/heartbeat'):
            sent.append(json.loads(request.content))
            return httpx.Response(200, json={'state': 'ok', 'desired_version': 7, 'messages': 0})
        return httpx.Response(200, content=b'{"settings": {"volume": 0.5}}',
                              headers={'X-Desired-Version': named})
    link = FleetLink('http://127.0.0.1:1', 'token', 'r-1', tmp_path,
                     client=httpx.Client(transport=httpx.MockTransport(answer)),
                     log=lambda line: None)
    assert link.apply_desired(link.heartbeat(Heartbeat(period_s=10)).desired_version) is False
    link.heartbeat(Heartbeat(period_s=10))
    beat = Heartbeat.model_validate(sent[-1])           # what the platform validates
    assert beat.desired_version == 0 and beat.desired_refused == 7
    assert 'X-Desired-Version' in beat.desired_error
    link.close()


def test_an_answer_is_read_only_up_to_its_bound(tmp_path):
    """Attack round: the fleet link read a whole answer (a gzip bomb: decompressed) before
    looking at its size. Now it stops reading past MAX_DESIRED_BYTES and the document is refused
    as too large."""
    import gzip
    from retail_sync.fleet_link import MAX_DESIRED_BYTES
    bomb = gzip.compress(b' ' * (64 * MAX_DESIRED_BYTES))          # 64 MiB of white space
    read = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith('/heartbeat'):
            return httpx.Response(200, json={'state': 'ok', 'desired_version': 3, 'messages': 0})

        def body():
            for start in range(0, len(bomb), 4096):
                read.append(start)
                yield bomb[start:start + 4096]
        return httpx.Response(200, content=body(), headers={'Content-Encoding': 'gzip',
                                                            'X-Desired-Version': '3'})
    link = FleetLink('http://127.0.0.1:1', 'token', 'r-1', tmp_path,
                     client=httpx.Client(transport=httpx.MockTransport(answer)),
                     log=lambda line: None)
    assert link.apply_desired(link.heartbeat(Heartbeat(period_s=10)).desired_version) is False
    assert link.refused_version == 3 and 'bytes; at most' in link.desired_error
    assert len(read) * 4096 < len(bomb)                 # stopped before the end of the bomb
    link.close()
