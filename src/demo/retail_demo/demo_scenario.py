"""The simulated store day as data: who comes in, what they say, and what the robot must do.

Kept apart from the machinery (demo.py) so the story can be read, and changed, in one place.
Photos are from retail_demo/assets/faces (attribution in its README.md); the people
in them play store customers. Pure: no rclpy.
"""

from __future__ import annotations

from dataclasses import dataclass

ROBOT_ID = 'demo-robot-01'
STORE_ID = 'demo-store'  # the robot's store on the platform
STORE_NAME = 'Demo electronics store'
PLATFORM_TOKEN = 'demo-store-token'
STAFF = '张经理'


@dataclass(frozen=True)
class Customer:
    key: str  # the scenario's name for them
    label: str  # how the transcript calls them
    photo: str  # path below retail_demo/assets/faces
    customer_id: str = ''  # pseudonym when enrolled (member / VIP); '' = anonymous
    name: str = ''  # name the robot greets them by
    vip: bool = False
    enrol_photos: tuple[str, ...] = ()


VIP = Customer(
    'vip',
    '贵宾 林先生',
    'obama/obama2.jpg',
    customer_id='m-900001',
    name='林先生',
    vip=True,
    enrol_photos=('obama/obama.jpg',),
)
MEMBER = Customer(
    'member',
    '会员 王女士',
    'biden/biden2.jpg',
    customer_id='m-000001',
    name='王女士',
    enrol_photos=('biden/biden.jpg',),
)
# A new VIP customer who books while the robot runs: enrolled (with consent) and booked on the
# platform mid-day; the sync must bring the appointment to the running robot.
VIP2 = Customer(
    'vip2',
    '贵宾 齐先生',
    'kit_harington/john2.jpeg',
    customer_id='m-900002',
    name='齐先生',
    vip=True,
    enrol_photos=('kit_harington/john1.jpeg',),
)
SHOPPER = Customer('shopper', '匿名顾客 A', 'rose_leslie/img1.jpg')
LEAVER = Customer('leaver', '匿名顾客 B', 'rose_leslie/img2.jpg')
TOURIST = Customer('tourist', '匿名顾客 C', 'rose_leslie/img1.jpg')
CUSTOMERS = (VIP, MEMBER, SHOPPER, LEAVER)  # enrolled before opening (VIP2 enrols mid-day)

APPOINTMENT_PURPOSE = '新款折叠屏手机的私人体验'
VIP2_PURPOSE = '家庭影院选购咨询'
VIP2_STAFF = '李顾问'
VIP2_MEETING_POINT = 'service_desk'

# What customers say, in order; the demo waits for the robot's answer to each.
VIP_CHECKIN = '是的，帮我签到'
VIP_ACCEPT_ESCORT = '好的，带我过去'
VIP_RETRY = '带我去贵宾室'
VIP2_RETRY = '带我去服务台'
MEMBER_ASK = '帮我推荐一款三千以上的手机'
MEMBER_CATEGORY, MEMBER_MIN_PRICE = 'phone', 3000  # what MEMBER_ASK asks for (catalog category, yuan)
MEMBER_REFINE_BRAND = '那华为的呢'
MEMBER_BRAND = 'Huawei'  # the catalog's brand of MEMBER_REFINE_BRAND
MEMBER_REFINE_CHEAPER = '有没有便宜一点的'
MEMBER_ACCEPT = '好的'
MEMBER_RETRY = '带我去手机数码区'
# She comes back later in the day (scenes/returning.py) and asks again without saying for what: the
# robot recommends from what she said on her first visit (her profile on the platform, synced back).
RETURNING_ASK = '再帮我推荐一下'
PROFILE_SENTENCE = '上次您'  # how the reasons of a recommendation shaped by her profile begin
SHOPPER_ASK = '空气炸锅在哪里'
PROMOTIONS_ASK = '最近有什么优惠活动吗'
SHOPPER_CALL_STAFF = '能帮我叫一下店员吗'
TOUR_ASK = '带我参观一下'
TOUR_NEXT = '下一站'
TOUR_STOP = '结束参观'
LEAVER_ASK = '我想看看电视'
OUTAGE_ASK = '最近有什么优惠活动吗'

# Each expectation the demo checks, in the words printed when it fails.
# Shoppers walking between the zones all day (sim_people; `retailbot demo --shoppers N`), with
# shop-floor drift on (sim_drift). The benchmark runs 8; the day keeps to a few so that someone
# standing in the robot's way does not stretch it past its time limits.
SHOPPERS = 3
# The localisation's error against the simulator's ground truth, paired nearest in time (<= 0.1 s
# apart over DDS, 4.5 cm of travel at full speed): the bench's floor of 15 cm plus that pairing.
LOCALISATION_TOLERANCE_M = 0.20

