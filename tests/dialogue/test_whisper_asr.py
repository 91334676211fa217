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

    def transcribe(self, pcm, language, hints, check_language=True):
        from retail_dialogue.whisper_asr import Transcript
        self.calls.append((len(pcm), language, hints[language], check_language))
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
    assert fixed.calls == [(int(MAX_AUDIO_S * 16000) * 2, 'en', ['Midea'], True)]
    rec.begin()
    assert rec.finish() is None                        # nothing heard: nothing published
    with pytest.raises(ValueError, match='Whisper recognises zh, en'):
        WhisperRecognizer(fixed, ['ko'], 'ko')


def test_a_peek_decodes_the_words_so_far_and_is_the_final_only_when_asked():
    """At a pause the utterance so far is decoded (the VAD judges its words); a final after nothing
    but silence is that decode (no second one), otherwise the whole utterance is decoded again."""
    from retail_dialogue.whisper_asr import WhisperRecognizer
    fixed = _Fixed()
    rec = WhisperRecognizer(fixed, ['zh', 'en'], 'en')
    rec.begin()
    rec.accept(bytes(640) * 10)
    assert rec.peek().text == 'text' and len(fixed.calls) == 1
    rec.accept(bytes(640) * 5)
    assert rec.finish(reuse_peek=True).text == 'text' and len(fixed.calls) == 1
    rec.begin()
    rec.accept(bytes(640) * 10)
    rec.peek()
    rec.accept(bytes(640) * 5)
    assert rec.finish().text == 'text' and len(fixed.calls) == 3 and fixed.calls[-1][0] == 640 * 15
    rec.begin()
    rec.accept(bytes(640))
    assert rec.finish(reuse_peek=True) is not None and len(fixed.calls) == 4     # no peek to reuse: decoded


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


# A customer answering in the other language than the dialogue's (the robot greeted in Chinese,
# the customer speaks English, and the other way round): each (audio's language, dialogue's
# language, sentence) is one variant of the fault.
SWITCHES = [
    ('en', 'zh', 'How much is the Midea air fryer?'),
    ('en', 'zh', 'Where can I find the rice cooker?'),
    ('en', 'zh', 'Hello, do you speak English?'),
    # identification ~47 % zh, rescued by the unsure-transcript recheck on the CI machine; on
    # another CPU (2026-12-07) 41 % zh with confidence 0.455, just over the recheck's 0.45:
    # heard as English syllables. The same espeak-ng limit as below, CPU-dependent
    pytest.param('zh', 'en', '美的空气炸锅多少钱', marks=pytest.mark.xfail(
        reason='espeak-ng Mandarin identified as 41-47 % zh by Whisper base, by CPU', strict=False)),
    # espeak-ng's Mandarin is barely intelligible to Whisper base (decoded as Mandarin: "电饭、炮、
    # 菜、玉米"): on some CPUs its identification is 20 % zh for this 2.2 s clip (80 % on others);
    # a known limit of the synthetic voice (issue 25 open), kept running and reported, not hidden
    pytest.param('zh', 'en', '电饭煲在哪里', marks=pytest.mark.xfail(
        reason='Whisper base identifies espeak-ng Mandarin of 2.2 s as 20 % zh on some CPUs', strict=False)),
    ('zh', 'en', '你好，我想买一台电视'),
]
VOICES = {'en': 'en', 'zh': 'cmn-latn-pinyin'}


@pytest.fixture(scope='module')
def transcriber():
    from retail_dialogue.whisper_asr import WhisperTranscriber
    if not check_installed(model_dir())[0]:
        pytest.fail('Whisper base is not installed in the venv: run robot_ws/install.sh')
    return WhisperTranscriber(cpu_threads=2)


def _espeak_pcm(text: str, language: str, tmp_path: Path) -> bytes:
    from retail_dialogue.audio_source import read_wav
    wav = tmp_path / f'{language}.wav'
    subprocess.run(['espeak-ng', '-v', VOICES[language], '-s', '150', '-w', str(wav), text], check=True)
    return read_wav(wav)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(shutil.which('espeak-ng') is None, reason='espeak-ng is installed by robot_ws/install.sh')
