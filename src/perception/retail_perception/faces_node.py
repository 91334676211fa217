"""/perception/faces: who is in front of the robot, as customer events and people positions.

Thin adapter around FacePipeline: camera images in (and the camera's intrinsics from its
`camera_info`: distances and bearings use the calibrated focal length, `horizontal_fov_deg` only
until the first CameraInfo arrives); CustomerEvent (appeared, identified,
approaching, left) on /perception/customer_events; people as a PoseArray in base_link on
/perception/people for the costmap; /perception/enroll_face enrols the person of a track after
they said yes; /perception/list_members and /perception/delete_member are the only way other
nodes (the staff console) see or erase members: the gallery file is opened by perception alone.
It never publishes or logs an embedding or a face crop, and in anonymous mode it does not even
compute embeddings. Its log never names a member: no name, id or consent reference (a log line
outlives a deletion); members appear as "a member" / "a VIP" with their track.
"""
from __future__ import annotations

import math
import threading
import time

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import Pose, PoseArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from retail_interfaces.msg import CustomerEvent, MemberInfo
from retail_interfaces.srv import DeleteMember, EnrollFace, ListMembers
from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest

from retail_common import names
from retail_ros.event_sender import EventSender
from retail_common.events import CustomerAppeared, CustomerIdentified, CustomerLeft
from retail_ros.node_support import ConfigError, ParamSpec, declare_params, diagnostic_status, main_for
from retail_perception.face_model import DETECTORS, DetectorUnavailable, FaceModel
from retail_perception.face_pipeline import (APPEARED, APPROACHING, IDENTIFIED, LEFT, FaceEvent,
                                             FacePipeline, PipelineConfig, walk_in_rows)
from retail_perception.gallery import (Gallery, GalleryClockError, GalleryError, GalleryStore, load_key,
                                       stamp_plausible)
from retail_perception.image_convert import ImageConversionError, from_image_msg

KINDS = {APPEARED: CustomerEvent.APPEARED, IDENTIFIED: CustomerEvent.IDENTIFIED,
         APPROACHING: CustomerEvent.APPROACHING, LEFT: CustomerEvent.LEFT}
# Interaction events stored for the platform (RecordEvents, acknowledged on disk): the
# pseudonymous member id only, never a name, a face image or an embedding.
RECORDED = {APPEARED: CustomerAppeared, IDENTIFIED: CustomerIdentified, LEFT: CustomerLeft}
# Parameters applied while the node runs -> the PipelineConfig field they set.
LIVE_CONFIG_FIELDS = {'match_threshold': 'match_threshold', 'match_margin': 'match_margin',
                      'votes_needed': 'votes_needed', 'evidence_frames': 'evidence_frames',
                      'max_missed_frames': 'max_missed',
                      'leave_after_s': 'max_missed_s', 'approach_distance_m': 'approach_distance_m'}

