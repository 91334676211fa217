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
    ((0, 640, 'bgr8', 1920, b''), 'each side must be'),               # attack: crashed the faces node
    ((480, 0, 'bgr8', 0, b''), 'each side must be'),
    ((20000, 20000, 'mono8', 20000, b''), 'each side must be'),
])
def test_bad_messages_are_refused_with_a_reason(args, words):
    with pytest.raises(ImageConversionError, match=words):
        decode_fields(*args)


# --- photo files: refused before decoding when too large (issue 12 item 3) -----------------------

def _png_header(width, height):
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(b'\x00' * 4096)) + chunk(b'IEND', b''))


def _bmp_header(width, height):
    import struct
    dib = struct.pack('<IiiHHIIiiII', 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b'BM' + struct.pack('<IHHI', 54 + 16, 0, 0, 54) + dib + b'\x00' * 16


@pytest.mark.parametrize('name, data, message', [
    ('bomb.png', _png_header(20000, 20000), 'image too large (400 megapixels, limit 64 megapixels)'),
    ('wide.png', _png_header(200000, 400), 'image too large (200000x400 pixels, limit 64 megapixels)'),
    ('bomb.bmp', _bmp_header(30000, 30000), 'image too large'),
    ('empty.jpg', b'', 'empty file'),
    ('text.png', b'hello, not an image', 'not a readable image'),
    ('cut.jpg', b'\xff\xd8\xff\xe0\x00\x10JFIF', 'not a readable image'),
])
def test_photo_files_are_refused_with_the_file_named(tmp_path, name, data, message):
    from retail_perception.image_convert import ImageFileError, read_image_file
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ImageFileError) as err:
        read_image_file(path)
    assert str(err.value).startswith(f'{path}: ') and message in str(err.value)


def test_a_photo_within_the_limits_is_decoded(tmp_path):
    import cv2
    from retail_perception.image_convert import ImageFileError, read_image_file
    path = tmp_path / 'ok.png'
    cv2.imwrite(str(path), _frame(40, 60))
    assert read_image_file(path).shape == (40, 60, 3)
    with pytest.raises(ImageFileError, match='image too large'):
        read_image_file(path, max_pixels=40 * 60 - 1)
    with pytest.raises(ImageFileError, match='no such file'):
        read_image_file(tmp_path / 'missing.png')
