"""The customer screen in a real headless Chromium, live from a real ROS graph: the dialogue
manager answers typed questions, the guide drives a kinematic base, perception events come from
the test (standing in for the camera)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from rclpy.node import Node
from rclpy.parameter import Parameter
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from retail_common.catalog import load_catalog
from retail_interfaces.msg import CustomerEvent
from rostest_support import wait_for
from ui_support import dom_text, text_in, viewport, wait_text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'navigation'))
from guide_support import KinematicBase  # noqa: E402

SHOTS = os.environ.get('RETAIL_UI_SCREENSHOTS')      # a folder: save the key moments there (README pictures)


def shot(browser, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(SHOTS) / f'{name}.png'))


class Camera(Node):
    """Publishes what perception would: people appearing, identified, leaving."""

    def __init__(self, **kwargs) -> None:
        super().__init__('camera_stand_in', **kwargs)
        self.pub = self.create_publisher(CustomerEvent, '/perception/customer_events', 10)

    def event(self, kind: int, track: int, customer_id: str = '', name: str = '', vip: bool = False) -> None:
        self.pub.publish(CustomerEvent(kind=kind, track_id=track, customer_id=customer_id, display_name=name, vip=vip,
                                       confidence=0.9 if customer_id else 0.0))


def start_manager(ros_context, spin, store):
    from retail_dialogue.manager_node import ManagerNode
    manager = ManagerNode(context=ros_context, parameter_overrides=[Parameter('store_dir', value=str(store))])
    spin(manager)
    return manager


def ask(browser, text: str) -> None:
    box = browser.find_element(By.ID, 'ask-text')
    box.clear()
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


def test_attract_loop_then_a_typed_question_shows_the_product_card_and_take_me_there_guides(
        ui_server, browser, ros_context, spin, store):
    from retail_navigation.guide_node import GuideNode
    catalog = load_catalog(store / 'catalog.csv')
    product = next(p for p in catalog.products if p.in_stock and p.zone != 'dock')
    start_manager(ros_context, spin, store)
    base = KinematicBase(context=ros_context)
    # No localisation and no lidar here: the guide drives on odometry alone (with a scan topic and
    # no scans it would rightly refuse to drive: no_lidar).
    guide = GuideNode(context=ros_context, namespace='navigation',
                      parameter_overrides=[Parameter('store_dir', value=str(store)),
                                           Parameter('localization', value=False),
                                           Parameter('scan_topic', value='')])
    goals: list[str] = []
    original = guide._on_goal
    guide.guide_server.register_goal_callback(lambda goal: (goals.append(goal.zone), original(goal))[1])
    spin(base, guide)
    node, url = ui_server()
    browser.get(url + '/?screen=' + node.app.state.screen_secret)      # the kiosk: typed words need its secret
    wait_for(lambda: text_in(browser, '#attract-cards .card-name'), 10, 'the attract loop with offers')
    assert len(browser.find_elements(By.CSS_SELECTOR, '#attract-pages .dot')) >= 2     # offers, then best sellers
    shot(browser, 'screen_attract')

    ask(browser, f'{product.name_zh}多少钱')
    wait_text(browser, '#cards .card-name', product.name_zh, what=f'a card for {product.name_zh}')
    card = f'#cards .card[data-sku="{product.sku}"]'
    price = f'{product.price_cny:.0f}' if product.price_cny == int(product.price_cny) else f'{product.price_cny:.2f}'
    assert '¥' + price in text_in(browser, card)
    wait_text(browser, '#captions .caption.robot', price, what='the robot saying the price as a caption')
    assert product.name_zh in text_in(browser, '#captions .caption.customer')     # what it understood
    shot(browser, 'screen_product_card')

    browser.find_element(By.CSS_SELECTOR, card + ' .take-me-there').click()
    wait_for(lambda: goals, 10, 'a GuideTo goal from the tap on "take me there"')
    assert goals == [product.zone]
    zone_zh = guide.zones.zones[product.zone].name_zh
    wait_text(browser, '#route-destination', zone_zh, what='the destination as text while guiding')
    wait_for(lambda: browser.find_elements(By.ID, 'route-path'), 10, 'the route on the map')
    wait_for(lambda: browser.find_elements(By.ID, 'map-robot'), 10, 'the robot on the map')
    wait_for(lambda: '米' in text_in(browser, '#route-remaining'), 10, 'the distance left')
    assert zone_zh in dom_text(browser)
    shot(browser, 'screen_route')
    browser.find_element(By.ID, 'lang-toggle').click()
    wait_text(browser, '#route-destination', guide.zones.zones[product.zone].name_en, what='the English destination')
    assert ' m to go' in text_in(browser, '#route-remaining')


def test_recognised_vip_gets_the_welcome_card_and_an_unknown_face_nothing_personal(
        ui_server, browser, ros_context, spin, store):
    start_manager(ros_context, spin, store)
    camera = Camera(context=ros_context)
    spin(camera)
    node, url = ui_server()
    browser.get(url + '/?lang=en&screen=' + node.app.state.screen_secret)
    wait_for(lambda: text_in(browser, '#attract-cards .card-name'), 10, 'the attract loop')
    camera.event(CustomerEvent.APPEARED, 41)
    camera.event(CustomerEvent.IDENTIFIED, 41, 'vip-test-01', 'Ms Qiao', vip=True)
    wait_text(browser, '#welcome', 'Ms Qiao', what='the VIP welcome card')
    assert 'home theatre consultation' in text_in(browser, '#welcome .appointment')
    assert 'VIP' in text_in(browser, '#welcome .vip-badge')
    wait_text(browser, '#captions .caption.robot', 'Ms Qiao', what="the robot's VIP greeting as a caption")
    shot(browser, 'screen_vip_welcome')

    camera.event(CustomerEvent.LEFT, 41)
    camera.event(CustomerEvent.APPEARED, 42)                     # somebody nobody knows
    wait_for(lambda: 'Welcome! How can I help you?' in text_in(browser, '#welcome'), 10, 'the anonymous welcome')
    wait_for(lambda: text_in(browser, '#captions .caption.robot'), 10, "the robot's greeting to the new person")
    page = dom_text(browser)
    for personal in ('Qiao', 'home theatre', 'vip-test-01', 'VIP</div>'):
        assert personal not in page, f'{personal!r} shown to an unrecognised person'
    # the face recognition notice and the way to opt out are on screen
    notice = browser.find_element(By.ID, 'face-notice')
    assert notice.is_displayed() and 'Face recognition' in notice.text
    notice.click()
    assert 'withdraw consent' in browser.find_element(By.ID, 'face-dialog').text


def test_vip_check_in_without_a_face_goes_through_the_dialogue(ui_server, browser, ros_context, spin, store):
    import json
    start_manager(ros_context, spin, store)
    node, url = ui_server()
    browser.get(url + '/?lang=en&screen=' + node.app.state.screen_secret)
    browser.find_element(By.ID, 'vip-checkin').click()
    browser.find_element(By.ID, 'checkin-name').send_keys('Qiao Wenjing')
    start = json.loads((store / 'appointments.json').read_text())[0]['start'][11:16]
    browser.execute_script("document.getElementById('checkin-time').value = arguments[0]", start)
    browser.find_element(By.ID, 'checkin-send').click()
    checkin = wait_for(lambda: node.model.checkins.get('apt-ui-1'), 10, 'the appointment found by the dialogue')
    assert checkin['status'] in ('on_time', 'early', 'late', 'missed')       # depends on when the test runs
    wait_text(browser, '#captions .caption.robot', 'Qiao Wenjing', what="the dialogue's check-in answer as a caption")
    assert 'Qiao Wenjing' in text_in(browser, '#captions .caption.customer')


def test_portrait_screen_keeps_the_touch_bar_and_cards_visible(ui_server, browser):
    node, url = ui_server()
    viewport(browser, 800, 1280)
    browser.get(url + '/')
    wait_for(lambda: text_in(browser, '#attract-cards .card-name'), 10, 'the attract loop')
    for element_id in ('ask-text', 'call-staff', 'take-me', 'vip-checkin', 'lang-toggle'):
        element = browser.find_element(By.ID, element_id)
        assert element.is_displayed(), element_id
        rect = element.rect
        assert rect['x'] >= 0 and rect['x'] + rect['width'] <= 800 + 1, f'{element_id} off screen: {rect}'
        assert rect['y'] >= 0 and rect['y'] + rect['height'] <= 1280 + 1, f'{element_id} off screen: {rect}'
    shot(browser, 'screen_portrait')


def test_an_anonymous_customer_sees_her_purchase_code_with_the_recommendations(
        ui_server, browser, ros_context, spin, store):
    """Issue 23: the code the till types on her receipt is on the screen with her products (and the
    same as the recorded `screen_code` event), in both languages."""
    from retail_recommendation.server_node import RecommendationServer
    recommender = RecommendationServer(context=ros_context, namespace='recommendation',
                                       parameter_overrides=[Parameter('store_dir', value=str(store))])
    spin(recommender)
    start_manager(ros_context, spin, store)
    node, url = ui_server()
    wait_for(lambda: recommender._model is not None, 60, 'the recommender ready')
    browser.get(url + '/?screen=' + node.app.state.screen_secret)
    wait_for(lambda: text_in(browser, '#attract-cards .card-name'), 10, 'the attract loop')
    ask(browser, '推荐一台6000以下的笔记本')
    wait_for(lambda: node.model.code, 60, 'a purchase code from the dialogue')
    code = node.model.code
    wait_text(browser, '#purchase-code', code, what='the purchase code on the screen')
    assert '结账时出示此码' in text_in(browser, '#purchase-code')
    assert text_in(browser, '#cards .card-name')                  # shown with the products
    shot(browser, 'screen_purchase_code')
    browser.find_element(By.ID, 'lang-toggle').click()
    wait_text(browser, '#purchase-code', 'Show this code at the till', what='the English wording')
