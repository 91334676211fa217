"""Speech out: espeak-ng voices, played on the audio device or written as WAV files.

Mandarin uses espeak-ng's `cmn-latn-pinyin` voice (its `cmn` voice reads Chinese characters with
English sounds), English `en` (configurable per language); Latin words inside a Mandarin reply
(brands, models: "华为Mate 60 Pro") are said by the English voice (espeak-ng SSML voice switch)
rather than spelt as pinyin; numbers in a Mandarin reply are written the way they are said before
espeak-ng reads them (`spoken_mandarin`: 5.5 -> 5点五, 50% -> 百分之50, 5,999 -> 5999: espeak-ng's
Mandarin drops the decimal point and reads % in English). `phonemes` gives espeak-ng's phonemes
of what a reply would say (the voices' check: Mandarin phonemes, not English letter names).
A reply is said sentence by sentence (`split_for_speech`): playback
starts once the first sentence is synthesised, the next one is synthesised while the first plays.
A robot without a sound card (simulation, CI) writes each reply to a WAV file instead and, by
default, still takes its duration to "say" it, so that listening and barge-in behave as on the
robot. Speaking stops within ~50 ms when asked (barge-in). Pure: no rclpy.
"""
from __future__ import annotations

import io
import itertools
import os
import re
import shutil
import subprocess
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from xml.sax.saxutils import escape

import numpy as np

DEFAULT_VOICES = {'zh': 'cmn-latn-pinyin', 'en': 'en'}
NO_DEVICE = 'none'
FIRST_CHUNK_CHARS = 24        # a longer first sentence is cut at its first comma (speech starts sooner)
_SENTENCE_END = re.compile(r'(?<=[。！？；!?;])|(?<=[.])(?=\s)')
_COMMA = re.compile(r'(?<=[，,、])')
_LATIN_RUN = re.compile(r'[A-Za-z][A-Za-z0-9.+\-]*(?: [A-Za-z0-9][A-Za-z0-9.+\-]*)*')
_THOUSANDS = re.compile(r'(?<=\d),(?=\d{3}(?!\d))')
_PERCENT = re.compile(r'(\d{1,12}(?:\.\d{1,12})?) ?[%％]')
_DECIMAL = re.compile(r'(?<=\d)\.(\d{1,12})')
_DIGITS_ZH = str.maketrans('0123456789', '零一二三四五六七八九')
MAX_TEXT_CHARS = 2000          # one reply; a longer text is refused (espeak-ng would take tens of seconds)


def spoken_mandarin(text: str) -> str:
    """Numbers in Mandarin text as they are said: 5,999 -> 5999, 50% -> 百分之50, 5.5 -> 5点五
    (espeak-ng's Mandarin voices drop a decimal point and say % in English; the digits after the
    point are said one by one: 399.90 -> 399点九零). Digits inside a
    Latin run (a model name: "Mate 60", "HD9285") are left to the English voice."""
    def said(piece: str) -> str:
        piece = _THOUSANDS.sub('', piece)
        piece = _PERCENT.sub(lambda m: f'百分之{m.group(1)}', piece)
        return _DECIMAL.sub(lambda m: '点' + m.group(1).translate(_DIGITS_ZH), piece)
    parts, last = [], 0
    for match in _LATIN_RUN.finditer(text):
        parts += [said(text[last:match.start()]), match.group(0)]
        last = match.end()
    parts.append(said(text[last:]))
    return ''.join(parts)


