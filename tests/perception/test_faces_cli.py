"""`retailbot faces ...` as the technician runs it: the real console script, real models."""
from __future__ import annotations

import json
import subprocess

import pytest

from perception_support import CLIP, FACES, photos
from rostest_support import console_script


def faces(*args, check_rc=None) -> subprocess.CompletedProcess:
    # bounded, with room for a loaded 2-core machine (tracking 160 frames runs YuNet on each)
    result = subprocess.run([console_script('retailbot'), 'faces', *map(str, args)],
                            capture_output=True, text=True, timeout=600)
    if check_rc is not None:
        assert result.returncode == check_rc, result.stderr
    return result


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def db(tmp_path, gallery_key):
    return tmp_path / 'gallery'


def test_enroll_identify_list_delete_purge(db, tmp_path):
    faces('enroll', '--db', db, '--id', 'vip-001', '--name', 'Barack', '--vip', '--consent', 'CONSENT-7',
          photos('obama')[0], check_rc=0)
    faces('enroll', '--db', db, '--id', 'm-002', '--name', 'Joe', '--consent', 'CONSENT-8',
          photos('biden')[0], check_rc=0)
    corrupt = tmp_path / 'corrupt.jpg'
    corrupt.write_bytes(b'\xff\xd8\xff\xe0garbage')
    result = faces('identify', '--db', db, '--json', photos('obama')[1], corrupt,
                   FACES / 'enroll' / 'lin-manuel-miranda.png', photos('biden')[1])
    assert result.returncode == 1, 'a skipped image must show in the exit code'
    assert 'corrupt.jpg' in result.stderr and 'Traceback' not in result.stderr
    lines = _json_lines(result.stdout)
    assert [line['image'] for line in lines] == [str(photos('obama')[1]),
                                                 str(FACES / 'enroll' / 'lin-manuel-miranda.png'),
                                                 str(photos('biden')[1])]
    obama, lin, biden = (line['faces'] for line in lines)
    assert len(obama) == 1 and set(obama[0]) == {'box', 'customer_id', 'name', 'vip', 'distance'}
    assert (obama[0]['customer_id'], obama[0]['name'], obama[0]['vip']) == ('vip-001', 'Barack', True)
    assert len(obama[0]['box']) == 4 and 0 <= obama[0]['distance'] <= 0.5
    assert lin == [{'box': lin[0]['box'], 'customer_id': None, 'name': None, 'vip': False, 'distance': None}]
    assert biden[0]['customer_id'] == 'm-002' and biden[0]['vip'] is False

    listed = _json_lines(faces('list', '--db', db, '--json', check_rc=0).stdout)
    assert {m['customer_id']: m['consent_ref'] for m in listed} == {'vip-001': 'CONSENT-7', 'm-002': 'CONSENT-8'}
    assert all('embedding' not in json.dumps(m) for m in listed)

    assert _json_lines(faces('delete', '--db', db, '--id', 'm-002', '--yes', '--json', check_rc=0).stdout) == \
        [{'customer_id': 'm-002', 'deleted': True}]
    again = faces('identify', '--db', db, '--json', photos('biden')[1], check_rc=0)
    assert _json_lines(again.stdout)[0]['faces'][0]['customer_id'] is None
    assert faces('delete', '--db', db, '--id', 'm-002', '--yes').returncode == 1

    assert _json_lines(faces('purge', '--db', db, '--older-than', '30', '--json', check_rc=0).stdout) == \
        [{'purged': [], 'restamped': []}]
    assert _json_lines(faces('purge', '--db', db, '--older-than', '0', '--yes', '--json', check_rc=0).stdout) == \
        [{'purged': ['vip-001'], 'restamped': []}]
    assert 'vip-001' not in faces('list', '--db', db, check_rc=0).stdout


def test_enroll_refuses_without_consent_and_two_face_photos(db):
    result = faces('enroll', '--db', db, '--id', 'x', '--name', 'X', photos('obama')[0])
    assert result.returncode == 2 and '--consent' in result.stderr      # a required option
    result = faces('enroll', '--db', db, '--id', 'x', '--name', 'X', '--consent', ' ', photos('obama')[0])
    assert result.returncode == 1 and '--consent' in result.stderr
    result = faces('enroll', '--db', db, '--id', 'x', '--name', 'X', '--consent', 'C-1',
                   photos('obama')[0], FACES / 'probe' / 'two_people.jpg')
    assert result.returncode == 1
    assert 'two_people.jpg: 2 faces' in result.stderr and 'Traceback' not in result.stderr
    assert not db.exists() or faces('list', '--db', db, '--json', check_rc=0).stdout == '', 'nothing enrolled'


