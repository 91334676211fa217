"""The store day's data-loop numbers for summary.json (issue 23): `funnel`, that day's funnel as
the platform computes it (`GET /v1/funnel`, definitions in docs/metrics.md), and `profile_used`,
whether a returning member's recommendation honoured what she said on an earlier visit (a
`recommendation` event with `profile_used`, its reasons naming it). Both are written into the
transcript too. Pure but for one HTTP call to the platform the day ran against.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Callable

FUNNEL_KEYS = (
    'appeared',
    'conversations',
    'engaged',
    'need_captured',
    'recommended',
    'guided',
    'purchased',
    'attributed_revenue_cny',
    'staff_assists',
    'tours_started',
    'tours_finished',
)


def day_funnel(
    url: str, token: str, tell: Callable[[str, str], None], timeout_s: float = 30.0, fresh_within_s: float = 40.0
) -> dict | None:
    """Today's funnel over the chain (the day in the chain's time zone), or None with the reason
    told (the platform away, an answer without it). The platform's API reads rollups its
    background refresher keeps (`refreshed_at`: when a refresh started): this waits up to
    `fresh_within_s` for one that started after the call, so the day's uploads are in it."""
    import time

    import httpx

    from retail_platform.funnel import CHAIN_ZONE

    day = datetime.now(CHAIN_ZONE).date().isoformat()
    asked = time.time()
    deadline = time.monotonic() + fresh_within_s
    try:
        while True:
            answer = httpx.get(
                f'{url}/v1/funnel',
                params={'from': day, 'to': day},
                timeout=timeout_s,
                headers={'Authorization': f'Bearer {token}'},
            )
            answer.raise_for_status()
            body = answer.json()
            total = body['total']
            refreshed = body.get('refreshed_at')
            if isinstance(refreshed, (int, float)) and refreshed >= asked:
                break
            if time.monotonic() > deadline:
                tell(
                    'platform',
                    f'the funnel of {day} was not refreshed within {fresh_within_s:.0f} s: figures as of '
                    f'{"never" if refreshed is None else datetime.fromtimestamp(refreshed, CHAIN_ZONE).isoformat()}',
                )
                break
            time.sleep(0.5)
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        tell('platform', f'no funnel for {day}: {type(exc).__name__}: {str(exc)[:200]}')
        return None
    if not isinstance(total, dict):
        tell('platform', f'no funnel for {day}: the answer holds no total')
        return None
    funnel = {'day': day, **total}
    if not total.get('store_days'):
        tell('platform', f'no store-day of {day} on the platform (is the robot registered in a store?)')
    tell(
        'platform',
        f'funnel of {day} (definitions v{total.get("definitions")}): '
        + ', '.join(f'{k} {total.get(k)}' for k in FUNNEL_KEYS if k in total),
    )
    return funnel


def profile_used(events: list, tell: Callable[[str, str], None]) -> bool:
    """True when a recommendation of the day was shaped by a returning member's profile (the
    InteractionEvent messages the day's listener kept); its reason is told."""
    for msg in events:
        if getattr(msg, 'type', '') != 'recommendation':
            continue
        try:
            payload = json.loads(msg.payload_json)
        except (ValueError, TypeError):
            continue
        if isinstance(payload, dict) and payload.get('profile_used') is True:
            reasons = [p.get('reason_zh', '') for p in payload.get('products') or [] if isinstance(p, dict)]
            tell(
                'demo',
                f'profile used: a returning member\'s recommendation honoured her earlier visit '
                f'({reasons[0] if reasons else "no reason given"})',
            )
            return True
    tell('demo', 'profile used: no returning member with a profile was recommended to today')
    return False
