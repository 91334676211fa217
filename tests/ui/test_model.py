"""The screen and console state core: what a customer and a staff member would see."""
from __future__ import annotations

from datetime import datetime

import pytest

from retail_common.catalog import load_catalog
from retail_common.store import Appointment, Store, Zone
from retail_ui.model import UiModel, best_sellers, remaining_distance

CSV = """sku,name_zh,name_en,aliases,category,category_zh,brand,brand_zh,price_cny,zone,stock,tags,promotion
K-1,青松电水壶,Pine Kettle,,kettle,电水壶,pine,青松,199,kitchen_west,4,,满199减20
K-2,青松电水壶Pro,Pine Kettle Pro,,kettle,电水壶,pine,青松,299.5,kitchen_west,0,,
B-1,河马台灯,Hippo Lamp,,lamp,台灯,hippo,河马,89,lighting,7,,
"""
NOW = datetime(2026, 3, 14, 14, 40)


@pytest.fixture
def model(tmp_path):
    path = tmp_path / 'catalog.csv'
    path.write_text(CSV, encoding='utf-8')
    catalog = load_catalog(path)
    zones = {'kitchen_west': Zone('kitchen_west', 'product', '西厨区', 'West Kitchen', (3.0, 4.0, 0.0)),
             'lighting': Zone('lighting', 'product', '灯具区', 'Lighting', (8.0, 1.0, 0.0)),
             'lounge': Zone('lounge', 'service', '贵宾室', 'Lounge', (1.0, 9.0, 0.0))}
    appointments = [Appointment('ap-7', 'c-42', 'Ms Lin Qiao', datetime(2026, 3, 14, 15, 0),
                                    datetime(2026, 3, 14, 16, 0), 'oven demo', 'lounge', 'Zhou'),
                    Appointment('ap-8', 'c-43', 'Mr Gao', datetime(2026, 3, 15, 10, 0),
                                    datetime(2026, 3, 15, 11, 0), 'delivery', 'lounge', 'Zhou')]
    store = Store(catalog=catalog, zones=zones, tours={}, appointments=tuple(appointments))
    return UiModel(store, best_sellers([('B-1', 3), ('K-2', 9), ('K-1', 1)], catalog),
                   clock=lambda: 1.0, wall_clock=lambda: NOW)


def text_of(view) -> str:
    return repr(view)


def test_idle_screen_is_the_attract_loop_with_offers_and_in_stock_best_sellers(model):
    screen = model.screen()
    assert screen['mode'] == 'attract'
    assert [c['sku'] for c in screen['attract']['promotions']] == ['K-1']
    assert [c['sku'] for c in screen['attract']['best_sellers']] == ['B-1', 'K-1']   # K-2 sold out


def test_a_question_about_a_product_shows_its_card(model):
    model.on_heard('青松电水壶多少钱', 'zh')
    model.on_interaction('dialogue_turn', {'intent': 'ask_price', 'slots': {'sku': 'K-1'}})
    model.on_reply('青松电水壶售价199元，有货。', 'zh', 'ask_price')
    screen = model.screen()
    assert screen['mode'] == 'customer' and screen['welcome'] == {'kind': 'anonymous'}
    card, = screen['cards']
    assert (card['name_zh'], card['price'], card['promotion'], card['zone_en'], card['in_stock']) == \
        ('青松电水壶', '199', '满199减20', 'West Kitchen', True)
    assert [c['who'] for c in screen['captions']] == ['customer', 'robot'] and not screen['question']


def test_a_category_question_lists_in_stock_and_offers_first(model):
    model.on_interaction('dialogue_turn', {'intent': 'find_product', 'slots': {'category': 'kettle'}})
    assert [c['sku'] for c in model.screen()['cards']] == ['K-1', 'K-2']
    assert model.screen()['cards'][1]['price'] == '299.50'


def test_recommendation_cards_keep_their_order_and_show_each_reason(model):
    model.on_interaction('recommendation', {
        'skus': ['B-1', 'K-1', 'NOPE'],
        'products': [{'sku': 'B-1', 'price_cny': 89, 'zone': 'lighting', 'reason_zh': '护眼', 'reason_en': 'easy on the eyes'},
                     {'sku': 'K-1', 'price_cny': 199, 'zone': 'kitchen_west', 'reason_zh': '您常买厨房电器',
                      'reason_en': 'you often buy kitchen appliances'},
                     {'sku': 'NOPE', 'reason_zh': '?', 'reason_en': '?'}]})
    screen = model.screen()
    assert screen['cards_kind'] == 'recommendations'
    assert [(c['sku'], c['reason_zh'], c['reason_en']) for c in screen['cards']] == [
        ('B-1', '护眼', 'easy on the eyes'), ('K-1', '您常买厨房电器', 'you often buy kitchen appliances')]


