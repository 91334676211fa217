"""End of utterance from webrtcvad, instead of Vosk's own endpointing.

Vosk's default endpoint rules wait 0.5–2 s of trailing silence before a final result; a customer
waiting that long thinks the robot did not hear. The detector below declares speech after a short
run of voiced frames and the end of the utterance after `end_silence_ms` of unvoiced frames, and
keeps a little audio from before the start (pre-roll) so the first syllable is not cut.
Pure: no rclpy.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

import webrtcvad

from retail_dialogue.audio_source import FRAME_MS, SAMPLE_RATE


class VadEvent(Enum):
    SPEECH_START = 'speech_start'   # the frames returned with it are pre-roll + this frame
    SPEECH = 'speech'               # a frame inside an utterance
    SPEECH_END = 'speech_end'       # end of utterance (silence long enough, or too long)
    SILENCE = 'silence'             # outside an utterance


@dataclass
class VadConfig:
    aggressiveness: int = 2       # webrtcvad mode 0 (lenient) .. 3 (strict about what is speech)
    frame_ms: int = FRAME_MS
    start_speech_ms: int = 100    # voiced audio within the start window that opens an utterance
    start_window_ms: int = 200
    end_silence_ms: int = 300     # unvoiced audio that closes it
    pre_roll_ms: int = 300
    max_utterance_s: float = 15.0

    def __post_init__(self) -> None:
        if self.frame_ms not in (10, 20, 30):
            raise ValueError(f'frame_ms must be 10, 20 or 30 (webrtcvad), got {self.frame_ms}')
        if not 0 <= self.aggressiveness <= 3:
            raise ValueError(f'aggressiveness must be 0..3, got {self.aggressiveness}')


@dataclass
class VadResult:
    event: VadEvent
    frames: list[bytes] = field(default_factory=list)  # audio to hand to the recogniser now


class EndpointDetector:
    """Feed 16 kHz mono s16le frames one by one; get utterance start, body and end."""

    def __init__(self, config: VadConfig | None = None) -> None:
        self.config = config or VadConfig()
        self._vad = webrtcvad.Vad(self.config.aggressiveness)
        frames = lambda ms: max(1, ms // self.config.frame_ms)  # noqa: E731
        self._start_window = frames(self.config.start_window_ms)
        self._start_needed = frames(self.config.start_speech_ms)
        self._end_needed = frames(self.config.end_silence_ms)
        self._max_frames = int(self.config.max_utterance_s * 1000 / self.config.frame_ms)
        self._recent: deque[tuple[bytes, bool]] = deque(
            maxlen=max(self._start_window, frames(self.config.pre_roll_ms)))
        self.in_speech = False
        self._silent_run = 0
        self._utterance_frames = 0

    def is_speech(self, frame: bytes) -> bool:
        return self._vad.is_speech(frame, SAMPLE_RATE)

    def reset(self) -> None:
        self._recent.clear()
        self.in_speech = False
        self._silent_run = 0
        self._utterance_frames = 0

    def process(self, frame: bytes) -> VadResult:
        voiced = self.is_speech(frame)
        if not self.in_speech:
            self._recent.append((frame, voiced))
            window = list(self._recent)[-self._start_window:]
            if sum(v for _, v in window) >= self._start_needed:
                self.in_speech = True
                self._silent_run = 0
                pre_roll = [f for f, _ in self._recent]
                self._utterance_frames = len(pre_roll)
                self._recent.clear()
                return VadResult(VadEvent.SPEECH_START, pre_roll)
            return VadResult(VadEvent.SILENCE)
        self._utterance_frames += 1
        self._silent_run = 0 if voiced else self._silent_run + 1
        if self._silent_run >= self._end_needed or self._utterance_frames >= self._max_frames:
            self.in_speech = False
            self._silent_run = 0
            return VadResult(VadEvent.SPEECH_END, [frame])
        return VadResult(VadEvent.SPEECH, [frame])
