"""`retailbot doctor`: check a robot's setup end to end before (or instead of) launching it.

One verdict per check, in a store technician's words: `ok`, `warn` (the robot runs, with less)
or `fail` (something the robot needs is missing or wrong). Checks: gallery key, platform token,
serial port of the base, camera (and which face detector runs), microphone and speaker, Vosk models, data folder writable, disk space, clock,
platform reachable. Nothing is changed on the robot (the data-folder check writes and removes
one temporary file). Exit codes: 0 no check failed (warnings allowed), 1 at least one failed,
2 bad arguments. `--json` prints {"ok": bool, "checks": [{"name", "level", "message"}]}.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Callable
from urllib.parse import quote

OK, WARN, FAIL = 'ok', 'warn', 'fail'
CHECK_NAMES = ('gallery key', 'platform token', 'serial port', 'camera', 'microphone', 'speech models',
               'data folder', 'disk space', 'clock', 'platform')
SKIP_IDS = dict(zip(('gallery', 'token', 'serial', 'camera', 'audio', 'speech', 'data', 'disk', 'clock',
                     'platform'), CHECK_NAMES))                  # --skip serial,camera,...
DISK_FAIL_BYTES = 500 * 2**20      # below this the outbox and logs fill the disk within a day
DISK_WARN_BYTES = 2 * 2**30
CLOCK_FLOOR = datetime(2025, 1, 1, tzinfo=timezone.utc)   # no robot runs before this software existed
CLOCK_SKEW_S = 120.0
DEFAULT_PLATFORM_URL = 'http://127.0.0.1:8080'            # launch/robot.launch.yaml's platform_url
DEFAULT_ROBOT_ID = 'robot-01'                           # launch/robot.launch.yaml's robot_id
DEFAULT_PORT = '/dev/ttyUSB0'                             # launch/navigation.launch.yaml's base_port
DEFAULT_CAMERA = '0'                                      # launch/perception.launch.yaml's camera_device


@dataclass(frozen=True)
class Check:
    name: str
    level: str          # ok | warn | fail
    message: str


def default_data_dir() -> Path:
    """What the launch files use: $RETAILBOT_DATA_DIR, else ~/.local/share/retailbot."""
    env = os.environ.get('RETAILBOT_DATA_DIR')
    return Path(env) if env else Path(os.environ.get('HOME', '/tmp')) / '.local' / 'share' / 'retailbot'


# --- the checks (each returns one Check; none raises) ----------------------------------------

def check_gallery_key(key_file: str, gallery_dir: Path) -> Check:
    name = 'gallery key'
    try:
        from retail_perception.gallery import KEY_ENV, GalleryError, GalleryStore, load_key
    except ImportError as exc:
        return Check(name, FAIL, f'the perception package is not installed ({exc})')
    source = key_file or f'${KEY_ENV}'
    try:
        key = load_key(key_file or None)
    except GalleryError as exc:
        return Check(name, WARN, f'{exc}; members will not be recognised (the robot greets everyone anonymously)')
    try:
        members = len(GalleryStore(gallery_dir, key).load().members)
    except GalleryError as exc:
        return Check(name, FAIL, str(exc))
    except Exception as exc:  # noqa: BLE001 - a gallery format this check does not know: say so
        return Check(name, WARN, f'key from {source} read, but the gallery could not be checked: {exc}')
    return Check(name, OK, f'key from {source} opens the gallery in {gallery_dir} ({members} member{"" if members == 1 else "s"})')


def check_token(token_file: Path) -> Check:
    name = 'platform token'
    try:
        info = token_file.stat()
        token = token_file.read_text(encoding='utf-8').strip()
    except FileNotFoundError:
        return Check(name, FAIL, f'no token file {token_file}: uploads to the platform will be refused '
                                 '(put the token the platform gave this robot there, chmod 600)')
    except (OSError, UnicodeDecodeError) as exc:
        return Check(name, FAIL, f'cannot read token file {token_file}: {getattr(exc, "strerror", None) or exc}')
    if not token:
        return Check(name, FAIL, f'token file {token_file} is empty')
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return Check(name, WARN, f'token file {token_file} can be read by other users (run: chmod 600 {token_file})')
    return Check(name, OK, f'token in {token_file} (mode 600)')


def check_serial(port: str, timeout: float) -> Check:
    name = 'serial port'
    path = Path(port)
    if not path.exists():
        return Check(name, FAIL, f"no serial device {port} (is the base's USB cable plugged in and the base "
                                 'switched on? set the launch argument base_port:=... if it is elsewhere)')
    if not stat.S_ISCHR(path.stat().st_mode):
        return Check(name, FAIL, f'{port} is not a serial device')
    from retail_navigation.base_driver import DriverCore
    from retail_navigation.serial_base import LinkState, SerialBase
    link = SerialBase(port, DriverCore()).start()      # read only: never moves the base
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (link.state != LinkState.CONNECTED or link.core.basic is None
                                               or not link.core.info.firmware_version):
            if link.state in (LinkState.MISSING, LinkState.DISCONNECTED) and link.stats.last_error:
                break
            time.sleep(0.02)
        core, error = link.core, link.stats.last_error
        connected = link.state in (LinkState.CONNECTED, LinkState.SILENT)
    finally:
        link.close()
    if 'in use' in error:
        return Check(name, WARN, f'{error}: cannot check the base while the robot runs')
    if not connected:
        return Check(name, FAIL, error or f'{port} could not be opened')
    if core.basic is None:
        return Check(name, FAIL, f'{port} opens but the base does not answer (switched on? right port?)')
    firmware = core.info.firmware_version or 'unknown firmware'
    if core.safety.triggered or core.basic.bumper or core.basic.cliff or core.basic.wheel_drop:
        from retail_navigation.base_driver import SafetyState
        sensors = SafetyState(core.basic.bumper, core.basic.cliff, core.basic.wheel_drop).describe_sensors()
        return Check(name, WARN, f'base answers on {port} ({firmware}) but {sensors}: it will not drive')
    return Check(name, OK, f'base answers on {port} (firmware {firmware}, battery {core.basic.battery_v:.1f} V)')


def _with_timeout(work: Callable[[], object], timeout: float) -> tuple[bool, object]:
    """(finished, result or exception) of `work` run in a daemon thread for at most `timeout` s."""
    box: list = []

    def run() -> None:
        try:
            box.append(work())
        except Exception as exc:  # noqa: BLE001 - returned to the caller
            box.append(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    return (bool(box), box[0] if box else None)


def check_camera(source: str, timeout: float) -> Check:
    name = 'camera'
    spec = source.strip()
    if spec.isdigit() and not Path(f'/dev/video{spec}').exists():
        return Check(name, FAIL, f'no camera device /dev/video{spec} (is the camera plugged in? set '
                                 'camera_device:=... for another index, a video file or an rtsp:// URL)')
    if not spec.isdigit() and '://' not in spec and not Path(spec).exists():
        return Check(name, FAIL, f'camera source {spec} does not exist')

    def grab():
        import cv2
        if Path(spec).is_dir():
            from retail_perception.camera_source import IMAGE_SUFFIXES
            photos = [p for p in sorted(Path(spec).iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
            frame = cv2.imread(str(photos[0])) if photos else None
            return frame.shape if frame is not None else None
        capture = cv2.VideoCapture(int(spec) if spec.isdigit() else spec)
        try:
            ok, frame = capture.read() if capture.isOpened() else (False, None)
            return frame.shape if ok and frame is not None else None
        finally:
            capture.release()
    finished, result = _with_timeout(grab, timeout)
    label = f'camera device {spec}' if spec.isdigit() else f'camera source {spec.split("@")[-1]}'
    if not finished:
        return Check(name, FAIL, f'{label} gave no picture within {timeout:g} s')
    if isinstance(result, Exception) or result is None:
        return Check(name, FAIL, f'{label} opens but gives no picture' if not isinstance(result, Exception)
                     else f'{label}: {result}')
    detector, about = _face_detector()
    return Check(name, OK if detector == 'yunet' else WARN,
                 f'{label} gives {result[1]}x{result[0]} pictures; face detector: {about}')


def _face_detector() -> tuple[str, str]:
    """Which face detector the faces node runs (YuNet, or the HOG fallback) and why."""
    try:
        from retail_perception.face_model import detector_status
    except ImportError as exc:
        return 'none', f'the perception package is not installed ({exc})'
    return detector_status()


def check_audio(query: Callable[[], object] | None = None) -> Check:
    """The microphone (speech in) and the speaker (speech out) PortAudio offers."""
    name = 'microphone'
    try:
        import sounddevice
    except (ImportError, OSError) as exc:
        return Check(name, FAIL, f'PortAudio is not usable ({exc}); install libportaudio2')
    try:
        devices = list(query() if query is not None else sounddevice.query_devices())
    except Exception as exc:  # noqa: BLE001 - PortAudio errors come in several types
        return Check(name, FAIL, f'cannot list the audio devices: {exc}')
    inputs = [d['name'] for d in devices if d.get('max_input_channels', 0) > 0]
    outputs = [d['name'] for d in devices if d.get('max_output_channels', 0) > 0]
    if not inputs:
        return Check(name, FAIL, 'no microphone found (is it plugged in?); customers can only type '
                                 '(launch with speech_in:=false)' + ('' if outputs else '; no speaker either'))
    if not outputs:
        return Check(name, WARN, f'microphone {inputs[0]!r}, but no speaker found: the robot cannot be heard')
    return Check(name, OK, f'microphone {inputs[0]!r}, speaker {outputs[0]!r}')


def asr_models(config_dir: Path) -> dict[str, str]:
    """The Vosk model folders of /dialogue/asr in <config_dir>/dialogue.yaml ({} when not configured)."""
    from retail_ros.params import ConfigError, load_params_file, node_key_matches
    try:
        sections = load_params_file(config_dir / 'dialogue.yaml')
    except ConfigError:
        return {}
    models: dict[str, str] = {}
    for key, values in sections.items():
        if node_key_matches(key, '/dialogue/asr'):
            models.update({name.removeprefix('models.'): str(value) for name, value in values.items()
                           if name.startswith('models.')})
    return models


def tts_voices(config_dir: Path) -> dict[str, str]:
    """The espeak-ng voices of /dialogue/tts in <config_dir>/dialogue.yaml ({} when not configured)."""
    from retail_ros.params import ConfigError, load_params_file, node_key_matches
    try:
        sections = load_params_file(config_dir / 'dialogue.yaml')
    except ConfigError:
        return {}
    voices: dict[str, str] = {}
    for key, values in sections.items():
        if node_key_matches(key, '/dialogue/tts'):
            voices.update({name.removeprefix('voices.'): str(value) for name, value in values.items()
                           if name.startswith('voices.') and value})
    return voices


# A known sentence per language, and what espeak-ng's phonemes (`-x`) of it must look like
VOICE_PROBES = {'zh': '欢迎光临，请问需要什么帮助？', 'en': 'Where can I find the rice cooker?'}
LANGUAGE_NAMES = {'zh': 'Mandarin', 'en': 'English', 'de': 'German', 'fr': 'French', 'cmn': 'Mandarin',
                  'yue': 'Cantonese', 'ko': 'Korean', 'ja': 'Japanese', 'es': 'Spanish', 'vi': 'Vietnamese'}
_SWITCH = re.compile(r'\(([a-z]{2,3})(?:-[a-z0-9-]+)?\)')     # espeak-ng's "(en)": read with another language's rules
_CONTOUR = re.compile(r'[1-5]{2,3}')                          # a Mandarin tone contour: 55, 35, 214, 51
MIN_TONED_SHARE = 0.8        # of the Mandarin probe's syllables carrying a tone contour
MIN_ENGLISH_DIPHTHONGS = 2   # /aI/ of "I", "find", "rice" in the English probe


def phoneme_problem(phonemes: str, language: str) -> str:
    """'' when espeak-ng's phonemes of VOICE_PROBES[language] are that language's sounds, else
    what they are instead, in a few words."""
    own = {'zh': {'cmn', 'zh'}, 'en': {'en'}}.get(language, {language})
    foreign = sorted(set(_SWITCH.findall(phonemes)) - own)
    if foreign:
        return 'with ' + ' and '.join(LANGUAGE_NAMES.get(code, code) for code in foreign) + ' sounds'
    syllables = [piece for piece in re.split(r'[\s_|]+', phonemes) if piece]
    toned = sum(bool(_CONTOUR.search(piece)) for piece in syllables)
    if language == 'zh' and toned < MIN_TONED_SHARE * max(1, len(syllables)):
        return f'without Mandarin tones ({toned} of {len(syllables)} syllables toned)'
    if language == 'en' and toned:
        return f'with tones ({toned} of {len(syllables)} syllables): a tonal language\'s voice'
    if language == 'en' and phonemes.count('aI') < MIN_ENGLISH_DIPHTHONGS:
        return 'without English vowels'
    return ''


def _espeak_phonemes(voice: str, language: str, text: str) -> list[str]:
    """espeak-ng's phonemes of `text` said by `voice`, as the robot's synthesiser would say it."""
    from retail_dialogue.speech_synthesizer import EspeakSynthesizer
    return EspeakSynthesizer({language: voice}).phonemes(text, language)


def voices_line(voices: dict[str, str],
                phonemes: Callable[[str, str, str], list[str]] | None = None) -> tuple[bool, str]:
    """(usable, one line): does each of the robot's speaking voices (dialogue/tts voices.*) speak
    its language? Judged by espeak-ng's phonemes of a known sentence (`phoneme_problem`), not by a
    sound file being written: espeak-ng's `cmn` reads Chinese characters with English sounds, the
    `en` voice reads them as "Chinese letter", and both write a WAV."""
    if phonemes is None:
        if shutil.which('espeak-ng') is None:
            return False, 'espeak-ng is not installed: the robot cannot speak (apt-get install espeak-ng)'
        phonemes = _espeak_phonemes
    from retail_dialogue.speech_synthesizer import DEFAULT_VOICES, SynthesisError
    voices = voices or DEFAULT_VOICES
    for lang, voice in sorted(voices.items()):
        key = f"dialogue/tts voices.{lang} {voice!r} (config/dialogue.yaml)"
        probe = VOICE_PROBES.get(lang, 'a')
        try:
            said = ' '.join(phonemes(voice, lang, probe))
        except SynthesisError as exc:
            return False, f'{key}: espeak-ng cannot use it ({exc})'
        problem = phoneme_problem(said, lang) if lang in VOICE_PROBES else ''
        if problem:
            fix = '; set it to cmn-latn-pinyin' if lang == 'zh' else ''
            return False, (f'{key} does not speak {LANGUAGE_NAMES.get(lang, lang)}: espeak-ng reads '
                           f'"{probe}" {problem} ({said[:40]}…){fix}')
    return True, ('speaking with espeak-ng voices ' + ', '.join(f'{lang} {voice}' for lang, voice in sorted(voices.items()))
                  + ' (each speaks its language: phonemes of a known sentence checked)')


def whisper_status() -> tuple[bool, str]:
    """The offline Whisper base model (the default where no Vosk model is installed): present,
    hash verified against the pinned SHA-256, licence."""
    try:
        from retail_dialogue.whisper_asr import check_installed
    except ImportError as exc:
        return False, f'Whisper cannot run ({exc})'
    return check_installed()


def check_models(models: dict[str, str], voices: tuple[bool, str] | None = None) -> Check:
    """Speech in (Vosk models, else Whisper base) and, when given, speech out (`voices_line`)."""
    check = _check_asr_models(models)
    if voices is None:
        return check
    voices_ok, line = voices
    level = check.level if voices_ok or check.level == FAIL else WARN
    return Check(check.name, level, f'{check.message}; {line}')


def _check_asr_models(models: dict[str, str]) -> Check:
    name = 'speech models'
    if not models:
        whisper_ok, whisper = whisper_status()
        if whisper_ok:
            return Check(name, OK, f'no Vosk models configured; {whisper}')
        return Check(name, WARN, 'no Vosk models configured (dialogue/asr models in config/dialogue.yaml) and '
                                 f'{whisper}: customers can only type')
    try:
        from retail_dialogue.speech_recognizer import ModelError, check_model_dir, resolve_model_path
    except ImportError as exc:
        return Check(name, FAIL, f'the dialogue package is not installed ({exc})')
    from retail_dialogue.whisper_asr import LANGUAGES as WHISPER_LANGUAGES
    good, problems, missing = [], [], []
    for language, folder in sorted(models.items()):
        try:
            check_model_dir(resolve_model_path(folder), language)
            good.append(language)
        except ModelError as exc:
            problems.append(str(exc).split('; expected')[0])
            missing.append(language)
    if problems and all(lang in WHISPER_LANGUAGES for lang in missing):
        # the asr node's backend 'auto': Whisper base hears zh/en where no Vosk model is installed
        whisper_ok, whisper = whisper_status()
        if whisper_ok:
            return Check(name, OK, f'no Vosk model for {", ".join(missing)}: heard with {whisper}')
        problems.append(whisper)
    if problems:
        return Check(name, FAIL, '; '.join(problems) + ' (install the unpacked model folders or Whisper base '
                                 '(robot_ws/install.sh), or launch with speech_in:=false for typed customers only)')
    return Check(name, OK, f'Vosk models for {", ".join(good)} in place')


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_data_dir(data_dir: Path) -> Check:
    name = 'data folder'
    if not data_dir.exists():
        parent = _existing_ancestor(data_dir)
        if os.access(parent, os.W_OK | os.X_OK):
            return Check(name, OK, f'{data_dir} does not exist yet; the robot creates it at start')
        return Check(name, FAIL, f'{data_dir} does not exist and {parent} is not writable for this user')
    if not data_dir.is_dir():
        return Check(name, FAIL, f'{data_dir} is not a folder')
    probe = data_dir / f'.doctor-{os.getpid()}.tmp'
    try:
        with open(probe, 'wb') as handle:
            handle.write(b'retailbot doctor\n')
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        return Check(name, FAIL, f'cannot write in {data_dir}: {exc.strerror}')
    finally:
        probe.unlink(missing_ok=True)
    return Check(name, OK, f'{data_dir} is writable')


def _size(n: int) -> str:
    return f'{n / 2**30:.1f} GB' if n >= 2**30 else f'{n / 2**20:.0f} MB'


def check_disk(data_dir: Path) -> Check:
    name = 'disk space'
    where = _existing_ancestor(data_dir)
    try:
        usage = shutil.disk_usage(where)
    except OSError as exc:
        return Check(name, FAIL, f'cannot read the free space of {where}: {exc.strerror}')
    text = f'{_size(usage.free)} free of {_size(usage.total)} on the disk of {data_dir}'
    if usage.free < DISK_FAIL_BYTES:
        return Check(name, FAIL, f'only {text}: free some space (old logs, /tmp) before the outbox fills it')
    if usage.free < DISK_WARN_BYTES:
        return Check(name, WARN, f'only {text}')
    return Check(name, OK, text)


def _ntp_synchronised() -> bool | None:
    try:
        result = subprocess.run(['timedatectl', 'show', '-p', 'NTPSynchronized', '--value'],
                                capture_output=True, text=True, timeout=3)
    except (OSError, subprocess.SubprocessError):
        return None
    value = result.stdout.strip()
    return {'yes': True, 'no': False}.get(value) if result.returncode == 0 else None


def check_clock(now: datetime, platform_date: datetime | None = None,
                ntp: Callable[[], bool | None] = _ntp_synchronised) -> Check:
    name = 'clock'
    shown = now.astimezone().strftime('%Y-%m-%d %H:%M:%S %Z')
    if now < CLOCK_FLOOR:
        return Check(name, FAIL, f'the clock reads {shown}: set the time (timedatectl set-ntp true, or '
                                 'date -s ...); events would carry wrong times')
    if platform_date is not None:
        skew = (now - platform_date).total_seconds()
        if abs(skew) > CLOCK_SKEW_S:
            return Check(name, FAIL, f'the clock reads {shown}, {abs(skew):.0f} s '
                                     f'{"ahead of" if skew > 0 else "behind"} the platform: set the time')
    if ntp() is False:
        return Check(name, WARN, f'the clock reads {shown} but is not synchronised by NTP '
                                 '(timedatectl set-ntp true)')
    return Check(name, OK, f'the clock reads {shown}'
                 + (' (agrees with the platform)' if platform_date is not None else ''))


def check_platform(url: str, token: str, timeout: float, ca_file: str = '',
                   robot_id: str = DEFAULT_ROBOT_ID) -> tuple[Check, datetime | None]:
    """(verdict, the platform's clock from its Date header).

    `/v1/health` needs no token on the platform, so it only says the platform is there; the token
    is judged by a read-only robot endpoint, `GET /v1/robots/{robot_id}/desired` (200 or 404: the
    token is this robot's; 401: no token the platform knows; 403: another robot's or a staff one).
    """
    name = 'platform'
    import httpx
    from retail_sync.transport import platform_client
    base = url.rstrip('/')
    from urllib.parse import urlsplit
    parts = urlsplit(base)
    if parts.scheme not in ('http', 'https') or not parts.netloc:
        return Check(name, FAIL, f'--platform-url {url!r} is not an http:// or https:// URL '
                                 '(e.g. http://127.0.0.1:8080)'), None
    started = time.monotonic()
    try:
        with platform_client(token, ca_file, timeout_s=timeout) as client:
            response = client.get(base + '/v1/health')
            took_ms = 1000 * (time.monotonic() - started)
            probe = client.get(f'{base}/v1/robots/{quote(robot_id, safe="")}/desired') \
                if response.status_code == 200 else None
    except (httpx.HTTPError, OSError, ValueError) as exc:
        if parts.scheme == 'https' and 'WRONG_VERSION_NUMBER' in str(exc):
            return Check(name, FAIL, f'{url} answers plain HTTP, not HTTPS: use '
                                     f'http://{parts.netloc} (or serve it with TLS)'), None
        return Check(name, WARN, f'cannot reach {url} ({type(exc).__name__}: {exc}); events wait in the '
                                 'outbox until it is reachable'), None
    date = None
    try:
        date = parsedate_to_datetime(response.headers['date']) if 'date' in response.headers else None
    except (TypeError, ValueError):
        date = None
    if probe is None:
        return Check(name, FAIL, f'{url} answers HTTP {response.status_code} on /v1/health'), date
    if probe.status_code == 401:
        return Check(name, FAIL, f'{url} refuses this robot\'s token (HTTP 401): put the token the platform '
                                 f'issued for robot {robot_id} in the token file'), date
    if probe.status_code == 403:
        return Check(name, FAIL, f'{url}: the token is not robot {robot_id}\'s (HTTP 403: another robot\'s or '
                                 'a staff token): give --robot-id (launch argument robot_id) the id it was '
                                 f'issued for, or issue one: retailbot platform token issue --robot-id {robot_id}'), date
    if probe.status_code not in (200, 304, 404):
        return Check(name, FAIL, f'{url} answers HTTP {probe.status_code} to robot {robot_id}\'s token'), date
    return Check(name, OK, f'{url} reachable, token accepted for robot {robot_id} ({took_ms:.0f} ms)'), date


# --- the command -------------------------------------------------------------------------------

def run_checks(args: argparse.Namespace) -> list[Check]:
    skip = set(args.skip)
    data_dir = Path(args.data_dir)
    token_file = Path(args.token_file) if args.token_file else data_dir / 'sync' / 'token'
    checks: list[Check] = []

    def add(check: Check) -> None:
        checks.append(check)
        if args.progress:
            print(format_check(check), flush=True)
    if 'gallery key' not in skip:
        add(check_gallery_key(args.key_file, data_dir / 'faces'))
    if 'platform token' not in skip:
        add(check_token(token_file))
    if 'serial port' not in skip:
        add(check_serial(args.port, args.timeout))
    if 'camera' not in skip:
        add(check_camera(args.camera, args.timeout))
    if 'microphone' not in skip:
        add(check_audio())
    if 'speech models' not in skip:
        add(check_models(asr_models(Path(args.config_dir)) if args.config_dir else {},
                         voices_line(tts_voices(Path(args.config_dir)) if args.config_dir else {})))
    if 'data folder' not in skip:
        add(check_data_dir(data_dir))
    if 'disk space' not in skip:
        add(check_disk(data_dir))
    platform_check, platform_date = None, None
    if 'platform' not in skip:
        try:
            token = token_file.read_text(encoding='utf-8').strip()
        except (OSError, UnicodeDecodeError):
            token = ''
        platform_check, platform_date = check_platform(args.platform_url, token, args.timeout, args.ca_file,
                                                         args.robot_id)
    if 'clock' not in skip:
        add(check_clock(datetime.now(timezone.utc), platform_date))
    if platform_check is not None:
        add(platform_check)
    return checks


def format_check(check: Check) -> str:
    return f'{check.level:<4}  {check.name:<14}  {check.message}'


def _skip_list(text: str) -> list[str]:
    names = []
    for word in (w.strip().lower() for w in text.split(',') if w.strip()):
        if word not in SKIP_IDS:
            raise argparse.ArgumentTypeError(f'unknown check {word!r} (checks: {", ".join(SKIP_IDS)})')
        names.append(SKIP_IDS[word])
    return names


def _default_config_dir() -> str:
    try:
        from retail_ros.packages import find_package_share
        return str(Path(find_package_share('retail_bringup')) / 'config')
    except Exception:  # noqa: BLE001 - not installed as a ROS package: no config to read
        return ''


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        'doctor', help="check the robot's setup end to end (key, token, ports, camera, microphone, models, "
                       'disk, clock, platform)',
        description="Check this robot's setup: gallery key, platform token, the base's serial port, the "
                    'camera, microphone and speaker, the Vosk speech models, the data folder, free disk '
                    'space, the clock and the platform. One line per check: ok, warn (runs with less) or fail. Exit 0 when nothing '
                    'failed, 1 when a check failed, 2 on bad arguments. Run it with the robot stopped: a '
                    'running base driver holds the serial port.')
    parser.add_argument('--data-dir', default=str(default_data_dir()), metavar='DIR',
                        help='robot data folder (default: $RETAILBOT_DATA_DIR or ~/.local/share/retailbot, '
                             'as the launch files)')
    parser.add_argument('--port', default=DEFAULT_PORT, metavar='PATH',
                        help=f'serial device of the base (default {DEFAULT_PORT}, the launch argument base_port)')
    parser.add_argument('--camera', default=DEFAULT_CAMERA, metavar='SOURCE',
                        help='camera device index, video file, image folder or rtsp:// URL '
                             f'(default {DEFAULT_CAMERA}, the launch argument camera_device)')
    parser.add_argument('--config-dir', default=_default_config_dir(), metavar='DIR',
                        help="folder of the params files; the Vosk models are read from its dialogue.yaml "
                             "(default: retail_bringup's installed config/)")
    parser.add_argument('--platform-url', default=DEFAULT_PLATFORM_URL, metavar='URL',
                        help=f'online platform base URL (default {DEFAULT_PLATFORM_URL}, the launch argument '
                             'platform_url)')
    parser.add_argument('--robot-id', default=DEFAULT_ROBOT_ID, metavar='ID',
                        help=f'this robot\'s id on the platform, whose token is checked (default '
                             f'{DEFAULT_ROBOT_ID}, the launch argument robot_id)')
    parser.add_argument('--token-file', default='', metavar='FILE',
                        help='file with the platform token (default <data-dir>/sync/token)')
    parser.add_argument('--ca-file', default='', metavar='FILE',
                        help="CA bundle of an https platform with a private CA (default: the system's CAs)")
    parser.add_argument('--key-file', default='', metavar='FILE',
                        help='gallery key file (default: $RETAILBOT_GALLERY_KEY)')
    parser.add_argument('--skip', type=_skip_list, default=[], metavar='CHECK[,CHECK]',
                        help=f'checks to leave out, e.g. serial,camera in simulation ({", ".join(SKIP_IDS)})')
    parser.add_argument('--timeout', type=float, default=3.0, metavar='S',
                        help='seconds each device or network check may take (default 3)')
    parser.add_argument('--json', action='store_true',
                        help='print {"ok": bool, "checks": [{"name", "level", "message"}]} instead of lines')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0.0 < args.timeout <= 60.0:
        print('retailbot doctor: --timeout must be between 0 and 60 s', file=sys.stderr)
        return 2
    args.progress = not args.json
    checks = run_checks(args)
    failed = [c for c in checks if c.level == FAIL]
    warned = [c for c in checks if c.level == WARN]
    if args.json:
        from retail_common.cli_output import print_json
        print_json({'ok': not failed, 'checks': [asdict(c) for c in checks]})
    else:
        print(f'{len(checks)} check{"s" if len(checks) != 1 else ""}: {len(checks) - len(failed) - len(warned)} ok, '
              f'{len(warned)} warning{"s" if len(warned) != 1 else ""}, {len(failed)} failed' + (f' ({", ".join(c.name for c in failed)})' if failed else ''))
    return 1 if failed else 0
