"""The base's serial protocol (Kobuki-compatible), as bytes in and dataclasses out.

Pure: no serial port, no rclpy. The driver, the simulator and the CLI share this one module so
the two ends of the line cannot disagree about a byte. Framing: 0xAA 0x55, length, payload of
sub-payloads (id, size, data), XOR checksum over length + payload. Little-endian fields.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field, fields
from typing import ClassVar, Iterator

HEADER = b'\xaa\x55'
MIN_PAYLOAD = 3
MAX_PAYLOAD = 255
BAUD_RATE = 115200
FEEDBACK_PERIOD_S = 0.020

WHEELBASE_M = 0.230
WHEEL_RADIUS_M = 0.035
TICKS_PER_METRE = 11724.41658
GYRO_UNIT_RAD = math.radians(0.01)          # inertial angle and rate: 0.01 deg
RAW_GYRO_UNIT_DEG_S = 0.00875
SOUND_NOTE_FACTOR = 0.00000275
INT16_MIN, INT16_MAX = -32768, 32767

# Bits of the basic sensor data.
BUMPER_RIGHT, BUMPER_CENTRE, BUMPER_LEFT = 0x01, 0x02, 0x04
WHEEL_DROP_RIGHT, WHEEL_DROP_LEFT = 0x01, 0x02
CLIFF_RIGHT, CLIFF_CENTRE, CLIFF_LEFT = 0x01, 0x02, 0x04
OVER_CURRENT_LEFT, OVER_CURRENT_RIGHT = 0x01, 0x02
CHARGER_DISCHARGING, CHARGER_DOCKED_CHARGED, CHARGER_DOCKED_CHARGING = 0, 2, 6
CHARGER_ADAPTER_CHARGED, CHARGER_ADAPTER_CHARGING = 18, 22
# Docking IR signal bits (as the Kobuki dock emits them): which dock region a receiver sees.
DOCK_NEAR_LEFT, DOCK_NEAR_CENTRE, DOCK_NEAR_RIGHT = 0x01, 0x02, 0x04
DOCK_FAR_CENTRE, DOCK_FAR_LEFT, DOCK_FAR_RIGHT = 0x08, 0x10, 0x20
# Request-extra flags.
REQUEST_HARDWARE_VERSION, REQUEST_FIRMWARE_VERSION, REQUEST_UNIQUE_ID = 0x01, 0x02, 0x08
# Sound sequences.
SOUND_ON, SOUND_OFF, SOUND_RECHARGE, SOUND_BUTTON, SOUND_ERROR = 0, 1, 2, 3, 4
SOUND_CLEANING_START, SOUND_CLEANING_END = 5, 6


class ProtocolError(ValueError):
    """A payload or sub-payload that does not follow the protocol."""


# --- framing ----------------------------------------------------------------------------------

def checksum(body: bytes) -> int:
    """XOR of every byte of `body` (the length byte and the payload)."""
    value = 0
    for byte in body:
        value ^= byte
    return value


def encode_frame(payload: bytes) -> bytes:
    """One frame around `payload` (the concatenated sub-payloads)."""
    if not MIN_PAYLOAD <= len(payload) <= MAX_PAYLOAD:
        raise ProtocolError(f'payload of {len(payload)} bytes (must be {MIN_PAYLOAD}..{MAX_PAYLOAD})')
    body = bytes([len(payload)]) + payload
    return HEADER + body + bytes([checksum(body)])


def sub_payload(sub_id: int, data: bytes) -> bytes:
    if len(data) > 255:
        raise ProtocolError(f'sub-payload {sub_id} of {len(data)} bytes is too long')
    return bytes([sub_id, len(data)]) + data


def iter_sub_payloads(payload: bytes) -> Iterator[tuple[int, bytes]]:
    """(id, data) of each sub-payload; ProtocolError when the sizes do not add up."""
    offset = 0
    while offset < len(payload):
        if offset + 2 > len(payload):
            raise ProtocolError(f'sub-payload header cut at byte {offset}')
        sub_id, size = payload[offset], payload[offset + 1]
        end = offset + 2 + size
        if end > len(payload):
            raise ProtocolError(f'sub-payload {sub_id} declares {size} bytes, {len(payload) - offset - 2} left')
        yield sub_id, bytes(payload[offset + 2:end])
        offset = end


def is_well_formed(payload: bytes) -> bool:
    try:
        for _ in iter_sub_payloads(payload):
            pass
    except ProtocolError:
        return False
    return True


class FrameDecoder:
    """Incremental decoder: feed it bytes as they arrive, get complete valid payloads back.

    Resynchronises on the next 0xAA 0x55 after garbage, a bad checksum, an impossible length or
    a payload whose sub-payload sizes do not add up (a cut frame that swallowed the next one's
    bytes). Counts good and bad frames and skipped bytes for the diagnostics.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.frames_ok = 0
        self.frames_bad = 0
        self.bytes_skipped = 0

    def reset(self) -> None:
        """Forget a partial frame (after the port was closed and reopened)."""
        self._buffer.clear()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        payloads: list[bytes] = []
        buf = self._buffer
        while True:
            start = buf.find(HEADER)
            if start < 0:
                # Keep a trailing 0xAA: it may be the first half of a header.
                keep = 1 if buf.endswith(HEADER[:1]) else 0
                self.bytes_skipped += len(buf) - keep
                del buf[:len(buf) - keep]
                break
            if start:
                self.bytes_skipped += start
                del buf[:start]
            if len(buf) < 3:
                break
            length = buf[2]
            if length < MIN_PAYLOAD:
                self._reject(buf)
                continue
            end = 3 + length + 1
            if len(buf) < end:
                break
            if checksum(buf[2:end]) != 0 or not is_well_formed(bytes(buf[3:end - 1])):
                self._reject(buf)
                continue
            payloads.append(bytes(buf[3:end - 1]))
            self.frames_ok += 1
            del buf[:end]
        return payloads

    def _reject(self, buf: bytearray) -> None:
        """A false start: count it and look for the next header after this one."""
        self.frames_bad += 1
        self.bytes_skipped += 1
        del buf[:1]

    @property
    def error_rate(self) -> float:
        total = self.frames_ok + self.frames_bad
        return self.frames_bad / total if total else 0.0


