"""`retailbot doctor`: one verdict per check of a robot's setup, in a store's words, exit 0/1."""
from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
from collections import namedtuple
from datetime import datetime, timedelta, timezone

import pytest

from retail_bringup import doctor
from retail_bringup.doctor import FAIL, OK, WARN
from rostest_support import REPO, console_script

DiskUsage = namedtuple('DiskUsage', 'total used free')


@pytest.fixture
def base_sim(tmp_path):
    """base_sim() -> a simulated base on a real pty (stopped after the test)."""
    from retail_navigation.base_sim import SimConfig, SimulatedBase
    from retail_navigation.pty_sim import PtySimulator
    started = []

    def _start():
        sim = PtySimulator(SimulatedBase(None, (0.0, 0.0, 0.0), SimConfig()), tmp_path / f'base{len(started)}')
        started.append(sim.start())
        return sim
    yield _start
    for sim in started:
        sim.stop()


# --- one check at a time -----------------------------------------------------------------------

def test_token_file(tmp_path):
    token = tmp_path / 'token'
    check = doctor.check_token(token)
    assert check.level == FAIL and f'no token file {token}' in check.message
    token.write_text('\n')
    assert doctor.check_token(token).level == FAIL
    token.write_text('s3cret\n')
    token.chmod(0o644)
    check = doctor.check_token(token)
    assert check.level == WARN and f'chmod 600 {token}' in check.message
    token.chmod(0o600)
    assert doctor.check_token(token).level == OK


def test_gallery_key(tmp_path, monkeypatch):
    from retail_perception.gallery import Gallery, GalleryStore, new_key_text
    monkeypatch.delenv('RETAILBOT_GALLERY_KEY', raising=False)
    check = doctor.check_gallery_key('', tmp_path / 'faces')
    assert check.level == WARN and 'anonymously' in check.message
    key = new_key_text()
    GalleryStore(tmp_path / 'faces', bytes.fromhex(key)).save(Gallery())
    monkeypatch.setenv('RETAILBOT_GALLERY_KEY', key)
    check = doctor.check_gallery_key('', tmp_path / 'faces')
    assert check.level == OK and '0 members' in check.message
    monkeypatch.setenv('RETAILBOT_GALLERY_KEY', new_key_text())            # another robot's key
    check = doctor.check_gallery_key('', tmp_path / 'faces')
    assert check.level == FAIL and 'does not open' in check.message


def test_serial_port_missing_not_a_device_and_a_live_base(tmp_path, base_sim):
    check = doctor.check_serial(str(tmp_path / 'ttyUSB9'), 1.0)
    assert check.level == FAIL and f'no serial device {tmp_path / "ttyUSB9"}' in check.message
    (tmp_path / 'file').write_text('x')
    assert 'not a serial device' in doctor.check_serial(str(tmp_path / 'file'), 1.0).message
    sim = base_sim()
    check = doctor.check_serial(str(sim.link), 5.0)
    assert check.level == OK and 'firmware 1.2.0' in check.message, check
    assert sim.state()['last_command'] == [0, 0]                          # read only: never drove
    sim.handle_control({'cmd': 'bumper', 'bits': 2})
    check = doctor.check_serial(str(sim.link), 5.0)
    assert check.level == WARN and 'bumper' in check.message


def test_camera(tmp_path):
    assert doctor.check_camera('9', 1.0).level == FAIL
    assert 'does not exist' in doctor.check_camera(str(tmp_path / 'clip.mp4'), 1.0).message
    (tmp_path / 'clip.mp4').write_text('not a video')
    assert doctor.check_camera(str(tmp_path / 'clip.mp4'), 3.0).level == FAIL
    photos = REPO / 'src' / 'perception' / 'sim_camera'
    check = doctor.check_camera(str(photos), 3.0)
    assert check.level == OK and 'pictures' in check.message


