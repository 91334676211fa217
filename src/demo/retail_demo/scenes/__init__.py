"""The store day's scenes, one story each (`retailbot demo --scenes`), in the day's order.

A scene is `play(robot, seen)`: it drives the day through the `StoreClient` façade and notes what it
saw in `seen` (checks.Observations); the expectations are measured from those notes at the end.
"""

from __future__ import annotations

from collections.abc import Callable

from retail_demo.checks import Observations
from retail_demo.robot_client import StoreClient
from retail_demo.scenes import camera, leaver, member, outage, returning, shopper, tour, vip, vip2
from retail_demo.scenes import fleet, incident, till

Scene = Callable[[StoreClient, Observations], None]

# demo_scenario.SCENES names them and their expectations; this is the script of each.
PLAYS: dict[str, Scene] = {
    'vip': vip.play,
    'member': member.play,
    'vip2': vip2.play,
    'camera': camera.play,
    'shopper': shopper.play,
    'returning': returning.play,
    'leaver': leaver.play,
    'tour': tour.play,
    'outage': outage.play,
    'incident': incident.play,
    'fleet': fleet.play,
    'till': till.play,
}