# --- sub-payload types ------------------------------------------------------------------------

@dataclass(frozen=True)
class SubPayload:
    """A fixed-layout sub-payload: ID, struct FORMAT, fields in order."""

    ID: ClassVar[int]
    FORMAT: ClassVar[str]

    @classmethod
    def size(cls) -> int:
        return struct.calcsize(cls.FORMAT)

    @classmethod
    def parse(cls, data: bytes):
        if len(data) != cls.size():
            raise ProtocolError(f'{cls.__name__}: {len(data)} bytes, expected {cls.size()}')
        return cls(*struct.unpack(cls.FORMAT, data))

    def values(self) -> tuple:
        return tuple(getattr(self, f.name) for f in fields(self))

    def encode(self) -> bytes:
        return sub_payload(self.ID, struct.pack(self.FORMAT, *self.values()))


# Commands (host -> base)

@dataclass(frozen=True)
class BaseControl(SubPayload):
    ID: ClassVar[int] = 1
    FORMAT: ClassVar[str] = '<hh'
    speed_mm_s: int
    radius_mm: int


@dataclass(frozen=True)
class Sound(SubPayload):
    ID: ClassVar[int] = 3
    FORMAT: ClassVar[str] = '<HB'
    note: int
    duration_ms: int

    @classmethod
    def tone(cls, frequency_hz: float, duration_ms: int) -> 'Sound':
        note = round(1.0 / (frequency_hz * SOUND_NOTE_FACTOR))
        return cls(min(max(note, 0), 0xFFFF), min(max(int(duration_ms), 0), 255))

    @property
    def frequency_hz(self) -> float:
        return 1.0 / (self.note * SOUND_NOTE_FACTOR) if self.note else 0.0


@dataclass(frozen=True)
class SoundSequence(SubPayload):
    ID: ClassVar[int] = 4
    FORMAT: ClassVar[str] = '<B'
    sequence: int


@dataclass(frozen=True)
class RequestExtra(SubPayload):
    ID: ClassVar[int] = 9
    FORMAT: ClassVar[str] = '<H'
    flags: int


@dataclass(frozen=True)
class GeneralPurposeOutput(SubPayload):
    ID: ClassVar[int] = 12
    FORMAT: ClassVar[str] = '<H'
    bits: int


@dataclass(frozen=True)
class SetControllerGain(SubPayload):
    ID: ClassVar[int] = 13
    FORMAT: ClassVar[str] = '<BIII'
    gain_type: int
    p: int
    i: int
    d: int


@dataclass(frozen=True)
class GetControllerGain(SubPayload):
    ID: ClassVar[int] = 14
    FORMAT: ClassVar[str] = '<B'
    unused: int = 0


# Feedback (base -> host)

