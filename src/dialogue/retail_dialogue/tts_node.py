"""Node /dialogue/tts: says the robot's replies aloud and tells everyone when it is talking.

Replies (/dialogue/replies) are spoken one after another by a worker thread; each publishes
SpeechStatus STARTED, then FINISHED, or INTERRUPTED when /dialogue/tts_stop arrives (barge-in:
the customer started talking), which also drops the replies still waiting. With
`stream_sentences` a reply is synthesised sentence by sentence: STARTED (and the sound) comes
once the first sentence is ready, the next is synthesised while the previous one plays.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from std_msgs.msg import Empty

from retail_common import names
from retail_ros.node_support import declare_params, diagnostic_status, main_for
from retail_ros.params import ParamSpec
from retail_ros.qos import REPLIES_QOS
from retail_dialogue.speech_synthesizer import (MAX_TEXT_CHARS, EspeakSynthesizer, Speech, SynthesisError, open_player,
                                                split_for_speech)
from retail_interfaces.msg import RobotReply, SpeechStatus

SPECS = [
    ParamSpec('audio_device', 'default', "Output device: 'default', a PortAudio device name or index, "
              "or 'none' to write WAV files instead (simulation, CI)."),
    ParamSpec('output_dir', '/tmp/retailbot/tts', 'Folder for the WAV files written when there is no audio device.'),
    ParamSpec('keep_files', 200, 'Newest WAV files kept in output_dir.', min=1, max=100000),
    ParamSpec('realtime', True, 'Without a device, take each sentence\'s duration as if playing it.'),
    ParamSpec('voices.zh', 'cmn-latn-pinyin', "espeak-ng voice for Mandarin replies ('cmn' reads Chinese "
              'characters with English sounds).'),
    ParamSpec('voices.en', 'en', 'espeak-ng voice for English replies.'),
    ParamSpec('voices.ko', 'ko', "espeak-ng voice for Korean replies ('' disables)."),
    ParamSpec('rate_wpm', 160, 'Speaking rate (words per minute).', min=80, max=450),
    ParamSpec('volume', 1.0, 'Loudness as a share of the voice\'s own (0..1); live: the next sentence uses it.',
              min=0.0, max=1.0, read_only=False),
    ParamSpec('stream_sentences', True, 'Start speaking once the first sentence is synthesised (false: once '
              'the whole reply is).'),
]
_STOP = object()
MAX_QUEUED = 20          # replies waiting to be said; beyond, the oldest is dropped (one warning line)



def _which(msg: RobotReply) -> str:
    """A reply as the logs name it: never its words (a greeting by name, a customer's phone number
    repeated back): ROS log files are kept on disk and "forget this member" cannot find her there."""
    return f'a {msg.language or "zh"} reply ({msg.intent or "no intent"}, {len(msg.text)} characters)'

class TtsNode(Node):
    def __init__(self, **kwargs):
        super().__init__('tts', namespace='dialogue', **kwargs)
        self.params = declare_params(self, SPECS, on_change=self._apply_live_params)
        self.synthesizer = EspeakSynthesizer(
            {'zh': self.params.voices_zh, 'en': self.params.voices_en, 'ko': self.params.voices_ko},
            self.params.rate_wpm, volume=self.params.volume)
        self.player, fallback = open_player(self.params.audio_device, self.params.output_dir,
                                            self.params.keep_files, self.params.realtime)
        if fallback:
            self.get_logger().warning(fallback)
        self.status_pub = self.create_publisher(SpeechStatus, names.SPEECH_STATUS, 10)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        self.create_subscription(RobotReply, names.REPLIES, self._on_reply, REPLIES_QOS)
        self.create_subscription(Empty, names.TTS_STOP, self._on_stop, 10)
        self.create_timer(1.0, self._publish_diagnostics)
        self._queue: queue.Queue = queue.Queue(maxsize=MAX_QUEUED)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._generation = 0          # bumped by every stop request
        self._speaking = ''
        self.spoken = 0
        self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix='tts-synth')   # the next sentence
        self._worker = threading.Thread(target=self._run, name='tts', daemon=True)
        self._worker.start()
        self.get_logger().info(f'Speaking with espeak-ng voices {self.synthesizer.voices} '
                               f'on {type(self.player).__name__}')

    def _apply_live_params(self, _name: str, _value) -> None:
        """A live parameter changed (set_parameters, a desired state's `volume`): the next
        sentence synthesised is at the new volume."""
        self.synthesizer.volume = self.params.volume

    def _on_reply(self, msg: RobotReply) -> None:
        if not msg.text.strip():
            return
        if len(msg.text) > MAX_TEXT_CHARS:          # the whole reply, not each sentence: minutes of speech
            self.get_logger().error(f'Not saying a reply of {len(msg.text)} characters (more than '
                                    f'{MAX_TEXT_CHARS}): {msg.text[:40]!r}…')
            return
        while True:
            try:
                self._queue.put_nowait(msg)
                return
            except queue.Full:                       # replies come faster than they can be said: the oldest go
                try:
                    dropped = self._queue.get_nowait()
                except queue.Empty:
                    continue
                if dropped is _STOP:
                    self._queue.put_nowait(_STOP)
                    return
                self.get_logger().warning(f'{MAX_QUEUED} replies waiting to be said: not saying the oldest, '
                                          f'{getattr(dropped, "text", "")[:40]!r}', throttle_duration_sec=5.0)

    def _on_stop(self, _msg: Empty) -> None:
        dropped = 0
        while True:
            try:
                self._queue.get_nowait()
                dropped += 1
            except queue.Empty:
                break
        if self._speaking or dropped:
            self.get_logger().info(f'Customer is talking: stopping speech ({dropped} queued replies dropped)')
        with self._lock:
            self._generation += 1
            self._stop.set()

    def _publish_status(self, state: int, msg: RobotReply, audio_path: str) -> None:
        if not self.context.ok():       # shutting down (Ctrl-C) while a sentence ended
            return
        status = SpeechStatus(state=state, text=msg.text, language=msg.language, audio_path=audio_path)
        status.header.stamp = self.get_clock().now().to_msg()
        self.status_pub.publish(status)

    def _run(self) -> None:
        while True:
            msg = self._queue.get()
            if msg is _STOP:
                return
            self._say(msg, self._generation)

    def _say(self, msg: RobotReply, generation: int) -> None:
        language = msg.language or 'zh'
        chunks = (split_for_speech(msg.text) if self.params.stream_sentences else []) or [msg.text.strip()]
        try:
            speech = self.synthesizer.synthesize(chunks[0], language)
            audio_path = self.player.prepare(speech)
        except (SynthesisError, OSError) as exc:
            self.get_logger().error(f'Cannot say {_which(msg)}: {exc}')
            return
        with self._lock:
            if generation != self._generation:   # stopped while it was being synthesised
                return
            self._stop.clear()
        self._speaking = msg.text
        self._publish_status(SpeechStatus.STARTED, msg, audio_path)
        said = [speech]
        finished = True
        try:
            for index in range(1, len(chunks) + 1):
                ahead = self._ahead.submit(self.synthesizer.synthesize, chunks[index], language) \
                    if index < len(chunks) else None
                finished = self.player.play(speech, self._stop, audio_path)
                if not finished or ahead is None:
                    break
                try:
                    speech = ahead.result()
                except SynthesisError as exc:
                    self.get_logger().error(f'Cannot say part {index + 1} of {len(chunks)} of {_which(msg)}: {exc}')
                    break
                said.append(speech)
            if len(said) > 1:
                self.player.complete(Speech(msg.text, language, b''.join(s.pcm for s in said), said[0].sample_rate),
                                     audio_path)
        except Exception as exc:  # noqa: BLE001 - a device error must not kill the speaking thread
            self.get_logger().error(f'Audio output failed while saying {_which(msg)}: {exc}')
            finished = False
        self._speaking = ''
        self.spoken += 1
        self._publish_status(SpeechStatus.FINISHED if finished else SpeechStatus.INTERRUPTED, msg, audio_path)

    def _publish_diagnostics(self) -> None:
        message = f'speaking: {self._speaking[:40]}' if self._speaking else 'idle'
        status = diagnostic_status('dialogue/tts', DiagnosticStatus.OK, message, {
            'player': type(self.player).__name__, 'queued': self._queue.qsize(), 'spoken': self.spoken})
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)

    def destroy_node(self) -> None:
        self._stop.set()
        while True:                                  # what is still queued is not said: shutting down
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(_STOP)
        self._worker.join(timeout=2.0)
        self._ahead.shutdown(wait=False, cancel_futures=True)
        super().destroy_node()


main = main_for(TtsNode)
