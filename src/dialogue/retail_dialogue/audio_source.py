"""Where customer audio comes from: the microphone, a WAV file or a raw PCM stream.

Every source yields the same thing — 16 kHz mono signed 16-bit frames of a fixed duration — so
the voice activity detector and Vosk never see another format. WAV files recorded elsewhere
(44.1 kHz stereo from a phone, 8-bit, 32-bit) are converted; what cannot be converted (compressed
or float WAV, not a WAV at all) is rejected with one line saying what to do. Pure: no rclpy.
"""
from __future__ import annotations

import queue
import threading
import wave
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


def read_wav(path: str | Path) -> bytes:
    """A WAV file as 16 kHz mono s16le PCM, converting rate, channels and integer sample width."""
    path = Path(path)
    try:
        with wave.open(str(path), 'rb') as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
            if wav.getcomptype() != 'NONE':
                raise AudioSourceError(f'{path}: compressed WAV ({wav.getcompname()}) is not supported; '
                                       'convert it: sox IN -r 16000 -c 1 -b 16 OUT.wav')
            raw = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise AudioSourceError(f'{path}: no such file') from None
    except (wave.Error, EOFError) as exc:
        raise AudioSourceError(f'{path}: not a PCM WAV file ({exc}); '
                               'convert it: sox IN -r 16000 -c 1 -b 16 OUT.wav') from None
    except OSError as exc:
        raise AudioSourceError(f'{path}: cannot read ({exc.strerror})') from None
    if rate == SAMPLE_RATE and channels == 1 and width == SAMPLE_WIDTH:
        return raw[:len(raw) - len(raw) % SAMPLE_WIDTH]
    if width == 1:      # 8-bit WAV is unsigned
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.int32) - 128) * 256
    elif width == 2:
        samples = np.frombuffer(raw[:len(raw) - len(raw) % 2], dtype='<i2')
    elif width == 3:
        bytes3 = np.frombuffer(raw[:len(raw) - len(raw) % 3], dtype=np.uint8).reshape(-1, 3)
        samples = (bytes3[:, 0].astype(np.int32) | (bytes3[:, 1].astype(np.int32) << 8)
                   | (bytes3[:, 2].astype(np.int8).astype(np.int32) << 16)) / 256.0
    elif width == 4:
        samples = np.frombuffer(raw[:len(raw) - len(raw) % 4], dtype='<i4') / 65536.0
    else:
        raise AudioSourceError(f'{path}: {width * 8}-bit samples are not supported')
    samples = samples[:len(samples) - len(samples) % channels].reshape(-1, channels)
    return to_pcm16_mono_16k(samples, rate)


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
