"""Speech out: real espeak-ng voices, WAV output without an audio device, status and stop."""
from __future__ import annotations

import threading
import wave

import pytest
from rclpy.parameter import Parameter
from std_msgs.msg import Empty

from retail_dialogue.speech_synthesizer import (DEFAULT_VOICES, EspeakSynthesizer, SynthesisError, WavFilePlayer,
                                                open_player, split_for_speech)
from retail_dialogue.tts_node import TtsNode
from retail_interfaces.msg import RobotReply, SpeechStatus
from retail_ros.qos import REPLIES_QOS
from rostest_support import wait_for
from speech_samples import require_tools

ZH_SHORT = '您好。'
ZH_SENTENCE = '您好，欢迎光临！电视在二号区域，我可以带您过去。'
EN_SHORT = 'Hello.'
EN_SENTENCE = 'Hello, welcome to our store. The televisions are in zone two, I can take you there.'


@pytest.fixture(scope='module')
def synthesizer():
    require_tools()
    return EspeakSynthesizer()


def _peak(path) -> int:
    import numpy as np
    with wave.open(str(path), 'rb') as wav:
        return int(np.abs(np.frombuffer(wav.readframes(wav.getnframes()), dtype='<i2').astype(np.int32)).max())


def test_volume_scales_the_spoken_audio(tmp_path):
    """A WAV synthesised at volume 0.5 peaks at about half of one at 1.0 (today's loudness);
    0 is silence; the same voice and length either way."""
    require_tools()
    voice = EspeakSynthesizer()
    player = WavFilePlayer(tmp_path)
    full = voice.synthesize(EN_SENTENCE, 'en')
    voice.volume = 0.5
    half = voice.synthesize(EN_SENTENCE, 'en')
    voice.volume = 0.0
    silent = voice.synthesize(EN_SENTENCE, 'en')
    loud, soft, mute = (_peak(player.prepare(s)) for s in (full, half, silent))
    assert loud > 1000 and abs(soft / loud - 0.5) < 0.02 and mute == 0
    assert len(full.pcm) == len(half.pcm) == len(silent.pcm)


def _wav_seconds(path) -> float:
    with wave.open(str(path), 'rb') as wav:
        return wav.getnframes() / wav.getframerate()


@pytest.mark.parametrize('language, short, sentence', [('zh', ZH_SHORT, ZH_SENTENCE), ('en', EN_SHORT, EN_SENTENCE)])
def test_speech_length_follows_the_text(synthesizer, language, short, sentence):
    brief = synthesizer.synthesize(short, language)
    full = synthesizer.synthesize(sentence, language)
    assert 0.2 < brief.duration_s < 1.5
    assert 2.5 < full.duration_s < 12.0
    assert full.duration_s > 3 * brief.duration_s


def _espeak(voice: str, text: str, tmp_path) -> bytes:
    import subprocess
    out = tmp_path / f'{voice}.wav'
    subprocess.run(['espeak-ng', '-v', voice, '-s', '160', '-w', str(out), text], check=True)
    with wave.open(str(out), 'rb') as wav:
        return wav.readframes(wav.getnframes())


def test_each_language_gets_its_own_voice(synthesizer, tmp_path):
    """Mandarin is said by cmn-latn-pinyin (the `cmn` voice reads characters with English sounds):
    the shipped config, the node's default and the synthesiser's agree, and the audio is that voice's."""
    import yaml
    from rostest_support import REPO
    from retail_dialogue.tts_node import SPECS
    shipped = yaml.safe_load((REPO / 'config' / 'dialogue.yaml').read_text())['dialogue/tts']['ros__parameters']
    assert shipped['voices']['zh'] == DEFAULT_VOICES['zh'] == 'cmn-latn-pinyin'
    assert [spec.default for spec in SPECS if spec.name == 'voices.zh'] == ['cmn-latn-pinyin']
    assert synthesizer.voice_for('zh-CN') == 'cmn-latn-pinyin' and synthesizer.voice_for('EN') == 'en'
    mandarin = synthesizer.synthesize('美的空气炸锅多少钱', 'zh')
    assert mandarin.pcm == _espeak('cmn-latn-pinyin', '美的空气炸锅多少钱', tmp_path)[:len(mandarin.pcm)]
    assert mandarin.pcm != _espeak('cmn', '美的空气炸锅多少钱', tmp_path)[:len(mandarin.pcm)]
    with pytest.raises(SynthesisError, match="no voice for language 'fr'"):
        synthesizer.voice_for('fr')


