"""End of utterance from webrtcvad, instead of Vosk's own endpointing.

Vosk's default endpoint rules wait 0.5–2 s of trailing silence before a final result; a customer
waiting that long thinks the robot did not hear. The detector below declares speech after a short
run of voiced frames and the end of the utterance after `end_silence_ms` of unvoiced frames, and
keeps a little audio from before the start (pre-roll) so the first syllable is not cut.

Adaptive end (`pause_ms` > 0): a fixed silence is either slow (every reply waits for it) or cuts
customers who pause mid-sentence (Mandarin speakers pause between phrases). So after `pause_ms`
of silence the detector reports a PAUSE; the listener looks at the words so far
(speech_recognizer.Listener: Whisper decodes the utterance now, Vosk gives its partial result;
utterance_end.looks_finished) and says via `judge` whether they look finished: then
`end_finished_ms` of silence end the utterance, else `end_unfinished_ms` (nothing heard:
`end_silence_ms`). Speech resuming starts the count again; at most MAX_PAUSES judgements an
utterance, after that `end_silence_ms`. The decision is counted in frames, so a file and a live
stream end at the same place.

In steady background noise (store babble, music, air conditioning) webrtcvad hears "speech" in
most noise frames (at 10 dB SNR of babble 85-90 % of them), so the silence after a question never
comes and the utterance runs to `max_utterance_s`. So a frame also has to stand out from the
noise: its level in the speech band (250-4000 Hz) must be `noise_margin_db` above the noise floor,
the `noise_percentile`-th percentile of the levels of the last `noise_window_s` of audio, speech
included (digital silence counts as -90 dBFS). The floor follows the noise (it rises within a few
seconds when music starts, also during an utterance) and stays under the speech, which has quiet
gaps between its syllables; in quiet the floor is far below any voice and webrtcvad decides
alone. Inside an utterance webrtcvad's voiced frames keep counting for `noise_hangover_ms` after
the last frame above the floor (weak word endings); the hangover never opens an utterance, and
opening one needs `noise_open_extra_db` more than the margin, so babble bursts rarely do.
`noise_margin_db` 0: webrtcvad alone (the behaviour before).
Pure: no rclpy.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import webrtcvad

from retail_dialogue.audio_source import FRAME_MS, SAMPLE_RATE


class VadEvent(Enum):
    SPEECH_START = 'speech_start'   # the frames returned with it are pre-roll + this frame
    SPEECH = 'speech'               # a frame inside an utterance
    PAUSE = 'pause'                 # a frame inside an utterance after `pause_ms` of silence: `judge` it
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
    pause_ms: int = 0             # silence after which the words so far are judged (0: end_silence_ms only)
    end_finished_ms: int = 200    # silence that ends an utterance whose words look finished
    end_unfinished_ms: int = 800  # ... whose words need a continuation (a pause mid-sentence)
    noise_margin_db: float = 8.0  # a voiced frame's speech-band level over the noise floor (0: webrtcvad alone)
    noise_window_s: float = 3.0   # the noise floor: a low percentile of the levels of this much audio ...
    noise_percentile: float = 10.0  # ... this one
    noise_open_extra_db: float = 3.0  # opening an utterance needs the margin + this (babble bursts open none)
    noise_hangover_ms: int = 120  # inside an utterance, webrtcvad's voiced frames still count this long after
    #                               the last one above the floor + margin (weak word ends); never opens one

    def __post_init__(self) -> None:
        if self.frame_ms not in (10, 20, 30):
            raise ValueError(f'frame_ms must be 10, 20 or 30 (webrtcvad), got {self.frame_ms}')
        if not 0 <= self.aggressiveness <= 3:
            raise ValueError(f'aggressiveness must be 0..3, got {self.aggressiveness}')
        if not 0 <= self.noise_margin_db <= 40 or not 0.2 <= self.noise_window_s <= 60 \
                or not 1 <= self.noise_percentile <= 50 or not 0 <= self.noise_hangover_ms <= 1000 \
                or not 0 <= self.noise_open_extra_db <= 20:
            raise ValueError('noise_margin_db must be 0..40, noise_window_s 0.2..60, noise_percentile 1..50, '
                             'noise_hangover_ms 0..1000, noise_open_extra_db 0..20')


BAND_HZ = (250.0, 4000.0)       # the speech band the noise floor is measured in
SILENCE_DBFS = -90.0            # quieter frames (digital silence, dither) count as this level


def band_level_dbfs(samples: np.ndarray, window: np.ndarray, band: np.ndarray) -> float:
    """RMS level of one frame in the speech band, dB relative to full scale (Parseval over a
    Hann-windowed FFT)."""
    spectrum = np.fft.rfft(samples * window)
    power = 2.0 * float(np.sum(np.abs(spectrum[band]) ** 2)) / (len(samples) * float(np.sum(window ** 2)))
    return 10.0 * float(np.log10(power / 32768.0 ** 2)) if power > 0 else -200.0


MAX_PAUSES = 4     # judgements per utterance (each may cost a decode); then end_silence_ms


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
        self._end_default = frames(self.config.end_silence_ms)
        self._end_finished = frames(self.config.end_finished_ms)
        self._end_unfinished = frames(self.config.end_unfinished_ms)
        self._pause = frames(self.config.pause_ms) if self.config.pause_ms > 0 else 0
        self._end_needed = self._end_default
        self._pauses = 0
        self._max_frames = int(self.config.max_utterance_s * 1000 / self.config.frame_ms)
        self._recent: deque[tuple[bytes, bool]] = deque(
            maxlen=max(self._start_window, frames(self.config.pre_roll_ms)))
        self.in_speech = False
        self._silent_run = 0
        self._utterance_frames = 0
        self.last_voiced = False       # the verdict on the last frame processed
        size = SAMPLE_RATE * self.config.frame_ms // 1000
        self._window = np.hanning(size)
        freqs = np.fft.rfftfreq(size, 1.0 / SAMPLE_RATE)
        self._band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
        self._levels: deque[float] = deque(maxlen=frames(int(self.config.noise_window_s * 1000)))
        self.noise_floor_dbfs: float | None = None     # None: no noise measured yet (webrtcvad alone)
        self.last_level_dbfs = -200.0
        self._hangover = frames(self.config.noise_hangover_ms) if self.config.noise_hangover_ms > 0 else 0
        self._hang = 0

    def is_speech(self, frame: bytes) -> bool:
        """webrtcvad's verdict."""
        return self._vad.is_speech(frame, SAMPLE_RATE)

    def voiced(self, frame: bytes) -> bool:
        """webrtcvad's verdict, and (noise_margin_db > 0) the frame `noise_margin_db` above the noise
        floor measured before it."""
        if not self.is_speech(frame):
            self._measure(frame)
            self._hang = 0
            return False
        if not self.config.noise_margin_db:
            return True
        floor = self.noise_floor_dbfs
        level = self._measure(frame)
        margin = self.config.noise_margin_db + (0.0 if self.in_speech else self.config.noise_open_extra_db)
        if floor is None or level >= floor + margin:
            self._hang = self._hangover
            return True
        if self._hang > 0 and self.in_speech:          # the hangover keeps an utterance, never opens one
            self._hang -= 1
            return True
        return False

    def _measure(self, frame: bytes) -> float:
        if not self.config.noise_margin_db:
            return self.last_level_dbfs
        samples = np.frombuffer(frame, dtype='<i2').astype(np.float64)
        level = self.last_level_dbfs = band_level_dbfs(samples, self._window, self._band)
        self._levels.append(max(level, SILENCE_DBFS))
        self.noise_floor_dbfs = float(np.percentile(self._levels, self.config.noise_percentile))
        return level

    def reset(self) -> None:
        self._recent.clear()
        self._levels.clear()
        self.noise_floor_dbfs = None
        self._hang = 0
        self._close()

    def _close(self) -> None:
        self.in_speech = False
        self._silent_run = 0
        self._utterance_frames = 0
        self._end_needed = self._end_default
        self._pauses = 0

    def judge(self, finished: bool | None) -> bool:
        """After a PAUSE: do the words so far look finished (None: nothing heard)? Sets the
        silence that ends this pause; True when it has already lasted that long (the utterance
        ends now, the caller finishes it)."""
        if not self.in_speech:
            return False
        self._end_needed = (self._end_default if finished is None
                            else self._end_finished if finished else self._end_unfinished)
        if self._silent_run >= self._end_needed:
            self._close()
            return True
        return False

    def process(self, frame: bytes) -> VadResult:
        voiced = self.last_voiced = self.voiced(frame)
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
        if voiced:
            self._silent_run = 0
            self._end_needed = self._end_default
        else:
            self._silent_run += 1
        if self._silent_run >= self._end_needed or self._utterance_frames >= self._max_frames:
            self._close()
            return VadResult(VadEvent.SPEECH_END, [frame])
        if self._pause and self._silent_run == self._pause and self._pauses < MAX_PAUSES:
            self._pauses += 1
            return VadResult(VadEvent.PAUSE, [frame])
        return VadResult(VadEvent.SPEECH, [frame])
