"""Whisper decode settings side by side, interleaved on the same utterances in one process (the
fair peer on a shared machine: every setting decodes each question right after the others, at the
same load), with the catalogue hints: beam 5 without the zh/en language check on Whisper's whole
30 s window (the settings before the latency work), beam 1 with the check on the 30 s window (the
shipped settings before this session), beam 1 with the check with the encoder on the utterance +
5 s of padding only (`whisper_asr.WINDOW_PAD_S`, shipped), on + 2 s, and on + 2 s with the decoder
kept from repeating any 3 tokens (faster-whisper's no_repeat_ngram_size; + 2 s alone repeats
whole sentences: "Where is the Tyson hairdryer? Where is the Tyson hairdryer?"). Prints the load,
seconds per decode (median, p95, max, sum) per setting, ratios of the sums to the first setting,
word/character errors (WER English, CER Mandarin) and product words heard per setting, and each
question's text per setting.

  .venv/bin/python benches/speech_decode_settings.py [--per-language 6]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speech_chain as sc  # noqa: E402

# name: (beam size, language check, tokens per second of audio or None = the fixed cap only,
#        encoder window padding in s or None = Whisper's whole 30 s window)
SETTINGS = {'beam5_nocheck_30s': (5, False, None, None, 0), 'beam1_check_30s': (1, True, 12, None, 0),
            'beam1_check_pad5s': (1, True, 12, 5.0, 0), 'beam1_check_pad2s': (1, True, 12, 2.0, 0),
            'beam1_check_pad2s_norep3': (1, True, 12, 2.0, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--per-language', type=int, default=6, metavar='N')
    args = parser.parse_args()
    from retail_common.store import load_store
    from retail_dialogue.audio_source import read_wav
    from retail_dialogue.catalog_match import CatalogMatcher
    from retail_dialogue.whisper_asr import WhisperTranscriber, catalog_hints
    store = load_store(sc.STORE)
    hints, matcher = catalog_hints(store.catalog), CatalogMatcher(store.catalog, store.zones)
    chosen = [q for lang in ('en', 'zh') for q in [q for q in sc.QUESTIONS if q[0] == lang][:args.per_language]]
    folder = Path(tempfile.mkdtemp(prefix='speech_decode_'))
    questions = [(lang, text, sku, read_wav(sc.speak(text, sc.VOICES[lang], folder / f'{i}.wav')))
                 for i, (lang, text, sku) in enumerate(chosen)]
    transcriber = WhisperTranscriber(cpu_threads=2)
    transcriber.warm_up()
    times: dict[str, list[float]] = {k: [] for k in SETTINGS}
    texts: dict[str, list[tuple[str, str]]] = {k: [] for k in SETTINGS}
    errors = {k: {'en': [0, 0], 'zh': [0, 0], 'products': [0, 0]} for k in SETTINGS}
    load0 = os.getloadavg()[0]
    for lang, text, sku, pcm in questions:
        for name, (beam, check, tokens_per_s, pad_s, no_repeat) in SETTINGS.items():
            transcriber.beam_size, transcriber.tokens_per_s, transcriber.window_pad_s = beam, tokens_per_s, pad_s
            transcriber.no_repeat_ngram_size = no_repeat
            started = time.time()
            result = transcriber.transcribe(pcm, lang, hints, check_language=check)
            times[name].append(time.time() - started)
            texts[name].append((result.language, result.text[:60]))
            wrong, words = sc.error_rate(text, result.text, lang)
            errors[name][lang][0] += wrong
            errors[name][lang][1] += words
            if sku:
                heard = matcher.match(result.text, result.language, result.confidence)
                errors[name]['products'][0] += heard is not None and heard.sku == sku
                errors[name]['products'][1] += 1
    print(f'load average {load0:.1f} .. {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; '
          f'{len(questions)} questions, each decoded by every setting in turn')
    base = sum(times[next(iter(SETTINGS))])
    for name in SETTINGS:
        e = errors[name]
        print(f"{name:<20} median {statistics.median(times[name]):.2f} s  p95 {sc._pct(times[name], 0.95):.2f} s  "
              f"max {max(times[name]):.2f} s  sum {sum(times[name]):.1f} s  ratio {sum(times[name]) / base:.2f}  "
              f"WER en {e['en'][0] / max(1, e['en'][1]):.1%}  CER zh {e['zh'][0] / max(1, e['zh'][1]):.1%}  "
              f"products {e['products'][0]}/{e['products'][1]}")
    for i, (_lang, text, _sku, _pcm) in enumerate(questions):
        print(text, '|', ' || '.join(f'{texts[name][i]}' for name in SETTINGS))
    return 0


if __name__ == '__main__':
    sys.exit(main())
