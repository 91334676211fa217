"""Perception test data and session fixtures (re-exported by conftest.py): real face models, photos encoded once per session."""
from __future__ import annotations

import secrets
from pathlib import Path

import cv2
import numpy as np
import pytest

FACES = Path(__file__).resolve().parent.parent / 'data' / 'faces'
TRAIN = FACES / 'train'
CLIP = FACES / 'video' / 'short_hamilton_clip.mp4'
# The people of train/ with a second photo to identify them by (the first photo enrols them).
PEOPLE = sorted(p.name for p in TRAIN.iterdir() if len(list(p.iterdir())) >= 2)
VARIANTS = {
    'original': lambda img: img,
    'scaled down': lambda img: cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
    'darkened': lambda img: cv2.convertScaleAbs(img, alpha=0.45, beta=0),
    'mirrored': lambda img: cv2.flip(img, 1),
}


def photos(person: str) -> list[Path]:
    return sorted((TRAIN / person).iterdir())


@pytest.fixture(scope='session')
def face_model():
    from retail_perception.face_model import FaceModel
    return FaceModel()


@pytest.fixture(scope='session')
def enrolment_encodings(face_model) -> dict[str, np.ndarray]:
    """Every train/ person's first photo, encoded once: {person: (128,)}."""
    return {person.name: face_model.enrollment_encoding(photos(person.name)[0])
            for person in sorted(TRAIN.iterdir())}


@pytest.fixture(scope='session')
def probe_faces(face_model) -> dict[tuple[str, str], list[np.ndarray]]:
    """Encodings of the faces in the other photos of each person, in every variant."""
    from retail_perception.face_model import load_bgr
    found = {}
    for person in PEOPLE:
        image = load_bgr(photos(person)[1])
        for variant, change in VARIANTS.items():
            found[(person, variant)] = list(face_model.faces_in_photo(change(image))[1])
    return found


@pytest.fixture(scope='session')
def session_key() -> str:
    return secrets.token_hex(32)


@pytest.fixture
def gallery_key(session_key, monkeypatch) -> str:
    """$RETAILBOT_GALLERY_KEY set for this test (and the subprocesses it starts)."""
    monkeypatch.setenv('RETAILBOT_GALLERY_KEY', session_key)
    return session_key
