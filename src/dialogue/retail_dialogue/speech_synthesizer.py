"""Speech out: espeak-ng voices, played on the audio device or written as WAV files.

Mandarin uses espeak-ng's `cmn` voice, English `en` (configurable per language). A robot without a
sound card (simulation, CI) writes each sentence to a WAV file instead and, by default, still takes
the sentence's duration to "say" it, so that listening and barge-in behave as on the robot.
Speaking stops within ~50 ms when asked (barge-in). Pure: no rclpy.
"""
from __future__ import annotations

import io
import itertools
import os
import shutil
import subprocess
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

DEFAULT_VOICES = {'zh': 'cmn', 'en': 'en'}
NO_DEVICE = 'none'


class SynthesisError(Exception):
    """Text could not be turned into audio; the message says why in one line."""


@dataclass(frozen=True)
class Speech:
    text: str
    language: str
    pcm: bytes            # mono s16le
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate

    def wav_bytes(self) -> bytes:
        buffer = io.BytesIO()
        with wave.open(buffer, 'wb') as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(self.sample_rate)
            wav.writeframes(self.pcm)
        return buffer.getvalue()


class EspeakSynthesizer:
    """Text -> Speech with espeak-ng, one voice per language ('zh', 'en', ...)."""

    def __init__(self, voices: dict[str, str] | None = None, rate_wpm: int = 160,
                 executable: str = 'espeak-ng') -> None:
        path = shutil.which(executable)
        if path is None:
            raise SynthesisError(f'{executable} is not installed (apt-get install espeak-ng)')
        self._executable = path
        self.voices = {lang: voice for lang, voice in (voices or DEFAULT_VOICES).items() if voice}
        if not self.voices:
            raise SynthesisError('no espeak-ng voice configured')
        self.rate_wpm = rate_wpm

    def voice_for(self, language: str) -> str:
        """The voice of `language` ('zh-CN' falls back to 'zh'); SynthesisError when there is none."""
        language = language.lower()
        for key in (language, language.split('-')[0].split('_')[0]):
            if key in self.voices:
                return self.voices[key]
        raise SynthesisError(f'no voice for language {language!r} (configured: {", ".join(self.voices)})')

    def synthesize(self, text: str, language: str) -> Speech:
        text = text.strip()
        if not text:
            raise SynthesisError('nothing to say (empty text)')
        voice = self.voice_for(language)
        try:
            done = subprocess.run([self._executable, '-v', voice, '-s', str(self.rate_wpm), '--stdin', '--stdout'],
                                  input=text.encode('utf-8'), capture_output=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            raise SynthesisError(f'espeak-ng took more than 30 s on {text[:40]!r}') from None
        if done.returncode != 0 or len(done.stdout) <= 44:
            reason = done.stderr.decode('utf-8', 'replace').strip().splitlines()
            raise SynthesisError(f'espeak-ng voice {voice!r} failed: {reason[-1] if reason else "no audio"}')
        # espeak-ng streams a WAV whose header sizes are placeholders: read what is there.
        with wave.open(io.BytesIO(done.stdout), 'rb') as wav:
            rate = wav.getframerate()
            pcm = wav.readframes(wav.getnframes())
        return Speech(text, language, pcm[:len(pcm) - len(pcm) % 2], rate)


class Player(Protocol):
    def play(self, speech: Speech, stop: threading.Event, audio_path: str) -> bool:
        """Say `speech`; True when finished, False when `stop` was set first."""

    def prepare(self, speech: Speech) -> str:
        """Anything to do before STARTED is announced; returns the WAV path written, or ''."""


class WavFilePlayer:
    """No audio device: write each sentence as a WAV file into `out_dir` (keeping the newest
    `keep_files`) and, when `realtime`, take the sentence's duration as if it were playing."""

    def __init__(self, out_dir: str | Path, keep_files: int = 200, realtime: bool = True) -> None:
        self.out_dir = Path(out_dir)
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SynthesisError(f'cannot create the speech output folder {self.out_dir}: {exc.strerror}') from None
        self.keep_files = keep_files
        self.realtime = realtime
        self._counter = itertools.count(1)

    def prepare(self, speech: Speech) -> str:
        stamp = time.strftime('%Y%m%d-%H%M%S')
        path = self.out_dir / f'{stamp}-{os.getpid()}-{next(self._counter):04d}-{speech.language}.wav'
        partial = path.with_suffix('.wav.part')
        partial.write_bytes(speech.wav_bytes())
        os.replace(partial, path)       # readers never see half a file
        self._prune()
        return str(path)

    def _prune(self) -> None:
        files = sorted(self.out_dir.glob('*.wav'), key=lambda p: p.stat().st_mtime)
        for old in files[:max(0, len(files) - self.keep_files)]:
            old.unlink(missing_ok=True)

    def play(self, speech: Speech, stop: threading.Event, audio_path: str) -> bool:
        if not self.realtime:
            return not stop.is_set()
        return not stop.wait(speech.duration_s)


class DevicePlayer:
    """Play on a PortAudio output device in 50 ms blocks, checking for a stop between blocks."""

    BLOCK_S = 0.05

    def __init__(self, device: str = '') -> None:
        try:
            import sounddevice
        except OSError as exc:
            raise SynthesisError(f'audio output unavailable: {exc} (install libportaudio2)') from None
        self._sd = sounddevice
        self._device: int | str | None = (int(device) if device.isdigit() else device) if device else None
        try:
            sounddevice.check_output_settings(device=self._device, channels=1, dtype='int16')
        except (sounddevice.PortAudioError, ValueError) as exc:
            raise SynthesisError(f'audio output device {device or "(default)"} unusable: {exc}') from None

    def prepare(self, speech: Speech) -> str:
        return ''

    def play(self, speech: Speech, stop: threading.Event, audio_path: str) -> bool:
        block = int(speech.sample_rate * self.BLOCK_S) * 2
        with self._sd.RawOutputStream(samplerate=speech.sample_rate, channels=1, dtype='int16',
                                      device=self._device) as stream:
            for start in range(0, len(speech.pcm), block):
                if stop.is_set():
                    stream.abort()
                    return False
                stream.write(speech.pcm[start:start + block])
        return not stop.is_set()


def open_player(audio_device: str, out_dir: str | Path, keep_files: int = 200,
                realtime: bool = True) -> tuple[Player, str]:
    """The device player, or the WAV-file player when `audio_device` is 'none' or unusable.

    Returns the player and, when falling back to files, the reason (to log), else ''.
    """
    if audio_device.lower() != NO_DEVICE:
        try:
            return DevicePlayer('' if audio_device == 'default' else audio_device), ''
        except SynthesisError as exc:
            return WavFilePlayer(out_dir, keep_files, realtime), f'{exc}; writing WAV files to {out_dir}'
    return WavFilePlayer(out_dir, keep_files, realtime), ''
