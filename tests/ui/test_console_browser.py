"""The staff console in a real headless Chromium: login, the live map, the safety reset against the
real base driver on the simulated base (pty), enrolment against the real face node."""
from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from selenium.webdriver.common.by import By

from retail_common.store import load_store

from rostest_support import wait_for
from ui_support import STAFF_PASSWORD, data_of, text_in, wait_text

SHOTS = os.environ.get('RETAIL_UI_SCREENSHOTS')
from retail_ros.qos import LATCHED  # noqa: E402


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


FACE_PHOTOS = Path(__file__).resolve().parents[1] / 'data' / 'faces' / 'train'


def test_staff_enrol_the_person_in_front_after_they_agree_on_the_robot_screen_then_delete(
        ui_server, browser, ros_context, spin, tmp_path, monkeypatch):
    """issue 21 item 13 end to end: real camera and faces nodes, the console in one tab, the robot's
    screen in another. Staff pick the person in front; nothing is enrolled until the customer taps
    "I agree" on the screen; the members list and the deletion go through perception's services."""
    import secrets
    import shutil
    from retail_perception.camera_node import CameraNode
    from retail_perception.faces_node import FacesNode
    from retail_perception.gallery import GalleryStore, load_key
    monkeypatch.setenv('RETAILBOT_GALLERY_KEY', secrets.token_hex(32))
    gallery = tmp_path / 'data' / 'faces'
    faces = FacesNode(context=ros_context, namespace='perception',
                      parameter_overrides=[Parameter('gallery_dir', value=str(gallery)),
                                           Parameter('votes_needed', value=1)])
    folder = tmp_path / 'camera'
    folder.mkdir()
    shutil.copy(sorted((FACE_PHOTOS / 'obama').iterdir())[1], folder / 'customer.jpg')
    camera = CameraNode(context=ros_context, parameter_overrides=[
        Parameter('source', value=str(folder)), Parameter('rate_hz', value=5.0),
        Parameter('image_period_s', value=600.0),
        Parameter('width', value=640), Parameter('height', value=360)])
    camera.trigger_configure()
    camera.trigger_activate()
    from rcl_interfaces.msg import Log
    logs = Node('rosout_reader', context=ros_context)
    lines: list[str] = []
    logs.create_subscription(Log, '/rosout', lambda m: lines.append(f'{m.name}: {m.msg}'),
                             QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE))
    spin(logs, faces, camera)
    node, url = ui_server()
    login(browser, url)
    wait_for(lambda: browser.find_element(By.ID, 'dashboard').is_displayed(), 10, 'the dashboard')
    wait_text(browser, '#enroll-person', 'track', timeout=30, what='the person in front on the console')
    console_tab = browser.current_window_handle
    token_file = tmp_path / 'data' / 'ui' / 'screen_token'
    assert token_file.stat().st_mode & 0o777 == 0o600
    browser.switch_to.new_window('tab')
    browser.get(url + '/')                                           # a loopback page without the secret (a tunnel)
    other_tab = browser.current_window_handle
    browser.switch_to.new_window('tab')
    browser.get(url + '/?screen=' + token_file.read_text().strip())  # the kiosk: the robot's own screen
    screen_tab = browser.current_window_handle
    assert 'screen=' not in browser.current_url, 'the secret is taken out of the address bar'
    browser.switch_to.window(console_tab)
    browser.find_element(By.ID, 'enroll-id').send_keys('m-900001')
    browser.find_element(By.ID, 'enroll-name').send_keys('Mr Fang')
    browser.find_element(By.ID, 'enroll-button').click()
    wait_text(browser, '#enroll-message', 'Waiting for the customer')
    assert len(GalleryStore(gallery, load_key()).load()) == 0, 'nothing enrolled before the customer agrees'
    browser.switch_to.window(screen_tab)
    wait_for(lambda: browser.find_element(By.ID, 'consent-dialog').is_displayed(), 10,
             'the consent question on the screen')
    browser.switch_to.window(other_tab)
    wait_for(lambda: browser.execute_script('return state && state.consent_request !== null'), 10,
             'the request reaching the other page')
    assert not browser.find_element(By.ID, 'consent-dialog').is_displayed(), 'only the robot screen asks'
    browser.switch_to.window(screen_tab)
    wait_for(lambda: browser.find_element(By.ID, 'consent-dialog').is_displayed(), 10,
             'the consent question on the screen')
    assert 'Mr Fang' not in text_in(browser, 'body') and 'm-900001' not in text_in(browser, 'body')
    shot(browser, 'screen_consent')
    browser.find_element(By.ID, 'consent-agree').click()
    wait_for(lambda: not browser.find_element(By.ID, 'consent-dialog').is_displayed(), 10, 'the dialog closed')
    browser.switch_to.window(console_tab)
    wait_text(browser, '#enroll-message', 'Enrolled', timeout=20, what='the enrolment outcome on the console')
    member = GalleryStore(gallery, load_key()).load().members['m-900001']
    assert member.name == 'Mr Fang' and member.consent_ref.startswith('screen-')
    browser.find_element(By.ID, 'members-refresh').click()
    wait_text(browser, '#members', 'm-900001', what='the member listed through /perception/list_members')
    browser.execute_script('window.confirm = () => true;')
    delete = ('const b = document.querySelector(\'#members tr[data-id="m-900001"] button.danger\');'
              'if (!b) return false; b.click(); return true;')
    wait_for(lambda: browser.execute_script(delete), 10, 'the delete button')            # the table may redraw
    wait_for(lambda: 'm-900001' not in text_in(browser, '#members'), 10, 'the member gone from the list')
    assert len(GalleryStore(gallery, load_key()).load()) == 0
    # the ROS log (as launch files keep it) never names the member: no name, id or consent reference
    wait_for(lambda: any('deleted' in line for line in lines), 10, 'the deletion in the ROS log')
    assert any('Enrolled the person on track' in line for line in lines), lines
    for word in ('Mr Fang', 'm-900001', member.consent_ref):
        assert not [line for line in lines if word in line], word
    # a client on the network cannot answer for the customer: no screen secret, no consent
    started = httpx.post(url + '/api/console/enroll', headers={'Authorization': f'Bearer {_token(url)}'},
                         json={'customer_id': 'm-900002', 'display_name': 'Ms Gao'})
    assert started.status_code == 202, started.text
    forged = httpx.post(url + '/api/screen/consent', json={'request_id': started.json()['request_id'], 'agree': True})
    assert forged.status_code == 403
    assert len(GalleryStore(gallery, load_key()).load()) == 0


