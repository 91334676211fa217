"""The encrypted member gallery: consent, search, delete, retention, nothing readable on disk."""
from __future__ import annotations

import numpy as np
import pytest

from retail_perception.gallery import (CLOCK_FLOOR, DAY_S, Gallery, GalleryClockError, GalleryError, GalleryKeyError,
                                       GalleryStore, load_key)

T0 = 1_780_000_000.0            # 2026-05-28: a trusted clock reading
IMAGE_MAGIC = (b'\xff\xd8\xff', b'\x89PNG', b'GIF8', b'RIFF', b'II*\x00', b'MM\x00*')


def _random_gallery(n: int, seed: int = 0) -> tuple[Gallery, np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(0, 0.1, (n, 128)).astype(np.float32)
    gallery = Gallery()
    for i in range(n):
        gallery.enroll(f'c{i}', f'name {i}', i == 0, f'consent-{i}', vectors[i])
    return gallery, vectors


def test_search_agrees_with_face_recognition_face_distance():
    import face_recognition
    gallery, vectors = _random_gallery(300)
    query = vectors[17] + np.random.default_rng(5).normal(0, 0.01, 128).astype(np.float32)
    reference = face_recognition.face_distance(vectors.astype(np.float64), query.astype(np.float64))
    assert np.allclose(gallery.distances(query), reference, atol=1e-4)
    match = gallery.search(query, threshold=0.5)
    assert match.customer_id == 'c17'
    assert match.distance == pytest.approx(reference.min(), abs=1e-4)
    assert match.second_distance == pytest.approx(np.sort(reference)[1], abs=1e-4)


def test_threshold_and_margin_reject_doubtful_matches():
    gallery = Gallery()
    base = np.zeros(128, np.float32)
    gallery.enroll('a', 'A', False, 'c', base)
    gallery.enroll('b', 'B', False, 'c', base + np.eye(128, dtype=np.float32)[0] * 0.06)
    query = base + np.eye(128, dtype=np.float32)[0] * 0.02
    assert gallery.search(query, 0.5, margin=0.0).customer_id == 'a'
    ambiguous = gallery.search(query, 0.5, margin=0.05)
    assert ambiguous.customer_id is None and ambiguous.best_id == 'a'
    far = gallery.search(base + 0.1, 0.5)
    assert far.customer_id is None


def test_second_best_is_another_member_not_another_photo_of_the_same_one():
    gallery = Gallery()
    same = np.zeros((3, 128), np.float32)
    same[1, 0], same[2, 0] = 0.01, 0.02
    gallery.enroll('a', 'A', False, 'c', same)
    gallery.enroll('b', 'B', False, 'c', np.full(128, 0.05, np.float32))
    match = gallery.search(np.zeros(128, np.float32), 0.5, margin=0.1)
    assert match.customer_id == 'a'
    assert match.second_distance == pytest.approx(np.sqrt(128) * 0.05, rel=1e-4)


def test_enrolment_without_consent_is_refused():
    with pytest.raises(GalleryError, match='no consent'):
        Gallery().enroll('c1', 'Li Wei', False, '  ', np.zeros(128))


def test_store_round_trip_delete_and_purge(tmp_path):
    store = GalleryStore(tmp_path / 'db', bytes(range(32)))
    with store.transaction() as gallery:
        gallery.enroll('old', 'Old Member', False, 'C-1', np.ones(128), now=T0)
        gallery.enroll('vip', '王女士', True, 'C-2', np.zeros((2, 128)), now=T0 + 40 * DAY_S)
        gallery.enroll('gone', 'To Delete', False, 'C-3', np.full(128, 0.5), now=T0 + 40 * DAY_S)
    loaded = store.load()
    assert sorted(loaded.members) == ['gone', 'old', 'vip']
    assert loaded.members['vip'].vip and loaded.members['vip'].consent_ref == 'C-2'
    assert loaded.embedding_count == 4

    with store.transaction() as gallery:
        assert gallery.delete('gone') and not gallery.delete('gone')
    loaded = store.load()
    assert 'gone' not in loaded.members and loaded.embedding_count == 3
    assert loaded.search(np.full(128, 0.5), 0.5).best_id != 'gone'

    with store.transaction() as gallery:
        gallery.touch('vip', T0 + 50 * DAY_S)
        assert gallery.purge(30, now=T0 + 60 * DAY_S) == ['old']
    assert sorted(store.load().members) == ['vip']


def test_nothing_readable_in_the_gallery_folder(tmp_path, enrolment_encodings):
    db = tmp_path / 'db'
    store = GalleryStore(db, bytes(range(32)))
    with store.transaction() as gallery:
        for person, encoding in enrolment_encodings.items():
            gallery.enroll(f'id-{person}', person.replace('_', ' ').title(), False, f'consent-{person}',
                           encoding)
    files = [p for p in db.rglob('*') if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        assert not data.startswith(IMAGE_MAGIC), f'{path} looks like an image'
        for person, encoding in enrolment_encodings.items():
            for word in (person, person.replace('_', ' ').title(), f'consent-{person}'):
                for text in (word.encode('utf-8'), word.encode('utf-16-le')):
                    assert text not in data, f'{path} contains {word!r} in plain text'
            for dtype in ('<f4', '<f8', '>f4'):
                assert encoding.astype(dtype)[:4].tobytes() not in data, \
                    f'{path} contains a plain {dtype} embedding of {person}'


def test_missing_or_wrong_key_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv('RETAILBOT_GALLERY_KEY', raising=False)
    with pytest.raises(GalleryKeyError, match='RETAILBOT_GALLERY_KEY'):
        load_key()
    monkeypatch.setenv('RETAILBOT_GALLERY_KEY', 'abc')
    with pytest.raises(GalleryKeyError, match='not 32 bytes'):
        load_key()
    key_file = tmp_path / 'key'
    key_file.write_text('11' * 32 + '\n')
    assert load_key(key_file) == bytes([0x11]) * 32
    with GalleryStore(tmp_path / 'db', bytes(32)).transaction() as gallery:
        gallery.enroll('c', 'C', False, 'ref', np.zeros(128))
    with pytest.raises(GalleryKeyError, match='does not open'):
        GalleryStore(tmp_path / 'db', bytes([1]) * 32).load()


# --- deletion is erasure (issue 12 item 5) ----------------------------------------------------

def _snapshot(db):
    """Every file of the gallery folder and its key ring as bytes: what freed disk blocks may still hold."""
    files = {p.name: p.read_bytes() for p in db.iterdir() if p.is_file()}
    files.update({p.name: p.read_bytes() for p in GalleryStore(db, bytes(32)).keys_dir.iterdir() if p.is_file()})
    return files


def _trial(tmp_path, name, files):
    """A gallery folder with `files` (key slots go to its key ring, beside it)."""
    folder = tmp_path / name
    folder.mkdir()
    ring = GalleryStore(folder, bytes(32)).keys_dir
    ring.mkdir()
    for file, data in files.items():
        ((ring if file.startswith('keys.') else folder) / file).write_bytes(data)
    return folder


@pytest.mark.parametrize('erase', ['delete', 'purge', 'replace'])
def test_old_gallery_bytes_cannot_be_read_after_an_erasure(tmp_path, erase):
    """The old gallery.enc survives in freed blocks; the key is unchanged; the key slots were
    overwritten in place. With everything on the disk now, the old file does not open."""
    key = bytes(range(32))
    db = tmp_path / 'db'
    store = GalleryStore(db, key)
    with store.transaction() as gallery:
        gallery.enroll('keep', 'Keep Me', False, 'C-1', np.ones(128), now=T0 + 100 * DAY_S)
        gallery.enroll('gone', 'Forget Me', True, 'C-2', np.full((2, 128), 0.5), now=T0)
    before = _snapshot(db)
    ring = store.keys_dir
    inodes = {slot: (ring / slot).stat().st_ino for slot in ('keys.0', 'keys.1')}
    with store.transaction() as gallery:
        if erase == 'delete':
            gallery.delete('gone')
        elif erase == 'purge':
            assert gallery.purge(30, now=T0 + 100 * DAY_S) == ['gone']
        else:
            gallery.enroll('gone', 'Someone Else', False, 'C-3', np.zeros(128))
    after = _snapshot(db)
    assert sorted(GalleryStore(db, key).load().members) == sorted({'keep', 'gone'} if erase == 'replace' else {'keep'})
    assert {slot: (ring / slot).stat().st_ino for slot in inodes} == inodes, 'key slots must be rewritten in place'

    # Control: the old file with the old key table opens (the test can see a failure).
    control = GalleryStore(_trial(tmp_path, 'control', {'gallery.enc': before['gallery.enc'],
                                                         'keys.0': before['keys.0'], 'keys.1': before['keys.1']}), key)
    assert control.load().members['gone'].name == 'Forget Me'
    # The old file with the key table on the disk now: the erased member's record opens nowhere
    # (the member who stays still does: they are a member).
    for slots in ({'keys.0': after['keys.0']}, {'keys.0': after['keys.1']}, after):
        files = {'gallery.enc': before['gallery.enc'], **{k: v for k, v in slots.items() if k.startswith('keys')}}
        old = GalleryStore(_trial(tmp_path, f'attack-{len(list(tmp_path.iterdir()))}', files), key)
        assert sorted(old.load().members) == ['keep'] and old.erased_records == 1
    # No data key of the old table is left in the new one.
    assert before['keys.0'] != after['keys.0'] and before['keys.1'] != after['keys.1']


def test_key_slots_are_overwritten_in_place_never_renamed(tmp_path):
    key = bytes(range(32))
    db = tmp_path / 'db'
    store = GalleryStore(db, key)
    with store.transaction() as gallery:
        for i in range(20):
            gallery.enroll(f'm-{i}', f'Member {i}', False, 'C', np.full(128, i / 20.0))
    ring = store.keys_dir
    inodes = {slot: (ring / slot).stat().st_ino for slot in ('keys.0', 'keys.1')}
    with store.transaction() as gallery:
        for i in range(15):
            gallery.delete(f'm-{i}')
    assert {slot: (ring / slot).stat().st_ino for slot in inodes} == inodes
    assert sorted(GalleryStore(db, key).load().members) == [f'm-{i}' for i in range(15, 20)]


def test_a_cut_key_write_leaves_a_readable_gallery(tmp_path):
    """Power cut while a key slot is written: the other slot still opens the gallery."""
    key = bytes(range(32))
    db = tmp_path / 'db'
    with GalleryStore(db, key).transaction() as gallery:
        gallery.enroll('a', 'A', False, 'C', np.ones(128))
    ring = GalleryStore(db, key).keys_dir
    for slot in ('keys.0', 'keys.1'):
        saved = (ring / slot).read_bytes()
        (ring / slot).write_bytes(saved[:len(saved) // 2])        # torn
        assert sorted(GalleryStore(db, key).load().members) == ['a']
        (ring / slot).write_bytes(saved)


def test_a_wrong_key_is_told_apart_from_a_damaged_file(tmp_path):
    db = tmp_path / 'db'
    with GalleryStore(db, bytes(32)).transaction() as gallery:
        gallery.enroll('a', 'A', False, 'C', np.ones(128))
    with pytest.raises(GalleryKeyError, match='does not open'):
        GalleryStore(db, bytes([7]) * 32).load()
    blob = bytearray((db / 'gallery.enc').read_bytes())
    blob[-5] ^= 0xFF
    (db / 'gallery.enc').write_bytes(bytes(blob))
    with pytest.raises(GalleryError, match='damaged'):
        GalleryStore(db, bytes(32)).load()


# --- deletion reaches backups of the gallery folder (issue 21 item 15) --------------------------

def _backup(db, to):
    import shutil
    shutil.copytree(db, to)
    return to


def _restore(backup, db):
    """Put a backup of the gallery folder back in place (the key ring beside it stays the robot's)."""
    import shutil
    shutil.rmtree(db)
    shutil.copytree(backup, db)


@pytest.mark.parametrize('erase', ['delete', 'purge', 'replace'])
def test_a_backup_of_the_gallery_folder_made_before_an_erasure_no_longer_opens_the_member(tmp_path, erase):
    """issue 21 item 15: per-member data keys, kept beside the folder, erased on delete/purge/replace."""
    key = bytes(range(32))
    db = tmp_path / 'faces'
    store = GalleryStore(db, key)
    with store.transaction() as gallery:
        gallery.enroll('keep', 'Keep Me', False, 'C-1', np.ones(128), now=T0 + 100 * DAY_S)
        gallery.enroll('gone', 'Forget Me', True, 'C-2', np.full((2, 128), 0.5), now=T0)
    assert not list(db.glob('keys*')), 'no key inside the gallery folder'
    backup = _backup(db, tmp_path / 'backup-before')
    # Control: restored before the erasure, the backup opens (the test can see a failure).
    _restore(backup, db)
    assert GalleryStore(db, key).load().members['gone'].name == 'Forget Me'
    with GalleryStore(db, key).transaction() as gallery:
        if erase == 'delete':
            gallery.delete('gone')
        elif erase == 'purge':
            assert gallery.purge(30, now=T0 + 100 * DAY_S) == ['gone']
        else:
            gallery.enroll('gone', 'Someone Else', False, 'C-3', np.zeros(128), now=T0 + 100 * DAY_S)
    # The backup put back in place, with the robot's key ring and the unchanged master key: the
    # erased member's record does not open; the member who stays does (the backup still serves).
    _restore(backup, db)
    restored = GalleryStore(db, key)
    assert sorted(restored.load().members) == ['keep'] and restored.erased_records == 1
    assert restored.load().search(np.full(128, 0.5), 0.5).best_id == 'keep'
    # ... and elsewhere nothing opens (a copy of the folder holds no key at all).
    with pytest.raises(GalleryError):
        GalleryStore(_backup(backup, tmp_path / 'elsewhere' / 'faces'), key).load()
    for path in backup.rglob('*'):
        if path.is_file():
            for word in (b'Forget Me', b'C-2', b'gone'):
                assert word not in path.read_bytes()


def test_the_key_ring_must_not_live_inside_the_gallery_folder(tmp_path):
    with pytest.raises(GalleryError, match='must not be inside'):
        GalleryStore(tmp_path / 'faces', bytes(32), keys_dir=tmp_path / 'faces' / 'keys')
    with pytest.raises(GalleryError, match='must not be inside'):
        GalleryStore(tmp_path / 'faces', bytes(32), keys_dir=tmp_path / 'faces')


def test_a_gallery_with_its_keys_inside_the_folder_moves_them_to_the_ring_and_scrubs_them(tmp_path):
    """Galleries written before the key ring kept keys.0/keys.1 in the folder: still read, moved on the next save."""
    key = bytes(range(32))
    db = tmp_path / 'faces'
    store = GalleryStore(db, key)
    with store.transaction() as gallery:
        gallery.enroll('a', 'A', False, 'C', np.ones(128))
    for slot in ('keys.0', 'keys.1'):
        (store.keys_dir / slot).rename(db / slot)             # the old layout
    store.keys_dir.rmdir()
    assert sorted(GalleryStore(db, key).load().members) == ['a']
    with GalleryStore(db, key).transaction() as gallery:
        gallery.enroll('b', 'B', False, 'C', np.zeros(128))
    assert not list(db.glob('keys*')), 'the old slots are removed from the folder'
    assert sorted(p.name for p in store.keys_dir.iterdir()) == ['keys.0', 'keys.1']
    assert sorted(GalleryStore(db, key).load().members) == ['a', 'b']


# --- retention does not trust a wrong clock (issue 21 item 16) ----------------------------------

YEAR = 365 * DAY_S


@pytest.mark.parametrize('stamp, what', [
    (0.0, 'clock at the epoch (1970)'),
    (T0 - 5 * YEAR, 'clock years behind (2021)'),
    (CLOCK_FLOOR - 1.0, 'a second before the floor'),
    (2_090_000_000.0, 'clock ahead (2036)'),
    (T0 + 2 * DAY_S, 'two days in the future'),
])
def test_a_stamp_from_a_wrong_clock_is_re_stamped_never_erased_early_nor_kept_forever(stamp, what):
    gallery = Gallery()
    gallery.enroll('vip', 'VIP', True, 'C', np.zeros(128), now=T0 - 10 * DAY_S)
    from dataclasses import replace
    gallery.members['vip'] = replace(gallery.members['vip'], enrolled_at=stamp, last_seen=stamp)
    assert gallery.implausible(T0) == ['vip'], what
    assert gallery.purge(365, now=T0) == [], what                 # not erased for a wrong clock
    assert gallery.members['vip'].last_seen == T0 and gallery.members['vip'].enrolled_at == T0
    assert gallery.implausible(T0) == []
    assert gallery.purge(365, now=T0 + 364 * DAY_S) == [], what
    assert gallery.purge(365, now=T0 + 366 * DAY_S) == ['vip'], what   # ... and it still expires


def test_a_member_enrolled_while_the_clock_read_1970_gets_no_stamp_and_is_kept():
    gallery = Gallery()
    gallery.enroll('vip', 'VIP', True, 'C', np.zeros(128), now=1000.0)
    assert gallery.members['vip'].enrolled_at == 0.0 and gallery.members['vip'].last_seen == 0.0
    gallery.touch('vip', 2000.0)                                     # a wrong clock stamps nothing
    assert gallery.members['vip'].last_seen == 0.0
    assert gallery.purge(365, now=T0) == [] and gallery.members['vip'].last_seen == T0


def test_purge_refuses_while_the_clock_reads_before_the_floor():
    gallery = Gallery()
    gallery.enroll('m', 'M', False, 'C', np.zeros(128), now=T0)
    for now in (0.0, 1000.0, CLOCK_FLOOR - 1.0):
        with pytest.raises(GalleryClockError, match='refusing to purge'):
            gallery.purge(0, now=now)
    assert list(gallery.members) == ['m']


def test_a_trusted_touch_repairs_a_future_last_seen():
    gallery = Gallery()
    gallery.enroll('m', 'M', False, 'C', np.zeros(128), now=T0)
    from dataclasses import replace
    gallery.members['m'] = replace(gallery.members['m'], last_seen=2_090_000_000.0)
    gallery.touch('m', T0 + DAY_S)
    assert gallery.members['m'].last_seen == T0 + DAY_S


def test_a_saved_gallery_re_stamps_with_the_stores_clock(tmp_path):
    db = tmp_path / 'faces'
    with GalleryStore(db, bytes(32), clock=lambda: 1000.0).transaction() as gallery:
        gallery.enroll('m', 'M', False, 'C', np.zeros(128), now=1000.0)
    assert GalleryStore(db, bytes(32)).load().members['m'].last_seen == 0.0     # untrusted: left unknown
    with GalleryStore(db, bytes(32), clock=lambda: T0).transaction():
        pass
    assert GalleryStore(db, bytes(32)).load().members['m'].last_seen == T0


@pytest.mark.parametrize('now, older_than, refused', [
    (T0 + 10 * 365 * DAY_S, 365, True),          # the clock set forward to 2036: every member would go
    (T0 + (365 + 36) * DAY_S, 365, True),        # a month past the whole retention: a jump, not a visit
    (T0 + (365 + 30) * DAY_S, 365, False),       # within the margin: an hourly purge's normal work
    (T0 + 40 * DAY_S, 0, True),                  # '--older-than 0' still refuses a clock far past every record
    (T0 + DAY_S, 0, False),
])
def test_purge_refuses_a_clock_set_forward_past_every_record(now, older_than, refused):
    """issue 21 item 16, the other direction: a clock reading 2036 on a robot whose newest record is
    of 2026 would erase every member; the purge refuses unless a person checked the clock."""
    gallery = Gallery()
    gallery.enroll('a', 'A', False, 'C', np.zeros(128), now=T0 - 10 * DAY_S)
    gallery.enroll('b', 'B', True, 'C', np.ones(128), now=T0)
    if refused:
        with pytest.raises(GalleryClockError, match='clock set forward'):
            gallery.purge(older_than, now=now)
        assert sorted(gallery.members) == ['a', 'b']
        assert sorted(gallery.purge(older_than, now=now, clock_checked=True)) == ['a', 'b']
    else:
        assert gallery.purge(older_than, now=now) == sorted(
            cid for cid, m in {'a': T0 - 10 * DAY_S, 'b': T0}.items() if m < now - older_than * DAY_S)
