"""Issue 25: the simulated robot answers a spoken question, in Mandarin and in English.

`retailbot launch launch/dialogue.launch.yaml sim:=true` runs the real asr (no Vosk model here, so
Whisper base), tts and manager processes. A WAV question made by espeak-ng at test time is dropped
into the folder the asr node listens to (the simulated microphone); the test waits on the real
messages: the utterance the asr heard, the manager's reply, and the tts starting to say it. The
English question comes while the dialogue still listens for Mandarin (/dialogue/listen_context zh):
the asr hears it as English (its language check), the manager answers in English and tells the asr
it now expects English.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import threading

import pytest
import rclpy

from retail_common import names
from retail_dialogue.whisper_asr import check_installed
from retail_interfaces.msg import ListenContext, RobotReply, SpeechStatus, Utterance
from retail_ros.qos import LATCHED
from rostest_support import REPO, console_script, endpoints, stop_process, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]      # Whisper's load is slow on 2 busy cores


class Seen:
    def __init__(self, node, msg_type, topic, qos=10):
        self.messages = []
        self._lock = threading.Lock()
        node.create_subscription(msg_type, topic, self._on, qos)

    def _on(self, msg):
        with self._lock:
            self.messages.append(msg)

    def all(self):
        with self._lock:
            return list(self.messages)


def _question(text: str, voice: str, folder, name: str):
    """An espeak-ng question, written elsewhere and renamed into the watched folder (whole file)."""
    staging = folder.parent / name
    subprocess.run(['espeak-ng', '-v', voice, '-s', '150', '-w', str(staging), text], check=True, timeout=30)
    os.replace(staging, folder / name)


@pytest.mark.skipif(shutil.which('espeak-ng') is None, reason='espeak-ng is installed by robot_ws/install.sh')
def test_the_simulated_robot_answers_a_spoken_question_in_both_languages(ros_env, ros_context, spin, processes,
                                                                         tmp_path):
    if not check_installed()[0]:
        pytest.fail('Whisper base is not installed in the venv: run robot_ws/install.sh')
    inbox, spoken = tmp_path / 'customer_audio', tmp_path / 'tts'
    inbox.mkdir()
    probe = rclpy.create_node('probe', context=ros_context)
    heard = Seen(probe, Utterance, names.UTTERANCES)
    replies = Seen(probe, RobotReply, names.REPLIES)
    speech = Seen(probe, SpeechStatus, names.SPEECH_STATUS)
    context = Seen(probe, ListenContext, names.LISTEN_CONTEXT, LATCHED)
    spin(probe)
    proc = processes([console_script('retailbot'), 'launch', str(REPO / 'launch' / 'dialogue.launch.yaml'),
                      'sim:=true', f'customer_audio_dir:={inbox}', f'speech_out_dir:={spoken}',
                      f'data_dir:={tmp_path / "data"}'],
                     env=dict(ros_env, OMP_NUM_THREADS='2'), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                     text=True)
    try:
        # Each process's own endpoint, by node name: the probe's subscriptions count too, and a tts
        # that subscribes after the reply was published would never hear it (a volatile topic).
        wait_for(lambda: ('/dialogue/tts' in endpoints(probe, names.REPLIES)
                          and '/dialogue/manager' in endpoints(probe, names.UTTERANCES)
                          and '/dialogue/asr' in endpoints(probe, names.UTTERANCES, 'pub'))
                 or proc.poll() is not None, timeout=120, what='the dialogue nodes (asr with Whisper, tts, manager)')
        assert proc.poll() is None
        wait_for(lambda: [c for c in context.all() if c.language == 'zh'], timeout=30,
                 what="the manager's listen context (zh before anyone spoke)")

        # Mandarin: "美的空气炸锅多少钱？" heard through the asr node, answered with the price, spoken.
        _question('美的空气炸锅多少钱', 'cmn-latn-pinyin', inbox, 'q1.wav')
        wait_for(lambda: [u for u in heard.all() if u.is_final and u.language == 'zh'], timeout=120,
                 what='the asr to hear the Mandarin question')
        wait_for(lambda: [r for r in replies.all() if r.language == 'zh'], timeout=30, what='a Mandarin reply')
        zh_reply = [r for r in replies.all() if r.language == 'zh'][0]
        assert '空气炸锅' in zh_reply.text and '元' in zh_reply.text, zh_reply.text
        wait_for(lambda: [s for s in speech.all() if s.state == SpeechStatus.STARTED and s.text == zh_reply.text],
                 timeout=30, what='the tts to start saying the Mandarin reply')

        # English, spoken straight after the Mandarin exchange (the dialogue still listens for
        # Mandarin): heard as English, answered in English, and the dialogue now listens for English.
        assert [c.language for c in context.all()][-1] == 'zh'
        _question('Where can I find the rice cooker?', 'en', inbox, 'q2.wav')
        wait_for(lambda: [u for u in heard.all() if u.is_final and u.language == 'en' and u.header.frame_id != 'typed'],
                 timeout=120, what='the asr to hear the English question')
        english = [u for u in heard.all() if u.is_final and u.language == 'en' and u.header.frame_id != 'typed'][0]
        assert 'rice cooker' in english.text.lower(), english.text
        wait_for(lambda: [r for r in replies.all() if r.language == 'en' and 'rice cooker' in r.text.lower()],
                 timeout=30, what='an English reply about rice cookers')
        en_reply = [r for r in replies.all() if r.language == 'en' and 'rice cooker' in r.text.lower()][0]
        wait_for(lambda: [s for s in speech.all() if s.state == SpeechStatus.STARTED and s.text == en_reply.text],
                 timeout=30, what='the tts to start saying the English reply')
        wait_for(lambda: [c.language for c in context.all()][-1] == 'en', timeout=30,
                 what='the listen context to follow the customer to English')
        assert sorted(p.name for p in (inbox / 'done').iterdir()) == ['q1.wav', 'q2.wav']
    finally:
        assert stop_process(proc) in (0, -2, 130)
    log = proc.stdout.read()
    assert 'Traceback' not in log and 'hearing zh, en with Whisper base' in log, log[-3000:]
