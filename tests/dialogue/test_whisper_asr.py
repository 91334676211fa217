"""Whisper base from its two PyPI data wheels: assembled only with the pinned SHA-256, and
`retailbot asr` transcribes WAV files offline (one JSON line per file)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from retail_dialogue.whisper_asr import (MAX_PROMPT_CHARS, MODEL_SHA256, WhisperModelError, check_installed,
                                         hint_prompt, install, model_dir)

RETAILBOT = str(Path(sys.executable).with_name('retailbot'))
REPO = Path(__file__).resolve().parents[2]


def test_a_model_whose_hash_differs_from_the_pin_is_refused_and_nothing_installed(tmp_path):
    target = tmp_path / 'whisper-base'
    with pytest.raises(WhisperModelError, match='refused, nothing installed'):
        install(target, expected_sha256='0' * 64)
    assert not target.exists() and not (tmp_path / 'whisper-base.partial').exists()


def test_installed_model_is_verified_and_a_changed_byte_is_reported(tmp_path):
    target = tmp_path / 'whisper-base'
    install(target)
    ok, message = check_installed(target)
    assert ok and MODEL_SHA256[:12] in message and 'MIT' in message
    with open(target / 'model.bin', 'r+b') as handle:
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    ok, message = check_installed(target)
    assert not ok and 'fails its hash check' in message
    (target / 'tokenizer.json').unlink()
    assert 'tokenizer.json missing' in check_installed(target)[1]


def test_hints_are_deduplicated_and_bounded():
    terms = ['电饭煲', '电饭煲', 'Rice Cooker', 'rice cooker'] + [f'商品{i:04d}' for i in range(500)]
    prompt = hint_prompt(terms, 'zh')
    assert prompt.startswith('电饭煲、Rice Cooker、商品0000') and len(prompt) <= MAX_PROMPT_CHARS


@pytest.mark.slow
@pytest.mark.skipif(shutil.which('espeak-ng') is None, reason='espeak-ng is installed by robot_ws/install.sh')
def test_retailbot_asr_transcribes_english_wav_files(tmp_path):
    if not check_installed(model_dir())[0]:
        pytest.fail('Whisper base is not installed in the venv: run robot_ws/install.sh')
    wav = tmp_path / 'question.wav'
    subprocess.run(['espeak-ng', '-v', 'en', '-s', '150', '-w', str(wav), 'Where can I find the rice cooker?'],
                   check=True)
    broken = tmp_path / 'broken.wav'
    broken.write_bytes(b'RIFF not really')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run([RETAILBOT, 'asr', '--lang', 'en', '--store', str(REPO / 'config' / 'stores' / 'demo'),
                             '--json', str(wav), str(broken)], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 1, result.stderr
    assert 'broken.wav' in result.stderr and 'Traceback' not in result.stderr
    (line,) = result.stdout.splitlines()
    record = json.loads(line)
    assert set(record) == {'file', 'text', 'seconds_audio', 'seconds_cpu'} and record['file'] == str(wav)
    assert 'rice cooker' in record['text'].lower()
    assert 1.0 < record['seconds_audio'] < 5.0 and record['seconds_cpu'] > 0
