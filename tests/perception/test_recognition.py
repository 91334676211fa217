"""Recognition on real photos: enrolled people are named (also scaled, dark, mirrored), others not."""
from __future__ import annotations

import pytest

from perception_support import FACES, PEOPLE, VARIANTS
from retail_perception.face_model import EnrollmentError, ImageReadError
from retail_perception.gallery import Gallery

THRESHOLD, MARGIN = 0.5, 0.05


@pytest.fixture(scope='module')
def gallery(enrolment_encodings) -> Gallery:
    gallery = Gallery()
    for person, encoding in enrolment_encodings.items():
        gallery.enroll(person, person.replace('_', ' ').title(), person == 'obama', f'consent-{person}', encoding)
    return gallery


@pytest.mark.parametrize('variant', list(VARIANTS))
@pytest.mark.parametrize('person', PEOPLE)
def test_enrolled_person_is_identified_in_another_photo(gallery, probe_faces, person, variant):
    faces = probe_faces[(person, variant)]
    assert len(faces) == 1, f'{len(faces)} faces found in the {variant} photo of {person}'
    match = gallery.search(faces[0], THRESHOLD, MARGIN)
    assert match.customer_id == person, f'{variant} {person}: best {match.best_id} at {match.distance:.3f}'


def test_person_not_enrolled_stays_unknown(gallery, face_model):
    from retail_perception.face_model import load_bgr
    _, encodings = face_model.faces_in_photo(load_bgr(FACES / 'enroll' / 'lin-manuel-miranda.png'))
    assert len(encodings) == 1
    match = gallery.search(encodings[0], THRESHOLD, MARGIN)
    assert match.customer_id is None


def test_enrolment_photo_with_two_faces_is_refused_naming_it(face_model):
    photo = FACES / 'probe' / 'two_people.jpg'
    with pytest.raises(EnrollmentError, match=r'two_people\.jpg: 2 faces'):
        face_model.enrollment_encoding(photo)


def test_enrolment_photo_without_a_face_is_refused(face_model, tmp_path):
    import cv2
    import numpy as np
    blank = tmp_path / 'wall.png'
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    with pytest.raises(EnrollmentError, match=r'wall\.png: no face'):
        face_model.enrollment_encoding(blank)


def test_corrupt_photo_is_reported(face_model, tmp_path):
    corrupt = tmp_path / 'broken.jpg'
    corrupt.write_bytes(b'\xff\xd8\xff\xe0 not really a jpeg')
    with pytest.raises(ImageReadError, match=r'broken\.jpg: not a readable image'):
        face_model.enrollment_encoding(corrupt)
