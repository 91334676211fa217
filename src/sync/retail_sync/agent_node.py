"""/sync/agent: interaction events from every area into the outbox; uploads and downloads.

One event path: the `/sync/record_events` service (RecordEvents) is the only way an event is
stored. It is answered once the events are on disk (an event_id already stored with the same
content is acknowledged again; one reused for other content is refused with the reason), and
publishers use it through `EventSender`, so nothing is lost while this node restarts, and the
outbox's per-robot sequence numbers have no gaps. `/sync/interaction_events` is for observers
(the screen, the store day); this node does not store it.

The agent never stops the robot over its outbox: a damaged outbox file is set aside (renamed),
its readable events salvaged into a fresh one, and diagnostics say ERROR with what happened;
an outbox that cannot be opened at all (permissions, disk) is retried every few seconds while
the senders keep their events. A full disk or a locked file leaves the events unacknowledged
(their senders keep them and ask again) and is reported on diagnostics.

Fleet (retail_sync.fleet / fleet_link): a heartbeat with the robot's health summary (folded
from `/diagnostics`, the base's safety state, the battery and the disk) goes to the platform
every `fleet_period_s` and on change; staff requests (`/dialogue/staff_requests`) go up as
staff calls; staff's answers and typed words come back and are published on
`/dialogue/replies` (intent staff_answer / staff_words: the TTS speaks them, the screen marks
them as staff's); a desired state the heartbeat's answer names is fetched, checked and swapped
in (`DataUpdate` kind `desired`: `<data_dir>/desired.json`, which the store model of every node
overlays: rolled-out promotions are what the dialogue answers "any promotions?" with, from the
next turn); its content is first checked against the store (`store_dir`) with the store files'
rules, and its live settings are first set on the running nodes as rcl
parameters (retail_sync.live_settings: each node checks them with its own file's rules, all or
nothing across nodes, a refusal keeps the last good version and is reported).
`fleet_period_s` 0 turns the fleet link off.

Downlink (retail_sync.downlink.StoreDownlink, the one downlink): every `downlink_interval_s`
and on `sync_now` the agent asks the platform for what changed in its store since the version
it holds (a snapshot the first time, or when the platform says so), applies it atomically to
`<data_dir>/downlink.sqlite3` and the files the nodes read, and publishes a DataUpdate per
rewritten file (kind catalog / promotions / appointments / histories, version = the downlink
version). A bad answer is one line on the log and `downlink_error` on diagnostics; the last good
version stays. A member recognised by the faces node (`/perception/customer_events`, IDENTIFIED)
whose record this robot does not hold is fetched on demand (at most once per
`member_fetch_retry_s` per member) and cached; the cached copy serves while the platform is
away. A member the platform says to forget is erased from the member cache, from the face
gallery (the faces node's DeleteMember service, `delete_member_service`) and from the outbox
(waiting and quarantined events naming them), then confirmed to the platform by id; until then
it stays pending on disk and is tried again within seconds (FORGET_RETRY_S, doubling up to
FORGET_RETRY_MAX_S; `forget_error` on diagnostics).

Thin adapter: the outbox, uploader, downlink and fleet cores do the work. Uploads and downloads run
on their own threads (network waits never block the executor); `sync_now` only wakes them.
"""
from __future__ import annotations

import json
import math
import shutil
import sqlite3
import threading
import time
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseWithCovarianceStamped
from sensor_msgs.msg import BatteryState
from rclpy.node import Node
from std_srvs.srv import Trigger

from retail_ros.qos import REPLIES_QOS, latched
from retail_common import names
from retail_ros.node_support import declare_params, diagnostic_status, main_for
from retail_ros.params import ParamSpec
from retail_interfaces.msg import (BaseSafety, CustomerEvent, DataUpdate, InteractionEvent,
                                   RobotReply, StaffRequest)
from retail_interfaces.srv import DeleteMember, RecordEvents
from retail_sync.downlink import StoreDownlink
from retail_sync.fleet import HeartbeatCore
from retail_sync.fleet_link import FleetLink, LinkError, call_from_request, place_of, staff_replies
from retail_sync import live_settings
from retail_sync.outbox import (Limits, Outbox, OutboxCorrupt, OutboxError, OutboxUnavailable,
                                open_or_salvage, prepare_event, salvage)
from retail_sync.stream import link_stream, stream_file_for
from retail_sync.transport import ROBOT_ID, valid_robot_id
from retail_sync.uploader import REFUSED, Uploader, UploaderConfig

