"""Map pictures read exactly as nav2_map_server's map_io.cpp (loadMapFromFile) reads them.

Every expected value below is worked out by hand from map_server's rules (default thresholds
occupied 0.65, free 0.196): shade = mean of the colour samples / maxval, in trinary mode with
the opacity averaged in as a fourth channel; occ = 1 - shade (negate: shade);
trinary: occ > 0.65 -> 100, occ < 0.196 -> 0, else -1; scale: transparent -> -1, between the
thresholds rint((occ - 0.196) / 0.454 * 100); raw: round(shade * 255) if <= 100 else -1.
For 8-bit grey that gives: v <= 89 occupied (v/255 < 0.35), v >= 206 free (v/255 > 0.804).
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml

from retail_navigation.maps import MapError, load_map, occupancy_from_pixels, read_map_image

FREE, OCC, UNK = 0, 100, -1


def write_yaml(folder, image: str, **meta):
    fields = {'image': image, 'resolution': 0.05, 'origin': [0.0, 0.0, 0.0], 'negate': 0,
              'occupied_thresh': 0.65, 'free_thresh': 0.196, **meta}
    path = folder / 'map.yaml'
    path.write_text(yaml.safe_dump(fields), encoding='utf-8')
    return path


def load_row(folder, name: str, data: bytes, **meta) -> list[int]:
    """Write a one-row picture, load it through its YAML, return the row's cells."""
    (folder / name).write_bytes(data)
    grid = load_map(write_yaml(folder, name, **meta)).grid
    assert grid.shape[0] == 1
    return grid[0].tolist()


def png_bytes(pixels: np.ndarray) -> bytes:
    ok, data = cv2.imencode('.png', pixels)
    assert ok
    return data.tobytes()


# --- trinary thresholds and bit depths --------------------------------------------------------

def test_trinary_8_bit_thresholds(tmp_path):
    data = b'P5\n7 1\n255\n' + bytes([0, 89, 90, 205, 206, 254, 255])
    assert load_row(tmp_path, 'm.pgm', data) == [OCC, OCC, UNK, UNK, FREE, FREE, FREE]


def test_pgm_with_maxval_15_is_scaled_so_white_is_free(tmp_path):
    # v/15 < 0.35 -> v <= 5 occupied; v/15 > 0.804 -> v >= 13 free; 15 is white, not "nearly black".
    data = b'P5\n# saved by a scanner\n6 1\n15\n' + bytes([0, 5, 6, 12, 13, 15])
    assert load_row(tmp_path, 'm.pgm', data) == [OCC, OCC, UNK, UNK, FREE, FREE]


def test_ascii_pgm_with_maxval_1000(tmp_path):
    # v/1000 < 0.35 -> v <= 349 occupied; v/1000 > 0.804 -> v >= 805 free.
    data = b'P2\n4 1\n# comment\n1000\n349 351\n803 805\n'
    assert load_row(tmp_path, 'm.pgm', data) == [OCC, UNK, UNK, FREE]


def test_samples_on_a_threshold_are_rounded_to_16_bit_quanta_as_graphicsmagick_does(tmp_path):
    # map_server reads through GraphicsMagick Q16: a sample becomes round(v * 65535 / maxval).
    # 350/1000: 22937 / 65535 = 0.349996, occ 0.650004 > 0.65 -> occupied (0.35 exactly would not be);
    # 804/1000: 52690 / 65535 = 0.803998, occ 0.196002, not below 0.196 -> unknown (0.804 would be free).
    data = b'P2\n2 1\n1000\n350 804\n'
    assert load_row(tmp_path, 'm.pgm', data) == [OCC, UNK]


def test_16_bit_pgm_and_png(tmp_path):
    # 0.35 * 65535 = 22937.25 -> v <= 22937 occupied; 0.804 * 65535 = 52690.14 -> v >= 52691 free.
    values = [22937, 22938, 52690, 52691]
    pgm = b'P5\n4 1\n65535\n' + np.array(values, '>u2').tobytes()
    assert load_row(tmp_path, 'm.pgm', pgm) == [OCC, UNK, UNK, FREE]
    png = png_bytes(np.array([values], np.uint16))
    assert load_row(tmp_path, 'm16.png', png) == [OCC, UNK, UNK, FREE]


def test_pbm_bitmaps_one_is_black(tmp_path):
    assert load_row(tmp_path, 'a.pbm', b'P1\n4 1\n1 0 1 1\n') == [OCC, FREE, OCC, OCC]
    assert load_row(tmp_path, 'b.pbm', b'P1\n4 1\n0110\n') == [FREE, OCC, OCC, FREE]
    # P4: bits 1001 then padding; 10 pixels span two bytes per row.
    assert load_row(tmp_path, 'c.pbm', b'P4\n4 1\n' + bytes([0b10010000])) == [OCC, FREE, FREE, OCC]
    row = load_row(tmp_path, 'd.pbm', b'P4\n10 1\n' + bytes([0b11111111, 0b01000000]))
    assert row == [OCC] * 8 + [FREE, OCC]