@dataclass(frozen=True)
class BasicSensorData(SubPayload):
    ID: ClassVar[int] = 1
    FORMAT: ClassVar[str] = '<HBBBHHbbBBBB'
    timestamp_ms: int
    bumper: int
    wheel_drop: int
    cliff: int
    left_encoder: int
    right_encoder: int
    left_pwm: int
    right_pwm: int
    buttons: int
    charger: int
    battery_dv: int          # 0.1 V
    over_current: int

    @property
    def battery_v(self) -> float:
        return self.battery_dv / 10.0

    @property
    def docked(self) -> bool:
        return self.charger in (CHARGER_DOCKED_CHARGED, CHARGER_DOCKED_CHARGING)

    @property
    def charging(self) -> bool:
        return self.charger in (CHARGER_DOCKED_CHARGING, CHARGER_ADAPTER_CHARGING)


@dataclass(frozen=True)
class DockingIR(SubPayload):
    ID: ClassVar[int] = 3
    FORMAT: ClassVar[str] = '<BBB'
    right: int
    centre: int
    left: int


@dataclass(frozen=True)
class Inertial(SubPayload):
    ID: ClassVar[int] = 4
    FORMAT: ClassVar[str] = '<hh3x'
    angle_cdeg: int          # 0.01 deg
    rate_cdeg_s: int         # 0.01 deg/s

    @property
    def angle_rad(self) -> float:
        return self.angle_cdeg * GYRO_UNIT_RAD

    @property
    def rate_rad_s(self) -> float:
        return self.rate_cdeg_s * GYRO_UNIT_RAD


@dataclass(frozen=True)
class CliffADC(SubPayload):
    ID: ClassVar[int] = 5
    FORMAT: ClassVar[str] = '<HHH'
    right: int
    centre: int
    left: int


@dataclass(frozen=True)
class Current(SubPayload):
    ID: ClassVar[int] = 6
    FORMAT: ClassVar[str] = '<BB'
    left_10ma: int
    right_10ma: int


@dataclass(frozen=True)
class HardwareVersion(SubPayload):
    ID: ClassVar[int] = 10
    FORMAT: ClassVar[str] = '<BBBx'
    patch: int
    minor: int
    major: int

    def __str__(self) -> str:
        return f'{self.major}.{self.minor}.{self.patch}'


@dataclass(frozen=True)
class FirmwareVersion(HardwareVersion):
    ID: ClassVar[int] = 11


@dataclass(frozen=True)
class RawGyro(SubPayload):
    """Variable size: frame id, data length (3 per sample), N samples of (x, y, z)."""

    ID: ClassVar[int] = 13
    FORMAT: ClassVar[str] = '<BB'
    frame_id: int
    samples: tuple[tuple[int, int, int], ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, data: bytes) -> 'RawGyro':
        if len(data) < 2 or (len(data) - 2) % 6:
            raise ProtocolError(f'RawGyro: {len(data)} bytes is not 2 + 6N')
        frame_id, data_length = data[0], data[1]
        count = (len(data) - 2) // 6
        if data_length != 3 * count:
            raise ProtocolError(f'RawGyro: data length {data_length} for {count} samples')
        samples = tuple(struct.iter_unpack('<hhh', data[2:]))
        return cls(frame_id, samples)

    def encode(self) -> bytes:
        body = struct.pack('<BB', self.frame_id, 3 * len(self.samples))
        body += b''.join(struct.pack('<hhh', *s) for s in self.samples)
        return sub_payload(self.ID, body)

    def rates_deg_s(self) -> list[tuple[float, float, float]]:
        return [tuple(v * RAW_GYRO_UNIT_DEG_S for v in s) for s in self.samples]


@dataclass(frozen=True)
class GeneralPurposeInput(SubPayload):
    ID: ClassVar[int] = 16
    FORMAT: ClassVar[str] = '<HHHHH6x'
    digital_in: int
    analog_0: int
    analog_1: int
    analog_2: int
    analog_3: int


@dataclass(frozen=True)
class UniqueDeviceId(SubPayload):
    ID: ClassVar[int] = 19
    FORMAT: ClassVar[str] = '<III'
    udid0: int
    udid1: int
    udid2: int

    def __str__(self) -> str:
        return f'{self.udid0:08X}-{self.udid1:08X}-{self.udid2:08X}'


@dataclass(frozen=True)
class ControllerInfo(SubPayload):
    ID: ClassVar[int] = 21
    FORMAT: ClassVar[str] = '<BIII'
    gain_type: int
    p: int
    i: int
    d: int


COMMAND_TYPES: dict[int, type[SubPayload]] = {
    t.ID: t for t in (BaseControl, Sound, SoundSequence, RequestExtra, GeneralPurposeOutput,
                      SetControllerGain, GetControllerGain)}