PARAMS = [
    ParamSpec('robot_id', 'robot-01', 'this robot\'s id on the platform', read_only=True),
    ParamSpec('platform_url', 'http://127.0.0.1:8080', 'platform base URL (http/https)'),
    ParamSpec('token', '', 'bearer token (or token_file)'),
    ParamSpec('token_file', '', 'file holding the bearer token (preferred over token)'),
    ParamSpec('ca_file', '', 'https: CA bundle to verify the platform with'),
    ParamSpec('stream_file', '', 'where this robot\'s sequence numbers are remembered across '
              'outbox resets (default: sync-stream.<robot_id>.json beside token_file)'),
    ParamSpec('outbox', '/var/lib/retailbot/sync/outbox.sqlite3', 'outbox SQLite file'),
    ParamSpec('data_dir', '/var/lib/retailbot/data', 'where downloaded data is swapped in'),
    ParamSpec('batch_size', 500, 'events per upload request', min=1, max=10000),
    ParamSpec('batch_delay_s', 2.0, 'longest a partial batch waits before it is sent',
              min=0.0, max=600.0),
    ParamSpec('backoff_max_s', 60.0, 'longest wait between upload retries', min=0.1, max=3600.0),
    ParamSpec('refused_retry_s', 300.0, 'after the platform refused uploads (token, URL, '
              'certificate: a revoked token, a proxy\'s 403 or 404 during a deploy) or while no '
              'token is installed: re-read the token file and try again after this many seconds '
              '(/sync/sync_now: at once)', min=1.0, max=86400.0),
    ParamSpec('downlink_interval_s', 300.0, 'seconds between downlink checks', min=1.0),
    ParamSpec('delete_member_service', names.DELETE_MEMBER, 'service that erases a member\'s '
              'face data when the platform says to forget them (empty: this robot keeps no face '
              'gallery)'),
    ParamSpec('member_fetch_retry_s', 300.0, 'a recognised member the platform did not give '
              '(away, unknown) is asked for again after this many seconds', min=1.0),
    ParamSpec('max_events', 1000000, 'outbox limit (oldest dropped beyond it)', min=100),
    ParamSpec('max_age_h', 720.0, 'outbox age limit in hours of robot running time (older '
              'dropped; never judged by the wall clock)', min=1.0),
    ParamSpec('warn_fraction', 0.8, 'alarm from this fraction of a limit', min=0.1, max=1.0),
    ParamSpec('diagnostics_period_s', 2.0, 'diagnostics publishing period', min=0.1),
    ParamSpec('fleet_period_s', 10.0, 'heartbeat period to the platform (0: no fleet link)',
              min=0.0, max=3600.0),
    ParamSpec('software_version', '', 'software version reported in heartbeats (default: the '
              'installed retail_sync version)'),
    ParamSpec('incident_upload_service', '/incident_recorder/upload', 'the incident recorder\'s '
              'upload service (std_srvs/Trigger), called when the platform asks for the recordings'),
    ParamSpec('store_dir', '', 'the store folder the robot\'s nodes read (zones.yaml, catalog.csv): '
              'a rolled-out desired state\'s content is checked against it with the store files\' '
              'rules before it is swapped in (empty: checked by the desired-state rules only)'),
]
# Latched: a node that starts (or restarts) after an update still hears which data is current.
UPDATES_QOS = latched(10)
OUTBOX_RETRY_S = 5.0
FORGET_RETRY_S = 5.0          # an unfinished forget is tried again after this, doubling ...
FORGET_RETRY_MAX_S = 120.0    # ... up to this (never later than the next downlink check)
DELETE_MEMBER_WAIT_S = 5.0    # the faces node's delete service, just started, is waited for this long
NO_SUCH_MEMBER = 'no such member'   # DeleteMember's answer for an id the gallery does not hold (faces_node)


def sync_health(status: dict, outbox_error: str | None, salvage_note: str | None, auth_failed: bool,
                upload_error: str | None) -> tuple[bytes, str]:
    """(diagnostic level, message) of the agent from the outbox status and the uploader's state,
    the worst first: the outbox, a salvage, reused sequence numbers, a refused token, the outbox's
    alarm, the platform away."""
    if outbox_error:
        return DiagnosticStatus.ERROR, outbox_error
    if salvage_note:
        return DiagnosticStatus.ERROR, salvage_note
    if status['seq_reused']:
        return DiagnosticStatus.ERROR, status['alarm']
    if auth_failed:
        return DiagnosticStatus.ERROR, f'uploads stopped: {upload_error or "platform refused the token"}'
    if status['alarm']:
        return DiagnosticStatus.WARN, status['alarm']
    if upload_error:
        return DiagnosticStatus.WARN, f'platform away, {status["pending"]} waiting'
    return DiagnosticStatus.OK, f'{status["pending"]} events waiting'


