"""The simulated base on a real serial device: a pseudo-terminal whose slave is symlinked at a path.

The driver opens the path with pyserial exactly as it would open /dev/ttyUSB0. Unplugging closes
the pty and removes the symlink (the driver's reads fail, the port vanishes); replugging makes a
new pty and link. Events are injected through `handle_control` in-process, or through a Unix
socket at `<link>.ctl` taking one JSON object per line and answering one JSON line:

  {"cmd": "state"}                                   pose, sensors, battery, link, counters
  {"cmd": "bumper", "bits": 2}                       hold bumper bits (0 releases); also "cliff",
                                                     "wheel_drop", "buttons"
  {"cmd": "unplug"} / {"cmd": "replug"}
  {"cmd": "faults", "noise": 0.05, "drop": 0.01}     line-noise and dropped-frame rates per frame
  {"cmd": "pose", "pose": [x, y, theta]}             put the robot somewhere (stops it)
  {"cmd": "battery", "volts": 14.1}

One simulator per link: `start()` takes an exclusive lock on `<link>.lock` (held while it runs)
and raises `LinkBusy` when another process holds it; it only ever removes the link and control
socket it made itself (a second simulator on the same path never deletes the first one's).
"""
from __future__ import annotations

import fcntl
import json
import os
import select
import socket
import threading
import time
import tty
from pathlib import Path
from typing import Any

from retail_navigation import protocol as p
from retail_navigation.base_sim import LineFaults, SimulatedBase


class LinkBusy(RuntimeError):
    """Another running simulator owns the link; the message is one line naming it."""


