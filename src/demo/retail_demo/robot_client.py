"""`StoreClient`: the store day's one handle on the robot, its platform and its simulator.

In the spirit of nav2_simple_commander's `BasicNavigator`: a scene never starts a process, opens a
socket or subscribes to a topic; it asks the client. The client

* opens and closes the store: prepares out/demo/, starts and seeds the reference platform, lets
  the robot fetch its data (the real sync downlink), enrols faces, starts every node of
  `launch/robot.launch.yaml sim:=true` and waits until the robot is ready (`open_store`,
  `close_store`); stops and restarts the platform (`stop_platform`, `start_platform`), kills a node
  (`kill_node`);
* stages customers: a face in front of the simulated camera (`show`, `enter`, `leave`,
  `walk_behind`, `drop_frames`), their words as text on /dialogue/utterances (`say`, `ask_and_see`);
* waits, bounded and scaled by `--wait-scale`, on what the robot really publishes: replies,
  interaction events, staff pages, arrivals, safety, diagnostics (`mark`, `since`, `wait`, `reply`,
  `event`, `greeting`, `guided`, `staff_page`, `safety_since`, `moved_since`, `camera_level`);
* presses the staff's buttons (`press_reset`, `sync_now`) and the simulator's (`press_bumper`);
* reads the platform and the robot's stores (`book`, `enrol`, `robot_store`, `appointments_of`,
  `backlog`, `outbox_pending`, `event_sets`, `navigation_samples`) and takes screenshots
  (`screenshot`).
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
from typing import Any

from retail_demo import demo_scenario as story
from retail_demo.demo_report import Transcript, compose
from retail_demo.listener import DemoNode, Recorder
from retail_demo.screens import ScreenCamera, staff_secret_for_demo

REPO = Path(__file__).resolve().parents[3]
FACES = Path(__file__).resolve().parent / 'assets' / 'faces'  # simulated customers (attribution in its README)
DEMO_STORE = REPO / 'config' / 'stores' / 'demo'
FRAME_W, FRAME_H = 640, 360  # the staged photo; the camera fits it into its 1280x720 frames (config/perception.yaml)
STAFF_PASSWORD = 'demo-staff-console'  # the demo robot's staff console password (out/demo/data/ui)
LEFT = 3  # CustomerEvent.kind of a customer walking away

Mark = dict[str, int]


class DemoAbort(Exception):
    """The day cannot go on (a part did not come up, Ctrl-C)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _retailbot() -> str:
    return str(Path(sys.prefix) / 'bin' / 'retailbot')