FEEDBACK_TYPES: dict[int, type[SubPayload]] = {
    t.ID: t for t in (BasicSensorData, DockingIR, Inertial, CliffADC, Current, HardwareVersion,
                      FirmwareVersion, RawGyro, GeneralPurposeInput, UniqueDeviceId, ControllerInfo)}


@dataclass
class ParsedPayload:
    items: list[SubPayload]
    unknown_ids: list[int]        # skipped by their size byte
    malformed: list[str]          # known ids with a wrong size: skipped with a reason


def parse_payload(payload: bytes, types: dict[int, type[SubPayload]]) -> ParsedPayload:
    """Split a frame's payload into known sub-payloads; unknown and malformed ones are skipped."""
    parsed = ParsedPayload([], [], [])
    for sub_id, data in iter_sub_payloads(payload):
        kind = types.get(sub_id)
        if kind is None:
            parsed.unknown_ids.append(sub_id)
            continue
        try:
            parsed.items.append(kind.parse(data))
        except ProtocolError as exc:
            parsed.malformed.append(str(exc))
    return parsed


def parse_feedback(payload: bytes) -> ParsedPayload:
    return parse_payload(payload, FEEDBACK_TYPES)


def parse_commands(payload: bytes) -> ParsedPayload:
    return parse_payload(payload, COMMAND_TYPES)


def build_frame(*items: SubPayload) -> bytes:
    """One frame carrying `items` (e.g. build_frame(BaseControl(100, 0)))."""
    return encode_frame(b''.join(item.encode() for item in items))


# --- command builders -------------------------------------------------------------------------

def base_control(speed_mm_s: int, radius_mm: int) -> bytes:
    return build_frame(BaseControl(_int16(speed_mm_s), _int16(radius_mm)))


def stop_command() -> bytes:
    return base_control(0, 0)


def sound(frequency_hz: float, duration_ms: int) -> bytes:
    return build_frame(Sound.tone(frequency_hz, duration_ms))


def sound_sequence(sequence: int) -> bytes:
    if not 0 <= sequence <= 6:
        raise ProtocolError(f'sound sequence {sequence} (must be 0..6)')
    return build_frame(SoundSequence(sequence))


def request_extra(flags: int = REQUEST_HARDWARE_VERSION | REQUEST_FIRMWARE_VERSION | REQUEST_UNIQUE_ID) -> bytes:
    return build_frame(RequestExtra(flags & 0xFFFF))


def general_purpose_output(bits: int) -> bytes:
    return build_frame(GeneralPurposeOutput(bits & 0xFFFF))


def set_controller_gain(gain_type: int, p: int, i: int, d: int) -> bytes:
    return build_frame(SetControllerGain(gain_type, p, i, d))


def get_controller_gain() -> bytes:
    return build_frame(GetControllerGain(0))


# --- velocity conversion ----------------------------------------------------------------------

def _int16(value: float) -> int:
    return int(min(max(round(value), INT16_MIN), INT16_MAX))


def twist_to_speed_radius(vx: float, wz: float, wheelbase: float = WHEELBASE_M) -> tuple[int, int]:
    """(vx [m/s], wz [rad/s]) -> (speed [mm/s], radius [mm]) as the reference driver does it."""
    half_base_mm = 1000.0 * wheelbase / 2.0
    if abs(wz) < 1e-4:
        radius, speed = 0.0, 1000.0 * vx
    else:
        radius = 1000.0 * vx / wz
        if abs(vx) < 1e-4 or abs(radius) <= 1.0:
            radius, speed = 1.0, 1000.0 * wheelbase * wz / 2.0
        elif radius > 0:
            speed = (radius + half_base_mm) * wz
        else:
            speed = (radius - half_base_mm) * wz
    return _int16(speed), _int16(radius)


def speed_radius_to_wheels(speed_mm_s: int, radius_mm: int,
                           wheelbase: float = WHEELBASE_M) -> tuple[float, float]:
    """What the firmware does with a base-control command: (left, right) wheel speeds [m/s].

    Speed is the outer wheel's speed; radius 0 drives straight, radius 1 turns on the spot.
    """
    speed = speed_mm_s / 1000.0
    if radius_mm == 0:
        return speed, speed
    if radius_mm == 1:
        return -speed, speed
    radius = radius_mm / 1000.0
    half = wheelbase / 2.0
    wz = speed / (radius + half) if radius > 0 else speed / (radius - half)
    vx = radius * wz
    return vx - wz * half, vx + wz * half
