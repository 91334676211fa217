"""Where customer audio comes from: the microphone, a WAV file or a raw PCM stream.

Every source yields the same thing — 16 kHz mono signed 16-bit frames of a fixed duration — so
the voice activity detector and Vosk never see another format. WAV files recorded elsewhere
(44.1 kHz stereo from a phone, 8/24/32-bit, float, WAVE_FORMAT_EXTENSIBLE from sox) are converted;
what cannot be converted (compressed WAV, not a WAV at all, a corrupt file) is rejected with one
line saying what to do. Pure: no rclpy.
"""
from __future__ import annotations

import queue
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

SAMPLE_RATE = 16000
SAMPLE_WIDTH = 2  # bytes, signed 16-bit little endian
FRAME_MS = 20     # one of the frame sizes webrtcvad accepts (10, 20, 30 ms)


class AudioSourceError(Exception):
    """An audio source cannot be used; the message says why in one line."""


def frame_bytes(frame_ms: int = FRAME_MS) -> int:
    return SAMPLE_RATE * frame_ms // 1000 * SAMPLE_WIDTH


def level_dbfs(frame: bytes) -> float:
    """RMS level of s16le audio in dB relative to full scale (-100 for digital silence)."""
    samples = np.frombuffer(frame[:len(frame) - len(frame) % 2], dtype='<i2').astype(np.float64)
    if not samples.size:
        return -100.0
    rms = float(np.sqrt(np.mean(samples ** 2)))
    return max(-100.0, 20 * np.log10(rms / 32768)) if rms > 0 else -100.0


def split_frames(pcm: bytes, frame_ms: int = FRAME_MS, pad_last: bool = True) -> Iterator[bytes]:
    """Cut 16 kHz mono PCM into frames; the last partial frame is zero-padded (or dropped)."""
    size = frame_bytes(frame_ms)
    for start in range(0, len(pcm), size):
        frame = pcm[start:start + size]
        if len(frame) < size:
            if not pad_last:
                return
            frame = frame + bytes(size - len(frame))
        yield frame


def to_pcm16_mono_16k(samples: np.ndarray, sample_rate: int) -> bytes:
    """float or int samples, shape (n,) or (n, channels), any rate -> 16 kHz mono s16le bytes."""
    data = np.asarray(samples, dtype=np.float64)
    if data.ndim == 2:
        data = data.mean(axis=1)
    if sample_rate != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly
        g = gcd(SAMPLE_RATE, sample_rate)
        data = resample_poly(data, SAMPLE_RATE // g, sample_rate // g)
    return np.clip(np.rint(data), -32768, 32767).astype('<i2').tobytes()


WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
MAX_WAV_BYTES = 512 * 1024 * 1024      # an utterance clip is kilobytes; refuse what cannot be one
_CONVERT = 'convert it: sox IN -r 16000 -c 1 -b 16 OUT.wav'


@dataclass(frozen=True)
class WavFormat:
    """The `fmt ` chunk of a RIFF/WAVE file, with WAVE_FORMAT_EXTENSIBLE resolved to its sub-format."""
    tag: int              # WAVE_FORMAT_PCM or WAVE_FORMAT_IEEE_FLOAT once resolved
    channels: int
    rate: int
    bits: int             # container bits per sample (8, 16, 24, 32, 64)


def _parse_fmt(body: bytes) -> WavFormat:
    if len(body) < 16:
        raise ValueError('fmt chunk too short')
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from('<HHIIHH', body)
    if tag == WAVE_FORMAT_EXTENSIBLE:
        # cbSize, wValidBitsPerSample, dwChannelMask, then the sub-format GUID whose first two
        # bytes are the real format tag (KSDATAFORMAT_SUBTYPE_PCM / _IEEE_FLOAT).
        if len(body) < 40:
            raise ValueError('WAVE_FORMAT_EXTENSIBLE fmt chunk too short')
        tag = struct.unpack_from('<H', body, 24)[0]
    if channels < 1 or rate < 1 or bits < 1:
        raise ValueError(f'{channels} channels, {rate} Hz, {bits} bits')
    if block_align and block_align // channels * 8 > bits:
        bits = block_align // channels * 8      # e.g. 20-bit samples in 24-bit containers
    return WavFormat(tag, channels, rate, bits)


def _read_riff(path: Path) -> tuple[WavFormat, bytes]:
    """The format and raw sample bytes of a RIFF/WAVE file; ValueError saying what is wrong."""
    size = path.stat().st_size
    if size > MAX_WAV_BYTES:
        raise ValueError(f'{size} bytes is more than the {MAX_WAV_BYTES} a clip may have')
    data = path.read_bytes()
    if len(data) < 12 or data[:4] != b'RIFF' or data[8:12] != b'WAVE':
        raise ValueError('no RIFF/WAVE header')
    fmt, samples, offset = None, None, 12
    while offset + 8 <= len(data):
        chunk_id, chunk_size = data[offset:offset + 4], struct.unpack_from('<I', data, offset + 4)[0]
        body = data[offset + 8:offset + 8 + chunk_size]
        if chunk_id == b'fmt ':
            fmt = _parse_fmt(body)
        elif chunk_id == b'data':
            samples = body           # a data chunk cut short (recording interrupted): keep what is there
            if fmt is not None:
                break
        offset += 8 + chunk_size + (chunk_size & 1)      # chunks are word-aligned
    if fmt is None:
        raise ValueError('no fmt chunk')
    if samples is None:
        raise ValueError('no data chunk')
    return fmt, samples


def _samples(fmt: WavFormat, raw: bytes) -> np.ndarray:
    """Raw interleaved samples as float64 on the signed 16-bit scale, shape (n, channels)."""
    width = fmt.bits // 8
    raw = raw[:len(raw) - len(raw) % (width * fmt.channels)]
    if fmt.tag == WAVE_FORMAT_IEEE_FLOAT and width in (4, 8):
        values = np.frombuffer(raw, dtype='<f4' if width == 4 else '<f8').astype(np.float64)
        values = np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=-1.0) * 32767.0
    elif fmt.tag != WAVE_FORMAT_PCM:
        raise ValueError(f'format tag 0x{fmt.tag:04x} ({fmt.bits}-bit) is neither PCM nor float')
    elif width == 1:      # 8-bit WAV is unsigned
        values = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128) * 256
    elif width == 2:
        values = np.frombuffer(raw, dtype='<i2').astype(np.float64)
    elif width == 3:
        bytes3 = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        values = (bytes3[:, 0].astype(np.int32) | (bytes3[:, 1].astype(np.int32) << 8)
                  | (bytes3[:, 2].astype(np.int8).astype(np.int32) << 16)) / 256.0
    elif width == 4:
        values = np.frombuffer(raw, dtype='<i4') / 65536.0
    else:
        raise ValueError(f'{fmt.bits}-bit PCM samples')
    return values.reshape(-1, fmt.channels)