# What Mandarin replies say: plain Chinese, brands with Latin model names, prices, decimals, a
# percentage (each a variant of "a Chinese reply read with English sounds").
MANDARIN_REPLIES = [
    '欢迎光临，请问需要什么帮助？',
    '美的空气炸锅多少钱',
    '收银台在一号门旁边。',
    '华为 MateBook 14 只要5999元',
    '有没有华为Mate 60 Pro',
    '美的空气炸锅 5.5 L 的价格是 399.90元',
    '今天全场打8.5折，最多省50%',
    '飞利浦HD9285空气炸锅有现货',
]


def _tones(piece: str) -> int:
    """Tone-numbered syllables (Mandarin: "kh'ong55") in one piece of espeak-ng's phonemes."""
    import re
    return len(re.findall(r'[a-zA-Z@&][^\s_|]*?\d{2,3}', piece))


def _read_as_mandarin(pieces: list[str], text: str) -> bool:
    """espeak-ng's phonemes say the Chinese of `text` in Mandarin: no piece falls back to English
    sounds (`(en)`), and at least one tone-numbered syllable per Chinese character."""
    han = sum('\u4e00' <= c <= '\u9fff' for c in text)
    return not any('(en)' in piece for piece in pieces) and sum(map(_tones, pieces)) >= han


@pytest.mark.parametrize('text', MANDARIN_REPLIES)
def test_mandarin_replies_are_said_with_mandarin_sounds(synthesizer, text):
    """The shipped voice reads each reply's Chinese as Mandarin syllables (espeak-ng's phonemes);
    the `cmn` voice, which says characters as English letter and number names ("may three" for
    美), fails the same check on every one; Latin words are said by the English voice."""
    pieces = synthesizer.phonemes(text, 'zh')
    assert _read_as_mandarin(pieces, text), pieces
    bad = EspeakSynthesizer({'zh': 'cmn', 'en': 'en'}).phonemes(text, 'zh')
    assert not _read_as_mandarin(bad, text), bad
    if any(c.isascii() and c.isalpha() for c in text):
        assert any(_tones(piece) == 0 for piece in pieces), pieces    # a piece said by the English voice


@pytest.mark.parametrize('text, said', [
    ('价格是 399.90元', '价格是 399点九零元'),
    ('美的空气炸锅 5.5 L', '美的空气炸锅 5点五 L'),
    ('打8.5折，省50%', '打8点五折，省百分之50'),
    ('省 12.5 %', '省 百分之12点五'),
    ('华为 MateBook 14 只要5,999元', '华为 MateBook 14 只要5999元'),
    ('飞利浦HD9285 v1.5版', '飞利浦HD9285 v1.5版'),      # a model name is the English voice's
    ('共 1,234,567 件', '共 1234567 件'),
    ('1,23元', '1,23元'),
    ('好的', '好的'),
])
def test_numbers_in_mandarin_are_written_as_they_are_said(text, said):
    from retail_dialogue.speech_synthesizer import spoken_mandarin
    assert spoken_mandarin(text) == said


def test_a_decimal_price_is_said_with_its_point(synthesizer):
    """espeak-ng's Mandarin drops a decimal point ("399.90" as "399 90"): the reply says 点."""
    dian = "t'iE35n"
    assert any(dian in piece for piece in synthesizer.phonemes('价格是399.90元', 'zh'))
    assert not any(dian in piece for piece in synthesizer.phonemes('价格是39990元', 'zh'))


def test_an_overlong_text_is_refused_in_one_line(synthesizer):
    with pytest.raises(SynthesisError, match='longer than 2000'):
        synthesizer.synthesize('好' * 2001, 'zh')


def test_latin_words_in_mandarin_are_said_by_the_english_voice(synthesizer):
    """"华为Mate 60 Pro": the brand's model in English, not spelt as pinyin; each piece names its
    voice; markup-like text is said, not taken for markup."""
    from retail_dialogue.speech_synthesizer import _ssml_voices
    assert _ssml_voices('华为Mate 60 Pro多少钱 <&>', 'cmn-latn-pinyin', 'en') == (
        '<voice name="cmn-latn-pinyin">华为</voice><voice name="en">Mate 60 Pro</voice>'
        '<voice name="cmn-latn-pinyin">多少钱 &lt;&amp;&gt;</voice>')
    spelt = EspeakSynthesizer({'zh': 'cmn-latn-pinyin'}).synthesize('华为Mate 60 Pro多少钱', 'zh')
    assert synthesizer.synthesize('华为Mate 60 Pro多少钱', 'zh').pcm != spelt.pcm
    assert synthesizer.synthesize('价格 < 300 & "好"', 'zh').duration_s > 1.0