EXPECTATIONS = {
    'parts_available': 'every part of the robot is installed and its nodes started',
    'vip_identified': 'the VIP is recognised by the camera as 林先生',
    'vip_greeted': 'the VIP is greeted by name with the purpose of the appointment',
    'vip_checked_in': 'the VIP check-in event is sent (on time)',
    'vip_staff_notified': f'staff ({STAFF}) is told the VIP has arrived',
    'vip_escorted': 'the VIP is escorted to the VIP lounge',
    'vip2_booked': 'a second VIP enrolled and booked on the platform mid-day reaches the running robot (sync)',
    'vip2_greeted': 'the second VIP is greeted by name with the purpose of the new appointment',
    'vip2_checked_in': 'the second VIP check-in event is sent (on time)',
    'vip2_staff_notified': f'staff ({VIP2_STAFF}) is told the second VIP has arrived',
    'vip2_escorted': 'the second VIP is escorted to the meeting point of the new appointment (service desk)',
    'member_greeted': 'the member is greeted by name',
    'member_recommended': f'the member gets phone recommendations of {MEMBER_MIN_PRICE} yuan or more with reasons',
    'screen_reasons': 'the screen\'s recommendation cards show each product\'s reason',
    'member_refined_brand': f'"{MEMBER_REFINE_BRAND}": every product shown is a {MEMBER_BRAND} phone',
    'member_refined_cheaper': f'"{MEMBER_REFINE_CHEAPER}": every product shown costs less than those shown before',
    'member_guide_zone': f'"{MEMBER_ACCEPT}": the robot sets off to the zone of the products shown',
    'bumper_stop': 'a bumper hit on the way stops the robot and it apologises',
    'bumper_recovered': 'after the bumper reset the member is guided to the zone of the products (phones)',
    'camera_dropout': 'the camera dropping frames is reported and recovers',
    'shopper_answered': 'the anonymous shopper is told where the air fryers are (kitchen)',
    'promotions_answered': f'"{PROMOTIONS_ASK}" is answered with the store\'s products on promotion',
    'staff_called': 'a call for staff reaches the staff channel',
    'member_returned': f'the member back later: "{RETURNING_ASK}" is answered from her first visit (her profile '
    f'synced from the platform: {MEMBER_BRAND} {MEMBER_CATEGORY}s in the budget she named last): {MEMBER_BRAND} '
    f'first, only phones in that budget, the reasons beginning "{PROFILE_SENTENCE}…"',
    'left_mid_conversation': 'a customer walking away mid-conversation ends the session',
    'tour_started': f'"{TOUR_ASK}" starts the store\'s tour',
    'tour_narrated': 'the first stop of the tour is narrated on arrival there',
    'tour_next': f'"{TOUR_NEXT}" is answered and the tour goes on',
    'tour_ended': f'"{TOUR_STOP}" ends the tour and the robot\'s tour goal is cancelled',
    'outage_queued': 'during the network outage events wait in the robot\'s outbox',
    'sync_restarted': 'the sync node comes back after being killed mid-day',
    'outage_drained': 'after the outage the outbox drains to the platform',
    'no_events_lost': 'every event the robot produced is on the platform (events_lost == 0)',
    'localised': f'the localisation stays within {LOCALISATION_TOLERANCE_M:.2f} m of the simulator\'s ground truth all day '
    '(localisation_error_max_m)',
    'no_contacts': 'the robot touches none of the shoppers walking in the store (contacts == 0)',
    'incident_uploaded': 'the bumper stop\'s incident recording is uploaded to the platform, the robot\'s copy '
    'deleted after the receipt, and the store manager reads it back with the mcap reader (bumper press in it)',
    'fleet_healthy': 'the platform\'s store page shows the robot healthy (its heartbeat)',
    'fleet_staff_answered': 'a call for staff reaches the platform\'s store page with where the robot is (a zone '
    'in the store\'s words) and the customer\'s language; staff answer it there in that language and the robot '
    'speaks the answer in it',
    'fleet_promotion': 'a promotion rolled out from the platform mid-day reaches the running robot '
    '(desired state, rollout done) and is what it answers "any promotions?" with',
    'purchase_attributed': 'the member\'s till receipt for a phone the robot showed her counts in the day\'s funnel '
    'as a purchase the robot helped (purchased >= 1, attributed revenue = her receipt; a walk-in\'s cash sale '
    'is not credited)',
}

# The day's scenes in order, and the expectations each one checks (`retailbot demo --scenes`).
SCENES = {
    'vip': ('vip_identified', 'vip_greeted', 'vip_checked_in', 'vip_staff_notified', 'vip_escorted'),
    'member': (
        'member_greeted',
        'member_recommended',
        'screen_reasons',
        'member_refined_brand',
        'member_refined_cheaper',
        'member_guide_zone',
        'bumper_stop',
        'bumper_recovered',
    ),
    'vip2': ('vip2_booked', 'vip2_greeted', 'vip2_checked_in', 'vip2_staff_notified', 'vip2_escorted'),
    'camera': ('camera_dropout',),
    'shopper': ('shopper_answered', 'promotions_answered', 'staff_called'),
    'returning': ('member_returned',),
    'leaver': ('left_mid_conversation',),
    'tour': ('tour_started', 'tour_narrated', 'tour_next', 'tour_ended'),
    'outage': ('outage_queued', 'sync_restarted', 'outage_drained'),
    'incident': ('incident_uploaded',),
    'fleet': ('fleet_healthy', 'fleet_staff_answered', 'fleet_promotion'),
    'till': ('purchase_attributed',),
}
# A scene that needs an earlier one of the day (she returns: she must have visited first).
NEEDS = {'returning': 'member', 'till': 'member'}
ALWAYS = ('parts_available', 'no_events_lost', 'localised', 'no_contacts')


def expectations_for(scenes: list[str]) -> dict[str, str]:
    """The wording of the expectations checked when only `scenes` are played."""
    keys = set(ALWAYS).union(*(SCENES[scene] for scene in scenes))
    return {key: words for key, words in EXPECTATIONS.items() if key in keys}
