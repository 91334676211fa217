"""Incident recordings to the platform: the robot's uploader of the contract `retail_common.incidents`.

The request: `POST /v1/robots/{robot_id}/incidents`, the MCAP file as the body
(`application/octet-stream`, at most MAX_INCIDENT_BYTES), `Idempotency-Key: <the file's name
without .mcap>` and `Content-Digest: sha-256=:<base64>:` (RFC 9530). The reply (`IncidentReceipt`):
the platform's id for the recording, the SHA-256 it stored, and `duplicate` when that key was
already stored with the same content. A key already stored with other content is refused (409), a
digest that does not match the body too (422): the robot never deletes a copy the platform does
not hold byte for byte.

The uploader deletes the robot's copy only after a receipt whose SHA-256 equals the file's own and
whose id is set (the platform's commit is the acknowledgement). A file the platform refuses for
itself (400, 409, 413, 422) is moved to `incidents/refused/` and reported, never retried in a loop;
any other answer (a wrong token, the robot not registered, a busy or down platform) leaves every
file for the next request. Pure: no rclpy (the incident node calls it).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import httpx

from retail_common.incidents import MAX_INCIDENT_BYTES, IncidentReceipt, content_digest, valid_key
from retail_sync.transport import capped_request

RECEIPT_BYTES = 64 * 1024

FILE_REFUSED = frozenset({400, 409, 413, 422})


class UploadError(Exception):
    """An upload that did not happen (one line); `refused` when retrying the file cannot help,
    `platform_down` when no other file would get through now either."""

    def __init__(self, message: str, refused: bool = False, platform_down: bool = False) -> None:
        super().__init__(message)
        self.refused = refused
        self.platform_down = platform_down


@dataclass(frozen=True)
class Uploaded:
    path: Path
    receipt: IncidentReceipt


def upload_incident(client: httpx.Client, platform_url: str, robot_id: str, path: Path) -> IncidentReceipt:
    """Upload one finished recording; returns the platform's receipt once it holds the same bytes."""
    key = path.name.removesuffix('.mcap')
    if not valid_key(key):
        raise UploadError(f'{path.name}: not an incident file name the platform accepts as a key', refused=True)
    try:
        size = path.stat().st_size
        if size > MAX_INCIDENT_BYTES:
            raise UploadError(
                f'{path.name}: {size} bytes, the platform takes at most {MAX_INCIDENT_BYTES}', refused=True
            )
        data = path.read_bytes()
    except OSError as exc:
        raise UploadError(f'{path}: cannot read: {exc.strerror or exc}') from None
    url = f'{platform_url.rstrip("/")}/v1/robots/{robot_id}/incidents'
    headers = {
        'Idempotency-Key': key,
        'Content-Digest': content_digest(data),
        'Content-Type': 'application/octet-stream',
    }
    try:
        # a receipt is a few hundred bytes: more than RECEIPT_BYTES is not read (a bomb is cut)
        answer = capped_request(client, 'POST', url, RECEIPT_BYTES, content=data, headers=headers)
    except httpx.HTTPError as exc:
        raise UploadError(
            f'{path.name}: platform unreachable ({type(exc).__name__}): kept for later', platform_down=True
        ) from None
    if answer.status_code not in (200, 201):
        # Refused for the file itself (not MCAP, too large, key reused with other bytes): set aside.
        # Anything else (token, robot not registered, busy, down) is not the file's fault: kept.
        refused = answer.status_code in FILE_REFUSED
        detail = answer.text[:200].replace('\n', ' ')
        raise UploadError(
            f'{path.name}: platform answered {answer.status_code}: {detail}', refused=refused, platform_down=not refused
        )
    try:
        receipt = IncidentReceipt.model_validate_json(answer.content[:RECEIPT_BYTES])
    except ValueError:
        raise UploadError(f'{path.name}: the platform\'s answer is not an incident receipt: kept') from None
    if receipt.sha256 != hashlib.sha256(data).hexdigest() or receipt.key != key or receipt.bytes != len(data):
        raise UploadError(f'{path.name}: the platform confirmed other content (id {receipt.id}): kept')
    return receipt


def pending_incidents(folder: Path) -> list[Path]:
    """Finished recordings waiting in `folder` (a `.part` file is still being written), oldest first."""
    try:
        return sorted(p for p in folder.glob('*.mcap') if p.is_file())
    except OSError:
        return []


def upload_pending(
    client: httpx.Client, platform_url: str, robot_id: str, folder: Path
) -> tuple[list[Uploaded], list[str]]:
    """Upload every finished recording; delete each only after its receipt. Returns (uploaded, problems)."""
    done: list[Uploaded] = []
    problems: list[str] = []
    for path in pending_incidents(folder):
        try:
            receipt = upload_incident(client, platform_url, robot_id, path)
        except UploadError as exc:
            problems.append(str(exc))
            if exc.refused:
                _set_aside(path, folder / 'refused', problems)
                continue
            if exc.platform_down:
                break  # the platform is down or busy: the others wait for the next request too
            continue
        try:
            os.unlink(path)
        except OSError as exc:
            problems.append(f'{path.name}: uploaded (id {receipt.id}) but not deleted: {exc.strerror}')
        done.append(Uploaded(path, receipt))
    return done, problems


def _set_aside(path: Path, folder: Path, problems: list[str]) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.replace(path, folder / path.name)
        problems.append(f'{path.name}: set aside in {folder}')
    except OSError as exc:
        problems.append(f'{path.name}: could not be set aside: {exc.strerror}')


def keep_room(folder: Path, max_files: int, max_bytes: int) -> str:
    """Whether a new recording may be written to `folder` (its finished recordings are all waiting
    for the platform: a copy is deleted only once its receipt confirms it by id, so none of them
    may be deleted to make room). '' when there is room; else one line saying why new incidents
    are not recorded (the caller stops recording and reports it in its health)."""
    waiting = pending_incidents(folder)
    size = 0
    for path in waiting:
        try:
            size += path.stat().st_size
        except OSError:
            continue
    if len(waiting) >= max_files:
        return (
            f'{len(waiting)} incident recordings wait for upload (at most {max_files} kept): '
            'new incidents are not recorded until the platform confirms some'
        )
    if size >= max_bytes:
        return (
            f'incident recordings waiting for upload take {size / 1e6:.0f} MB (at most '
            f'{max_bytes / 1e6:.0f} MB): new incidents are not recorded until the platform confirms some'
        )
    return ''
