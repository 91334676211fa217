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
    assert warnings == [f'skipping unreadable image {tmp_path / "b.jpg"}'], 'reported exactly once'


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
