"""`retailbot demo`: a simulated store day with every part of the robot real.

The demo (1) prepares out/demo/ and a robot data folder in it, (2) starts the reference platform
and seeds it (catalog, member histories, today's VIP appointment), (3) lets the robot fetch them
(the sync downlink) and enrols the VIP and a member in the encrypted face gallery, (4) starts the
whole robot from launch/robot.launch.yaml sim:=true, (5) plays the scenario of demo_scenario:
customers step in front of the simulated camera (the camera replays a one-photo folder the demo
swaps), speak as text on /dialogue/utterances, and the demo waits on the robot's real messages;
faults are injected through the parts' own mechanisms (an unreadable camera frame, the base
simulator's bumper, stopping the platform, killing the sync agent), (6)-(7) prints the transcript
and writes summary.json, path.png, transcript.txt, and (8) exits 0 only if every expectation held.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from retail_demo import demo_scenario as story
from retail_demo.demo_report import Expectations, Transcript, compose, draw_path, write_summary
from retail_demo.screens import ScreenCamera, staff_secret_for_demo

REPO = Path(__file__).resolve().parents[3]
FACES = Path(__file__).resolve().parent / 'assets' / 'faces'   # simulated customers (attribution in its README)
DEMO_STORE = REPO / 'config' / 'stores' / 'demo'
AREAS = ('retail_navigation', 'retail_perception', 'retail_dialogue', 'retail_recommendation', 'retail_sync')
EXIT_FAILED = 1
EXIT_USAGE = 2
FRAME_W, FRAME_H = 640, 360   # config/perception.yaml camera width/height


STAFF_PASSWORD = 'demo-staff-console'     # the demo robot's staff console password (out/demo/data/ui)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        'demo', help='run a simulated store day end to end (VIP, member, shoppers, faults)',
        description='Start the reference platform and the whole simulated robot, play a scripted '
                    'store day and check it; writes summary.json, path.png and transcript.txt.')
    parser.add_argument('--out', default='out/demo', help='output folder (default out/demo)')
    parser.add_argument('--scenes', default=','.join(story.SCENES), metavar='LIST',
                        help=f'comma-separated scenes to play, in the day\'s order (default: all: '
                             f'{",".join(story.SCENES)})')
    parser.add_argument('--wait-scale', type=float, default=1.0, metavar='F',
                        help='multiply every wait for the robot by F (slow machines; default 1)')
    parser.add_argument('--shoppers', type=int, default=story.SHOPPERS, metavar='N', choices=range(0, 21),
                        help=f'shoppers walking in the simulated store, 0-20 (default {story.SHOPPERS}; '
                             'each one who stops in the robot\'s way makes the day longer)')
    parser.set_defaults(func=run)


def run(args) -> int:
    out = Path(args.out).resolve()
    scenes = [name.strip() for name in args.scenes.split(',') if name.strip()]
    unknown = [name for name in scenes if name not in story.SCENES]
    if unknown or not scenes:
        print(f'retailbot demo: unknown scene(s) {", ".join(unknown) or "(none given)"}; '
              f'choose from {", ".join(story.SCENES)}', file=sys.stderr)
        return EXIT_USAGE
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')   # this process's own node too
    transcript = Transcript()
    expect = Expectations(story.expectations_for(scenes))
    missing = [area for area in AREAS if not _importable(area)]
    if missing:
        expect.check('parts_available', False, f'not installed: {", ".join(missing)}')
        transcript.say('demo', f'cannot run the store day: {", ".join(missing)} not available')
        return _finish(out, transcript, expect, Recorder(), {}, [])
    day = StoreDay(out, transcript, expect, args.wait_scale, scenes, shoppers=args.shoppers)
    previous = {sig: signal.signal(sig, day.interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return day.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _importable(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _retailbot() -> str:
    return str(Path(sys.prefix) / 'bin' / 'retailbot')


class Recorder:
    """What the robot did, as seen on its topics (filled by the demo's ROS node)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.replies: list = []
        self.customers: list = []
        self.events: list = []
        self.staff: list[dict] = []
        self.arrivals: list[str] = []
        self.odom: list[tuple[float, float]] = []
        self.safety: list = []
        self.diagnostics: dict[str, tuple[int, str, dict]] = {}
        self.met: list[tuple[str, float, float]] = []
        self.updates: list = []             # /sync/data_updates seen
        self.believed: list[tuple[float, float, float]] = []   # (stamp s, x, y) of /navigation/pose (map)
        self.truth: list[tuple[float, float, float]] = []      # the simulator's ground truth (map), same form
        self.contacts: int | None = None                       # robot-shopper contacts counted by the simulator


class DemoNode:
    """The customers' side of the store: a rclpy node that talks to the robot and listens to it."""

    def __init__(self, recorder: Recorder, transcript: Transcript, labels: Callable[[int], str]) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import Odometry
        from retail_ros.executor import RobotExecutor
        from retail_ros.qos import LATCHED, latched as latched_qos
        from geometry_msgs.msg import PoseWithCovarianceStamped
        from std_msgs.msg import UInt32
        from std_srvs.srv import Trigger

        from retail_interfaces.msg import (BaseSafety, CustomerEvent, DataUpdate, InteractionEvent,
                                           PlaceArrival, RobotReply, StaffRequest, Utterance)
        self.rclpy, self.Utterance, self.Trigger = rclpy, Utterance, Trigger
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('store_day', context=self.context)
        self.rec, self.transcript, self.labels = recorder, transcript, labels
        latched = LATCHED
        node = self.node
        self.utterances = node.create_publisher(Utterance, '/dialogue/utterances', 10)
        node.create_subscription(RobotReply, '/dialogue/replies', self._on_reply, 50)
        node.create_subscription(CustomerEvent, '/perception/customer_events', self._on_customer, 50)
        node.create_subscription(InteractionEvent, '/sync/interaction_events', self._on_event, 1000)
        node.create_subscription(StaffRequest, '/dialogue/staff_requests', self._on_staff, 10)
        node.create_subscription(PlaceArrival, '/navigation/arrivals', self._on_arrival, 10)
        node.create_subscription(Odometry, '/odom', self._on_odom, 20)
        # Simulation only: where the robot believes it is against where it is, and contacts.
        node.create_subscription(PoseWithCovarianceStamped, '/navigation/pose', self._on_pose, 20)
        node.create_subscription(Odometry, '/navigation/sim/ground_truth', self._on_truth, 50)
        node.create_subscription(UInt32, '/navigation/sim/contacts', self._on_contacts, latched)
        node.create_subscription(BaseSafety, '/navigation/safety', self._on_safety, latched)
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 50)
        node.create_subscription(DataUpdate, '/sync/data_updates', self._on_update, latched_qos(10))
        self.reset_safety = node.create_client(Trigger, '/navigation/reset_safety')
        self.sync_now = node.create_client(Trigger, '/sync/sync_now')
        self.pose: tuple[float, float] | None = None
        self.executor = RobotExecutor(context=self.context)
        self.executor.add_node(node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    # -- listening --------------------------------------------------------------------------
    def _on_reply(self, msg) -> None:
        with self.rec.lock:
            self.rec.replies.append(msg)
        self.transcript.say('机器人', f'{msg.text}   ({msg.intent}, to {self.labels(msg.track_id)})')

    def _on_customer(self, msg) -> None:
        kinds = {0: 'appeared', 1: 'identified', 2: 'approaching', 3: 'left'}
        with self.rec.lock:
            self.rec.customers.append(msg)
            if msg.kind in (0, 1) and self.pose is not None:
                self.rec.met.append((msg.customer_id or f'track {msg.track_id}', *self.pose))
        who = f'{msg.display_name} ({msg.customer_id}{", VIP" if msg.vip else ""})' if msg.customer_id else 'a shopper'
        self.transcript.say('camera', f'{who} {kinds.get(msg.kind, msg.kind)} (track {msg.track_id})')

    def _on_event(self, msg) -> None:
        with self.rec.lock:
            self.rec.events.append(msg)

    def _on_update(self, msg) -> None:
        with self.rec.lock:
            self.rec.updates.append(msg)
        self.transcript.say('sync', f'new {msg.kind} on the robot (version {msg.version})')

    def _on_staff(self, msg) -> None:
        request = {'reason': msg.reason, 'track_id': msg.track_id, 'language': msg.language,
                   'looking_for': msg.looking_for, 'product': msg.product, 'zone': msg.zone,
                   'appointment_id': msg.appointment_id, 'staff': msg.staff, 'meeting_point': msg.meeting_point}
        with self.rec.lock:
            self.rec.staff.append(request)
        to = f' → {request["staff"]}' if request.get('staff') else ''
        self.transcript.say('staff pager', f'{request.get("reason")}{to}')

    def _on_arrival(self, msg) -> None:
        with self.rec.lock:
            self.rec.arrivals.append(msg.zone)
        self.transcript.say('robot', f'arrived at {msg.zone}')

    def _on_odom(self, msg) -> None:
        p = msg.pose.pose.position
        with self.rec.lock:
            self.rec.odom.append((p.x, p.y))
            self.pose = (p.x, p.y)

    def _on_pose(self, msg) -> None:
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        with self.rec.lock:
            self.rec.believed.append((stamp, msg.pose.pose.position.x, msg.pose.pose.position.y))

    def _on_truth(self, msg) -> None:
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        with self.rec.lock:
            self.rec.truth.append((stamp, msg.pose.pose.position.x, msg.pose.pose.position.y))

    def _on_contacts(self, msg) -> None:
        with self.rec.lock:
            self.rec.contacts = int(msg.data)

    def _on_safety(self, msg) -> None:
        with self.rec.lock:
            self.rec.safety.append(msg)
        if msg.reason:
            self.transcript.say('base', f'safety: {msg.reason}{" (latched)" if msg.latched else ""}')

    def _on_diagnostics(self, msg) -> None:
        with self.rec.lock:
            for status in msg.status:
                level = status.level if isinstance(status.level, int) else int.from_bytes(status.level, 'little')
                self.rec.diagnostics[status.name] = (level, status.message, {v.key: v.value for v in status.values})

    # -- talking ------------------------------------------------------------------------------
    def speak(self, who: str, text: str, track_id: int) -> None:
        self.transcript.say(who, text)
        msg = self.Utterance(text=text, language='zh', is_final=True, confidence=1.0, track_id=track_id)
        now = self.node.get_clock().now().to_msg()
        msg.header.stamp, msg.start, msg.end = now, now, now
        self.utterances.publish(msg)

    def call(self, client, timeout: float) -> str | None:
        if not client.wait_for_service(timeout_sec=timeout):
            return None
        future = client.call_async(self.Trigger.Request())
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not future.done() or future.result() is None:
            return None
        return future.result().message if future.result().success else None

    def close(self) -> None:
        self.executor.shutdown()
        self.thread.join(timeout=10)
        self.node.destroy_node()
        self.context.try_shutdown()


class StoreDay:
    """One run of the demo: set up, play the scenario, report."""

    def __init__(self, out: Path, transcript: Transcript, expect: Expectations, wait_scale: float,
                 scenes: list[str], shoppers: int = 0) -> None:
        self.out, self.transcript, self.expect, self.scale = out, transcript, expect, wait_scale
        self.scenes, self.shoppers = scenes, shoppers
        self.data = out / 'data'                # the robot's data dir (launch argument data_dir)
        self.store = DEMO_STORE                 # the store folder installed with the robot (map, zones, ...)
        self.downloads = self.data / 'platform'  # what the sync downlink writes; overlays the store folder
        self.stage = out / 'camera'             # the simulated camera replays this one-photo folder
        self.rec = Recorder()
        self.platform: subprocess.Popen | None = None
        self.port = _free_port()
        self.ui_port = _free_port()
        self.screens = None                     # screenshots of the robot's screen and console
        self.launcher = None
        self.launch_thread: threading.Thread | None = None
        self.node: DemoNode | None = None
        self.tracks: dict[int, str] = {}
        self.interrupted = threading.Event()
        from retail_ros.node_support import use_robot_dds_profile
        use_robot_dds_profile()             # config/fastdds.xml for this process and the robot's
        self.env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', PYTHONUNBUFFERED='1')

    def interrupt(self, *_: object) -> None:
        self.interrupted.set()

    # -- the whole run -------------------------------------------------------------------------
    def run(self) -> int:
        started = time.monotonic()
        try:
            self.transcript.section('Opening the store')
            self._prepare()
            self._start_platform()
            self._seed_platform()
            self._enrol_faces()
            self._start_robot()
            self._play()
        except DemoAbort as exc:
            self.transcript.say('demo', f'stopped: {exc}')
        finally:
            self.transcript.section('Closing the store')
            if self.node is not None:
                if not self.interrupted.is_set():
                    # events_lost is judged on a drained outbox: wait (bounded) for the last
                    # upload, which may still be in flight, before the robot is stopped.
                    try:
                        self._wait(self._day_stored, 30, 'the outbox drained before closing')
                    except DemoAbort:
                        pass
                self.node.close()
            if self.screens is not None:
                self.screens.close()
            self._stop_robot()
            extra = self._count_events()
            extra.update(self._check_navigation())
            self._stop_platform()
        extra['duration_s'] = round(time.monotonic() - started, 1)
        return _finish(self.out, self.transcript, self.expect, self.rec, extra, self._driven_path(),
                       self._ground_truth_path())

    # -- setting up ----------------------------------------------------------------------------
    def _prepare(self) -> None:
        if self.out.exists():
            shutil.rmtree(self.out)
        for folder in (self.downloads, self.data / 'sync', self.data / 'faces', self.stage,
                       self.out / 'tts', self.out / 'customer_audio'):
            folder.mkdir(parents=True)
        (self.data / 'sync' / 'token').write_text(story.PLATFORM_TOKEN + '\n')
        staff_secret_for_demo(self.data, STAFF_PASSWORD)
        self._show(None)

    def _start_platform(self) -> None:
        log = open(self.out / 'platform.log', 'ab')
        self.platform = subprocess.Popen(
            [_retailbot(), 'platform', 'serve', '--db', str(self.out / 'platform.sqlite3'), '--host', '127.0.0.1',
             '--port', str(self.port), '--token', story.PLATFORM_TOKEN],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        self._wait(self._platform_up, 30, 'the reference platform answering on 127.0.0.1')
        self.transcript.say('platform', f'reference platform on http://127.0.0.1:{self.port}')

    def _platform_up(self) -> bool:
        import httpx
        try:
            return httpx.get(f'{self.url}/v1/health', headers=self.auth, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.port}'

    @property
    def auth(self) -> dict[str, str]:
        return {'Authorization': f'Bearer {story.PLATFORM_TOKEN}'}

    def _seed_platform(self) -> None:
        import httpx
        start = (datetime.now() + timedelta(minutes=5)).replace(second=0, microsecond=0)
        note = {'name': story.VIP.name, 'meeting_point': 'vip_lounge', 'staff': story.STAFF, 'duration_min': 60}
        with httpx.Client(base_url=self.url, headers=self.auth, timeout=10.0) as client:
            for kind, content in (('catalog', (DEMO_STORE / 'catalog.csv').read_bytes()),
                                  ('histories', (DEMO_STORE / 'history.csv').read_bytes()), ('promotions', b'[]')):
                client.put(f'/v1/admin/{kind}', content=content).raise_for_status()
            client.post('/v1/admin/appointments', json={
                'robot_id': story.ROBOT_ID, 'customer': story.VIP.customer_id, 'time': start.isoformat(),
                'purpose': story.APPOINTMENT_PURPOSE, 'note': json.dumps(note, ensure_ascii=False)}).raise_for_status()
        self.transcript.say('platform', f'catalog, member histories and the VIP appointment of {story.VIP.name} '
                                        f'at {start:%H:%M} ({story.APPOINTMENT_PURPOSE}) uploaded')
        # The robot's sync before opening (overnight): the real downlink fills <data_dir>/platform.
        from retail_sync.downlink import Downlink
        downlink = Downlink(self.url, story.PLATFORM_TOKEN, story.ROBOT_ID, self.downloads)
        try:
            problems = [f'{o.kind}: {o.error}' for o in downlink.sync() if o.error]
        finally:
            downlink.close()
        if problems or not (self.downloads / 'appointments.json').exists():
            raise DemoAbort(f'the robot could not fetch its data from the platform: {"; ".join(problems)}')
        self.transcript.say('sync', 'catalog, promotions, appointments and histories downloaded to the robot')

    def _enrol_faces(self) -> None:
        from retail_perception.gallery import new_key_text
        self.env['RETAILBOT_GALLERY_KEY'] = new_key_text()
        for customer in story.CUSTOMERS:
            if customer.customer_id:
                self._enrol(customer)

    def _enrol(self, customer: story.Customer) -> None:
        command = [_retailbot(), 'faces', 'enroll', '--db', str(self.data / 'faces'), '--id',
                   customer.customer_id, '--name', customer.name, '--consent', f'demo-consent-{customer.key}',
                   '--json'] + (['--vip'] if customer.vip else []) + [str(FACES / p) for p in customer.enrol_photos]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise DemoAbort(f'enrolling {customer.label} failed: {done.stderr.strip().splitlines()[-1:]}')
        self.transcript.say('gallery', f'{customer.label} enrolled with consent (encrypted gallery)')

    def _start_robot(self) -> None:
        from retail_ros.launch_file import load_launch
        from retail_ros.launcher import Launcher
        arguments = {
            'sim': 'true', 'store': str(self.store), 'data_dir': str(self.data),
            'base_link_path': str(self.out / 'base.pty'), 'camera_replay': str(self.stage),
            'speech_in': 'false', 'speech_out_dir': str(self.out / 'tts'),
            'customer_audio_dir': str(self.out / 'customer_audio'),
            'platform_url': self.url, 'robot_id': story.ROBOT_ID, 'ui_port': str(self.ui_port),
            'sim_drift': 'true', 'sim_people': str(self.shoppers)}
        description = load_launch(REPO / 'launch' / 'robot.launch.yaml', arguments)
        # What respawns (the sync agent the demo kills mid-day) is what the shipped launch files say.
        self.robot_log = open(self.out / 'robot.log', 'w', encoding='utf-8')
        self.launcher = Launcher(description, out=self.robot_log, env=self.env, grace_s=5.0)
        self.launch_code: int | None = None

        def supervise() -> None:
            self.launch_code = self.launcher.run()
        self.launch_thread = threading.Thread(target=supervise, daemon=True)
        self.launch_thread.start()
        names = ', '.join(n.fully_qualified_name for n in description.nodes)
        self.transcript.say('robot', f'starting {len(description.nodes)} nodes: {names} (log: robot.log)')
        self.node = DemoNode(self.rec, self.transcript, self._label)
        self._wait(lambda: self._ready(), 90, 'every part of the robot to come up')
        self.expect.check('parts_available', True, names)
        self.screens = ScreenCamera(f'http://127.0.0.1:{self.ui_port}', self.out / 'screens', staff_password=STAFF_PASSWORD)
        self.transcript.say('robot', f'screen at http://127.0.0.1:{self.ui_port}/ , staff console at /console')
        self._screenshot('attract', until_css='#attract-cards .card', timeout=20)

    def _ready(self) -> bool:
        if self.launch_code is not None:
            raise DemoAbort(f'the robot stopped during start-up (exit {self.launch_code}): '
                            f'{self.launcher.refusal or "see robot.log"}')
        graph = self.node.node
        # The dialogue manager itself must be listening to customers (the screen subscribes to the
        # same topics and is often up first: a customer shown before the manager listens is never greeted).
        manager_listens = any(
            (info.node_namespace, info.node_name) == ('/dialogue', 'manager')
            for info in graph.get_subscriptions_info_by_topic('/perception/customer_events'))
        return (graph.count_publishers('/odom') > 0 and manager_listens
                and self.node.reset_safety.service_is_ready() and self.node.sync_now.service_is_ready()
                and graph.count_publishers('/perception/customer_events') > 0)

    def _stop_robot(self) -> None:
        if self.launcher is not None:
            self.launcher.request_stop()
            self.launch_thread.join(timeout=60)
            self.robot_log.close()

    def _stop_platform(self) -> None:
        if self.platform is not None and self.platform.poll() is None:
            self.platform.send_signal(signal.SIGINT)
            try:
                self.platform.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.platform.kill()
                self.platform.wait()

    # -- the camera stage ----------------------------------------------------------------------
    def _show(self, customer: story.Customer | None) -> None:
        """Put a customer in front of the camera (None: nobody there) by swapping its one photo."""
        import cv2
        import numpy as np
        frame = np.full((FRAME_H, FRAME_W, 3), 200, dtype=np.uint8)   # the camera's 640x360 picture
        if customer is None:
            cv2.putText(frame, 'store aisle', (240, 190), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (120, 120, 120), 2)
        else:   # the photo fitted into the picture, undistorted, as a person standing in front
            photo = cv2.imread(str(FACES / customer.photo), cv2.IMREAD_COLOR)
            scale = min(FRAME_W / photo.shape[1], FRAME_H / photo.shape[0])
            photo = cv2.resize(photo, (int(photo.shape[1] * scale), int(photo.shape[0] * scale)),
                               interpolation=cv2.INTER_AREA)
            top, left = (FRAME_H - photo.shape[0]) // 2, (FRAME_W - photo.shape[1]) // 2
            frame[top:top + photo.shape[0], left:left + photo.shape[1]] = photo
        tmp = self.stage / '.next.jpg'
        cv2.imwrite(str(tmp), frame)
        tmp.replace(self.stage / 'frame.jpg')

    def _drop_frames(self) -> None:
        """The camera's picture becomes unreadable (a broken frame), as a failing camera does."""
        tmp = self.stage / '.next.jpg'
        tmp.write_bytes(b'\xff\xd8 broken frame')
        tmp.replace(self.stage / 'frame.jpg')

    # -- waiting on the robot ------------------------------------------------------------------
    def _wait(self, predicate: Callable[[], object], timeout: float, what: str) -> object:
        deadline = time.monotonic() + timeout * self.scale
        while True:
            if self.interrupted.is_set():
                raise DemoAbort('interrupted (Ctrl-C)')
            result = predicate()
            if result:
                return result
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    def _marks(self) -> dict[str, int]:
        with self.rec.lock:
            return {'replies': len(self.rec.replies), 'customers': len(self.rec.customers),
                    'updates': len(self.rec.updates),
                    'events': len(self.rec.events), 'staff': len(self.rec.staff),
                    'arrivals': len(self.rec.arrivals), 'safety': len(self.rec.safety)}

    def _since(self, kind: str, mark: dict[str, int]) -> list:
        with self.rec.lock:
            return list(getattr(self.rec, kind)[mark[kind]:])

    def _reply(self, mark, timeout: float, track: int | None = None, intents: tuple[str, ...] = ()):
        def found():
            return next((r for r in self._since('replies', mark)
                         if (track is None or r.track_id == track) and (not intents or r.intent in intents)), None)
        return self._wait(found, timeout, 'a reply')

    def _event(self, mark, type_: str, timeout: float, check: Callable[[dict], bool] = lambda d: True):
        def found():
            for event in self._since('events', mark):
                if event.type == type_:
                    data = json.loads(event.payload_json or '{}')
                    if check(data):
                        return data
            return None
        return self._wait(found, timeout, f'a {type_} event')

    def _enter(self, customer: story.Customer, timeout: float = 30.0):
        """Show the customer to the camera; returns (track id, identified event or None)."""
        mark = self._marks()
        self._show(customer)
        want_identity = bool(customer.customer_id)

        def seen():
            for event in self._since('customers', mark):
                if event.kind == 3:
                    continue
                if want_identity and event.customer_id != customer.customer_id:
                    continue
                return event
            return None
        event = self._wait(seen, timeout, f'{customer.label} seen')
        if event is None and want_identity:   # seen but never named: still a customer to serve
            event = next((e for e in self._since('customers', mark) if e.kind != 3), None)
        if event is not None:
            self.tracks[event.track_id] = customer.label
            # A customer speaks once the robot has said hello (so the first reply to their words
            # is the answer, not the greeting).
            self._reply(mark, 10, event.track_id, ('greet',))
        return (event.track_id if event is not None else 0), event

    def _named_greeting(self, mark, track: int, name: str):
        return self._wait(lambda: next((r for r in self._since('replies', mark)
                                        if r.track_id == track and r.intent == 'greet' and name in r.text), None),
                          20, f'greeting {name}')

    def _walk_behind(self, customer: story.Customer) -> None:
        """A guided customer follows behind the robot, out of the forward camera's view (a person in
        front is an obstacle the guide waits for)."""
        self.transcript.say(customer.label, '(follows behind the robot)')
        self._show(None)

    def _leave(self, track: int, timeout: float = 20.0) -> bool:
        mark = {'customers': 0}
        self._show(None)
        return bool(self._wait(lambda: any(e.kind == 3 and e.track_id == track
                                           for e in self._since('customers', mark)), timeout, 'customer left'))

    def _label(self, track_id: int) -> str:
        return self.tracks.get(track_id, f'track {track_id}')

    def _guided(self, mark, customer: story.Customer, track: int, zone: str, retry: str, tries: int = 4) -> bool:
        """Wait for the arrival at `zone`; when guiding fails (e.g. the spot the bumper hit is still
        marked), the customer asks again, as people do."""
        for attempt in range(tries):
            if attempt:
                self._wait(lambda: False, 5, 'a moment')
                mark = self._marks()
                self.node.speak(customer.label, retry, track)
            if self._guide_done(mark, zone, 150):
                return True
        return False

    def _guide_done(self, mark, zone: str, timeout: float) -> bool:
        return bool(self._wait(lambda: zone in self._since('arrivals', mark)
                               or self._event(mark, 'guide', 0, lambda d: d.get('status') == 'failed'),
                               timeout, f'guiding to {zone}')) and zone in self._since('arrivals', mark)

    # -- the scenario --------------------------------------------------------------------------
    def _play(self) -> None:
        plays = {'vip': self._vip, 'member': self._member, 'vip2': self._vip2, 'camera': self._camera_dropout,
                 'shopper': self._shopper, 'leaver': self._leaver, 'tour': self._tour, 'outage': self._outage}
        for name in story.SCENES:
            if name in self.scenes:
                if self.interrupted.is_set():
                    raise DemoAbort('interrupted (Ctrl-C)')
                plays[name]()
        self.node.call(self.node.sync_now, 10)   # the day's last events go up before closing
        self._wait(lambda: self._outbox_pending() == 0, 30, 'outbox drained')
        # An event a node handed over just as the agent was killed waits in that node until its
        # request times out and is sent again: close only when every event seen is stored.
        self._wait(self._day_stored, 45, 'every event of the day stored')

    def _day_stored(self) -> bool:
        produced, uploaded, pending = self._event_sets()
        if produced <= uploaded | pending and not pending:
            return True
        self.node.call(self.node.sync_now, 5)
        self._wait(lambda: False, 2, 'a moment')
        return False

    def _vip(self) -> None:
        self.transcript.section(f'VIP reception: {story.VIP.label}')
        self._reception('vip', story.VIP, story.APPOINTMENT_PURPOSE, story.STAFF, 'vip_lounge', story.VIP_RETRY)

    def _vip2(self) -> None:
        """A new VIP customer enrols and books on the platform while the robot runs; the sync
        brings the appointment to the running robot, which then receives the VIP."""
        self.transcript.section(f'A VIP booked mid-day: {story.VIP2.label}')
        self._enrol(story.VIP2)
        mark = self._marks()
        start = self._book(story.VIP2, story.VIP2_PURPOSE, story.VIP2_STAFF, story.VIP2_MEETING_POINT)
        self.node.call(self.node.sync_now, 10)
        update = self._wait(lambda: next((u for u in self._since('updates', mark) if u.kind == 'appointments'), None),
                            30, 'the appointment downloaded')
        from retail_common.store import StoreError, load_store
        try:
            robot_sees = load_store(self.store, self.data).appointments_for(story.VIP2.customer_id, datetime.now())
        except StoreError as exc:
            robot_sees = []
            self.transcript.say('demo', f'store not readable: {exc}')
        self.expect.check('vip2_booked', update is not None and bool(robot_sees),
                          f'booked for {start:%H:%M}; ' + (f'{update.kind} version {update.version} in {update.path}'
                                                           if update else 'no data update from the sync'))
        if update is None:
            return
        self.transcript.say('sync', f'the new appointment of {story.VIP2.name} is on the robot')
        self._reception('vip2', story.VIP2, story.VIP2_PURPOSE, story.VIP2_STAFF, story.VIP2_MEETING_POINT,
                        story.VIP2_RETRY)

    def _book(self, customer: story.Customer, purpose: str, staff: str, meeting_point: str) -> datetime:
        """Create a VIP appointment on the platform, five minutes from now."""
        import httpx
        start = (datetime.now() + timedelta(minutes=5)).replace(second=0, microsecond=0)
        note = {'name': customer.name, 'meeting_point': meeting_point, 'staff': staff, 'duration_min': 60}
        try:
            with httpx.Client(base_url=self.url, headers=self.auth, timeout=10.0) as client:
                client.post('/v1/admin/appointments', json={
                    'robot_id': story.ROBOT_ID, 'customer': customer.customer_id, 'time': start.isoformat(),
                    'purpose': purpose, 'note': json.dumps(note, ensure_ascii=False)}).raise_for_status()
        except httpx.HTTPError as exc:
            raise DemoAbort(f'booking on the platform failed: {exc}') from None
        self.transcript.say('platform', f'{customer.name} books {purpose} at {start:%H:%M} ({staff}, {meeting_point})')
        return start

    def _reception(self, key: str, vip: story.Customer, purpose: str, staff_name: str, meeting_point: str,
                   retry: str) -> None:
        """Receive a VIP with an appointment: recognised, greeted with the purpose, checked in,
        staff paged, escorted to the meeting point. Checks are named `<key>_...`."""
        mark = self._marks()
        track, event = self._enter(vip, 45)
        if key == 'vip':
            self.expect.check('vip_identified', event is not None and event.customer_id == vip.customer_id
                              and event.vip, f'camera saw {event.display_name or "nobody known"}' if event
                              else 'nobody seen')
        greet = self._named_greeting(mark, track, vip.name)
        self.expect.check(f'{key}_greeted', greet is not None and vip.name in greet.text
                          and purpose in greet.text, greet.text if greet else 'no greeting')
        if greet is None:
            return
        self._screenshot('vip_welcome', until_css='#welcome.vip')
        mark = self._marks()
        self.node.speak(vip.label, story.VIP_CHECKIN, track)
        checkin = self._event(mark, 'vip_checkin', 15)
        self.expect.check(f'{key}_checked_in', checkin is not None and checkin.get('status') == 'on_time',
                          json.dumps(checkin, ensure_ascii=False) if checkin else 'no check-in event')
        staff = self._wait(lambda: next((s for s in self._since('staff', mark) if s.get('staff') == staff_name), None),
                           10, 'staff notified')
        self.expect.check(f'{key}_staff_notified', staff is not None, json.dumps(staff, ensure_ascii=False) if staff
                          else 'no staff request naming the staff member')
        if self._reply(mark, 10, track, ('vip_checkin',)) is None:
            return
        mark = self._marks()
        self.node.speak(vip.label, story.VIP_ACCEPT_ESCORT, track)
        self._walk_behind(vip)
        arrived = self._guided(mark, vip, track, meeting_point, retry)
        self.expect.check(f'{key}_escorted', arrived, f'arrived at {meeting_point}' if arrived else 'did not arrive')
        self._leave(track)

    def _member(self) -> None:
        self.transcript.section(f'Member shopping: {story.MEMBER.label}')
        mark = self._marks()
        track, event = self._enter(story.MEMBER, 45)
        greet = self._named_greeting(mark, track, story.MEMBER.name)
        self.expect.check('member_greeted', greet is not None and story.MEMBER.name in greet.text,
                          greet.text if greet else 'no greeting')
        mark = self._marks()
        self.node.speak(story.MEMBER.label, story.MEMBER_ASK, track)
        recommended = self._event(mark, 'recommendation', 20)
        reply = self._reply(mark, 5, track, ('recommend',))
        skus = (recommended or {}).get('skus') or []
        store = self._robot_store()
        products = [store.catalog.by_sku.get(sku) for sku in skus]
        prices = [p.price_cny if p else -1.0 for p in products]
        reasons = [(item.get('sku'), item.get('reason_zh', '')) for item in (recommended or {}).get('products') or []]
        self.recommendations = len(skus)
        self.expect.check('member_recommended', bool(skus) and all(p is not None and p.category == story.MEMBER_CATEGORY
                                                                   and p.price_cny >= story.MEMBER_MIN_PRICE for p in products)
                          and reply is not None and reply.text.count('元') >= len(skus)
                          and len(reasons) == len(skus) and all(reason for _, reason in reasons),
                          f'{skus} at {prices} yuan, reasons {reasons}: ' + (reply.text if reply else 'no reply'))
        shot = self._screenshot('recommendations', until_css='#cards .card-reason')
        self.expect.check('screen_reasons', isinstance(shot, Path), str(shot))
        # The member narrows the recommendation down: a brand, then a cheaper one.
        brand_reply, brand_skus = self._ask_and_see(story.MEMBER, story.MEMBER_REFINE_BRAND, track)
        brand = [store.catalog.by_sku.get(sku) for sku in brand_skus]
        self.expect.check('member_refined_brand', bool(brand) and all(
            p is not None and p.brand == story.MEMBER_BRAND and p.category == story.MEMBER_CATEGORY for p in brand),
            f'{[(p.sku, p.brand) if p else "?" for p in brand]}: ' + (brand_reply.text if brand_reply else 'no reply'))
        before = [p.price_cny for p in brand if p] or prices
        cheap_reply, cheap_skus = self._ask_and_see(story.MEMBER, story.MEMBER_REFINE_CHEAPER, track)
        cheaper = [store.catalog.by_sku.get(sku) for sku in cheap_skus]
        self.expect.check('member_refined_cheaper', bool(cheaper) and all(
            p is not None and p.category == story.MEMBER_CATEGORY and p.price_cny < min(before) for p in cheaper),
            f'{[(p.sku, p.price_cny) if p else "?" for p in cheaper]} after prices {before}: '
            + (cheap_reply.text if cheap_reply else 'no reply'))
        shown = [p for p in cheaper or brand or products if p is not None]
        zones = [store.zone_of(p) for p in shown]
        zone = max(set(zones), key=zones.count) if zones else ''
        mark = self._marks()
        self.node.speak(story.MEMBER.label, story.MEMBER_ACCEPT, track)
        turn = self._event(mark, 'dialogue_turn', 15)
        self.expect.check('member_guide_zone', bool(zone) and turn is not None and turn.get('guide_to') == zone,
                          f'products shown are in {zone or "no zone"}; the robot set off to '
                          f'{(turn or {}).get("guide_to") or "nowhere"}')
        self._walk_behind(story.MEMBER)
        # On the way a display stand is hit: the bumper of the base simulator.
        moved = self._wait(lambda: self._distance_since(mark) > 1.5, 40, 'the robot moving')
        self._screenshot('route', until_css='#route-path')
        self._bump(mark, moved is not None)
        mark = self._marks()
        self.node.speak(story.MEMBER.label, story.MEMBER_RETRY, track)
        arrived = self._guided(mark, story.MEMBER, track, zone or 'phones', story.MEMBER_RETRY)
        self.expect.check('bumper_recovered', arrived, f'arrived at {zone}' if arrived else 'did not arrive')
        self._leave(track)

    def _screenshot(self, name: str, **wait) -> Path | str:
        """Save out/demo/screens/<name>.png of the robot's screen (or console); a failure is told, never
        fatal. Returns the file, or why it was not saved."""
        saved = self.screens.shot(name, **wait)
        if not isinstance(saved, Path):
            self.transcript.say('demo', f'no screenshot {name}: {saved}')
        return saved

    def _robot_store(self):
        """The store as the robot's nodes read it (store folder + the platform's data)."""
        from retail_common.store import load_store
        return load_store(self.store, self.data)

    def _ask_and_see(self, customer: story.Customer, text: str, track: int, timeout: float = 20.0):
        """Say `text`; returns (the robot's reply, the SKUs it showed with it): the products of the
        recommendation event when the reply presents recommendations, else those of this turn's
        dialogue_turn event (the one with the reply's intent)."""
        mark = self._marks()
        self.node.speak(customer.label, text, track)
        reply = self._reply(mark, timeout, track)
        if reply is None:
            return None, []
        if reply.intent == 'recommend':
            event = self._event(mark, 'recommendation', 5)
            return reply, list((event or {}).get('skus') or [])
        event = self._event(mark, 'dialogue_turn', 5, lambda d: d.get('intent') == reply.intent and bool(d.get('products')))
        return reply, [p.get('sku') for p in (event or {}).get('products') or []]

    def _distance_since(self, mark) -> float:
        with self.rec.lock:
            odom = list(self.rec.odom)
        if 'odom' not in mark:
            mark['odom'] = len(odom)
        segment = odom[mark['odom']:]
        return sum(((b[0] - a[0]) ** 2 + (b[1] - a[1]) ** 2) ** 0.5 for a, b in zip(segment, segment[1:]))

    def _bump(self, mark, moving: bool) -> None:
        from retail_navigation.pty_sim import send_control as control
        link = str(self.out / 'base.pty')

        def send_control(where: str, request: dict) -> dict:
            try:
                return control(where, request)
            except OSError as exc:
                raise DemoAbort(f'the base simulator is gone ({exc}); see robot.log') from None
        if not moving:
            self.expect.check('bumper_stop', False, 'the robot never started towards the phones')
            return
        self.transcript.say('fault', 'the robot bumps into a display stand (centre bumper pressed)')
        send_control(link, {'cmd': 'bumper', 'bits': 2})
        stopped = self._wait(lambda: any(s.latched for s in self._since('safety', mark)), 10, 'safety stop')
        self._screenshot('console_bumper_stop', page='console', until_text=('#safety', 'STOPPED'))
        sorry = self._wait(lambda: next((r for r in self._since('replies', mark)
                                         if '抱歉' in r.text or 'sorry' in r.text.lower()), None), 15, 'apology')
        apologised = sorry is not None
        send_control(link, {'cmd': 'bumper', 'bits': 0})
        self._wait(lambda: any(not (s.bumper_left or s.bumper_centre or s.bumper_right)
                               for s in self._since('safety', mark)), 10, 'bumper released')
        self.transcript.say('staff', 'clears the way and presses reset')
        mark = self._marks()
        message = self._wait(lambda: self.node.call(self.node.reset_safety, 5), 20, 'safety reset')
        self._wait(lambda: any(not s.latched for s in self._since('safety', mark)), 10, 'drive enabled')
        self.expect.check('bumper_stop', bool(stopped and apologised and message),
                          f'stopped={bool(stopped)}, apology={sorry.text if sorry else None}, reset={message}')

    def _camera_dropout(self) -> None:
        self.transcript.section('Camera trouble')
        self.transcript.say('fault', 'the camera delivers broken frames')
        self._drop_frames()
        name = next((n for n in self.rec.diagnostics if 'camera' in n), '/perception/camera')
        lost = self._wait(lambda: self.rec.diagnostics.get(name, (0,))[0] >= 2, 20, 'camera error reported')
        self._show(None)
        back = self._wait(lambda: self.rec.diagnostics.get(name, (2,))[0] == 0, 20, 'camera back')
        detail = self.rec.diagnostics.get(name, (None, 'no camera diagnostics'))[1]
        self.transcript.say('camera', f'{"recovered" if back else "still failing"}: {detail}')
        self.expect.check('camera_dropout', bool(lost and back), f'reported={bool(lost)}, recovered={bool(back)}')

    def _shopper(self) -> None:
        self.transcript.section(f'Anonymous shopper: {story.SHOPPER.label}')
        track, event = self._enter(story.SHOPPER, 30)
        mark = self._marks()
        self.node.speak(story.SHOPPER.label, story.SHOPPER_ASK, track)
        reply = self._reply(mark, 15, track)
        self.expect.check('shopper_answered', reply is not None and '厨房' in reply.text,
                          reply.text if reply else 'no answer')
        # A store-wide question: the answer names products on promotion (from the robot's store).
        reply, skus = self._ask_and_see(story.SHOPPER, story.PROMOTIONS_ASK, track)
        store = self._robot_store()
        offers = [store.catalog.by_sku.get(sku) for sku in skus]
        self.expect.check('promotions_answered', bool(offers) and reply is not None and all(
            p is not None and p.promotion and p.name_zh in reply.text for p in offers),
            f'{[(p.sku, p.promotion) if p else "?" for p in offers]}: ' + (reply.text if reply else 'no answer'))
        mark = self._marks()
        self.node.speak(story.SHOPPER.label, story.SHOPPER_CALL_STAFF, track)
        staff = self._wait(lambda: self._since('staff', mark), 15, 'staff called')
        self.expect.check('staff_called', bool(staff), json.dumps(staff[0], ensure_ascii=False) if staff else
                          'no staff request')
        self._leave(track)

    def _leaver(self) -> None:
        self.transcript.section(f'A customer walks off: {story.LEAVER.label}')
        track, event = self._enter(story.LEAVER, 30)
        mark = self._marks()
        self.node.speak(story.LEAVER.label, story.LEAVER_ASK, track)
        self._reply(mark, 15, track)
        self.transcript.say(story.LEAVER.label, '(walks away mid-conversation)')
        left = self._leave(track)
        ended = self._event(mark, 'session_end', 15, lambda d: d.get('reason') == 'left')
        self.expect.check('left_mid_conversation', bool(left and ended), f'left seen={left}, session end={ended}')

    def _tour(self) -> None:
        """A shopper asks for a tour, hears the first stop, asks for the next one, then ends it."""
        self.transcript.section(f'A short tour: {story.TOURIST.label}')
        track, _ = self._enter(story.TOURIST, 30)
        mark = self._marks()
        self.node.speak(story.TOURIST.label, story.TOUR_ASK, track)
        started = self._event(mark, 'tour', 15, lambda d: d.get('status') == 'started')
        route = (started or {}).get('route', '')
        stops = self._robot_store().tours.get(route, ())
        self.expect.check('tour_started', bool(stops) and self._reply(mark, 10, track, ('tour',)) is not None,
                          f'tour {route!r} of {len(stops)} stops' if started else 'no tour started')
        if not stops:
            self._leave(track)
            return
        self._walk_behind(story.TOURIST)
        first = stops[0]
        narration = first.narration_zh[:12] or self._robot_store().zone_name(first.zone, 'zh')
        said = self._wait(lambda: next((r for r in self._since('replies', mark)
                                        if r.track_id == track and narration in r.text), None),
                          150, f'the narration of {first.zone}')
        arrived = first.zone in self._since('arrivals', mark)
        self.expect.check('tour_narrated', bool(said and arrived),
                          f'arrived at {first.zone}: {arrived}; ' + (said.text if said else 'no narration'))
        mark = self._marks()
        self.node.speak(story.TOURIST.label, story.TOUR_NEXT, track)
        answer = self._reply(mark, 15, track, ('tour_control', 'tour'))
        self._wait(lambda: False, 3, 'a moment on the way')
        stopped = self._event(mark, 'tour', 0, lambda d: d.get('status') in ('stopped', 'failed', 'finished'))
        self.expect.check('tour_next', answer is not None and stopped is None,
                          (answer.text if answer else 'no answer') + ('' if stopped is None else f'; tour ended: {stopped}'))
        mark = self._marks()
        self.node.speak(story.TOURIST.label, story.TOUR_STOP, track)
        ended = self._event(mark, 'tour', 15, lambda d: d.get('status') == 'stopped')
        cancelled = self._event(mark, 'guide', 30, lambda d: d.get('mission') == 'tour'
                                and d.get('status') == 'ended' and d.get('reason') == 'cancelled')
        self.expect.check('tour_ended', ended is not None and cancelled is not None,
                          f'tour event: {json.dumps(ended, ensure_ascii=False) if ended else "none"}; guide: '
                          f'{json.dumps(cancelled, ensure_ascii=False) if cancelled else "no cancelled tour goal"}')
        self._leave(track)

    def _outage(self) -> None:
        self.transcript.section('Network outage and a sync restart')
        self.transcript.say('fault', 'the store\'s internet goes down (platform unreachable)')
        self._stop_platform()
        track, _ = self._enter(story.SHOPPER, 30)
        mark = self._marks()
        self.node.speak(story.SHOPPER.label, story.OUTAGE_ASK, track)
        self._reply(mark, 15, track)
        self._leave(track)
        queued = self._wait(lambda: self._backlog() > 0, 15, 'events queued')
        self.transcript.say('sync', f'{self._backlog()} events waiting in the outbox')
        self.expect.check('outage_queued', bool(queued), f'backlog {self._backlog()}')
        self.transcript.say('fault', 'the sync agent process is killed (kill -9)')
        agent = next(c for c in self.launcher.children if c.node.fully_qualified_name == '/sync/agent')
        starts = agent.starts
        if agent.process is None or agent.process.poll() is not None:
            raise DemoAbort('the sync agent is not running')
        os.killpg(agent.process.pid, signal.SIGKILL)
        back = self._wait(lambda: agent.starts > starts and self.node.sync_now.service_is_ready(), 30, 'sync back')
        self.expect.check('sync_restarted', bool(back), f'restarted {agent.starts - 1} time(s)')
        self.transcript.say('platform', 'internet back: the platform is reachable again')
        self._start_platform()
        self.node.call(self.node.sync_now, 10)
        drained = self._wait(lambda: self._outbox_pending() == 0, 60, 'outbox drained')
        self.expect.check('outage_drained', bool(drained), f'{self._outbox_pending()} still pending')
        self.transcript.say('sync', 'outbox empty: every event is on the platform' if drained else 'outbox not empty')

    def _backlog(self) -> int:
        with self.rec.lock:
            values = next((v for n, (_, _, v) in self.rec.diagnostics.items() if 'sync' in n), {})
        try:
            return int(values.get('backlog', 0))
        except ValueError:
            return 0

    def _outbox_pending(self) -> int:
        from retail_sync.outbox import Outbox
        outbox = Outbox(self.data / 'sync' / 'outbox.sqlite3')
        try:
            return outbox.pending()
        finally:
            outbox.close()

    # -- the day's numbers ---------------------------------------------------------------------
    def _event_sets(self) -> tuple[set[str], set[str], set[str]]:
        """Event ids: seen on the bus, on the platform, still in the robot's outbox."""
        with self.rec.lock:
            produced = {e.event_id for e in self.rec.events if e.event_id}
        db = self.out / 'platform.sqlite3'
        uploaded: set[str] = set()
        if db.exists():
            done = subprocess.run([_retailbot(), 'platform', 'export', '--db', str(db), '--robot-id', story.ROBOT_ID],
                                  capture_output=True, text=True, env=self.env, timeout=60)
            uploaded = {json.loads(line)['event_id'] for line in done.stdout.splitlines() if line.strip()}
        pending: set[str] = set()
        outbox_path = self.data / 'sync' / 'outbox.sqlite3'
        if outbox_path.exists():
            from retail_sync.outbox import Outbox
            outbox = Outbox(outbox_path)
            try:
                pending = {e.event_id for e in outbox.read_batch(1_000_000, max_bytes=1 << 30)}
            finally:
                outbox.close()
        return produced, uploaded, pending

    def _count_events(self) -> dict:
        """Robot's events (seen on the bus, still in the outbox) against the platform's store."""
        produced, uploaded, pending = self._event_sets()
        lost = produced - uploaded - pending
        self.expect.check('no_events_lost', bool(produced) and not lost and not pending,
                          f'{len(produced)} produced, {len(uploaded)} on the platform, {len(pending)} still '
                          f'in the outbox, {len(lost)} lost')
        with self.rec.lock:
            greet_ok = self.expect.results.get('vip_greeted', (False, ''))[0]
            second_ok = self.expect.results.get('vip2_greeted', (False, ''))[0]
            guided = len(self.rec.arrivals)
        return {'vip_greeted': greet_ok, 'second_vip_greeted': second_ok, 'customers_guided': guided,
                'recommendations': getattr(self, 'recommendations', 0),
                'events_produced': len(produced), 'events_uploaded': len(produced & uploaded),
                'events_pending': len(pending), 'events_lost': len(lost),
                'staff_requests': len(self.rec.staff), 'zones_visited': list(dict.fromkeys(self.rec.arrivals))}

    def _check_navigation(self) -> dict:
        """localisation_error_max_m (believed vs ground truth nearest in time) and contacts."""
        from retail_demo.demo_report import localisation_error_max
        with self.rec.lock:
            truth, believed, contacts = sorted(self.rec.truth), sorted(self.rec.believed), self.rec.contacts
        error = localisation_error_max(truth, believed)
        self.expect.check('localised', error is not None and error <= story.LOCALISATION_TOLERANCE_M,
                          f'largest error {error:.3f} m over {len(believed)} poses' if error is not None
                          else f'no pose to compare ({len(believed)} poses, {len(truth)} ground truth)')
        self.expect.check('no_contacts', contacts == 0,
                          f'{contacts} contact(s) with {self.shoppers} shoppers walking' if contacts is not None
                          else 'the simulator reported no contact count')
        return {'localisation_error_max_m': None if error is None else round(error, 3), 'contacts': contacts,
                'shoppers': self.shoppers}

    def _ground_truth_path(self) -> list[tuple[float, float]]:
        with self.rec.lock:
            return [(x, y) for _, x, y in sorted(self.rec.truth)][::10]

    def _driven_path(self) -> list[tuple[float, float]]:
        """Where the robot believed it drove, in the map: the localisation's poses (the odometry
        from the dock without them); the places customers were met are moved into the map too."""
        import yaml
        zones = yaml.safe_load((DEMO_STORE / 'zones.yaml').read_text(encoding='utf-8'))
        dock = tuple(zones['zones']['dock']['pose'])
        with self.rec.lock:
            believed = [(x, y) for _, x, y in sorted(self.rec.believed)]
            odometry = [compose(dock, x, y) for x, y in self.rec.odom]
            self.rec.met = [(label, *compose(dock, x, y)) for label, x, y in self.rec.met]
        return believed[::3] if believed else odometry[::5]


class DemoAbort(Exception):
    """The day cannot go on (a part did not come up, Ctrl-C)."""


def _finish(out: Path, transcript: Transcript, expect: Expectations, rec: Recorder, extra: dict,
            driven: list[tuple[float, float]], truth: list[tuple[float, float]] | None = None) -> int:
    out.mkdir(parents=True, exist_ok=True)
    why_no_picture = draw_path(out / 'path.png', DEMO_STORE, driven, extra.get('zones_visited', []), rec.met,
                               truth=truth or None)
    if why_no_picture:
        transcript.say('demo', f'no path picture: {why_no_picture}')
    failed = expect.failed()
    summary = {'vip_greeted': False, 'customers_guided': 0, 'recommendations': 0, 'events_uploaded': 0,
               'events_lost': None, **extra, 'ok': not failed, 'expectations': expect.to_json()}
    transcript.section('Result')
    for line in failed:
        transcript.say('demo', line)
    transcript.say('demo', f'{len(expect.wording) - len(failed)}/{len(expect.wording)} expectations met; '
                           f'VIP greeted: {summary["vip_greeted"]}, customers guided: {summary["customers_guided"]}, '
                           f'events uploaded: {summary["events_uploaded"]}, lost: {summary["events_lost"]}')
    write_summary(out / 'summary.json', summary)
    transcript.write(out / 'transcript.txt')
    print(f'written: {out / "summary.json"}, {out / "path.png"}, {out / "transcript.txt"}')
    return 0 if not failed else EXIT_FAILED
