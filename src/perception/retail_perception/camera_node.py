"""/perception/camera: publishes camera frames as sensor_msgs/Image (LifecycleNode: owns the device).

Sources: a device index, a video file, an RTSP/HTTP URL, or an image folder (the simulator
replays a clip or the VIP's photos in a loop). A lost camera is reported on /diagnostics and
reopened every `reconnect_s`; the node keeps running. Beside each image it publishes the
camera's intrinsics on `camera_info` (same stamp): from `calibration_file` (camera_calibration's
YAML) or, without one, from `horizontal_fov_deg` of the camera's data sheet, rescaled to the
published frame size. The faces node takes its focal length from there.
"""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from retail_common import names
from retail_ros.node_support import ConfigError, ParamSpec, declare_params, diagnostic_status, main_for
from retail_perception.camera_info import CalibrationError, Intrinsics, from_fov, load_calibration
from retail_perception.camera_source import CameraSource, describe_source, fit_frame
from retail_perception.image_convert import to_image_msg

SPECS = [
    ParamSpec('source', '0', 'camera: device index ("0"), video file, rtsp:// URL or image folder'),
    ParamSpec('rate_hz', 15.0, 'frames published per second', min=0.5, max=60.0),
    ParamSpec('loop', True, 'replay a video file or image folder from the start when it ends'),
    ParamSpec('image_period_s', 2.0, 'image folder: seconds each photo is shown', min=0.0),
    ParamSpec('width', 0, 'fit frames into this width, keeping proportions (0: as captured)', min=0),
    ParamSpec('height', 0, 'fit frames into this height, keeping proportions (0: as captured)', min=0),
    ParamSpec('frame_id', 'camera', 'frame_id of the published images'),
    ParamSpec('calibration_file', '', 'camera_calibration YAML of this camera (empty: use horizontal_fov_deg)'),
    ParamSpec('horizontal_fov_deg', 70.0, "horizontal field of view from the camera's data sheet "
              '(used without a calibration file)', min=10.0, max=179.0),
    ParamSpec('reconnect_s', 2.0, 'seconds between attempts to reopen a lost camera', min=0.1),
    ParamSpec('diagnostics_period_s', 1.0, 'seconds between /diagnostics reports', min=0.1),
    ParamSpec('autostart', True, 'configure and activate at start'),
]


class CameraNode(LifecycleNode):
    camera: CameraSource | None = None      # also for a node whose __init__ failed: rclpy destroys it

    def __init__(self, **kwargs):
        super().__init__('camera', namespace=kwargs.pop('namespace', 'perception'), **kwargs)
        self.params = declare_params(self, SPECS)
        self.camera: CameraSource | None = None
        self._image_pub = None
        self._diag_pub = None
        self._timers = []
        self._was_connected: bool | None = None
        self._calibration: Intrinsics | None = None
        self._info_cache: tuple[tuple[int, int], CameraInfo] | None = None
        self._info_pub = None
        if self.params.calibration_file:
            try:
                self._calibration = load_calibration(self.params.calibration_file)
            except CalibrationError as exc:
                raise ConfigError(f'node {self.get_fully_qualified_name()}: calibration_file {exc}') from None

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = self.params
        self.camera = CameraSource(p.source, reconnect_s=p.reconnect_s, loop=p.loop,
                                   hold_frames=max(1, round(p.image_period_s * p.rate_hz)),
                                   width=p.width, height=p.height, warn=self.get_logger().warning)
        self._image_pub = self.create_publisher(Image, 'image_raw', qos_profile_sensor_data)
        self._info_pub = self.create_publisher(CameraInfo, 'camera_info', qos_profile_sensor_data)
        self._diag_pub = self.create_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        self.get_logger().info(f'Camera configured: {describe_source(p.source)} at {p.rate_hz:g} frames/s')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._timers = [self.create_timer(1.0 / self.params.rate_hz, self._capture),
                        self.create_timer(self.params.diagnostics_period_s, self._report)]
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_timers()
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_timers()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_timers()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _stop_timers(self) -> None:
        for timer in self._timers:
            self.destroy_timer(timer)
        self._timers = []

    def _release(self) -> None:
        if self.camera is not None:
            self.camera.release()

    def _capture(self) -> None:
        frame = self.camera.read()
        connected = self.camera.status.connected and frame is not None
        if connected != self._was_connected:
            # One logging call per severity: rclpy refuses a call site whose severity changes.
            if connected:
                self.get_logger().info(f'Camera streaming from {describe_source(self.params.source)}')
            else:
                self.get_logger().error(self.camera.status.message)
            self._was_connected = connected
        if frame is None:
            return
        p = self.params
        native = (frame.shape[1], frame.shape[0])
        if p.width and p.height:
            frame = fit_frame(frame, p.width, p.height)
        image = to_image_msg(frame, self.get_clock().now().to_msg(), p.frame_id)
        self._image_pub.publish(image)
        info = self._camera_info(native)
        info.header = image.header
        self._info_pub.publish(info)

    def _camera_info(self, native: tuple[int, int]) -> CameraInfo:
        """CameraInfo of the published frames of a camera whose own frames are `native` (w, h)."""
        if self._info_cache is not None and self._info_cache[0] == native:
            return self._info_cache[1]
        p = self.params
        base = (self._calibration.for_frame(*native, fitted=False) if self._calibration is not None
                else from_fov(*native, p.horizontal_fov_deg))
        if p.width and p.height:
            base = base.for_frame(p.width, p.height, fitted=True)
        info = CameraInfo(width=base.width, height=base.height, distortion_model=base.distortion_model,
                          d=list(base.d), k=base.k, r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                          p=[base.fx, 0.0, base.cx, 0.0, 0.0, base.fy, base.cy, 0.0, 0.0, 0.0, 1.0, 0.0])
        self._info_cache = (native, info)
        return info

    def _report(self) -> None:
        status = self.camera.status
        level = DiagnosticStatus.OK if status.connected else DiagnosticStatus.ERROR
        if self.camera.finished:
            level = DiagnosticStatus.WARN
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [diagnostic_status(
            f'{self.get_fully_qualified_name()}', level, status.message,
            {'source': describe_source(self.params.source), 'frames': status.frames,
             'reconnects': status.reconnects}, hardware_id='camera')]
        self._diag_pub.publish(array)

    def destroy_node(self) -> None:
        self._release()
        super().destroy_node()


main = main_for(CameraNode)