def test_colour_pixels_use_the_mean_of_r_g_b(tmp_path):
    # (255,255,0): mean 170, occ 0.333 -> unknown; (0,0,255): mean 85, occ 0.667 -> occupied;
    # (255,255,150): mean 220, occ 0.137 -> free.
    ppm = b'P6\n3 1\n255\n' + bytes([255, 255, 0, 0, 0, 255, 255, 255, 150])
    assert load_row(tmp_path, 'm.ppm', ppm) == [UNK, OCC, FREE]
    bgr = np.array([[[0, 255, 255], [255, 0, 0], [150, 255, 255]]], np.uint8)     # OpenCV is BGR
    assert load_row(tmp_path, 'm.png', png_bytes(bgr)) == [UNK, OCC, FREE]


# --- alpha -----------------------------------------------------------------------------------

def test_trinary_averages_alpha_in_so_transparent_is_never_free(tmp_path):
    # (R + G + B + A) / 4:
    #  opaque white       (765 + 255) / 4 = 255     occ 0      -> free
    #  transparent white  (765 + 0) / 4 = 191.25    occ 0.25   -> unknown (was read as free floor)
    #  transparent black  0                         occ 1      -> occupied
    #  opaque black       255 / 4 = 63.75           occ 0.75   -> occupied
    #  opaque grey 205    (615 + 255) / 4 = 217.5   occ 0.147  -> free (map_server's own quirk)
    #  half-transparent white (765 + 128) / 4 = 223.25  occ 0.125 -> free
    bgra = np.array([[[255, 255, 255, 255], [255, 255, 255, 0], [0, 0, 0, 0], [0, 0, 0, 255],
                      [205, 205, 205, 255], [255, 255, 255, 128]]], np.uint8)
    assert load_row(tmp_path, 'm.png', png_bytes(bgra)) == [FREE, UNK, OCC, OCC, FREE, FREE]


def test_grey_alpha_and_palette_pngs_have_alpha_too(tmp_path):
    from PIL import Image
    la = Image.fromarray(np.array([[[255, 255], [255, 0], [0, 0]]], np.uint8), 'LA')
    la.save(tmp_path / 'la.png')
    assert load_row(tmp_path, 'la.png', (tmp_path / 'la.png').read_bytes()) == [FREE, UNK, OCC]
    palette = Image.new('P', (3, 1))
    palette.putpalette([255, 255, 255, 0, 0, 0, 254, 254, 254])
    palette.putdata([0, 1, 2])
    palette.save(tmp_path / 'p.png', transparency=2)          # index 2 (near white) is transparent
    # (762 + 0) / 4 = 190.5 -> occ 0.253 -> unknown
    assert load_row(tmp_path, 'p.png', (tmp_path / 'p.png').read_bytes()) == [FREE, OCC, UNK]


def test_negate_and_the_fully_transparent_rule():
    # negate: occ = v/255; v <= 49 free (49/255 = .192 < .196), 50 unknown (.196), 165 unknown (.647),
    # v >= 166 occupied (.651 > .65).
    grey = np.array([[0, 49, 50, 165, 166, 255]], np.uint8)
    assert occupancy_from_pixels(grey, negate=True).tolist() == [[FREE, FREE, UNK, UNK, OCC, OCC]]
    # negate with free_thresh 0.3: opaque black (0+0+0+255)/4 = 63.75 -> occ .25 -> free; transparent
    # black averages to 0, which map_server would also call free. Unmapped space must never be
    # driven, so a fully transparent pixel is unknown here.
    bgra = np.array([[[0, 0, 0, 0], [0, 0, 0, 255]]], np.uint8)
    assert occupancy_from_pixels(bgra, negate=True, free_thresh=0.3).tolist() == [[UNK, FREE]]


# --- scale and raw ---------------------------------------------------------------------------

def test_scale_mode_values_and_transparency():
    # v=128: occ = 127/255 = 0.49804; (0.49804 - 0.196) / 0.454 * 100 = 66.53 -> 67
    # v=200: occ = 55/255 = 0.21569;  (0.21569 - 0.196) / 0.454 * 100 = 4.34 -> 4
    # v=90:  occ = 165/255 = 0.64706; (0.64706 - 0.196) / 0.454 * 100 = 99.35 -> 99
    grey = np.array([[0, 89, 90, 128, 200, 206, 255]], np.uint8)
    assert occupancy_from_pixels(grey, mode='scale').tolist() == [[OCC, OCC, 99, 67, 4, FREE, FREE]]
    bgra = np.array([[[255, 255, 255, 254], [128, 128, 128, 255], [0, 0, 0, 0]]], np.uint8)
    assert occupancy_from_pixels(bgra, mode='scale').tolist() == [[UNK, 67, UNK]]    # any transparency


