"""The incident ring buffer keeps the minute before and after, bounded, and incidents are edges."""
from __future__ import annotations

from retail_observe.incident import NS, IncidentBuffer, IncidentDetector


def _feed(buffer, start_s, end_s, step_s=1.0, size=10):
    t = start_s
    while t <= end_s:
        buffer.add('/scan', b'x' * size, int(t * NS))
        t += step_s


def test_an_incident_keeps_the_minute_before_and_after_only():
    buffer = IncidentBuffer(before_s=60, after_s=60)
    _feed(buffer, 0, 200)
    buffer.trigger('bumper', 200 * NS)
    _feed(buffer, 201, 259)
    assert buffer.poll(259 * NS) is None
    buffer.trigger('staff call', 230 * NS)
    _feed(buffer, 260, 300)
    incident = buffer.poll(300 * NS)
    assert incident.reasons == ['bumper', 'staff call']
    times = [t / NS for _, _, t in incident.messages]
    assert times[0] == 140 and times[-1] == 260 and len(times) == 121
    assert buffer.poll(400 * NS) is None
    assert all(t >= 240 * NS for _, _, t in buffer.ring)          # the ring goes on with its minute


def test_the_buffer_is_bounded_in_bytes_and_says_what_it_dropped():
    buffer = IncidentBuffer(before_s=60, after_s=60, max_bytes=100)
    _feed(buffer, 0, 30, size=10)
    assert buffer.bytes <= 100 and len(buffer.ring) == 10 and buffer.dropped == 21


def test_incidents_are_edges_not_levels():
    detector = IncidentDetector()
    assert detector.safety(True, False, False) == ['bumper']
    assert detector.safety(True, False, False) == []               # still pressed: the same incident
    assert detector.safety(False, False, False) == []
    assert detector.safety(True, True, False) == ['bumper', 'cliff']
    assert detector.localisation('lost') == ['lost'] and detector.localisation('lost') == []
    assert detector.localisation('tracking') == [] and detector.localisation('lost') == ['lost']
    assert detector.collision_stop(True) == ['collision-monitor stop'] and detector.collision_stop(True) == []
    assert detector.staff_call() == ['staff call']
