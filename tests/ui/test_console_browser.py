"""The staff console in a real headless Chromium: login, the live map, the safety reset against the
real base driver on the simulated base (pty), enrolment against the real face node."""
from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from selenium.webdriver.common.by import By

from retail_common.store import load_store

from rostest_support import wait_for
from ui_support import STAFF_PASSWORD, data_of, text_in, wait_text

SHOTS = os.environ.get('RETAIL_UI_SCREENSHOTS')
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


def shot(browser, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(SHOTS) / f'{name}.png'))


def login(browser, url: str, password: str = STAFF_PASSWORD) -> None:
    browser.get(url + '/console')
    wait_for(lambda: browser.find_element(By.ID, 'login').is_displayed(), 10, 'the login form')
    browser.find_element(By.ID, 'password').send_keys(password)
    browser.find_element(By.ID, 'login-button').click()


class MapPublisher(Node):
    """Publishes the store's map on /map (latched), as the guide does."""

    def __init__(self, map_yaml: Path, **kwargs) -> None:
        super().__init__('map_stand_in', **kwargs)
        from array import array
        from nav_msgs.msg import OccupancyGrid
        from retail_navigation.maps import load_map
        m = load_map(map_yaml)
        msg = OccupancyGrid()
        msg.header.frame_id = 'map'
        msg.info.resolution = float(m.resolution)
        msg.info.width, msg.info.height = m.width, m.height
        msg.info.origin.position.x, msg.info.origin.position.y = float(m.origin[0]), float(m.origin[1])
        msg.info.origin.orientation.w = 1.0
        msg.data = array('b', m.grid.tobytes())
        self.pub = self.create_publisher(OccupancyGrid, '/map', LATCHED)
        self.pub.publish(msg)


class CameraFrames(Node):
    """A camera on /perception/image_raw (an empty shop floor, 320x180, 5 frames/s)."""

    def __init__(self, **kwargs) -> None:
        super().__init__('camera_frames', **kwargs)
        import numpy as np
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image
        from retail_perception.image_convert import to_image_msg
        self.msg = to_image_msg(np.full((180, 320, 3), 180, np.uint8))
        self.pub = self.create_publisher(Image, '/perception/image_raw', qos_profile_sensor_data)
        self.create_timer(0.2, lambda: self.pub.publish(self.msg))


def test_console_refuses_without_login_and_rate_limits_guessing(ui_server, browser):
    node, url = ui_server(login_max_failures=3)
    for method, path in (('GET', '/api/console/state'), ('POST', '/api/console/reset_safety'),
                         ('GET', '/api/console/members'), ('GET', '/api/console/preview.jpg'),
                         ('POST', '/api/console/enroll')):
        assert httpx.request(method, url + path, json={}).status_code == 401, path
    assert httpx.get(url + '/api/console/state', headers={'Authorization': 'Bearer made-up'}).status_code == 401
    browser.get(url + '/console')
    wait_for(lambda: browser.find_element(By.ID, 'login').is_displayed(), 10, 'the login form')
    assert not browser.find_element(By.ID, 'dashboard').is_displayed()
    login(browser, url, 'not-the-password')
    wait_text(browser, '#login-message', 'Wrong password')
    for _ in range(2):
        httpx.post(url + '/api/console/login', json={'password': 'guess'})
    locked = httpx.post(url + '/api/console/login', json={'password': STAFF_PASSWORD})
    assert locked.status_code == 429 and int(locked.headers['Retry-After']) > 0
    openapi = httpx.get(url + '/api/openapi.json').json()
    assert '/api/console/reset_safety' in openapi['paths'] and '/api/console/enroll' in openapi['paths']