def split_for_speech(text: str, first_chunk_chars: int = FIRST_CHUNK_CHARS) -> list[str]:
    """A reply as the pieces it is synthesised in, in order: its sentences, the first one cut at
    its first comma when longer than `first_chunk_chars`. Joined, they are the reply."""
    pieces = [p.strip() for p in _SENTENCE_END.split(text.strip()) if p.strip()]
    if pieces and len(pieces[0]) > first_chunk_chars:
        head = [p.strip() for p in _COMMA.split(pieces[0], maxsplit=1) if p.strip()]
        pieces[:1] = head
    return pieces


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
                 executable: str = 'espeak-ng', volume: float = 1.0) -> None:
        path = shutil.which(executable)
        if path is None:
            raise SynthesisError(f'{executable} is not installed (apt-get install espeak-ng)')
        self._executable = path
        self.voices = {lang: voice for lang, voice in (voices or DEFAULT_VOICES).items() if voice}
        if not self.voices:
            raise SynthesisError('no espeak-ng voice configured')
        self.rate_wpm = rate_wpm
        self.volume = volume          # 0..1 share of espeak-ng's own loudness; read on each synthesis

    def voice_for(self, language: str) -> str:
        """The voice of `language` ('zh-CN' falls back to 'zh'); SynthesisError when there is none."""
        language = language.lower()
        for key in (language, language.split('-')[0].split('_')[0]):
            if key in self.voices:
                return self.voices[key]
        raise SynthesisError(f'no voice for language {language!r} (configured: {", ".join(self.voices)})')

    def _command(self, text: str, language: str, *output: str) -> tuple[list[str], str, str]:
        """(espeak-ng command, its input, the voice) for `text` in `language`."""
        text = text.strip()
        if not text:
            raise SynthesisError('nothing to say (empty text)')
        if len(text) > MAX_TEXT_CHARS:
            raise SynthesisError(f'text of {len(text)} characters is longer than {MAX_TEXT_CHARS}: not said')
        voice = self.voice_for(language)
        command = [self._executable, '-v', voice, '-s', str(self.rate_wpm), '--stdin', *output]
        spoken = text
        if voice.startswith('cmn'):
            spoken = spoken_mandarin(text)
            latin_voice = self.voices.get('en')
            if latin_voice and _LATIN_RUN.search(spoken):
                # Latin words in a Mandarin reply: said by the English voice, not spelt as pinyin. Each
                # piece names its voice (after a nested </voice> espeak-ng falls back to plain `cmn`).
                spoken = _ssml_voices(spoken, voice, latin_voice)
                command.insert(1, '-m')
        return command, spoken, voice

    def _run(self, command: list[str], spoken: str, text: str, voice: str) -> bytes:
        try:
            done = subprocess.run(command, input=spoken.encode('utf-8'), capture_output=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            raise SynthesisError(f'espeak-ng took more than 30 s on a text of {len(text)} characters') from None
        if done.returncode != 0 or not done.stdout.strip():
            reason = done.stderr.decode('utf-8', 'replace').strip().splitlines()
            raise SynthesisError(f'espeak-ng voice {voice!r} failed: {reason[-1] if reason else "no output"}')
        return done.stdout

    def synthesize(self, text: str, language: str) -> Speech:
        command, spoken, voice = self._command(text, language, '--stdout')
        out = self._run(command, spoken, text, voice)
        if len(out) <= 44:
            raise SynthesisError(f'espeak-ng voice {voice!r} failed: no audio')
        # espeak-ng streams a WAV whose header sizes are placeholders: read what is there.
        with wave.open(io.BytesIO(out), 'rb') as wav:
            rate = wav.getframerate()
            pcm = wav.readframes(wav.getnframes())
        return Speech(text.strip(), language, scaled(pcm[:len(pcm) - len(pcm) % 2], self.volume), rate)

    def phonemes(self, text: str, language: str) -> list[str]:
        """espeak-ng's phonemes (`-x`) of what `synthesize` would say, one string per voice piece:
        a Mandarin piece read as Mandarin is tone-numbered syllables; a voice falling back to
        English marks it `(en)`."""
        command, spoken, voice = self._command(text, language, '-q', '-x')
        out = self._run(command, spoken, text, voice)
        return [line.strip() for line in out.decode('utf-8', 'replace').splitlines() if line.strip()]


def scaled(pcm: bytes, volume: float) -> bytes:
    """Mono s16le samples at `volume` (0..1, clamped) of their loudness; 1.0 leaves them as they are."""
    volume = min(max(float(volume), 0.0), 1.0)
    if volume >= 1.0:
        return pcm
    samples = np.frombuffer(pcm, dtype='<i2').astype(np.float32) * volume
    return np.rint(samples).astype('<i2').tobytes()


def _ssml_voices(text: str, voice: str, latin_voice: str) -> str:
    """`text` as sibling SSML voice elements: Latin runs in `latin_voice`, the rest in `voice`."""
    def element(name: str, piece: str) -> str:
        return f'<voice name="{escape(name, {chr(34): "&quot;"})}">{escape(piece)}</voice>' if piece.strip() else ''
    parts, last = [], 0
    for match in _LATIN_RUN.finditer(text):
        parts += [element(voice, text[last:match.start()]), element(latin_voice, match.group(0))]
        last = match.end()
    parts.append(element(voice, text[last:]))
    return ''.join(parts)


class Player(Protocol):
    def play(self, speech: Speech, stop: threading.Event, audio_path: str) -> bool:
        """Say `speech`; True when finished, False when `stop` was set first."""

    def prepare(self, speech: Speech) -> str:
        """Anything to do before STARTED is announced; returns the WAV path written, or ''."""

    def complete(self, speech: Speech, audio_path: str) -> None:
        """The whole reply, once said sentence by sentence (`audio_path` from `prepare`)."""


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
        self._write(path, speech)
        self._prune()
        return str(path)

    @staticmethod
    def _write(path: Path, speech: Speech) -> None:
        partial = path.with_suffix('.wav.part')
        partial.write_bytes(speech.wav_bytes())
        os.replace(partial, path)       # readers never see half a file

    def complete(self, speech: Speech, audio_path: str) -> None:
        """The reply's file (first sentence only when STARTED was announced) gets the whole reply."""
        if audio_path:
            self._write(Path(audio_path), speech)

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

    def complete(self, speech: Speech, audio_path: str) -> None:
        pass

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
