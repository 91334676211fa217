"""Audio sources (WAV, raw stream) and VAD endpointing, on real espeak-ng speech."""
from __future__ import annotations

import io
import struct
import wave

import numpy as np
import pytest

from retail_dialogue.audio_source import (AudioSourceError, frame_bytes, read_wav, split_frames,
                                          stream_frames, wav_frames)
from retail_dialogue.vad import EndpointDetector, VadConfig, VadEvent
from speech_samples import espeak, korean_wav, speech_end_s


def _write_wav(path, samples: np.ndarray, rate: int, width: int = 2) -> None:
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    with wave.open(str(path), 'wb') as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())


def _tone(rate: int, seconds: float, freq: float = 440.0, amplitude: float = 10000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


def _dominant_freq(pcm: bytes) -> float:
    x = np.frombuffer(pcm, dtype='<i2').astype(float)
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.argmax(spectrum) * 16000 / len(x))


def test_frames_have_the_vad_size_and_the_last_is_padded():
    frames = list(split_frames(bytes(1000)))
    assert [len(f) for f in frames] == [640, 640]
    assert frame_bytes(30) == 960


def test_44k1_stereo_wav_is_resampled_to_16k_mono(tmp_path):
    left = _tone(44100, 1.0, 440.0)
    stereo = np.stack([left, left], axis=1).astype('<i2')
    path = tmp_path / 'phone_recording.wav'
    _write_wav(path, stereo, 44100)
    pcm = read_wav(path)
    assert abs(len(pcm) / 2 / 16000 - 1.0) < 0.01          # duration kept
    assert abs(_dominant_freq(pcm) - 440.0) < 3.0            # pitch kept: really resampled


def test_8bit_wav_is_converted(tmp_path):
    samples = (_tone(8000, 0.5, 300.0, 100.0) + 128).astype(np.uint8)
    path = tmp_path / 'eight_bit.wav'
    _write_wav(path, samples, 8000, width=1)
    pcm = read_wav(path)
    assert abs(len(pcm) / 2 / 16000 - 0.5) < 0.01
    assert abs(_dominant_freq(pcm) - 300.0) < 4.0


def test_float_wav_is_converted(tmp_path):
    tone = (_tone(16000, 0.5, 300.0) / 32768).astype('<f4')
    data = tone.tobytes()
    fmt = struct.pack('<HHIIHH', 3, 1, 16000, 64000, 4, 32)       # WAVE_FORMAT_IEEE_FLOAT
    riff = b'WAVE' + b'fmt ' + struct.pack('<I', len(fmt)) + fmt + b'data' + struct.pack('<I', len(data)) + data
    path = tmp_path / 'float.wav'
    path.write_bytes(b'RIFF' + struct.pack('<I', len(riff)) + riff)
    pcm = read_wav(path)
    assert len(pcm) == 16000 and abs(_dominant_freq(pcm) - 300.0) < 4.0
    assert abs(int(np.abs(np.frombuffer(pcm, dtype='<i2')).max()) - 10000) < 50


def _sox(tmp_path, name: str, *options: str):
    """A 0.5 s 300 Hz tone written by sox itself with `options` (sox picks WAVE_FORMAT_EXTENSIBLE
    for more than 16 bits or more than 2 channels, as in the field reports)."""
    import shutil
    import subprocess
    if shutil.which('sox') is None:
        pytest.skip('sox is not installed (robot_ws/install.sh installs it)')
    path = tmp_path / name
    subprocess.run(['sox', '-n', *options, str(path), 'synth', '0.5', 'sine', '300', 'vol', '0.3'], check=True)
    return path


