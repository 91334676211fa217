"""Which espeak-ng voice says the robot's Mandarin replies best (issue 25 follow-up): a listening
proxy. Store sentences a Mandarin reply says (pure Chinese, brands with Latin model names, prices,
decimals, percentages) are synthesised by the robot's own synthesiser (`EspeakSynthesizer`: the
SSML voice switch for Latin runs and `spoken_mandarin` for numbers, as the tts node says them) with
each candidate Mandarin voice, and heard back by Whisper base told Mandarin, without the
catalogue's hints (so the hints cannot spell for a voice). Reports, per voice, the character error
rate against the sentence as it is said (CER, Chinese characters and Latin letters/digits),
how many sentences came out with no Chinese at all, and espeak-ng's phonemes: how many pieces
fell back to English sounds (`(en)`). Peers in the same run, interleaved sentence by sentence.

  .venv/bin/python benches/speech_voices.py [--voices cmn-latn-pinyin,cmn] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
from rapidfuzz.distance import Levenshtein
from scipy.signal import resample_poly

SENTENCES = [
    '欢迎光临，请问需要什么帮助？',
    '美的空气炸锅在厨房电器区。',
    '收银台在一号门旁边。',
    '电饭煲在三号区域，我可以带您过去。',
    '华为 MateBook 14 只要5999元。',
    '华为Mate 60 Pro的价格是6499元。',
    '美的空气炸锅 5.5 L 的价格是 399.90元。',
    '今天全场打8.5折，最多省50%。',
    '飞利浦HD9285空气炸锅有现货。',
    '好的，请跟我来。',
]


def units(text: str) -> list[str]:
    """Characters to compare: Chinese characters one by one, Latin words and numbers whole,
    Traditional read as Simplified (the lexicon's normaliser), punctuation dropped."""
    from retail_dialogue.lexicon import normalize
    out, word = [], ''
    for char in normalize(text):
        if char.isascii() and char.isalnum():
            word += char
            continue
        if word:
            out.append(word)
            word = ''
        if char.isalnum():
            out.append(char)
    return out + ([word] if word else [])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--voices', default='cmn-latn-pinyin,cmn', help='Mandarin voices, comma-separated')
    parser.add_argument('--json', action='store_true', help='one JSON document on stdout')
    args = parser.parse_args()
    from retail_dialogue.speech_synthesizer import EspeakSynthesizer, spoken_mandarin
    from retail_dialogue.whisper_asr import WhisperTranscriber
    voices = [v for v in args.voices.split(',') if v]
    synthesizers = {v: EspeakSynthesizer({'zh': v, 'en': 'en'}) for v in voices}
    transcriber = WhisperTranscriber(cpu_threads=2)
    transcriber.warm_up()
    load0 = os.getloadavg()[0]
    rows = {v: {'errors': 0, 'units': 0, 'no_chinese': 0, 'english_pieces': 0, 'samples': []} for v in voices}
    for sentence in SENTENCES:
        reference = units(spoken_mandarin(sentence).replace('点', '.'))   # "5点五" is heard as 5.5 or 5点5
        for voice, synthesizer in synthesizers.items():
            speech = synthesizer.synthesize(sentence, 'zh')
            samples = np.frombuffer(speech.pcm, dtype='<i2').astype(np.float64)
            pcm16k = np.clip(resample_poly(samples, 16000, speech.sample_rate), -32768, 32767).astype('<i2').tobytes()
            heard = transcriber.transcribe(pcm16k, 'zh', None, check_language=False).text
            hyp = units(heard.replace('点', '.'))
            row = rows[voice]
            row['errors'] += Levenshtein.distance(reference, hyp)
            row['units'] += len(reference)
            row['no_chinese'] += not any('\u4e00' <= c <= '\u9fff' for c in heard)
            row['english_pieces'] += sum('(en)' in piece for piece in synthesizer.phonemes(sentence, 'zh'))
            row['samples'].append(f'{sentence} -> {heard}')
    report = {'load_average_1min': [round(load0, 1), round(os.getloadavg()[0], 1)], 'sentences': len(SENTENCES),
              'voices': {v: {'cer': round(r['errors'] / max(1, r['units']), 3), 'no_chinese': r['no_chinese'],
                             'pieces_read_with_english_sounds': r['english_pieces'], 'samples': r['samples']}
                         for v, r in rows.items()}}
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return 0
    print(f"load average {report['load_average_1min']} on {os.cpu_count()} cores; {len(SENTENCES)} sentences")
    print(f"{'voice':<18} {'CER':>6} {'no Chinese heard':>17} {'pieces in English sounds':>25}")
    for voice, figures in report['voices'].items():
        print(f"{voice:<18} {figures['cer']:>6.1%} {figures['no_chinese']:>17} "
              f"{figures['pieces_read_with_english_sounds']:>25}")
    for voice, figures in report['voices'].items():
        for sample in figures['samples']:
            print(f'  {voice}: {sample}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
