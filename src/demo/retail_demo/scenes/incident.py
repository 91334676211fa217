"""The bumper stop's incident recording: the robot kept the minute around it, uploads it to the
platform on request (and deletes its copy once the platform confirms it by id), and the store
manager downloads it from the platform and reads it with the `mcap` reader and the
`mcap-ros2-support` decoder: the bumper press is in it, as the base reported it."""

from __future__ import annotations

import hashlib
import io

from retail_demo.checks import Observations
from retail_demo.robot_client import StoreClient

STORE = 'demo-store'  # the store the demo robot is registered in for tenancy


def play(robot: StoreClient, seen: Observations) -> None:
    robot.section('The bumper stop\'s incident recording on the platform')
    manager = robot.register_for_incidents(STORE)
    files = robot.wait(lambda: [p for p in robot.incident_files() if 'bumper' in p.name], 90,
                       'the bumper incident recording written (the minute after it included)')
    if not files:
        seen.note('incident_uploaded', written=False)
        return
    local = files[0]
    robot.tell('robot', f'incident recording written: {local.name} ({local.stat().st_size} bytes)')
    answer = robot.upload_incidents(60)
    robot.tell('robot', f'upload on request: {answer or "no answer"}')
    answered = robot.platform_get(f'/v1/stores/{STORE}/incidents', manager)
    listed = answered.json() if answered.status_code == 200 else []
    if answered.status_code != 200:
        robot.tell('platform', f'listing refused: {answered.status_code} {answered.text[:200]}')
    mine = [i for i in listed if i['key'] == local.name.removesuffix('.mcap')]
    facts = dict(written=True, answer=answer, local_deleted=not local.exists(), listed=bool(mine))
    if mine:
        download = robot.platform_get(f'/v1/stores/{STORE}/incidents/{mine[0]["id"]}', manager)
        facts.update(id=mine[0]['id'], reasons=mine[0]['reasons'], bytes=len(download.content),
                     sha256_ok=hashlib.sha256(download.content).hexdigest() == mine[0]['sha256'],
                     **read_back(download.content))
        (robot.out / 'incident-bumper.mcap').write_bytes(download.content)
        robot.tell('manager', f'incident {mine[0]["id"]} downloaded ({len(download.content)} bytes, '
                   f'{facts["messages"]} messages on {len(facts["topics"])} topics; bumper press in it: '
                   f'{facts["bumper_in_recording"]}); saved as incident-bumper.mcap')
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
    return {'messages': sum(topics.values()), 'topics': sorted(topics), 'bumper_in_recording': bumper,
            'camera_images': [t for t in topics if 'image' in t]}