def test_microphone_and_speaker():
    mic = {'name': 'USB mic', 'max_input_channels': 1, 'max_output_channels': 0}
    speaker = {'name': 'HDMI', 'max_input_channels': 0, 'max_output_channels': 2}
    check = doctor.check_audio(lambda: [mic, speaker])
    assert check.level == OK and "'USB mic'" in check.message and "'HDMI'" in check.message
    assert doctor.check_audio(lambda: [mic]).level == WARN
    check = doctor.check_audio(lambda: [speaker])
    assert check.level == FAIL and 'no microphone' in check.message and 'speech_in:=false' in check.message
    assert 'no speaker either' in doctor.check_audio(lambda: []).message


def test_speech_models(tmp_path, monkeypatch):
    models = doctor.asr_models(REPO / 'config')
    assert set(models) >= {'zh', 'en'} and models['zh'].endswith('vosk-model-small-cn-0.22')
    not_installed = (False, 'Whisper base not installed in X')
    verified = (True, 'Whisper base in X, SHA-256 d01c… verified, licence MIT')
    monkeypatch.setattr(doctor, 'whisper_status', lambda: not_installed)
    check = doctor.check_models({'zh': str(tmp_path / 'cn')})
    assert check.level == FAIL and str(tmp_path / 'cn') in check.message and 'speech_in:=false' in check.message
    assert 'Whisper base not installed' in check.message
    # a missing Vosk model for zh/en: Whisper base hears them (the asr's backend auto), named with hash and licence
    monkeypatch.setattr(doctor, 'whisper_status', lambda: verified)
    check = doctor.check_models({'zh': str(tmp_path / 'cn'), 'en': str(tmp_path / 'en')})
    assert check.level == OK and check.message.startswith('no Vosk model for en, zh: heard with Whisper base')
    assert 'verified' in check.message and 'licence MIT' in check.message
    check = doctor.check_models({'ko': str(tmp_path / 'ko')})       # Whisper does not hear Korean
    assert check.level == FAIL and str(tmp_path / 'ko') in check.message
    for name in ('am/final.mdl', 'conf/model.conf', 'conf/mfcc.conf', 'graph/HCLG.fst'):
        (tmp_path / 'cn' / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / 'cn' / name).write_bytes(b'')
    assert doctor.check_models({'zh': str(tmp_path / 'cn')}).level == OK
    # no Vosk model: Whisper base is the default when installed with its pinned hash, else typing only
    monkeypatch.setattr(doctor, 'whisper_status', lambda: not_installed)
    assert doctor.check_models({}).level == WARN and 'Whisper base not installed' in doctor.check_models({}).message
    monkeypatch.setattr(doctor, 'whisper_status', lambda: verified)
    assert doctor.check_models({}).level == OK and 'licence MIT' in doctor.check_models({}).message


def test_data_folder_and_disk_space(tmp_path, monkeypatch):
    assert doctor.check_data_dir(tmp_path).level == OK
    assert list(tmp_path.iterdir()) == []                                  # nothing left behind
    assert 'creates it at start' in doctor.check_data_dir(tmp_path / 'new' / 'data').message
    (tmp_path / 'file').write_text('x')
    assert doctor.check_data_dir(tmp_path / 'file').level == FAIL
    for free, level in ((100 * 2**20, FAIL), (1 * 2**30, WARN), (50 * 2**30, OK)):
        monkeypatch.setattr(doctor.shutil, 'disk_usage', lambda path, free=free: DiskUsage(100 * 2**30, 0, free))
        assert doctor.check_disk(tmp_path).level == level


def test_clock():
    now = datetime.now(timezone.utc)
    assert doctor.check_clock(datetime(1970, 1, 1, 0, 5, tzinfo=timezone.utc), ntp=lambda: True).level == FAIL
    behind = doctor.check_clock(now, now + timedelta(hours=1), ntp=lambda: True)
    assert behind.level == FAIL and '3600 s behind the platform' in behind.message
    assert doctor.check_clock(now, now + timedelta(seconds=5), ntp=lambda: True).level == OK
    assert doctor.check_clock(now, None, ntp=lambda: False).level == WARN
    assert doctor.check_clock(now, None, ntp=lambda: None).level == OK


