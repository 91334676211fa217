"""Base driver benchmark: cmd_vel -> serial-write latency, and the driver's CPU share at 50 Hz feedback.

Everything real: the driver is the `base_driver` console script (a separate process on DDS), the
base is the simulated firmware on a pseudo-terminal in this process, which timestamps each
base-control frame as it comes off the line. Peers measured in the same run:
- latency: a bare rclpy subscriber that writes the command to pyserial straight from its callback
  (what the shortest possible driver would do, without limits, watchdog or safety);
- CPU: a bare pyserial loop that only reads the same 50 Hz feedback stream.

  .venv/bin/python benches/navigation_driver.py [--commands 150] [--rate 10]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BIN = Path(sys.prefix) / 'bin'

PEER_LATENCY = r'''
import sys, serial, rclpy, threading
from rclpy.executors import ExternalShutdownException
from geometry_msgs.msg import Twist
from retail_navigation import protocol as p
port = serial.Serial(sys.argv[1], 115200, timeout=0.05)
def drain():
    while True:
        try:
            port.read(4096)
        except Exception:
            return
threading.Thread(target=drain, daemon=True).start()
rclpy.init()
node = rclpy.create_node('bench_peer')
node.create_subscription(Twist, '/bench_peer_cmd_vel',
    lambda m: port.write(p.base_control(*p.twist_to_speed_radius(m.linear.x, m.angular.z))), 10)
try:
    rclpy.spin(node)
except (KeyboardInterrupt, ExternalShutdownException):
    pass
'''

PEER_READ_LOOP = r'''
import sys, serial
from retail_navigation import protocol as p
port = serial.Serial(sys.argv[1], 115200, timeout=0.01)
decoder = p.FrameDecoder()
try:
    while True:
        decoder.feed(port.read(max(1, port.in_waiting)))
except KeyboardInterrupt:
    pass
'''


def cpu_seconds(pid: int) -> float:
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


class CommandClock:
    """Timestamps of base-control frames as the simulated firmware receives them."""

    def __init__(self, sim) -> None:
        from retail_navigation import protocol as p
        self.p = p
        self.decoder = p.FrameDecoder()
        self.received: list[tuple[float, int]] = []
        self.lock = threading.Lock()
        original = sim.base.receive

        def receive(data: bytes) -> None:
            now = time.monotonic()
            for payload in self.decoder.feed(data):
                for item in p.parse_commands(payload).items:
                    if isinstance(item, p.BaseControl):
                        with self.lock:
                            self.received.append((now, item.speed_mm_s))
            original(data)
        sim.base.receive = receive

    def first_change_after(self, since: float, previous_speed: int, timeout: float = 1.0) -> float | None:
        """Seconds from `since` to the first command frame that no longer carries `previous_speed`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for t, s in self.received:
                    if t >= since and s != previous_speed:
                        return t - since
            time.sleep(0.0005)
        return None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--commands', type=int, default=150, help='cmd_vel messages per subject')
    parser.add_argument('--rate', type=float, default=10.0, help='cmd_vel rate [Hz]')
    args = parser.parse_args()

    from domain_coordinator import domain_id
    import rclpy
    from geometry_msgs.msg import Twist
    from retail_navigation.base_sim import SimulatedBase
    from retail_navigation.pty_sim import PtySimulator

    workdir = Path(tempfile.mkdtemp(prefix='nav_bench_'))
    sims = {name: PtySimulator(SimulatedBase(), workdir / name, control_socket=False).start()
            for name in ('driver', 'peer_latency', 'peer_read')}
    clocks = {name: CommandClock(sims[name]) for name in ('driver', 'peer_latency')}
    procs: list[subprocess.Popen] = []
    with domain_id() as did:
        env = dict(os.environ, ROS_DOMAIN_ID=str(did), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
                   ROS_LOG_DIR=str(workdir / 'log'))
        os.environ.update(env)
        try:
            driver = subprocess.Popen(
                [str(BIN / 'base_driver'), '--ros-args', '-r', '__ns:=/navigation', '-p',
                 f'port:={sims["driver"].link}', '-p', 'accel_x:=5.0', '-p', 'accel_wz:=20.0'],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            peer_latency = subprocess.Popen([sys.executable, '-c', PEER_LATENCY, str(sims['peer_latency'].link)],
                                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            peer_read = subprocess.Popen([sys.executable, '-c', PEER_READ_LOOP, str(sims['peer_read'].link)],
                                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs = [driver, peer_latency, peer_read]
            rclpy.init()
            node = rclpy.create_node('bench_commander')
            publishers = {'driver': node.create_publisher(Twist, '/cmd_vel', 10),
                          'peer_latency': node.create_publisher(Twist, '/bench_peer_cmd_vel', 10)}
            deadline = time.monotonic() + 20.0
            while time.monotonic() < deadline and not all(
                    pub.get_subscription_count() for pub in publishers.values()):
                time.sleep(0.05)
            time.sleep(1.0)                   # driver configured and activated, feedback flowing

            latencies: dict[str, list[float]] = {'driver': [], 'peer_latency': []}
            missed = {'driver': 0, 'peer_latency': 0}
            cpu_start = {name: cpu_seconds(proc.pid) for name, proc in (('driver', driver), ('peer_read', peer_read))}
            frames_start = sims['driver'].frames_sent
            wall_start = time.monotonic()
            period = 1.0 / args.rate
            for i in range(args.commands):
                # Each command differs from the last by a step the acceleration limit passes at once,
                # so the first frame with a new speed is the answer to this cmd_vel.
                vx, previous = (0.100, 110) if i % 2 else (0.110, 100)
                for name, pub in publishers.items():
                    msg = Twist()
                    msg.linear.x = vx
                    sent = time.monotonic()
                    pub.publish(msg)
                    latency = clocks[name].first_change_after(sent, previous)
                    if i == 0:                      # warm-up: the driver was still sending its idle stop
                        continue
                    if latency is None:
                        missed[name] += 1
                    else:
                        latencies[name].append(latency * 1000.0)
                time.sleep(max(0.0, period - 2 * 0.002))
            wall = time.monotonic() - wall_start
            cpu = {name: (cpu_seconds(proc.pid) - cpu_start[name]) / wall
                   for name, proc in (('driver', driver), ('peer_read', peer_read))}
            frames = sims['driver'].frames_sent - frames_start
        finally:
            for proc in procs:
                proc.send_signal(2)
            for proc in procs:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            for sim in sims.values():
                sim.stop()
            rclpy.try_shutdown()
            shutil.rmtree(workdir, ignore_errors=True)

    d, pl = latencies['driver'], latencies['peer_latency']
    if not d or not pl:
        print(f'no latency samples (missed: {missed})', file=sys.stderr)
        return 1
    print(f'cmd_vel -> serial write latency over {len(d)} commands ({missed["driver"]} missed):')
    print(f'  base_driver node         median {statistics.median(d):6.2f} ms   p99 {percentile(d, 0.99):6.2f} ms')
    print(f'  peer: bare rclpy->serial median {statistics.median(pl):6.2f} ms   p99 {percentile(pl, 0.99):6.2f} ms'
          f'   ({missed["peer_latency"]} missed)')
    print(f'  ratio driver/peer (median) {statistics.median(d) / statistics.median(pl):.2f}')
    print(f'  slowest five: driver {", ".join(f"{v:.1f}" for v in sorted(d)[-5:])} ms; '
          f'peer {", ".join(f"{v:.1f}" for v in sorted(pl)[-5:])} ms')
    print(f'CPU share at 50 Hz feedback ({frames / wall:.0f} frames/s to the driver, cmd_vel at {args.rate:g} Hz, '
          f'{wall:.1f} s):')
    print(f'  base_driver node             {100 * cpu["driver"]:5.1f} % of one core')
    print(f'  peer: bare pyserial read loop {100 * cpu["peer_read"]:5.1f} % of one core')
    if cpu['peer_read'] > 0:
        print(f'  ratio driver/peer {cpu["driver"] / cpu["peer_read"]:.1f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