def _token(url: str) -> str:
    return httpx.post(url + '/api/console/login', json={'password': STAFF_PASSWORD}).json()['token']


def test_a_page_on_another_port_cannot_make_the_staff_browser_act(ui_server, browser, tmp_path):
    """issue 21 item 9: the staff browser is logged in; a page served from another port of the
    robot's host posts a form and fetches to the console API. Nothing happens."""
    import http.server
    import threading
    from ui_support import free_port
    node, url = ui_server()
    node.model.on_staff_request({'reason': 'help at checkout'})
    login(browser, url)
    wait_for(lambda: browser.find_element(By.ID, 'dashboard').is_displayed(), 10, 'the dashboard')
    attack = tmp_path / 'attack'
    attack.mkdir()
    (attack / 'index.html').write_text(f"""<!DOCTYPE html><html><body>
<form id="f" method="POST" action="{url}/api/console/reset_safety" target="sink"></form>
<iframe name="sink"></iframe>
<script>
fetch('{url}/api/console/requests/1/done', {{method: 'POST', mode: 'no-cors', credentials: 'include'}})
  .finally(() => {{ document.getElementById('f').submit(); setTimeout(() => {{ document.title = 'done'; }}, 1500); }});
</script></body></html>""")
    port = free_port()
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(attack), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        browser.get(f'http://127.0.0.1:{port}/index.html')
        wait_for(lambda: browser.title == 'done', 15, 'the attack page to run')
    finally:
        httpd.shutdown()
    refused = list(node.app.state.refusals)
    assert any('POST /api/console/reset_safety' in line and 'cross-site' in line for line in refused), refused
    assert any('POST /api/console/requests/1/done' in line and 'cross-site' in line for line in refused), refused
    assert node.model.console()['reset_log'] == [], 'no reset reached the base'
    assert node.model.console()['staff_requests'][0]['state'] == 'open'
    # control: from its own page the same browser session can close the request
    browser.get(url + '/console')
    click_done = ('const b = document.querySelectorAll(\'#requests li[data-id="1"] button\');'
                  'if (!b.length) return false; b[b.length - 1].click(); return true;')
    wait_for(lambda: browser.execute_script(click_done), 10, 'the request on the console')
    wait_for(lambda: node.model.console()['staff_requests'][0]['state'] == 'done', 10, 'the request closed by staff')


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


def test_logout_and_a_password_change_end_the_console_session_in_the_browser(ui_server, browser, tmp_path):
    """issue 21 item 10 in the staff's browser: Logout ends the session on the server (the cookie's
    token is refused afterwards); a password changed while the robot runs ends the open console."""
    from retail_ui.auth import hash_password
    node, url = ui_server()
    login(browser, url)
    wait_for(lambda: browser.find_element(By.ID, 'dashboard').is_displayed(), 10, 'the dashboard')
    token = browser.get_cookie('retail_staff')['value']
    assert httpx.get(url + '/api/console/state', cookies={'retail_staff': token}).status_code == 200
    browser.find_element(By.ID, 'logout').click()
    wait_for(lambda: browser.find_element(By.ID, 'login').is_displayed(), 10, 'the login form after logout')
    assert httpx.get(url + '/api/console/state', cookies={'retail_staff': token}).status_code == 401
    assert httpx.get(url + '/api/console/state', headers={'Authorization': f'Bearer {token}'}).status_code == 401

    login(browser, url)
    wait_for(lambda: browser.find_element(By.ID, 'dashboard').is_displayed(), 10, 'the dashboard again')
    (tmp_path / 'data' / 'ui' / 'staff_secret').write_text(hash_password('a-new-staff-pass-5', iterations=10_000))
    wait_text(browser, '#login-message', 'Session ended', timeout=15, what='the console ended by the new password')
    login(browser, url, 'a-new-staff-pass-5')
    wait_for(lambda: browser.find_element(By.ID, 'dashboard').is_displayed(), 10, 'the new password accepted')
