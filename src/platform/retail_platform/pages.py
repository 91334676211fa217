"""HQ and store-manager pages served by the platform (server-rendered HTML, no script, no CDN).

  GET  /hq/login, POST /hq/login       sign in with a staff token (the same credentials and roles
                                       as the API: admin, analyst, region, store_manager)
  POST /hq/logout                      ends the session (its row is deleted: the cookie is dead)
  GET  /hq                             stores compared and ranked, the funnel, the trend, regions,
                                       robots silent for longer than `silent` minutes
  GET  /hq/regions/{id}                a region's stores;  GET /hq/stores/{id}: a store's funnel,
                                       days and robots (region → store → robot drill-down)
  GET  /hq/export.csv, /hq/export.parquet   the store-days of the range as CSV or Parquet
                                       (retail_platform.funnel_export: the same columns)

Security: every page checks Host (retail_common.web_guard.host_allowed: loopback names, the names in
$RETAILBOT_PLATFORM_PAGE_HOSTS); a POST must carry Origin (or Referer) of this server and the
session's CSRF token; the session cookie is HttpOnly, SameSite=Strict, Path=/hq; sessions live in
the database (every API process agrees; a revoked token ends its sessions at once; 8 hours).
"""
from __future__ import annotations

import hashlib
import hmac
import html
import os
import secrets
import time
from datetime import datetime
from urllib.parse import parse_qs, quote

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from retail_platform import funnel, funnel_export
from retail_platform import loop_schema as lt
from retail_platform import schema as t
from retail_platform.storage import Credential
from retail_common.web_guard import Site, host_allowed, origin_refusal

COOKIE = 'retail_hq'
SESSION_S = 8 * 3600
MAX_FORM = 4096
STAFF = ('admin', 'analyst', 'region', 'store_manager')
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
FUNNEL = (('appeared', 'appeared', '出现'), ('engaged', 'engaged', '互动'),
          ('need_captured', 'need captured', '需求'), ('recommended', 'recommended', '推荐'),
          ('guided', 'guided & arrived', '带路'), ('purchased', 'purchased', '购买'))
RATE_COLUMNS = (('engaged_rate', 'engaged rate'), ('conversion', 'conversion'),
                ('vip_show_rate', 'VIP show'), ('tour_completion', 'tours'),
                ('availability', 'availability'))


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()


def _pct(value) -> str:
    return '–' if value is None else f'{value:.1%}'


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str, csrf: str = '', who: str = '') -> str:
    logout = (f'<form method="post" action="/hq/logout" class="out"><input type="hidden" '
              f'name="csrf" value="{_e(csrf)}"><span>{_e(who)}</span> '
              f'<button type="submit" id="logout">Sign out</button></form>') if csrf else ''
    return f'''<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{_e(title)} · Retailbot HQ</title><style>
body{{font:14px system-ui,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}}
header{{background:#1d2330;color:#fff;padding:10px 24px;display:flex;justify-content:space-between;align-items:center}}
header a{{color:#fff;text-decoration:none;font-weight:600}} main{{padding:16px 24px}}
table{{border-collapse:collapse;background:#fff;margin:8px 0 20px}} th,td{{padding:5px 10px;border-bottom:1px solid #e3e6eb;text-align:right}}
th:first-child,td:first-child{{text-align:left}} th{{background:#eef0f4}}
.bar{{background:#3d7be0;height:16px;display:inline-block;vertical-align:middle}}
.warn{{color:#b3261e;font-weight:600}} .out{{display:inline}} .out span{{margin-right:8px}}
h2{{font-size:16px;margin-top:22px}} .note{{color:#5b6270}} form.range input{{width:110px}}
</style></head><body><header><a href="/hq">Retailbot HQ · 零售机器人总部</a>{logout}</header>
<main>{body}</main></body></html>'''