def test_photos_of_two_people_under_one_id_are_refused(db):
    """One id, one person: obama and biden photos together are refused, at enrolment and with --add."""
    result = faces('enroll', '--db', db, '--id', 'm-2', '--name', 'Bob', '--consent', 'C-2',
                   photos('obama')[0], photos('biden')[0])
    assert result.returncode == 1 and 'different people' in result.stderr and 'Traceback' not in result.stderr
    assert not db.exists() or faces('list', '--db', db, '--json', check_rc=0).stdout == '', 'nothing enrolled'
    faces('enroll', '--db', db, '--id', 'm-2', '--name', 'Bob', '--consent', 'C-2', *photos('obama'), check_rc=0)
    result = faces('enroll', '--db', db, '--id', 'm-2', '--name', 'Bob', '--consent', 'C-2', '--add', photos('biden')[0])
    assert result.returncode == 1 and 'different people' in result.stderr


def test_missing_key_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.delenv('RETAILBOT_GALLERY_KEY', raising=False)
    result = faces('list', '--db', tmp_path / 'gallery')
    assert result.returncode == 2
    assert result.stderr.strip().count('\n') == 0 and 'RETAILBOT_GALLERY_KEY' in result.stderr
    key = tmp_path / 'gallery.key'
    faces('keygen', '--key-file', key, check_rc=0)
    assert len(key.read_text().strip()) == 64 and (key.stat().st_mode & 0o777) == 0o600
    result = faces('list', '--db', tmp_path / 'gallery', '--key-file', key)
    assert result.returncode == 2 and 'no gallery folder' in result.stderr, 'a mistyped --db is an error'
    (tmp_path / 'gallery').mkdir()
    faces('list', '--db', tmp_path / 'gallery', '--key-file', key, check_rc=0)


@pytest.mark.parametrize('where', ['file-as-folder', 'read-only'])
def test_keygen_where_no_key_can_be_written_is_one_line(tmp_path, where):
    """Attack (session 12): a key folder that cannot be made printed a 21-line traceback."""
    if where == 'file-as-folder':
        (tmp_path / 'plain').write_text('x')
        key = tmp_path / 'plain' / 'gallery.key'
    else:
        import os
        if os.geteuid() == 0:
            pytest.skip('root writes into a read-only folder')
        (tmp_path / 'ro').mkdir(mode=0o500)
        key = tmp_path / 'ro' / 'gallery.key'
    result = faces('keygen', '--key-file', key)
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert result.stderr.strip().count('\n') == 0 and str(key) in result.stderr, result.stderr
    assert ('is a file, not a folder' if where == 'file-as-folder' else 'cannot create the key file') in result.stderr
    assert not key.exists()


@pytest.mark.slow
def test_track_names_the_performer_in_the_clip(db):
    for person in ('lin-manuel-miranda', 'alex-lacamoire'):
        faces('enroll', '--db', db, '--id', person, '--name', person, '--consent', 'C',
              FACES / 'enroll' / f'{person}.png', check_rc=0)
    lines = _json_lines(faces('track', '--db', db, '--video', CLIP, '--max-frames', 160, '--json',
                              check_rc=0).stdout)
    summary = lines[-1]
    assert set(summary) == {'frames', 'fps', 'detector', 'identities', 'first_named_frame'}
    assert summary['frames'] == 160 and summary['fps'] > 0 and summary['detector'] == 'yunet'
    assert set(summary['identities']) == {'lin-manuel-miranda'}, 'only the performer is on stage'
    assert summary['identities']['lin-manuel-miranda'] >= 40
    # the frame of the first "identified" event of the member, as its event line says
    named = [e for e in lines[:-1] if e['event'] == 'identified' and e['customer_id'] == 'lin-manuel-miranda']
    assert named and summary['first_named_frame'] == {'lin-manuel-miranda': named[0]['frame']}
    assert all(0 <= e['frame'] < 160 for e in lines[:-1])


def test_track_reports_an_unreadable_video(db, tmp_path):
    db.mkdir()
    fake = tmp_path / 'clip.mp4'
    fake.write_bytes(b'not a video')
    result = faces('track', '--db', db, '--video', fake)
    assert result.returncode == 2 and 'clip.mp4' in result.stderr and 'Traceback' not in result.stderr


