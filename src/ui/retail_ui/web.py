"""The HTTP side of /ui/server: the customer screen at `/`, the staff console at `/console`.

FastAPI app over a `UiModel` (what to show) and `RobotActions` (what a touch or a staff member
asks the robot to do). No rclpy here: the node gives the actions. Live updates go to the pages
as Server-Sent Events (`/api/screen/stream`, `/api/console/stream`): each event is the whole
view as JSON, at most `max_rate_hz` per second, with a keep-alive comment every 15 s.

Security (see also retail_common/web_guard.py, which runs below every route):
* Host and Origin checked, bodies bounded however they arrive, the real client address used.
* The console API (`/api/console/*`) needs a staff session: `POST /api/console/login` with the
  store's staff password sets an HttpOnly, SameSite=Strict cookie and answers the session token
  and its CSRF token. A state-changing console request authenticated by the cookie must carry
  the CSRF token (`X-CSRF-Token`); one authenticated by `Authorization: Bearer <token>` (a
  script) needs none: nothing ambient rides on it. Logout ends the session on the server, also
  its open console stream; a changed staff password ends every session (auth.py).
* Face-enrolment consent is answered only on the robot's own screen (consent.py): the node
  writes a per-boot screen secret to the robot's disk (`<data_dir>/ui/screen_token`, mode 600),
  the kiosk opens `/?screen=<secret>`; `POST /api/screen/consent` needs that secret from a
  loopback client not relayed by a proxy. No page ever carries it, so neither a browser on the
  network nor one behind an SSH tunnel to the robot (also a loopback peer) can learn it.
* Live-update slots in separate budgets (streams.py): the screen, staff, everyone else.
* A 422 answer names the field and the problem, never echoes the body.
Its OpenAPI document is `/api/openapi.json`. Every page and asset is shipped in the package (no
CDN), under a Content-Security-Policy that allows only this origin.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import secrets
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable, Protocol

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from .auth import StaffAuth
from .consent import ConsentDesk, consent_reference
from retail_common.http_limits import H11_PROTOCOL
from retail_common.web_guard import Guard, Site, is_loopback
from .model import UiModel
from .streams import PUBLIC, SCREEN, STAFF, StreamSlots

STATIC = Path(__file__).resolve().parent / 'static'
# The robot's web server parses HTTP with h11 (uvicorn's pure-Python parser), also where httptools
# is installed for the platform: h11 refuses a transfer coding other than chunked ("gzip, chunked")
# at once, where httptools passes the body on undecoded and the server waits for the rest of a
# chunked body that never ends (tests/ui/test_web_security.py). Its head is bounded in time
# (retail_common.http_limits: a head sent a byte a second no longer holds a socket for ever).
HTTP_PARSER = H11_PROTOCOL
# An idle browser connection stays open 75 s (uvicorn's 5 s default closes connections that the
# screen or console is about to reuse: a request sent as the close lands fails instead of being
# answered).
KEEP_ALIVE_S = 75
COOKIE = 'retail_staff'


def server_config(app, host: str, port: int):
    """How the robot serves its pages (the node and the tests start the same server)."""
    import uvicorn
    return uvicorn.Config(app, host=host, port=port, log_level='warning', access_log=False, lifespan='off',
                          timeout_graceful_shutdown=2, proxy_headers=False, server_header=False,
                          http=HTTP_PARSER, timeout_keep_alive=KEEP_ALIVE_S)


DEVICE_COOKIE = 'retail_staff_device'     # a device that logged in before (auth.py: device tokens)
DEVICE_COOKIE_AGE_S = 365 * 24 * 3600
CSRF_HEADER = 'x-csrf-token'
SCREEN_HEADER = 'x-screen-token'
MAX_BODY_BYTES = 16 * 1024
KEEPALIVE_S = 15.0
SESSION_CHECK_S = 1.0             # an ended session's stream closes within this
PUBLIC_STREAM_MAX_S = 300.0       # an anonymous stream is closed after this (EventSource reconnects)
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
SECURITY_HEADERS = ((b'content-security-policy', CSP.encode()), (b'x-content-type-options', b'nosniff'),
                    (b'referrer-policy', b'same-origin'), (b'x-frame-options', b'DENY'))
log = logging.getLogger('retail_ui')


class RobotActions(Protocol):
    """What the pages may ask of the robot (the node implements it over ROS)."""

    def say(self, text: str, language: str, track_id: int) -> None: ...

    def reset_safety(self) -> tuple[bool, str]: ...

    def enroll(self, customer_id: str, display_name: str, vip: bool, consent_ref: str, track_id: int) -> tuple[bool, str]: ...

    def preview_jpeg(self) -> bytes | None: ...

    def members(self) -> list[dict]: ...

    def delete_member(self, customer_id: str) -> tuple[bool, str]: ...


# -- request bodies (sizes bounded: untrusted input) --------------------------------------------
class SayBody(BaseModel):
    text: str = Field(min_length=1, max_length=200, description='what the customer typed or tapped')
    language: str = Field('zh', pattern='^(zh|en)$')


class LoginBody(BaseModel):
    password: str = Field(min_length=1, max_length=256)


MEMBER_ID = re.compile(r'[A-Za-z0-9_.:-]{1,64}')    # what an enrolment may name (EnrollBody)


class EnrollBody(BaseModel):
    """Staff start an enrolment of the person in front of the robot; the customer consents on the screen."""
    model_config = ConfigDict(extra='forbid')
    customer_id: str = Field(min_length=1, max_length=64, pattern=r'^[A-Za-z0-9_.:-]+$',
                             description='pseudonymous member id (never a phone number or a name)')
    display_name: str = Field(min_length=1, max_length=40, description='name the robot greets with')
    vip: bool = False


class ConsentBody(BaseModel):
    """The customer's answer on the robot's screen."""
    model_config = ConfigDict(extra='forbid')
    request_id: str = Field(min_length=1, max_length=32, pattern=r'^[0-9a-f]+$')
    agree: bool


class Outcome(BaseModel):
    success: bool
    message: str


class LiveResponse(StreamingResponse):
    """Server-Sent Events that give up on a client that stops reading: a send blocked longer than
    `send_timeout_s` (its socket buffers full) ends the stream and frees its slot."""

    def __init__(self, *args, send_timeout_s: float = 30.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.send_timeout_s = send_timeout_s

    async def stream_response(self, send) -> None:
        await send({'type': 'http.response.start', 'status': self.status_code, 'headers': self.raw_headers})
        try:
            async for chunk in self.body_iterator:
                data = chunk.encode(self.charset) if isinstance(chunk, str) else chunk
                await asyncio.wait_for(send({'type': 'http.response.body', 'body': data, 'more_body': True}),
                                       self.send_timeout_s)
        except asyncio.TimeoutError:
            log.warning('a live page stopped reading: its stream is closed')
            return
        finally:
            await self.body_iterator.aclose()
        await send({'type': 'http.response.body', 'body': b'', 'more_body': False})


class Hub:
    """Wakes the event streams when the model changes (called from any thread)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.event: asyncio.Event | None = None

    def attach(self) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
            self.event = asyncio.Event()

    def notify(self) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._fire)

    def _fire(self) -> None:
        event, self.event = self.event, asyncio.Event()
        event.set()

    async def wait(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except asyncio.TimeoutError:
            pass


def _validation_answer(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each bad field and why, never echoing what was sent."""
    errors = [{'loc': [str(part) for part in e.get('loc', ())][:6], 'msg': str(e.get('msg', ''))[:200],
               'type': str(e.get('type', ''))[:60]} for e in exc.errors()[:10]]
    return JSONResponse({'detail': errors}, status_code=422)


def create_app(model: UiModel, actions: RobotActions, auth: StaffAuth, *, max_rate_hz: float = 10.0,
               audit: Callable[[str], None] = log.warning, site: Site | None = None,
               slots: StreamSlots | None = None, public_stream_max_s: float = PUBLIC_STREAM_MAX_S,
               screen_secret: str | None = None, consent_ttl_s: float = 120.0,
               send_timeout_s: float = 30.0) -> FastAPI:
    """The web app. `audit(line)` records staff actions (the node sends it to its log).

    `site`: allowed host names, trusted proxies, body limit (retail_common/web_guard.py); `screen_secret`: the
    per-boot secret of the robot's own screen (random when not given)."""
    app = FastAPI(title='Retail robot staff console API', version='2.0',
                  description="The robot's staff console: live state, safety reset, staff requests, "
                              'member enrolment (the customer consents on the robot\'s screen), sync health. '
                              'Log in first (POST /api/console/login).',
                  openapi_url='/api/openapi.json', docs_url=None, redoc_url=None)
    site = site or Site.make()
    site = Site(hosts=site.hosts, trusted_proxies=site.trusted_proxies, max_body=site.max_body or MAX_BODY_BYTES,
                cookie=COOKIE, headers=SECURITY_HEADERS)
    refusals: deque[str] = deque(maxlen=100)
    last_refusal_audit = [0.0]

    def refused(line: str) -> None:
        """Kept for diagnostics; audited at most every 10 s (a hostile page may repeat itself)."""
        refusals.append(line)
        if time.monotonic() - last_refusal_audit[0] >= 10.0:
            last_refusal_audit[0] = time.monotonic()
            audit(line)
    app.add_middleware(Guard, site=site, on_refusal=refused)
    app.state.refusals = refusals
    app.add_exception_handler(RequestValidationError, _validation_answer)
    hub = Hub()
    model.subscribe(hub.notify)
    auth.on_sessions_ended = hub.notify
    slots = slots or StreamSlots()
    screen_secret = screen_secret or secrets.token_urlsafe(32)
    desk = ConsentDesk(ttl_s=consent_ttl_s, on_change=model.bump)
    min_gap = 1.0 / max_rate_hz
    stopping = threading.Event()

    def close() -> None:
        """End every live stream (uvicorn waits for open responses before it stops)."""
        stopping.set()
        hub.notify()
    app.state.close = close
    app.state.slots = slots
    app.state.desk = desk
    app.state.screen_secret = screen_secret

    def client_of(request: Request) -> str:
        return getattr(request.state, 'client', '') or (request.client.host if request.client else '?')

    def robot_screen(request: Request, offered: str | None) -> bool:
        """The robot's own screen: a loopback peer (not relayed by a proxy) with the per-boot secret."""
        local = is_loopback(client_of(request)) and not getattr(request.state, 'proxied', False)
        return local and bool(offered) and hmac.compare_digest(offered.encode(), screen_secret.encode())

    def session_token(request: Request) -> tuple[str, bool]:
        """(token, by_cookie)."""
        header = request.headers.get('authorization', '')
        if header.lower().startswith('bearer '):
            return header[7:].strip(), False
        return request.cookies.get(COOKIE) or '', True

    def who_of(token: str, request: Request) -> str:
        return f'staff session {token[:6]} from {client_of(request)}'

    def staff(request: Request) -> str:
        token, by_cookie = session_token(request)
        if not auth.check(token):
            raise HTTPException(401, 'staff login required', headers={'WWW-Authenticate': 'Bearer'})
        if by_cookie and request.method.upper() not in ('GET', 'HEAD', 'OPTIONS') \
                and not auth.csrf_ok(token, request.headers.get(CSRF_HEADER)):
            raise HTTPException(403, 'missing or wrong CSRF token: reload the console')
        return who_of(token, request)

    async def stream(request: Request, view: Callable[[], dict], pool: str, client: str, token: str):
        hub.attach()
        last = -1
        deadline = time.monotonic() + public_stream_max_s if pool == PUBLIC else float('inf')
        quiet_since = time.monotonic()
        try:
            while not stopping.is_set() and not await request.is_disconnected():
                if token and not auth.check(token):
                    break                              # logged out or password changed
                if time.monotonic() > deadline:
                    break
                if model.version != last:
                    last = model.version
                    yield f'data: {json.dumps(view(), ensure_ascii=False)}\n\n'
                    quiet_since = time.monotonic()
                    await asyncio.sleep(min_gap)
                    continue
                await hub.wait(SESSION_CHECK_S if token or pool == PUBLIC else KEEPALIVE_S)
                if model.version == last and not stopping.is_set() and time.monotonic() - quiet_since >= KEEPALIVE_S:
                    quiet_since = time.monotonic()
                    yield ': keep-alive\n\n'
        finally:
            slots.release(pool, client)

    def sse(request: Request, view: Callable[[], dict], pool: str, client: str, token: str = ''):
        refusal = slots.acquire(pool, client)
        if refusal:
            return JSONResponse({'detail': refusal}, status_code=503, headers={'Retry-After': '5'})
        return LiveResponse(stream(request, view, pool, client, token), media_type='text/event-stream',
                            headers={'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no'},
                            send_timeout_s=send_timeout_s)

    def screen_view() -> dict:
        return {**model.screen(), 'consent_request': desk.screen_view()}

    def console_view() -> dict:
        return {**model.console(), 'enrolment': desk.console_view(), 'person_in_front': model.current_track}

    # -- pages ---------------------------------------------------------------------------------
    @app.get('/', include_in_schema=False)
    def screen_page():
        """The screen page. It never carries the screen secret: the robot's kiosk opens
        `/?screen=<secret>` with the secret read from the robot's disk (the node writes it)."""
        return FileResponse(STATIC / 'screen.html', headers={'Cache-Control': 'no-store'})

    @app.get('/console', include_in_schema=False)
    def console_page():
        return FileResponse(STATIC / 'console.html')

    app.mount('/static', StaticFiles(directory=STATIC), name='static')

    # -- the customer screen ---------------------------------------------------------------------
    @app.get('/api/screen/state', tags=['screen'])
    def screen_state() -> dict:
        """What the screen shows now (the stream sends the same document on every change)."""
        return screen_view()

    @app.get('/api/screen/config', tags=['screen'])
    def screen_config() -> dict:
        """Zone and category buttons, the map's geometry."""
        return model.screen_config()

    @app.get('/api/screen/stream', tags=['screen'])
    def screen_stream(request: Request, screen: str = ''):
        """Server-Sent Events: the screen document on every change. The robot's own screen
        (`?screen=<its secret>`, loopback) has reserved slots; other viewers share the public ones."""
        if robot_screen(request, screen[:128]):
            return sse(request, screen_view, SCREEN, 'robot-screen')
        return sse(request, screen_view, PUBLIC, client_of(request))

    @app.post('/api/screen/say', tags=['screen'], response_model=Outcome)
    def screen_say(body: SayBody, request: Request):
        """A touch or typed text, sent to the dialogue as the customer's utterance: from the robot's
        own screen only (loopback peer with the per-boot secret in `X-Screen-Token`), since the
        dialogue takes it as the words of the person in front of the robot (a "yes" to the face
        enrolment question is consent)."""
        if not robot_screen(request, request.headers.get(SCREEN_HEADER, '')[:128]):
            refused(f'typed input refused from {client_of(request)}: not the robot\'s screen')
            return JSONResponse({'success': False, 'message': "typed input is taken only from the robot's own screen"},
                                status_code=403)
        text = ' '.join(body.text.split())
        if not text:
            raise HTTPException(422, 'empty text')
        actions.say(text, body.language, model.current_track)
        return Outcome(success=True, message='sent')

    @app.post('/api/screen/consent', tags=['screen'], response_model=Outcome)
    async def screen_consent(body: ConsentBody, request: Request):
        """The customer's answer to a face-enrolment request, from the robot's own screen only
        (loopback peer with the per-boot screen secret in `X-Screen-Token`)."""
        if not robot_screen(request, request.headers.get(SCREEN_HEADER, '')[:128]):
            audit(f'face-enrolment consent refused from {client_of(request)}: not the robot\'s screen')
            return JSONResponse({'success': False, 'message': "consent is given only on the robot's own screen"},
                                status_code=403)
        pending, refusal = desk.answer(body.request_id, body.agree, model.current_track)
        if refusal:
            audit(f'face-enrolment request {body.request_id}: {refusal}')
            return JSONResponse({'success': False, 'message': refusal}, status_code=200 if pending else 404)
        consent = consent_reference(pending)
        success, message = await run_in_threadpool(actions.enroll, pending.customer_id, pending.display_name,
                                                   pending.vip, consent, pending.track_id)
        desk.finish(pending.id, success, 'enrolled' if success else message)
        audit(f'face-enrolment request {pending.id} of {pending.requested_by}: customer agreed on the screen; '
              f'{"enrolled" if success else "not enrolled"}')
        return JSONResponse({'success': success, 'message': 'thank you' if success else message},
                            status_code=200 if success else 409)

    @app.get('/api/map.png', tags=['screen'])
    def map_png():
        """The store map (grey PNG, north up); geometry in /api/screen/config `map`."""
        if model.map_png is None:
            raise HTTPException(404, 'no map received yet')
        return Response(model.map_png, media_type='image/png', headers={'Cache-Control': 'no-cache'})

    # -- the staff console ----------------------------------------------------------------------
    @app.post('/api/console/login', tags=['console'])
    def login(body: LoginBody, request: Request, response: Response):
        """Answers `{success, message, token, csrf_token}`; also sets the session cookie."""
        client = client_of(request)
        result = auth.login(client, body.password, request.cookies.get(DEVICE_COOKIE))
        if not result.ok:
            if result.retry_after_s > 0:
                audit(f'console login refused for {client}: rate limited')
                return JSONResponse({'success': False, 'message': result.message}, status_code=429,
                                    headers={'Retry-After': str(int(result.retry_after_s) + 1)})
            audit(f'console login failed from {client}: {result.message}')
            return JSONResponse({'success': False, 'message': result.message}, status_code=401)
        session = auth.session(result.token)
        secure = getattr(request.state, 'scheme', request.url.scheme) == 'https'   # TLS (a proxy's too)
        response.set_cookie(COOKIE, result.token, httponly=True, samesite='strict', max_age=int(auth.session_ttl_s),
                            secure=secure)
        # The device stays known after logout: strangers' wrong guesses never lock it out.
        response.set_cookie(DEVICE_COOKIE, result.device, httponly=True, samesite='strict', max_age=DEVICE_COOKIE_AGE_S,
                            secure=secure)
        audit(f'console login from {client}')
        return {'success': True, 'message': result.token, 'token': result.token,
                'csrf_token': session.csrf if session else ''}

    @app.get('/api/console/session', tags=['console'])
    def session(request: Request, who: str = Depends(staff)) -> dict:
        """The CSRF token of this session (a reloaded console page reads it here)."""
        token, _ = session_token(request)
        current = auth.session(token)
        return {'csrf_token': current.csrf if current else ''}

    @app.post('/api/console/logout', tags=['console'], response_model=Outcome)
    def logout(request: Request, response: Response):
        """End this session on the server (its token is refused from now on, its stream closes)."""
        token, by_cookie = session_token(request)
        if auth.check(token) and by_cookie and not auth.csrf_ok(token, request.headers.get(CSRF_HEADER)):
            raise HTTPException(403, 'missing or wrong CSRF token: reload the console')
        if auth.logout(token):
            audit(f'console logout of {who_of(token, request)}')
        response.delete_cookie(COOKIE)
        return Outcome(success=True, message='logged out')

    @app.get('/api/console/state', tags=['console'])
    def console_state(who: str = Depends(staff)) -> dict:
        """Pose, path, people, mission, battery, link, safety, appointments, requests, sync, diagnostics,
        the enrolment waiting for consent and the track of the person in front."""
        return console_view()

    @app.get('/api/console/stream', tags=['console'])
    def console_stream(request: Request, who: str = Depends(staff)):
        """Server-Sent Events: the console document on every change (closed when the session ends)."""
        token, _ = session_token(request)
        return sse(request, console_view, STAFF, token, token)

    @app.post('/api/console/reset_safety', tags=['console'], response_model=Outcome)
    async def reset_safety(who: str = Depends(staff)) -> Outcome:
        """Clear a latched safety stop (/navigation/reset_safety). The base refuses while a bumper,
        cliff or wheel-drop sensor is still triggered. Logged with the staff session."""
        reason = model.safety.get('reason', '')
        success, message = await run_in_threadpool(actions.reset_safety)
        model.log_reset(who, success, message)
        audit(f'safety reset by {who} (stop reason: {reason or "none"}): '
              f'{"cleared" if success else "refused"}: {message}')
        return Outcome(success=success, message=message)

    @app.post('/api/console/requests/{request_id}/{state}', tags=['console'])
    def update_request(request_id: int, state: str, who: str = Depends(staff)) -> dict:
        """Acknowledge (`ack`) or close (`done`) a staff request from a customer."""
        states = {'ack': 'acknowledged', 'done': 'done'}
        if state not in states:
            raise HTTPException(404, 'state must be ack or done')
        entry = model.update_request(request_id, states[state])
        if entry is None:
            raise HTTPException(404, f'no staff request {request_id}')
        audit(f'staff request {request_id} {states[state]} by {who}')
        return entry

    @app.post('/api/console/enroll', tags=['console'], response_model=Outcome, status_code=202)
    def enroll(body: EnrollBody, who: str = Depends(staff)):
        """Start enrolling the person in front of the robot (the current track). Nothing is enrolled
        until the customer agrees on the robot's screen; the console stream shows the outcome
        (`enrolment`). 409 when nobody is in front of the robot."""
        track = model.current_track
        if not model.face_recognition:
            return JSONResponse({'success': False, 'message': 'face recognition is off on this robot'}, status_code=409)
        if not track:
            return JSONResponse({'success': False, 'message': 'nobody is in front of the robot: ask the customer '
                                 'to stand in front of the camera'}, status_code=409)
        pending = desk.request(track, body.customer_id, body.display_name.strip(), body.vip, who)
        audit(f'face-enrolment request {pending.id} by {who} for the person on track {track}: '
              'waiting for consent on the screen')
        return JSONResponse({'success': True, 'message': "waiting for the customer to agree on the robot's screen",
                             'request_id': pending.id}, status_code=202)

    @app.get('/api/console/preview.jpg', tags=['console'])
    def preview(who: str = Depends(staff)):
        """The camera's latest frame (for enrolment; never stored)."""
        jpeg = actions.preview_jpeg()
        if jpeg is None:
            raise HTTPException(404, 'no camera frame yet')
        return Response(jpeg, media_type='image/jpeg', headers={'Cache-Control': 'no-store'})

    @app.get('/api/console/members', tags=['console'])
    async def members(who: str = Depends(staff)) -> list[dict]:
        """Enrolled members (no face data), from perception's member list service."""
        return await run_in_threadpool(actions.members)

    @app.delete('/api/console/members/{customer_id}', tags=['console'], response_model=Outcome)
    async def delete_member(customer_id: str, who: str = Depends(staff)):
        """Erase a member and every trace of their face (perception's delete service)."""
        if not MEMBER_ID.fullmatch(customer_id):   # never cut: a cut id names another member
            return JSONResponse({'success': False, 'message': 'no such member (ids are 1-64 letters, '
                                 'digits, _ . : -)'}, status_code=404)
        success, message = await run_in_threadpool(actions.delete_member, customer_id)
        audit(f'member deletion by {who}: {"done" if success else "refused"}')
        return JSONResponse({'success': success, 'message': message}, status_code=200 if success else 404)

    return app
