"""The incident recorder on the robot: keeps the last minute of the graph in memory and writes the
minute before and after each incident (bumper, cliff, wheel drop, lost, collision-monitor stop, staff call) to an MCAP file.

Thin node over `retail_observe.incident`: raw (CDR) subscriptions to the graph's topics (as
`retailbot record`, camera images never), re-scanned every second; decoded subscriptions to the
safety state, the localisation state and staff calls feed the detector; each finished incident is
written with `McapRecorder` to `<data_dir>/incidents/<UTC time>-<reason>.mcap` (written to a
`.part` file, then renamed: a file with the final name is complete), with an `incident` metadata
record (reasons, time).

Upload on request: the service `~/upload` (std_srvs/Trigger) sends every finished recording to the
platform (`retail_observe.incident_upload`: Idempotency-Key, Content-Digest) and deletes each copy
only once the platform's receipt confirms it by id and SHA-256. It runs in its own callback group,
so recording goes on meanwhile.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import Trigger

from retail_common import names
from retail_interfaces.msg import BaseSafety, StaffRequest
from retail_observe.graph import ParameterSnapshot, definition_of, offered_qos, subscribe_raw
from retail_observe.incident import Incident, IncidentBuffer, IncidentDetector
from retail_common.incidents import MAX_INCIDENT_BYTES
from retail_observe.incident_upload import keep_room, upload_pending
from retail_observe.msgdefs import DefinitionError
from retail_observe.recording import (
    PARAMETERS_RECORD,
    RERUN_PARAMETERS,
    McapRecorder,
    RecordingError,
    choose_topics,
    parameters_record,
)
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from retail_ros.node_support import ParamSpec, declare_params, diagnostic_status, main_for
from retail_ros.qos import latched
from retail_sync.transport import platform_client

SPECS = [
    ParamSpec(
        'data_dir', os.path.expanduser('~/.local/share/retailbot'), 'Robot data folder; incidents go to its incidents/.'
    ),
    ParamSpec('before_s', 60.0, 'Seconds kept before an incident.', min=0.5, max=600.0),
    ParamSpec('after_s', 60.0, 'Seconds recorded after an incident.', min=0.5, max=600.0),
    ParamSpec('max_mb', 256.0, 'Memory bound of the ring buffer (MB of messages).', min=1.0, max=4096.0),
    ParamSpec('platform_url', '', 'Platform base URL incidents are uploaded to on request (empty: none).'),
    ParamSpec('robot_id', 'robot-01', 'This robot\'s id on the platform.'),
    ParamSpec('token_file', '', 'File holding the platform bearer token (the sync agent\'s).'),
    ParamSpec('ca_file', '', 'https: CA bundle to verify the platform with.'),
    ParamSpec(
        'max_files',
        20,
        'Most recordings kept waiting for upload; at the cap new incidents are not '
        'recorded (reported on /diagnostics; none is deleted before the platform confirms it).',
        min=1,
        max=10000,
    ),
    ParamSpec('max_total_mb', 1024.0, 'Most MB of recordings kept waiting for upload (same rule).', min=1.0, max=1e6),
]
# The collision monitor's latched state (its `~/state`): 'stop' when something is close ahead.
COLLISION_MONITOR_STATE = '/navigation/collision_monitor/state'


class IncidentRecorderNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__('incident_recorder', **kwargs)
        self.params = declare_params(self, SPECS)
        self.buffer = IncidentBuffer(self.params.before_s, self.params.after_s, int(self.params.max_mb * 1e6))
        self.detector = IncidentDetector()
        self.topics: dict[str, tuple[str, dict[str, str]]] = {}
        self.subscriptions_raw: dict[str, object] = {}
        self.folder = Path(self.params.data_dir).expanduser() / 'incidents'
        self.written: list[Path] = []
        self.stopped = ''  # why new incidents are not recorded ('' while they are)
        self.diagnostics = self.create_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        self.create_timer(2.0, self.publish_health)
        self.create_subscription(BaseSafety, names.SAFETY, self.on_safety, latched(1))
        self.create_subscription(String, names.LOCALIZATION_STATE, self.on_localisation, latched(1))
        self.create_subscription(StaffRequest, names.STAFF_REQUESTS, self.on_staff_request, 10)
        self.create_subscription(String, COLLISION_MONITOR_STATE, self.on_collision_monitor, latched(1))
        # the localisation's seed, written into each incident file so a replay re-runs with it
        self.snapshot = ParameterSnapshot(self, RERUN_PARAMETERS)
        self.create_timer(1.0, self.scan_graph)
        self.create_timer(0.2, self.flush)
        self.create_service(Trigger, '~/upload', self.on_upload, callback_group=MutuallyExclusiveCallbackGroup())
        self.scan_graph()

    def scan_graph(self) -> None:
        self.snapshot.poll()
        try:
            choice = choose_topics(self.get_topic_names_and_types(), None)
        except RecordingError as exc:
            self.get_logger().warning(str(exc))
            return
        for topic, type_name in choice.record.items():
            if topic in self.subscriptions_raw:
                continue
            if not self.get_publishers_info_by_topic(topic):
                continue  # seen through its subscribers only: subscribed once a publisher (and its QoS) is
            try:
                qos = offered_qos(self, topic)
                definition_of(type_name)
                self.subscriptions_raw[topic] = subscribe_raw(
                    self, topic, type_name, qos, lambda data, t=topic: self.buffer.add(t, data, time.time_ns())
                )
                self.topics[topic] = (type_name, qos)
            except DefinitionError as exc:
                self.get_logger().warning(f'{topic}: not recorded: {exc}')
                self.subscriptions_raw[topic] = None

    def _trigger(self, reasons: list[str]) -> None:
        for reason in reasons:
            self.get_logger().info(f'incident: {reason}: keeping the minute before and after')
            self.buffer.trigger(reason, time.time_ns())
        self.snapshot.refresh()  # asked again: the file (a minute on) has the seed in use now

    def on_safety(self, msg: BaseSafety) -> None:
        self._trigger(
            self.detector.safety(
                msg.bumper_left or msg.bumper_centre or msg.bumper_right,
                msg.cliff_left or msg.cliff_centre or msg.cliff_right,
                msg.wheel_drop_left or msg.wheel_drop_right,
            )
        )

    def on_localisation(self, msg: String) -> None:
        self._trigger(self.detector.localisation(msg.data))

    def on_collision_monitor(self, msg: String) -> None:
        self._trigger(self.detector.collision_stop(msg.data == 'stop'))

    def on_staff_request(self, msg: StaffRequest) -> None:
        self._trigger(self.detector.staff_call())

    def publish_health(self) -> None:
        """/diagnostics `observe/incidents`: WARN with the reason while new incidents are not recorded."""
        level = DiagnosticStatus.WARN if self.stopped else DiagnosticStatus.OK
        message = self.stopped or 'recording incidents'
        array = DiagnosticArray(
            status=[diagnostic_status('observe/incidents', level, message, {'stopped': self.stopped})]
        )
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics.publish(array)

    def flush(self) -> None:
        incident = self.buffer.poll(time.time_ns())
        if incident is not None:
            stopped = keep_room(self.folder, self.params.max_files, int(self.params.max_total_mb * 1e6))
            if stopped != self.stopped:
                (self.get_logger().error if stopped else self.get_logger().info)(
                    stopped or 'incident recordings have room again: recording incidents'
                )
            self.stopped = stopped
            if stopped:
                self.get_logger().warning(f'incident ({", ".join(incident.reasons)}) not recorded: {stopped}')
                return
            try:
                self.written.append(self.write(incident))
                self.get_logger().info(f'incident recording written: {self.written[-1]}')
            except OSError as exc:
                self.get_logger().error(f'incident recording not written to {self.folder}: {exc.strerror}')

    def write(self, incident: Incident) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.fromtimestamp(incident.at_ns / 1e9, timezone.utc).strftime('%Y%m%dT%H%M%SZ')
        final = self.folder / f'{stamp}-{incident.reasons[0].replace(" ", "-")}.mcap'
        part = final.with_suffix('.mcap.part')
        with open(part, 'wb') as stream:
            # Bounded so the platform takes it (the messages' bytes; zstd makes the file smaller).
            recorder = McapRecorder(stream, max_bytes=MAX_INCIDENT_BYTES - 1024 * 1024)
            recorder.metadata('incident', {'reasons': json.dumps(incident.reasons), 'at_ns': str(incident.at_ns)})
            for target, values in sorted(self.snapshot.values.items()):
                recorder.metadata(PARAMETERS_RECORD, parameters_record(target, values))
            for topic, data, t_ns in incident.messages:
                type_name, qos = self.topics[topic]
                recorder.add_topic(topic, type_name, definition_of(type_name), qos)
                recorder.write(topic, data, t_ns)
            recorder.finish()
            if recorder.full:
                self.get_logger().warning(
                    f'incident recording cut at {recorder.bytes} bytes of messages (the platform takes '
                    f'{MAX_INCIDENT_BYTES}): {len(incident.messages) - recorder.messages} later messages left out'
                )
            for topic, count in recorder.withheld.items():
                self.get_logger().warning(
                    f'incident recording: {count} {topic} message(s) left out: could not be decoded to pseudonymise them'
                )
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(part, final)
        return final

    def on_upload(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Upload every finished recording now; the answer names each by the platform's id."""
        if not self.params.platform_url:
            response.success, response.message = False, 'no platform_url: incidents are not uploaded'
            return response
        try:
            token = Path(self.params.token_file).read_text().strip() if self.params.token_file else ''
        except (OSError, UnicodeDecodeError) as exc:
            response.success = False
            response.message = f'no platform token: {self.params.token_file}: {getattr(exc, "strerror", None) or exc}'
            return response
        try:
            client = platform_client(token, self.params.ca_file, timeout_s=60.0)
        except OSError as exc:  # ssl.SSLError too: a missing or unreadable CA bundle
            response.success, response.message = False, f'ca_file {self.params.ca_file}: {exc}'
            return response
        with client:
            done, problems = upload_pending(client, self.params.platform_url, self.params.robot_id, self.folder)
        if self.stopped and not keep_room(self.folder, self.params.max_files, int(self.params.max_total_mb * 1e6)):
            self.stopped = ''
            self.get_logger().info('incident recordings have room again: recording incidents')
        for line in problems:
            self.get_logger().warning(f'incident upload: {line}')
        words = [
            f'{u.path.name} is incident {u.receipt.id}{" (already there)" if u.receipt.duplicate else ""}' for u in done
        ]
        response.success = not problems
        response.message = '; '.join(words + problems) or 'no incident recordings waiting'
        self.get_logger().info(f'incident upload: {response.message}')
        return response


main = main_for(IncidentRecorderNode)
