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


def test_catalogue_hints_are_per_language_brands_and_names_first():
    from retail_common.store import load_store
    from retail_dialogue.whisper_asr import catalog_hints
    hints = catalog_hints(load_store(REPO / 'config' / 'stores' / 'demo').catalog)
    assert '空气炸锅' in hints['zh'] and '美的' in hints['zh'] and 'Midea' not in hints['zh']
    assert 'Midea' in hints['en'] and 'Midea air fryer 5.5 L' in hints['en'] and '美的' not in hints['en']
    assert hints['en'].index('Midea') < hints['en'].index('Midea air fryer 5.5 L')


class _Fixed:
    """A stand-in transcriber for the recogniser's own bookkeeping (unit test only)."""

    def __init__(self):
        self.calls = []

    def transcribe(self, pcm, language, hints):
        from retail_dialogue.whisper_asr import Transcript
        self.calls.append((len(pcm), language, list(hints)))
        return Transcript('text' if pcm else '', language, 0.8, len(pcm) / 32000, 0.1)


def test_recogniser_hears_in_the_language_it_is_told_and_bounds_the_utterance():
    from retail_dialogue.whisper_asr import MAX_AUDIO_S, WhisperRecognizer
    fixed = _Fixed()
    rec = WhisperRecognizer(fixed, ['zh', 'en'], 'zh', {'zh': ['电饭煲'], 'en': ['Midea']})
    assert rec.set_language('en') and not rec.set_language('ko') and rec.language == 'en'
    rec.begin()
    for _ in range(int(MAX_AUDIO_S * 50) + 100):       # 20 ms frames, more than Whisper's window
        assert rec.accept(bytes(640)) == []            # no partial results
    final = rec.finish()
    assert final.language == 'en' and final.is_final and final.text == 'text'
    assert fixed.calls == [(int(MAX_AUDIO_S * 16000) * 2, 'en', ['Midea'])]
    rec.begin()
    assert rec.finish() is None                        # nothing heard: nothing published
    with pytest.raises(ValueError, match='Whisper recognises zh, en'):
        WhisperRecognizer(fixed, ['ko'], 'ko')


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(shutil.which('espeak-ng') is None, reason='espeak-ng is installed by robot_ws/install.sh')
def test_asr_node_without_vosk_models_hears_with_whisper_in_the_language_the_dialogue_says(ros_context, spin,
                                                                                          tmp_path):
    """backend auto, no Vosk model: Whisper; /dialogue/listen_context says English; the utterance
    carries the catalogue product heard and how sure."""
    import rclpy
    from rclpy.parameter import Parameter
    from retail_common import names
    from retail_dialogue.asr_node import AsrNode
    from retail_interfaces.msg import ListenContext, Utterance
    from retail_ros.qos import LATCHED
    from rostest_support import wait_for
    if not check_installed(model_dir())[0]:
        pytest.fail('Whisper base is not installed in the venv: run robot_ws/install.sh')
    inbox = tmp_path / 'inbox'
    probe = rclpy.create_node('probe', context=ros_context)
    heard = []
    probe.create_subscription(Utterance, names.UTTERANCES, heard.append, 10)
    context_pub = probe.create_publisher(ListenContext, names.LISTEN_CONTEXT, LATCHED)
    context_pub.publish(ListenContext(version=ListenContext.VERSION, language='en'))
    asr = AsrNode(context=ros_context, parameter_overrides=[
        Parameter('languages', value=['zh', 'en']), Parameter('models.zh', value=str(tmp_path / 'no-vosk-zh')),
        Parameter('models.en', value=str(tmp_path / 'no-vosk-en')), Parameter('whisper.threads', value=2),
        Parameter('store_dir', value=str(REPO / 'config' / 'stores' / 'demo')), Parameter('source', value=str(inbox))])
    spin(probe, asr)
    assert asr.whisper is not None and not asr.missing_languages
    wait_for(lambda: asr.whisper.language == 'en', timeout=10, what='the listen context to reach the asr')
    wait_for(lambda: asr.matcher is not None, timeout=120, what='the catalogue matcher (built in the background)')
    staging = tmp_path / 'q.wav'
    subprocess.run(['espeak-ng', '-v', 'en', '-s', '150', '-w', str(staging), 'Do you have the Huawei Mate 60 Pro?'],
                   check=True)
    os.replace(staging, inbox / 'q.wav')
    wait_for(lambda: [u for u in heard if u.is_final], timeout=180, what='the utterance heard by Whisper')
    final = [u for u in heard if u.is_final][0]
    assert final.language == 'en' and 'huawei' in final.text.lower(), final.text
    assert final.product_sku.startswith('HW-') and 0.0 < final.product_confidence <= 1.0
    assert not [u for u in heard if not u.is_final]         # Whisper publishes finals only