@pytest.fixture
def platform():
    """A stand-in platform on 127.0.0.1 answering as the real one does: /v1/health 200 whatever the
    token; /v1/robots/robot-01/desired 404 (no desired state yet) for token 'good', 403 for
    'other-robot', 401 otherwise (the real platform is in test_doctor_judges_the_token_by_the_real_platform)."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            token = self.headers.get('Authorization')
            if self.path == '/v1/health':
                status = 200
            elif self.path == '/v1/robots/robot-01/desired':
                status = {'Bearer good': 404, 'Bearer other-robot': 403}.get(token, 401)
            else:
                status = 404
            ok = status == 200
            self.send_response(status)
            self.send_header('Content-Type', 'application/json')
            self.end_headers()
            self.wfile.write(b'{"ok": true}' if ok else b'{"detail": "no"}')

        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()


def test_platform(platform):
    check, date = doctor.check_platform(platform, 'good', 3.0)
    assert check.level == OK and 'token accepted' in check.message and date is not None
    check, _ = doctor.check_platform(platform, 'stolen', 3.0)
    assert check.level == FAIL and 'refuses' in check.message
    check, _ = doctor.check_platform(platform, 'other-robot', 3.0)
    assert check.level == FAIL and "not robot robot-01's" in check.message and '--robot-id' in check.message
    check, _ = doctor.check_platform('http://127.0.0.1:9', 'good', 2.0)
    assert check.level == WARN and 'outbox' in check.message


# --- the command -------------------------------------------------------------------------------

def run_doctor(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([console_script('retailbot'), 'doctor', *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_doctor_on_a_bare_machine_names_every_problem_and_exits_1(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != 'RETAILBOT_GALLERY_KEY'}
    args = ('--data-dir', str(tmp_path / 'data'), '--port', str(tmp_path / 'ttyUSB0'), '--camera', '9',
            '--platform-url', 'http://127.0.0.1:9', '--config-dir', str(REPO / 'config'), '--timeout', '2')
    result = run_doctor(*args, '--json', env=env)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    levels = {c['name']: c['level'] for c in report['checks']}
    assert report['ok'] is False and set(levels) == set(doctor.CHECK_NAMES)
    assert levels['platform token'] == FAIL and levels['serial port'] == FAIL and levels['camera'] == FAIL
    assert levels['microphone'] in (OK, WARN, FAIL)
    assert levels['gallery key'] == WARN and levels['data folder'] == OK and levels['platform'] == WARN
    text = run_doctor(*args, env=env)
    assert text.returncode == 1 and 'Traceback' not in text.stdout + text.stderr
    lines = text.stdout.strip().splitlines()
    assert len(lines) == len(doctor.CHECK_NAMES) + 1 and lines[-1].startswith('10 checks:')
    assert all(line.split()[0] in (OK, WARN, FAIL) for line in lines[:-1])


def test_doctor_on_a_set_up_robot_exits_0(tmp_path, platform, base_sim):
    from retail_perception.gallery import new_key_text
    data = tmp_path / 'data'
    (data / 'sync').mkdir(parents=True)
    (data / 'sync' / 'token').write_text('good\n')
    (data / 'sync' / 'token').chmod(0o600)
    key = tmp_path / 'gallery.key'
    key.write_text(new_key_text())
    sim = base_sim()
    result = run_doctor('--data-dir', str(data), '--port', str(sim.link), '--key-file', str(key),
                        '--camera', str(REPO / 'src' / 'perception' / 'sim_camera'),
                        '--platform-url', platform, '--skip', 'speech,audio', '--json')
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report['ok'] and len(report['checks']) == len(doctor.CHECK_NAMES) - 2
    assert {c['level'] for c in report['checks'] if c['name'] not in ('disk space', 'clock')} == {OK}


def test_doctor_refuses_an_unknown_check_name():
    result = run_doctor('--skip', 'serail')
    assert result.returncode == 2 and "unknown check 'serail'" in result.stderr


def test_speaking_voices():
    """The doctor names the robot's voices (the shipped config passes), judging each by espeak-ng's
    phonemes of a known sentence, not by a WAV being written: a voice that writes sound but does
    not speak the language fails in one line naming the config key and what it sounds like."""
    voices = doctor.tts_voices(REPO / 'config')
    assert voices['zh'] == 'cmn-latn-pinyin' and voices['en'] == 'en'
    ok, line = doctor.voices_line(voices)
    assert ok and 'zh cmn-latn-pinyin' in line and 'phonemes' in line, line
    for zh, sounds in (('cmn', 'with English sounds'), ('en', 'without Mandarin tones'),
                       ('yue', 'without Mandarin tones')):
        ok, line = doctor.voices_line({'zh': zh, 'en': 'en'})
        assert not ok and f"voices.zh '{zh}'" in line and 'does not speak Mandarin' in line, line
        assert sounds in line and 'set it to cmn-latn-pinyin' in line and '\n' not in line
    for en, sounds in (('de', 'German sounds'), ('es', 'without English vowels'), ('cmn-latn-pinyin', 'Mandarin')):
        ok, line = doctor.voices_line({'zh': 'cmn-latn-pinyin', 'en': en})
        assert not ok and f"voices.en '{en}'" in line and 'does not speak English' in line and sounds in line, line
    assert doctor.voices_line({'zh': 'cmn-latn-pinyin', 'en': 'en-us'})[0]
    ok, line = doctor.voices_line({'zh': 'cmn-latn-pinyin', 'en': 'qq'})
    assert not ok and "voices.en 'qq'" in line and 'does not exist' in line
    check = doctor.check_models({}, (False, line))
    assert check.level == WARN and line in check.message


def test_phonemes_are_judged_by_language():
    """The judgement itself, on espeak-ng 1.51's phonemes of the probe sentences."""
    assert doctor.phoneme_problem("Xua11n_| j'i35N_| kw'a55N_| l'i35n_| tS;h'i21N_| w'u@51n_|", 'zh') == ''
    assert 'tones' in doctor.phoneme_problem("tS'aIni:zl,Et3 tS'aIni:zl,Et3", 'zh')
    assert doctor.phoneme_problem("w,e@ kan aI f'aInd D@ r'aIs k'Uk3", 'en') == ''
    assert 'English sounds' in doctor.phoneme_problem("(en)hj,u:55a#55nf'aI55v_| lI55nt'u:55(cmn)_|", 'zh')
    assert 'tones' in doctor.phoneme_problem("w'e55 k'a35n 'aI55 f'aI51nd", 'en')