class StoreClient:
    """The robot, its platform and its simulator, as a store day's scenes use them."""

    def __init__(
        self,
        out: Path,
        transcript: Transcript,
        wait_scale: float = 1.0,
        shoppers: int = 0,
        platform_db: str | None = None,
    ) -> None:
        self.out, self.transcript, self.scale, self.shoppers = out, transcript, wait_scale, shoppers
        # The platform's database: an SQLite file in the output folder, or a postgresql:// URL.
        self.platform_db = platform_db or str(out / 'platform.sqlite3')
        self.data = out / 'data'  # the robot's data dir (launch argument data_dir)
        self.store = DEMO_STORE  # the store folder installed with the robot (map, zones, ...)
        self.downloads = self.data / 'platform'  # what the sync downlink writes; overlays the store folder
        self.stage = out / 'camera'  # the simulated camera replays this one-photo folder
        self.rec = Recorder()
        self.platform: subprocess.Popen | None = None
        self.port = _free_port()
        self.ui_port = _free_port()
        self.screens: ScreenCamera | None = None  # screenshots of the robot's screen and console
        self.launcher: Any = None
        self.launch_thread: threading.Thread | None = None
        self.launch_code: int | None = None
        self._node: DemoNode | None = None
        self.tracks: dict[int, str] = {}
        self.interrupted = threading.Event()
        from retail_ros.node_support import use_robot_dds_profile

        use_robot_dds_profile()  # config/fastdds.xml for this process and the robot's
        self.env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', PYTHONUNBUFFERED='1')

    @property
    def ros(self) -> DemoNode:
        """The day's node on the robot's DDS (there once the robot was started)."""
        if self._node is None:
            raise DemoAbort('the robot is not started')
        return self._node

    # -- the transcript ----------------------------------------------------------------------------
    def section(self, title: str) -> None:
        self.transcript.section(title)

    def tell(self, who: str, text: str) -> None:
        self.transcript.say(who, text)

    # -- opening and closing the store ---------------------------------------------------------
    def open_store(self) -> str:
        """Everything up to the first customer; returns the robot's node names."""
        self.section('Opening the store')
        self._prepare()
        self.start_platform()
        self._seed_platform()
        self._enrol_faces()
        return self._start_robot()

    def close_store(self) -> None:
        """Wait (bounded) for the last upload, then stop the robot (the platform stays for reading)."""
        self.section('Closing the store')
        if self._node is not None:
            if not self.interrupted.is_set():
                # events_lost is judged on a drained outbox: wait (bounded) for the last
                # upload, which may still be in flight, before the robot is stopped.
                try:
                    self.wait(self._day_stored, 30, 'the outbox drained before closing')
                except DemoAbort:
                    pass
            self._node.close()
        if self.screens is not None:
            self.screens.close()
        if self.launcher is not None:
            self.launcher.request_stop()
            if self.launch_thread is not None:
                self.launch_thread.join(timeout=60)
            self.robot_log.close()

    def upload_the_day(self) -> None:
        """The day's last events go up before closing."""
        self.sync_now(10)
        self.wait(lambda: self.outbox_pending() == 0, 30, 'outbox drained')
        # An event a node handed over just as the agent was killed waits in that node until its
        # request times out and is sent again: close only when every event seen is stored.
        self.wait(self._day_stored, 45, 'every event of the day stored')

    def _day_stored(self) -> bool:
        produced, uploaded, pending = self.event_sets()
        if produced <= uploaded | pending and not pending:
            return True
        self.sync_now(5)
        self.pause(2)
        return False

    def _prepare(self) -> None:
        if self.out.exists():
            shutil.rmtree(self.out)
        for folder in (
            self.downloads,
            self.data / 'sync',
            self.data / 'faces',
            self.stage,
            self.out / 'tts',
            self.out / 'customer_audio',
        ):
            folder.mkdir(parents=True)
        staff_secret_for_demo(self.data, STAFF_PASSWORD)
        self.show(None)

    def start_platform(self) -> None:
        log = open(self.out / 'platform.log', 'ab')
        self.platform = subprocess.Popen(
            [
                _retailbot(),
                'platform',
                'serve',
                '--database',
                self.platform_db,
                '--host',
                '127.0.0.1',
                '--port',
                str(self.port),
                '--token',
                story.PLATFORM_TOKEN,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        self.wait(self._platform_up, 30, 'the reference platform answering on 127.0.0.1')
        self.tell('platform', f'reference platform on http://127.0.0.1:{self.port}')

    def stop_platform(self) -> None:
        if self.platform is not None and self.platform.poll() is None:
            self.platform.send_signal(signal.SIGINT)
            try:
                self.platform.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.platform.kill()
                self.platform.wait()

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

    def _platform_cli(self, *args: str, exists_ok: bool = False) -> str:
        done = subprocess.run(
            [_retailbot(), 'platform', *args, '--database', self.platform_db],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
        )
        if done.returncode != 0 and not (exists_ok and 'already exists' in done.stderr):
            raise DemoAbort(f'retailbot platform {args[0]}: {done.stderr.strip()}')
        return done.stdout

    def _seed_platform(self) -> None:
        """The chain's provisioning, as src/platform/README.md tells it: the store, the robot's own
        token, the product master, the store's consenting members, today's VIP appointment."""
        import csv

        import httpx

        # (a PostgreSQL database kept from an earlier day has the store and the robot already)
        self._platform_cli('store', 'add', '--id', story.STORE_ID, '--name', story.STORE_NAME, exists_ok=True)
        token_file = self.data / 'sync' / 'token'
        self._platform_cli(
            'token',
            'issue',
            '--robot-id',
            story.ROBOT_ID,
            '--store',
            story.STORE_ID,
            '--replace',
            '--out',
            str(token_file),
        )
        self._platform_cli(
            'member-import', '--history', str(DEMO_STORE / 'history.csv'), '--home-store', story.STORE_ID, '--consent'
        )
        with (DEMO_STORE / 'catalog.csv').open(encoding='utf-8-sig', newline='') as handle:
            products = [{k: v for k, v in row.items() if k} for row in csv.DictReader(handle)]
        start = (datetime.now() + timedelta(minutes=5)).replace(second=0, microsecond=0)
        note = {'name': story.VIP.name, 'meeting_point': 'vip_lounge', 'staff': story.STAFF, 'duration_min': 60}
        with httpx.Client(base_url=self.url, headers=self.auth, timeout=30.0) as client:
            client.put('/v1/products', json={'products': products}).raise_for_status()
            client.post(
                '/v1/admin/appointments',
                json={
                    'robot_id': story.ROBOT_ID,
                    'customer': story.VIP.customer_id,
                    'time': start.isoformat(),
                    'purpose': story.APPOINTMENT_PURPOSE,
                    'note': json.dumps(note, ensure_ascii=False),
                },
            ).raise_for_status()
        self.tell(
            'platform',
            f'store {story.STORE_ID} with robot {story.ROBOT_ID}, product master, members and the VIP '
            f'appointment of {story.VIP.name} at {start:%H:%M} ({story.APPOINTMENT_PURPOSE}) on the platform',
        )
        # The robot's sync before opening (overnight): the real downlink fills <data_dir>/platform;
        # the agent goes on from the version it holds (deltas).
        from retail_sync.downlink import StoreDownlink

        # A busy platform (a loaded machine) may answer slowly: the robot tries again, as its agent
        # would on its next sync, a bounded number of times.
        downlink = StoreDownlink(
            self.url, token_file.read_text().strip(), story.ROBOT_ID, self.downloads, timeout_s=60.0
        )
        try:
            for _attempt in range(3):
                outcome = downlink.sync()
                if not outcome.error:
                    break
                self.tell('sync', f'{outcome.error}; trying again')
        finally:
            downlink.close()
        if outcome.error or not (self.downloads / 'appointments.json').exists():
            raise DemoAbort(f'the robot could not fetch its data from the platform: {outcome.error}')
        self.tell('sync', f'store snapshot (version {outcome.version}) downloaded to the robot')

    def _enrol_faces(self) -> None:
        from retail_perception.gallery import new_key_text

        self.env['RETAILBOT_GALLERY_KEY'] = new_key_text()
        for customer in story.CUSTOMERS:
            if customer.customer_id:
                self.enrol(customer)

    def enrol(self, customer: story.Customer) -> None:
        """Enrol the customer's photos (with consent) in the robot's encrypted gallery."""
        command = (
            [
                _retailbot(),
                'faces',
                'enroll',
                '--db',
                str(self.data / 'faces'),
                '--id',
                customer.customer_id,
                '--name',
                customer.name,
                '--consent',
                f'demo-consent-{customer.key}',
                '--json',
            ]
            + (['--vip'] if customer.vip else [])
            + [str(FACES / p) for p in customer.enrol_photos]
        )
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise DemoAbort(f'enrolling {customer.label} failed: {done.stderr.strip().splitlines()[-1:]}')
        self.tell('gallery', f'{customer.label} enrolled with consent (encrypted gallery)')

    def _start_robot(self) -> str:
        from retail_ros.launch_file import load_launch
        from retail_ros.launcher import Launcher

        arguments = {
            'sim': 'true',
            'store': str(self.store),
            'data_dir': str(self.data),
            'base_link_path': str(self.out / 'base.pty'),
            'camera_replay': str(self.stage),
            'speech_in': 'false',
            'speech_out_dir': str(self.out / 'tts'),
            'customer_audio_dir': str(self.out / 'customer_audio'),
            'platform_url': self.url,
            'robot_id': story.ROBOT_ID,
            'ui_port': str(self.ui_port),
            'sim_drift': 'true',
            'sim_people': str(self.shoppers),
            # The incident recorder (the bumper stop's recording is uploaded in scenes/incident.py);
            # 15 s after an incident instead of a minute keeps the day short.
            'record_incidents': 'true',
            'incident_after_s': '15',
        }
        description = load_launch(REPO / 'launch' / 'robot.launch.yaml', arguments)
        # What respawns (the sync agent the demo kills mid-day) is what the shipped launch files say.
        self.robot_log = open(self.out / 'robot.log', 'w', encoding='utf-8')
        self.launcher = Launcher(description, out=self.robot_log, env=self.env, grace_s=5.0)

        def supervise() -> None:
            self.launch_code = self.launcher.run()

        self.launch_thread = threading.Thread(target=supervise, daemon=True)
        self.launch_thread.start()
        names = ', '.join(n.fully_qualified_name for n in description.nodes)
        self.tell('robot', f'starting {len(description.nodes)} nodes: {names} (log: robot.log)')
        self._node = DemoNode(self.rec, self.transcript, self._label)
        self.wait(self._ready, 90, 'every part of the robot to come up')
        self.screens = ScreenCamera(
            f'http://127.0.0.1:{self.ui_port}', self.out / 'screens', staff_password=STAFF_PASSWORD
        )
        self.tell('robot', f'screen at http://127.0.0.1:{self.ui_port}/ , staff console at /console')
        self.screenshot('attract', until_css='#attract-cards .card', timeout=20)
        return names

    def _ready(self) -> bool:
        if self.launch_code is not None:
            raise DemoAbort(
                f'the robot stopped during start-up (exit {self.launch_code}): '
                f'{self.launcher.refusal or "see robot.log"}'
            )
        graph = self.ros.node
        # The dialogue manager itself must be listening to customers (the screen subscribes to the
        # same topics and is often up first: a customer shown before the manager listens is never greeted).
        manager_listens = any(
            (info.node_namespace, info.node_name) == ('/dialogue', 'manager')
            for info in graph.get_subscriptions_info_by_topic('/perception/customer_events')
        )
        return (
            graph.count_publishers('/odom') > 0
            and manager_listens
            and self.ros.reset_safety.service_is_ready()
            and self.ros.sync_now.service_is_ready()
            and graph.count_publishers('/perception/customer_events') > 0
        )

    def kill_node(self, name: str, timeout: float, back: Callable[[], bool] = lambda: True) -> tuple[bool, int]:
        """kill -9 the process of node `name`; waits until the launch restarted it and `back()` holds.
        Returns (restarted, how many times it was restarted so far)."""
        child = next(c for c in self.launcher.children if c.node.fully_qualified_name == name)
        starts = child.starts
        if child.process is None or child.process.poll() is not None:
            raise DemoAbort(f'{name} is not running')
        os.killpg(child.process.pid, signal.SIGKILL)
        restarted = self.wait(lambda: child.starts > starts and back(), timeout, f'{name} back')
        return bool(restarted), child.starts - 1

    def sync_ready(self) -> bool:
        """The sync agent answers (its /sync/sync_now service is there)."""
        return self.ros.sync_now.service_is_ready()

    # -- the camera stage ----------------------------------------------------------------------
    def show(self, customer: story.Customer | None) -> None:
        """Put a customer in front of the camera (None: nobody there) by swapping its one photo."""
        import cv2
        import numpy as np

        frame = np.full((FRAME_H, FRAME_W, 3), 200, dtype=np.uint8)  # staged at 640x360, upscaled x2 by the camera
        if customer is None:
            cv2.putText(frame, 'store aisle', (240, 190), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (120, 120, 120), 2)
        else:  # the photo fitted into the picture, undistorted, as a person standing in front
            photo = cv2.imread(str(FACES / customer.photo), cv2.IMREAD_COLOR)
            if photo is None:
                raise DemoAbort(f'{FACES / customer.photo}: not a readable photo')
            scale = min(FRAME_W / photo.shape[1], FRAME_H / photo.shape[0])
            photo = cv2.resize(
                photo, (int(photo.shape[1] * scale), int(photo.shape[0] * scale)), interpolation=cv2.INTER_AREA
            )
            top, left = (FRAME_H - photo.shape[0]) // 2, (FRAME_W - photo.shape[1]) // 2
            frame[top : top + photo.shape[0], left : left + photo.shape[1]] = photo
        tmp = self.stage / '.next.jpg'
        cv2.imwrite(str(tmp), frame)
        tmp.replace(self.stage / 'frame.jpg')

    def drop_frames(self) -> None:
        """The camera's picture becomes unreadable (a broken frame), as a failing camera does."""
        tmp = self.stage / '.next.jpg'
        tmp.write_bytes(b'\xff\xd8 broken frame')
        tmp.replace(self.stage / 'frame.jpg')

    def enter(self, customer: story.Customer, timeout: float = 30.0, greeted: bool = True) -> tuple[int, Any]:
        """Show the customer to the camera; returns (track id, identified event or None).
        `greeted=False`: she is not waited for a greeting (someone greeted within the last half
        hour is not greeted again)."""
        mark = self.mark()
        self.show(customer)
        want_identity = bool(customer.customer_id)

        def seen():
            for event in self.since('customers', mark):
                if event.kind == LEFT or (want_identity and event.customer_id != customer.customer_id):
                    continue
                return event
            return None

        event = self.wait(seen, timeout, f'{customer.label} seen')
        if event is None and want_identity:  # seen but never named: still a customer to serve
            event = next((e for e in self.since('customers', mark) if e.kind != LEFT), None)
        if event is None:
            return 0, None
        self.tracks[event.track_id] = customer.label
        # A customer speaks once the robot has said hello (so the first reply to their words
        # is the answer, not the greeting).
        if greeted:
            self.reply(mark, 10, event.track_id, ('greet',))
        return event.track_id, event

    def walk_behind(self, customer: story.Customer) -> None:
        """A guided customer follows behind the robot, out of the forward camera's view (a person in
        front is an obstacle the guide waits for)."""
        self.tell(customer.label, '(follows behind the robot)')
        self.show(None)

    def leave(self, track: int, timeout: float = 20.0) -> bool:
        """The customer walks out of view; True once the camera reported them gone."""
        mark = {'customers': 0}
        self.show(None)
        return bool(
            self.wait(
                lambda: any(e.kind == LEFT and e.track_id == track for e in self.since('customers', mark)),
                timeout,
                'customer left',
            )
        )

    def _label(self, track_id: int) -> str:
        return self.tracks.get(track_id, f'track {track_id}')

    # -- customers' words --------------------------------------------------------------------
    def say(self, customer: story.Customer, text: str, track: int) -> None:
        """The customer says `text` to the robot (as the speech recogniser's final text)."""
        self.ros.speak(customer.label, text, track)

    def ask_and_see(self, customer: story.Customer, text: str, track: int, timeout: float = 20.0):
        """Say `text`; returns (the robot's reply, the SKUs it showed with it): the products of the
        recommendation event when the reply presents recommendations, else those of this turn's
        dialogue_turn event (the one with the reply's intent)."""
        mark = self.mark()
        self.say(customer, text, track)
        reply = self.reply(mark, timeout, track)
        if reply is None:
            return None, []
        if reply.intent == 'recommend':
            event = self.event(mark, 'recommendation', 5)
            return reply, list((event or {}).get('skus') or [])
        event = self.event(
            mark, 'dialogue_turn', 5, lambda d: d.get('intent') == reply.intent and bool(d.get('products'))
        )
        return reply, [p.get('sku') for p in (event or {}).get('products') or []]

    # -- waiting on the robot ------------------------------------------------------------------
    def wait(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        """predicate's first truthy result within timeout x --wait-scale seconds, else None."""
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

    def pause(self, seconds: float, what: str = 'a moment') -> None:
        self.wait(lambda: False, seconds, what)

    def check_interrupted(self) -> None:
        if self.interrupted.is_set():
            raise DemoAbort('interrupted (Ctrl-C)')

    def mark(self) -> Mark:
        """A bookmark of everything heard so far; `since(kind, mark)` is what came after it."""
        with self.rec.lock:
            return {
                'replies': len(self.rec.replies),
                'customers': len(self.rec.customers),
                'updates': len(self.rec.updates),
                'events': len(self.rec.events),
                'staff': len(self.rec.staff),
                'arrivals': len(self.rec.arrivals),
                'safety': len(self.rec.safety),
            }

    def since(self, kind: str, mark: Mark) -> list:
        with self.rec.lock:
            return list(getattr(self.rec, kind)[mark[kind] :])

    def first_since(self, kind: str, mark: Mark, timeout: float, what: str, match: Callable[[Any], bool]):
        """The first thing of `kind` heard after `mark` that matches, waiting up to `timeout`."""
        return self.wait(lambda: next((x for x in self.since(kind, mark) if match(x)), None), timeout, what)

    def reply(self, mark: Mark, timeout: float, track: int | None = None, intents: tuple[str, ...] = ()):
        """The robot's first reply (to `track`, with one of `intents`) after `mark`."""
        return self.first_since(
            'replies',
            mark,
            timeout,
            'a reply',
            lambda r: (track is None or r.track_id == track) and (not intents or r.intent in intents),
        )

    def reply_saying(
        self, mark: Mark, timeout: float, words: tuple[str, ...], track: int | None = None, what: str = 'a reply'
    ):
        """The robot's first reply after `mark` containing one of `words` (case-insensitive)."""
        return self.first_since(
            'replies',
            mark,
            timeout,
            what,
            lambda r: (track is None or r.track_id == track) and any(w.lower() in r.text.lower() for w in words),
        )

    def greeting(self, mark: Mark, track: int, name: str):
        """The robot's greeting of `track` naming `name`."""
        return self.first_since(
            'replies',
            mark,
            20,
            f'greeting {name}',
            lambda r: r.track_id == track and r.intent == 'greet' and name in r.text,
        )

    def event(self, mark: Mark, type_: str, timeout: float, check: Callable[[dict], bool] = lambda d: True):
        """The payload of the first interaction event of `type_` after `mark` that passes `check`."""

        def found():
            for event in self.since('events', mark):
                if event.type == type_:
                    data = json.loads(event.payload_json or '{}')
                    if check(data):
                        return data
            return None

        return self.wait(found, timeout, f'a {type_} event')

    def staff_page(self, mark: Mark, timeout: float, staff: str | None = None) -> dict | None:
        """The first staff request after `mark` (naming `staff`, if given)."""
        return self.first_since(
            'staff', mark, timeout, 'staff notified', lambda s: staff is None or s.get('staff') == staff
        )

    def arrived(self, zone: str, mark: Mark) -> bool:
        return zone in self.since('arrivals', mark)

    def guided(self, mark: Mark, customer: story.Customer, track: int, zone: str, retry: str, tries: int = 4) -> bool:
        """Wait for the arrival at `zone`; when guiding fails (e.g. the spot the bumper hit is still
        marked), the customer asks again, as people do."""
        for attempt in range(tries):
            if attempt:
                self.pause(5)
                mark = self.mark()
                self.say(customer, retry, track)
            if self._guide_done(mark, zone, 150):
                return True
        return False

    def _guide_done(self, mark: Mark, zone: str, timeout: float) -> bool:
        return bool(
            self.wait(
                lambda: self.arrived(zone, mark) or self.event(mark, 'guide', 0, lambda d: d.get('status') == 'failed'),
                timeout,
                f'guiding to {zone}',
            )
        ) and self.arrived(zone, mark)

    def safety_since(self, mark: Mark, timeout: float, what: str, match: Callable[[Any], bool]) -> bool:
        """True once a /navigation/safety message after `mark` matches."""
        return bool(self.first_since('safety', mark, timeout, what, match))

    def moved_since(self, mark: Mark, metres: float, timeout: float) -> bool:
        """True once the robot drove more than `metres` (odometry) after `mark`."""
        return self.wait(lambda: self._distance_since(mark) > metres, timeout, 'the robot moving') is not None

    def _distance_since(self, mark: Mark) -> float:
        with self.rec.lock:
            odom = list(self.rec.odom)
        if 'odom' not in mark:
            mark['odom'] = len(odom)
        segment = odom[mark['odom'] :]
        return sum(((b[0] - a[0]) ** 2 + (b[1] - a[1]) ** 2) ** 0.5 for a, b in zip(segment, segment[1:]))

    def camera_diagnostics(self) -> tuple[int | None, str]:
        """(level, message) of the camera's /diagnostics status; (None, why) before the first one."""
        with self.rec.lock:
            name = next((n for n in self.rec.diagnostics if 'camera' in n), '/perception/camera')
            level, message, _ = self.rec.diagnostics.get(name, (None, 'no camera diagnostics', {}))
        return level, message

    def data_update(self, mark: Mark, kind: str, timeout: float):
        """The sync's /sync/data_updates message of `kind` after `mark`."""
        return self.first_since('updates', mark, timeout, f'the {kind} downloaded', lambda u: u.kind == kind)

    # -- buttons --------------------------------------------------------------------------------
    def sync_now(self, timeout: float) -> str | None:
        """The staff console's "sync now" (/sync/sync_now)."""
        return self.ros.call(self.ros.sync_now, timeout)

    def press_reset(self, timeout: float = 20) -> str | None:
        """Staff press the base's safety reset (/navigation/reset_safety) until it answers."""
        return self.wait(lambda: self.ros.call(self.ros.reset_safety, 5), timeout, 'safety reset')

    def press_bumper(self, bits: int) -> None:
        """The base simulator's bumper bits (2: centre; 0: released), as a display stand hit."""
        from retail_navigation.pty_sim import send_control

        try:
            send_control(str(self.out / 'base.pty'), {'cmd': 'bumper', 'bits': bits})
        except OSError as exc:
            raise DemoAbort(f'the base simulator is gone ({exc}); see robot.log') from None

    # -- incident recordings ------------------------------------------------------------------
    def incident_files(self) -> list[str]:
        """The names of the finished incident recordings waiting on the robot (<data_dir>/incidents/*.mcap)."""
        return sorted(p.name for p in (self.data / 'incidents').glob('*.mcap'))

    def upload_incidents(self, timeout: float) -> str | None:
        """Ask the incident recorder to upload its recordings now (/incident_recorder/upload)."""
        return self.ros.call(self.ros.upload_incidents, timeout)

    def register_for_incidents(self, store: str) -> dict[str, str]:
        """Register the robot at `store` on the platform (its uploads belong to a store) and issue a
        store manager's token there, as `retailbot platform store add` / `token issue` do (the same
        storage code, in this process: starting CLI processes under a busy day's load took over a
        minute); returns the manager's headers."""
        from retail_platform.storage import Refused, Storage

        storage = Storage(str(self.out / 'platform.sqlite3'))
        try:
            try:
                storage.add_store(store, 'Demo store')
            except Refused:
                pass  # added earlier in the day
            try:
                storage.issue_robot_token(story.ROBOT_ID, store)
            except Refused:
                pass  # the robot already has its own token: it is registered
            token = storage.issue_staff_token('store_manager', 'store manager', [store])
        finally:
            storage.close()
        self.tell('platform', f'{story.ROBOT_ID} registered at store {store}; a store manager\'s token issued')
        return {'Authorization': f'Bearer {token}'}

    def till_receipts(self, receipts: list[dict]) -> str:
        """Send receipts as the store's till system does: JSON lines to the store's receipts
        endpoint with a store credential of its own (`token issue --role store_manager`);
        returns the platform's answer in words."""
        import httpx

        token = self._platform_cli(
            'token', 'issue', '--role', 'store_manager', '--store', story.STORE_ID, '--name', 'till system'
        ).strip()
        body = ''.join(json.dumps(r, ensure_ascii=False) + '\n' for r in receipts)
        try:
            answer = httpx.post(
                f'{self.url}/v1/stores/{story.STORE_ID}/receipts',
                content=body.encode(),
                headers={'Authorization': f'Bearer {token}', 'Content-Type': 'text/plain; charset=utf-8'},
                timeout=30.0,
            )
        except httpx.HTTPError as exc:
            raise DemoAbort(f'platform unreachable: {exc}') from None
        if answer.status_code != 200:
            return f'refused: {answer.status_code} {answer.text[:200]}'
        done = answer.json()
        return ', '.join(f'{k} {v}' for k, v in done.items() if not isinstance(v, (list, dict)))

    def _platform_get(self, path: str, headers: dict[str, str]) -> Any:
        import httpx

        try:
            return httpx.get(f'{self.url}{path}', headers=headers, timeout=30.0)
        except httpx.HTTPError as exc:
            raise DemoAbort(f'platform unreachable: {exc}') from None

    def incidents_on_platform(self, store: str, headers: dict[str, str]) -> list[dict]:
        """The store's incident recordings as its staff lists them on the platform ([] if refused: told)."""
        answer = self._platform_get(f'/v1/stores/{store}/incidents', headers)
        if answer.status_code != 200:
            self.tell('platform', f'incident list refused: {answer.status_code} {answer.text[:200]}')
            return []
        return answer.json()

    def download_incident(self, store: str, incident_id: int, headers: dict[str, str], save_as: str) -> bytes:
        """Download an incident recording as the store's staff does; kept in out/demo/<save_as>."""
        answer = self._platform_get(f'/v1/stores/{store}/incidents/{incident_id}', headers)
        if answer.status_code != 200:
            self.tell('platform', f'incident download refused: {answer.status_code} {answer.text[:200]}')
            return b''
        (self.out / save_as).write_bytes(answer.content)
        return answer.content

    def screenshot(self, name: str, **wait: Any) -> Path | str:
        """Save out/demo/screens/<name>.png of the robot's screen (or console); a failure is told, never
        fatal. Returns the file, or why it was not saved."""
        if self.screens is None:
            return 'the robot\'s screen is not up'
        saved = self.screens.shot(name, **wait)
        if not isinstance(saved, Path):
            self.tell('demo', f'no screenshot {name}: {saved}')
        return saved

    # -- the platform's and the robot's stores ------------------------------------------------
    def book(self, customer: story.Customer, purpose: str, staff: str, meeting_point: str) -> datetime:
        """Create a VIP appointment on the platform, five minutes from now."""
        import httpx

        start = (datetime.now() + timedelta(minutes=5)).replace(second=0, microsecond=0)
        note = {'name': customer.name, 'meeting_point': meeting_point, 'staff': staff, 'duration_min': 60}
        try:
            with httpx.Client(base_url=self.url, headers=self.auth, timeout=10.0) as client:
                client.post(
                    '/v1/admin/appointments',
                    json={
                        'robot_id': story.ROBOT_ID,
                        'customer': customer.customer_id,
                        'time': start.isoformat(),
                        'purpose': purpose,
                        'note': json.dumps(note, ensure_ascii=False),
                    },
                ).raise_for_status()
        except httpx.HTTPError as exc:
            raise DemoAbort(f'booking on the platform failed: {exc}') from None
        self.tell('platform', f'{customer.name} books {purpose} at {start:%H:%M} ({staff}, {meeting_point})')
        return start

    def robot_store(self):
        """The store as the robot's nodes read it (store folder + the platform's data)."""
        from retail_common.store import load_store

        return load_store(self.store, self.data)

    def appointments_of(self, customer: story.Customer) -> list:
        """The customer's appointments as the robot reads them now ([] and told when unreadable)."""
        from retail_common.store import StoreError

        try:
            return self.robot_store().appointments_for(customer.customer_id, datetime.now())
        except StoreError as exc:
            self.tell('demo', f'store not readable: {exc}')
            return []

    def backlog(self) -> int:
        """The sync agent's outbox backlog as its diagnostics report it."""
        with self.rec.lock:
            values = next((v for n, (_, _, v) in self.rec.diagnostics.items() if 'sync' in n), {})
        try:
            return int(values.get('backlog', 0))
        except ValueError:
            return 0

    def outbox_pending(self) -> int:
        from retail_sync.outbox import Outbox

        outbox = Outbox(self.data / 'sync' / 'outbox.sqlite3')
        try:
            return outbox.pending()
        finally:
            outbox.close()

    def event_sets(self) -> tuple[set[str], set[str], set[str]]:
        """Event ids: seen on the bus, on the platform, still in the robot's outbox."""
        with self.rec.lock:
            produced = {e.event_id for e in self.rec.events if e.event_id}
        uploaded: set[str] = set()
        if self.platform_db.startswith('postgresql') or Path(self.platform_db).exists():
            done = subprocess.run(
                [_retailbot(), 'platform', 'export', '--database', self.platform_db, '--robot-id', story.ROBOT_ID],
                capture_output=True,
                text=True,
                env=self.env,
                timeout=60,
            )
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

    def navigation_samples(self) -> tuple[list, list, int | None]:
        """(ground truth, believed poses, contacts): (stamp s, x, y) in the map, in time order."""
        with self.rec.lock:
            return sorted(self.rec.truth), sorted(self.rec.believed), self.rec.contacts

    def reported_poses(self) -> list[tuple[float, float, float]]:
        """(stamp s, x, y) the localisation reported on /diagnostics while tracking, in time order."""
        with self.rec.lock:
            return sorted(self.rec.reported)

    def localisation_state(self) -> str:
        """The localisation's state as its last /diagnostics says ('' before the first)."""
        with self.rec.lock:
            name = next((n for n in self.rec.diagnostics if n.startswith('navigation/localization')), '')
            return self.rec.diagnostics[name][2].get('state', '') if name else ''

    def ground_truth_path(self) -> list[tuple[float, float]]:
        with self.rec.lock:
            return [(x, y) for _, x, y in sorted(self.rec.truth)][::10]

    def driven_path(self) -> list[tuple[float, float]]:
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

    def visited(self) -> list[str]:
        with self.rec.lock:
            return list(self.rec.arrivals)

    def staff_pages(self) -> int:
        with self.rec.lock:
            return len(self.rec.staff)
