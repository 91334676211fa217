"""`retailbot asr --lang zh|en [--store DIR] [--json] FILE.wav…`: what the robot hears in WAV files.

Runs the offline Whisper base model (the one the robot uses where no Vosk model is installed)
with the store catalogue's words as hints; one line per file, with --json
{"file", "text", "seconds_audio", "seconds_cpu"}. Exit codes: 0 all files transcribed, 1 some
file was unreadable (reported, the others done), 2 no usable model or store.
"""
from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser('asr', help='transcribe WAV files offline (Whisper base), as the robot hears them',
                              description=__doc__)
    p.add_argument('--lang', required=True, choices=('zh', 'en'), help='language spoken in the files')
    p.add_argument('--store', metavar='DIR', default='',
                   help="store folder whose catalogue words are given as hints (default: none)")
    p.add_argument('--json', action='store_true', help='one JSON line per file')
    p.add_argument('files', nargs='+', metavar='FILE.wav', help='WAV files to transcribe (PCM or float, any rate and channel count)')
    p.set_defaults(func=_asr)


def _error(message: str) -> None:
    print(f'retailbot asr: {message}', file=sys.stderr)


def _asr(args) -> int:
    from retail_dialogue.audio_source import AudioSourceError, read_wav
    from retail_dialogue.whisper_asr import WhisperModelError, WhisperTranscriber
    hints: list[str] = []
    if args.store:
        from retail_common.store import StoreError, load_store
        from retail_dialogue.whisper_asr import catalog_hints
        try:
            hints = catalog_hints(load_store(args.store).catalog)[args.lang]
        except StoreError as exc:
            _error(str(exc))
            return 2
    try:
        transcriber = WhisperTranscriber()
    except WhisperModelError as exc:
        _error(str(exc))
        return 2
    from retail_common.cli_output import print_json
    status = 0
    for path in args.files:
        try:
            pcm = read_wav(path)
        except AudioSourceError as exc:
            _error(f'skipped: {exc}')
            status = 1
            continue
        result = transcriber.transcribe(pcm, args.lang, hints, check_language=False)   # the language is given
        if args.json:
            print_json({'file': str(path), 'text': result.text, 'seconds_audio': result.seconds_audio,
                        'seconds_cpu': result.seconds_cpu})
        else:
            print(f'{path}: {result.text}')
    return status