def test_console_shows_the_robot_on_the_map_and_resets_a_bumper_stop_only_once_released(
        ui_server, browser, ros_context, spin, base_sim, store):
    from rclpy.lifecycle import TransitionCallbackReturn
    from retail_navigation import protocol as p
    from retail_navigation.base_driver_node import BaseDriverNode
    sim = base_sim()
    base = BaseDriverNode(context=ros_context, namespace='navigation',
                          parameter_overrides=[Parameter('port', value=str(sim.link)),
                                               Parameter('diagnostics_period_s', value=0.3)])
    spin(base, MapPublisher(store / 'map.yaml', context=ros_context))
    assert base.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert base.trigger_activate() == TransitionCallbackReturn.SUCCESS
    node, url = ui_server()
    login(browser, url)
    wait_for(lambda: browser.find_element(By.ID, 'dashboard').is_displayed(), 10, 'the dashboard after login')
    dock = load_store(store).zones['dock'].pose
    robot = wait_for(lambda: data_of(browser, 'map-robot'), 10, 'the robot on the live map')
    assert float(robot['x']) == pytest.approx(dock[0], abs=0.05) and float(robot['y']) == pytest.approx(dock[1], abs=0.05)
    assert browser.execute_script("return document.querySelector('#console-map image') !== null"), 'the store map'
    wait_for(lambda: 'connected' in text_in(browser, '#link'), 10, 'the base link state')
    wait_for(lambda: '%' in text_in(browser, '#battery'), 10, 'the battery')

    sim.handle_control({'cmd': 'bumper', 'bits': p.BUMPER_CENTRE})
    wait_text(browser, '#safety', 'STOPPED', what='the latched bumper stop on the console')
    assert 'bumper' in text_in(browser, '#safety').lower()
    shot(browser, 'console_bumper_stop')
    reset = browser.find_element(By.ID, 'reset-safety')
    assert reset.is_enabled()
    reset.click()                                                   # still pressed: the base refuses
    wait_text(browser, '#reset-message', 'Not reset', what='the refused reset while the bumper is pressed')
    assert 'STOPPED' in text_in(browser, '#safety')
    sim.handle_control({'cmd': 'bumper', 'bits': 0})
    wait_text(browser, '#safety', 'sensors clear', what='the released bumper (still latched)')
    assert 'STOPPED' in text_in(browser, '#safety')                 # nothing resets by itself
    browser.find_element(By.ID, 'reset-safety').click()
    wait_text(browser, '#reset-message', 'cleared', what='the reset accepted')
    wait_for(lambda: 'STOPPED' not in text_in(browser, '#safety') and 'clear' in text_in(browser, '#safety'), 10,
             'the safety state clear')
    log = [entry['success'] for entry in node.model.console()['reset_log']]
    assert log == [True, False]                                     # both presses logged, newest first


def test_enrolment_refuses_without_a_consent_reference(ui_server, browser, ros_context, spin, tmp_path, monkeypatch):
    from retail_perception.faces_node import FacesNode
    from retail_perception.gallery import GalleryStore, load_key, new_key_text
    key_file = tmp_path / 'gallery.key'
    key_file.write_text(new_key_text())
    gallery = tmp_path / 'data' / 'faces'
    faces = FacesNode(context=ros_context, namespace='perception',
                      parameter_overrides=[Parameter('gallery_dir', value=str(gallery)),
                                           Parameter('key_file', value=str(key_file))])
    camera = CameraFrames(context=ros_context)
    spin(faces, camera)
    node, url = ui_server(key_file=str(key_file))
    login(browser, url)
    wait_for(lambda: browser.find_element(By.ID, 'dashboard').is_displayed(), 10, 'the dashboard')
    wait_for(lambda: browser.execute_script("return document.getElementById('preview').naturalWidth") == 320, 10,
             'the live camera preview for enrolment')
    browser.find_element(By.ID, 'enroll-id').send_keys('m-900001')
    browser.find_element(By.ID, 'enroll-name').send_keys('Mr Fang')
    browser.find_element(By.ID, 'enroll-button').click()
    wait_text(browser, '#enroll-message', 'Consent reference required')
    token = httpx.post(url + '/api/console/login', json={'password': STAFF_PASSWORD}).json()['message']
    refused = httpx.post(url + '/api/console/enroll', headers={'Authorization': f'Bearer {token}'},
                         json={'customer_id': 'm-900001', 'display_name': 'Mr Fang', 'consent_ref': '   '})
    assert refused.status_code == 422 and 'consent' in refused.json()['message']
    # with consent but nobody in front of the camera, perception refuses and the console says why
    browser.find_element(By.ID, 'enroll-consent').send_keys('CONSENT-2026-0042')
    browser.find_element(By.ID, 'enroll-button').click()
    wait_text(browser, '#enroll-message', 'Not enrolled')
    assert len(GalleryStore(gallery, load_key(key_file)).load()) == 0


def test_appointments_downlinked_after_start_reach_the_console(ui_server, ros_context, spin, tmp_path):
    import json
    from datetime import datetime
    from retail_interfaces.msg import DataUpdate
    node, url = ui_server()
    fresh = tmp_path / 'data' / 'platform' / 'appointments.json'      # where the sync downlink writes it
    fresh.parent.mkdir(parents=True, exist_ok=True)
    start = datetime.now().replace(hour=17, minute=30, second=0, microsecond=0)
    fresh.write_text(json.dumps([{'appointment_id': 'apt-new', 'customer_id': 'c-9', 'name': 'Ms Du',
                                  'start': start.isoformat(), 'end': start.replace(hour=18).isoformat(),
                                  'purpose': 'fridge delivery', 'meeting_point': 'service_desk'}]))
    publisher = Node('sync_stand_in', context=ros_context)
    pub = publisher.create_publisher(DataUpdate, '/sync/data_updates', LATCHED)
    spin(publisher)
    pub.publish(DataUpdate(kind='appointments', path=str(fresh), version='v2'))
    token = httpx.post(url + '/api/console/login', json={'password': STAFF_PASSWORD}).json()['message']

    def names():
        state = httpx.get(url + '/api/console/state', headers={'Authorization': f'Bearer {token}'}).json()
        return [a['name'] for a in state['appointments']]
    wait_for(lambda: 'Ms Du' in names(), 10, 'the new appointment on the console')   # beside the store folder's
