"""The base on its serial port: pyserial I/O and threads around the pure DriverCore.

One reader thread reads feedback, feeds the decoder and the core, and writes the current command
at the control rate; `set_velocity` also writes at once so a cmd_vel reaches the wire without
waiting for the next tick (at most every half control period: a flood of commands never fills the
line's transmit buffer, where a safety stop would queue behind them; stops always go out at
once). A read or write error, or the port vanishing, stops the motors on our side, closes the port
and retries with backoff until the port is back. Used by the ROS node and by the `retailbot base
jog|info` technician commands.
"""
from __future__ import annotations

import errno
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import Callable

import serial

from retail_navigation import protocol as p
from retail_navigation.base_driver import Backoff, DriverCore, FeedbackResult


class LinkState(str, Enum):
    CONNECTING = 'connecting'
    MISSING = 'missing'              # never opened: no device at the port, no permission, in use
    CONNECTED = 'connected'
    SILENT = 'silent'                # port open but no valid frame for a while
    DISCONNECTED = 'disconnected'    # lost; retrying with backoff
    CLOSED = 'closed'


@dataclass
class LinkStats:
    connects: int = 0
    disconnects: int = 0
    bytes_written: int = 0
    commands_written: int = 0
    last_error: str = ''


def open_failure(port: str, exc: BaseException) -> str:
    """Why `port` could not be opened, in a store technician's words (one line)."""
    code = getattr(exc, 'errno', None)
    text = str(exc)
    if code == errno.ENOENT or 'No such file' in text:
        return f"no base found: there is no serial device {port} (is the base's USB cable plugged in " \
               'and the base switched on?)'
    if code in (errno.ENXIO, errno.ENODEV, errno.EIO) or 'No such device' in text:
        return f'no base found: {port} is there but no device answers (base switched off or cable loose?)'
    if code == errno.EACCES or 'Permission denied' in text:
        return f"no permission to open {port} (add the robot's user to the dialout group, then log in again)"
    if code in (errno.EAGAIN, errno.EBUSY) or 'lock' in text:
        return f'{port} is in use by another program (is the base driver or `retailbot base jog` running?)'
    if code in (errno.ENOTTY, errno.EISDIR) or 'Inappropriate ioctl' in text:
        return f'{port} is not a serial port'
    return f'cannot open {port}: {text}'


def describe_link(port: str, state: LinkState, last_error: str) -> str:
    """The link's state as one line for logs and /diagnostics."""
    if state == LinkState.CONNECTED:
        return f'base connected on {port}'
    if state == LinkState.MISSING:
        return f'{last_error or f"no base on {port}"}; retrying'
    if state == LinkState.DISCONNECTED:
        return f'base lost on {port} ({last_error or "port closed"}); motors stopped, retrying'
    if state == LinkState.SILENT:
        return f'base on {port} is not answering (no valid feedback); retrying'
    return f'base link {state.value} on {port}'