def test_raw_mode_takes_the_value_and_rounds_half_away_from_zero(tmp_path):
    grey = np.array([[0, 42, 100, 101, 255]], np.uint8)
    assert occupancy_from_pixels(grey, mode='raw').tolist() == [[0, 42, 100, UNK, UNK]]
    assert occupancy_from_pixels(grey, mode='raw', negate=True).tolist() == [[0, 42, 100, UNK, UNK]]
    bgr = np.array([[[10, 20, 30], [255, 255, 0]]], np.uint8)                       # means 20 and 170
    assert occupancy_from_pixels(bgr, mode='raw').tolist() == [[20, UNK]]
    # maxval 510: 85/510 * 255 = 42.5 -> 43 (std::round), 201/510 * 255 = 100.5 -> 101 -> unknown
    data = b'P5\n3 1\n510\n' + np.array([85, 200, 201], '>u2').tobytes()
    assert load_row(tmp_path, 'm.pgm', data, mode='raw') == [43, 100, UNK]


def test_rows_are_bottom_up_in_every_mode(tmp_path):
    data = b'P5\n2 2\n255\n' + bytes([0, 0, 255, 255])          # top row black, bottom row white
    (tmp_path / 'm.pgm').write_bytes(data)
    for mode in ('trinary', 'scale'):
        grid = load_map(write_yaml(tmp_path, 'm.pgm', mode=mode)).grid
        assert grid.tolist() == [[FREE, FREE], [OCC, OCC]]


# --- broken pictures: one line naming the file, nothing allocated for absurd sizes -----------

@pytest.mark.parametrize('data, message', [
    (b'P5\n4 1\n255\n' + bytes([0, 0]), 'cut short'),
    (b'P5\n4 1\n0\n' + bytes(4), 'maximum grey value 0'),
    (b'P5\n2 1\n15\n' + bytes([0, 16]), 'outside 0..15'),
    (b'P2\n2 1\n15\n0 -3\n', 'outside 0..15'),
    (b'P2\n2 1\n255\n0 x\n', 'not numeric'),
    (b'P5\n100000 100000\n255\n', 'more than'),
    (b'P5\n4', 'cut short'),
])
def test_broken_pnm_files_are_one_line_errors(tmp_path, data, message):
    (tmp_path / 'm.pgm').write_bytes(data)
    path = write_yaml(tmp_path, 'm.pgm')
    with pytest.raises(MapError) as info:
        load_map(path)
    text = str(info.value)
    assert message in text and str(path) in text and 'm.pgm' in text and '\n' not in text


def test_read_map_image_reports_maxval_scaled_shades(tmp_path):
    (tmp_path / 'm.pgm').write_bytes(b'P5\n2 1\n3\n' + bytes([0, 3]))
    colour, alpha = read_map_image(tmp_path / 'm.pgm')
    assert colour.tolist() == [[0.0, 1.0]] and alpha is None


def test_low_bit_depth_and_16_bit_alpha_pngs(tmp_path):
    from PIL import Image
    Image.fromarray(np.array([[0, 255, 0]], np.uint8)).convert('1').save(tmp_path / 'one.png')   # 1 bit
    assert load_row(tmp_path, 'one.png', (tmp_path / 'one.png').read_bytes()) == [OCC, FREE, OCC]
    palette = Image.new('P', (4, 1))                        # a 2-bit palette: 4 colours
    palette.putpalette([0, 0, 0, 85, 85, 85, 205, 205, 205, 254, 254, 254])
    palette.putdata([0, 1, 2, 3])
    palette.save(tmp_path / 'two.png', bits=2)
    # 85: occ .667 -> occupied; 205: occ .196 -> unknown (not below .196); 254 -> free
    assert load_row(tmp_path, 'two.png', (tmp_path / 'two.png').read_bytes()) == [OCC, OCC, UNK, FREE]
    # 16-bit RGBA: transparent white (3 * 65535 + 0) / 4 -> shade .75, occ .25 -> unknown
    bgra = np.array([[[65535, 65535, 65535, 65535], [65535, 65535, 65535, 0]]], np.uint16)
    assert load_row(tmp_path, 'rgba16.png', png_bytes(bgra)) == [FREE, UNK]