@pytest.mark.parametrize('name,options', [
    ('24bit.wav', ('-r', '48000', '-c', '1', '-b', '24')),
    ('six_channel.wav', ('-r', '16000', '-c', '6', '-b', '16')),
    ('24bit_stereo_44k1.wav', ('-r', '44100', '-c', '2', '-b', '24')),
    ('32bit.wav', ('-r', '16000', '-c', '1', '-b', '32')),
    ('float_4ch.wav', ('-r', '22050', '-c', '4', '-e', 'floating-point', '-b', '32')),
    ('8bit.wav', ('-r', '8000', '-c', '1', '-b', '8')),
])
def test_sox_wavs_are_read_whatever_their_format(tmp_path, name, options):
    path = _sox(tmp_path, name, *options)
    pcm = read_wav(path)
    assert abs(len(pcm) / 2 / 16000 - 0.5) < 0.01
    assert abs(_dominant_freq(pcm) - 300.0) < 4.0
    peak = int(np.abs(np.frombuffer(pcm, dtype='<i2')).max())
    assert 0.25 * 32768 < peak < 0.35 * 32768          # vol 0.3, not scaled wrong by the bit depth


def test_extensible_header_from_sox_is_extensible(tmp_path):
    """The test above would prove nothing if sox wrote plain PCM headers."""
    path = _sox(tmp_path, 'x.wav', '-r', '16000', '-c', '1', '-b', '24')
    data = path.read_bytes()
    assert struct.unpack_from('<H', data, data.index(b'fmt ') + 8)[0] == 0xFFFE


@pytest.mark.parametrize('damage', ['truncated_header', 'no_data_chunk', 'zero_channels', 'compressed', 'garbage'])
def test_a_corrupt_wav_is_one_line(tmp_path, damage):
    good = _sox(tmp_path, 'good.wav', '-r', '16000', '-c', '1', '-b', '16').read_bytes()
    fmt_at = good.index(b'fmt ')
    if damage == 'truncated_header':
        data = good[:fmt_at + 10]
    elif damage == 'no_data_chunk':
        data = good[:good.index(b'data')]
    elif damage == 'zero_channels':
        data = good[:fmt_at + 10] + b'\x00\x00' + good[fmt_at + 12:]
    elif damage == 'compressed':
        data = good[:fmt_at + 8] + struct.pack('<H', 0x0011) + good[fmt_at + 10:]      # IMA ADPCM
    else:
        data = b'RIFF\xff\xff\xff\xffWAVE' + bytes(range(256)) * 4
    path = tmp_path / 'broken.wav'
    path.write_bytes(data)
    with pytest.raises(AudioSourceError) as raised:
        read_wav(path)
    message = str(raised.value)
    assert '\n' not in message and message.startswith(f'{path}: not a usable PCM WAV file') and 'sox' in message


def test_a_folder_is_not_a_wav(tmp_path):
    with pytest.raises(AudioSourceError, match='is a folder'):
        read_wav(tmp_path)


def test_a_text_file_or_missing_file_is_rejected(tmp_path):
    bogus = tmp_path / 'notes.wav'
    bogus.write_text('this is not audio')
    with pytest.raises(AudioSourceError, match='not a usable PCM WAV file'):
        read_wav(bogus)
    with pytest.raises(AudioSourceError, match='no such file'):
        read_wav(tmp_path / 'absent.wav')


def test_raw_stream_is_cut_into_frames():
    pcm = bytes(range(256)) * 10          # 2560 bytes = 4 full frames
    frames = list(stream_frames(io.BytesIO(pcm + b'\x01\x02')))
    assert len(frames) == 5 and b''.join(frames)[:len(pcm)] == pcm and len(frames[-1]) == 640


def test_lead_in_silence_comes_first(tmp_path):
    path = tmp_path / 'tone.wav'
    _write_wav(path, _tone(16000, 0.2).astype('<i2'), 16000)
    frames = list(wav_frames(path, lead_in_ms=100))
    assert frames[0] == bytes(640) and frames[4] == bytes(640) and frames[5] != bytes(640)


def _events(detector: EndpointDetector, pcm: bytes) -> list[tuple[VadEvent, float]]:
    out = []
    for index, frame in enumerate(split_frames(pcm)):
        result = detector.process(frame)
        if result.event in (VadEvent.SPEECH_START, VadEvent.SPEECH_END):
            out.append((result.event, (index + 1) * 0.02))
    return out


