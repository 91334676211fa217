"""/sync/agent: interaction events from every area into the outbox; uploads and downloads.

Events come in two ways: the `/sync/record_events` service (RecordEvents), answered only once
the events are on disk, which publishers use through `EventSender` so that nothing is lost while
this node restarts; and the `/sync/interaction_events` topic, fire-and-forget, for simple
publishers and observers. The same event_id arriving both ways is stored once.

Thin adapter: the outbox, uploader and downlink cores do the work. Uploads and downloads run
on their own threads (network waits never block the executor); `sync_now` only wakes them.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger

from retail_common import names
from retail_common.node_support import declare_params, diagnostic_status, main_for
from retail_common.params import ParamSpec
from retail_interfaces.msg import DataUpdate, InteractionEvent
from retail_interfaces.srv import RecordEvents
from retail_sync.downlink import Downlink
from retail_sync.outbox import Limits, Outbox, OutboxError, prepare_event
from retail_sync.uploader import Uploader, UploaderConfig

PARAMS = [
    ParamSpec('robot_id', 'robot-01', 'this robot\'s id on the platform', read_only=True),
    ParamSpec('platform_url', 'http://127.0.0.1:8080', 'platform base URL (http/https)'),
    ParamSpec('token', '', 'bearer token (or token_file)'),
    ParamSpec('token_file', '', 'file holding the bearer token (preferred over token)'),
    ParamSpec('ca_file', '', 'https: CA bundle to verify the platform with'),
    ParamSpec('outbox', '/var/lib/retailbot/sync/outbox.sqlite3', 'outbox SQLite file'),
    ParamSpec('data_dir', '/var/lib/retailbot/data', 'where downloaded data is swapped in'),
    ParamSpec('batch_size', 500, 'events per upload request', min=1, max=10000),
    ParamSpec('batch_delay_s', 2.0, 'longest a partial batch waits before it is sent',
              min=0.0, max=600.0),
    ParamSpec('backoff_max_s', 60.0, 'longest wait between upload retries', min=0.1, max=3600.0),
    ParamSpec('downlink_interval_s', 300.0, 'seconds between downlink checks', min=1.0),
    ParamSpec('max_events', 1000000, 'outbox limit (oldest dropped beyond it)', min=100),
    ParamSpec('max_age_h', 720.0, 'outbox age limit in hours (older dropped)', min=1.0),
    ParamSpec('warn_fraction', 0.8, 'alarm from this fraction of a limit', min=0.1, max=1.0),
    ParamSpec('diagnostics_period_s', 2.0, 'diagnostics publishing period', min=0.1),
]
# Latched: a node that starts (or restarts) after an update still hears which data is current.
UPDATES_QOS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                         depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)
EVENTS_QOS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                        depth=1000, durability=DurabilityPolicy.VOLATILE)


class SyncAgent(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__('agent', **kwargs)
        self.p = declare_params(self, PARAMS)
        token = self._read_token()
        self.outbox = Outbox(self.p.outbox, Limits(self.p.max_events, self.p.max_age_h * 3600.0,
                                                   self.p.warn_fraction))
        log = self.get_logger()
        self.uploader = Uploader(self.outbox, UploaderConfig(
            platform_url=self.p.platform_url, token=token, robot_id=self.p.robot_id,
            batch_size=self.p.batch_size, max_delay_s=self.p.batch_delay_s,
            backoff_max_s=self.p.backoff_max_s, ca_file=self.p.ca_file), log=log.warning)
        self.downlink = Downlink(self.p.platform_url, token, self.p.robot_id, self.p.data_dir,
                                 ca_file=self.p.ca_file)
        self.last_downlink_error: str | None = None
        self._stop = threading.Event()
        self._wake_upload = threading.Event()
        self._wake_downlink = threading.Event()
        self.updates = self.create_publisher(DataUpdate, 'data_updates', UPDATES_QOS)
        self.diagnostics = self.create_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        self.create_subscription(InteractionEvent, names.INTERACTION_EVENTS, self._on_event,
                                 EVENTS_QOS)
        self.create_service(RecordEvents, names.RECORD_EVENTS, self._on_record_events)
        self.create_service(Trigger, 'sync_now', self._on_sync_now)
        self.create_timer(self.p.diagnostics_period_s, self._publish_diagnostics)
        self._threads = [threading.Thread(target=self._upload_loop, name='sync-upload', daemon=True),
                         threading.Thread(target=self._downlink_loop, name='sync-downlink',
                                          daemon=True)]
        for thread in self._threads:
            thread.start()
        log.info(f'sync agent for robot {self.p.robot_id}: outbox {self.p.outbox} '
                 f'({self.outbox.pending()} waiting), platform {self.p.platform_url}, '
                 f'data in {self.p.data_dir}')

    def _read_token(self) -> str:
        """The bearer token; without one the outbox still takes every event and uploads wait
        (diagnostics ERROR) until a token is installed and `sync_now` is called."""
        if not self.p.token_file:
            return self.p.token
        try:
            return Path(self.p.token_file).read_text().strip()
        except OSError as exc:
            self.get_logger().error(f'no platform token: {self.p.token_file}: {exc.strerror}; '
                                    'events are kept in the outbox until one is installed')
            return ''

    @staticmethod
    def _row(msg: InteractionEvent) -> tuple:
        """The outbox row for a message; OutboxError/ValueError say why it cannot be stored."""
        data = json.loads(msg.payload_json) if msg.payload_json.strip() else {}
        if isinstance(data, dict) and msg.source:
            data.setdefault('source', msg.source)
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        return prepare_event(dict(type=msg.type, data=data, customer=msg.customer_pseudonym,
                                  event_id=msg.event_id, time=stamp or None))

    def _on_event(self, msg: InteractionEvent) -> None:
        try:
            stored = self.outbox.append_rows([self._row(msg)])
        except (ValueError, OutboxError) as exc:
            self.get_logger().error(f'event {msg.type!r} from {msg.source or "?"} refused: {exc}')
            return
        if not stored:
            self.get_logger().debug(f'event {msg.event_id} already stored')

    def _on_record_events(self, request, response):
        rows = []
        for msg in request.events:
            try:
                rows.append(self._row(msg))
            except (ValueError, OutboxError) as exc:
                response.refused.append(f'{msg.event_id}: {exc}')
                self.get_logger().error(f'event {msg.type!r} from {msg.source or "?"} refused: {exc}')
        try:
            self.outbox.append_rows(rows)      # one transaction, on disk before we answer
        except (OutboxError, sqlite3.Error) as exc:   # not acknowledged: the sender keeps them, retries
            self.get_logger().error(f'outbox cannot take {len(rows)} events now: {exc}')
            response.refused = []
            return response
        response.stored_ids = [row[0] for row in rows]
        return response

    def _on_sync_now(self, _request, response):
        self._wake_upload.set()
        self._wake_downlink.set()
        response.success = True
        response.message = f'sync started: {self.outbox.pending()} events waiting'
        return response

    def _upload_loop(self) -> None:
        while not self._stop.is_set():
            if not self.uploader.run(self._stop, self._wake_upload):
                # Auth failure: alarmed in diagnostics; retry only when asked (new token/sync_now).
                self._wake_upload.wait()
                self._wake_upload.clear()
                token = self._read_token()
                self.uploader.set_token(token)
                self.downlink.set_token(token)

    def _downlink_loop(self) -> None:
        while not self._stop.is_set():
            errors = []
            for outcome in self.downlink.sync():
                if outcome.error:
                    errors.append(f'{outcome.kind}: {outcome.error}')
                elif outcome.update:
                    update = outcome.update
                    self.get_logger().info(f'new {update.kind} in use: {update.path} '
                                           f'(version {update.version})')
                    self.updates.publish(DataUpdate(kind=update.kind, path=update.path,
                                                    version=update.version))
            if errors and errors != [self.last_downlink_error]:
                self.get_logger().warning('; '.join(errors))
            self.last_downlink_error = '; '.join(errors) or None
            self._wake_downlink.wait(self.p.downlink_interval_s)
            self._wake_downlink.clear()

    def _publish_diagnostics(self) -> None:
        status = self.outbox.status()
        last = status['last_success']
        values = {'backlog': status['pending'], 'oldest_pending_s': status['oldest_pending_s'] or 0,
                  'last_success_age_s': round(time.time() - last, 1) if last else 'never',
                  'quarantined': status['quarantined'], 'dropped': status['dropped'],
                  'uploaded': self.uploader.sent,
                  'upload_error': self.uploader.last_error or '',
                  'downlink_error': self.last_downlink_error or ''}
        if self.uploader.auth_failed:
            level, message = DiagnosticStatus.ERROR, 'platform refused the token: uploads stopped'
        elif status['alarm']:
            level, message = DiagnosticStatus.WARN, status['alarm']
        elif self.uploader.last_error:
            level, message = DiagnosticStatus.WARN, f'platform away, {status["pending"]} waiting'
        else:
            level, message = DiagnosticStatus.OK, f'{status["pending"]} events waiting'
        array = DiagnosticArray(status=[diagnostic_status('sync: agent', level, message, values)])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics.publish(array)

    def destroy_node(self) -> None:
        self._stop.set()
        self._wake_upload.set()
        self._wake_downlink.set()
        for thread in self._threads:
            thread.join(timeout=15)
        self.uploader.close()
        self.downlink.close()
        self.outbox.close()
        super().destroy_node()


main = main_for(SyncAgent)
