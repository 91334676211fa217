"""Node /dialogue/asr: hears customers and publishes what they said on /dialogue/utterances.

Audio comes from the microphone (`source: mic`), one WAV file, or a folder watched for WAV files
(the demo and simulation drop customer audio there; handled files move to done/ or rejected/).
Our VAD ends each utterance, sooner when the words so far look finished, later when they need a
continuation (vad.py, utterance_end.py). The back end (`backend`): Vosk with the catalog's phrase list where
a Vosk model is installed for every language (partial and final text), else Whisper base
(whisper_asr.py, offline, zh/en, final text only) told the dialogue's current language by
/dialogue/listen_context and given the catalogue's words as hints. Every final result is matched
to the catalogue (catalog_match.py): the product heard and how sure, on the utterance, so the
dialogue confirms an unsure one. When a customer starts talking while the robot speaks, a stop
request goes to the TTS (barge-in).
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from std_msgs.msg import Empty

from retail_common import names
from retail_common.catalog import CatalogError, load_catalog
from retail_ros.node_support import (ConfigError, declare_params, diagnostic_status, live_store_for, main_for,
                                        watch_store)
from retail_ros.params import ParamSpec
from retail_ros.qos import LATCHED
from retail_dialogue.audio_source import AudioSourceError, Microphone, frame_bytes, stream_frames, wav_frames
from retail_dialogue.catalog_match import CatalogMatcher
from retail_dialogue.speech_recognizer import (Heard, Listener, LoadedModel, ModelError, SpeechStarted,
                                               StreamingRecognizer, build_phrase_list, catalog_terms,
                                               load_model)
from retail_dialogue.vad import EndpointDetector, VadConfig
from retail_dialogue import whisper_asr
from retail_interfaces.msg import ListenContext, SpeechStatus, Utterance

LANGUAGES = ('zh', 'en', 'ko')
BACKENDS = ('auto', 'vosk', 'whisper')
MIC = 'mic'
SUBSCRIBER_WAIT_S = 5.0
FILE_LEAD_IN_MS = 300   # silence put before a WAV clip (see audio_source.wav_frames)
SPECS = [
    ParamSpec('source', MIC, "'mic', a WAV file, a folder watched for WAV files, or a named pipe (FIFO) of "
              "raw 16 kHz mono s16le audio."),
    ParamSpec('mic_device', '', "PortAudio input device name or index ('' = default)."),
    ParamSpec('languages', ['zh', 'en'], 'Languages recognised (Vosk: at once, each needs models.<lang>, the more '
              'confident result wins; Whisper: the one the dialogue says on /dialogue/listen_context).'),
    ParamSpec('backend', 'auto', "'auto': Vosk where every language has a usable Vosk model, else Whisper base "
              "(zh/en, installed by robot_ws/install.sh); 'vosk' or 'whisper' to choose.", choices=list(BACKENDS)),
    ParamSpec('whisper.language', 'zh', 'Language Whisper hears until the dialogue says one (zh or en).',
              choices=list(whisper_asr.LANGUAGES)),
    ParamSpec('whisper.threads', 2, 'CPU threads Whisper decodes with.', min=1, max=16),
    ParamSpec('whisper.beam_size', 1, 'Whisper beam width (1: greedy, the fastest; 5: faster-whisper\'s default).',
              min=1, max=10),
    ParamSpec('whisper.tokens_per_s', float(whisper_asr.TOKENS_PER_S), 'A decode stops after '
              f'{whisper_asr.TOKENS_BASE} + this many tokens per second of the utterance (a decoder looping on '
              f'unclear audio or repeating the hints stops there; 0: only the {whisper_asr.MAX_NEW_TOKENS}-token cap).',
              min=0.0, max=100.0),
    ParamSpec('whisper.window_pad_s', float(whisper_asr.WINDOW_PAD_S), 'The encoder sees the utterance + this '
              'much of the padding of Whisper\'s 30 s window (its cost grows with the window; 30: the whole '
              'window, as Whisper was trained).', min=0.0, max=30.0),
    ParamSpec('whisper.warm_up', True, 'Decode a second of noise before listening, so the first customer does '
              'not wait for the model\'s first-call set-up.'),
    ParamSpec('whisper.check_language', True, 'Let the audio\'s language (zh/en, Whisper\'s identification) win '
              'over the dialogue\'s when strongly favoured (a customer answering in the other language).'),
    *[ParamSpec(f'models.{lang}', '', f'Vosk model folder for {lang}.') for lang in LANGUAGES],
    ParamSpec('require_models', True, 'A missing or broken model stops the node (false: that language is '
              'skipped and reported on /diagnostics; simulation).'),
    ParamSpec('catalog', '', "Catalog CSV whose names, brands and categories form the phrase list ('' = the store's)."),
    ParamSpec('store_dir', '', "Store folder whose catalog forms the phrase list when `catalog` is ''."),
    ParamSpec('data_dir', '', "Robot data folder: the platform's catalog in <data_dir>/platform overlays the store's."),
    ParamSpec('phrase_list', True, 'Restrict recognition to catalog terms + extra_phrases (dynamic-graph models).'),
    ParamSpec('extra_phrases', [''], 'Command words and phrases added to the phrase list.'),
    ParamSpec('vad.aggressiveness', 2, 'webrtcvad mode: 0 lenient .. 3 strict about what is speech.', min=0, max=3),
    ParamSpec('vad.start_speech_ms', 100, 'Voiced audio that opens an utterance (ms).', min=20, max=2000),
    ParamSpec('vad.end_silence_ms', 300, 'Silence that ends an utterance (ms) when its words are not judged '
              '(vad.pause_ms 0, nothing heard yet, or judged 4 times already).', min=60, max=5000),
    ParamSpec('vad.pause_ms', 120, 'Silence after which the words so far are judged finished or not (Whisper: '
              'decoded then, so the decode runs during the silence); 0: always vad.end_silence_ms.', min=0, max=2000),
    ParamSpec('vad.end_finished_ms', 200, 'Silence that ends an utterance whose words look finished (ms).',
              min=60, max=5000),
    ParamSpec('vad.end_unfinished_ms', 800, 'Silence that ends an utterance whose words need a continuation '
              '("我想买一台…", "where can I find the…": a customer pausing mid-sentence) (ms).', min=60, max=5000),
    ParamSpec('vad.noise_margin_db', 8.0, 'A frame webrtcvad calls speech counts as voice only this far above '
              'the noise floor (speech band 250-4000 Hz): in store babble, music or air conditioning the silence '
              'after a question is heard; 0: webrtcvad alone (dB).', min=0.0, max=40.0),
    ParamSpec('vad.noise_window_s', 3.0, 'The noise floor: a low percentile of the levels of this much audio (s).',
              min=0.2, max=60.0),
    ParamSpec('vad.noise_percentile', 10.0, 'The percentile of those levels that is the noise floor.', min=1.0,
              max=50.0),
    ParamSpec('vad.noise_open_extra_db', 3.0, 'Opening an utterance needs vad.noise_margin_db + this over the '
              'noise floor (a burst of babble opens none) (dB).', min=0.0, max=20.0),
    ParamSpec('vad.noise_hangover_ms', 120, 'Inside an utterance webrtcvad\'s speech frames still count this long '
              'after the last one above the floor + margin (weak word endings; never opens an utterance) (ms).',
              min=0, max=1000),
    ParamSpec('vad.pre_roll_ms', 300, 'Audio kept from before the start of speech (ms).', min=0, max=2000),
    ParamSpec('vad.max_utterance_s', 15.0, 'Longest utterance before it is cut (s).', min=1.0, max=120.0),
    ParamSpec('partial_every_ms', 300, 'How often partial results may be published (ms).', min=20, max=5000),
    ParamSpec('barge_in', True, 'Stop the robot talking when a customer starts speaking.'),
    ParamSpec('barge_in_min_dbfs', -40.0, 'While the robot speaks, speech quieter than this (dBFS, loudest '
              '20 ms) is taken for its own voice in the microphone and ignored; -100 hears everything.',
              min=-100.0, max=0.0),
    ParamSpec('folder_poll_s', 0.25, 'How often a source folder is checked for new WAV files (s).', min=0.02, max=10.0),
]


def model_missing_line(missing: list[str], errors: list[str], some_loaded: bool) -> str:
    """The one WARNING line the ASR logs when Vosk models are missing (not an error in simulation)."""
    off = (f'speech recognition is off for {", ".join(missing)}' if some_loaded
           else 'speech recognition is off (customers can still type: retailbot chat --ros)')
    more = f' (and {len(errors) - 1} more like it)' if len(errors) > 1 else ''
    return (f'{off}: {errors[0]}{more}; install the models named in config/dialogue.yaml (models.*) or Whisper '
            'base (robot_ws/install.sh), or launch with speech_in:=false to run without speech recognition')


def _stamp(seconds: float) -> Time:
    whole = int(seconds)
    return Time(sec=whole, nanosec=int((seconds - whole) * 1e9))


class AsrNode(Node):
    def __init__(self, *, loaded_models: dict[str, LoadedModel] | None = None,
                 whisper_transcriber: whisper_asr.WhisperTranscriber | None = None, **kwargs):
        """`loaded_models` / `whisper_transcriber` let a test or a composed process share already
        loaded Vosk models / an already loaded Whisper model."""
        super().__init__('asr', namespace='dialogue', **kwargs)
        self.params = declare_params(self, SPECS)
        fqn = self.get_fully_qualified_name()
        languages = [lang for lang in self.params.languages if lang]
        unknown = [lang for lang in languages if lang not in LANGUAGES]
        if not languages or unknown:
            raise ConfigError(f'node {fqn}: key \'languages\': expected some of {", ".join(LANGUAGES)}, '
                              f'got {self.params.languages!r}')
        self.source = self._check_source(self.params.source)
        self._problem = ''
        self._problem_level = DiagnosticStatus.OK
        self.missing_languages: list[str] = []
        whisper_languages = [lang for lang in languages if lang in whisper_asr.LANGUAGES]
        models, whisper = self._choose_models(languages, whisper_languages, loaded_models, whisper_transcriber)
        self.listener: Listener | None = None
        self.live = None
        catalog = self._catalog()
        self.matcher: CatalogMatcher | None = None
        self._build_matcher(catalog, self.live.current().zones if self.live is not None else None)
        self.whisper: whisper_asr.WhisperRecognizer | None = None
        self._listen_with(models, whisper, whisper_languages, catalog, languages)
        self.context_version_warned = False
        self.create_subscription(ListenContext, names.LISTEN_CONTEXT, self._on_listen_context, LATCHED)
        self._init_rest(models)

    def _listen_with(self, models, whisper, whisper_languages, catalog, languages) -> None:
        """The listener: our VAD in front of Whisper or Vosk (none: reported on /diagnostics)."""
        recognizer = None
        if whisper is not None:
            recognizer = self.whisper = whisper_asr.WhisperRecognizer(
                whisper, [lang for lang in whisper_languages if lang not in self.missing_languages],
                self.params.whisper_language, whisper_asr.catalog_hints(catalog) if catalog is not None else None,
                check_language=self.params.whisper_check_language)
        elif models:
            recognizer = StreamingRecognizer(models, self._phrase_lists(models, catalog), self.params.partial_every_ms)
        if recognizer is not None:
            self.listener = Listener(recognizer, EndpointDetector(VadConfig(
                aggressiveness=self.params.vad_aggressiveness, start_speech_ms=self.params.vad_start_speech_ms,
                end_silence_ms=self.params.vad_end_silence_ms, pre_roll_ms=self.params.vad_pre_roll_ms,
                max_utterance_s=self.params.vad_max_utterance_s, pause_ms=self.params.vad_pause_ms,
                end_finished_ms=self.params.vad_end_finished_ms,
                end_unfinished_ms=self.params.vad_end_unfinished_ms,
                noise_margin_db=self.params.vad_noise_margin_db, noise_window_s=self.params.vad_noise_window_s,
                noise_percentile=self.params.vad_noise_percentile,
                noise_open_extra_db=self.params.vad_noise_open_extra_db,
                noise_hangover_ms=self.params.vad_noise_hangover_ms)))
        else:
            tried = 'Vosk model' if self.params.backend == 'vosk' else 'Vosk model or Whisper base'
            self._problem = f'no speech recognition: no usable {tried} for {", ".join(languages)}'
            self._problem_level = DiagnosticStatus.WARN     # require_models is false: logged once above

    def _init_rest(self, models) -> None:
        """Topics, the store watch, diagnostics and the listening thread."""
        self.utterance_pub = self.create_publisher(Utterance, names.UTTERANCES, 10)
        self.stop_pub = self.create_publisher(Empty, names.TTS_STOP, 10)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        self.create_subscription(SpeechStatus, names.SPEECH_STATUS, self._on_speech_status, 10)
        self._models = models
        if self.live is not None and self.listener is not None:
            watch_store(self, self.live, self._on_store_swap)     # a new catalog: a new phrase list
        self.create_timer(1.0, self._publish_diagnostics)
        self.robot_speaking = False
        self.finals = 0
        self.echoes_ignored = 0
        self._closing = threading.Event()
        self._microphone: Microphone | None = None
        self._pipe_fd: int | None = None
        self._worker = threading.Thread(target=self._run, name='asr', daemon=True)
        if self.listener is not None:
            self._worker.start()

    # --- setup ----------------------------------------------------------------------------------

    def _catalog(self):
        """The catalog whose terms form the phrase list: the `catalog` file when given (fixed), else
        the store model's (store_dir + data_dir, kept live: `_on_store_swap`), else none."""
        if self.params.catalog:
            try:
                catalog = load_catalog(self.params.catalog)
            except CatalogError as exc:
                raise ConfigError(f"node {self.get_fully_qualified_name()}: key 'catalog': {exc}") from None
            for issue in catalog.issues:
                self.get_logger().warning(f'catalog {self.params.catalog} {issue}: row skipped')
            return catalog
        if self.params.store_dir:
            self.live = live_store_for(self, self.params.store_dir, self.params.data_dir)
            return self.live.current().catalog
        return None

    def _choose_models(self, languages: list[str], whisper_languages: list[str],
                       loaded_models: dict[str, LoadedModel] | None,
                       given: whisper_asr.WhisperTranscriber | None):
        """(Vosk models, Whisper model or None) per `backend`; a language heard by neither is a
        ConfigError (require_models) or logged once and left out (`missing_languages`)."""
        backend = self.params.backend
        models, vosk_missing = self._load_vosk(languages, loaded_models) if backend != 'whisper' else ([], [])
        whisper = None
        if backend == 'whisper' or (backend == 'auto' and vosk_missing and whisper_languages):
            whisper, why_not = self._whisper(given)
            if whisper is not None:
                if vosk_missing:
                    self.get_logger().info(f'No usable Vosk model for {", ".join(lang for lang, _ in vosk_missing)}: '
                                           f'hearing {", ".join(whisper_languages)} with Whisper base')
                models, vosk_missing = [], [(lang, ModelError(f'Whisper base does not recognise {lang}'))
                                            for lang in languages if lang not in whisper_asr.LANGUAGES]
            elif backend == 'whisper':
                vosk_missing = [(lang, ModelError(why_not)) for lang in languages]
        self._missing(vosk_missing, heard_by_some=bool(models) or whisper is not None,
                      key_backend=backend == 'whisper' or whisper is not None)
        return models, whisper

    def _missing(self, missing: list, heard_by_some: bool, key_backend: bool) -> None:
        """Languages no model hears: a ConfigError (require_models), else one warning line."""
        fqn = self.get_fully_qualified_name()
        model_errors = []
        for lang, exc in missing:
            if self.params.require_models:
                key = 'backend' if key_backend else f'models.{lang}'
                raise ConfigError(f"node {fqn}: key '{key}': {exc}")
            self.missing_languages.append(lang)
            model_errors.append(str(exc))
        if model_errors:
            # One line for all missing models (a simulation without Vosk models is normal): what is
            # off, the first reason, and how to switch speech recognition off on purpose.
            self.get_logger().warning(model_missing_line(self.missing_languages, model_errors, heard_by_some))

    def _load_vosk(self, languages: list[str], loaded_models: dict[str, LoadedModel] | None):
        """(the Vosk models loaded, [(language, ModelError)] of the others)."""
        loaded: list[LoadedModel] = []
        missing = []
        for lang in languages:
            if loaded_models and lang in loaded_models:
                loaded.append(loaded_models[lang])
                continue
            try:
                loaded.append(load_model(getattr(self.params, f'models_{lang}'), lang))
            except ModelError as exc:
                missing.append((lang, exc))
        return loaded, missing

    def _on_store_swap(self, store) -> None:
        if (store.catalog, store.zones) == self._words:
            return          # appointments, profiles, campaigns: the words heard stay the same
        if self.whisper is not None:
            self.whisper.set_hints(whisper_asr.catalog_hints(store.catalog))     # from the next utterance on
        else:
            lists = self._phrase_lists(self._models, store.catalog)
            if lists is not None:
                self.listener.recognizer.set_phrase_lists(lists)      # from the next utterance on
        self._build_matcher(store.catalog, store.zones)

    def _build_matcher(self, catalog, zones) -> None:
        """The catalogue matcher (an entity index: seconds on a busy robot) is built off the
        listening and ROS threads and swapped in when ready; until then utterances carry no product
        (the dialogue answers them as typed text)."""
        self._words = (catalog, zones)
        if catalog is None:
            return

        def build() -> None:
            self.matcher = CatalogMatcher(catalog, zones)
        threading.Thread(target=build, name='asr-catalog', daemon=True).start()

    def _whisper(self, given: whisper_asr.WhisperTranscriber | None):
        """(the Whisper model, '') or (None, why not): installed and matching its pinned hash?"""
        if given is not None:
            return given, ''
        try:
            return whisper_asr.WhisperTranscriber(cpu_threads=self.params.whisper_threads,
                                                  beam_size=self.params.whisper_beam_size,
                                                  tokens_per_s=self.params.whisper_tokens_per_s or None,
                                                  window_pad_s=self.params.whisper_window_pad_s), ''
        except whisper_asr.WhisperModelError as exc:
            return None, str(exc)

    def _on_listen_context(self, msg: ListenContext) -> None:
        """The dialogue's current language: Whisper hears it from the next utterance on."""
        if msg.version > ListenContext.VERSION and not self.context_version_warned:
            self.context_version_warned = True
            self.get_logger().warning(f'{names.LISTEN_CONTEXT} version {msg.version} is newer than the '
                                      f'{ListenContext.VERSION} this node reads: reading its language only')
        if self.whisper is not None and msg.language and not self.whisper.set_language(msg.language):
            self.get_logger().warning(f'{names.LISTEN_CONTEXT}: language {msg.language!r} is not one Whisper '
                                      f'is set up for ({", ".join(self.whisper.languages)}); keeping '
                                      f'{self.whisper.language}')

    def _phrase_lists(self, models: list[LoadedModel], catalog):
        if not self.params.phrase_list:
            return None
        terms = [p for p in self.params.extra_phrases if p]
        if catalog is not None:
            terms = catalog_terms(catalog) + terms
        lists = {}
        for model in models:
            if not model.dynamic_graph:
                self.get_logger().warning(f'Vosk model {model.path} ({model.language}) has a static graph: '
                                          'no phrase list, free recognition')
                continue
            lists[model.language] = build_phrase_list(terms, model.knows)
            self.get_logger().info(
                f'Phrase list for {model.language}: {len(lists[model.language].phrases)} phrases '
                f'({len(lists[model.language].dropped)} terms not in the model\'s vocabulary)')
        return lists

    def _check_source(self, source: str) -> str:
        if source == MIC:
            return source
        path = Path(source).expanduser()
        if path.is_fifo():
            return str(path)          # a named pipe of raw 16 kHz mono s16le audio, like a microphone
        if path.suffix.lower() == '.wav':
            if not path.is_file():
                raise ConfigError(f"node {self.get_fully_qualified_name()}: key 'source': "
                                  f'WAV file {path} does not exist')
            return str(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"node {self.get_fully_qualified_name()}: key 'source': "
                              f'cannot use folder {path}: {exc.strerror}') from None
        return str(path)

    # --- listening ------------------------------------------------------------------------------

    def _run(self) -> None:
        if self.whisper is not None and self.params.whisper_warm_up:
            seconds = self.whisper.transcriber.warm_up()
            self.get_logger().info(f'Whisper base warmed up in {seconds:.1f} s')
        try:
            if self.source == MIC:
                self._listen_microphone()
            elif Path(self.source).is_fifo():
                self._listen_pipe(Path(self.source))
            elif Path(self.source).is_dir():
                self._watch_folder(Path(self.source))
            else:
                self._listen_single_file(Path(self.source))
        except Exception as exc:  # noqa: BLE001 - reported on /diagnostics instead of a silent thread death
            self._report_problem(f'listening stopped: {type(exc).__name__}: {exc}', DiagnosticStatus.ERROR)
            raise

    def _until_closed(self, frames: Iterable[bytes]) -> Iterator[bytes]:
        for frame in frames:
            if self._closing.is_set():
                return
            yield frame

    def _listen(self, frames: Iterable[bytes], label: str) -> None:
        t0 = time.time()
        customer = True     # the current utterance is a customer's, not the robot's own voice
        for event in self.listener.listen(self._until_closed(frames)):
            if self._closing.is_set() or not self.context.ok():
                return
            if isinstance(event, SpeechStarted):
                customer = self._on_speech_started(event, label)
            elif customer:
                self._publish(event, t0)

    def _listen_microphone(self) -> None:
        while not self._closing.is_set():
            try:
                self._microphone = Microphone(self.params.mic_device)
            except AudioSourceError as exc:
                self._report_problem(f'{exc}; retrying in 5 s')
                self._closing.wait(5.0)
                continue
            self._problem = ''
            self.get_logger().info('Listening on the microphone')
            self._listen(self._microphone.frames(), 'microphone')

    def _listen_pipe(self, path: Path) -> None:
        """A named pipe of raw 16 kHz mono s16le audio (a recorder, a benchmark playing WAV files in
        real time): heard like a microphone. Opened read-write so a writer going away is no end of
        the stream; `destroy_node` writes a frame of silence to wake the read."""
        self._pipe_fd = os.open(path, os.O_RDWR)
        self.get_logger().info(f'Listening to the audio pipe {path}')
        with os.fdopen(self._pipe_fd, 'rb', buffering=0) as stream:
            self._listen(stream_frames(stream), path.name)

    def _listen_single_file(self, path: Path) -> None:
        """One WAV given as the source: wait (up to 5 s) for a listener so the result is not lost."""
        deadline = time.monotonic() + SUBSCRIBER_WAIT_S
        while self.utterance_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            if self._closing.wait(0.05):
                return
        self._listen_file(path)

    def _listen_file(self, path: Path) -> bool:
        self.get_logger().info(f'Listening to {path.name}')
        try:
            frames = list(wav_frames(path, lead_in_ms=FILE_LEAD_IN_MS))
        except AudioSourceError as exc:
            self._report_problem(f'{exc}; file skipped')
            return False
        self._listen(frames, path.name)
        return True

    def _watch_folder(self, folder: Path) -> None:
        """Handle WAV files dropped into `folder` once their size stops changing."""
        self.get_logger().info(f'Listening to WAV files dropped into {folder}')
        sizes: dict[Path, int] = {}
        while not self._closing.wait(self.params.folder_poll_s):
            try:
                current = {p: p.stat().st_size for p in sorted(folder.glob('*.wav')) if p.is_file()}
            except OSError:             # a file vanished while listing: look again next time
                continue
            for path, size in list(current.items()):
                if sizes.get(path) != size or self._closing.is_set():
                    continue
                target = folder / ('done' if self._listen_file(path) else 'rejected')
                try:
                    target.mkdir(exist_ok=True)
                    os.replace(path, target / path.name)
                except OSError as exc:
                    self._report_problem(f'cannot move {path.name} to {target}: {exc.strerror}')
                current.pop(path)
            sizes = current

    def _on_speech_started(self, started: SpeechStarted, label: str) -> bool:
        """Barge-in. Returns False for speech taken for the robot's own voice in the microphone."""
        if not self.robot_speaking:
            return True
        if started.level_dbfs < self.params.barge_in_min_dbfs:
            self.echoes_ignored += 1
            self.get_logger().debug(f'Ignoring speech at {started.level_dbfs:.0f} dBFS while the robot '
                                    f'speaks ({label}): taken for its own voice')
            return False
        if self.params.barge_in:
            self.get_logger().info(f'Customer started talking ({label}) while the robot speaks: stopping it')
            self.stop_pub.publish(Empty())
        return True

    def _publish(self, heard: Heard, t0: float) -> None:
        rec = heard.recognition
        msg = Utterance(text=rec.text, language=rec.language, is_final=rec.is_final,
                        confidence=float(rec.confidence), start=_stamp(t0 + heard.start_s),
                        end=_stamp(t0 + heard.end_s), track_id=0)
        matcher = self.matcher
        product = matcher.match(rec.text, rec.language, rec.confidence) if rec.is_final and matcher else None
        if product is not None:
            msg.product_sku, msg.product_confidence = product.sku, float(product.confidence)
            msg.catalog_text = '' if product.exact else product.catalog_text
        msg.header.stamp = self.get_clock().now().to_msg()
        self.utterance_pub.publish(msg)
        if rec.is_final:
            self.finals += 1
            heard_product = f' [product {msg.product_sku}, {msg.product_confidence:.2f}]' if msg.product_sku else ''
            # Never the words (a name, a phone number): log files stay on disk, and "forget this
            # member" cannot find her in them. The words go to the dialogue on the topic only.
            self.get_logger().info(f'Customer said ({rec.language}, confidence {rec.confidence:.2f}): '
                                   f'{len(rec.text)} characters{heard_product}')

    def _on_speech_status(self, msg: SpeechStatus) -> None:
        self.robot_speaking = msg.state == SpeechStatus.STARTED

    # --- health ---------------------------------------------------------------------------------

    def _report_problem(self, problem: str, level: bytes = DiagnosticStatus.WARN) -> None:
        if problem != self._problem:
            self.get_logger().error(problem)
        self._problem, self._problem_level = problem, level

    def _publish_diagnostics(self) -> None:
        level, message = DiagnosticStatus.OK, f'listening ({self.source})'
        if self.missing_languages:
            level, message = DiagnosticStatus.WARN, f'no Vosk model for {", ".join(self.missing_languages)}'
        if self._problem:
            level, message = max(level, self._problem_level), self._problem
        status = diagnostic_status('dialogue/asr', level, message, {
            'backend': 'whisper' if self.whisper is not None else ('vosk' if self.listener else ''),
            'languages': ','.join(self.listener.recognizer.languages) if self.listener else '',
            'missing_languages': ','.join(self.missing_languages), 'utterances': self.finals,
            'echoes_ignored': self.echoes_ignored,
            'robot_speaking': self.robot_speaking})
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)

    def destroy_node(self) -> None:
        self._closing.set()
        if self._microphone is not None:
            self._microphone.close()
        if self._pipe_fd is not None:
            try:
                os.write(self._pipe_fd, bytes(frame_bytes()))     # wakes the blocked read
            except OSError:
                pass
        if self._worker.is_alive():
            self._worker.join(timeout=5.0)
        super().destroy_node()


main = main_for(AsrNode)