class Pages:
    def __init__(self, storage, admin_digest: bytes) -> None:
        self.storage = storage
        self.engine = storage.engine
        self.admin_digest = admin_digest
        hosts = [h for h in os.environ.get('RETAILBOT_PLATFORM_PAGE_HOSTS', '').split(',') if h]
        self.site = Site.make(allowed_hosts=hosts, cookie=COOKIE)

    # --- sessions -------------------------------------------------------------------------
    def credential_of(self, token: str) -> tuple[Credential, str] | None:
        if hmac.compare_digest(hashlib.sha256(token.encode('utf-8', 'surrogatepass')).digest(),
                               self.admin_digest):
            return Credential('admin'), ''
        found = self.storage.credential(token)
        if found is None or found.role not in STAFF:
            return None
        return found, _hash(token)

    def login(self, token: str) -> tuple[str, str] | None:
        found = self.credential_of(token)
        if found is None:
            return None
        credential, token_hash = found
        session, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        with self.engine.begin() as c:
            c.execute(lt.page_sessions.delete().where(lt.page_sessions.c.expires_at < time.time()))
            c.execute(lt.page_sessions.insert().values(
                session_hash=_hash(session), token_hash=token_hash, role=credential.role,
                csrf=csrf, expires_at=time.time() + SESSION_S))
        return session, csrf

    def session(self, request: Request) -> tuple[Credential, str]:
        """(credential, csrf) of the request's session; 303 to the login page without one."""
        cookie = request.cookies.get(COOKIE, '')
        row = None
        if cookie and len(cookie) <= 100:
            with self.engine.connect() as c:
                row = c.execute(sa.select(lt.page_sessions).where(
                    lt.page_sessions.c.session_hash == _hash(cookie),
                    lt.page_sessions.c.expires_at > time.time())).first()
        if row is None:
            raise HTTPException(303, 'sign in', headers={'Location': '/hq/login'})
        if row.token_hash == '':
            return Credential('admin'), row.csrf
        with self.engine.connect() as c:
            cred = c.execute(sa.select(t.credentials.c.role, t.credentials.c.scope).where(
                t.credentials.c.token_hash == row.token_hash,
                t.credentials.c.revoked_at.is_(None))).first()
        if cred is None:                                   # revoked: the session ends with it
            self.logout(cookie)
            raise HTTPException(303, 'sign in', headers={'Location': '/hq/login'})
        if cred.role == 'store_manager':
            return Credential('store_manager', stores=frozenset(cred.scope.split(','))), row.csrf
        if cred.role == 'region':
            return Credential('region', region=cred.scope), row.csrf
        return Credential(cred.role), row.csrf

    def logout(self, cookie: str) -> None:
        with self.engine.begin() as c:
            c.execute(lt.page_sessions.delete().where(
                lt.page_sessions.c.session_hash == _hash(cookie)))

    # --- scope ----------------------------------------------------------------------------
    def visible(self, who: Credential) -> list[dict]:
        stores = self.storage.stores()
        if who.role in ('admin', 'analyst'):
            return stores
        if who.role == 'region':
            return [s for s in stores if s['region_id'] == who.region]
        return [s for s in stores if s['id'] in who.stores]

    def regions(self) -> dict[str, str]:
        with self.engine.connect() as c:
            return {r.id: r.name for r in c.execute(sa.select(t.regions.c.id, t.regions.c.name))}


def _range_form(action: str, first: str, last: str, extra: str = '') -> str:
    return (f'<form class="range" method="get" action="{_e(action)}">From <input name="from" '
            f'value="{_e(first)}"> to <input name="to" value="{_e(last)}"> {extra}'
            f'<button type="submit">Show</button> <a id="export" href="/hq/export.csv?from='
            f'{quote(first)}&amp;to={quote(last)}">Export CSV</a> <a id="export-parquet" '
            f'href="/hq/export.parquet?from={quote(first)}&amp;to={quote(last)}">Parquet</a></form>')


def _funnel_bars(total: dict) -> str:
    top = max(total.get('appeared') or 0, 1)
    rows = ''.join(
        f'<tr><td>{_e(en)} · {_e(zh)}</td><td>{total.get(key) or 0}</td><td style="text-align:'
        f'left;width:420px"><span class="bar" style="width:{int(400 * (total.get(key) or 0) / top)}'
        f'px"></span></td></tr>' for key, en, zh in FUNNEL)
    return f'<table id="funnel"><tr><th>stage</th><th>conversations</th><th></th></tr>{rows}</table>'


def _trend_svg(rows: list[dict], days: list[str]) -> str:
    """Engaged and purchased per day, summed over the rows (an inline SVG, no script)."""
    engaged = {d: 0 for d in days}
    bought = {d: 0 for d in days}
    for r in rows:
        if r['day'] in engaged:
            engaged[r['day']] += r.get('engaged') or 0
            bought[r['day']] += r.get('purchased') or 0
    top = max([*engaged.values(), 1])
    width, height = 640, 140
    step = width / max(len(days) - 1, 1)

    def line(values: dict[str, int], colour: str) -> str:
        points = ' '.join(f'{i * step:.1f},{height - 10 - (height - 20) * values[d] / top:.1f}'
                          for i, d in enumerate(days))
        return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
    return (f'<svg id="trend" width="{width}" height="{height}" role="img" aria-label="trend">'
            f'<rect width="100%" height="100%" fill="#fff"/>{line(engaged, "#3d7be0")}'
            f'{line(bought, "#2e9d5b")}</svg><div class="note">blue: engaged · green: purchased '
            f'({_e(days[0])} – {_e(days[-1])}, peak {top})</div>')