def test_a_refinement_shows_the_products_the_reply_presented_in_its_order(model):
    model.on_interaction('recommendation', {'skus': ['K-2', 'B-1'], 'products': [{'sku': 'K-2'}, {'sku': 'B-1'}]})
    model.on_interaction('dialogue_turn', {'intent': 'refine', 'slots': {'refine': 'cheaper', 'category': 'kettle'},
                                           'products': [{'sku': 'NOPE'}, {'sku': 'K-1', 'price_cny': 199, 'zone': 'kitchen_west'}]})
    screen = model.screen()
    assert screen['cards_kind'] == 'products' and [c['sku'] for c in screen['cards']] == ['K-1']


def test_recommendation_cards_without_reasons_show_none(model):
    model.on_interaction('recommendation', {'skus': ['K-1'], 'products': [{'sku': 'K-1'}, 'junk', {'sku': 7}]})
    assert [(c['sku'], c['reason_zh'], c['reason_en']) for c in model.screen()['cards']] == [('K-1', '', '')]


def test_a_question_from_the_robot_shows_yes_no(model):
    model.on_reply('需要我带您过去吗？', 'zh', 'find_product')
    assert model.screen()['question']
    model.on_reply('All right.', 'en', 'deny')
    assert not model.screen()['question']


def test_recognised_vip_gets_the_appointment_card_and_the_next_unknown_person_nothing_of_it(model):
    model.on_customer('appeared', 5)
    model.on_customer('identified', 5, 'c-42', 'Ms Lin', vip=True)
    model.on_reply('Ms Lin您好，欢迎光临！', 'zh', 'greet')
    welcome = model.screen()['welcome']
    assert welcome['kind'] == 'vip' and welcome['name'] == 'Ms Lin'
    assert welcome['appointment']['time'] == '15:00' and welcome['appointment']['purpose'] == 'oven demo'
    assert welcome['appointment']['meeting_point_en'] == 'Lounge'
    model.on_customer('left', 5)
    model.on_customer('appeared', 6)
    screen = model.screen()
    assert screen['welcome'] == {'kind': 'anonymous'}
    for personal in ('Lin', 'oven', 'c-42', '15:00'):
        assert personal not in text_of(screen)


def test_an_unrecognised_person_never_gets_a_name_even_if_a_name_is_sent(model):
    model.on_customer('appeared', 9, '', 'Somebody', vip=True)     # no customer id: not identified
    assert model.screen()['welcome'] == {'kind': 'anonymous'}
    assert 'Somebody' not in text_of(model.screen())


def test_guiding_shows_the_route_and_distance_left_then_the_arrival_card(model):
    model.on_interaction('guide', {'zone': 'kitchen_west', 'status': 'started'})
    model.on_plan([(0.0, 0.0), (3.0, 0.0), (3.0, 4.0)])
    model.on_pose(1.0, 0.1, 0.0, 'odometry')
    route = model.screen()['route']
    assert model.screen()['mode'] == 'guiding' and route['name_en'] == 'West Kitchen'
    assert route['remaining_m'] == pytest.approx(6.0, abs=0.05) and route['goal'] == [3.0, 4.0]
    model.on_arrival('kitchen_west', '', 0, 1)                # the guide's one-stop mission
    screen = model.screen()
    assert screen['mode'] == 'arrived' and screen['arrival']['name_zh'] == '西厨区' and not screen['arrival']['tour']
    assert [c['sku'] for c in screen['arrival']['products']] == ['K-1']
    model.on_interaction('guide', {'zone': 'kitchen_west', 'status': 'arrived'})   # the same arrival again
    assert model.screen()['mode'] == 'arrived'


def test_a_customer_leaving_while_being_guided_keeps_the_route(model):
    model.on_customer('appeared', 3)
    model.on_interaction('guide', {'zone': 'lighting', 'status': 'started'})
    model.on_customer('left', 3)                   # walks behind the robot, out of the camera's view
    assert model.screen()['mode'] == 'guiding'


def test_localisation_pose_wins_over_dead_reckoning(model):
    model.on_pose(5.0, 5.0, 0.0, 'localization')
    model.on_pose(1.0, 1.0, 0.0, 'odometry')
    assert model.console()['pose'][:2] == [5.0, 5.0]


def test_remaining_distance_projects_onto_the_path():
    path = [(0.0, 0.0), (10.0, 0.0)]
    assert remaining_distance(path, (4.0, 3.0)) == pytest.approx(6.0)
    assert remaining_distance(path, None) == pytest.approx(10.0)
    assert remaining_distance([(1.0, 1.0)], (0.0, 0.0)) == 0.0


def test_console_shows_todays_appointments_with_check_in_and_staff_requests(model):
    model.on_interaction('vip_checkin', {'status': 'early', 'appointment_id': 'ap-7'})
    request = model.on_staff_request({'reason': 'vip_checkin_early', 'appointment_id': 'ap-7', 'meeting_point': 'lounge'})
    console = model.console()
    assert [(a['appointment_id'], a['checked_in']) for a in console['appointments']] == [('ap-7', 'early')]
    assert console['staff_requests'][0]['state'] == 'open'
    assert model.update_request(request['id'], 'acknowledged')['state'] == 'acknowledged'
    assert model.update_request(request['id'], 'done')['state'] == 'done'
    assert model.update_request(request['id'], 'acknowledged')['state'] == 'done'     # done stays done
    assert model.update_request(999, 'done') is None


