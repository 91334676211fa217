"""The bumper stop's incident recording: the robot kept the minute around it, uploads it to the
platform on request (and deletes its copy once the platform confirms it by id), and the store
manager downloads it from the platform and reads it with the `mcap` reader and the
`mcap-ros2-support` decoder: the bumper press is in it, as the base reported it."""

from __future__ import annotations

import hashlib
import io
from typing import Any

from retail_demo.checks import Observations
from retail_demo.robot_client import StoreClient

STORE = 'demo-store'  # the store the demo robot is registered in for tenancy


def play(robot: StoreClient, seen: Observations) -> None:
    robot.section('The bumper stop\'s incident recording on the platform')
    manager = robot.register_for_incidents(STORE)
    waiting = robot.wait(
        lambda: [name for name in robot.incident_files() if 'bumper' in name],
        90,
        'the bumper incident recording written (the minute after it included)',
    )
    if not waiting:
        seen.note('incident_uploaded', written=False)
        return
    name = waiting[0]
    robot.tell('robot', f'incident recording written: {name}')
    answer = robot.upload_incidents(60)
    robot.tell('robot', f'upload on request: {answer or "no answer"}')
    listed = robot.incidents_on_platform(STORE, manager)
    mine = [i for i in listed if i['key'] == name.removesuffix('.mcap')]
    facts: dict[str, Any] = dict(
        written=True, answer=answer, local_deleted=name not in robot.incident_files(), listed=bool(mine)
    )
    if mine:
        content = robot.download_incident(STORE, mine[0]['id'], manager, 'incident-bumper.mcap')
        facts.update(
            id=mine[0]['id'],
            reasons=mine[0]['reasons'],
            bytes=len(content),
            sha256_ok=hashlib.sha256(content).hexdigest() == mine[0]['sha256'],
            **read_back(content),
        )
        robot.tell(
            'manager',
            f'incident {mine[0]["id"]} downloaded ({len(content)} bytes, '
            f'{facts["messages"]} messages on {len(facts["topics"])} topics; bumper press in it: '
            f'{facts["bumper_in_recording"]}); saved as incident-bumper.mcap',
        )
    seen.note('incident_uploaded', **facts)


def read_back(data: bytes) -> dict:
    """What the `mcap` reader and the `mcap-ros2-support` decoder find in the recording."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    reader = make_reader(io.BytesIO(data), decoder_factories=[DecoderFactory()])
    topics: dict[str, int] = {}
    bumper = False
    for _schema, channel, _message, decoded in reader.iter_decoded_messages():
        topics[channel.topic] = topics.get(channel.topic, 0) + 1
        if channel.topic == '/navigation/safety':
            bumper = bumper or bool(decoded.bumper_left or decoded.bumper_centre or decoded.bumper_right)
    return {
        'messages': sum(topics.values()),
        'topics': sorted(topics),
        'bumper_in_recording': bumper,
        'camera_images': [t for t in topics if 'image' in t],
    }