def read_wav(path: str | Path) -> bytes:
    """A WAV file as 16 kHz mono s16le PCM.

    Reads the RIFF chunks itself (Python 3.11's `wave` refuses WAVE_FORMAT_EXTENSIBLE, which sox
    writes for 24-bit and multi-channel files): PCM 8/16/24/32-bit and IEEE float 32/64-bit, plain
    or extensible, any rate and channel count, converted (channels averaged, rate resampled).
    Raises AudioSourceError with one line naming the file otherwise (compressed, not a WAV,
    corrupt, missing).
    """
    path = Path(path)
    try:
        fmt, raw = _read_riff(path)
        if fmt.tag == WAVE_FORMAT_PCM and (fmt.rate, fmt.channels, fmt.bits) == (SAMPLE_RATE, 1, 16):
            return raw[:len(raw) - len(raw) % SAMPLE_WIDTH]
        samples = _samples(fmt, raw)
    except FileNotFoundError:
        raise AudioSourceError(f'{path}: no such file') from None
    except IsADirectoryError:
        raise AudioSourceError(f'{path}: is a folder, not a WAV file') from None
    except OSError as exc:
        raise AudioSourceError(f'{path}: cannot read ({exc.strerror})') from None
    except (ValueError, struct.error) as exc:
        raise AudioSourceError(f'{path}: not a usable PCM WAV file ({exc}); {_CONVERT}') from None
    return to_pcm16_mono_16k(samples, fmt.rate)


def wav_frames(path: str | Path, frame_ms: int = FRAME_MS, lead_in_ms: int = 0) -> Iterator[bytes]:
    """Frames of a WAV file (converted to 16 kHz mono s16le when needed).

    `lead_in_ms` of silence go first: Vosk mis-hears the first word of a clip cut right at it.
    """
    lead_in = bytes(SAMPLE_RATE * lead_in_ms // 1000 * SAMPLE_WIDTH)
    yield from split_frames(lead_in + read_wav(path), frame_ms)


def stream_frames(stream: BinaryIO, frame_ms: int = FRAME_MS) -> Iterator[bytes]:
    """Frames of a raw 16 kHz mono s16le stream (stdin, a pipe, a socket file) until it ends."""
    size = frame_bytes(frame_ms)
    pending = b''
    while True:
        chunk = stream.read(size - len(pending))
        if not chunk:
            break
        pending += chunk
        if len(pending) == size:
            yield pending
            pending = b''
    if pending:
        yield pending + bytes(size - len(pending))


class Microphone:
    """The robot's microphone through PortAudio (sounddevice), 16 kHz mono s16le frames.

    Frames are queued by the audio callback and read by `frames()`; `close()` ends the iteration.
    """

    def __init__(self, device: str = '', frame_ms: int = FRAME_MS, max_queued_s: float = 5.0) -> None:
        try:
            import sounddevice
        except OSError as exc:  # PortAudio shared library missing
            raise AudioSourceError(f'microphone unavailable: {exc} (install libportaudio2)') from None
        self._frame_ms = frame_ms
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=int(max_queued_s * 1000 / frame_ms))
        self.overflows = 0
        self._closed = threading.Event()
        chosen: int | str | None = None
        if device:
            chosen = int(device) if device.isdigit() else device
        try:
            self._stream = sounddevice.RawInputStream(
                samplerate=SAMPLE_RATE, channels=1, dtype='int16', device=chosen,
                blocksize=SAMPLE_RATE * frame_ms // 1000, callback=self._on_audio)
            self._stream.start()
        except (sounddevice.PortAudioError, ValueError) as exc:
            raise AudioSourceError(f'microphone {device or "(default)"} cannot record 16 kHz mono: {exc}') from None

    def _on_audio(self, data, _frames, _time, status) -> None:
        if status.input_overflow:
            self.overflows += 1
        try:
            self._queue.put_nowait(bytes(data))
        except queue.Full:      # the recogniser fell behind: drop audio rather than grow forever
            self.overflows += 1

    def frames(self) -> Iterator[bytes]:
        while not self._closed.is_set():
            try:
                frame = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if frame is None:
                break
            yield frame

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._stream.stop()
        self._stream.close()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
