"""sensor_msgs/Image conversion without cv_bridge: encodings, row padding, bad messages."""
import numpy as np
import pytest

from retail_perception.image_convert import (ImageConversionError, decode_fields, encode_fields,
                                             from_image_msg, to_image_msg)


def _frame(h=4, w=5):
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_bgr_round_trip_through_a_real_message():
    frame = _frame()
    msg = to_image_msg(frame, frame_id='camera')
    assert (msg.height, msg.width, msg.encoding, msg.step) == (4, 5, 'bgr8', 15)
    assert msg.header.frame_id == 'camera' and msg.is_bigendian == 0
    assert np.array_equal(from_image_msg(msg), frame)


def test_rgb8_and_mono8_become_bgr():
    frame = _frame()
    rgb = np.ascontiguousarray(frame[:, :, ::-1])
    assert np.array_equal(decode_fields(4, 5, 'rgb8', 15, rgb.tobytes()), frame)
    gray = frame[:, :, 0]
    out = decode_fields(4, 5, 'mono8', 5, gray.tobytes())
    assert out.shape == (4, 5, 3) and np.array_equal(out[:, :, 2], gray)
    assert encode_fields(gray)[2:4] == ('mono8', 5)


def test_padded_rows_are_cropped_by_step():
    frame = _frame()
    padded = np.zeros((4, 20), np.uint8)
    padded[:, :15] = frame.reshape(4, 15)
    assert np.array_equal(decode_fields(4, 5, 'bgr8', 20, padded.tobytes()), frame)


@pytest.mark.parametrize('args, words', [
    ((4, 5, 'yuv422', 10, b'\0' * 40), 'unsupported image encoding'),
    ((4, 5, 'bgr8', 15, b'\0' * 10), 'expected 60'),
    ((4, 5, 'bgr8', 12, b'\0' * 60), 'shorter than a row'),
])
def test_bad_messages_are_refused_with_a_reason(args, words):
    with pytest.raises(ImageConversionError, match=words):
        decode_fields(*args)
