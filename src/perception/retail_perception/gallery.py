"""The member gallery: consenting members' face embeddings, encrypted at rest, searched fast.

Facial data is personal information under China's PIPL: it is kept only on the robot, only for
members who gave separate consent (the consent reference is stored with them), only as long as
they keep visiting (retention purge), and a deletion removes every trace (crypto-erasure, see
GalleryStore): each member's record is encrypted under that member's own data key, and a delete,
purge or replacement erases that key. The data keys live in a key ring *beside* the gallery
folder (`<faces>.keys/`, wrapped by the master key, overwritten in place), not inside it: a copy
of the folder (a backup, freed disk blocks) made before a delete no longer opens the deleted
member, while the members who stay still open from it on this robot. No image and no plaintext
embedding is ever written.

Time stamps (enrolled, last seen) are trusted only inside a plausible window: not before
CLOCK_FLOOR (2026-01-01, before this software existed) and not more than a day after the current
clock. A clock reading outside it stamps nothing (0 = unknown); a stamp outside it is flagged and
re-stamped with the current time at the next save made with a trusted clock (retention counts
from then); a purge refuses to run while the clock itself reads before CLOCK_FLOOR.

Search is one float32 matrix-vector product, so it stays fast at 100 000 members. Pure: no rclpy.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import secrets
import struct
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np

KEY_ENV = 'RETAILBOT_GALLERY_KEY'
STORE_NAME = 'gallery.enc'
LOCK_NAME = '.lock'
MAGIC = b'RBGAL1\n'              # one AES-GCM blob under the master key (read, then rewritten)
MAGIC_V2 = b'RBGAL2\n'           # member list and members under data keys from the key table
MAGIC_V3 = b'RBGAL3\n'           # an index without personal data; each member's record under its own key
EMBEDDING_SIZE = 128
# Photos enrolled under one id must show one person: two of them further apart than this
# (face_recognition's own tolerance for "not the same person") are refused.
SAME_PERSON_MAX_DISTANCE = 0.6
DAY_S = 86400.0
CLOCK_FLOOR = 1767225600.0       # 2026-01-01T00:00:00Z: no true stamp of this gallery is older
# A purge whose clock is this far past the whole gallery's newest stamp (beyond the retention
# itself) reads a clock set forward: a robot that purges hourly erases a member within a day of
# expiry, so no true gallery is left with every member a month past it.
CLOCK_JUMP_MARGIN_DAYS = 35.0
KEYS_SUFFIX = '.keys'            # the key ring folder beside the gallery folder: <faces>.keys


def clock_trusted(now: float) -> bool:
    """Can this clock reading stamp anything (not before CLOCK_FLOOR)?"""
    return now >= CLOCK_FLOOR


def stamp_plausible(stamp: float, now: float) -> bool:
    """A stored stamp is believed when it is after CLOCK_FLOOR and at most a day after `now`."""
    return CLOCK_FLOOR <= stamp <= now + DAY_S


def default_keys_dir(directory: str | os.PathLike) -> Path:
    """`<gallery folder>.keys`: outside the folder, so a copy of the folder carries no key."""
    directory = Path(directory)
    return directory.parent / (directory.name + KEYS_SUFFIX)


class GalleryError(Exception):
    """A gallery problem worded for the technician (missing key, wrong key, bad file)."""


class GalleryKeyError(GalleryError):
    """No usable encryption key."""


class GalleryClockError(GalleryError):
    """The clock cannot be trusted for retention (it reads before CLOCK_FLOOR)."""


@dataclass(frozen=True)
class Member:
    customer_id: str
    name: str
    vip: bool
    consent_ref: str
    enrolled_at: float
    last_seen: float
    embeddings: int = 0        # rows encoded from the member's photos / frames as they were
    walk_in_rows: int = 0      # rows derived from them as a far camera sees them (the member's last rows)


@dataclass(frozen=True)
class Match:
    """Best gallery member for one face; `customer_id` None when below threshold or ambiguous."""
    customer_id: str | None
    distance: float            # to the best member (inf with an empty gallery)
    second_distance: float     # to the best *other* member
    best_id: str | None        # best member even when not accepted (for voting / diagnostics)


def _decode_key(text: str, source: str) -> bytes:
    text = text.strip()
    for decode in (bytes.fromhex, base64.urlsafe_b64decode, base64.b64decode):
        try:
            key = decode(text)
        except (ValueError, binascii.Error):
            continue
        if len(key) == 32:
            return key
    raise GalleryKeyError(f'gallery key from {source} is not 32 bytes in hex or base64')


def load_key(key_file: str | os.PathLike | None = None) -> bytes:
    """The 256-bit gallery key: from `key_file` if given, else from $RETAILBOT_GALLERY_KEY."""
    if key_file:
        path = Path(key_file)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise GalleryKeyError(f'cannot read gallery key file {path}: {exc.strerror}') from None
        return raw if len(raw) == 32 else _decode_key(raw.decode('ascii', 'replace'), str(path))
    text = os.environ.get(KEY_ENV, '')
    if not text:
        raise GalleryKeyError(f'no gallery key: set {KEY_ENV} (64 hex digits) or give a key file '
                              '(create one with `retailbot faces keygen --key-file FILE`)')
    return _decode_key(text, f'${KEY_ENV}')


def new_key_text() -> str:
    """A fresh random key as 64 hex digits."""
    return secrets.token_hex(32)


class Gallery:
    """Members plus an (n, 128) float32 embedding matrix with the owning member of each row."""

    def __init__(self, members: dict[str, Member] | None = None,
                 embeddings: np.ndarray | None = None, owners: np.ndarray | None = None):
        self.members: dict[str, Member] = dict(members or {})
        self._embeddings = (np.zeros((0, EMBEDDING_SIZE), np.float32) if embeddings is None
                            else np.ascontiguousarray(embeddings, dtype=np.float32))
        self._owner_ids: list[str] = [] if owners is None else list(owners)
        self._reindex()

    def _reindex(self) -> None:
        ids = sorted(set(self._owner_ids))
        position = {cid: i for i, cid in enumerate(ids)}
        self._ids = ids
        self._owners = np.fromiter((position[c] for c in self._owner_ids), dtype=np.int64,
                                   count=len(self._owner_ids))
        self._sq_norms = np.einsum('ij,ij->i', self._embeddings, self._embeddings)

    def __len__(self) -> int:
        return len(self.members)

    @property
    def embedding_count(self) -> int:
        return len(self._owner_ids)

    # --- changes -------------------------------------------------------------------------------
    def enroll(self, customer_id: str, name: str, vip: bool, consent_ref: str,
               encodings: np.ndarray, now: float | None = None, walk_in: np.ndarray | None = None) -> Member:
        """Add a member (or replace a member's embeddings and consent). Refuses without consent.

        `walk_in`: rows derived from the same photos as a far camera sees them
        (face_model.walk_in_encoding); stored after the photo rows, searched like them, but not
        held to the same-person check (a far copy drifts from every sharp photo) nor counted as
        photos."""
        if not consent_ref.strip():
            raise GalleryError(f'refusing to enrol {customer_id}: no consent reference')
        if not customer_id.strip():
            raise GalleryError('refusing to enrol: empty customer id')
        encodings = np.asarray(encodings, dtype=np.float32).reshape(-1, EMBEDDING_SIZE)
        if not len(encodings):
            raise GalleryError(f'refusing to enrol {customer_id}: no face encodings')
        check_one_person(customer_id, encodings)
        derived = _rows(walk_in)
        now = time.time() if now is None else now
        stamp = now if clock_trusted(now) else 0.0          # a wrong clock stamps nothing (re-stamped later)
        self._drop_rows(customer_id)
        member = Member(customer_id, name, bool(vip), consent_ref, stamp, stamp, len(encodings), len(derived))
        self.members[customer_id] = member
        self._append_rows(customer_id, np.concatenate([encodings, derived]))
        return member

    def add_photos(self, customer_id: str, encodings: np.ndarray, walk_in: np.ndarray | None = None) -> Member:
        """More embeddings of an enrolled member (same person, new photos); GalleryError if unknown.
        The member's rows stay photo rows first, then walk-in rows."""
        member = self.members.get(customer_id)
        if member is None:
            raise GalleryError(f'cannot add photos: no member {customer_id!r}')
        encodings = np.asarray(encodings, dtype=np.float32).reshape(-1, EMBEDDING_SIZE)
        photos, old_walk_in = self.photo_rows_of(customer_id), self.walk_in_rows_of(customer_id)
        check_one_person(customer_id, np.concatenate([photos, encodings]))
        derived = _rows(walk_in)
        member = replace(member, embeddings=len(photos) + len(encodings),
                         walk_in_rows=len(old_walk_in) + len(derived))
        self.members[customer_id] = member
        self._drop_rows(customer_id)
        self._append_rows(customer_id, np.concatenate([photos, encodings, old_walk_in, derived]))
        return member

    def _append_rows(self, customer_id: str, rows: np.ndarray) -> None:
        self._embeddings = np.concatenate([self._embeddings, rows])
        self._owner_ids.extend([customer_id] * len(rows))
        self._reindex()

    def delete(self, customer_id: str) -> bool:
        """Remove a member and all their embeddings; False if unknown."""
        if customer_id not in self.members:
            return False
        del self.members[customer_id]
        self._drop_rows(customer_id)
        self._reindex()
        return True

    def _drop_rows(self, customer_id: str) -> None:
        keep = np.array([c != customer_id for c in self._owner_ids], dtype=bool)
        if keep.all():
            return
        self._embeddings = np.ascontiguousarray(self._embeddings[keep])
        self._owner_ids = [c for c, k in zip(self._owner_ids, keep) if k]

    def implausible(self, now: float) -> list[str]:
        """Members with a stamp outside the plausible window (see the module docstring)."""
        return sorted(cid for cid, m in self.members.items()
                      if not (stamp_plausible(m.enrolled_at, now) and stamp_plausible(m.last_seen, now)))

    def restamp(self, now: float) -> list[str]:
        """Give implausible stamps the time `now` (only when `now` itself is trusted); their ids."""
        if not clock_trusted(now):
            return []
        flagged = self.implausible(now)
        for cid in flagged:
            m = self.members[cid]
            self.members[cid] = replace(m, enrolled_at=m.enrolled_at if stamp_plausible(m.enrolled_at, now) else now,
                                        last_seen=m.last_seen if stamp_plausible(m.last_seen, now) else now)
        return flagged

    def purge(self, older_than_days: float, now: float | None = None, clock_checked: bool = False) -> list[str]:
        """Delete members not seen for `older_than_days`; returns their ids.

        Refuses (GalleryClockError) while the clock reads before CLOCK_FLOOR; implausible stamps
        are re-stamped with `now` first, so a wrong clock at enrolment never erases a member
        early nor keeps one forever. Refuses too when the clock is more than
        `older_than_days + CLOCK_JUMP_MARGIN_DAYS` past the newest stamp of the gallery (a clock
        set forward, e.g. to 2036, would erase every member), unless `clock_checked` says a
        person checked the clock (a robot switched off for that long)."""
        now = time.time() if now is None else now
        if not clock_trusted(now):
            raise GalleryClockError(f'the clock reads {time.strftime("%Y-%m-%d", time.gmtime(max(now, 0)))}, before '
                                    f'{time.strftime("%Y-%m-%d", time.gmtime(CLOCK_FLOOR))}: refusing to purge '
                                    '(set the robot\'s clock, e.g. NTP, then purge)')
        self.restamp(now)
        if self.members and not clock_checked:
            newest = max(max(m.enrolled_at, m.last_seen) for m in self.members.values())
            if now - newest > (older_than_days + CLOCK_JUMP_MARGIN_DAYS) * DAY_S:
                raise GalleryClockError(
                    f'the clock reads {time.strftime("%Y-%m-%d", time.gmtime(now))} but the newest record is '
                    f'from {time.strftime("%Y-%m-%d", time.gmtime(newest))}: every member would be erased '
                    '(a clock set forward?); check the robot\'s clock, then purge with --clock-checked')
        cutoff = now - older_than_days * DAY_S
        stale = [cid for cid, m in self.members.items() if m.last_seen < cutoff]
        if stale:
            gone = set(stale)
            for cid in stale:
                del self.members[cid]
            keep = np.array([c not in gone for c in self._owner_ids], dtype=bool)
            self._embeddings = np.ascontiguousarray(self._embeddings[keep])
            self._owner_ids = [c for c, k in zip(self._owner_ids, keep) if k]
            self._reindex()
        return stale

    def touch(self, customer_id: str, when: float) -> None:
        """Record that a member was seen (retention counts from here)."""
        member = self.members.get(customer_id)
        if member is None or not clock_trusted(when):
            return
        if when > member.last_seen or not stamp_plausible(member.last_seen, when):
            self.members[customer_id] = replace(member, last_seen=when)

    # --- search --------------------------------------------------------------------------------
    def distances(self, encoding: np.ndarray) -> np.ndarray:
        """Euclidean distance from `encoding` to every stored embedding (row order)."""
        query = np.asarray(encoding, dtype=np.float32).ravel()
        squared = self._sq_norms - 2.0 * (self._embeddings @ query) + float(query @ query)
        return np.sqrt(np.maximum(squared, 0.0))

    def search(self, encoding: np.ndarray, threshold: float, margin: float = 0.0) -> Match:
        """Best member within `threshold`, accepted only if the next member is `margin` further."""
        if not len(self._owner_ids):
            return Match(None, float('inf'), float('inf'), None)
        dist = self.distances(encoding)
        k = min(8, len(dist))
        nearest = np.argpartition(dist, k - 1)[:k] if k < len(dist) else np.arange(len(dist))
        nearest = nearest[np.argsort(dist[nearest])]
        best_row = nearest[0]
        best_owner = self._owners[best_row]
        others = nearest[self._owners[nearest] != best_owner]
        if len(others):
            second = float(dist[others[0]])
        else:  # all k nearest rows belong to the best member: look at the rest
            rest = dist[self._owners != best_owner]
            second = float(rest.min()) if rest.size else float('inf')
        best = float(dist[best_row])
        best_id = self._ids[best_owner]
        accepted = best <= threshold and second - best >= margin
        return Match(best_id if accepted else None, best, second, best_id)

    def embeddings_of(self, customer_id: str) -> np.ndarray:
        """All rows of a member (photo rows, then walk-in rows), as searched and stored."""
        rows = [i for i, c in enumerate(self._owner_ids) if c == customer_id]
        return self._embeddings[rows]

    def photo_rows_of(self, customer_id: str) -> np.ndarray:
        """A member's rows encoded from their photos / frames as they were (no walk-in rows)."""
        rows = self.embeddings_of(customer_id)
        member = self.members.get(customer_id)
        extra = min(member.walk_in_rows, len(rows)) if member is not None else 0
        return rows[:len(rows) - extra]

    def walk_in_rows_of(self, customer_id: str) -> np.ndarray:
        rows = self.embeddings_of(customer_id)
        return rows[len(self.photo_rows_of(customer_id)):]

    # --- serialisation -------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        meta = json.dumps({'members': [asdict(m) for m in self.members.values()],
                           'owners': self._owner_ids}, ensure_ascii=False).encode('utf-8')
        return struct.pack('<Q', len(meta)) + meta + self._embeddings.astype('<f4').tobytes()

    @classmethod
    def from_bytes(cls, blob: bytes) -> 'Gallery':
        (size,) = struct.unpack_from('<Q', blob)
        meta = json.loads(blob[8:8 + size].decode('utf-8'))
        matrix = np.frombuffer(blob[8 + size:], dtype='<f4').reshape(-1, EMBEDDING_SIZE)
        members = {m['customer_id']: Member(**m) for m in meta['members']}
        return cls(members, matrix.astype(np.float32), meta['owners'])