class SyncAgent(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__('agent', **kwargs)
        self.p = declare_params(self, PARAMS)
        self.limits = Limits(self.p.max_events, self.p.max_age_h * 3600.0, self.p.warn_fraction)
        self.token = self._read_token()
        self.outbox: Outbox | None = None
        self.uploader: Uploader | None = None
        self.outbox_error: str | None = None      # the outbox cannot be used now (ERROR)
        self.salvage_note: str | None = None      # a damaged outbox was set aside (ERROR)
        self._outbox_lock = threading.Lock()
        self.delete_member = (self.create_client(DeleteMember, self.p.delete_member_service)
                              if self.p.delete_member_service else None)
        self.downlink = StoreDownlink(self.p.platform_url, self.token, self.p.robot_id,
                                      self.p.data_dir, ca_file=self.p.ca_file,
                                      erase_face=self._erase_face, erase_local=self._erase_local)
        self.last_downlink_error: str | None = None
        # written by the downlink thread only (its SQLite connection is not shared)
        self._downlink_values: dict = {'downlink_version': 'none', 'forget_pending': 0}
        self._members_lock = threading.Lock()
        self._members_wanted: set[str] = set()        # recognised, to look up on the downlink thread
        self._members_asked: dict[str, float] = {}    # member id -> when last asked (monotonic)
        self._stop = threading.Event()
        self._wake_upload = threading.Event()
        self._wake_downlink = threading.Event()
        self.updates = self.create_publisher(DataUpdate, 'data_updates', UPDATES_QOS)
        self.diagnostics = self.create_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        self._open_outbox()
        self.create_service(RecordEvents, names.RECORD_EVENTS, self._on_record_events)
        self.create_service(Trigger, 'sync_now', self._on_sync_now)
        self.create_subscription(CustomerEvent, names.CUSTOMER_EVENTS, self._on_customer, 50)
        self.create_timer(self.p.diagnostics_period_s, self._publish_diagnostics)
        self._threads = [threading.Thread(target=self._upload_loop, name='sync-upload', daemon=True),
                         threading.Thread(target=self._downlink_loop, name='sync-downlink',
                                          daemon=True)]
        self._wake_fleet = threading.Event()
        self.fleet_link: FleetLink | None = None
        self.last_fleet_error: str | None = None
        if self.p.fleet_period_s > 0:
            self._start_fleet()
        for thread in self._threads:
            thread.start()
        waiting = self._pending()
        self.get_logger().info(f'sync agent for robot {self.p.robot_id}: outbox {self.p.outbox} '
                               f'({waiting} waiting), platform {self.p.platform_url}, '
                               f'data in {self.p.data_dir}')

    # --- the outbox ----------------------------------------------------------------------------
    def _open_outbox(self, damaged: str | None = None) -> Outbox | None:
        """The outbox, opened (or salvaged when damaged) on first use; None while it cannot be
        used (reported once per distinct reason, retried every OUTBOX_RETRY_S)."""
        with self._outbox_lock:
            if self.outbox is not None and damaged is None:
                return self.outbox
            try:
                if damaged is not None:
                    if self.outbox is not None:
                        self.outbox.close()
                        self.outbox = None
                    outbox, report = salvage(self.p.outbox, self.limits, reason=damaged)
                else:
                    outbox, report = open_or_salvage(self.p.outbox, self.limits)
            except (OutboxUnavailable, OSError) as exc:
                message = str(exc) if isinstance(exc, OutboxUnavailable) else \
                    f'outbox {self.p.outbox}: {exc.strerror or exc}'
                if message != self.outbox_error:
                    self.get_logger().error(f'{message}; events are kept by their senders and '
                                            f'the outbox is tried again every {OUTBOX_RETRY_S:.0f} s')
                self.outbox_error = message
                return None
            if report is not None:
                self.salvage_note = report.message()
                self.get_logger().error(self.salvage_note)
            stream_file = self.p.stream_file or (
                str(stream_file_for(self.p.token_file, self.p.robot_id))
                if self.p.token_file else '')
            if stream_file:
                try:
                    note = link_stream(outbox, stream_file)
                except OutboxUnavailable as exc:
                    note = f'stream file {stream_file} not applied: {exc}'
                if note:
                    self.get_logger().warning(note)
            self.outbox_error = None
            self.outbox = outbox
            if self.uploader is not None:
                self.uploader.close()
            self.uploader = Uploader(outbox, UploaderConfig(
                platform_url=self.p.platform_url, token=self.token, robot_id=self.p.robot_id,
                batch_size=self.p.batch_size, max_delay_s=self.p.batch_delay_s,
                backoff_max_s=self.p.backoff_max_s, ca_file=self.p.ca_file,
                stream_file=stream_file), log=self.get_logger().warning)
            return outbox

    def _pending(self) -> int | str:
        try:
            return self.outbox.pending() if self.outbox else 'unknown (outbox unavailable)'
        except OutboxUnavailable as exc:
            return f'unknown ({exc})'

    def _outbox_failed(self, exc: OutboxUnavailable) -> None:
        """An outbox operation failed: a damaged file is salvaged now; other failures (disk
        full, locked) are reported and the operation is retried by its caller."""
        if isinstance(exc, OutboxCorrupt):
            self._open_outbox(damaged=str(exc))
            return
        if str(exc) != self.outbox_error:
            self.get_logger().error(f'{exc}; events stay with their senders until it works again')
        self.outbox_error = str(exc)

    def _read_token(self) -> str:
        """The bearer token; without one the outbox still takes every event and uploads wait
        (diagnostics ERROR) until a token is installed and `sync_now` is called."""
        if not self.p.token_file:
            token = self.p.token
        else:
            try:
                token = Path(self.p.token_file).read_text().strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, 'strerror', None) or str(exc)
                self.get_logger().error(f'no platform token: {self.p.token_file}: {reason}; '
                                        'events are kept in the outbox until one is installed')
                return ''
        if not token.strip():
            self.get_logger().error('no platform token (empty); events are kept in the outbox '
                                    'until one is installed and /sync/sync_now is called')
        return token.strip()

    @staticmethod
    def _row(msg: InteractionEvent) -> tuple:
        """The outbox row for a message; OutboxError/ValueError say why it cannot be stored."""
        try:
            data = json.loads(msg.payload_json) if msg.payload_json.strip() else {}
        except RecursionError:
            raise OutboxError('payload nested too deeply') from None
        if isinstance(data, dict) and msg.source:
            data.setdefault('source', msg.source)
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        return prepare_event(dict(type=msg.type, data=data, customer=msg.customer_pseudonym,
                                  event_id=msg.event_id, time=stamp or None,
                                  version=msg.version or 1), contract=True)

    def _on_record_events(self, request, response):
        rows, refused = [], []
        for msg in request.events:
            try:
                rows.append(self._row(msg))
            except (ValueError, OutboxError) as exc:
                refused.append(f'{msg.event_id}: {exc}')
                self.get_logger().error(f'event {msg.type!r} from {msg.source or "?"} refused: {exc}')
        outbox = self._open_outbox()
        if outbox is None:
            return response                  # nothing acknowledged: the senders keep them
        try:
            result = outbox.append_rows(rows)   # one transaction, on disk before we answer
        except OutboxUnavailable as exc:        # not acknowledged: the sender keeps them, retries
            self._outbox_failed(exc)
            return response
        self.outbox_error = None
        conflicts = set(result.conflicts)
        for event_id in conflicts:
            line = f'{event_id}: event_id already stored with other content'
            refused.append(line)
            self.get_logger().error(f'event refused: {line}')
        response.refused = refused
        response.stored_ids = [row[0] for row in rows if row[0] not in conflicts]
        return response

    def _on_sync_now(self, _request, response):
        self._wake_upload.set()
        self._wake_downlink.set()
        response.success = True
        response.message = f'sync started: {self._pending()} events waiting'
        return response

    # --- threads -------------------------------------------------------------------------------
    def _upload_loop(self) -> None:
        while not self._stop.is_set():
            uploader = self.uploader if self._open_outbox() is not None else None
            if uploader is None:
                self._stop.wait(OUTBOX_RETRY_S)
                continue
            if not valid_robot_id(self.p.robot_id):
                uploader.auth_failed = True
                uploader.last_error = (f'robot_id {self.p.robot_id!r} is not valid (must match '
                                       f'{ROBOT_ID.pattern}); fix it in the launch file')
                self.get_logger().error(f'uploads stopped: {uploader.last_error}')
                self._stop.wait()
                return
            if not self.token:
                uploader.auth_failed = True
                uploader.last_error = 'no platform token installed'
                self._wait_for_new_token()
                continue
            try:
                outcome = uploader.run(self._stop, self._wake_upload)
            except OutboxUnavailable as exc:
                if uploader is self.uploader:       # else the outbox was just salvaged: go on
                    self._outbox_failed(exc)
                self._stop.wait(1.0)
                continue
            except Exception as exc:  # noqa: BLE001 - an upload bug must not end uploads for good
                self.get_logger().error(f'upload failed unexpectedly: {type(exc).__name__}: {exc}; '
                                        'retrying in 5 s')
                uploader.last_error = f'{type(exc).__name__}: {exc}'
                self._stop.wait(5.0)
                continue
            if outcome == REFUSED:
                # Alarmed in diagnostics (ERROR); tried again with the token file read anew when
                # asked (sync_now) or after refused_retry_s: a new token installed without a
                # sync_now, or a proxy's refusal during a deploy, never stops uploads for good.
                self._wait_for_new_token()

    def _wait_for_new_token(self) -> None:
        self._wake_upload.wait(self.p.refused_retry_s)
        self._wake_upload.clear()
        if self._stop.is_set():
            return
        self.token = self._read_token()
        if self.uploader is not None:
            self.uploader.set_token(self.token)
            self.uploader.auth_failed = not self.token
        self.downlink.set_token(self.token)
        if self.fleet_link is not None:
            self.fleet_link.set_token(self.token)

    def _downlink_loop(self) -> None:
        forget_retry_s = FORGET_RETRY_S
        while not self._stop.is_set():
            errors = []
            try:
                outcome = self.downlink.sync()
                if outcome.error:
                    errors.append(outcome.error)
                elif outcome.applied and any(outcome.changed.values()):
                    counts = ', '.join(f'{k} {n}' for k, n in outcome.changed.items() if n)
                    self.get_logger().info(f'downlink version {outcome.version} applied '
                                           f'({"snapshot" if outcome.full else "delta"}: {counts})')
                if outcome.forgotten:
                    self.get_logger().info(f'{len(outcome.forgotten)} member(s) forgotten as the '
                                           'platform asked (cache, face gallery, outbox), confirmed')
                if self.downlink.forget_error:
                    errors.append(self.downlink.forget_error)
                self._fetch_members()
                self._announce()
                held = self.downlink.version
                self._downlink_values = {
                    'downlink_version': held if held is not None else 'none',
                    'forget_pending': len(self.downlink.pending_forget())}
            except Exception as exc:  # noqa: BLE001 - e.g. a full disk while swapping a file in
                errors.append(f'downlink failed: {type(exc).__name__}: {exc}')
            if errors and '; '.join(errors) != self.last_downlink_error:
                self.get_logger().warning('; '.join(errors))
            self.last_downlink_error = '; '.join(errors) or None
            wait_s = self.p.downlink_interval_s
            if self.downlink.forget_error:
                # an erasure the platform asked for is not finished (the faces node not up yet,
                # the platform away): tried again soon, not at the next downlink check
                wait_s = min(wait_s, forget_retry_s)
                forget_retry_s = min(forget_retry_s * 2, FORGET_RETRY_MAX_S)
            else:
                forget_retry_s = FORGET_RETRY_S
            self._wake_downlink.wait(wait_s)
            self._wake_downlink.clear()

    def _announce(self) -> None:
        """A DataUpdate for each file the downlink rewrote (the nodes reload)."""
        version = str(self.downlink.version)
        for kind, path in sorted(self.downlink.take_updates().items()):
            self.get_logger().info(f'new {kind} in use: {path} (downlink version {version})')
            self.updates.publish(DataUpdate(kind=kind, path=path, version=version))

    # --- members: on demand, and forgotten ----------------------------------------------------
    def _on_customer(self, msg: CustomerEvent) -> None:
        """A member the faces node recognised (enrolled with consent at the robot): looked up on
        the downlink thread when this robot does not hold their record."""
        member = msg.customer_id.strip()
        if msg.kind != CustomerEvent.IDENTIFIED or not member or len(member) > 128:
            return
        now = time.monotonic()
        with self._members_lock:
            asked = self._members_asked.get(member)
            if asked is not None and now - asked < self.p.member_fetch_retry_s:
                return
            if len(self._members_asked) > 10_000:     # bounded: forget the old attempts
                self._members_asked = {m: t for m, t in self._members_asked.items()
                                       if now - t < self.p.member_fetch_retry_s}
            self._members_asked[member] = now
            self._members_wanted.add(member)
        self._wake_downlink.set()

    def _fetch_members(self) -> None:
        with self._members_lock:
            wanted, self._members_wanted = self._members_wanted, set()
        fetched = 0
        for member in sorted(wanted):
            if self.downlink.cached(member):
                continue                              # sent for this store, or fetched before
            if self.downlink.member(member) is not None:
                fetched += 1
        if fetched:
            self.get_logger().info(f'{fetched} recognised member(s) fetched from the platform '
                                   '(cached for offline use)')

    def _erase_face(self, member_id: str) -> bool:
        """Erase the member's face data through the faces node (the perception delete path):
        True when the gallery held them, False when it did not; raises when it could not be
        asked or failed (the forget stays pending and is retried)."""
        if self.delete_member is None:
            return False                              # this robot keeps no face gallery
        if not self.delete_member.wait_for_service(timeout_sec=DELETE_MEMBER_WAIT_S):
            raise RuntimeError(f'{self.p.delete_member_service} is not answering')
        done = threading.Event()
        future = self.delete_member.call_async(DeleteMember.Request(customer_id=member_id))
        future.add_done_callback(lambda _: done.set())
        if not done.wait(15.0) or future.result() is None:
            future.cancel()
            raise RuntimeError(f'{self.p.delete_member_service} did not answer in 15 s')
        answer = future.result()
        if answer.success:
            return True
        if answer.message == NO_SUCH_MEMBER:
            return False
        raise RuntimeError(f'{self.p.delete_member_service}: {answer.message}')

    def _erase_local(self, member_id: str) -> str:
        """Remove the outbox's waiting and quarantined events naming the member."""
        outbox = self._open_outbox()
        if outbox is None:
            raise RuntimeError(f'outbox unavailable: {self.outbox_error}')
        removed = outbox.forget_customer(member_id)
        return f'{removed} outbox event(s) removed'

    # --- fleet ---------------------------------------------------------------------------------
    def _start_fleet(self) -> None:
        period = max(1.0, self.p.fleet_period_s)
        self.fleet = HeartbeatCore(period_s=period, software_version=self._software_version())
        self._fleet_lock = threading.Lock()
        self._pose: tuple[float, float] | None = None
        self._store_zones: dict | None = None
        self.fleet_link = FleetLink(self.p.platform_url, self.token, self.p.robot_id,
                                    self.p.data_dir, ca_file=self.p.ca_file,
                                    log=self.get_logger().warning)
        self._param_port = RclParamPort(self)
        self.replies = self.create_publisher(RobotReply, names.REPLIES, REPLIES_QOS)
        self.incident_upload = self.create_client(Trigger, self.p.incident_upload_service)
        self.create_subscription(DiagnosticArray, names.DIAGNOSTICS, self._on_diagnostics, 50)
        self.create_subscription(BaseSafety, names.SAFETY, self._on_safety, latched(1))
        self.create_subscription(BatteryState, '/navigation/battery', self._on_battery, 10)
        self.create_subscription(PoseWithCovarianceStamped, '/navigation/pose', self._on_pose, 10)
        self.create_subscription(StaffRequest, names.STAFF_REQUESTS, self._on_staff_request, 50)
        self._threads.append(threading.Thread(target=self._fleet_loop, name='sync-fleet',
                                              daemon=True))

    def _apply_settings(self, document) -> str:
        """Before a desired state is swapped in: its content checked against the store the nodes
        read (retail_common.store.check_rollout: the store files' rules; any entry that would be
        skipped refuses the version whole), then its live settings set on the running nodes (all
        or nothing). A problem returned keeps the last good version and is reported."""
        problem = self._check_content(document)
        if problem:
            return problem
        changes = live_settings.plan(document.settings)
        if not changes:
            return ''
        problem, skipped = live_settings.apply(changes, self._param_port)
        if skipped:
            self.get_logger().warning(f'live settings: {", ".join(skipped)} not running; they '
                                      'read their own params file when they start')
        return problem

    def _check_content(self, document) -> str:
        if not self.p.store_dir:
            return ''
        from retail_common.store import StoreError, check_rollout, load_store
        try:
            store = load_store(self.p.store_dir, Path(self.p.data_dir).parent)
        except StoreError as exc:
            return f'content not checked, the store does not load: {exc}'
        problems = check_rollout(store, document.content.model_dump())
        if problems:
            return problems[0] + (f' (and {len(problems) - 1} more)' if len(problems) > 1 else '')
        return ''

    def _reapply_settings(self, link: FleetLink, last: float) -> float:
        """Once a heartbeat period: a target node whose values differ from the version in use
        (it restarted and read its own params file) gets them set again. Returns when it ran."""
        now = time.monotonic()
        if not link.desired_version or now - last < self.fleet.period_s:
            return last
        from retail_sync.fleet import check_desired
        try:
            document, problem = check_desired((Path(self.p.data_dir) / 'desired.json').read_bytes())
        except OSError as exc:
            document, problem = None, str(exc)
        if document is None:
            self.get_logger().warning(f'live settings not checked: desired.json: {problem}')
            return now
        running = self._param_port.running()
        changes = {}
        for node, values in live_settings.plan(document.settings).items():
            if node in running:
                current = self._param_port.get(node, list(values))
                if any(current.get(k) != v for k, v in values.items()):
                    changes[node] = values
        if changes:
            problem, _ = live_settings.apply(changes, self._param_port)
            if problem:
                self.get_logger().warning(f'live settings of v{link.desired_version} not set '
                                          f'again: {problem}')
            else:
                self.get_logger().info(f'live settings of v{link.desired_version} set again on '
                                       f'{", ".join(changes)} (it ran with its own file\'s values)')
        return now

    @staticmethod
    def _software_version() -> str:
        from importlib.metadata import PackageNotFoundError, version
        try:
            return version('retail_sync')
        except PackageNotFoundError:
            return 'unknown'

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        now = time.monotonic()
        with self._fleet_lock:
            for status in msg.status:
                values = {kv.key: kv.value for kv in status.values}
                self.fleet.on_status(status.name, int.from_bytes(status.level, 'little')
                                     if isinstance(status.level, bytes) else int(status.level),
                                     status.message, values, now)
        self._wake_fleet.set()

    def _on_safety(self, msg: BaseSafety) -> None:
        with self._fleet_lock:
            self.fleet.on_safety(bool(msg.latched), time.monotonic())
        self._wake_fleet.set()

    def _on_battery(self, msg: BatteryState) -> None:
        with self._fleet_lock:
            self.fleet.on_battery(float(msg.percentage))

    def _on_pose(self, msg: PoseWithCovarianceStamped) -> None:
        x, y = msg.pose.pose.position.x, msg.pose.pose.position.y
        self._pose = (x, y) if math.isfinite(x) and math.isfinite(y) else None

    def _on_staff_request(self, msg: StaffRequest) -> None:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec or time.time_ns()
        pose = self._pose or self._reported_pose()
        call = call_from_request(stamp, msg.track_id, msg.reason, msg.looking_for,
                                 msg.product_name or msg.product, msg.zone, msg.language,
                                 pose, place=place_of(self._zones(), pose))
        if self.fleet_link is not None:
            self.fleet_link.raise_call(call)
            self._wake_fleet.set()

    def _upload_incidents(self, link: FleetLink, request_id: int) -> None:
        """The platform asked for the incident recordings: the incident recorder uploads them
        (its upload path: Idempotency-Key, Content-Digest, deleted only once confirmed by id);
        the request is reported done, with the recorder's answer, in the next heartbeat."""
        service = self.p.incident_upload_service
        if not self.incident_upload.wait_for_service(timeout_sec=5.0):
            result = f'{service} not answering: no incident recorder running'
        else:
            done = threading.Event()
            future = self.incident_upload.call_async(Trigger.Request())
            future.add_done_callback(lambda _: done.set())
            if not done.wait(120.0) or future.result() is None:
                future.cancel()
                raise LinkError(f'incident upload: {service} did not answer in 120 s')
            answer = future.result()
            result = ('' if answer.success else 'not all uploaded: ') + answer.message
        link.incident_request_done(request_id, result)
        self.get_logger().info(f'incident request {request_id}: {result}')
        self._wake_fleet.set()

    def _reported_pose(self) -> tuple[float, float] | None:
        """The localisation's pose as its diagnostics report it (a robot standing still publishes
        no new /navigation/pose), when it says it knows where it is."""
        with self._fleet_lock:
            values = dict(self.fleet.values.get('navigation/localization', {}))
        if values.get('state') not in ('tracking', 'degraded'):
            return None
        try:
            pose = (float(values['x']), float(values['y']))
        except (KeyError, TypeError, ValueError):
            return None
        return pose if all(math.isfinite(v) for v in pose) else None

    def _zones(self) -> dict:
        """The store's zones (store_dir's zones.yaml), read once; {} without a store."""
        if self._store_zones is None:
            self._store_zones = {}
            if self.p.store_dir:
                from retail_common.store import StoreError, load_zones_file
                try:
                    self._store_zones = load_zones_file(Path(self.p.store_dir) / 'zones.yaml')[0]
                except StoreError as exc:
                    self.get_logger().warning(f'staff calls name no place: {exc}')
        return self._store_zones

    def _fleet_loop(self) -> None:
        link = self.fleet_link
        assert link is not None
        last_poll = 0.0
        settings_checked = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            errors = []
            try:
                settings_checked = self._reapply_settings(link, settings_checked)
            except live_settings.PortError as exc:
                settings_checked = time.monotonic()
                errors.append(f'live settings: {exc}')
            except Exception as exc:  # noqa: BLE001 - must not end heartbeats
                errors.append(f'live settings: {type(exc).__name__}: {exc}')
            disk = self._disk_free_fraction()
            with self._fleet_lock:
                self.fleet.disk_free_fraction = disk
                beat = self.fleet.due(now)
            try:                # a refused or failed call never holds back the heartbeat
                link.send_calls()
            except LinkError as exc:
                errors.append(str(exc))
            except Exception as exc:  # noqa: BLE001 - a fleet bug must not end heartbeats
                errors.append(f'staff calls failed: {type(exc).__name__}: {exc}')
            try:
                if beat is not None:
                    answer = link.heartbeat(beat)
                    with self._fleet_lock:
                        self.fleet.sent(beat, now)
                    self._act_on_answer(link, answer)
                    poll = answer.messages > 0
                else:
                    poll = now - last_poll >= self.fleet.period_s
                if poll:
                    last_poll = now
                    self._speak_staff_messages(link)
            except LinkError as exc:
                errors.append(str(exc))
            except Exception as exc:  # noqa: BLE001 - a fleet bug must not end heartbeats
                errors.append(f'fleet link failed: {type(exc).__name__}: {exc}')
            error = '; '.join(errors) or None
            if error and error != self.last_fleet_error:
                self.get_logger().warning(error)
            self.last_fleet_error = error
            self._wake_fleet.wait(min(1.0, self.fleet.period_s / 4))
            self._wake_fleet.clear()

    def _disk_free_fraction(self) -> float | None:
        try:
            usage = shutil.disk_usage(self.p.data_dir if Path(self.p.data_dir).exists() else '/')
        except OSError:
            return None
        return usage.free / usage.total if usage.total else None

    def _act_on_answer(self, link, answer) -> None:
        """What a heartbeat's answer asks: a desired state to apply, incidents to upload."""
        if answer.desired_version and link.apply_desired(answer.desired_version, self._apply_settings):
            self.get_logger().info(f'desired state v{link.desired_version} in use')
            self.updates.publish(DataUpdate(
                kind='desired', path=str(Path(self.p.data_dir) / 'desired.json'),
                version=str(link.desired_version)))
        if answer.incident_request > link.incident_done:
            self._upload_incidents(link, answer.incident_request)
        with self._fleet_lock:
            self.fleet.desired_version = link.desired_version
            self.fleet.desired_error = link.desired_error
            self.fleet.desired_refused = link.refused_version

    def _speak_staff_messages(self, link) -> None:
        """Staff's answers and typed words, said by the robot; each confirmed once published."""
        for message in link.messages():
            for text, language, intent in staff_replies(message):
                reply = RobotReply(text=text, language=language, intent=intent)
                reply.header.stamp = self.get_clock().now().to_msg()
                self.replies.publish(reply)
            link.spoken(message.id)

    # --- diagnostics ---------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        outbox, uploader = self.outbox, self.uploader
        status = None
        if outbox is not None:
            try:
                status = outbox.status()
            except OutboxUnavailable as exc:
                self._outbox_failed(exc)
        if status is None:
            values: dict = {'outbox_error': self.outbox_error or ''}
            level = DiagnosticStatus.ERROR
            message = f'outbox unavailable: {self.outbox_error}'
        else:
            last_age = status['last_success_age_s']
            values = {'backlog': status['pending'],
                      'oldest_pending_s': status['oldest_pending_s'] or 0,
                      'last_success_age_s': last_age if last_age is not None else 'never',
                      'quarantined': status['quarantined'], 'dropped': status['dropped'],
                      'forgotten_events': status['forgotten'],
                      **self._downlink_values,
                      'uploaded': uploader.sent if uploader else 0,
                      'upload_error': (uploader.last_error if uploader else '') or '',
                      'downlink_error': self.last_downlink_error or '',
                      'fleet_error': self.last_fleet_error or '',
                      'staff_calls_refused': self._staff_calls_refused(),
                      'outbox_error': self.outbox_error or '',
                      'salvaged': self.salvage_note or '',
                      'seq_reused': status['seq_reused'], 'stream_id': status['stream_id']}
            level, message = sync_health(status, self.outbox_error, self.salvage_note,
                                         uploader.auth_failed if uploader is not None else False,
                                         uploader.last_error if uploader is not None else None)
        array = DiagnosticArray(status=[diagnostic_status('sync: agent', level, message, values)])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics.publish(array)

    def _staff_calls_refused(self) -> int:
        """Staff calls the platform refused (kept with the reason in fleet_calls.sqlite3)."""
        link = self.fleet_link
        try:
            return link.calls.refused_count() if link is not None else 0
        except sqlite3.Error:
            return 0

    def destroy_node(self) -> None:
        self._stop.set()
        self._wake_upload.set()
        self._wake_downlink.set()
        self._wake_fleet.set()
        for thread in self._threads:
            thread.join(timeout=15)
        if self.uploader is not None:
            self.uploader.close()
        self.downlink.close()
        if self.fleet_link is not None:
            self.fleet_link.close()
        if self.outbox is not None:
            self.outbox.close()
        super().destroy_node()