SPECS = [
    ParamSpec('image_topic', 'image_raw', 'camera images to watch'),
    ParamSpec('camera_info_topic', 'camera_info', "the camera's intrinsics (focal length for distances)"),
    ParamSpec('detector', 'auto', 'face detector: auto (YuNet if installed, else HOG), yunet or hog'),
    ParamSpec('min_identify_px', 35, 'faces narrower than this (pixels) are followed but not named',
              min=0, max=400),
    ParamSpec('gallery_dir', '', 'member gallery folder (empty: nobody can be identified)'),
    ParamSpec('key_file', '', 'gallery key file (empty: $RETAILBOT_GALLERY_KEY)'),
    ParamSpec('anonymous_mode', False, 'detect and follow people only: no face encodings, no identities'),
    ParamSpec('match_threshold', 0.5, 'max embedding distance for a member (<= 0.5 for East Asian faces)',
              min=0.2, max=0.7, read_only=False),
    ParamSpec('match_margin', 0.05, 'best member must beat the next by this distance', min=0.0, max=0.5, read_only=False),
    ParamSpec('votes_needed', 2, 'agreeing matches before a person is named', min=1, max=20, read_only=False),
    ParamSpec('evidence_frames', 3, 'a person is named from the mean of their last this many encodings '
              '(0: votes_needed single-frame matches agreeing)', min=0, max=20, read_only=False),
    ParamSpec('full_detect_every', 3, 'the whole frame is searched for faces every this many frames, '
              'in between only around the people followed', min=1, max=30),
    ParamSpec('detect_scale', 0.0, "detection runs on frames shrunk by this factor (0: the detector's "
              'own: YuNet full frame, HOG x0.5)', min=0.0, max=1.0),
    ParamSpec('max_missed_frames', 8, 'frames without a detection before a person has left', min=1, read_only=False),
    ParamSpec('leave_after_s', 2.0, '... or seconds without a detection (frames may come slowly)', min=0.0, read_only=False),
    ParamSpec('horizontal_fov_deg', 70.0, 'camera horizontal field of view, used only until camera_info '
              'arrives', min=10.0, max=179.0),
    ParamSpec('face_width_m', 0.15, 'typical face width, for the distance estimate', min=0.05, max=0.3),
    ParamSpec('approach_distance_m', 2.0, 'closer than this, growing and centred = approaching', min=0.1, read_only=False),
    ParamSpec('camera_offset', [0.1, 0.0], 'camera position [x, y] in base_link, metres'),
    ParamSpec('people_frame', 'base_link', 'frame of the published people positions'),
    ParamSpec('retention_days', 365.0, 'members not seen for this long are purged', min=1.0),
    ParamSpec('last_seen_flush_s', 300.0, 'how often last-seen times are written to the gallery', min=1.0),
    ParamSpec('gallery_check_s', 2.0, 'how often to look for gallery changes made by the CLI', min=0.1),
    ParamSpec('diagnostics_period_s', 2.0, 'seconds between /diagnostics reports', min=0.1),
]