class PtySimulator:
    """Runs a SimulatedBase at 50 Hz on a pty linked at `link`, with a control socket."""

    def __init__(self, base: SimulatedBase, link: str | os.PathLike, *, faults: LineFaults | None = None,
                 control_socket: bool = True) -> None:
        self.base = base
        self.link = Path(link)
        self.faults = faults or LineFaults()
        self.control_path = Path(str(self.link) + '.ctl') if control_socket else None
        self.frames_sent = 0
        self._lock = threading.RLock()
        self._master: int | None = None
        self._slave: int | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: socket.socket | None = None
        self._lock_fd: int | None = None
        self._lock_path = Path(str(self.link) + '.lock')
        self._control_id: tuple[int, int] | None = None     # (st_dev, st_ino) of our control socket

    # --- lifecycle ----------------------------------------------------------------------------

    def _claim(self) -> None:
        """Own the link path for as long as this simulator runs, or raise LinkBusy."""
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            owner = ''
            try:
                owner = f' (pid {self._lock_path.read_text().strip()})'
            except OSError:
                pass
            raise LinkBusy(f'{self.link} is already used by a running base simulator{owner}; '
                           'choose another --link') from None
        if self.link.exists() and not self.link.is_symlink():
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise LinkBusy(f'{self.link} exists and is not a simulator link (a real device?); choose another --link')
        os.ftruncate(fd, 0)
        os.write(fd, f'{os.getpid()}\n'.encode())
        self._lock_fd = fd

    def start(self) -> 'PtySimulator':
        if self._lock_fd is not None:          # already running
            return self
        self._claim()
        try:
            self.plug()
            if self.control_path is not None:
                self._open_control_socket()
        except BaseException:
            self._release()
            raise
        self._spawn(self._run, 'base-sim')
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()
        for thread in self._threads:
            thread.join(timeout=2.0)
        self.unplug()
        self._release()

    def _release(self) -> None:
        """Remove our control socket (only if it is still ours) and give the link path up."""
        if self._lock_fd is None:
            return
        if self.control_path is not None and self._control_id is not None:
            try:
                st = os.lstat(self.control_path)
                if (st.st_dev, st.st_ino) == self._control_id:
                    self.control_path.unlink()
            except OSError:
                pass
        try:
            self._lock_path.unlink()
        except OSError:
            pass
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)
        self._lock_fd = None

    def __enter__(self) -> 'PtySimulator':
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def plug(self) -> None:
        """Connect the cable: a new pty, its slave linked at `link` (atomically replaced)."""
        with self._lock:
            if self._master is not None:
                return
            master, slave = os.openpty()
            tty.setraw(slave)          # no echo or line editing before the driver configures it
            os.set_blocking(master, False)
            self._master, self._slave = master, slave
            self.base.decoder.reset()
            tmp = self.link.with_name(self.link.name + '.tmp')
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(os.ttyname(slave))
            os.replace(tmp, self.link)

    def unplug(self) -> None:
        """Pull the cable: the port disappears and the firmware stops the motors."""
        with self._lock:
            if self._master is None:
                return
            try:
                if os.readlink(self.link) == os.ttyname(self._slave):   # only our own link
                    self.link.unlink()
            except OSError:
                pass
            for fd in (self._master, self._slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._master = self._slave = None
            self.base.stop_motors()

    # --- the firmware loop --------------------------------------------------------------------

    def _run(self) -> None:
        period = p.FEEDBACK_PERIOD_S
        next_tick = time.monotonic() + period
        while not self._stop.is_set():
            master = self._master
            timeout = max(0.0, next_tick - time.monotonic())
            if master is not None:
                try:
                    ready, _, _ = select.select([master], [], [], timeout)
                except (OSError, ValueError):   # unplugged while waiting
                    ready = []
                if ready:
                    self._read(master)
            else:
                self._stop.wait(timeout)
            now = time.monotonic()
            if now < next_tick:
                continue
            if now - next_tick > 0.5:           # stalled (debugger, overloaded machine): no burst
                next_tick = now
            while next_tick <= now:
                with self._lock:
                    self.base.step(period)
                next_tick += period
            self._send()

    def _read(self, master: int) -> None:
        with self._lock:
            if master != self._master:      # unplugged meanwhile: the fd number may be reused
                return
            try:
                data = os.read(master, 4096)
            except OSError:                 # EAGAIN, or EIO while nobody holds the slave
                return
            self.base.receive(data)

    def _send(self) -> None:
        with self._lock:
            frame = self.faults.apply(self.base.feedback_frame())
            master = self._master
            if master is None or not frame:
                return
            try:
                os.write(master, frame)        # a full buffer loses the frame, as a real line would
                self.frames_sent += 1
            except (BlockingIOError, OSError):
                pass

    # --- control ------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        with self._lock:
            s, e = self.base.state, self.base.events
            return {
                'pose': [round(s.x, 4), round(s.y, 4), round(s.theta, 4)],
                'wheel_speeds': [round(s.left.speed, 4), round(s.right.speed, 4)],
                'bumper': s.bumper | e.bumper, 'cliff': s.cliff | e.cliff,
                'wheel_drop': s.wheel_drop | e.wheel_drop, 'buttons': e.buttons,
                'battery_v': round(s.battery_v, 3), 'charger': s.charger,
                'plugged': self.plugged, 'last_command': list(self.base.last_command),
                'commands_received': self.base.commands_received, 'frames_sent': self.frames_sent,
                'frames_dropped': self.faults.frames_dropped, 'frames_damaged': self.faults.frames_damaged,
                'odometer_m': round(s.odometer_m, 4), 'sounds': len(self.base.sounds),
                'contacts': self.base.world.contacts if self.base.world is not None else 0,
            }

    def handle_control(self, request: dict[str, Any]) -> dict[str, Any]:
        """Apply one control request; returns {"ok": true, "state": ...} or {"ok": false, "error": ...}."""
        try:
            cmd = request['cmd']
            with self._lock:
                if cmd in ('bumper', 'cliff', 'wheel_drop', 'buttons'):
                    setattr(self.base.events, cmd, int(request.get('bits', 0)) & 0xFF)
                elif cmd == 'unplug':
                    self.unplug()
                elif cmd == 'replug':
                    self.plug()
                elif cmd == 'faults':
                    self.faults.noise_rate = float(request.get('noise', self.faults.noise_rate))
                    self.faults.drop_rate = float(request.get('drop', self.faults.drop_rate))
                elif cmd == 'pose':
                    x, y, theta = (float(v) for v in request['pose'])
                    self.base.stop_motors()
                    s = self.base.state
                    s.gyro_angle += theta - s.theta       # the gyro feels the robot being turned
                    s.x, s.y, s.theta = x, y, theta
                    s.left.speed = s.right.speed = 0.0
                    s.fell = False
                elif cmd == 'battery':
                    self.base.state.battery_v = float(request['volts'])
                elif cmd != 'state':
                    return {'ok': False, 'error': f'unknown cmd {cmd!r}'}
            return {'ok': True, 'state': self.state()}
        except (KeyError, TypeError, ValueError) as exc:
            return {'ok': False, 'error': f'bad request: {exc}'}

    def _open_control_socket(self) -> None:
        self.control_path.unlink(missing_ok=True)      # a crashed simulator's (we hold the link's lock)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(self.control_path))
        st = os.lstat(self.control_path)
        self._control_id = (st.st_dev, st.st_ino)
        server.listen(4)
        server.settimeout(0.2)
        self._server = server
        self._spawn(self._serve_control, 'base-sim-control')

    def _serve_control(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn, conn.makefile('rwb') as stream:
                for line in stream:
                    try:
                        request = json.loads(line)
                        reply = self.handle_control(request) if isinstance(request, dict) \
                            else {'ok': False, 'error': 'expected a JSON object'}
                    except json.JSONDecodeError as exc:
                        reply = {'ok': False, 'error': f'bad JSON: {exc.msg}'}
                    stream.write((json.dumps(reply) + '\n').encode())
                    stream.flush()


def send_control(link: str | os.PathLike, request: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """Send one request to a running simulator's control socket (`<link>.ctl`) and return its reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(link) + '.ctl')
        sock.sendall((json.dumps(request) + '\n').encode())
        with sock.makefile('rb') as stream:
            return json.loads(stream.readline())
