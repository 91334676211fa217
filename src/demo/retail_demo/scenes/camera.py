"""The camera delivers broken frames: the robot reports it on /diagnostics and recovers."""

from __future__ import annotations

from retail_demo.checks import Observations
from retail_demo.robot_client import StoreClient

ERROR = 2  # diagnostic_msgs/DiagnosticStatus ERROR; OK is 0


def play(robot: StoreClient, seen: Observations) -> None:
    robot.section('Camera trouble')
    robot.tell('fault', 'the camera delivers broken frames')
    robot.drop_frames()
    lost = robot.wait(lambda: (robot.camera_diagnostics()[0] or 0) >= ERROR, 20, 'camera error reported')
    robot.show(None)
    back = robot.wait(lambda: robot.camera_diagnostics()[0] == 0, 20, 'camera back')
    detail = robot.camera_diagnostics()[1]
    robot.tell('camera', f'{"recovered" if back else "still failing"}: {detail}')
    seen.note('camera_dropout', lost=lost, back=back)
