"""HQ's campaigns in conversation (behaviours/campaign.py, issue 23 point 6): offered only to a
member the platform listed, inside the window, at most once per visit (also when she walks away
and comes back on a new track), in her language, with the products shown; "好的" records
`campaign_accepted` and the guide offer goes on; the campaigns file is read with the store and a
bad one is reported, never offered."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from retail_common import events as ev
from retail_common.campaigns import Campaign, load_campaigns, parse_section
from retail_common.store import PLATFORM_DIR, load_store
from retail_dialogue.behaviours import RULES, campaign
from retail_dialogue.manager import GREETED_MEMORY_S, DialogueManager
from retail_dialogue.session import Record, Say, StartGuide, State

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'
NOW = datetime(2026, 11, 2, 11, 0, 0)


def tv_week(members=('m-tv',), starts=-3600.0, ends=86400.0, skus=('MI-TVS65',)) -> Campaign:
    return Campaign(id='tv-week', name='TV week', skus=tuple(skus),
                    message_zh='电视周：会员购买小米S65立减300元。',
                    message_en='TV week: members save 300 yuan on the Xiaomi S65.',
                    starts_at=NOW.timestamp() + starts, ends_at=NOW.timestamp() + ends,
                    members=frozenset(members))


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope='module')
def store():
    return load_store(DEMO)


def manager(store, *campaigns: Campaign, wall: datetime = NOW) -> DialogueManager:
    return DialogueManager(replace(store, campaigns=campaigns), clock=Clock(), wall_clock=lambda: wall)


def conversing(store, member: str, name: str, *campaigns: Campaign, track: int = 1) -> DialogueManager:
    """A member greeted before her campaigns reached the robot (the sync brings them mid-visit),
    so what follows is the conversation's path, not the greeting's."""
    dm = manager(store)
    dm.on_customer(track, customer_id=member, display_name=name)
    dm.set_store(replace(store, campaigns=campaigns), dm.nlu)
    return dm


def offers(effects) -> list[ev.CampaignOffered]:
    return [e.event for e in effects if isinstance(e, Record) and isinstance(e.event, ev.CampaignOffered)]


def say(effects) -> str:
    return ' '.join(e.text for e in effects if isinstance(e, Say))


@pytest.mark.parametrize('member, campaigns, text, offered', [
    ('m-tv', [tv_week()], '你好', True),
    ('m-tv', [tv_week()], '最近有什么优惠', True),
    ('m-tv', [tv_week()], '空气炸锅在哪', False),                   # she asked for something else
    ('m-tv', [tv_week()], '小米电视有优惠吗', False),                # a product's own offer
    ('m-other', [tv_week()], '你好', False),                        # not in the audience
    ('', [tv_week()], '你好', False),                               # anonymous: never
    ('m-tv', [tv_week(starts=3600)], '你好', False),                # not started
    ('m-tv', [tv_week(ends=-1)], '你好', False),                    # over
    ('m-tv', [tv_week(skus=('NO-SUCH',))], '你好', False),          # nothing of it in the store
    ('m-tv', [tv_week(skus=('HW-MATE60P',))], '你好', False),       # sold out here
    ('m-tv', [], '你好', False),
])
def test_offered_only_to_matching_members_in_the_window(store, member, campaigns, text, offered):
    dm = conversing(store, member, '王丽' if member else '', *campaigns)
    effects = dm.on_utterance(1, text)
    assert bool(offers(effects)) is offered
    assert ('电视周' in say(effects)) is offered


def test_the_offer_shows_the_products_and_yes_is_accepted_and_guides(store):
    dm = conversing(store, 'm-tv', '王丽', tv_week())
    effects = dm.on_utterance(1, '你好')
    [offer] = offers(effects)
    assert offer.campaign_id == 'tv-week' and offer.skus == ['MI-TVS65'] and offer.language == 'zh'
    shown = [p.sku for e in effects if isinstance(e, Say) for p in e.products]
    assert shown == ['MI-TVS65'] and '带您去看看' in say(effects)
    assert dm.sessions[1].state is State.AWAIT_GUIDE
    effects = dm.on_utterance(1, '好的')
    accepted = [e.event for e in effects if isinstance(e, Record) and isinstance(e.event, ev.CampaignAccepted)]
    assert [a.campaign_id for a in accepted] == ['tv-week']
    assert any(isinstance(e, StartGuide) for e in effects)


def test_no_is_not_accepted_and_english_is_answered_in_english(store):
    dm = conversing(store, 'm-tv', 'Li', tv_week())
    effects = dm.on_utterance(1, 'hello')
    assert 'TV week: members save 300 yuan' in say(effects) and offers(effects)[0].language == 'en'
    effects = dm.on_utterance(1, 'no thanks')
    assert not [e for e in effects if isinstance(e, Record) and isinstance(e.event, ev.CampaignAccepted)]
    assert dm.sessions[1].campaign_pending == ''


def test_at_most_once_per_visit_also_on_a_new_track(store):
    other = replace(tv_week(), id='phone-week', skus=('HW-PURA70',), message_zh='手机周。', message_en='Phone week.')
    dm = conversing(store, 'm-tv', '王丽', tv_week(), other)
    assert len(offers(dm.on_utterance(1, '你好'))) == 1
    assert offers(dm.on_utterance(1, '不用了')) == []
    assert offers(dm.on_utterance(1, '你好')) == []                 # not again, nor the second one
    assert offers(dm.on_utterance(1, '有什么优惠')) == []
    dm.on_customer_left(1)
    dm.clock.t += 600                                               # back ten minutes later
    dm.on_customer(7, customer_id='m-tv', display_name='王丽')
    assert offers(dm.on_utterance(7, '你好')) == []
    dm.on_customer_left(7)
    dm.clock.t += campaign.VISIT_S + 1                              # another visit
    # another visit: offered again, now when she is recognised (the greeting carries it)
    assert len(offers(dm.on_customer(9, customer_id='m-tv', display_name='王丽'))) == 1


def test_the_answer_rule_passes_on_and_sits_after_tour_control():
    names = [r.name for r in RULES]
    assert names.index('campaign_answer') == 1 and names[-1] == 'campaign_offer'


def _write(tmp_path: Path, data) -> Path:
    folder = tmp_path / PLATFORM_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / 'campaigns.json'
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding='utf-8')
    return path


def section(*entries) -> dict:
    return {'version': 1, 'at': 0, 'store_id': 's-1', 'active': list(entries)}


GOOD = {'id': 'tv-week', 'name': 'TV week', 'skus': ['MI-TVS65'], 'message_zh': '电视周。',
        'message_en': 'TV week.', 'starts_at': 0, 'ends_at': 4e9, 'members': ['m-tv']}


def test_the_store_reads_the_downlinks_campaigns_file(tmp_path):
    _write(tmp_path, section(GOOD))
    loaded = load_store(DEMO, tmp_path)
    assert [c.id for c in loaded.campaigns] == ['tv-week'] and loaded.campaigns[0].offers_to('m-tv', 1e9)
    assert not loaded.campaigns[0].offers_to('', 1e9) and not loaded.campaigns[0].offers_to('m-tv', 5e9)


@pytest.mark.parametrize('data, words', [
    ('{not json', 'not UTF-8 JSON'),
    ({'version': 2, 'active': []}, 'version 2'),
    (section({**GOOD, 'members': 'm-tv'}), 'members must be a list'),
    (section({**GOOD, 'ends_at': -1}), 'not after starts_at'),
    (section({**GOOD, 'message_zh': 'x' * 301}), 'message_zh'),
    (section({**GOOD, 'starts_at': float('nan')}), 'starts_at'),
    (section({**GOOD, 'skus': []}), 'skus is empty'),
])
def test_a_bad_campaigns_file_is_reported_and_nothing_bad_is_offered(tmp_path, data, words):
    path = _write(tmp_path, data)
    campaigns, issues = load_campaigns(path)
    assert campaigns == () and len(issues) == 1 and words in issues[0], issues
    assert load_store(DEMO, tmp_path).campaigns == ()


def test_one_bad_campaign_does_not_hide_the_others():
    campaigns, issues = parse_section(section(GOOD, {**GOOD, 'id': ''}))
    assert [c.id for c in campaigns] == ['tv-week'] and 'active[1]' in issues[0]


# -- offered at recognition: the greeting carries the campaign (one path with the conversation's) --
def greets(effects) -> list[Say]:
    return [e for e in effects if isinstance(e, Say) and e.intent == 'greet']


def accepted(effects) -> list[str]:
    return [e.event.campaign_id for e in effects if isinstance(e, Record) and isinstance(e.event, ev.CampaignAccepted)]


def test_a_recognised_member_is_offered_her_campaign_in_the_greeting_and_yes_is_accepted(store):
    dm = manager(store, tv_week())
    effects = dm.on_customer(1, customer_id='m-tv', display_name='王丽')
    [greeting] = greets(effects)            # one reply: the greeting carries the offer
    assert greeting.text.startswith('王丽您好，欢迎回来！') and '电视周：会员购买小米S65立减300元。' in greeting.text
    assert '带您去看看' in greeting.text and [p.sku for p in greeting.products] == ['MI-TVS65']
    [offer] = offers(effects)
    assert offer.campaign_id == 'tv-week' and offer.language == 'zh'
    assert [e.event.TYPE for e in effects if isinstance(e, Record)] == ['campaign_offered', 'greeting']
    assert dm.sessions[1].state is State.AWAIT_GUIDE
    effects = dm.on_utterance(1, '好的')
    assert accepted(effects) == ['tv-week'] and any(isinstance(e, StartGuide) for e in effects)


@pytest.mark.parametrize('member, name, campaigns, offered', [
    ('m-tv', '王丽', [tv_week()], True),
    ('m-tv', '', [tv_week()], True),                  # recognised, no name to say: still hers
    ('m-other', '李雷', [tv_week()], False),          # not in the audience: the plain greeting
    ('', '', [tv_week()], False),                     # anonymous: never
    ('m-tv', '王丽', [tv_week(ends=-1)], False),      # over
    ('m-tv', '王丽', [tv_week(skus=('HW-MATE60P',))], False),   # sold out here
])
def test_offered_at_recognition_only_to_matching_members(store, member, name, campaigns, offered):
    dm = manager(store, *campaigns)
    effects = dm.on_customer(1, customer_id=member, display_name=name)
    [greeting] = greets(effects)
    assert bool(offers(effects)) is offered and ('电视周' in greeting.text) is offered
    if not offered:
        assert greeting.text in ('您好，欢迎光临！请问有什么可以帮您？', f'{name}您好，欢迎回来！今天想看点什么？')


def test_offered_at_recognition_at_most_once_per_visit_across_paths_and_tracks(store):
    dm = manager(store, tv_week())
    assert len(offers(dm.on_customer(1, customer_id='m-tv', display_name='王丽'))) == 1
    assert offers(dm.on_utterance(1, '不用了')) == [] and accepted([]) == []
    assert offers(dm.on_utterance(1, '你好')) == [] and offers(dm.on_utterance(1, '有什么优惠')) == []
    dm.on_customer_left(1)
    dm.clock.t += GREETED_MEMORY_S + 1
    effects = dm.on_customer(5, customer_id='m-tv', display_name='王丽')     # greeted again an hour later
    assert greets(effects) and offers(effects) == []                          # same visit: no offer
    dm.on_customer_left(5)
    dm.clock.t += campaign.VISIT_S + 1
    assert len(offers(dm.on_customer(9, customer_id='m-tv', display_name='王丽'))) == 1   # another visit


def test_offered_in_conversation_first_means_not_again_at_recognition(store):
    dm = manager(store, tv_week())
    dm.on_customer(1)                                                  # greeted before she is named
    dm.on_customer(1, customer_id='m-tv', display_name='王丽')          # named on the same track
    effects = dm.on_utterance(1, '你好')
    assert len(offers(effects)) == 1
    dm.on_customer_left(1)
    dm.clock.t += 3600.0
    assert offers(dm.on_customer(4, customer_id='m-tv', display_name='王丽')) == []


def test_the_greeting_offer_is_in_the_language_she_last_spoke_and_says_what_she_said(store):
    from retail_common.profiles import MemberProfile
    profile = MemberProfile(category='tv', max_price=5000.0, language='en')
    dm = DialogueManager(replace(store, campaigns=(tv_week(),), profiles={'m-tv': profile}), clock=Clock(),
                         wall_clock=lambda: NOW)
    effects = dm.on_customer(1, customer_id='m-tv', display_name='Li')
    [greeting] = greets(effects)
    assert greeting.language == 'en' and greeting.text.startswith('Hello Li, welcome back! last time you were')
    assert 'TV week: members save 300 yuan on the Xiaomi S65.' in greeting.text and 'Shall I take you there?' in greeting.text
    assert offers(effects)[0].language == 'en'
    assert [e.event.profile for e in effects if isinstance(e, Record) and isinstance(e.event, ev.Greeting)] == [True]


def test_a_vip_with_an_appointment_is_asked_to_check_in_not_offered_a_campaign(store):
    from datetime import timedelta
    from retail_common.store import Appointment
    vip = Appointment('a-1', 'm-vip', '林先生', NOW, NOW + timedelta(hours=1), '新款折叠屏手机的私人体验',
                      'vip_lounge', '张经理')
    store = replace(store, appointments=(vip,))
    hers = replace(tv_week(members=(vip.customer_id,)), starts_at=vip.start.timestamp() - 3600,
                   ends_at=vip.start.timestamp() + 3600)
    dm = DialogueManager(replace(store, campaigns=(hers,)), clock=Clock(), wall_clock=lambda: vip.start)
    effects = dm.on_customer(1, customer_id=vip.customer_id, display_name='林先生', vip=True)
    assert offers(effects) == [] and dm.sessions[1].state is State.AWAIT_CHECKIN
