"""Speech out: real espeak-ng voices, WAV output without an audio device, status and stop."""
from __future__ import annotations

import threading
import wave

import pytest
from rclpy.parameter import Parameter
from std_msgs.msg import Empty

from retail_dialogue.speech_synthesizer import (EspeakSynthesizer, SynthesisError, WavFilePlayer,
                                                open_player)
from retail_dialogue.tts_node import TtsNode
from retail_interfaces.msg import RobotReply, SpeechStatus
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


def test_each_language_gets_its_own_voice(synthesizer):
    assert synthesizer.voice_for('zh-CN') == 'cmn' and synthesizer.voice_for('EN') == 'en'
    mandarin = synthesizer.synthesize('Hello', 'zh')     # the cmn voice says latin text as English,
    english = synthesizer.synthesize('Hello', 'en')      # but with its own voice: different audio
    assert mandarin.pcm != english.pcm
    with pytest.raises(SynthesisError, match="no voice for language 'fr'"):
        synthesizer.voice_for('fr')


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
        self.replies = node.create_publisher(RobotReply, '/dialogue/replies', 10)
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