class RclParamPort:
    """live_settings.ParamPort over the nodes' parameter services (rcl_interfaces), called from
    the fleet thread while the executor spins the agent."""

    def __init__(self, node: Node, timeout_s: float = 5.0) -> None:
        from rcl_interfaces.srv import GetParameters, SetParametersAtomically
        self.node, self.timeout_s = node, timeout_s
        self.get_clients = {target: node.create_client(GetParameters, f'{target}/get_parameters')
                            for target in live_settings.NODE_ORDER}
        self.set_clients = {target: node.create_client(
            SetParametersAtomically, f'{target}/set_parameters_atomically')
            for target in live_settings.NODE_ORDER}

    def running(self) -> set[str]:
        return {f'{ns.rstrip("/")}/{name}' for name, ns in self.node.get_node_names_and_namespaces()}

    def _call(self, client, request, target: str):
        if not client.wait_for_service(timeout_sec=self.timeout_s):
            raise live_settings.PortError(f'{target}: parameter service not answering')
        future = client.call_async(request)
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        if not done.wait(self.timeout_s) or future.result() is None:
            raise live_settings.PortError(f'{target}: no answer within {self.timeout_s:g} s')
        return future.result()

    def get(self, node: str, names: list[str]) -> dict:
        from rcl_interfaces.srv import GetParameters
        from rclpy.parameter import parameter_value_to_python
        answer = self._call(self.get_clients[node], GetParameters.Request(names=names), node)
        return {n: parameter_value_to_python(v) for n, v in zip(names, answer.values)}

    def set_atomically(self, node: str, values: dict) -> str:
        from rcl_interfaces.srv import SetParametersAtomically
        from rclpy.parameter import Parameter
        request = SetParametersAtomically.Request(
            parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
        result = self._call(self.set_clients[node], request, node).result
        return '' if result.successful else (result.reason or 'refused')


main = main_for(SyncAgent)
