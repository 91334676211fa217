"""The wire format: frames, sub-payloads, the decoder's resynchronisation, the velocity conversion."""
from __future__ import annotations

import math
import struct

import pytest

from retail_navigation import protocol as p

FEEDBACK_SAMPLES = [
    p.BasicSensorData(65535, p.BUMPER_LEFT, p.WHEEL_DROP_RIGHT, p.CLIFF_CENTRE, 65535, 1, -100, 127, 0x05,
                      p.CHARGER_DOCKED_CHARGING, 162, p.OVER_CURRENT_RIGHT),
    p.DockingIR(p.DOCK_NEAR_RIGHT, p.DOCK_FAR_CENTRE, 0),
    p.Inertial(-17999, 1234),
    p.CliffADC(4095, 0, 2100),
    p.Current(12, 255),
    p.HardwareVersion(4, 0, 1),
    p.FirmwareVersion(0, 2, 1),
    p.RawGyro(7, ((1, -2, 3), (-32768, 32767, 0), (5, 5, 5))),
    p.RawGyro(0, ()),
    p.GeneralPurposeInput(0xF00F, 1, 2, 3, 4095),
    p.UniqueDeviceId(0xDEADBEEF, 1, 0xFFFFFFFF),
    p.ControllerInfo(1, 100000, 100, 2000),
]
COMMAND_SAMPLES = [
    p.BaseControl(-32768, 32767), p.Sound(1234, 200), p.SoundSequence(p.SOUND_ERROR),
    p.RequestExtra(0x0B), p.GeneralPurposeOutput(0x0F01), p.SetControllerGain(0, 1, 2, 3),
    p.GetControllerGain(0),
]


@pytest.mark.parametrize('item', FEEDBACK_SAMPLES, ids=lambda i: type(i).__name__)
def test_every_feedback_sub_payload_round_trips_through_a_frame(item):
    frame = p.build_frame(item)
    decoder = p.FrameDecoder()
    [payload] = decoder.feed(frame)
    parsed = p.parse_feedback(payload)
    assert parsed.items == [item] and not parsed.unknown_ids and not parsed.malformed


@pytest.mark.parametrize('item', COMMAND_SAMPLES, ids=lambda i: type(i).__name__)
def test_every_command_round_trips(item):
    [payload] = p.FrameDecoder().feed(p.build_frame(item))
    assert p.parse_commands(payload).items == [item]


def test_sizes_match_the_protocol_table():
    sizes = {1: 15, 3: 3, 4: 7, 5: 6, 6: 2, 10: 4, 11: 4, 16: 16, 19: 12, 21: 13}
    for sub_id, size in sizes.items():
        assert p.FEEDBACK_TYPES[sub_id].size() == size, p.FEEDBACK_TYPES[sub_id].__name__
    assert len(p.RawGyro(0, ((1, 2, 3), (4, 5, 6))).encode()) == 2 + 2 + 6 * 2
    command_sizes = {1: 4, 3: 3, 4: 1, 9: 2, 12: 2, 13: 13, 14: 1}
    for sub_id, size in command_sizes.items():
        assert p.COMMAND_TYPES[sub_id].size() == size, p.COMMAND_TYPES[sub_id].__name__


def test_base_control_frame_bytes_are_exactly_as_the_notes_say():
    frame = p.base_control(100, -1)
    assert frame[:2] == b'\xaa\x55'
    assert frame[2] == 6                                       # id, size, 4 data bytes
    assert frame[3:9] == bytes([1, 4]) + struct.pack('<hh', 100, -1)
    xor = 0
    for byte in frame[2:]:
        xor ^= byte
    assert xor == 0                                            # XOR over all after the header is 0


def test_command_builders():
    def only(frame):
        [payload] = p.FrameDecoder().feed(frame)
        [item] = p.parse_commands(payload).items
        return item
    assert only(p.stop_command()) == p.BaseControl(0, 0)
    assert only(p.sound_sequence(p.SOUND_RECHARGE)) == p.SoundSequence(2)
    tone = only(p.sound(440.0, 100))
    assert tone.note == round(1 / (440.0 * 0.00000275)) and tone.duration_ms == 100
    assert tone.frequency_hz == pytest.approx(440.0, rel=1e-3)
    assert only(p.request_extra()) == p.RequestExtra(0x01 | 0x02 | 0x08)
    assert only(p.general_purpose_output(0x0100 | 0x10)) == p.GeneralPurposeOutput(0x0110)
    assert only(p.set_controller_gain(1, 10, 20, 30)) == p.SetControllerGain(1, 10, 20, 30)
    assert only(p.get_controller_gain()) == p.GetControllerGain(0)
    with pytest.raises(p.ProtocolError):
        p.sound_sequence(7)


def test_field_meanings():
    basic = FEEDBACK_SAMPLES[0]
    assert basic.battery_v == pytest.approx(16.2) and basic.docked and basic.charging
    assert p.Inertial(9000, -4500).angle_rad == pytest.approx(math.pi / 2)
    assert p.Inertial(9000, -4500).rate_rad_s == pytest.approx(-math.pi / 4)
    assert str(p.FirmwareVersion(3, 2, 1)) == '1.2.3'
    assert p.RawGyro(0, ((800, 0, -800),)).rates_deg_s() == [pytest.approx((7.0, 0.0, -7.0))]