def test_an_existing_id_is_never_silently_replaced(db):
    """issue 17 item 6: another person's face under the same id needs --replace; --add adds photos."""
    faces('enroll', '--db', db, '--id', 'm-1', '--name', 'Barack', '--consent', 'C-1', photos('obama')[0],
          check_rc=0)
    result = faces('enroll', '--db', db, '--id', 'm-1', '--name', 'Joe', '--consent', 'C-2', photos('biden')[0])
    assert result.returncode == 1
    assert 'already enrolled as Barack' in result.stderr and '--replace' in result.stderr
    member, = _json_lines(faces('list', '--db', db, '--json', check_rc=0).stdout)
    assert (member['name'], member['photos']) == ('Barack', 1), 'the refused enrolment changed nothing'

    faces('enroll', '--db', db, '--id', 'm-1', '--name', 'Barack', '--consent', 'C-1', '--add',
          photos('obama')[1], check_rc=0)
    member, = _json_lines(faces('list', '--db', db, '--json', check_rc=0).stdout)
    assert (member['name'], member['photos']) == ('Barack', 2)
    assert member['walk_in_rows'] == 2, 'each photo adds its walk-in row (face_model.walk_in_encoding)'

    faces('enroll', '--db', db, '--id', 'm-1', '--name', 'Joe', '--consent', 'C-2', '--replace',
          '--no-walk-in-rows', photos('biden')[0], check_rc=0)
    member, = _json_lines(faces('list', '--db', db, '--json', check_rc=0).stdout)
    assert (member['name'], member['photos'], member['consent_ref']) == ('Joe', 1, 'C-2')
    assert member['walk_in_rows'] == 0, '--no-walk-in-rows stores the photo\'s own row only'
    result = faces('enroll', '--db', db, '--id', 'm-9', '--name', 'X', '--consent', 'C', '--add', photos('obama')[0])
    assert result.returncode == 1 and 'not enrolled' in result.stderr


@pytest.mark.parametrize('command', [('delete', '--id', 'm-1'), ('purge', '--older-than', '0')])
def test_erasing_needs_a_confirmation(db, command):
    faces('enroll', '--db', db, '--id', 'm-1', '--name', 'Barack', '--consent', 'C-1', photos('obama')[0],
          check_rc=0)
    result = faces(*command[:1], '--db', db, *command[1:])      # no terminal, no --yes: nothing erased
    assert result.returncode == 1 and '--yes' in result.stderr and 'Traceback' not in result.stderr
    assert 'm-1' in faces('list', '--db', db, check_rc=0).stdout
    faces(*command[:1], '--db', db, *command[1:], '--yes', check_rc=0)
    assert 'm-1' not in faces('list', '--db', db, check_rc=0).stdout


@pytest.mark.parametrize('days', ['-1', '-0.5', 'nan', 'soon'])
def test_purge_refuses_a_negative_or_odd_age(db, days):
    db.mkdir()
    result = faces('purge', '--db', db, '--older-than', days, '--yes')
    assert result.returncode == 2 and '--older-than' in result.stderr and 'Traceback' not in result.stderr


@pytest.mark.parametrize('command', [('list',), ('identify', 'x.jpg'), ('delete', '--id', 'a', '--yes'),
                                     ('purge', '--older-than', '1', '--yes'), ('track', '--video', 'v.mp4')])
def test_a_missing_gallery_folder_is_an_error(tmp_path, gallery_key, command):
    result = faces(command[0], '--db', tmp_path / 'nosuch', *command[1:])
    assert result.returncode == 2
    assert result.stderr.strip() == f'retailbot faces: no gallery folder {tmp_path / "nosuch"} ' \
                                    '(check --db; on the robot it is <data_dir>/faces)'


