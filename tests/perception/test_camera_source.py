"""Frame sources: video files, image folders (looping, bad photos skipped), lost camera + reconnect."""
from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from perception_support import CLIP, FACES
from retail_perception.camera_source import (CameraSource, ImageFolderSource, SourceError, VideoSource,
                                             describe_source, open_source)


def test_video_file_frames_and_loop():
    video = VideoSource(str(CLIP), loop=True)
    first = video.read()
    assert first.shape == (360, 640, 3)
    for _ in range(274):
        video.read()
    assert np.array_equal(video.read(), first), 'the 276th frame should be the first again'


def test_video_without_loop_ends():
    video = VideoSource(str(CLIP), loop=False)
    with pytest.raises(EOFError):
        for _ in range(300):
            video.read()


def test_unreadable_video_is_reported(tmp_path):
    fake = tmp_path / 'clip.mp4'
    fake.write_bytes(b'definitely not a video')
    with pytest.raises(SourceError, match='clip.mp4'):
        VideoSource(str(fake)).read()
    with pytest.raises(SourceError, match='no such file'):
        VideoSource(str(tmp_path / 'missing.mp4'))


def test_image_folder_loops_holds_and_skips_bad_photos(tmp_path):
    for name in ('a.png', 'c.png'):
        shutil.copy(FACES / 'enroll' / ('alex-lacamoire.png' if name == 'a.png' else 'lin-manuel-miranda.png'),
                    tmp_path / name)
    (tmp_path / 'b.jpg').write_bytes(b'\xff\xd8 broken')
    (tmp_path / 'notes.txt').write_text('ignored')
    warnings = []
    source = open_source(str(tmp_path), hold_frames=2, warn=warnings.append)
    assert isinstance(source, ImageFolderSource)
    shapes = [source.read().shape for _ in range(6)]
    alex, lin = cv2.imread(str(tmp_path / 'a.png')).shape, cv2.imread(str(tmp_path / 'c.png')).shape
    assert shapes == [alex, alex, lin, lin, alex, alex]
    assert warnings == [f'skipping image: {tmp_path / "b.jpg"}: not a readable image (corrupt or unsupported '
                        'format)'], 'reported exactly once'


def test_lost_camera_is_reported_and_reconnects(tmp_path):
    now = [0.0]
    folder = tmp_path / 'camera'
    camera = CameraSource(str(folder), reconnect_s=2.0, clock=lambda: now[0])
    assert camera.read() is None
    assert not camera.status.connected and 'camera lost' in camera.status.message
    folder.mkdir()
    shutil.copy(FACES / 'enroll' / 'alex-lacamoire.png', folder / 'a.png')
    assert camera.read() is None, 'retried before reconnect_s passed'
    now[0] = 2.5
    assert camera.read() is not None
    assert camera.status.connected and camera.status.reconnects == 1


def test_sources_are_described_without_credentials():
    assert describe_source('0') == 'camera device 0'
    assert describe_source('rtsp://admin:secret@10.0.0.5/stream') == 'stream 10.0.0.5/stream'


def test_a_photo_replaced_while_shown_is_shown_at_once(tmp_path):
    """The demo (and a technician) swap the replayed photo; a long image_period_s must not delay it."""
    import os
    folder = tmp_path / 'stage'
    folder.mkdir()
    cv2.imwrite(str(folder / 'frame.png'), np.full((20, 30, 3), 10, np.uint8))
    source = ImageFolderSource(folder, hold_frames=10_000)
    assert source.read()[0, 0, 0] == 10 and source.read()[0, 0, 0] == 10
    cv2.imwrite(str(folder / '.next.png'), np.full((20, 30, 3), 200, np.uint8))
    os.replace(folder / '.next.png', folder / 'frame.png')
    assert source.read()[0, 0, 0] == 200


def test_the_default_simulated_replay_shows_each_shopper_then_an_empty_aisle():
    """issue 12 item 11: no shopper 'appears' and 'leaves' every two seconds in simulation."""
    import yaml
    from rostest_support import REPO
    config = yaml.safe_load((REPO / 'config' / 'perception.yaml').read_text())['perception/camera']['ros__parameters']
    assert config['image_period_s'] >= 15.0, 'a shopper stands in front of the robot for a while'
    folder = REPO / 'src' / 'perception' / 'sim_camera'
    names = [p.name for p in ImageFolderSource(folder).paths]
    people = ['alex-lacamoire.png', 'lin-manuel-miranda.png']
    assert [n for n in names if n in people] == people
    for a, b in zip(names, names[1:] + names[:1]):      # looping: never two people back to back
        assert not (a in people and b in people), names