def test_doctor_judges_the_token_by_the_real_platform(tmp_path):
    """The real platform's /v1/health needs no token: a garbage token was once 'accepted'. Now a
    garbage token fails, another robot's token fails naming --robot-id, the robot's own passes."""
    import sys
    sys.path.insert(0, str(REPO / 'tests' / 'sync'))
    from sync_support import free_port, start_platform
    db = tmp_path / 'p.db'
    platform = start_platform(db, free_port())
    try:
        cli = console_script('retailbot')
        for args in (('store', 'add', '--db', str(db), '--id', 's-1', '--name', 'One'),
                     ('token', 'issue', '--db', str(db), '--robot-id', 'robot-01', '--store', 's-1',
                      '--out', str(tmp_path / 'r1')),
                     ('token', 'issue', '--db', str(db), '--robot-id', 'robot-02', '--store', 's-1',
                      '--out', str(tmp_path / 'r2'))):
            done = subprocess.run([cli, 'platform', *args], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
        (tmp_path / 'junk').write_text('not-a-token\n')
        (tmp_path / 'junk').chmod(0o600)
        verdicts = {}
        for name in ('r1', 'r2', 'junk'):
            result = run_doctor('--data-dir', str(tmp_path / 'data'), '--token-file', str(tmp_path / name),
                                '--platform-url', platform.url, '--robot-id', 'robot-01', '--skip',
                                'gallery,serial,camera,audio,speech,data,disk,clock', '--json')
            assert 'Traceback' not in result.stderr, result.stderr
            verdicts[name] = {c['name']: c for c in json.loads(result.stdout)['checks']}['platform']
        assert verdicts['r1']['level'] == OK and 'robot robot-01' in verdicts['r1']['message']
        assert verdicts['r2']['level'] == FAIL and '--robot-id' in verdicts['r2']['message']
        assert verdicts['junk']['level'] == FAIL and 'refuses' in verdicts['junk']['message']
    finally:
        platform.process.terminate()
        platform.process.wait(timeout=30)
