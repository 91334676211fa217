"""Tuning split of the VAD's noise floor (vad.noise_margin_db, noise_percentile, noise_window_s):
the grid its shipped values were chosen on. VAD only (no Whisper), seconds to run.

Not the bench's questions or babble: 10 other espeak-ng questions (5 en, 5 zh) and 6 with a pause
mid-sentence (0.3/0.45/0.6 s), 1.5 s of silence or noise before and 4 s after (a stream going on),
clean and in three noises made with sox at 20 and 10 dB SNR: store babble of six other shop
sentences over pink noise (as benches/speech_chain.py makes it), air conditioning (brown noise
under 1.5 kHz), music (plucked chords, looped). Per setting: median VAD end after the voice (fixed
300 ms end: vad.pause_ms 0), clips whose utterance never ended within 3 s ("n"), ends inside the
voice of the plain questions ("q": cuts) and of the paused ones ("p": the pause heard; in quiet the
count webrtcvad alone gives), and on 60 s of each noise alone the utterances opened and the share
of time inside one; in quiet, the frames whose verdict differs from webrtcvad alone (the hangover
is the shortest that makes that 0: quiet behaves as before). Report figures come from benches/speech_chain.py (held out).

  .venv/bin/python benches/vad_noise_floor.py [--grid]     # shipped vs webrtcvad alone, or the grid
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speech_chain as sc  # noqa: E402

BABBLE = [('en', 'Has anyone seen my little boy in a red coat?'), ('zh', '这边的洗衣机正在打折'),
          ('en', 'The pharmacy closes at nine tonight.'), ('zh', '请问有没有大一号的'),
          ('en', 'Two for one on all breakfast cereals.'), ('zh', '会员可以积分吗')]
QUESTIONS = [('en', 'Could you tell me where the printer ink is?'), ('en', 'I would like to buy a new kettle.'),
             ('en', 'Is there a discount on this blender?'), ('en', 'What time does the store close today?'),
             ('en', 'Where are the headphones?'), ('zh', '洗衣机在几楼'), ('zh', '这个手机有优惠吗'), ('zh', '我要找吸尘器'),
             ('zh', '冰箱打几折'), ('zh', '请问卫生间在哪里')]
PAUSED = [('en', 'I need', 'a phone charger.'), ('en', 'Where are the', 'vacuum cleaners?'),
          ('en', 'Can I see', 'the blue kettle?'), ('zh', '我想看看', '洗碗机'), ('zh', '那个', '电风扇多少钱'),
          ('zh', '小米的', '手环有吗')]
CONDITIONS = ('clean', 'babble20', 'babble10', 'hvac20', 'hvac10', 'music20', 'music10')


def noises(folder: Path) -> dict[str, Path]:
    sc.BABBLE = BABBLE
    out = {'babble': sc.store_noise(folder, seconds=70.0)}
    synth = ['-n', '-r', str(sc.RATE), '-c', '1', '-b', '16']
    out['hvac'] = folder / 'hvac.wav'
    sc.sox(*synth, str(out['hvac']), 'synth', '70', 'brownnoise', 'lowpass', '1500', 'norm', '-3')
    chords = []
    for i, chord in enumerate(['C4 E4 G4', 'A3 C4 E4', 'F3 A3 C4', 'G3 B3 D4']):
        chords.append(str(folder / f'chord{i}.wav'))
        sc.sox(*synth, chords[-1], 'synth', '0.5', *[a for n in chord.split() for a in ('pluck', n)], 'norm', '-6')
    bar = folder / 'bar.wav'
    sc.sox(*chords, str(bar))
    out['music'] = folder / 'music.wav'
    sc.sox(str(bar), str(out['music']), 'repeat', '35', 'trim', '0', '70', 'norm', '-3')
    return out


def clips(folder: Path, noise: dict[str, Path]) -> list[tuple[str, str, list[bytes], float]]:
    """(kind q|p, condition, frames as the node reads a file, true end of the voice in them)."""
    from retail_dialogue.asr_node import FILE_LEAD_IN_MS
    from retail_dialogue.audio_source import wav_frames
    rng = random.Random(7)
    spoken = [('q', sc.speak(text, sc.VOICES[lang], folder / f'q{i}.wav', pad=(1.5, 4.0)))
              for i, (lang, text) in enumerate(QUESTIONS)]
    spoken += [('p', sc.speak(f'<speak>{a} <break time="{(300, 450, 600)[i % 3]}ms"/> {b}</speak>', sc.VOICES[lang],
                              folder / f'p{i}.wav', pad=(1.5, 4.0), ssml=True)) for i, (lang, a, b) in enumerate(PAUSED)]
    out = []
    for kind, clean in spoken:
        voice_end = sc.speech_end_s(sc.pcm_of(clean)) + FILE_LEAD_IN_MS / 1000
        for condition in CONDITIONS:
            path = clean if condition == 'clean' else sc.mix(
                clean, noise[condition[:-2]], float(condition[-2:]), folder / f'{clean.stem}_{condition}.wav', rng)
            out.append((kind, condition, list(wav_frames(path, lead_in_ms=FILE_LEAD_IN_MS)), voice_end))
    return out


def events(config, frames: list[bytes]) -> list[tuple[str, float]]:
    from retail_dialogue.vad import EndpointDetector, VadEvent
    detector, out = EndpointDetector(config), []
    for index, frame in enumerate(frames, start=1):
        event = detector.process(frame).event
        if event in (VadEvent.SPEECH_START, VadEvent.SPEECH_END):
            out.append((event.value, index * 0.02))
    return out


def verdicts(config, frames: list[bytes]) -> list[bool]:
    from retail_dialogue.vad import EndpointDetector
    detector, out = EndpointDetector(config), []
    for frame in frames:
        detector.process(frame)
        out.append(detector.last_voiced)
    return out


def evaluate(settings: dict, items, noise_frames: dict[str, list[bytes]]) -> str:
    from retail_dialogue.vad import VadConfig
    config = VadConfig(end_silence_ms=300, **settings)
    rows: dict = {}
    changed = 0         # in quiet: frames whose verdict differs from webrtcvad alone (0: quiet unchanged)
    for kind, condition, frames, voice_end in items:
        if condition == 'clean':
            changed += sum(a != b for a, b in zip(verdicts(config, frames), verdicts(VadConfig(
                end_silence_ms=300, noise_margin_db=0.0), frames)))
        ends = [t for e, t in events(config, frames) if e == 'speech_end']
        row = rows.setdefault(condition, {'ends': [], 'never': 0, 'q': 0, 'p': 0})
        after = [t - voice_end for t in ends if t > voice_end - 0.15]
        if not after or after[0] > 3.0:
            row['never'] += 1
        if after:
            row['ends'].append(after[0])
        row[kind] += sum(1 for t in ends if 2.0 < t < voice_end - 0.15)
    cells = [f"{c} {statistics.median(r['ends']) if r['ends'] else -1:.2f}s {r['never']}n q{r['q']} p{r['p']}"
             for c, r in rows.items()]
    alone = []
    for name, frames in noise_frames.items():
        found = events(config, frames)
        starts = [t for e, t in found if e == 'speech_start']
        ends = [t for e, t in found if e == 'speech_end']
        inside = sum(b - a for a, b in zip(starts, ends + [len(frames) * 0.02]))
        alone.append(f'{name} {len(starts)}/min {inside / (len(frames) * 0.02):.0%}')
    return (f'{settings}: ' + ' | '.join(cells) + ' || noise alone: ' + ', '.join(alone)
            + f' || quiet: {changed} frames differ from webrtcvad alone')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--grid', action='store_true', help='margin 4/6/8 dB x percentile 10/20/30 x window 2/3/5 s, '
                        'hangover 80/100/120 ms, opening extra 0/2/4/6 dB')
    args = parser.parse_args()
    from retail_dialogue.audio_source import wav_frames
    folder = Path(tempfile.mkdtemp(prefix='vad_noise_floor_'))
    noise = noises(folder)
    items = clips(folder, noise)
    noise_frames = {name: list(wav_frames(path))[:3000] for name, path in noise.items()}
    grid = [{'noise_margin_db': 0.0}, {}]
    if args.grid:
        grid += [{'noise_margin_db': m, 'noise_percentile': p, 'noise_window_s': w}
                 for m in (4.0, 6.0, 8.0) for p in (10.0, 20.0, 30.0) for w in (2.0, 3.0, 5.0)]
        grid += [{'noise_hangover_ms': h} for h in (80, 100, 120)]
        grid += [{'noise_open_extra_db': x} for x in (0.0, 2.0, 4.0, 6.0)]
    for settings in grid:
        print(evaluate(settings, items, noise_frames), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
