"""Node /ui/server: the robot's touch screen (/) and the staff console (/console) over HTTP.

Thin: it turns the graph's messages into `UiModel` inputs and carries out what the pages ask
(`RobotActions`): a touch becomes an Utterance on /dialogue/utterances (the same path as speech),
a staff reset calls /navigation/reset_safety, an enrolment (after the customer agreed on the
robot's screen) calls /perception/enroll_face, the members list and a deletion call
/perception/list_members and /perception/delete_member: this node never opens the gallery and
holds no gallery key. The web server (uvicorn) runs on its own thread; binds to `host`:`port`
(loopback by default); uvicorn's own proxy-header handling is off (retail_common/web_guard.py decides whom to trust).

The robot's map pose comes from `/navigation/pose` (localisation) once it is heard; before that
it is the guide's assumption: the dock zone's pose composed with `/odom`.
"""
from __future__ import annotations

import json
import math
import os
import secrets
import threading
from pathlib import Path

import uvicorn
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseArray, PoseWithCovarianceStamped
from nav_msgs.msg import OccupancyGrid, Odometry, Path as PathMsg
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import BatteryState, Image
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from retail_ros.qos import LATCHED
from retail_common import names
from retail_ros.node_support import (declare_params, diagnostic_status, live_store_for, main_for,
                                        watch_store)
from retail_ros.params import ParamSpec
from retail_common.store import Store
from retail_interfaces.msg import (BaseSafety, CustomerEvent, InteractionEvent, PlaceArrival, RobotReply, StaffRequest,
                                   Utterance)
from retail_interfaces.srv import EnrollFace

from .auth import AuthConfigError, StaffAuth, load_secret
from retail_common.names import DELETE_MEMBER, ENROLL_FACE, LIST_MEMBERS
from retail_interfaces.srv import DeleteMember, ListMembers
from retail_common.web_guard import Site
from .map_image import MapImageError, grid_to_png, map_info
from .model import UiModel
from .streams import DEFAULT_BUDGETS, PUBLIC, SCREEN, STAFF, Budget, StreamSlots
from .web import create_app, server_config

DEFAULT_STORE = str(Path(__file__).resolve().parents[3] / 'config' / 'stores' / 'demo')
DEFAULT_DATA_DIR = str(Path(os.environ.get('RETAILBOT_DATA_DIR') or Path.home() / '.local/share/retailbot'))
SPECS = [
    ParamSpec('store_dir', DEFAULT_STORE, 'Store folder (catalog.csv, zones.yaml, history.csv, appointments.json).'),
    ParamSpec('data_dir', DEFAULT_DATA_DIR, "The robot's data folder (the platform's store data in platform/, staff "
                                            "secret in ui/, member gallery in faces/)."),
    ParamSpec('host', '127.0.0.1', 'Address the screen and console listen on (0.0.0.0 or a LAN address to open them).'),
    ParamSpec('port', 8090, 'TCP port of the screen and the console.', min=1, max=65535),
    ParamSpec('staff_secret_file', '', "Staff password file ('' = <data_dir>/ui/staff_secret)."),
    ParamSpec('platform_token_file', '', "The platform token file, refused as a staff secret ('' = <data_dir>/sync/token)."),
    ParamSpec('allowed_hosts', [''], 'Host names (besides 127.0.0.1, localhost and host) the pages answer to, '
                                      'e.g. the robot\'s LAN name; any other Host header gets 421.'),
    ParamSpec('trusted_proxies', [''], 'Addresses of reverse proxies whose X-Forwarded-For is believed '
                                        '(none by default: the TCP peer is the client).'),
    ParamSpec('face_recognition', True, 'Show the face recognition notice (false when perception runs anonymous).'),
    ParamSpec('image_topic', '/perception/image_raw', 'Camera frames for the enrolment preview.'),
    ParamSpec('login_max_failures', 5, 'Wrong passwords per address within login_window_s before a lockout.', min=1, max=100),
    ParamSpec('login_window_s', 300.0, 'Rate-limit window for wrong passwords (s).', min=10.0, max=86400.0),
    ParamSpec('session_ttl_s', 28800.0, 'A staff login lasts this long (s).', min=60.0, max=604800.0),
    ParamSpec('max_rate_hz', 10.0, 'Most live updates per second sent to a page.', min=0.5, max=50.0),
    ParamSpec('public_streams', DEFAULT_BUDGETS[PUBLIC].total, 'Live-update connections open to anyone at once '
              '(the robot\'s screen and staff have their own).', min=1, max=1000),
    ParamSpec('public_streams_per_client', DEFAULT_BUDGETS[PUBLIC].per_client, 'Live-update connections per '
              'address in the public budget.', min=1, max=100),
    ParamSpec('staff_streams', DEFAULT_BUDGETS[STAFF].total, 'Live-update connections of staff sessions at once.',
              min=1, max=100),
    ParamSpec('public_stream_max_s', 300.0, 'An anonymous live-update connection is closed after this long '
              '(the page reconnects by itself).', min=10.0, max=86400.0),
    ParamSpec('screen_token_file', '', "Where the per-boot secret of the robot's own screen is written (mode 600; "
              "'' = <data_dir>/ui/screen_token); the kiosk opens /?screen=<its content>."),
    ParamSpec('consent_timeout_s', 120.0, 'How long an enrolment waits for the customer to agree on the screen (s).',
              min=10.0, max=900.0),
    ParamSpec('service_timeout_s', 5.0, 'Longest wait for reset_safety / enroll_face answers (s).', min=0.5, max=60.0),
]
EVENTS_QOS = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
CUSTOMER_KINDS = {CustomerEvent.APPEARED: 'appeared', CustomerEvent.IDENTIFIED: 'identified',
                  CustomerEvent.APPROACHING: 'approaching', CustomerEvent.LEFT: 'left'}


