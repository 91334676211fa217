"""The member comes back later in the day: what she said on her first visit (phones, Huawei, the
budget she named last) went up to the platform as her events, came back to the robot as her profile
(the sync's downlink), and shapes what she is recommended when she asks again without saying for what.

Played after `member` (her first visit) and before `outage` (which kills the sync)."""

from __future__ import annotations

from retail_common.profiles import sentence_for
from retail_demo import demo_scenario as story
from retail_demo.checks import Observations
from retail_demo.robot_client import StoreClient

MEMBER = story.MEMBER


def play(robot: StoreClient, seen: Observations) -> None:
    robot.section(f'A returning member: {MEMBER.label}')
    # Her first visit's events on the platform (the platform builds her profile from them) ...
    robot.sync_now(10)
    uploaded = robot.wait(lambda: _uploaded(robot), 60, f'the events of {MEMBER.name}\'s first visit uploaded')
    robot.tell('sync', 'her first visit is on the platform' if uploaded else 'her first visit is not on the platform')
    # ... and her profile back on the robot (the downlink's profiles.json, /sync/data_updates).
    profile = robot.wait(lambda: _profile(robot), 60, f'the profile of {MEMBER.name} on the robot')
    if profile is None:
        seen.note('member_returned', profile=None, recommended=None, products=[], reply=None)
        return
    store = robot.robot_store()
    said, _ = sentence_for(profile, store.catalog)
    robot.tell('sync', f'her profile is on the robot ({profile.category}, {profile.brands_wanted}): "{said}"')

    track, _ = robot.enter(MEMBER, 45, greeted=False)  # greeted earlier today: not greeted again
    mark = robot.mark()
    robot.say(MEMBER, story.RETURNING_ASK, track)
    recommended = robot.event(mark, 'recommendation', 20) or {}
    reply = robot.reply(mark, 5, track, ('recommend',))
    skus = recommended.get('skus') or []
    seen.note(
        'member_returned',
        profile=profile,
        recommended=recommended,
        products=[store.catalog.by_sku.get(sku) for sku in skus],
        reply=reply.text if reply else None,
    )
    robot.leave(track)


def _uploaded(robot: StoreClient) -> bool:
    """Every event seen so far is on the platform; else asks the sync again."""
    produced, uploaded, _ = robot.event_sets()
    if produced <= uploaded:
        return True
    robot.sync_now(5)
    robot.pause(1)
    return False


def _profile(robot: StoreClient):
    """Her profile as the robot's nodes read it; else asks the sync again and waits (bounded) for
    its next /sync/data_updates of the profiles."""
    from retail_common.store import StoreError

    try:
        profile = robot.robot_store().profile_of(MEMBER.customer_id)
    except StoreError as exc:
        robot.tell('demo', f'store not readable: {exc}')
        profile = None
    if profile is not None and not profile.empty:
        return profile
    mark = robot.mark()
    robot.sync_now(10)
    robot.data_update(mark, 'profiles', 10)
    return None