class SerialBase:
    """Runs a DriverCore against a serial port (real device or the simulator's pty)."""

    def __init__(self, port: str, core: DriverCore, *, baud: int = p.BAUD_RATE, control_rate_hz: float = 20.0,
                 backoff: Backoff | None = None, silent_after_s: float = 1.0, reopen_after_s: float = 3.0,
                 on_feedback: Callable[[FeedbackResult], None] | None = None,
                 on_link: Callable[[LinkState, str], None] | None = None,
                 serial_factory: Callable[..., serial.Serial] = serial.Serial,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.port = port
        self.core = core
        self.baud = baud
        self.control_period = 1.0 / control_rate_hz
        self.backoff = backoff or Backoff()
        self.silent_after_s = silent_after_s
        self.reopen_after_s = reopen_after_s
        self.on_feedback = on_feedback
        self.on_link = on_link
        self.serial_factory = serial_factory
        self.clock = clock
        self.decoder = p.FrameDecoder()
        self.stats = LinkStats()
        self.state = LinkState.CLOSED
        self.commanding = False          # False: read only (info, inactive node): never moves the base
        self.core_lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._serial: serial.Serial | None = None
        self._lost = False               # set by a failed read or write; handled by the reader thread
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_attempt = 0.0
        self._last_write = 0.0
        self._connected_at = 0.0

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> 'SerialBase':
        self._stop.clear()
        self._set_state(LinkState.CONNECTING, f'opening {self.port}')
        self._thread = threading.Thread(target=self._run, name='base-serial', daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the motors (if we can still reach them) and release the port."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        with self.core_lock:
            self.core.stop_now()
        self.write(p.stop_command())
        self._close_port()
        self._set_state(LinkState.CLOSED, 'closed')

    def __enter__(self) -> 'SerialBase':
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state == LinkState.CONNECTED:
                return True
            time.sleep(0.01)
        return False

    # --- commands -----------------------------------------------------------------------------

    def set_velocity(self, vx: float, wz: float) -> None:
        """A new target; written at once unless a frame went out less than half a control period
        ago (a cmd_vel flood must not fill the line's transmit buffer, where a safety stop would
        queue behind it): then the next control tick writes the latest. A stop (0, 0), the
        collision monitor's answer to something in the way, is always written at once."""
        with self.core_lock:
            now = self.clock()
            self.core.set_velocity(vx, wz, now)
            due = now - self._last_write >= 0.5 * self.control_period or (vx == 0.0 and wz == 0.0)
        if due:
            self.send_command()

    def stop_motion(self) -> None:
        with self.core_lock:
            self.core.stop_now()
        self.send_command()

    def send_command(self) -> None:
        """Write the core's current (speed, radius), if commanding and connected."""
        if not self.commanding:
            return
        with self.core_lock:            # held across the write: commands reach the wire in order
            now = self.clock()
            speed, radius = self.core.command(now)
            self._last_write = now
            if self.write(p.base_control(speed, radius)):
                self.stats.commands_written += 1

    def write(self, frame: bytes) -> bool:
        with self._write_lock:
            port = self._serial
            if port is None:
                return False
            try:
                port.write(frame)
            except (serial.SerialException, OSError) as exc:
                self.stats.last_error = f'write failed: {exc}'
                self._lost = True
                return False
            self.stats.bytes_written += len(frame)
            return True

    # --- the reader thread --------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._serial is None:
                if not self._try_open():
                    self._stop.wait(min(0.05, max(0.0, self._next_attempt - self.clock())))
                continue
            try:
                data = self._serial.read(max(1, self._serial.in_waiting))
            except (serial.SerialException, OSError, TypeError) as exc:
                # TypeError: pyserial on a descriptor closed under it
                self.stats.last_error = f'read failed: {exc}'
                self._lost = True
                data = b''
            if self._lost:
                self._handle_lost()
                continue
            now = self.clock()
            if data:
                self._process(data, now)
            self._watch_silence(now)
            if now - self._last_write >= self.control_period:
                self.send_command()

    def _try_open(self) -> bool:
        now = self.clock()
        if now < self._next_attempt:
            return False
        try:
            port = self.serial_factory(self.port, self.baud, bytesize=serial.EIGHTBITS,
                                       parity=serial.PARITY_NONE, stopbits=serial.STOPBITS_ONE,
                                       timeout=0.01, write_timeout=0.5, exclusive=True)
            port.reset_input_buffer()
        except (serial.SerialException, OSError, ValueError) as exc:
            reason = open_failure(self.port, exc)
            first = reason != self.stats.last_error
            self.stats.last_error = reason
            delay = self.backoff.next_delay()
            self._next_attempt = now + delay
            state = LinkState.DISCONNECTED if self.stats.connects else LinkState.MISSING
            if first and state == self.state and self.on_link is not None:
                self._notify(self.on_link, state, f'{reason}; retrying in {delay:.1f} s')
            self._set_state(state, f'{reason}; retrying in {delay:.1f} s')
            return False
        self.decoder.reset()
        with self.core_lock:
            self.core.on_link_lost()       # fresh odometry origin, no stale motion target
        with self._write_lock:
            self._serial = port
            self._lost = False
        self._connected_at = now
        self.stats.connects += 1
        self.backoff.reset()
        self.write(p.stop_command())
        self.write(p.request_extra())
        self._set_state(LinkState.CONNECTED, f'connected to {self.port} at {self.baud} baud')
        return True

    def _process(self, data: bytes, now: float) -> None:
        for payload in self.decoder.feed(data):
            with self.core_lock:
                result = self.core.on_feedback(payload, now)
            if self.state == LinkState.SILENT:
                self._set_state(LinkState.CONNECTED, 'feedback is back')
            if result.safety_changed and self.core.safety.latched:
                self.send_command()        # the stop goes out now, not at the next tick
            if self.on_feedback is not None:
                self._notify(self.on_feedback, result)

    def _watch_silence(self, now: float) -> None:
        last = self.core.last_feedback_time
        quiet_for = now - (last if last is not None and last >= self._connected_at else self._connected_at)
        if quiet_for > self.reopen_after_s:
            self.stats.last_error = f'no new sensor sample (bumpers, cliffs) for {quiet_for:.1f} s'
            self._lost = True
        elif quiet_for > self.silent_after_s and self.state == LinkState.CONNECTED:
            self._set_state(LinkState.SILENT, f'no new sensor sample (bumpers, cliffs) for {quiet_for:.1f} s')

    def _handle_lost(self) -> None:
        with self.core_lock:
            self.core.on_link_lost()
        self._close_port()
        self.stats.disconnects += 1
        delay = self.backoff.next_delay()
        self._next_attempt = self.clock() + delay
        self._set_state(LinkState.DISCONNECTED,
                        f'lost {self.port} ({self.stats.last_error}); motors stopped, retrying in {delay:.1f} s')

    def _close_port(self) -> None:
        with self._write_lock:
            port, self._serial = self._serial, None
            self._lost = False
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass

    def _set_state(self, state: LinkState, message: str) -> None:
        changed = state != self.state
        self.state = state
        if changed and self.on_link is not None:
            self._notify(self.on_link, state, message)

    def _notify(self, callback: Callable, *args) -> None:
        """Run an adapter's callback; its failure must never stop the thread that keeps the base safe."""
        try:
            callback(*args)
        except Exception as exc:  # noqa: BLE001 - any adapter bug, reported and survived
            self.stats.last_error = f'callback {getattr(callback, "__name__", callback)} failed: {exc!r}'
