"""The incident upload contract (v1), shared by the robot (retail_observe.incident_upload) and the
platform (retail_platform.incidents).

The request: `POST /v1/robots/{robot_id}/incidents`, the MCAP file as the body
(`application/octet-stream`, at most MAX_INCIDENT_BYTES), `Idempotency-Key: <the file's name
without .mcap>` (`valid_key`) and `Content-Digest: sha-256=:<base64>:` (RFC 9530). The reply:
`IncidentReceipt` (201 stored, 200 duplicate: the same key with the same bytes).
"""

from __future__ import annotations

import base64
import hashlib

from pydantic import BaseModel, Field

CONTRACT_VERSION = 1
MAX_INCIDENT_BYTES = 64 * 1024 * 1024
MAX_KEY_CHARS = 128
KEY_CHARS = frozenset('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-')
MAX_DIGEST_HEADER = 200
# Message types that carry camera pictures (faces unblurred): an incident recording never holds
# them (the robot's recorder skips them; the platform refuses an upload naming one), as a channel's
# schema or as a field of one. ROS 2 names with and without `/msg/`, and Foxglove's own schemas.
IMAGE_TYPES = frozenset(
    {
        'sensor_msgs/msg/Image',
        'sensor_msgs/msg/CompressedImage',
        'sensor_msgs/Image',
        'sensor_msgs/CompressedImage',
        'foxglove.RawImage',
        'foxglove.CompressedImage',
        'foxglove.CompressedVideo',
        'foxglove_msgs/msg/RawImage',
        'foxglove_msgs/msg/CompressedImage',
        'foxglove_msgs/msg/CompressedVideo',
        'foxglove_msgs/RawImage',
        'foxglove_msgs/CompressedImage',
        'foxglove_msgs/CompressedVideo',
    }
)


class IncidentReceipt(BaseModel):
    """The platform's answer to an incident upload (contract v1)."""

    version: int = Field(CONTRACT_VERSION, description='contract version')
    id: int = Field(ge=1, description='the platform\'s id of the stored recording')
    robot_id: str
    store_id: str
    key: str = Field(description='the Idempotency-Key it was stored under')
    sha256: str = Field(min_length=64, max_length=64, description='hex SHA-256 of the stored bytes')
    bytes: int = Field(ge=0)
    reasons: list[str] = Field(default_factory=list, description='what the robot saw (bumper, lost, ...)')
    duplicate: bool = Field(False, description='this key and content were already stored')


def valid_key(key: str) -> bool:
    """1-128 letters, digits, '.', '_' or '-', not starting with '.' or '-'."""
    return 0 < len(key) <= MAX_KEY_CHARS and set(key) <= KEY_CHARS and key[0] not in '.-'


def content_digest(data: bytes) -> str:
    """The RFC 9530 `Content-Digest` value of `data` (sha-256)."""
    return 'sha-256=:' + base64.b64encode(hashlib.sha256(data).digest()).decode() + ':'


def parse_content_digest(header: str) -> bytes | None:
    """The sha-256 digest a `Content-Digest` header names (None when it names none or is malformed)."""
    if len(header) > MAX_DIGEST_HEADER:
        return None
    for member in header.split(','):
        name, sep, value = member.strip().partition('=')
        value = value.strip()
        if sep and name.strip().lower() == 'sha-256' and len(value) >= 2 and value[0] == value[-1] == ':':
            try:
                digest = base64.b64decode(value[1:-1], validate=True)
            except ValueError:
                return None
            return digest if len(digest) == 32 else None
    return None


def image_problem(schema_name: str, schema_text: str) -> str:
    """'' when a channel's schema carries no camera picture, else one line saying which type does
    (the schema itself, or a field or dependency of a ROS 2 definition: `sensor_msgs/Image img`,
    `MSG: sensor_msgs/CompressedImage`)."""
    if schema_name in IMAGE_TYPES:
        return schema_name
    for line in schema_text.splitlines():
        for word in line.split('#', 1)[0].split():  # comments may name a type harmlessly
            word = word.split('[', 1)[0]
            if word in IMAGE_TYPES:
                return f'{schema_name} (holds {word})'
    return ''
