"""The envelope every event shares, one rule on the robot and on the platform
(retail_common.events): a time on a calendar day (1970..2100) and a member id that can be
forgotten (no `/`, no NUL). Found by a newcomer's attack: one event dated year 10000 was
accepted and stopped the funnel refresh of every store ("date value out of range"), and an event
of customer `m/1` was stored but `forget-member` and the forget API could never reach it."""
from __future__ import annotations

import pytest

from loop_support import DAY, chain, event, store_events, store_floor_day
from retail_platform import funnel
from retail_platform.app import check_event
from retail_platform.chain import valid_member_id
from retail_platform.storage import EventRow, Rejected, Storage
from retail_sync.outbox import OutboxError, prepare_event

FAR = {'year 10000': 253402300800.0, 'year 2100': 4102444800.0, '1e300': 1e300,
       'before 1970': -1.0}
NOT_FORGETTABLE = {'slash': 'm/1', '129 characters': 'm' * 129}


@pytest.mark.parametrize('name', FAR)
def test_a_time_on_no_calendar_day_is_refused_by_the_outbox_and_the_platform(name):
    when = FAR[name]
    answer = check_event(event('customer_appeared', when, {'track_id': 1}), 0)
    assert isinstance(answer, Rejected) and 'between 1970 and 2100' in answer.reason
    with pytest.raises(OutboxError, match='between 1970 and 2100'):
        prepare_event({'type': 'customer_appeared', 'time': when, 'data': {'track_id': 1}})


@pytest.mark.parametrize('name', NOT_FORGETTABLE)
def test_a_customer_id_that_could_not_be_forgotten_is_refused_by_both(name):
    customer = NOT_FORGETTABLE[name]
    answer = check_event(event('greeting', 1.8e9, {'member': True, 'vip': False,
                                                   'appointment': False}, customer), 0)
    assert isinstance(answer, Rejected) and ('member id' in answer.reason or '128' in answer.reason)
    with pytest.raises(OutboxError, match='member id|128'):
        prepare_event({'type': 'greeting', 'customer': customer, 'time': 1.8e9,
                       'data': {'member': True, 'vip': False, 'appointment': False}})
    assert not valid_member_id(customer)


@pytest.mark.parametrize('customer', ['m-0001', '会员-7', 'M.1:x_y'])
def test_every_customer_id_the_platform_stores_can_be_forgotten(customer):
    answer = check_event(event('greeting', 1.8e9, {'member': True, 'vip': False,
                                                   'appointment': False}, customer), 0)
    assert isinstance(answer, EventRow) and valid_member_id(customer)
    assert prepare_event({'type': 'greeting', 'customer': customer, 'time': 0.0,
                          'data': {'member': True, 'vip': False, 'appointment': False}})[2] == customer


def test_an_event_stored_before_times_were_bounded_does_not_stop_the_refresh(engine_target):
    """A database that already holds such an event (stored by an older version) keeps its
    funnel: the event is on no store-day, every other store-day is computed."""
    chain(engine_target)
    storage = Storage(engine_target)
    try:
        store_events(storage, 'robot-1', store_floor_day(DAY))
        far = check_event(event('customer_appeared', 1.8e9, {'track_id': 9}), 0)
        assert isinstance(far, EventRow)
        far.time = 253402300800.0                  # as an older platform stored it
        assert storage.store_events('robot-1', [far]).rejected == 0
        assert funnel.refresh(storage.engine) >= 1
        days = funnel.read(storage.engine, ['s-1'], DAY, DAY)
        assert days and days[0]['appeared'] >= 1
    finally:
        storage.close()