class _KeyTable:
    """The wrapped data keys: {key id: 32-byte key}, encrypted with the master key.

    Kept in two slot files (`keys.0`, `keys.1`), each overwritten *in place* (same blocks, the
    tail zeroed before a file shrinks), never replaced by a rename: a key dropped from the table
    is gone from the disk, which is what makes a deletion an erasure (crypto-erasure). A slot
    holds a sequence number; the newest slot that decrypts is the table, so a write torn by a
    power cut leaves the other slot in charge.
    """

    SLOTS = ('keys.0', 'keys.1')
    MAGIC = b'RBKEY1\n'

    def __init__(self, directory: Path, aead, legacy: Path | None = None):
        """`directory`: the key ring folder; `legacy`: where older versions kept the slots (the
        gallery folder itself): read when the ring is empty, scrubbed after the next write."""
        self.directory, self._aead, self.legacy = directory, aead, legacy

    def _read_slot(self, name: str) -> tuple[int, dict[str, bytes]] | None:
        from cryptography.exceptions import InvalidTag
        try:
            blob = (self.directory / name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise GalleryError(f'cannot read gallery keys {self.directory / name}: {exc.strerror}') from None
        head = len(self.MAGIC) + 8 + 12
        if not blob.startswith(self.MAGIC) or len(blob) < head + 16:
            return None                      # torn or zeroed: the other slot holds the table
        (seq,) = struct.unpack_from('<Q', blob, len(self.MAGIC))
        try:
            plain = self._aead.decrypt(blob[head - 12:head], blob[head:], blob[:head - 12])
        except InvalidTag:
            return (-1, {})                   # wrong key (or damage): told apart by read()
        keys = {kid: bytes.fromhex(k) for kid, k in json.loads(plain.decode('utf-8')).items()}
        return seq, keys

    def _legacy_present(self) -> bool:
        return self.legacy is not None and any((self.legacy / name).exists() for name in self.SLOTS)

    def read(self) -> tuple[int, dict[str, bytes], bool]:
        """(sequence, keys, settled): settled is False when the slots disagree (a write was cut)."""
        slots = [self._read_slot(name) for name in self.SLOTS]
        if all(s is None for s in slots) and self._legacy_present():
            ring, self.directory = self.directory, self.legacy
            try:
                slots = [self._read_slot(name) for name in self.SLOTS]
            finally:
                self.directory = ring
        valid = [s for s in slots if s is not None and s[0] >= 0]
        if not valid:
            if any(s is not None for s in slots):
                raise GalleryKeyError(f'gallery key does not open {self.directory / self.SLOTS[0]} '
                                      '(wrong key or damaged file)')
            return 0, {}, True
        seq, keys = max(valid, key=lambda s: s[0])
        settled = len(valid) == 2 and valid[0][0] == valid[1][0]
        return seq, keys, settled

    def _overwrite(self, name: str, blob: bytes, directory: Path | None = None) -> None:
        path = (directory or self.directory) / name
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            old_size = os.fstat(fd).st_size
            os.pwrite(fd, blob, 0)
            if old_size > len(blob):        # zero what the shorter table no longer covers
                os.pwrite(fd, bytes(old_size - len(blob)), len(blob))
                os.fsync(fd)
                os.ftruncate(fd, len(blob))
            os.fsync(fd)
        finally:
            os.close(fd)

    def write(self, seq: int, keys: dict[str, bytes], slot: int) -> None:
        plain = json.dumps({kid: k.hex() for kid, k in sorted(keys.items())}).encode('utf-8')
        nonce = secrets.token_bytes(12)
        head = self.MAGIC + struct.pack('<Q', seq)
        self._overwrite(self.SLOTS[slot], head + nonce + self._aead.encrypt(nonce, plain, head))

    def replace(self, seq: int, keys: dict[str, bytes]) -> int:
        """Write `keys` as table `seq + 1` into both slots (one after the other); returns the new seq."""
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        seq += 1
        self.write(seq, keys, seq % 2)
        self.write(seq, keys, (seq + 1) % 2)
        self._scrub_legacy()
        return seq

    def _scrub_legacy(self) -> None:
        """Zero and remove slots an older version kept inside the gallery folder (now in the ring)."""
        if not self._legacy_present():
            return
        for name in self.SLOTS:
            path = self.legacy / name
            if path.exists():
                self._overwrite(name, bytes(path.stat().st_size), self.legacy)
                path.unlink()


class GalleryStore:
    """The encrypted gallery folder: load, and change under an exclusive lock with atomic save.

    `gallery.enc` holds an index (no personal data, under the index key) and each member's
    record (under that member's own data key); the data keys live in the key table (`keys.0`/
    `keys.1` in the key ring folder beside the gallery folder, wrapped by the master key,
    overwritten in place). A backup of the gallery folder holds no key. A delete, purge or
    replacement drops the member's data key from the table: their record in the previous
    `gallery.enc` (freed disk blocks, a backup) can no longer be decrypted with the unchanged
    master key; records of members who stay still open with this robot's ring.
    """

    def __init__(self, directory: str | os.PathLike, key: bytes, keys_dir: str | os.PathLike | None = None,
                 clock=time.time):
        """`keys_dir`: the key ring (default `<directory>.keys`, beside the folder, never inside it);
        `clock`: wall time for stamps and re-stamping (time.time)."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        self.directory = Path(directory)
        self.path = self.directory / STORE_NAME
        self.keys_dir = Path(keys_dir) if keys_dir else default_keys_dir(self.directory)
        ring, folder = self.keys_dir.resolve(), self.directory.resolve()
        if ring == folder or folder in ring.parents:
            raise GalleryError(f'the key ring {self.keys_dir} must not be inside the gallery folder {self.directory} '
                               '(a backup of the folder would carry the keys)')
        self.clock = clock
        self._aead = AESGCM(key)
        self._keys = _KeyTable(self.keys_dir, self._aead, legacy=self.directory)
        self._seq = 0
        self._table: dict[str, bytes] = {}
        self._member_keys: dict[str, str] = {}        # customer id -> key id, as last loaded
        self._member_rows: dict[str, bytes] = {}       # customer id -> embeddings as last loaded
        self._meta_key = ''
        self.erased_records = 0                        # records of erased members in the last file loaded

    def signature(self) -> tuple[int, int] | None:
        """(mtime_ns, size) of the store file, to notice changes made by another process."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def load(self) -> Gallery:
        """The current gallery (empty if nothing was enrolled yet)."""
        from cryptography.exceptions import InvalidTag
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            blob = b''
        except OSError as exc:
            raise GalleryError(f'cannot read gallery {self.path}: {exc.strerror}') from None
        self._seq, self._table, _ = self._keys.read()
        self._member_keys, self._member_rows, self._meta_key = {}, {}, ''
        if not blob:
            return Gallery()
        if blob.startswith(MAGIC):                       # a gallery written before data keys
            return self._load_v1(blob)
        head = len(MAGIC_V2) + 16 + 12 + 8
        version = 3 if blob.startswith(MAGIC_V3) else 2 if blob.startswith(MAGIC_V2) else 0
        if not version or len(blob) < head + 16:
            raise GalleryError(f'{self.path} is not a retailbot gallery file')
        magic = MAGIC_V3 if version == 3 else MAGIC_V2
        meta_kid = blob[len(MAGIC_V2):len(MAGIC_V2) + 16].hex()
        nonce = blob[len(MAGIC_V2) + 16:len(MAGIC_V2) + 28]
        (size,) = struct.unpack_from('<Q', blob, len(MAGIC_V2) + 28)
        meta_key = self._table.get(meta_kid)
        if meta_key is None:
            raise GalleryKeyError(f'gallery key does not open {self.path} (its data key is not in the '
                                  'key table: wrong key, or keys.0/keys.1 lost)')
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        try:
            meta = json.loads(AESGCM(meta_key).decrypt(nonce, blob[head:head + size], blob[:len(MAGIC_V2) + 16]))
            body = head + size
            members, matrices, owners = {}, [], []
            self.erased_records = 0
            for record in meta['members']:
                kid = record.pop('key')
                start, length, member_nonce = record.pop('offset'), record.pop('length'), record.pop('nonce')
                if version == 3 and kid not in self._table:
                    self.erased_records += 1       # a deleted member in an old copy: its key is erased
                    continue
                plain = AESGCM(self._table[kid]).decrypt(bytes.fromhex(member_nonce),
                                                         blob[body + start:body + start + length],
                                                         magic + bytes.fromhex(kid))
                if version == 3:
                    (size,) = struct.unpack_from('<Q', plain)
                    member = Member(**json.loads(plain[8:8 + size].decode('utf-8')))
                    rows = plain[8 + size:]
                else:
                    member, rows = Member(**record), plain
                matrix = np.frombuffer(rows, dtype='<f4').reshape(-1, EMBEDDING_SIZE)
                members[member.customer_id] = member
                matrices.append(matrix)
                owners.extend([member.customer_id] * len(matrix))
                self._member_keys[member.customer_id] = kid
                self._member_rows[member.customer_id] = rows
        except (InvalidTag, KeyError, ValueError, TypeError) as exc:
            raise GalleryError(f'{self.path} is damaged ({type(exc).__name__}); restore it from the '
                               'robot\'s backup or enrol the members again') from None
        self._meta_key = meta_kid if version == 3 else ''   # a v2 index names members: never reused
        embeddings = np.concatenate(matrices).astype(np.float32) if matrices else None
        return Gallery(members, embeddings, owners)

    def _load_v1(self, blob: bytes) -> Gallery:
        from cryptography.exceptions import InvalidTag
        if len(blob) < len(MAGIC) + 12 + 16:
            raise GalleryError(f'{self.path} is not a retailbot gallery file')
        nonce = blob[len(MAGIC):len(MAGIC) + 12]
        try:
            plain = self._aead.decrypt(nonce, blob[len(MAGIC) + 12:], MAGIC)
        except InvalidTag:
            raise GalleryKeyError(f'gallery key does not open {self.path} (wrong key or damaged file)') from None
        gallery = Gallery.from_bytes(plain)
        self._member_rows = {cid: gallery.embeddings_of(cid).astype('<f4').tobytes() for cid in gallery.members}
        return gallery

    def _replaced(self, gallery: Gallery) -> set[str]:
        """Members whose stored embeddings saving `gallery` removes (replaced, not just added to)."""
        return {cid for cid, rows in self._member_rows.items() if cid in gallery.members
                and not gallery.embeddings_of(cid).astype('<f4').tobytes().startswith(rows)}

    def save(self, gallery: Gallery) -> None:
        """Encrypt and atomically replace the store (survives kill -9: old or new, never half).

        Format 3: an index (key id, nonce, place of each record; nothing personal) under the
        index key, and each member's record (id, name, VIP, consent, stamps, embeddings) under
        that member's own data key. A member deleted, purged or replaced loses their data key:
        it is dropped from the key ring, so their record opens nowhere any more: not in the
        old file left in freed disk blocks, not in a backup of the gallery folder. Members who
        stay keep their keys, so such a backup still opens them.

        Order: key table with old and new keys, then the new gallery file (atomic rename), then
        the key table with only the new keys. A cut at any point leaves a file its keys open;
        keys left over by a cut are dropped by the next save (every transaction, the faces node at start).
        """
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        replaced = self._replaced(gallery)
        new_key = lambda: (secrets.token_hex(16), secrets.token_bytes(32))  # noqa: E731
        keys: dict[str, bytes] = {}
        meta_kid = self._meta_key
        if not meta_kid or meta_kid not in self._table:
            meta_kid, meta_key = new_key()
            keys[meta_kid] = meta_key
        else:
            keys[meta_kid] = self._table[meta_kid]
        records, blobs, offset = [], [], 0
        member_keys: dict[str, str] = {}
        for cid, member in gallery.members.items():
            kid = self._member_keys.get(cid)
            if cid in replaced or kid is None or kid not in self._table:
                kid, keys[kid] = new_key()
            else:
                keys[kid] = self._table[kid]
            member_keys[cid] = kid
            nonce = secrets.token_bytes(12)
            about = json.dumps(asdict(member), ensure_ascii=False).encode('utf-8')
            plain = struct.pack('<Q', len(about)) + about + gallery.embeddings_of(cid).astype('<f4').tobytes()
            data = AESGCM(keys[kid]).encrypt(nonce, plain, MAGIC_V3 + bytes.fromhex(kid))
            records.append({'key': kid, 'nonce': nonce.hex(), 'offset': offset, 'length': len(data)})
            blobs.append(data)
            offset += len(data)
        meta = json.dumps({'members': records}).encode('utf-8')
        nonce = secrets.token_bytes(12)
        header = MAGIC_V3 + bytes.fromhex(meta_kid)
        meta_data = AESGCM(keys[meta_kid]).encrypt(nonce, meta, header)
        blob = b''.join([header, nonce, struct.pack('<Q', len(meta_data)), meta_data] + blobs)
        self._seq = self._keys.replace(self._seq, {**self._table, **keys})    # old and new keys
        self._write_store(blob)
        self._seq = self._keys.replace(self._seq, keys)                       # the old ones are gone
        self._table, self._meta_key, self._member_keys = keys, meta_kid, member_keys
        self._member_rows = {cid: gallery.embeddings_of(cid).astype('<f4').tobytes() for cid in gallery.members}

    def _write_store(self, blob: bytes) -> None:
        tmp = self.path.with_name(f'.{STORE_NAME}.{os.getpid()}.tmp')
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, 'wb') as handle:
                handle.write(blob)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Gallery]:
        """`with store.transaction() as g:` load under an exclusive lock, save if no exception."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / LOCK_NAME, 'a+b') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            gallery = self.load()
            yield gallery
            gallery.restamp(self.clock())
            self.save(gallery)


def _rows(walk_in: np.ndarray | None) -> np.ndarray:
    if walk_in is None:
        return np.zeros((0, EMBEDDING_SIZE), np.float32)
    return np.asarray(walk_in, dtype=np.float32).reshape(-1, EMBEDDING_SIZE)


def check_one_person(customer_id: str, encodings: np.ndarray) -> None:
    """GalleryError when the face encodings (N x 128) of one enrolment are not all one person."""
    if len(encodings) < 2:
        return
    distances = np.linalg.norm(encodings[:, None, :] - encodings[None, :, :], axis=-1)
    worst = float(distances.max())
    if worst > SAME_PERSON_MAX_DISTANCE:
        raise GalleryError(f'refusing to enrol {customer_id}: the photos show different people (face distance '
                           f'{worst:.2f} > {SAME_PERSON_MAX_DISTANCE}); enrol each person under their own id')