def _yaw(q) -> float:
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def _compose(base, local):
    bx, by, bt = base
    lx, ly, lt = local
    c, s = math.cos(bt), math.sin(bt)
    return bx + c * lx - s * ly, by + s * lx + c * ly, bt + lt


class UiServerNode(Node):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault('namespace', 'ui')
        super().__init__('server', **kwargs)
        p = self.params = declare_params(self, SPECS)
        data = Path(p.data_dir).expanduser()
        # The store model every node uses: the store folder with the platform's data overlaid,
        # reloaded when the sync downlink reports new data.
        self.live_store = live_store_for(self, p.store_dir, str(data))
        store = self.live_store.current()
        self.model = UiModel(store, face_recognition=p.face_recognition)
        self.dock = self._dock_of(store)
        secret_file = p.staff_secret_file or str(data / 'ui' / 'staff_secret')
        platform_token = p.platform_token_file or data / 'sync' / 'token'
        try:
            secret = load_secret(secret_file, platform_token)
        except AuthConfigError as exc:
            secret = None
            self.get_logger().warning(f'{exc}; the staff console refuses every login until then (a password '
                                      'set while the robot runs is used at once)')
        # The file is watched: a password changed or set while the robot runs is used at once and
        # ends every session of the old one.
        self.auth = StaffAuth(secret, max_failures=p.login_max_failures, window_s=p.login_window_s,
                              session_ttl_s=p.session_ttl_s, secret_file=secret_file,
                              platform_token_file=platform_token)
        self._image: Image | None = None

        self.utterance_pub = self.create_publisher(Utterance, '/dialogue/utterances', 10)
        self.reset_client = self.create_client(Trigger, '/navigation/reset_safety')
        self.enroll_client = self.create_client(EnrollFace, ENROLL_FACE)
        self.list_client = self.create_client(ListMembers, LIST_MEMBERS)
        self.delete_client = self.create_client(DeleteMember, DELETE_MEMBER)
        sub = self.create_subscription
        sub(CustomerEvent, '/perception/customer_events', self._on_customer, 50)
        sub(RobotReply, '/dialogue/replies', self._on_reply, 50)
        sub(Utterance, '/dialogue/utterances', self._on_utterance, 50)
        sub(InteractionEvent, '/sync/interaction_events', self._on_event, EVENTS_QOS)
        sub(StaffRequest, names.STAFF_REQUESTS, self._on_staff_request, 50)
        sub(PlaceArrival, '/navigation/arrivals', self._on_arrival, 10)
        sub(PathMsg, '/navigation/plan', self._on_plan, LATCHED)
        sub(PoseWithCovarianceStamped, '/navigation/pose', self._on_pose, 10)
        sub(Odometry, '/odom', self._on_odom, 10)
        sub(PoseArray, '/perception/people', self._on_people, 10)
        sub(OccupancyGrid, '/map', self._on_map, LATCHED)
        sub(BaseSafety, '/navigation/safety', self._on_safety, LATCHED)
        sub(BatteryState, '/navigation/battery', self._on_battery, 10)
        sub(DiagnosticArray, '/diagnostics', self._on_diagnostics, 50)
        sub(Image, p.image_topic, self._on_image, qos_profile_sensor_data)
        watch_store(self, self.live_store, self._on_store_swap)

        # The robot's own screen proves itself with a secret made at each start and written only
        # to the robot's disk: the kiosk reads it, no page and no network client ever gets it.
        self.screen_token_file = Path(p.screen_token_file or data / 'ui' / 'screen_token')
        screen_secret = secrets.token_urlsafe(32)
        self._write_screen_token(screen_secret)
        site = Site.make(p.host, allowed_hosts=[h for h in p.allowed_hosts if h],
                         trusted_proxies=[a for a in p.trusted_proxies if a])
        slots = StreamSlots({SCREEN: DEFAULT_BUDGETS[SCREEN],
                             STAFF: Budget(p.staff_streams, DEFAULT_BUDGETS[STAFF].per_client),
                             PUBLIC: Budget(p.public_streams, p.public_streams_per_client)})
        self.app = create_app(self.model, self, self.auth, max_rate_hz=p.max_rate_hz,
                              audit=lambda line: self.get_logger().warning(line), site=site, slots=slots,
                              public_stream_max_s=p.public_stream_max_s, consent_ttl_s=p.consent_timeout_s,
                              screen_secret=screen_secret)
        self.server = uvicorn.Server(server_config(self.app, p.host, p.port))
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_timer(2.0, self._publish_diagnostics)
        # The console's session state for other nodes (the Foxglove camera view blurs faces unless
        # a staff member is logged in): latched, sent on change, checked every 0.5 s (expiry too).
        self.staff_session_pub = self.create_publisher(Bool, names.STAFF_SESSION, LATCHED)
        self._staff_logged_in: bool | None = None
        self.create_timer(0.5, self._publish_staff_session)
        self.server_thread = threading.Thread(target=self._serve, name='ui-http', daemon=True)
        self.server_thread.start()
        self._announce = self.create_timer(0.2, self._announce_when_serving)

    def _write_screen_token(self, secret: str) -> None:
        path = self.screen_token_file
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, 'w', encoding='utf-8') as handle:
                handle.write(secret + '\n')
            os.replace(tmp, path)
        except OSError as exc:
            self.get_logger().error(f'cannot write the screen token {path}: {exc.strerror}; customers cannot '
                                    'consent to face enrolment on the screen until it can be written')

    def _announce_when_serving(self) -> None:
        if self.server.started or not self.server_thread.is_alive():
            self._announce.cancel()
        if self.server.started:
            p = self.params
            self.get_logger().info(f'screen at http://{p.host}:{p.port}/ , staff console at http://{p.host}:{p.port}/console')

    def _serve(self) -> None:
        try:
            self.server.run()
        except SystemExit:          # uvicorn exits when the port cannot be bound
            pass
        if not self.server.started:
            self.get_logger().error(f'cannot serve on {self.params.host}:{self.params.port} '
                                    '(address in use or not available): screen and console are down')

    def _publish_staff_session(self) -> None:
        logged_in = self.auth.logged_in()
        if logged_in != self._staff_logged_in:
            self._staff_logged_in = logged_in
            self.staff_session_pub.publish(Bool(data=logged_in))

    def _publish_diagnostics(self) -> None:
        p = self.params
        values = {'url': f'http://{p.host}:{p.port}/', 'live_pages': self.app.state.slots.open_count(),
                  'staff_login': 'configured' if self.auth.secret is not None else 'no staff password'}
        if not self.server.started:
            level, message = DiagnosticStatus.ERROR, f'not serving on {p.host}:{p.port}'
        elif self.auth.secret is None:
            level, message = DiagnosticStatus.WARN, 'screen up; staff console locked: no staff password set'
        else:
            level, message = DiagnosticStatus.OK, f'screen and console on {p.host}:{p.port}'
        array = DiagnosticArray(status=[diagnostic_status('ui: server', level, message, values)])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)

    @staticmethod
    def _dock_of(store: Store) -> tuple[float, float, float]:
        return tuple(store.zones['dock'].pose) if 'dock' in store.zones else (0.0, 0.0, 0.0)

    def _on_store_swap(self, store: Store) -> None:
        """New catalog, promotions or appointments from the platform: shown without a restart."""
        self.model.set_store(store)
        self.dock = self._dock_of(store)

    # -- graph -> model ----------------------------------------------------------------------
    def _on_customer(self, msg: CustomerEvent) -> None:
        self.model.on_customer(CUSTOMER_KINDS.get(msg.kind, 'appeared'), msg.track_id, msg.customer_id,
                               msg.display_name, msg.vip)

    def _on_reply(self, msg: RobotReply) -> None:
        self.model.on_reply(msg.text, msg.language, msg.intent, msg.track_id)

    def _on_utterance(self, msg: Utterance) -> None:
        if msg.is_final and msg.text.strip():
            self.model.on_heard(msg.text, msg.language, msg.track_id)

    def _on_event(self, msg: InteractionEvent) -> None:
        try:
            payload = json.loads(msg.payload_json or '{}')
        except ValueError:
            self.get_logger().warning(f'interaction event {msg.event_id} ({msg.type}) has bad JSON: not shown')
            return
        if isinstance(payload, dict):
            self.model.on_interaction(msg.type, payload)

    def _on_staff_request(self, msg: StaffRequest) -> None:
        entry = self.model.on_staff_request({
            'reason': msg.reason[:200], 'language': msg.language[:8], 'appointment_id': msg.appointment_id[:128],
            'meeting_point': msg.meeting_point[:128], 'staff': msg.staff[:200]})
        self.get_logger().info(f"staff request {entry['id']}: {entry['reason']}")

    def _on_arrival(self, msg: PlaceArrival) -> None:
        self.model.on_arrival(msg.zone, msg.narration_zh, msg.stop_index, msg.stop_count, msg.narration_en)

    def _on_plan(self, msg: PathMsg) -> None:
        self.model.on_plan([(ps.pose.position.x, ps.pose.position.y) for ps in msg.poses[:2000]])

    def _on_pose(self, msg: PoseWithCovarianceStamped) -> None:
        pose = msg.pose.pose
        self.model.on_pose(pose.position.x, pose.position.y, _yaw(pose.orientation), 'localization')

    def _on_odom(self, msg: Odometry) -> None:
        p = msg.pose.pose
        x, y, theta = _compose(self.dock, (p.position.x, p.position.y, _yaw(p.orientation)))
        self.model.on_pose(x, y, theta, 'odometry')

    def _on_people(self, msg: PoseArray) -> None:
        points = [(q.position.x, q.position.y) for q in msg.poses]
        if msg.header.frame_id != 'map':
            robot = self.model.pose
            if robot is None:
                return
            points = [_compose(robot, (x, y, 0.0))[:2] for x, y in points]
        self.model.on_people(points)

    def _on_map(self, msg: OccupancyGrid) -> None:
        info = msg.info
        try:
            png = grid_to_png(msg.data, info.width, info.height)
        except MapImageError as exc:
            self.get_logger().error(f'/map not shown: {exc}')
            return
        self.model.on_map(map_info(info.width, info.height, info.resolution,
                                   info.origin.position.x, info.origin.position.y), png)

    def _on_safety(self, msg: BaseSafety) -> None:
        flags = {k: getattr(msg, k) for k in ('bumper_left', 'bumper_centre', 'bumper_right', 'cliff_left',
                                              'cliff_centre', 'cliff_right', 'wheel_drop_left', 'wheel_drop_right')}
        self.model.on_safety(msg.latched, msg.reason, flags)

    def _on_battery(self, msg: BatteryState) -> None:
        self.model.on_battery(msg.percentage, msg.voltage,
                              msg.power_supply_status == BatteryState.POWER_SUPPLY_STATUS_CHARGING)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        self.model.on_diagnostics([(s.name, s.level[0] if isinstance(s.level, bytes) else int(s.level), s.message,
                                    {kv.key: kv.value for kv in s.values}) for s in msg.status])

    def _on_image(self, msg: Image) -> None:
        self._image = msg                 # converted only when staff look at the preview

    # -- RobotActions (called from the web server's threads) ------------------------------
    def say(self, text: str, language: str, track_id: int) -> None:
        msg = Utterance(text=text, language=language, is_final=True, confidence=1.0, track_id=track_id)
        now = self.get_clock().now().to_msg()
        msg.header.stamp, msg.start, msg.end = now, now, now
        msg.header.frame_id = 'touch'
        self.utterance_pub.publish(msg)

    def _call(self, client, request, what: str):
        if not client.wait_for_service(timeout_sec=min(1.0, self.params.service_timeout_s)):
            return None, f'{what} is not available (is that part of the robot running?)'
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(self.params.service_timeout_s):
            client.remove_pending_request(future)
            return None, f'{what} did not answer within {self.params.service_timeout_s:g} s'
        return future.result(), ''

    def reset_safety(self) -> tuple[bool, str]:
        response, error = self._call(self.reset_client, Trigger.Request(), 'the base (/navigation/reset_safety)')
        return (False, error) if response is None else (response.success, response.message)

    def enroll(self, customer_id: str, display_name: str, vip: bool, consent_ref: str, track_id: int) -> tuple[bool, str]:
        request = EnrollFace.Request(track_id=track_id, customer_id=customer_id, display_name=display_name, vip=vip,
                                     consent_ref=consent_ref)
        response, error = self._call(self.enroll_client, request, f'face enrolment ({ENROLL_FACE})')
        return (False, error) if response is None else (response.success, response.message)

    def preview_jpeg(self) -> bytes | None:
        msg = self._image
        if msg is None:
            return None
        import cv2
        from retail_perception.image_convert import ImageConversionError, from_image_msg
        try:
            frame = from_image_msg(msg)
        except ImageConversionError as exc:
            self.get_logger().warning(f'camera frame not shown: {exc}', throttle_duration_sec=30.0)
            return None
        if msg.encoding.startswith('rgb'):
            frame = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        ok, jpeg = cv2.imencode('.jpg', frame, [cv2.IMWRITE_JPEG_QUALITY, 70])
        return jpeg.tobytes() if ok else None

    def members(self) -> list[dict]:
        """The members as perception lists them (this node never opens the gallery)."""
        from datetime import datetime
        response, error = self._call(self.list_client, ListMembers.Request(), f'the member list ({LIST_MEMBERS})')
        if response is None or not response.success:
            return [{'error': error or response.message}]
        iso = lambda t: datetime.fromtimestamp(t).isoformat(timespec='minutes') if t > 0 else 'unknown'  # noqa: E731
        return [{'customer_id': m.customer_id, 'name': m.display_name, 'vip': m.vip, 'consent_ref': m.consent_ref,
                 'photos': m.photos, 'enrolled_at': iso(m.enrolled_at), 'last_seen': iso(m.last_seen)}
                for m in response.members]

    def delete_member(self, customer_id: str) -> tuple[bool, str]:
        response, error = self._call(self.delete_client, DeleteMember.Request(customer_id=customer_id),
                                     f'member deletion ({DELETE_MEMBER})')
        return (False, error) if response is None else (response.success, response.message)

    def destroy_node(self) -> None:
        try:
            if self.screen_token_file.read_text(encoding='utf-8').strip() == self.app.state.screen_secret:
                self.screen_token_file.unlink()
        except OSError:
            pass
        self.app.state.close()
        self.server.should_exit = True
        self.server_thread.join(timeout=5.0)
        super().destroy_node()


main = main_for(UiServerNode)
