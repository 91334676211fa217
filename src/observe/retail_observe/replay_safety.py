"""What `retailbot replay` may publish, and on which graph: pure (no rclpy).

A recording holds what the robot was told as well as what it sensed. Replayed on a graph where the
robot's own nodes run, the recorded `/cmd_vel` drives the base (the collision monitor filters only
the guide's command), recorded utterances start conversations and guides, recorded data updates
reload every node's store. So by default a replay leaves out every topic that commands the robot or
starts its behaviour (`COMMANDS`, the requests of `REQUESTS`, any `cmd_vel`, any action/service
traffic) and refuses to run while one of `ROBOT_NODES` is on the graph.

The names come from `retail_common.names` (the one place the robot's topic names live).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from retail_common import names

PARAMETER_EVENTS = '/parameter_events'

# Topics the robot's nodes take as a command or a request, and what replaying one does.
COMMANDS: dict[str, str] = {
    names.CMD_VEL: 'drives the base',
    names.GUIDE_CMD_VEL: 'drives the base (through the collision monitor)',
    names.UTTERANCES: "a customer's words: the dialogue manager answers, starts guides and tours",
    names.CUSTOMER_EVENTS: 'customers arriving: the robot greets them and the sync agent records visits',
    names.REPLIES: 'the robot says them aloud and shows them on its screen',
    names.TTS_STOP: "stops the robot's speech",
    names.SPEECH_STATUS: 'mutes the speech recogniser (robot speaking)',
    names.LISTEN_CONTEXT: "sets the speech recogniser's language",
    names.STAFF_REQUESTS: 'calls staff (tasks on the platform)',
    names.SAFETY: "the base's safety state: a replayed 'clear' hides a real stop from the guide and manager",
    names.LOCALIZATION_STATE: "the localisation's state: a replayed 'ok' lets the guide drive while lost",
    names.INITIAL_POSE: 'resets the localisation to the recorded pose',
    names.DATA_UPDATES: "reloads every node's store data",
    names.STAFF_SESSION: 'a staff login: the camera view is shown unblurred',
    names.ARRIVALS: "the screen announces arrivals at the store's places",
    names.INTERACTION_EVENTS: "the screen shows the robot's interactions",
    PARAMETER_EVENTS: "the nodes' parameter changes",
}
# Services and actions the robot serves: their request/reply/feedback topics are never replayed.
REQUESTS: tuple[str, ...] = (
    names.GUIDE_TO,
    names.TOUR,
    names.SKIP_TOUR_STOP,
    names.RELOCALISE,
    names.RECOMMEND,
    names.ENROLL_FACE,
    names.LIST_MEMBERS,
    names.DELETE_MEMBER,
    names.RECORD_EVENTS,
)
# The robot's nodes that drive the base, talk to customers or staff, or reach the platform: a replay
# refuses to run while one of them is on the graph (a running robot). Nodes a replay is meant to
# re-run alone (localisation, collision monitor, perception, recommendation) are not in it.
ROBOT_NODES: frozenset[str] = frozenset(
    {
        '/navigation/base',
        '/navigation/base_sim',
        '/navigation/guide',
        '/dialogue/manager',
        '/dialogue/asr',
        '/dialogue/tts',
        '/sync/agent',
        '/ui/server',
    }
)


def command_reason(topic: str) -> str | None:
    """Why replaying `topic` would command the robot or start its behaviour; None when it does not."""
    parts = [part for part in topic.split('/') if part]
    if any('cmd_vel' in part for part in parts):
        return 'a velocity command: drives the base'
    if topic in COMMANDS:
        return COMMANDS[topic]
    if any(part.startswith(('_action', '_service')) for part in parts):
        return 'action/service traffic (requests to the robot)'
    for request in REQUESTS:
        if topic == request or topic.startswith(request + '/'):
            return f'requests to {request} (a service/action of the robot)'
    return None


@dataclass(frozen=True)
class ReplayChoice:
    kept: list[str]
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (topic, why)


def split_commands(topics: list[str], include_commands: bool) -> ReplayChoice:
    """The topics a replay publishes (all but commands, unless `include_commands`) and those it leaves out."""
    kept: list[str] = []
    left_out: list[tuple[str, str]] = []
    for topic in topics:
        why = command_reason(topic)
        if why is None or include_commands:
            kept.append(topic)
        else:
            left_out.append((topic, why))
    return ReplayChoice(kept, left_out)


def robot_nodes_among(node_names: list[str]) -> list[str]:
    """The robot's own nodes among fully qualified node names (e.g. '/navigation/base')."""
    return sorted({name for name in node_names if name in ROBOT_NODES})


def unreadable_reason(size: int, head: bytes, tail: bytes, error: str) -> str:
    """One line on why a file is no readable MCAP: empty, not MCAP at all, or truncated/corrupt."""
    magic = b'\x89MCAP0\r\n'
    if size == 0:
        return 'empty file (0 bytes): not an MCAP recording'
    if not (head.startswith(magic) or magic.startswith(head)):
        return 'not an MCAP file (it does not start with the MCAP magic)'
    if not tail.endswith(magic):
        detail = error or 'the file ends before its footer'
        return f'truncated or corrupt MCAP ({detail}; a recorder killed or out of disk leaves such a file)'
    return f'truncated or corrupt MCAP ({error or "unreadable records"})'