@pytest.mark.parametrize('text, pieces', [
    ('您好，欢迎光临！电视在二号区域，我可以带您过去。', ['您好，欢迎光临！', '电视在二号区域，我可以带您过去。']),
    ('美的空气炸锅 5.5 L 的价格是 399 元，在厨房电器区，需要我带您过去吗？',
     ['美的空气炸锅 5.5 L 的价格是 399 元，', '在厨房电器区，需要我带您过去吗？']),
    ('The Midea air fryer 5.5 L costs 399 yuan. Shall I take you there?',
     ['The Midea air fryer 5.5 L costs 399 yuan.', 'Shall I take you there?']),
    ('Hello, welcome to our store. Where to?', ['Hello,', 'welcome to our store.', 'Where to?']),
    ('好的', ['好的']),
    ('  ', []),
])
def test_replies_are_said_sentence_by_sentence(text, pieces):
    assert split_for_speech(text) == pieces


def test_missing_espeak_is_a_clear_error():
    with pytest.raises(SynthesisError, match=r'espeak-ng-missing is not installed \(apt-get install espeak-ng\)'):
        EspeakSynthesizer(executable='espeak-ng-missing')


def test_no_audio_device_writes_wav_files_and_keeps_the_newest(synthesizer, tmp_path):
    player, reason = open_player('none', tmp_path / 'out', keep_files=2, realtime=False)
    assert isinstance(player, WavFilePlayer) and reason == ''
    paths = [player.prepare(synthesizer.synthesize(text, 'en')) for text in ('One.', 'Two.', 'Three.')]
    assert sorted(p.name for p in (tmp_path / 'out').glob('*.wav')) == sorted(p.split('/')[-1] for p in paths[1:])
    assert not list((tmp_path / 'out').glob('*.part'))


def test_file_player_takes_the_sentence_duration_unless_stopped(synthesizer, tmp_path):
    speech = synthesizer.synthesize(EN_SHORT, 'en')
    player = WavFilePlayer(tmp_path, realtime=True)
    stop = threading.Event()
    assert player.play(speech, stop, '') is True
    threading.Timer(0.1, stop.set).start()
    assert player.play(synthesizer.synthesize(EN_SENTENCE, 'en'), stop, '') is False


def test_default_device_falls_back_to_files_when_the_machine_has_none(tmp_path):
    pytest.importorskip('sounddevice')
    import sounddevice
    if any(d['max_output_channels'] > 0 for d in sounddevice.query_devices()):
        pytest.skip('this machine has an audio output device')
    player, reason = open_player('default', tmp_path, realtime=False)
    assert isinstance(player, WavFilePlayer) and f'writing WAV files to {tmp_path}' in reason


class _Probe:
    def __init__(self, node):
        self.status: list[SpeechStatus] = []
        node.create_subscription(SpeechStatus, '/dialogue/speech_status', self.status.append, 10)
        self.replies = node.create_publisher(RobotReply, '/dialogue/replies', REPLIES_QOS)
        self.stop = node.create_publisher(Empty, '/dialogue/tts_stop', 10)

    def states(self):
        return [(s.state, s.text) for s in self.status]


@pytest.fixture
def tts_and_probe(ros_context, spin, tmp_path):
    import rclpy
    probe_node = rclpy.create_node('probe', context=ros_context)
    probe = _Probe(probe_node)
    tts = TtsNode(context=ros_context, parameter_overrides=[
        Parameter('audio_device', value='none'), Parameter('output_dir', value=str(tmp_path / 'speech'))])
    spin(probe_node, tts)
    wait_for(lambda: probe.replies.get_subscription_count() and probe.stop.get_subscription_count()
             and tts.status_pub.get_subscription_count(), what='tts and probe to connect')
    return tts, probe