@pytest.mark.parametrize('spoken, expected, text', SWITCHES)
def test_speech_in_the_other_language_is_heard_in_its_own(transcriber, tmp_path, spoken, expected, text):
    """The dialogue expects `expected`; the customer speaks `spoken`: the transcript is in the
    customer's language (so the dialogue answers in it), not the expected one."""
    from retail_common.store import load_store
    from retail_dialogue.whisper_asr import catalog_hints
    hints = catalog_hints(load_store(REPO / 'config' / 'stores' / 'demo').catalog)
    result = transcriber.transcribe(_espeak_pcm(text, spoken, tmp_path), expected, hints)
    assert result.language == spoken and result.expected == expected, result
    han = sum('\u4e00' <= c <= '\u9fff' for c in result.text)
    assert (han == 0 and result.text.isascii()) if spoken == 'en' else han >= 3, result.text


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(shutil.which('espeak-ng') is None, reason='espeak-ng is installed by robot_ws/install.sh')
@pytest.mark.parametrize('language', ['zh', 'en'])
def test_speech_in_the_expected_language_stays_in_it(transcriber, tmp_path, language):
    text = {'zh': '华为手机多少钱', 'en': 'Take me to the checkout please.'}[language]
    result = transcriber.transcribe(_espeak_pcm(text, language, tmp_path), language)
    assert result.language == language and set(result.language_shares) == {'zh', 'en'}, result
    fixed = transcriber.transcribe(_espeak_pcm(text, language, tmp_path), language, check_language=False)
    assert fixed.language == language and fixed.language_shares == {}


@pytest.mark.parametrize('seconds, tokens', [(0.0, 8), (0.5, 14), (1.0, 20), (2.5, 38), (5.0, 68), (7.4, 96),
                                             (30.0, 96)])
def test_a_decode_is_bounded_by_what_speech_that_long_can_hold(seconds, tokens):
    """8 + 12 tokens per second of audio (fast Mandarin: ~6 characters/s of ~1.5 tokens each),
    never above the 96-token cap; 0/None keeps the cap only."""
    from retail_dialogue.whisper_asr import MAX_NEW_TOKENS, WhisperTranscriber
    bounded = WhisperTranscriber.__new__(WhisperTranscriber)
    bounded.tokens_per_s = 12
    assert bounded.max_new_tokens(seconds) == tokens
    bounded.tokens_per_s = None
    assert bounded.max_new_tokens(seconds) == MAX_NEW_TOKENS


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(shutil.which('espeak-ng') is None, reason='espeak-ng is installed by robot_ws/install.sh')
@pytest.mark.parametrize('language, text', [
    ('zh', '今天全场打八点五折，最多省百分之五十'),      # espeak's Mandarin: Whisper loops on it ("喘喘喘…")
    ('zh', '美的空气炸锅在厨房电器区'),
    ('en', 'Do you have the Philips HD9285 air fryer?'),
])
def test_the_text_heard_is_no_longer_than_the_speech_can_hold(transcriber, tmp_path, language, text):
    """A decoder that loops on unclear audio (or repeats the catalogue's hints) stops at the
    audio's bound, not at the 96-token cap; a clear English question is heard whole."""
    import tokenizers
    from retail_common.store import load_store
    from retail_dialogue.whisper_asr import SAMPLE_RATE, catalog_hints
    hints = catalog_hints(load_store(REPO / 'config' / 'stores' / 'demo').catalog)
    pcm = _espeak_pcm(text, language, tmp_path)
    result = transcriber.transcribe(pcm, language, hints, check_language=False)
    tokenizer = tokenizers.Tokenizer.from_file(str(model_dir() / 'tokenizer.json'))
    assert len(tokenizer.encode(result.text).ids) <= transcriber.max_new_tokens(len(pcm) / 2 / SAMPLE_RATE) + 2
    if language == 'en':
        said = ''.join(c for c in result.text.lower() if c.isalnum())
        assert 'hd9285' in said and said.endswith('fryer'), result.text
