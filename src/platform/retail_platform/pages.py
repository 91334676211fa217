"""HQ and store-manager pages served by the platform (server-rendered HTML, no script, no CDN).

  GET  /hq/login, POST /hq/login       sign in with a staff token (the same credentials and roles
                                       as the API: admin, analyst, region, store_manager)
  POST /hq/logout                      ends the session (its row is deleted: the cookie is dead)
  GET  /hq                             stores compared and ranked, the funnel, the trend, regions,
                                       robots silent for longer than `silent` minutes; the ranking,
                                       the silent robots and the fleet table are paged (?page=N,
                                       ?silent_page=N, ?fleet_page=N, 50 a page; sorted, counted
                                       and cut by the database); a page past the end of the
                                       ranking or the fleet table is a 404 page saying so
  GET  /hq/regions/{id}                a region's stores;  GET /hq/stores/{id}: a store's funnel,
                                       days and robots (region → store → robot drill-down)
  GET  /hq/export.csv, /hq/export.parquet   the store-days of the range as CSV or Parquet
                                       (retail_platform.funnel_export: the same columns)
  Fleet (the platform's fleet.py):     /hq lists each store's robots per state and silent stores
                                       (hq.fleet_stores: the fleet's numbers, paged in SQL);
                                       /hq/stores/{id} shows its robots (healthy / degraded /
                                       silent, last heartbeat, software version, backlog), its
                                       alert tasks and staff calls
  POST /hq/stores/{id}/tasks/{task}    acknowledge / resolve a task (admin, the store's manager)
  POST /hq/stores/{id}/calls/{call}    answer a staff call, type words the robot speaks as staff's,
                                       or close it (admin, the store's manager)

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
from collections.abc import Callable
from datetime import datetime
from urllib.parse import parse_qs, quote, urlencode

import sqlalchemy as sa
from pydantic import ValidationError
from fastapi import FastAPI, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from retail_platform import funnel, funnel_export, hq
from retail_platform.app import a_credential
from retail_platform import loop_schema as lt
from retail_platform import schema as t
from retail_platform.storage import Credential, credential_of, who_did
from retail_common.web_guard import Site, host_allowed, origin_refusal

COOKIE = 'retail_hq'
SESSION_S = 8 * 3600
MAX_FORM = 4096
PER_PAGE = 50          # stores of the ranking, robots of the silent list, a page
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
            return Credential('admin'), self.admin_digest.hex()
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

    def session(self, request: Request, c: sa.Connection | None = None
                ) -> tuple[Credential, str]:
        """(credential, csrf) of the request's session; 303 to the login page without one.
        One statement (the session with its credential, if not revoked), on `c` when given."""
        cookie = request.cookies.get(COOKIE, '')
        row = None
        if cookie and len(cookie) <= 100:
            ps, cr = lt.page_sessions.c, t.credentials.c
            query = sa.select(ps.token_hash, ps.csrf, cr.role, cr.scope, cr.name).select_from(
                lt.page_sessions.outerjoin(t.credentials, sa.and_(
                    cr.token_hash == ps.token_hash, cr.revoked_at.is_(None)))).where(
                ps.session_hash == _hash(cookie), ps.expires_at > time.time())
            if c is None:
                with hq.reading(self.engine) as c:
                    row = c.execute(query).first()
            else:
                row = c.execute(query).first()
        if row is None:
            raise HTTPException(303, 'sign in', headers={'Location': '/hq/login'})
        # The serve credential's session holds that credential's hash: a platform restarted with
        # another --token (a leaked one replaced) ends the sessions signed in with the old one
        # (they were kept as '' and stayed admin for 8 hours).
        if hmac.compare_digest(row.token_hash, self.admin_digest.hex()):
            return Credential('admin'), row.csrf
        if row.role is None:                               # revoked: the session ends with it
            self.logout(cookie)
            raise HTTPException(303, 'sign in', headers={'Location': '/hq/login'})
        return credential_of(row.role, row.scope, row.name), row.csrf

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

    def regions(self, c: sa.Connection | None = None) -> dict[str, str]:
        query = sa.select(t.regions.c.id, t.regions.c.name)
        if c is None:
            with hq.reading(self.engine) as c:
                return {r.id: r.name for r in c.execute(query)}
        return {r.id: r.name for r in c.execute(query)}


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
    peak = max([*engaged.values(), 0])
    top = max(peak, 1)                  # the scale (an empty range draws flat lines)
    width, height = 640, 140
    step = width / max(len(days) - 1, 1)

    def line(values: dict[str, int], colour: str) -> str:
        points = ' '.join(f'{i * step:.1f},{height - 10 - (height - 20) * values[d] / top:.1f}'
                          for i, d in enumerate(days))
        return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
    return (f'<svg id="trend" width="{width}" height="{height}" role="img" aria-label="trend">'
            f'<rect width="100%" height="100%" fill="#fff"/>{line(engaged, "#3d7be0")}'
            f'{line(bought, "#2e9d5b")}</svg><div class="note">blue: engaged · green: purchased '
            f'({_e(days[0])} – {_e(days[-1])}, peak {peak})</div>')


def _store_table(totals: list[tuple[dict, dict]], offset: int, query: str) -> str:
    """A page of the ranking (ranks from `offset` + 1)."""
    head = ''.join(f'<th>{_e(label)}</th>' for _, label, _ in FUNNEL[1:]) + \
        ''.join(f'<th>{_e(label)}</th>' for _, label in RATE_COLUMNS)
    rows = []
    for rank, (store, tot) in enumerate(totals, offset + 1):
        cells = ''.join(f'<td>{tot.get(key) or 0}</td>' for key, _, _ in FUNNEL[1:]) + \
            ''.join(f'<td>{_pct(tot.get(key))}</td>' for key, _ in RATE_COLUMNS)
        rows.append(f'<tr><td>{rank} <a href="/hq/stores/{quote(store["id"])}{query}">'
                    f'{_e(store["name"])}</a></td><td>{tot.get("appeared") or 0}</td>{cells}</tr>')
    return (f'<table id="stores"><tr><th>store</th><th>appeared</th>{head}</tr>'
            f'{"".join(rows)}</table>')


def _page_number(request: Request, name: str) -> int:
    """A page number of the query (1 when absent); 422 naming the parameter when it is not one."""
    raw = request.query_params.get(name, '1')
    # ASCII digits only: '²'.isdigit() is True but int('²') raises (that was a 500)
    number = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 7 else 0
    if number < 1:
        raise HTTPException(422, f'{name} must be a page number (1, 2, ...)')
    return number


def _pager(path: str, params: dict[str, str], name: str, page: int, pages: int,
           shown: str) -> str:
    """'stores 51–100 of 1000 · page 2 of 20' with links to the first, previous, next and last
    pages (the other parameters kept)."""
    def link(number: int, words: str, ident: str) -> str:
        target = _e(f'{path}?{urlencode({**params, name: str(number)})}')
        return f' <a id="{name}-{ident}" href="{target}">{_e(words)}</a>'
    links = ''
    if page > 1:
        links += link(1, '« first', 'first') + link(page - 1, '‹ previous', 'previous')
    if page < pages:
        links += link(page + 1, 'next ›', 'next') + link(pages, 'last »', 'last')
    return (f'<p class="pager" id="{name}-pager">{_e(shown)} · page {page} of {pages}'
            f'{links}</p>')


def _region_table(names: dict[str, str], totals: dict[str, dict], query: str) -> str:
    rows = ''.join(
        f'<tr><td><a href="/hq/regions/{quote(r)}{query}">{_e(names.get(r, r))}</a></td>'
        f'<td>{tot["engaged"]}</td><td>{tot["purchased"]}</td><td>{_pct(tot["conversion"])}'
        f'</td></tr>' for r, tot in sorted(totals.items()))
    return (f'<h2>Regions · 区域</h2><table id="regions"><tr><th>region</th><th>engaged</th>'
            f'<th>purchased</th><th>conversion</th></tr>{rows}</table>' if rows else '')


def register(app: FastAPI, storage, admin_digest: bytes) -> None:
    pages = Pages(storage, admin_digest)

    def check_host(request: Request) -> None:
        server = (request.scope.get('server') or ('', 0))[0] or ''
        if not host_allowed(request.headers.get('host', ''), pages.site, server):
            raise HTTPException(421, 'this server does not answer to that host name')

    def check_post(request: Request) -> None:
        check_host(request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        refusal = origin_refusal(headers, request.headers.get('host', ''), COOKIE,
                                 request.url.scheme)
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

    from fastapi.exception_handlers import http_exception_handler
    from starlette.exceptions import HTTPException as StarletteHTTPException

    async def page_error(request: Request, exc: StarletteHTTPException) -> Response:
        """A refusal on a page (a form's bad field, a wrong CSRF token or Origin, no such store)
        is a page with the message and a way back, with the same status; the API's answers
        stay JSON. Redirects (sign in) stay redirects."""
        path = request.url.path
        if exc.status_code < 400 or not (path == '/hq' or path.startswith('/hq/')):
            return await http_exception_handler(request, exc)
        answer = html_answer(_page('Not done', f'''<h1>Not done · 未完成</h1>
<p class="warn" id="page-error">{_e(exc.detail)}</p>
<p><a href="/hq" id="back">Back to the overview · 返回</a></p>'''), exc.status_code)
        for key, value in (exc.headers or {}).items():
            answer.headers[key] = value
        return answer
    app.add_exception_handler(StarletteHTTPException, page_error)

    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    async def page_field_error(request: Request, exc: RequestValidationError) -> Response:
        path = request.url.path
        first = (exc.errors() or [{}])[0]
        where = '.'.join(str(part) for part in first.get('loc', ())[1:])[:100] or 'request'
        if not (path == '/hq' or path.startswith('/hq/')):
            # the API's one-line 422 (like a refused body): the parameter and the rule, never
            # the input echoed back
            kind = str((first.get('loc') or ('request',))[0])[:20]
            return JSONResponse({'detail': f'{kind} parameter {where}: '
                                 f'{str(first.get("msg", "invalid"))[:200]}'}, status_code=422)
        return await page_error(request, StarletteHTTPException(
            422, f'{where}: {first.get("msg", "invalid")}'))
    app.add_exception_handler(RequestValidationError, page_field_error)

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

    def scope_of(who: Credential, region: str | None,
                 names: dict[str, str] | None = None) -> hq.Scope:
        """The stores a page covers: the credential's (the API's scoping), within `region`
        (`names`: the regions, when already read)."""
        if region is not None and region not in (pages.regions() if names is None else names):
            raise HTTPException(404, 'no such region')
        if who.role in ('admin', 'analyst'):
            return hq.Scope(region=region)
        if who.role == 'region':
            if region not in (None, who.region):
                raise HTTPException(403, 'none of this region\'s stores is yours')
            return hq.Scope(region=who.region)
        return hq.Scope(region=region, stores=tuple(sorted(who.stores)))

    def overview(request: Request, region: str | None) -> HTMLResponse:
        """The overview (or a region's): every read on one connection (hq.reading), the
        funnel's figures in one statement (hq.figures), the ranking, silent robots and fleet
        table paged by the database."""
        check_host(request)
        with hq.reading(pages.engine) as c:
            who, csrf = pages.session(request, c)
            return html_answer(overview_page(request, region, c, who, csrf))

    def overview_page(request: Request, region: str | None, c: sa.Connection, who: Credential,
                      csrf: str) -> str:
        first, last = window(request)
        try:
            silent_min = max(1, min(int(request.query_params.get('silent', '30')), 10_000))
        except ValueError:
            raise HTTPException(422, 'silent must be minutes') from None
        page, silent_page = _page_number(request, 'page'), _page_number(request, 'silent_page')
        fleet_page = _page_number(request, 'fleet_page')
        names = pages.regions(c)
        scope = scope_of(who, region, names)
        figures = hq.figures(c, scope, first, last, (page - 1) * PER_PAGE, PER_PAGE)
        if region is not None and not figures.stores:
            raise HTTPException(403, 'none of this region\'s stores is yours')
        pages_of_stores = max(1, -(-figures.stores // PER_PAGE))
        if page > pages_of_stores:
            raise HTTPException(404, f'there is no page {page} of the ranking: it has '
                                     f'{pages_of_stores} page(s) of {PER_PAGE} stores')
        query = _e(f'?from={quote(first)}&to={quote(last)}')
        params = {'from': first, 'to': last, 'silent': str(silent_min)}
        ranked = figures.ranked
        everything = who.role in ('admin', 'analyst') and region is None
        fleet_html = _fleet_stores(c, scope, request.app.state.fleet, fleet_page,
                                   request.url.path, {**params, 'page': str(page)}, query)
        campaigns_html = _campaign_table(   # the scope's stores listed only if a campaign exists
            pages, scope, None if everything else (lambda: hq.stores_in(c, scope)), first, last,
            c)
        title = names.get(region, region) if region else (
            'All stores · 全部门店' if who.role in ('admin', 'analyst') else 'Your stores · 我的门店')
        body = (f'<h1>{_e(title)}</h1>' + _range_form(request.url.path, first, last,
                                                      f'silent after <input name="silent" '
                                                      f'value="{silent_min}"> min')
                + '<h2>Funnel · 漏斗</h2>' + _funnel_bars(figures.total)
                + '<h2>Trend · 趋势</h2>' + _trend_svg(figures.days, funnel.days(first, last))
                + '<h2>Stores ranked by conversion · 门店排名</h2>'
                + _store_table(ranked, (page - 1) * PER_PAGE, query)
                + _pager(request.url.path, params, 'page', page, pages_of_stores,
                         f'stores {(page - 1) * PER_PAGE + 1}–{(page - 1) * PER_PAGE + len(ranked)}'
                         f' of {figures.stores}')
                + '<h2>Campaigns · 营销活动</h2>' + campaigns_html
                + (_region_table(names, figures.regions, query) if region is None else '')
                + f'<h2>Robots silent for more than {silent_min} min (no event, no heartbeat) · '
                  '离线机器人</h2>'
                + _silent(c, scope, silent_min, silent_page, request.url.path,
                          {**params, 'page': str(page)})
                + fleet_html
                + '<p class="note">Definitions: docs/metrics.md (version '
                  f'{funnel.DEFINITIONS}); a rate with nothing to divide by shows –. '
                  f'<span id="refreshed">Figures as of '
                  f'{_e(_when(funnel.last_refresh(c)))}</span>; every time on these pages is '
                  'the chain\'s (China Standard Time, UTC+8).</p>')
        return _page(title, body, csrf, who.role)

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
                + '<h2>Campaigns · 营销活动</h2>'
                + _campaign_table(pages, hq.Scope(stores=(store_id,)), [store], first, last)
                + '<h2>Robots · 机器人</h2><table id="robots"><tr><th>robot</th>'
                  '<th>conversations</th><th>engaged</th><th>recommended</th><th>guided</th>'
                  '<th>staff assists</th><th>active min</th><th>last event</th></tr>'
                + robot_rows + '</table>'
                + _fleet_store(request.app.state.fleet, store_id, csrf, _may_act(who, store_id)))
        return html_answer(_page(store['name'], body, csrf, who.role))

    # --- fleet: tasks and staff calls acted on from the store page ------------------------
    async def fleet_form(request: Request, store_id: str) -> tuple[Credential, dict[str, str]]:
        check_post(request)
        who, csrf = await run_in_threadpool(pages.session, request)
        fields = await form(request)
        if not hmac.compare_digest(fields.get('csrf', ''), csrf):
            raise HTTPException(403, 'the form\'s CSRF token is wrong')
        if not any(s['id'] == store_id for s in await run_in_threadpool(pages.visible, who)):
            raise HTTPException(404, 'no such store among yours')
        if not _may_act(who, store_id):
            raise HTTPException(403, f'{a_credential(who.role)} may read this store\'s tasks and calls but '
                                     'not act on them')
        return who, fields

    def back(store_id: str, anchor: str) -> RedirectResponse:
        return RedirectResponse(f'/hq/stores/{quote(store_id)}#{anchor}', status_code=303)

    @app.post('/hq/stores/{store_id}/tasks/{task_id}', include_in_schema=False)
    async def post_task(store_id: str, request: Request,
                        task_id: int = PathParam(ge=1, le=2 ** 31 - 1)) -> Response:
        from retail_platform.fleet import TaskAction
        who, fields = await fleet_form(request, store_id)
        try:
            action = TaskAction.model_validate({'action': fields.get('action', ''),
                                                'note': fields.get('note', '')})
        except ValidationError as exc:
            raise HTTPException(422, f'task action refused: {exc.errors()[0]["msg"]}') from None
        done = await run_in_threadpool(request.app.state.fleet.update_task, store_id, task_id,
                                       action.action, f'{who_did(who)} on the page', action.note)
        if done is None:
            raise HTTPException(404, f'no task {task_id} at this store')
        return back(store_id, 'tasks')

    @app.post('/hq/stores/{store_id}/calls/{call_id}', include_in_schema=False)
    async def post_call(store_id: str, request: Request,
                        call_id: int = PathParam(ge=1, le=2 ** 31 - 1)) -> Response:
        from retail_sync.fleet import StaffReply
        who, fields = await fleet_form(request, store_id)
        fleet = request.app.state.fleet
        kind = fields.get('kind', '')
        if kind == 'close':
            found = await run_in_threadpool(fleet.close_call, store_id, call_id)
        else:
            try:
                reply = StaffReply.model_validate({'kind': kind,
                                                   'text': fields.get('text', '').strip()})
            except ValidationError as exc:
                where = '.'.join(str(x) for x in exc.errors()[0].get('loc', ())) or 'form'
                raise HTTPException(422, f'reply refused: {where}: '
                                         f'{exc.errors()[0]["msg"]}') from None
            from retail_platform.fleet import CallClosed
            try:
                found = await run_in_threadpool(fleet.reply, store_id, call_id, reply,
                                                f'{who_did(who)} on the page') is not None
            except CallClosed as exc:
                raise HTTPException(409, str(exc)) from None
        if not found:
            raise HTTPException(404, f'no staff call {call_id} at this store')
        return back(store_id, 'calls')

    @app.get('/hq/export.{kind}', include_in_schema=False)
    def export(request: Request, kind: str) -> Response:
        check_host(request)
        if kind not in funnel_export.MEDIA:
            raise HTTPException(404, 'export.csv or export.parquet')
        who, _ = pages.session(request)
        first, last = window(request)
        scope = scope_of(who, None)
        if kind == 'csv':        # streamed: one query, a batch of store-days at a time
            return funnel_export.stream_csv(hq.export_batches(pages.engine, scope, first, last),
                                            first, last)
        return funnel_export.answer_columns(hq.export_batches(pages.engine, scope, first, last),
                                            kind, first, last)


def _when(value) -> str:
    if not value:
        return '–'
    return datetime.fromtimestamp(value, funnel.CHAIN_ZONE).strftime('%Y-%m-%d %H:%M')


def _rules_text(audience: dict) -> str:
    """An audience in words: "asked about tv in the last 30 days and bought phone > 1095 days ago"."""
    parts = []
    for rule in audience.get('rules') or []:
        if rule['kind'] == 'asked_about':
            parts.append(f'asked about {rule["category"]} in the last '
                         f'{rule.get("within_days") or 30:g} days')
        elif rule.get('more_than_days') is not None:
            parts.append(f'bought {rule["category"]} more than {rule["more_than_days"]:g} days ago')
        elif rule.get('within_days') is not None:
            parts.append(f'bought {rule["category"]} in the last {rule["within_days"]:g} days')
        else:
            parts.append(f'bought {rule["category"]}')
    return (' and ' if audience.get('match', 'all') == 'all' else ' or ').join(parts)


def _campaign_table(pages: Pages, scope: hq.Scope,
                    stores: list[dict] | Callable[[], list[dict]] | None,
                    first: str, last: str, c: sa.Connection | None = None) -> str:
    """The campaigns covering these stores (None: every store — all campaigns; the API's
    scoping, campaigns.visible; a callable: the stores, read only when a campaign exists) with
    their offers, acceptances and uptake at the scope's stores in the range
    (hq.campaign_totals); an undefined rate shows — (never 0)."""
    from retail_platform import campaigns
    if callable(stores):
        stores = stores() if campaigns.listing(pages.engine) else []
    listed = campaigns.visible(pages.engine, stores)
    if not listed:
        return '<p id="campaigns" class="note">No campaign covers these stores.</p>'
    if c is None:
        with hq.reading(pages.engine) as c:
            counted = hq.campaign_totals(c, scope, first, last)
    else:
        counted = hq.campaign_totals(c, scope, first, last)
    now = time.time()
    rows = []
    for c in listed:
        starts = datetime.fromisoformat(c['starts_at']).timestamp()
        ends = datetime.fromisoformat(c['ends_at']).timestamp()
        state = 'scheduled · 未开始' if now < starts else ('running · 进行中' if now < ends
                                                          else 'ended · 已结束')
        where = ', '.join([*(f'region {r}' for r in c['regions']), *c['stores']]) or 'every store'
        got = counted.get(c['id'], {})
        offers, accepted = got.get('offers', 0), got.get('accepted', 0)
        uptake = '—' if not offers else f'{accepted / offers:.1%}'
        rows.append(f'<tr id="campaign-{_e(c["id"])}"><td>{_e(c["name"])}</td>'
                    f'<td style="text-align:left">{_e(_rules_text(c["audience"]))}</td>'
                    f'<td style="text-align:left">{_e(where)}</td>'
                    f'<td>{_e(_when(starts))} – {_e(_when(ends))}</td><td>{_e(state)}</td>'
                    f'<td class="offered">{offers}</td><td class="accepted">{accepted}</td>'
                    f'<td class="uptake">{uptake}</td></tr>')
    return ('<table id="campaigns"><tr><th>campaign</th><th>who</th><th>where</th><th>when</th>'
            '<th>state</th><th>offered</th><th>accepted</th><th>uptake</th></tr>'
            + ''.join(rows) + '</table>')


def _silent(c: sa.Connection, scope: hq.Scope, minutes: int, page: int, path: str,
            params: dict[str, str]) -> str:
    """A page of the robots of these stores with no event in the last `minutes`
    (hq.silent_robots: counted and paged by the database), PER_PAGE a page."""
    count, robots = hq.silent_robots(c, scope, minutes, (page - 1) * PER_PAGE, PER_PAGE)
    if not count:
        return '<p id="silent" class="note">None.</p>'
    pages_of = -(-count // PER_PAGE)
    if not robots:
        return (f'<p id="silent" class="warn">There is no page {page} of the silent robots: '
                f'{count} robot(s) on {pages_of} page(s).</p>'
                + _pager(path, params, 'silent_page', page, pages_of, f'{count} silent'))
    rows = [f'<tr><td>{_e(r["robot_id"])}</td><td>{_e(r["store_id"])}</td>'
            f'<td class="warn">{_e(_when(r["last_event"]))}</td></tr>' for r in robots]
    first = (page - 1) * PER_PAGE + 1
    return ('<table id="silent"><tr><th>robot</th><th>store</th><th>last event</th></tr>'
            + ''.join(rows) + '</table>'
            + _pager(path, params, 'silent_page', page, pages_of,
                     f'robots {first}–{first + len(robots) - 1} of {count}'))


# --- fleet views (the platform's fleet.py) ---------------------------------------------------------
STATE_WORDS = {'ok': ('healthy', '正常', ''), 'degraded': ('degraded', '异常', 'warn'),
               'silent': ('silent', '离线', 'warn')}
SAY_FIRST = 'Coming in 2 minutes'


def _may_act(who: Credential, store_id: str) -> bool:
    """Who may acknowledge/resolve tasks and answer calls on a store page THEY SEE (callers have
    checked that): the API's store writers — admin, the store's manager, the region credential
    (a region only sees its region's stores); an analyst reads only."""
    return who.role in ('admin', 'region') or (who.role == 'store_manager' and store_id in who.stores)


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return '–'
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f'{seconds:.0f} s ago'
    if seconds < 7200:
        return f'{seconds / 60:.0f} min ago'
    return f'{seconds / 3600:.1f} h ago'


def _span(seconds: float | None) -> str:
    if seconds is None:
        return '–'
    return f'{seconds:.0f} s' if seconds < 120 else (
        f'{seconds / 60:.0f} min' if seconds < 7200 else f'{seconds / 3600:.1f} h')


def _state_cell(state: str) -> str:
    en, zh, css = STATE_WORDS.get(state, (state, '', ''))
    return f'<td class="state {css}">{_e(en)} · {_e(zh)}</td>'


def _fleet_stores(c: sa.Connection, scope: hq.Scope, fleet, page: int, path: str,
                  params: dict[str, str], query: str) -> str:
    """Per store: robots per state; silent stores first (hq.fleet_stores: counted, sorted and
    paged by the database, PER_PAGE stores a page, `fleet_page`; a page past the end is a 404
    page saying so, as the ranking's). The banner names the first hq.SILENT_NAMES silent
    stores and counts the rest."""
    # judged as the fleet judges (fleet.Fleet.robots): as far as this process read its requests,
    # and a robot whose heartbeat waits or was refused is alive
    judged, alive = fleet.judgement()
    count, silent, named, rows = hq.fleet_stores(c, scope, fleet.missed, (page - 1) * PER_PAGE,
                                                 PER_PAGE, now=judged, alive=alive)
    pages_of = max(1, -(-count // PER_PAGE))
    if page > pages_of:
        raise HTTPException(404, f'there is no page {page} of the fleet table: it has '
                                 f'{pages_of} page(s) of {PER_PAGE} stores')
    more = f' and {silent - len(named)} more' if silent > len(named) else ''
    banner = (f'<p id="silent-stores" class="warn">Silent stores · 离线门店: '
              f'{_e(", ".join(named))}{_e(more)}</p>' if silent else
              '<p id="silent-stores" class="note">No silent store.</p>')
    body = ''.join(
        f'<tr><td><a href="/hq/stores/{quote(r["store_id"])}{query}">'
        f'{_e(r["name"])}</a></td><td>{r["robots"]}</td>'
        f'<td>{r["ok"]}</td><td>{r["degraded"]}</td><td class="{"warn" if r["silent"] else ""}">'
        f'{r["silent"]}</td></tr>' for r in rows)
    first = (page - 1) * PER_PAGE + 1
    pager = (_pager(path, params, 'fleet_page', page, pages_of,
                    f'stores {first}–{first + len(rows) - 1} of {count}')
             if pages_of > 1 else '')
    return ('<h2>Fleet · 机器人状态</h2>' + _platform_banner(fleet) + banner
            + '<table id="fleet-stores"><tr><th>store</th>'
            '<th>robots</th><th>healthy</th><th>degraded</th><th>silent</th></tr>' + body
            + '</table>' + pager)


def _fleet_store(fleet, store_id: str, csrf: str, may_act: bool) -> str:
    """The store's robots, alert tasks and staff calls (forms when `may_act`)."""
    import time as _time
    now = _time.time()

    def hidden(**values: str) -> str:
        return ''.join(f'<input type="hidden" name="{k}" value="{_e(v)}">'
                       for k, v in {'csrf': csrf, **values}.items())

    return ('<h2>Fleet · 机器人状态</h2>' + _fleet_robots(fleet, store_id, now)
            + '<h2>Tasks · 待办</h2>' + _fleet_tasks(fleet, store_id, now, hidden if may_act else None)
            + '<h2>Staff calls · 呼叫店员</h2>' + _fleet_calls(fleet, store_id, hidden if may_act else None))


def _platform_banner(fleet) -> str:
    """A line when the platform does not keep up with heartbeats: the robots are not to blame."""
    state = fleet.platform()
    if not state['behind']:
        return ''
    said = [f'{state["waiting"]} heartbeats waiting (oldest {_span(state["oldest_waiting_s"])})'
            if state['waiting'] else '',
            f'{state["refused_last_minute"]} refused in the last minute'
            if state['refused_last_minute'] else '']
    return ('<p id="platform-behind" class="warn">Platform overloaded · 平台繁忙: heartbeats are '
            'processed late (' + _e('; '.join(x for x in said if x) or 'answering slowly')
            + '). Robots whose heartbeats wait or were refused are shown as last heard, marked '
            '“platform late”, not silent.</p>')


def _fleet_robots(fleet, store_id: str, now: float) -> str:
    """The store's robots table, with a banner when every one is silent."""
    robots = fleet.robots([store_id])        # silent judged when read, not at `now` (earlier)
    robot_rows = []
    for r in robots:
        beat = r['heartbeat']
        backlog = beat.get('sync_backlog', 0)
        oldest = beat.get('sync_oldest_s', 0)
        problems = [f'{part}: {beat[part]["message"] or beat[part]["level"]}'
                    for part in ('base', 'localisation', 'sync', 'speech', 'camera')
                    if isinstance(beat.get(part), dict) and beat[part].get('level') in
                    ('warn', 'error', 'stale')]
        if beat.get('safety_stop'):
            problems.insert(0, 'safety stop held')
        battery = beat.get('battery_percent')
        robot_rows.append(
            f'<tr id="fleet-{_e(r["robot_id"])}"><td>{_e(r["robot_id"])}</td>'
            + _state_cell(r['state'])
            + f'<td>{_e(_ago(r["last_heartbeat_s"]))}'
              f'{" · platform late 平台延迟" if r.get("platform_late") else ""}</td>'
              f'<td>{_e(beat.get("software_version") or "–")}</td>'
              f'<td>{backlog}{_e(f" (oldest {_span(oldest)})" if backlog else "")}</td>'
              f'<td>{"–" if battery is None else f"{battery:.0f} %"}</td>'
              f'<td style="text-align:left">{_e("; ".join(problems)[:300])}</td></tr>')
    summary = fleet.stores([store_id])
    banner = ('<p id="store-silent" class="warn">Every robot of this store is silent · 门店离线</p>'
              if summary and summary[0]['silent_store'] else '')
    banner = _platform_banner(fleet) + banner
    return (banner + '<table id="fleet"><tr><th>robot</th><th>state</th>'
                   '<th>last heartbeat</th><th>software</th><th>upload backlog</th>'
                   '<th>battery</th><th>problems</th></tr>' + ''.join(robot_rows) + '</table>'
                   if robot_rows else '<p id="fleet" class="note">No robot has sent a heartbeat.</p>')


def _fleet_tasks(fleet, store_id: str, now: float, hidden) -> str:
    """Open alert tasks (acknowledge / resolve forms when `hidden` makes form fields) and the last
    ten resolved ones with their time to resolve."""
    may_act = hidden is not None
    tasks = fleet.tasks(store_id, open_only=False)
    open_rows, done_rows = [], []
    for task in tasks:
        opened = _when(task['opened_at'])
        if task['resolved_at'] is None:
            actions = ''
            if may_act:
                action = f'/hq/stores/{quote(store_id)}/tasks/{task["id"]}'
                ack = ('' if task['acknowledged_at'] else
                       f'<form method="post" action="{_e(action)}" class="out">'
                       f'{hidden(action="acknowledge")}<button type="submit" '
                       f'id="ack-{task["id"]}">Acknowledge · 确认</button></form> ')
                actions = (ack + f'<form method="post" action="{_e(action)}" class="out">'
                           f'{hidden(action="resolve")}<input name="note" maxlength="500" '
                           f'placeholder="note" id="note-{task["id"]}"> <button type="submit" '
                           f'id="resolve-{task["id"]}">Resolve · 解决</button></form>')
            seen = (f'acknowledged by {task["acknowledged_by"]} {_ago(now - task["acknowledged_at"])}'
                    if task['acknowledged_at'] else 'not acknowledged')
            open_rows.append(
                f'<tr id="task-{task["id"]}"><td>{_e(task["title"])}</td><td>{_e(task["robot_id"])}'
                f'</td><td style="text-align:left">{_e(task["detail"])}</td><td>{_e(opened)}</td>'
                f'<td>{_e(_span(now - task["opened_at"]))}</td><td class="seen">{_e(seen)}</td>'
                f'<td>{actions}</td></tr>')
        else:
            done_rows.append(
                f'<tr id="done-{task["id"]}"><td>{_e(task["title"])}</td><td>{_e(task["robot_id"])}'
                f'</td><td>{_e(opened)}</td><td>{_e(task["resolved_by"] or "")}</td>'
                f'<td class="ttr">{_e(_span(task["time_to_resolve_s"]))}</td>'
                f'<td style="text-align:left">{_e(task["note"])}</td></tr>')
    tasks_html = ('<table id="tasks"><tr><th>task</th><th>robot</th><th>detail</th><th>opened</th>'
                  '<th>open for</th><th>seen</th><th></th></tr>' + ''.join(open_rows) + '</table>'
                  if open_rows else '<p id="tasks" class="note">No open task.</p>')
    done_rows = done_rows[-10:][::-1]
    if done_rows:
        tasks_html += ('<table id="resolved"><tr><th>resolved task</th><th>robot</th><th>opened'
                       '</th><th>resolved by</th><th>time to resolve</th><th>note</th></tr>'
                       + ''.join(done_rows) + '</table>')

    return tasks_html


def _fleet_calls(fleet, store_id: str, hidden) -> str:
    """Staff calls not closed, with answer / say / close forms when `hidden` makes form fields."""
    may_act = hidden is not None
    calls = fleet.calls(store_id, open_only=True)[:50]    # not closed ones pushed out by newer closed
    call_rows = []
    for call in calls:
        where = call['where']
        place = where.get('place') or 'place unknown (the robot is not localised)'
        speaks = {'zh': ' · customer speaks Chinese 顾客说中文', 'en': ' · customer speaks English 顾客说英文'}
        place += speaks.get(call.get('language') or '', '')
        said = ''.join(f'<li class="said">{_e(m["kind"] == "say" and "said" or "answered")}: '
                       f'{_e(m["text"])} <span class="note">({_e(m["by"])}, '
                       f'{"heard by the robot" if m["delivered_at"] else "waiting for the robot"})'
                       f'</span></li>' for m in call['messages'])
        forms = ''
        if may_act:
            action = _e(f'/hq/stores/{quote(store_id)}/calls/{call["id"]}')
            forms = (f'<form method="post" action="{action}">{hidden(kind="answer")}'
                     f'<input name="text" maxlength="500" size="28" value="{_e(SAY_FIRST)}" '
                     f'id="answer-text-{call["id"]}"> <button type="submit" id="answer-{call["id"]}">'
                     f'Answer · 回复</button></form>'
                     f'<form method="post" action="{action}">{hidden(kind="say")}'
                     f'<input name="text" maxlength="500" size="28" placeholder="type what the '
                     f'robot says for you" id="say-text-{call["id"]}"> <button type="submit" '
                     f'id="say-{call["id"]}">Say as staff · 代说</button></form>'
                     f'<form method="post" action="{action}">{hidden(kind="close")}'
                     f'<button type="submit" id="close-{call["id"]}">Close · 关闭</button></form>')
        wanted = call['wanted'] or call['product'] or call['reason'].replace('_', ' ')
        repeated = (f' <span class="note repeats">(called {call["repeats"] + 1} times, last '
                    f'{_e(_when(call["updated_at"]))} · 重复呼叫)</span>' if call.get('repeats') else '')
        call_rows.append(
            f'<tr id="call-{call["id"]}"><td>{_e(call["robot_id"])}</td><td>{_e(_when(call["created_at"]))}'
            f'</td><td style="text-align:left">{_e(wanted)}{repeated}</td><td>{_e(place or "–")}</td>'
            f'<td class="call-state">{_e(call["state"])}</td><td style="text-align:left">'
            f'<ul>{said}</ul>{forms}</td></tr>')
    calls_html = ('<table id="calls"><tr><th>robot</th><th>called</th><th>customer wants</th>'
                  '<th>where</th><th>state</th><th>answer</th></tr>' + ''.join(call_rows)
                  + '</table>' if call_rows else '<p id="calls" class="note">No staff call waiting.</p>')
    return calls_html