def test_tts_node_speaks_both_languages_into_wav_files(tts_and_probe):
    _tts, probe = tts_and_probe
    probe.replies.publish(RobotReply(text=ZH_SENTENCE, language='zh', intent='find_product'))
    probe.replies.publish(RobotReply(text=EN_SHORT, language='en', intent='greet'))
    wait_for(lambda: len(probe.status) == 4, timeout=20, what='two sentences spoken')
    assert probe.states() == [(SpeechStatus.STARTED, ZH_SENTENCE), (SpeechStatus.FINISHED, ZH_SENTENCE),
                              (SpeechStatus.STARTED, EN_SHORT), (SpeechStatus.FINISHED, EN_SHORT)]
    zh_wav, en_wav = probe.status[0].audio_path, probe.status[2].audio_path
    assert probe.status[1].audio_path == zh_wav and zh_wav.endswith('-zh.wav') and en_wav.endswith('-en.wav')
    assert _wav_seconds(zh_wav) > 2.5 and 0.2 < _wav_seconds(en_wav) < 1.5
    assert [s.language for s in probe.status] == ['zh', 'zh', 'en', 'en']
    # Without a device the robot still takes the time of the sentence, as when it talks.
    started, finished = (probe.status[i].header.stamp for i in (0, 1))
    elapsed = (finished.sec - started.sec) + (finished.nanosec - started.nanosec) / 1e9
    assert elapsed >= _wav_seconds(zh_wav) - 0.05


def test_volume_is_live_from_the_next_reply(tts_and_probe):
    """`volume` set on the running node (as a desired state does): the next reply is softer; a
    value out of 0..1 is refused with the key named and changes nothing."""
    tts, probe = tts_and_probe
    probe.replies.publish(RobotReply(text=EN_SHORT, language='en', intent='greet'))
    wait_for(lambda: len(probe.status) == 2, timeout=20, what='the first reply spoken')
    refused = tts.set_parameters_atomically([Parameter('volume', value=1.5)])
    assert not refused.successful and 'volume' in refused.reason
    assert tts.set_parameters_atomically([Parameter('volume', value=0.5)]).successful
    probe.replies.publish(RobotReply(text=EN_SHORT, language='en', intent='greet'))
    wait_for(lambda: len(probe.status) == 4, timeout=20, what='the second reply spoken')
    loud, soft = _peak(probe.status[1].audio_path), _peak(probe.status[3].audio_path)
    assert abs(soft / loud - 0.5) < 0.02


def test_stop_request_interrupts_and_drops_queued_replies(tts_and_probe):
    _tts, probe = tts_and_probe
    probe.replies.publish(RobotReply(text=EN_SENTENCE, language='en', intent='greet'))
    probe.replies.publish(RobotReply(text=ZH_SENTENCE, language='zh', intent='greet'))
    wait_for(lambda: probe.states()[:1] == [(SpeechStatus.STARTED, EN_SENTENCE)], what='speech to start')
    probe.stop.publish(Empty())
    wait_for(lambda: len(probe.status) >= 2, timeout=3, what='speech to stop')
    assert probe.states()[1] == (SpeechStatus.INTERRUPTED, EN_SENTENCE)
    # The next reply after a stop is spoken again; the one queued before the stop was dropped.
    probe.replies.publish(RobotReply(text=EN_SHORT, language='en', intent='greet'))
    wait_for(lambda: len(probe.status) >= 4, timeout=10, what='the next reply')
    assert probe.states()[2:] == [(SpeechStatus.STARTED, EN_SHORT), (SpeechStatus.FINISHED, EN_SHORT)]


def test_unsayable_reply_is_skipped_and_the_next_is_spoken(tts_and_probe):
    _tts, probe = tts_and_probe
    probe.replies.publish(RobotReply(text='Bonjour', language='fr', intent='greet'))
    probe.replies.publish(RobotReply(text='   ', language='en', intent='greet'))
    probe.replies.publish(RobotReply(text=EN_SHORT, language='en', intent='greet'))
    wait_for(lambda: len(probe.status) >= 2, timeout=10, what='the English reply')
    assert probe.states() == [(SpeechStatus.STARTED, EN_SHORT), (SpeechStatus.FINISHED, EN_SHORT)]


def test_a_reply_over_the_limit_is_not_said_sentence_by_sentence(tts_and_probe):
    """Attack (session 12): 3,000 characters of short sentences were said whole (13 minutes of
    speech, every later reply waiting): the limit holds for the whole reply, not each sentence."""
    _tts, probe = tts_and_probe
    probe.replies.publish(RobotReply(text='好的。' * 1000, language='zh', intent='greet'))
    probe.replies.publish(RobotReply(text=EN_SHORT, language='en', intent='greet'))
    wait_for(lambda: len(probe.status) >= 2, timeout=10, what='the English reply')
    assert probe.states() == [(SpeechStatus.STARTED, EN_SHORT), (SpeechStatus.FINISHED, EN_SHORT)]