class FacesNode(Node):
    # Defaults for a node whose __init__ failed half-way: rclpy still destroys it at shutdown.
    _store: GalleryStore | None = None
    _seen: dict = {}
    anonymous_reason = ''

    def __init__(self, **kwargs):
        super().__init__('faces', namespace=kwargs.pop('namespace', 'perception'), **kwargs)
        p = self.params = declare_params(self, SPECS, on_change=self._apply_live_param)
        if len(p.camera_offset) != 2:
            raise ConfigError(f'node {self.get_fully_qualified_name()}: camera_offset must be [x, y]')
        self._lock = threading.Lock()
        self._store: GalleryStore | None = None
        self._gallery: Gallery | None = None
        self._signature = None
        self._seen: dict[str, float] = {}
        self.anonymous_reason = 'anonymous_mode is set' if p.anonymous_mode else ''
        if p.gallery_dir and not p.anonymous_mode:
            try:
                self._store = GalleryStore(p.gallery_dir, load_key(p.key_file or None))
                self._reload()
                self._purge()
            except GalleryError as exc:
                # No usable gallery (no key, wrong key, damaged file): the robot still serves
                # customers, it just cannot recognise members. Nothing is written meanwhile.
                self._store, self._gallery = None, None
                self.anonymous_reason = str(exc)
        elif not p.gallery_dir and not p.anonymous_mode:
            self.anonymous_reason = 'no gallery_dir configured'
        identify = not self.anonymous_reason
        if p.detector not in DETECTORS:
            raise ConfigError(f'node {self.get_fully_qualified_name()}: detector must be one of '
                              f'{", ".join(DETECTORS)}, not {p.detector!r}')
        try:
            model = FaceModel(detector=p.detector)
        except DetectorUnavailable as exc:
            raise ConfigError(f'node {self.get_fully_qualified_name()}: {exc}') from None
        config = PipelineConfig(
            detect_scale=p.detect_scale, min_identify_px=p.min_identify_px,
            match_threshold=p.match_threshold, match_margin=p.match_margin,
            votes_needed=p.votes_needed, evidence_frames=p.evidence_frames,
            full_detect_every=p.full_detect_every, max_missed=p.max_missed_frames, max_missed_s=p.leave_after_s,
            identify=identify, horizontal_fov_rad=math.radians(p.horizontal_fov_deg),
            face_width_m=p.face_width_m, approach_distance_m=p.approach_distance_m)
        self.pipeline = FacePipeline(model, lambda: self._gallery, config)
        self.focal_source = f'assumed {p.horizontal_fov_deg:g} deg field of view (no camera_info yet)'
        self.create_subscription(CameraInfo, p.camera_info_topic, self._on_camera_info, qos_profile_sensor_data,
                                 callback_group=MutuallyExclusiveCallbackGroup())
        self._events_pub = self.create_publisher(CustomerEvent, names.CUSTOMER_EVENTS, 50)
        self.events = EventSender(self, 'perception')
        self._people_pub = self.create_publisher(PoseArray, names.PEOPLE, 10)
        self._frame_id = ''
        self.create_subscription(Image, p.image_topic, self._on_image, qos_profile_sensor_data,
                                 callback_group=MutuallyExclusiveCallbackGroup())
        services = MutuallyExclusiveCallbackGroup()
        self.create_service(EnrollFace, names.ENROLL_FACE, self._on_enroll, callback_group=services)
        self.create_service(ListMembers, names.LIST_MEMBERS, self._on_list, callback_group=services)
        self.create_service(DeleteMember, names.DELETE_MEMBER, self._on_delete, callback_group=services)
        if self._store is not None:
            self.create_timer(p.gallery_check_s, self._check_gallery, callback_group=services)
            self.create_timer(p.last_seen_flush_s, self._flush_seen, callback_group=services)
            self.create_timer(3600.0, self._purge, callback_group=services)
        self._diag_pub = self.create_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        self.create_timer(p.diagnostics_period_s, self._report, callback_group=services)
        watching = f'Watching {self.resolve_topic_name(p.image_topic)}'
        if self.anonymous_reason and not p.anonymous_mode:
            self.get_logger().warning(f'{watching}; anonymous mode (detection and approach only, no member '
                                      f'recognition): {self.anonymous_reason}')
        elif self.anonymous_reason:
            self.get_logger().info(f'{watching}; anonymous mode: detection and approach only')
        else:
            self.get_logger().info(f'{watching}; {len(self._gallery) if self._gallery else 0} member(s) '
                                   'in the gallery')
        self.get_logger().info(f'Face detector: {model.detector}'
                               + ('' if model.detector == 'yunet' else ' (fallback: faces under ~55 px are missed)'))

    def _report(self) -> None:
        if self.anonymous_reason and not self.params.anonymous_mode:
            level, message = DiagnosticStatus.WARN, (f'anonymous mode: members are not recognised '
                                                     f'({self.anonymous_reason})')
        elif self.anonymous_reason:
            level, message = DiagnosticStatus.OK, 'anonymous mode: detection and approach only'
        else:
            level, message = DiagnosticStatus.OK, f'{len(self._gallery) if self._gallery else 0} member(s)'
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [diagnostic_status(self.get_fully_qualified_name(), level, message,
                                          {'mode': 'anonymous' if self.anonymous_reason else 'members',
                                           'tracks': len(self.pipeline.tracks),
                                           'detector': self.pipeline.model.detector,
                                           'focal_length': self.focal_source}, hardware_id='camera')]
        self._diag_pub.publish(array)

    def _apply_live_param(self, name: str, value) -> None:
        """Recognition thresholds changed at run time: used from the next frame on."""
        import dataclasses
        field = LIVE_CONFIG_FIELDS.get(name)
        if field is not None:
            with self._lock:
                self.pipeline.config = dataclasses.replace(self.pipeline.config, **{field: value})

    # --- frames --------------------------------------------------------------------------------
    def _on_camera_info(self, msg: CameraInfo) -> None:
        """The calibrated focal length and principal point (REP-104 K), used from the next frame."""
        import dataclasses
        fx, cx = float(msg.k[0]), float(msg.k[2])
        if not (math.isfinite(fx) and math.isfinite(cx) and fx > 0 and msg.width > 0):
            self.get_logger().warning('ignoring camera_info without a usable K (fx, cx) and width',
                                      throttle_duration_sec=30.0)
            return
        config = self.pipeline.config
        if (config.camera_fx_px, config.camera_cx_px, config.camera_width_px) == (fx, cx, msg.width):
            return
        with self._lock:
            self.pipeline.config = dataclasses.replace(config, camera_fx_px=fx, camera_cx_px=cx,
                                                       camera_width_px=int(msg.width))
        self.focal_source = (f'camera_info: fx {fx:.0f} px at {msg.width} px wide '
                             f'({math.degrees(2 * math.atan2(msg.width / 2, fx)):.0f} deg)')
        self.get_logger().info(f'Camera intrinsics from {self.resolve_topic_name(self.params.camera_info_topic)}: '
                               f'{self.focal_source}')

    def _on_image(self, msg: Image) -> None:
        try:
            frame = from_image_msg(msg)
        except ImageConversionError as exc:
            self.get_logger().warning(f'skipping camera frame: {exc}', throttle_duration_sec=5.0)
            return
        with self._lock:
            try:
                events = self.pipeline.process(frame, time.monotonic())
            except (cv2.error, ValueError) as exc:      # a frame no check foresaw: skipped, never a crash
                self.get_logger().warning(f'skipping camera frame of {frame.shape[1]}x{frame.shape[0]}: '
                                          f'{str(exc).strip().splitlines()[-1][:200]}', throttle_duration_sec=5.0)
                return
            people = [(t.distance_m, t.bearing_rad) for t in self.pipeline.tracks.values()]
        for event in events:
            self._publish_event(event, msg.header)
        self._publish_people(people, msg.header.stamp)

    def _publish_event(self, event: FaceEvent, header) -> None:
        top, right, bottom, left = event.box
        msg = CustomerEvent(kind=KINDS[event.kind], track_id=event.track_id,
                            customer_id=event.customer_id, display_name=event.name, vip=event.vip,
                            confidence=float(event.confidence), distance_m=float(event.distance_m),
                            bearing_rad=float(event.bearing_rad),
                            box=RegionOfInterest(x_offset=max(0, left), y_offset=max(0, top),
                                                 width=max(0, right - left), height=max(0, bottom - top)))
        msg.header = header
        self._events_pub.publish(msg)
        if event.kind in RECORDED:
            self.events.send(RECORDED[event.kind](track_id=int(event.track_id), vip=bool(event.vip),
                                                  confidence=round(float(event.confidence), 2)),
                             customer=event.customer_id)
        where = f'{event.distance_m:.1f} m, {math.degrees(event.bearing_rad):+.0f}°'
        if event.kind == IDENTIFIED:
            with self._lock:
                self._seen[event.customer_id] = time.time()
            self.get_logger().info(f'Recognised {"a VIP" if event.vip else "a member"} on track {event.track_id}, '
                                   f'confidence {event.confidence:.2f}, {where}')
        else:
            who = ('A VIP' if event.vip else 'A member') if event.customer_id else 'Customer'
            self.get_logger().info(f'{who} on track {event.track_id} {event.kind}, {where}')

    def _publish_people(self, people: list[tuple[float, float]], stamp) -> None:
        msg = PoseArray()
        msg.header.stamp = stamp
        msg.header.frame_id = self.params.people_frame
        ox, oy = self.params.camera_offset
        for distance, bearing in people:
            pose = Pose()
            pose.position.x = ox + distance * math.cos(bearing)
            pose.position.y = oy + distance * math.sin(bearing)
            msg.poses.append(pose)
        self._people_pub.publish(msg)

    # --- enrolment at the robot ----------------------------------------------------------------
    def _on_enroll(self, request: EnrollFace.Request, response: EnrollFace.Response) -> EnrollFace.Response:
        response.success, response.message = self._enroll(request)
        if response.success:
            self.get_logger().info(response.message)
        else:
            self.get_logger().warning(response.message)
        return response

    def _enroll(self, request: EnrollFace.Request) -> tuple[bool, str]:
        if not request.consent_ref.strip():
            return False, f'not enrolled: no consent reference for track {request.track_id}'
        if self.anonymous_reason:
            return False, f'not enrolled: the robot runs in anonymous mode ({self.anonymous_reason})'
        if self._store is None:
            return False, 'not enrolled: no member gallery configured (gallery_dir)'
        if not request.customer_id.strip():
            return False, 'not enrolled: empty customer id'
        with self._lock:   # the walk-in row is encoded under the lock: the frames use the same model
            track = self.pipeline.tracks.get(request.track_id)
            encodings = np.stack(list(track.encodings)) if track is not None and track.encodings else None
            walk_in = (walk_in_rows(self.pipeline.model, track.face_crop)
                       if encodings is not None and track is not None else None)
        if encodings is None:
            return False, f'not enrolled: nobody on track {request.track_id} (left, or face not seen yet)'
        try:
            with self._store.transaction() as gallery:
                existing = gallery.members.get(request.customer_id)
                if existing is None:
                    gallery.enroll(request.customer_id, request.display_name, request.vip,
                                   request.consent_ref, encodings, walk_in=walk_in)
            self._reload()
        except GalleryError as exc:        # worded without the member's id: the answer may be logged
            return False, f'not enrolled: {str(exc).replace(request.customer_id, "the member")}'
        if existing is not None:   # never another person's face under an enrolled id
            return False, ('not enrolled: that member id is already enrolled '
                           '(staff: retailbot faces enroll --replace or --add)')
        return True, f'Enrolled the person on track {request.track_id} (consent recorded)'

    # --- members for the staff console (the only way in besides the faces CLI) -----------------
    def _on_list(self, request: ListMembers.Request, response: ListMembers.Response) -> ListMembers.Response:
        if self._store is None:
            response.success, response.message = False, f'no member gallery ({self.anonymous_reason})'
            return response
        try:
            gallery = self._store.load()
        except GalleryError as exc:
            response.success, response.message = False, str(exc)
            return response
        now = time.time()
        shown = lambda t: float(t) if stamp_plausible(t, now) else 0.0  # noqa: E731
        response.members = [MemberInfo(customer_id=m.customer_id, display_name=m.name, vip=m.vip,
                                       consent_ref=m.consent_ref, enrolled_at=shown(m.enrolled_at),
                                       last_seen=shown(m.last_seen), photos=int(m.embeddings))
                            for m in sorted(gallery.members.values(), key=lambda m: m.customer_id)]
        response.success, response.message = True, f'{len(response.members)} member(s)'
        return response

    def _on_delete(self, request: DeleteMember.Request, response: DeleteMember.Response) -> DeleteMember.Response:
        if self._store is None:
            response.success, response.message = False, f'no member gallery ({self.anonymous_reason})'
            return response
        customer_id = request.customer_id[:64]
        try:
            with self._store.transaction() as gallery:
                deleted = gallery.delete(customer_id)
            self._reload()
        except GalleryError as exc:
            self.get_logger().error(f'member deletion failed: {exc}')
            response.success, response.message = False, f'not deleted: {exc}'
            return response
        with self._lock:
            self._seen.pop(customer_id, None)
        self.get_logger().info('A member was deleted with all their face data' if deleted
                               else 'Deletion asked for an unknown member id')
        response.success = deleted
        response.message = 'deleted, with all their face data' if deleted else 'no such member'
        return response

    # --- gallery upkeep ------------------------------------------------------------------------
    def _reload(self) -> None:
        self._signature = self._store.signature()
        self._gallery = self._store.load()

    def _check_gallery(self) -> None:
        if self._store.signature() != self._signature:
            try:
                self._reload()
            except GalleryError as exc:
                self.get_logger().error(f'gallery not reloaded: {exc}', throttle_duration_sec=60.0)
                return
            self.get_logger().info(f'Gallery changed: {len(self._gallery)} member(s)')

    def _flush_seen(self) -> None:
        with self._lock:
            seen, self._seen = self._seen, {}
        if not seen:
            return
        try:
            with self._store.transaction() as gallery:
                for customer_id, when in seen.items():
                    gallery.touch(customer_id, when)
            self._reload()
        except GalleryError as exc:
            self.get_logger().error(f'last-seen times not saved: {exc}')

    def _purge(self) -> None:
        """Retention: erase members not seen for retention_days (never on an implausible clock)."""
        try:
            with self._store.transaction() as gallery:
                flagged = gallery.implausible(time.time())
                purged = gallery.purge(self.params.retention_days)
            self._reload()
        except GalleryClockError as exc:
            self.get_logger().warning(f'retention purge skipped: {exc}', throttle_duration_sec=3600.0)
            return
        except GalleryError as exc:
            self.get_logger().error(f'retention purge failed: {exc}')
            return
        if flagged:
            self.get_logger().warning(f'Retention: {len(flagged)} member(s) had time stamps from an implausible '
                                      'clock; re-stamped now (their retention counts from today)')
        if purged:
            self.get_logger().info(f'Retention: purged {len(purged)} member(s) not seen for '
                                   f'{self.params.retention_days:g} days')

    def destroy_node(self) -> None:
        if self._store is not None and self._seen:
            self._flush_seen()
        super().destroy_node()


main = main_for(FacesNode)