def test_several_sub_payloads_in_one_frame_and_unknown_ids_are_skipped_by_size():
    payload = (p.Inertial(100, 0).encode() + p.sub_payload(200, b'\x01\x02\x03\x04\x05')
               + p.Current(1, 2).encode() + p.sub_payload(7, b''))
    [decoded] = p.FrameDecoder().feed(p.encode_frame(payload))
    parsed = p.parse_feedback(decoded)
    assert parsed.items == [p.Inertial(100, 0), p.Current(1, 2)]
    assert parsed.unknown_ids == [200, 7]


def test_a_known_id_with_the_wrong_size_is_skipped_with_a_reason():
    payload = p.sub_payload(p.Current.ID, b'\x01') + p.DockingIR(1, 2, 3).encode()
    parsed = p.parse_feedback(p.FrameDecoder().feed(p.encode_frame(payload))[0])
    assert parsed.items == [p.DockingIR(1, 2, 3)]
    assert len(parsed.malformed) == 1 and 'Current' in parsed.malformed[0]


def test_decoder_skips_garbage_and_counts():
    good = p.base_control(1, 2)
    decoder = p.FrameDecoder()
    assert decoder.feed(b'\x00\x13\xaa\x01' + good + b'\x55\x55' + good) == [good[3:-1]] * 2
    assert decoder.frames_ok == 2 and decoder.frames_bad == 0 and decoder.bytes_skipped == 6


def test_decoder_resyncs_after_a_bad_checksum():
    good = p.build_frame(p.Inertial(1, 2))
    bad = bytearray(good)
    bad[-1] ^= 0xFF
    decoder = p.FrameDecoder()
    assert decoder.feed(bytes(bad) + good) == [good[3:-1]]
    assert decoder.frames_ok == 1 and decoder.frames_bad == 1


def test_decoder_resyncs_after_a_truncated_frame():
    good = p.build_frame(p.BasicSensorData(*([0] * 12)), p.Inertial(5, 6))
    decoder = p.FrameDecoder()
    assert decoder.feed(good[:10] + good + good) == [good[3:-1]] * 2
    assert decoder.frames_bad >= 1


def test_decoder_rejects_impossible_length_and_waits_for_a_partial_frame():
    good = p.base_control(5, 0)
    decoder = p.FrameDecoder()
    assert decoder.feed(b'\xaa\x55\x01\x00' + good[:5]) == []
    assert decoder.frames_bad == 1
    assert decoder.feed(good[5:]) == [good[3:-1]]


def test_decoder_accepts_bytes_one_at_a_time():
    stream = p.base_control(300, 0) + b'\xaa' + p.build_frame(p.Current(3, 4))
    decoder = p.FrameDecoder()
    out = []
    for byte in stream:
        out += decoder.feed(bytes([byte]))
    assert len(out) == 2 and decoder.error_rate == 0.0


def test_encode_frame_refuses_impossible_payloads():
    with pytest.raises(p.ProtocolError):
        p.encode_frame(b'\x01\x00')
    with pytest.raises(p.ProtocolError):
        p.encode_frame(bytes(256))


# --- (vx, wz) -> (speed, radius) ---------------------------------------------------------------

@pytest.mark.parametrize('vx, wz, expected', [
    (0.0, 0.0, (0, 0)),                          # stop
    (0.3, 0.0, (300, 0)),                        # straight
    (-0.2, 0.00009, (-200, 0)),                  # |wz| < 1e-4 is straight
    (0.0, 1.0, (115, 1)),                        # pure rotation: speed = 1000 * b * wz / 2
    (0.0, -2.0, (-230, 1)),
    (0.00005, 1.0, (115, 1)),                    # |vx| < 1e-4: rotation
    (0.0009, 1.0, (115, 1)),                     # |radius| <= 1 mm: rotation
    (0.2, 0.4, (246, 500)),                      # general: (500 + 115) * 0.4
])
def test_conversion_special_cases(vx, wz, expected):
    assert p.twist_to_speed_radius(vx, wz) == expected


def test_conversion_general_case_signs():
    assert p.twist_to_speed_radius(0.2, -0.4) == (246, -500)      # right turn: (-500 - 115) * -0.4
    assert p.twist_to_speed_radius(-0.2, 0.4) == (-246, -500)     # reversing, turning left
    assert p.twist_to_speed_radius(-0.2, -0.4) == (-246, 500)


def test_conversion_clamps_to_int16():
    assert p.twist_to_speed_radius(40.0, 0.0) == (32767, 0)
    assert p.twist_to_speed_radius(-40.0, 0.0) == (-32768, 0)
    speed, radius = p.twist_to_speed_radius(0.5, 0.0002)      # radius 2500 m
    assert radius == 32767 and -32768 <= speed <= 32767


@pytest.mark.parametrize('vx, wz', [(0.3, 0.0), (0.0, 1.2), (0.0, -0.7), (0.25, 0.6), (0.25, -0.6),
                                    (-0.1, 0.4), (-0.1, -0.4), (0.4, 3.0)])
def test_firmware_inverse_recovers_the_twist(vx, wz):
    left, right = p.speed_radius_to_wheels(*p.twist_to_speed_radius(vx, wz))
    assert (left + right) / 2 == pytest.approx(vx, abs=0.004)
    assert (right - left) / p.WHEELBASE_M == pytest.approx(wz, abs=0.01, rel=0.01)