def test_console_script_speaks_and_stops_cleanly_mid_sentence(ros_env, ros_context, spin, processes, tmp_path):
    import subprocess

    import rclpy
    from rostest_support import REPO, console_script, stop_process
    probe_node = rclpy.create_node('probe', context=ros_context)
    probe = _Probe(probe_node)
    spin(probe_node)
    proc = processes([console_script('retail_dialogue_tts'), '--ros-args', '--params-file', str(REPO / 'config/dialogue.yaml'),
                      '-p', 'audio_device:=none', '-p', f'output_dir:={tmp_path}'],
                     env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for(lambda: probe.replies.get_subscription_count() > 0 or proc.poll() is not None, timeout=20,
             what='the tts process to subscribe')
    assert proc.poll() is None, proc.stdout.read()
    probe.replies.publish(RobotReply(text=ZH_SENTENCE, language='zh', intent='find_product'))
    wait_for(lambda: probe.status, timeout=10, what='the tts process to start talking')
    assert probe.status[0].state == SpeechStatus.STARTED and probe.status[0].audio_path.startswith(str(tmp_path))
    assert stop_process(proc) == 0
    output = proc.stdout.read()
    assert 'Traceback' not in output and 'Speaking with espeak-ng voices' in output


@pytest.mark.parametrize('stream', [True, False])
def test_speech_starts_with_the_first_sentence(ros_context, spin, tmp_path, stream):
    """Streaming: STARTED comes when the first sentence is ready (its WAV holds that sentence); the
    reply's WAV holds the whole reply once FINISHED. Without streaming it holds all of it at once."""
    import rclpy
    long_reply = '欢迎光临本店，今天全场电视八折！' + '华为手机在二号区域，我可以带您过去。' * 3
    probe_node = rclpy.create_node('probe', context=ros_context)
    probe = _Probe(probe_node)
    at_start: list[float] = []
    probe_node.create_subscription(SpeechStatus, '/dialogue/speech_status',
                                   lambda m: at_start.append(_wav_seconds(m.audio_path))
                                   if m.state == SpeechStatus.STARTED else None, 10)
    tts = TtsNode(context=ros_context, parameter_overrides=[
        Parameter('audio_device', value='none'), Parameter('output_dir', value=str(tmp_path / 'speech')),
        Parameter('stream_sentences', value=stream)])
    spin(probe_node, tts)
    wait_for(lambda: probe.replies.get_subscription_count() and tts.status_pub.get_subscription_count(),
             what='tts and probe to connect')
    probe.replies.publish(RobotReply(text=long_reply, language='zh', intent='greet'))
    wait_for(lambda: len(probe.status) >= 2, timeout=60, what='the reply said')
    assert probe.states() == [(SpeechStatus.STARTED, long_reply), (SpeechStatus.FINISHED, long_reply)]
    whole = _wav_seconds(probe.status[1].audio_path)
    assert whole > 8.0
    if stream:
        assert at_start[0] < 0.4 * whole
    else:
        assert at_start[0] == whole


def test_a_reply_published_before_the_tts_was_matched_is_said_a_stale_one_never(ros_context, spin, tmp_path):
    """A reply published before DDS matched the tts's reader (seconds after a start on a busy
    robot, a tts restarted) is still said; one older than REPLY_LIFESPAN_S is not."""
    import time

    import rclpy
    from retail_ros.qos import REPLY_LIFESPAN_S
    probe_node = rclpy.create_node('probe', context=ros_context)
    probe = _Probe(probe_node)
    spin(probe_node)
    probe.replies.publish(RobotReply(text=ZH_SENTENCE, language='zh', intent='greet'))
    time.sleep(REPLY_LIFESPAN_S + 0.5)                      # this one is now too old to be said
    probe.replies.publish(RobotReply(text=EN_SHORT, language='en', intent='greet'))
    speech = tmp_path / 'speech'
    tts = TtsNode(context=ros_context, parameter_overrides=[
        Parameter('audio_device', value='none'), Parameter('output_dir', value=str(speech))])
    spin(tts)
    wait_for(lambda: tts.spoken == 1, timeout=30, what='the fresh reply said by the tts that started after it')
    assert [p.name[-6:] for p in speech.glob('*.wav')] == ['en.wav']