def test_vad_finds_each_utterance_and_ends_it_soon_after_the_speech(tmp_path):
    first = read_wav(korean_wav('삼성 텔레비전', tmp_path / 'a.wav', pad=(0.5, 1.0)))
    second = read_wav(korean_wav('엘지 에어컨', tmp_path / 'b.wav', pad=(0.0, 1.0)))
    speech_end = speech_end_s(first)
    events = _events(EndpointDetector(VadConfig(end_silence_ms=300)), first + second)
    assert [e for e, _ in events] == [VadEvent.SPEECH_START, VadEvent.SPEECH_END] * 2
    assert 0.4 <= events[0][1] <= 0.8                       # speech begins at 0.5 s
    assert speech_end + 0.2 <= events[1][1] <= speech_end + 0.6   # ~300 ms of silence after it


def test_vad_end_silence_sets_the_latency(tmp_path):
    pcm = read_wav(korean_wav('엘지 정수기', tmp_path / 'c.wav', pad=(0.3, 2.0)))
    short = _events(EndpointDetector(VadConfig(end_silence_ms=200)), pcm)[1][1]
    long = _events(EndpointDetector(VadConfig(end_silence_ms=800)), pcm)[1][1]
    assert 0.5 <= long - short <= 0.7


def test_vad_ignores_silence_and_cuts_endless_speech(tmp_path):
    detector = EndpointDetector(VadConfig(max_utterance_s=1.0))
    assert _events(detector, bytes(32000)) == []
    babble = b''.join(read_wav(espeak(text, 'en', tmp_path / f'{i}.wav', rate=16000, pad=(0, 0)))
                      for i, text in enumerate(['one two three four five six seven eight nine ten'] * 2))
    events = _events(EndpointDetector(VadConfig(max_utterance_s=1.0, end_silence_ms=2000)), babble)
    assert events[1][0] is VadEvent.SPEECH_END and events[1][1] - events[0][1] <= 1.1


class _ScriptedRecognizer:
    """A recogniser whose words so far are scripted per peek (what Whisper would have heard at each
    pause); counts the decodes a final costs."""

    languages = ['en']

    def __init__(self, peeks: list[str]) -> None:
        self.peeks, self.peeked, self.decodes, self.reused = list(peeks), 0, 0, 0

    def begin(self) -> None:
        pass

    def accept(self, frame: bytes) -> list:
        return []

    def peek(self):
        from retail_dialogue.speech_recognizer import Recognition
        text = self.peeks[min(self.peeked, len(self.peeks) - 1)]
        self.peeked += 1
        return Recognition(text, 'en', 0.9, True)

    def finish(self, reuse_peek: bool = False):
        from retail_dialogue.speech_recognizer import Recognition
        self.reused += reuse_peek
        self.decodes += not reuse_peek
        return Recognition(self.peeks[min(self.peeked, len(self.peeks)) - 1], 'en', 0.9, True)


ADAPTIVE = dict(pause_ms=120, end_finished_ms=200, end_unfinished_ms=800)


def _paused(tmp_path, first: str, second: str, pause_ms: int) -> bytes:
    """espeak-ng saying `first`, a pause of `pause_ms` (SSML break) and `second`, then silence."""
    ssml = f'<speak>{first} <break time="{pause_ms}ms"/> {second}</speak>'
    return read_wav(espeak(ssml, 'en', tmp_path / 'paused.wav', rate=16000, pad=(0.3, 1.5), ssml=True))


def _finals(listener, pcm: bytes) -> list[tuple[str, float]]:
    from retail_dialogue.speech_recognizer import Heard
    return [(e.recognition.text, e.end_s) for e in listener.listen(split_frames(pcm)) if isinstance(e, Heard)]