def test_console_reads_safety_sync_and_link_from_their_reports(model):
    model.on_safety(True, 'bumper pressed', {'bumper_centre': True})
    model.on_diagnostics([('sync: agent', 1, 'platform away, 12 waiting',
                           {'backlog': '12', 'oldest_pending_s': '340', 'last_success_age_s': 'never', 'quarantined': '1'}),
                          ('navigation/base: serial link', 0, 'connected', {'link_state': 'connected'})])
    console = model.console()
    assert console['safety']['latched'] and console['safety']['active'] == ['bumper_centre']
    assert model.screen()['notice'] == 'safety_stop'
    assert (console['sync']['backlog'], console['sync']['oldest_pending_s'], console['sync']['quarantined']) == ('12', '340', '1')
    assert console['link'] == {'state': 'connected', 'level': 'OK'}
    entry = model.log_reset('staff session abc', False, 'bumper still pressed')
    assert entry['reason_before'] == 'bumper pressed' and model.console()['reset_log'][0]['success'] is False


def test_every_change_notifies_listeners(model):
    calls = []
    model.subscribe(lambda: calls.append(model.version))
    model.on_battery(0.56, 16.1, False)
    assert calls == [model.version] and model.console()['battery'] == {'percent': 56, 'voltage': 16.1, 'charging': False}


def test_a_greeting_that_arrives_before_its_person_is_kept_and_the_last_persons_lines_are_not(model):
    model.on_customer('appeared', 1)
    model.on_heard('where are kettles', 'en', 1)
    model.on_customer('left', 1)
    model.on_reply('Hello, welcome!', 'en', 'greet', track_id=2)      # replies and customer events: any order
    model.on_customer('appeared', 2)
    assert [line['text'] for line in model.screen()['captions']] == ['Hello, welcome!']


def test_a_session_end_clears_cards_and_keeps_the_goodbye(model):
    model.on_interaction('dialogue_turn', {'intent': 'find_product', 'slots': {'sku': 'K-1'}})
    model.on_reply('Thank you for visiting, goodbye!', 'en', 'goodbye')
    model.on_interaction('session_end', {'reason': 'goodbye'})
    screen = model.screen()
    assert screen['cards'] == [] and [line['text'] for line in screen['captions']] == ['Thank you for visiting, goodbye!']


def test_a_tour_stop_is_a_narration_card(model):
    model.on_arrival('lighting', '这里是灯具', 1, 3, 'Here are the lamps')
    arrival = model.screen()['arrival']
    assert arrival['tour'] and (arrival['stop_index'], arrival['stop_count']) == (1, 3)
    assert (arrival['narration_zh'], arrival['narration_en']) == ('这里是灯具', 'Here are the lamps')
    assert model.console()['mission']['kind'] == 'tour_stop'


def test_new_store_data_from_the_platform_is_shown(model, tmp_path):
    path = tmp_path / 'new_catalog.csv'
    path.write_text(CSV.replace('199,kitchen_west,4,,满199减20', '179,kitchen_west,4,,限时特价'), encoding='utf-8')
    store = model.store
    model.set_store(Store(catalog=load_catalog(path), zones=store.zones, tours={}, appointments=store.appointments),
                      ['B-1', 'GONE'])
    assert [(c['price'], c['promotion']) for c in model.screen()['attract']['promotions']] == [('179', '限时特价')]
    assert [c['sku'] for c in model.screen()['attract']['best_sellers']] == ['B-1']
    model.set_store(Store(catalog=load_catalog(path), zones=store.zones, tours={}))
    assert model.console()['appointments'] == []


@pytest.mark.parametrize('intent, who', [('staff_answer', 'staff'), ('staff_words', 'staff'),
                                         ('find_product', 'robot'), ('', 'robot')])
def test_staffs_words_from_the_platform_are_shown_as_staffs(model, intent, who):
    """The sync agent publishes staff's answers and typed words on /dialogue/replies with intent
    staff_answer / staff_words (retail_sync.fleet_link.STAFF_INTENTS): the screen marks them."""
    model.on_reply('Kettles are on aisle 4', 'en', intent)
    assert model.captions[-1]['who'] == who


@pytest.mark.parametrize('payload, shown', [({'code': 'K7Q2MX', 'skus': ['K-1']}, 'K7Q2MX'),
                                            ({'code': 7}, ''), ({}, ''), ({'code': 'X' * 40}, 'X' * 12)])
def test_an_anonymous_customers_purchase_code_is_shown_until_the_conversation_ends(model, payload, shown):
    model.on_interaction('recommendation', {'skus': ['K-1'], 'products': [{'sku': 'K-1'}]})
    model.on_interaction('screen_code', payload)
    assert model.screen()['code'] == shown
    model.on_interaction('session_end', {'reason': 'left'})
    assert model.screen()['code'] == ''