def _store_table(totals: list[tuple[dict, dict]], ranked: bool, query: str) -> str:
    head = ''.join(f'<th>{_e(label)}</th>' for _, label, _ in FUNNEL[1:]) + \
        ''.join(f'<th>{_e(label)}</th>' for _, label in RATE_COLUMNS)
    rows = []
    for rank, (store, tot) in enumerate(totals, 1):
        cells = ''.join(f'<td>{tot.get(key) or 0}</td>' for key, _, _ in FUNNEL[1:]) + \
            ''.join(f'<td>{_pct(tot.get(key))}</td>' for key, _ in RATE_COLUMNS)
        rows.append(f'<tr><td>{rank if ranked else ""} <a href="/hq/stores/{quote(store["id"])}{query}">'
                    f'{_e(store["name"])}</a></td><td>{tot.get("appeared") or 0}</td>{cells}</tr>')
    return (f'<table id="stores"><tr><th>store</th><th>appeared</th>{head}</tr>'
            f'{"".join(rows)}</table>')


def _rank_key(item: tuple[dict, dict]) -> tuple:
    store, tot = item
    conversion = tot.get('conversion')
    return (conversion is None, -(conversion or 0), -(tot.get('purchased') or 0), store['id'])


def register(app: FastAPI, storage, admin_digest: bytes) -> None:
    pages = Pages(storage, admin_digest)

    def check_host(request: Request) -> None:
        server = (request.scope.get('server') or ('', 0))[0] or ''
        if not host_allowed(request.headers.get('host', ''), pages.site, server):
            raise HTTPException(421, 'this server does not answer to that host name')

    def check_post(request: Request) -> None:
        check_host(request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        refusal = origin_refusal(headers, request.headers.get('host', ''), COOKIE)
        if refusal or ('origin' not in headers and 'referer' not in headers):
            raise HTTPException(403, refusal or 'a page form must come with Origin')

    async def form(request: Request) -> dict[str, str]:
        from retail_platform.app import read_limited
        body = await read_limited(request, MAX_FORM)
        try:
            fields = parse_qs(body.decode('utf-8'), max_num_fields=10, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            raise HTTPException(400, 'not a form') from None
        return {k: v[0] for k, v in fields.items()}

    def html_answer(text: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(text, status_code=status, headers={
            'Content-Security-Policy': CSP, 'X-Content-Type-Options': 'nosniff',
            'Referrer-Policy': 'same-origin', 'Cache-Control': 'no-store'})

    def login_page(message: str = '') -> str:
        note = f'<p class="warn" id="login-error">{_e(message)}</p>' if message else ''
        return _page('Sign in', f'''<h1>Sign in · 登录</h1>{note}
<form method="post" action="/hq/login"><p>Staff token (from <code>retailbot platform token issue
--role ...</code>)</p><input type="password" name="token" id="token" size="50" autocomplete="off">
<button type="submit" id="sign-in">Sign in</button></form>''')

    @app.get('/hq/login', include_in_schema=False)
    def get_login(request: Request) -> HTMLResponse:
        check_host(request)
        return html_answer(login_page())

    @app.post('/hq/login', include_in_schema=False)
    async def post_login(request: Request) -> Response:
        check_post(request)
        token = (await form(request)).get('token', '').strip()
        made = await run_in_threadpool(pages.login, token) if 0 < len(token) <= 200 else None
        if made is None:
            return html_answer(login_page('That token is not a staff token (or was revoked).'),
                               401)
        session, _ = made
        answer = RedirectResponse('/hq', status_code=303)
        answer.set_cookie(COOKIE, session, max_age=SESSION_S, path='/hq', httponly=True,
                          samesite='strict', secure=request.url.scheme == 'https')
        return answer

    @app.post('/hq/logout', include_in_schema=False)
    async def post_logout(request: Request) -> Response:
        check_post(request)
        _, csrf = await run_in_threadpool(pages.session, request)
        if not hmac.compare_digest((await form(request)).get('csrf', ''), csrf):
            raise HTTPException(403, 'the form\'s CSRF token is wrong')
        await run_in_threadpool(pages.logout, request.cookies.get(COOKIE, ''))
        answer = RedirectResponse('/hq/login', status_code=303)
        answer.delete_cookie(COOKIE, path='/hq')
        return answer

    def window(request: Request) -> tuple[str, str]:
        try:
            return funnel.check_range(request.query_params.get('from'),
                                      request.query_params.get('to'))
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    def overview(request: Request, region: str | None) -> HTMLResponse:
        check_host(request)
        who, csrf = pages.session(request)
        first, last = window(request)
        try:
            silent_min = max(1, min(int(request.query_params.get('silent', '30')), 10_000))
        except ValueError:
            raise HTTPException(422, 'silent must be minutes') from None
        stores = pages.visible(who)
        regions = pages.regions()
        if region is not None:
            if region not in regions:
                raise HTTPException(404, 'no such region')
            stores = [s for s in stores if s['region_id'] == region]
            if not stores:
                raise HTTPException(403, 'none of this region\'s stores is yours')
        query = _e(f'?from={quote(first)}&to={quote(last)}')
        rows = funnel.read(pages.engine, [s['id'] for s in stores], first, last)
        by_store: dict[str, list[dict]] = {}
        for row in rows:
            by_store.setdefault(row['store_id'], []).append(row)
        totals = sorted(((s, funnel.total(by_store.get(s['id'], []))) for s in stores),
                        key=_rank_key)
        by_region: dict[str, list[dict]] = {}
        for s in stores:
            by_region.setdefault(s['region_id'] or '', []).extend(by_store.get(s['id'], []))
        region_rows = ''.join(
            f'<tr><td><a href="/hq/regions/{quote(r)}{query}">{_e(regions.get(r, r))}</a></td>'
            f'<td>{tot["engaged"]}</td><td>{tot["purchased"]}</td><td>{_pct(tot["conversion"])}'
            f'</td></tr>' for r, tot in ((r, funnel.total(x)) for r, x in sorted(by_region.items()))
            if r)
        silent = _silent(pages, stores, silent_min)
        title = regions.get(region, region) if region else (
            'All stores · 全部门店' if who.role in ('admin', 'analyst') else 'Your stores · 我的门店')
        body = (f'<h1>{_e(title)}</h1>' + _range_form(request.url.path, first, last,
                                                      f'silent after <input name="silent" '
                                                      f'value="{silent_min}"> min')
                + '<h2>Funnel · 漏斗</h2>' + _funnel_bars(funnel.total(rows))
                + '<h2>Trend · 趋势</h2>' + _trend_svg(rows, funnel.days(first, last))
                + '<h2>Stores ranked by conversion · 门店排名</h2>' + _store_table(totals, True, query)
                + (f'<h2>Regions · 区域</h2><table id="regions"><tr><th>region</th><th>engaged</th>'
                   f'<th>purchased</th><th>conversion</th></tr>{region_rows}</table>'
                   if region_rows and region is None else '')
                + f'<h2>Robots silent for more than {silent_min} min · 离线机器人</h2>' + silent
                + '<p class="note">Definitions: docs/metrics.md (version '
                  f'{funnel.DEFINITIONS}); a rate with nothing to divide by shows –. '
                  f'<span id="refreshed">Figures as of '
                  f'{_e(_when(funnel.last_refresh(pages.engine)))}</span>.</p>')
        return html_answer(_page(title, body, csrf, who.role))

    @app.get('/hq', include_in_schema=False)
    def get_overview(request: Request) -> HTMLResponse:
        return overview(request, None)

    @app.get('/hq/regions/{region}', include_in_schema=False)
    def get_region(region: str, request: Request) -> HTMLResponse:
        return overview(request, region)

    @app.get('/hq/stores/{store_id}', include_in_schema=False)
    def get_store(store_id: str, request: Request) -> HTMLResponse:
        check_host(request)
        who, csrf = pages.session(request)
        store = next((s for s in pages.visible(who) if s['id'] == store_id), None)
        if store is None:
            raise HTTPException(404, 'no such store among yours')
        first, last = window(request)
        rows = funnel.read(pages.engine, [store_id], first, last)
        tot = funnel.total(rows)
        by_day = {r['day']: r for r in rows}        # a day without a rollup had no activity
        day_rows = ''.join(
            f'<tr><td>{_e(r["day"])}</td>' + ''.join(f'<td>{r.get(k) or 0}</td>'
                                                     for k, _, _ in FUNNEL)
            + f'<td>{_pct(r.get("conversion"))}</td><td>{r.get("attributed_revenue_cny", 0):,.0f}'
              f'</td></tr>' for r in (by_day.get(d, {'day': d}) for d in funnel.days(first, last)))
        robots: dict[str, dict] = {}
        for r in rows:
            for rid, m in r.get('robots', {}).items():
                acc = robots.setdefault(rid, {'conversations': 0, 'engaged': 0, 'recommended': 0,
                                             'guided': 0, 'staff_assists': 0, 'active_minutes': 0,
                                             'last_event': None})
                for k in ('conversations', 'engaged', 'recommended', 'guided', 'staff_assists',
                          'active_minutes'):
                    acc[k] += m.get(k) or 0
                if m.get('last_event'):
                    acc['last_event'] = max(acc['last_event'] or 0, m['last_event'])
        robot_rows = ''.join(
            f'<tr id="robot-{_e(rid)}"><td>{_e(rid)}</td><td>{m["conversations"]}</td>'
            f'<td>{m["engaged"]}</td><td>{m["recommended"]}</td><td>{m["guided"]}</td>'
            f'<td>{m["staff_assists"]}</td><td>{m["active_minutes"]}</td>'
            f'<td>{_e(_when(m["last_event"]))}</td></tr>' for rid, m in sorted(robots.items()))
        head = ''.join(f'<th>{_e(en)}</th>' for _, en, _ in FUNNEL)
        region = store['region_id']
        crumbs = ('<p><a href="/hq">All stores</a>' + (f' › <a href="/hq/regions/{quote(region)}">'
                  f'{_e(pages.regions().get(region, region))}</a>' if region else '')
                  + f' › {_e(store["name"])}</p>')
        body = (crumbs + f'<h1>{_e(store["name"])}</h1>'
                + _range_form(request.url.path, first, last)
                + '<h2>Funnel · 漏斗</h2>' + _funnel_bars(tot)
                + '<table id="rates"><tr>' + ''.join(f'<th>{_e(label)}</th>'
                                                     for _, label in RATE_COLUMNS)
                + '<th>staff assists</th><th>revenue attributed (CNY)</th></tr><tr>'
                + ''.join(f'<td>{_pct(tot.get(k))}</td>' for k, _ in RATE_COLUMNS)
                + f'<td>{tot["staff_assists"]}</td><td>{tot["attributed_revenue_cny"]:,.0f}</td>'
                  '</tr></table>'
                + '<h2>Trend · 趋势</h2>' + _trend_svg(rows, funnel.days(first, last))
                + f'<h2>Days · 每日</h2><table id="days"><tr><th>day</th>{head}<th>conversion</th>'
                  f'<th>revenue (CNY)</th></tr>{day_rows}</table>'
                + '<h2>Robots · 机器人</h2><table id="robots"><tr><th>robot</th>'
                  '<th>conversations</th><th>engaged</th><th>recommended</th><th>guided</th>'
                  '<th>staff assists</th><th>active min</th><th>last event</th></tr>'
                + robot_rows + '</table>')
        return html_answer(_page(store['name'], body, csrf, who.role))

    @app.get('/hq/export.{kind}', include_in_schema=False)
    def export(request: Request, kind: str) -> Response:
        check_host(request)
        if kind not in funnel_export.MEDIA:
            raise HTTPException(404, 'export.csv or export.parquet')
        who, _ = pages.session(request)
        first, last = window(request)
        ids = [s['id'] for s in pages.visible(who)]
        rows = funnel.read(pages.engine, ids, first, last)
        return funnel_export.answer(rows, kind, first, last)


def _when(value) -> str:
    if not value:
        return '–'
    return datetime.fromtimestamp(value, funnel.CHAIN_ZONE).strftime('%Y-%m-%d %H:%M')


def _silent(pages: Pages, stores: list[dict], minutes: int) -> str:
    """Robots of these stores whose newest event is older than `minutes` (or who sent none)."""
    ids = [s['id'] for s in stores]
    now = time.time()
    with pages.engine.connect() as c:
        robots = c.execute(sa.select(t.robots.c.robot_id, t.robots.c.store_id)
                           .where(t.robots.c.store_id.in_(ids))).all()
        e = t.events.c
        last = {}
        for robot in robots:     # one indexed look-up each (robot_id, seq), newest sequence
            last[robot.robot_id] = c.execute(
                sa.select(e.time).where(e.robot_id == robot.robot_id)
                .order_by(e.seq.desc()).limit(1)).scalar()
    rows = []
    for robot in robots:
        seen = last.get(robot.robot_id)
        if seen is None or now - seen > minutes * 60:
            rows.append(f'<tr><td>{_e(robot.robot_id)}</td><td>{_e(robot.store_id)}</td>'
                        f'<td class="warn">{_e(_when(seen))}</td></tr>')
    if not rows:
        return '<p id="silent" class="note">None.</p>'
    return ('<table id="silent"><tr><th>robot</th><th>store</th><th>last event</th></tr>'
            + ''.join(rows) + '</table>')