def test_a_pause_mid_sentence_is_waited_for_where_a_fixed_silence_cuts(tmp_path):
    """"Where can I find … the rice cooker?" with a 500 ms pause: the fixed 300 ms of silence cuts
    it in two; judged at the pause ("…find": unfinished), the VAD waits and hears it whole, and
    the final is the decode made at the last pause (no second decode)."""
    from retail_dialogue.speech_recognizer import Listener
    pcm = _paused(tmp_path, 'Where can I find', 'the rice cooker?', 500)
    fixed = _finals(Listener(_ScriptedRecognizer(['Where can I find', 'the rice cooker?']),
                             EndpointDetector(VadConfig(end_silence_ms=300))), pcm)
    assert len(fixed) == 2
    recognizer = _ScriptedRecognizer(['Where can I find', 'Where can I find the rice cooker?'])
    adaptive = _finals(Listener(recognizer, EndpointDetector(VadConfig(**ADAPTIVE))), pcm)
    assert [text for text, _ in adaptive] == ['Where can I find the rice cooker?']
    assert recognizer.peeked == 2 and recognizer.reused == 1 and recognizer.decodes == 0


def test_a_finished_request_ends_sooner_than_the_fixed_silence(tmp_path):
    from retail_dialogue.speech_recognizer import Listener
    pcm = read_wav(espeak('Where is the rice cooker?', 'en', tmp_path / 'q.wav', rate=16000, pad=(0.3, 1.5)))
    end = speech_end_s(pcm)
    fixed = _finals(Listener(_ScriptedRecognizer(['x']), EndpointDetector(VadConfig(end_silence_ms=300))), pcm)
    adaptive = _finals(Listener(_ScriptedRecognizer(['Where is the rice cooker?']),
                                EndpointDetector(VadConfig(**ADAPTIVE))), pcm)
    assert len(fixed) == len(adaptive) == 1
    assert end < adaptive[0][1] <= fixed[0][1] - 0.08       # 200 ms of silence instead of 300 ms
    unsure = _finals(Listener(_ScriptedRecognizer(['Where is the']), EndpointDetector(VadConfig(**ADAPTIVE))), pcm)
    assert unsure[0][1] >= fixed[0][1] + 0.4                 # words needing more: waited for


def test_speech_after_a_peek_is_decoded_again():
    """A peek is only reused when nothing but silence followed it."""
    # webrtcvad replaced by "not digital silence", and no noise floor (a constant "voice" is steady noise to it)
    detector = EndpointDetector(VadConfig(**ADAPTIVE, noise_margin_db=0.0))
    detector.is_speech = lambda frame: frame != bytes(len(frame))     # digital silence only
    voice = np.full(320, 3000, dtype='<i2').tobytes()
    pcm = voice * 20 + bytes(640) * 8 + voice * 20 + bytes(640) * 50
    from retail_dialogue.speech_recognizer import Listener
    recognizer = _ScriptedRecognizer(['Where can I find', 'Where can I find the rice cooker?'])
    assert len(_finals(Listener(recognizer, detector), pcm)) == 1
    assert recognizer.peeked == 2 and recognizer.reused == 1


def test_vad_rejects_frame_sizes_webrtcvad_cannot_take():
    with pytest.raises(ValueError, match='10, 20 or 30'):
        VadConfig(frame_ms=25)


def test_missing_microphone_is_one_clear_error():
    import sounddevice
    from retail_dialogue.audio_source import Microphone
    if any(d['max_input_channels'] > 0 for d in sounddevice.query_devices()):
        pytest.skip('this machine has a microphone')
    with pytest.raises(AudioSourceError, match=r'^microphone \(default\) cannot record 16 kHz mono: '):
        Microphone()
    with pytest.raises(AudioSourceError, match=r'^microphone usb-mic-7 cannot record'):
        Microphone('usb-mic-7')


def test_level_in_dbfs():
    from retail_dialogue.audio_source import level_dbfs
    assert level_dbfs(bytes(640)) == -100.0
    full = np.full(320, 32767, dtype='<i2').tobytes()
    half = np.full(320, 16384, dtype='<i2').tobytes()
    assert abs(level_dbfs(full)) < 0.01 and abs(level_dbfs(half) + 6.02) < 0.05