def huge_png(path, width=20000, height=20000):
    """A valid PNG header claiming width x height pixels with a small, truncated image stream: what
    a 388 KB decompression bomb looks like to a header check (nothing is decoded)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b'\x00' * (width + 1) * 64, 9)
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', body) + chunk(b'IEND', b''))
    return path


def test_identify_reads_the_images_of_a_folder_and_refuses_huge_ones(db, tmp_path):
    faces('enroll', '--db', db, '--id', 'm-1', '--name', 'Barack', '--consent', 'C-1', photos('obama')[0],
          check_rc=0)
    folder = tmp_path / 'photos'
    folder.mkdir()
    (folder / 'a.jpg').write_bytes(photos('obama')[1].read_bytes())
    (folder / 'notes.txt').write_text('not a photo')
    huge_png(folder / 'b-bomb.png')
    result = faces('identify', '--db', db, '--json', folder)
    assert result.returncode == 1, result.stderr          # the huge image is skipped and counted
    lines = _json_lines(result.stdout)
    assert [line['image'] for line in lines] == [str(folder / 'a.jpg')]
    assert lines[0]['faces'][0]['customer_id'] == 'm-1'
    assert 'b-bomb.png: image too large (400 megapixels, limit 64 megapixels); refused before decoding' \
        in result.stderr
    assert 'no such file' not in result.stderr and 'Traceback' not in result.stderr


def test_faces_delete_is_erasure_of_the_old_file_bytes(db, tmp_path, gallery_key):
    """issue 12 item 5, end to end: the gallery file from before `faces delete` (as freed disk
    blocks would keep it) no longer opens with the unchanged key and what is on the disk now."""
    from retail_perception.gallery import GalleryStore, load_key
    for cid, person in (('m-1', 'obama'), ('m-2', 'biden')):
        faces('enroll', '--db', db, '--id', cid, '--name', person, '--consent', 'C', photos(person)[0], check_rc=0)
    old = (db / 'gallery.enc').read_bytes()
    faces('delete', '--db', db, '--id', 'm-2', '--yes', check_rc=0)
    attack = tmp_path / 'recovered'
    attack.mkdir()
    (attack / 'gallery.enc').write_bytes(old)
    ring = GalleryStore(attack, load_key()).keys_dir
    ring.mkdir()
    for slot in ('keys.0', 'keys.1'):
        (ring / slot).write_bytes((GalleryStore(db, load_key()).keys_dir / slot).read_bytes())
    assert sorted(GalleryStore(attack, load_key()).load().members) == ['m-1']      # m-2's record is erased
    assert sorted(GalleryStore(db, load_key()).load().members) == ['m-1']


def test_faces_delete_defeats_a_backup_of_the_faces_folder(db, tmp_path):
    """issue 21 item 15: the faces folder copied before `faces delete` and put back does not open."""
    import shutil
    from retail_perception.gallery import GalleryStore, load_key
    for cid, person in (('m-1', 'obama'), ('m-2', 'biden')):
        faces('enroll', '--db', db, '--id', cid, '--name', person, '--consent', 'C', photos(person)[0], check_rc=0)
    backup = tmp_path / 'backup'
    shutil.copytree(db, backup)
    assert sorted(GalleryStore(backup, load_key(), keys_dir=GalleryStore(db, load_key()).keys_dir).load().members) \
        == ['m-1', 'm-2'], 'control: before the delete the backup opens with the robot\'s key ring'
    faces('delete', '--db', db, '--id', 'm-2', '--yes', check_rc=0)
    shutil.rmtree(db)
    shutil.copytree(backup, db)                                    # restored over the live folder
    listed = _json_lines(faces('list', '--db', db, '--json', check_rc=0).stdout)
    assert [m['customer_id'] for m in listed] == ['m-1'], 'm-2 stays erased; m-1 is restored'
    assert 'biden' not in json.dumps(listed)


@pytest.mark.parametrize('clock, what', [(1000.0, '1970'), (2_090_000_000.0, '2036')])
def test_faces_purge_does_not_trust_a_wrong_clock(db, clock, what):
    """issue 21 item 16: a VIP enrolled while the clock read 1970 (or 2036) is not erased by the
    nightly purge; the stamp is re-stamped now, so retention counts from today."""
    import time
    import numpy as np
    from retail_perception.gallery import GalleryStore, load_key
    with GalleryStore(db, load_key(), clock=lambda: clock).transaction() as gallery:
        gallery.enroll('vip-1', 'VIP', True, 'C-1', np.zeros(128), now=clock)
    assert _json_lines(faces('list', '--db', db, '--json', check_rc=0).stdout)[0]['last_seen'] == 'unknown (clock)'
    result = _json_lines(faces('purge', '--db', db, '--older-than', '365', '--yes', '--json', check_rc=0).stdout)
    assert result == [{'purged': [], 'restamped': ['vip-1']}], what
    member = GalleryStore(db, load_key()).load().members['vip-1']
    assert abs(member.last_seen - time.time()) < 120, what
    assert _json_lines(faces('purge', '--db', db, '--older-than', '365', '--yes', '--json', check_rc=0).stdout) == \
        [{'purged': [], 'restamped': []}]


def test_faces_purge_refuses_a_clock_far_past_every_record_until_it_is_checked(db):
    """Records of early 2026 and a clock reading months later with '--older-than 30': the clock may
    have been set forward; nothing is erased (exit 2, one line) until --clock-checked."""
    import numpy as np
    from retail_perception.gallery import CLOCK_FLOOR, DAY_S, GalleryStore, load_key
    old = CLOCK_FLOOR + DAY_S
    with GalleryStore(db, load_key(), clock=lambda: old).transaction() as gallery:
        gallery.enroll('m-1', 'M', False, 'C-1', np.zeros(128), now=old)
    refused = faces('purge', '--db', db, '--older-than', '30', '--yes', check_rc=2)
    assert 'clock set forward' in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert [m['customer_id'] for m in _json_lines(faces('list', '--db', db, '--json', check_rc=0).stdout)] == ['m-1']
    done = _json_lines(faces('purge', '--db', db, '--older-than', '30', '--yes', '--clock-checked', '--json',
                             check_rc=0).stdout)
    assert done == [{'purged': ['m-1'], 'restamped': []}]
