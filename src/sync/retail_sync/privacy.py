"""Privacy guard: nothing that could identify a face ever leaves the robot.

Data going to the platform is pseudonymous. The outbox calls `check_payload` on every event, so a
bug in any node that puts an embedding or a camera crop into an event is refused at the door
(and logged) instead of being uploaded.
"""
from __future__ import annotations

import re
from typing import Any

# Key names that only face data uses (compared lower-case, with '-'/' ' as '_').
FORBIDDEN_KEYS = frozenset({
    'embedding', 'embeddings', 'encoding', 'encodings', 'face_encoding', 'face_encodings',
    'face_embedding', 'face_embeddings', 'face_descriptor', 'descriptor', 'face_image',
    'face_images', 'face_crop', 'face_chip', 'face', 'faces', 'face_landmarks', 'landmarks',
    'image', 'photo', 'snapshot', 'jpeg', 'jpg', 'png', 'frame',
})
MAX_FLOAT_ARRAY = 16          # a face embedding has 128 (dlib) or 512 floats; no event needs 16+
_DATA_IMAGE = re.compile(r'data:image/', re.IGNORECASE)
# Base64 of JPEG (FFD8FF), PNG (89504E47), GIF, WebP (RIFF), BMP starts with these characters.
_BASE64_IMAGE_MAGIC = ('/9j/', 'iVBORw0KGgo', 'R0lGOD', 'UklGR', 'Qk')
_BASE64 = re.compile(r'^[A-Za-z0-9+/=\s_-]+$')
LONG_BASE64 = 512             # a long opaque base64 blob in an event is treated as an image


class PrivacyError(ValueError):
    """The payload carries face data (or something that looks like it)."""


def _normal_key(key: str) -> str:
    return re.sub(r'[-\s]+', '_', key.strip().lower())


def _check_string(value: str, where: str) -> None:
    if _DATA_IMAGE.search(value):
        raise PrivacyError(f'{where}: embedded image (data:image/...)')
    stripped = value.strip()
    if len(stripped) >= 64 and _BASE64.match(stripped):
        if stripped.startswith(_BASE64_IMAGE_MAGIC[:4]) or len(stripped) >= LONG_BASE64:
            raise PrivacyError(f'{where}: base64 image data ({len(stripped)} characters)')


def find_face_data(value: Any, where: str = 'payload') -> str | None:
    """The reason `value` may not leave the robot, or None when it is clean."""
    try:
        check_payload(value, where)
    except PrivacyError as exc:
        return str(exc)
    return None


def check_payload(value: Any, where: str = 'payload') -> None:
    """Raise PrivacyError if `value` (a decoded JSON value) contains face data."""
    if isinstance(value, dict):
        for key, item in value.items():
            if _normal_key(str(key)) in FORBIDDEN_KEYS:
                raise PrivacyError(f'{where}.{key}: face data key {key!r} is not allowed')
            check_payload(item, f'{where}.{key}')
    elif isinstance(value, (list, tuple)):
        floats = sum(1 for item in value if isinstance(item, float))
        if floats >= MAX_FLOAT_ARRAY:
            raise PrivacyError(f'{where}: array of {floats} floats looks like a face embedding')
        for index, item in enumerate(value):
            check_payload(item, f'{where}[{index}]')
    elif isinstance(value, (bytes, bytearray)):
        raise PrivacyError(f'{where}: raw bytes are not allowed')
    elif isinstance(value, str):
        _check_string(value, where)


# --- erasure on disk -----------------------------------------------------------------------------
ERASING_PRAGMAS = ('PRAGMA secure_delete=ON',)   # deleted rows are overwritten with zeros, not left in free pages


class ErasureBusy(RuntimeError):
    """A reader held the database: its write-ahead log could not be emptied; try again."""


def erase_wal(db, what: str) -> None:
    """After a member was forgotten: copy the write-ahead log into the database (where
    secure_delete has zeroed the deleted rows) and truncate it to nothing, so no old copy of the
    member's rows stays in `<db>-wal` (it is otherwise reused, never emptied). ErasureBusy when a
    reader kept part of it: the forget is confirmed only once this has succeeded."""
    busy, _log, _done = db.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchone()
    if busy:
        raise ErasureBusy(f'{what}: another reader holds the database; its log is emptied at the next try')
