"""Closing time at the till: the store's till system sends the day's receipts to the platform as a
till does (`POST /v1/stores/{store}/receipts`, JSON lines, a store credential): the member bought one
of the phones the robot showed her and guided her to; a walk-in paid cash for an air fryer (no
member id, no screen code). The day's funnel then counts her purchase as one the robot helped
(`purchased`, `attributed_revenue_cny` = her receipt), not the walk-in's."""

from __future__ import annotations

import time

from retail_demo import demo_scenario as story
from retail_demo.checks import Observations
from retail_demo.robot_client import StoreClient


def play(robot: StoreClient, seen: Observations) -> None:
    robot.section('At the till')
    shown = [
        p
        for key in ('member_refined_cheaper', 'member_refined_brand', 'member_recommended')
        for p in (seen.get(key) or {}).get('products') or []
        if p is not None
    ]
    if not shown:
        robot.tell('till', 'the member was shown no product: no receipt of hers')
        seen.note('purchase_attributed', receipt=None)
        return
    phone = shown[0]
    store = robot.robot_store()
    fryer = next((p for p in store.catalog.products if p.category == 'air_fryer'), None)
    now = time.time()
    receipts = [
        {
            'receipt_id': f'till-{int(now)}-1',
            'store_id': story.STORE_ID,
            'time': now,
            'member_id': story.MEMBER.customer_id,
            'lines': [{'sku': phone.sku, 'qty': 1, 'price_cny': phone.price_cny}],
        }
    ]
    if fryer is not None:
        receipts.append(
            {
                'receipt_id': f'till-{int(now)}-2',
                'store_id': story.STORE_ID,
                'time': now,
                'lines': [{'sku': fryer.sku, 'qty': 1, 'price_cny': fryer.price_cny}],
            }
        )
    answer = robot.till_receipts(receipts)
    robot.tell(
        'till',
        f'{story.MEMBER.label} bought {phone.name_zh} ({phone.price_cny:g} 元)'
        + (f'; a walk-in paid cash for {fryer.name_zh} ({fryer.price_cny:g} 元)' if fryer else '')
        + f' — the platform: {answer}',
    )
    seen.note('purchase_attributed', receipt={'sku': phone.sku, 'price_cny': phone.price_cny})
