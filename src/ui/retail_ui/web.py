"""The HTTP side of /ui/server: the customer screen at `/`, the staff console at `/console`.

FastAPI app over a `UiModel` (what to show) and `RobotActions` (what a touch or a staff member
asks the robot to do). No rclpy here: the node gives the actions. Live updates go to the pages
as Server-Sent Events (`/api/screen/stream`, `/api/console/stream`): each event is the whole
view as JSON, at most `max_rate_hz` per second, with a keep-alive comment every 15 s.

The console API (`/api/console/*`) needs a staff session: `POST /api/console/login` with the
store's staff password sets an HttpOnly, SameSite=Strict cookie (also returned as a bearer
token). Its OpenAPI document is `/api/openapi.json`. Every page and asset is shipped in the
package (no CDN), under a Content-Security-Policy that allows only this origin.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
from pathlib import Path
from typing import Callable, Protocol

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from .auth import StaffAuth
from .model import UiModel

STATIC = Path(__file__).resolve().parent / 'static'
COOKIE = 'retail_staff'
MAX_BODY_BYTES = 16 * 1024
MAX_STREAMS = 32                  # open live-update connections (screen, console tabs) at once
KEEPALIVE_S = 15.0
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
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


class EnrollBody(BaseModel):
    customer_id: str = Field(min_length=1, max_length=64, pattern=r'^[A-Za-z0-9_.:-]+$',
                             description='pseudonymous member id (never a phone number or a name)')
    display_name: str = Field(min_length=1, max_length=40, description='name the robot greets with')
    vip: bool = False
    consent_ref: str = Field('', max_length=64, description='reference of the recorded consent; required')
    track_id: int = Field(0, ge=0, description='the person in front of the camera (0: the nearest one)')


class Outcome(BaseModel):
    success: bool
    message: str


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


def create_app(model: UiModel, actions: RobotActions, auth: StaffAuth, *, max_rate_hz: float = 10.0,
               audit: Callable[[str], None] = log.warning) -> FastAPI:
    """The web app. `audit(line)` records staff actions (the node sends it to its log)."""
    app = FastAPI(title='Retail robot staff console API', version='1.0',
                  description="The robot's staff console: live state, safety reset, staff requests, "
                              'member enrolment with consent, sync health. Log in first (POST /api/console/login).',
                  openapi_url='/api/openapi.json', docs_url=None, redoc_url=None)
    hub = Hub()
    model.subscribe(hub.notify)
    min_gap = 1.0 / max_rate_hz
    stopping = threading.Event()
    streams = {'open': 0}

    def close() -> None:
        """End every live stream (uvicorn waits for open responses before it stops)."""
        stopping.set()
        hub.notify()
    app.state.close = close
    app.state.streams = streams

    @app.middleware('http')
    async def guard(request: Request, call_next):
        length = request.headers.get('content-length')
        if length and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return JSONResponse({'detail': 'request too large'}, status_code=413)
        response = await call_next(request)
        response.headers['Content-Security-Policy'] = CSP
        response.headers['X-Content-Type-Options'] = 'nosniff'
        response.headers['Referrer-Policy'] = 'no-referrer'
        if request.url.path.startswith('/api/console'):
            response.headers['Cache-Control'] = 'no-store'
        return response

    def staff(request: Request) -> str:
        token = request.cookies.get(COOKIE) or ''
        header = request.headers.get('authorization', '')
        if not token and header.lower().startswith('bearer '):
            token = header[7:].strip()
        if not auth.check(token):
            raise HTTPException(401, 'staff login required', headers={'WWW-Authenticate': 'Bearer'})
        return f'staff session {token[:6]} from {request.client.host if request.client else "?"}'

    async def stream(request: Request, view: Callable[[], dict]):
        hub.attach()
        last = -1
        try:
            while not stopping.is_set() and not await request.is_disconnected():
                if model.version != last:
                    last = model.version
                    yield f'data: {json.dumps(view(), ensure_ascii=False)}\n\n'
                    await asyncio.sleep(min_gap)
                    continue
                await hub.wait(KEEPALIVE_S)
                if model.version == last and not stopping.is_set():
                    yield ': keep-alive\n\n'
        finally:
            streams['open'] -= 1

    def sse(request: Request, view: Callable[[], dict]):
        if streams['open'] >= MAX_STREAMS:
            return JSONResponse({'detail': f'more than {MAX_STREAMS} live pages open'}, status_code=503,
                                headers={'Retry-After': '5'})
        streams['open'] += 1
        return StreamingResponse(stream(request, view), media_type='text/event-stream',
                                 headers={'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no'})

    # -- pages ---------------------------------------------------------------------------------
    @app.get('/', include_in_schema=False)
    def screen_page():
        return FileResponse(STATIC / 'screen.html')

    @app.get('/console', include_in_schema=False)
    def console_page():
        return FileResponse(STATIC / 'console.html')

    app.mount('/static', StaticFiles(directory=STATIC), name='static')

    # -- the customer screen ---------------------------------------------------------------------
    @app.get('/api/screen/state', tags=['screen'])
    def screen_state() -> dict:
        """What the screen shows now (the stream sends the same document on every change)."""
        return model.screen()

    @app.get('/api/screen/config', tags=['screen'])
    def screen_config() -> dict:
        """Zone and category buttons, the map's geometry."""
        return model.screen_config()

    @app.get('/api/screen/stream', tags=['screen'])
    def screen_stream(request: Request):
        """Server-Sent Events: the screen document on every change."""
        return sse(request, model.screen)

    @app.post('/api/screen/say', tags=['screen'], response_model=Outcome)
    def screen_say(body: SayBody) -> Outcome:
        """A touch or typed text, sent to the dialogue as the customer's utterance."""
        text = ' '.join(body.text.split())
        if not text:
            raise HTTPException(422, 'empty text')
        actions.say(text, body.language, model.current_track)
        return Outcome(success=True, message='sent')

    @app.get('/api/map.png', tags=['screen'])
    def map_png():
        """The store map (grey PNG, north up); geometry in /api/screen/config `map`."""
        if model.map_png is None:
            raise HTTPException(404, 'no map received yet')
        return Response(model.map_png, media_type='image/png', headers={'Cache-Control': 'no-cache'})

    # -- the staff console ----------------------------------------------------------------------
    @app.post('/api/console/login', tags=['console'], response_model=Outcome)
    def login(body: LoginBody, request: Request, response: Response):
        client = request.client.host if request.client else '?'
        result = auth.login(client, body.password)
        if not result.ok:
            if result.retry_after_s > 0:
                audit(f'console login refused for {client}: rate limited')
                return JSONResponse({'success': False, 'message': result.message}, status_code=429,
                                    headers={'Retry-After': str(int(result.retry_after_s) + 1)})
            audit(f'console login failed from {client}: {result.message}')
            return JSONResponse({'success': False, 'message': result.message}, status_code=401)
        response.set_cookie(COOKIE, result.token, httponly=True, samesite='strict', max_age=int(auth.session_ttl_s))
        audit(f'console login from {client}')
        return {'success': True, 'message': result.token}

    @app.post('/api/console/logout', tags=['console'], response_model=Outcome)
    def logout(request: Request, response: Response):
        auth.logout(request.cookies.get(COOKIE))
        response.delete_cookie(COOKIE)
        return Outcome(success=True, message='logged out')

    @app.get('/api/console/state', tags=['console'])
    def console_state(who: str = Depends(staff)) -> dict:
        """Pose, path, people, mission, battery, link, safety, appointments, requests, sync, diagnostics."""
        return model.console()

    @app.get('/api/console/stream', tags=['console'])
    def console_stream(request: Request, who: str = Depends(staff)):
        """Server-Sent Events: the console document on every change."""
        return sse(request, model.console)

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

    @app.post('/api/console/enroll', tags=['console'], response_model=Outcome)
    async def enroll(body: EnrollBody, who: str = Depends(staff)):
        """Enrol the member standing in front of the camera (perception's /perception/enroll_face).
        Refused without a consent reference."""
        consent = body.consent_ref.strip()
        if not consent:
            return JSONResponse({'success': False, 'message': 'consent reference required: record the '
                                 "customer's consent first"}, status_code=422)
        success, message = await run_in_threadpool(actions.enroll, body.customer_id, body.display_name.strip(),
                                                   body.vip, consent, body.track_id)
        audit(f'enrolment of {body.customer_id} (consent {consent}) by {who}: {"done" if success else "refused"}: {message}')
        return JSONResponse({'success': success, 'message': message}, status_code=200 if success else 409)

    @app.get('/api/console/preview.jpg', tags=['console'])
    def preview(who: str = Depends(staff)):
        """The camera's latest frame (for enrolment; never stored)."""
        jpeg = actions.preview_jpeg()
        if jpeg is None:
            raise HTTPException(404, 'no camera frame yet')
        return Response(jpeg, media_type='image/jpeg', headers={'Cache-Control': 'no-store'})

    @app.get('/api/console/members', tags=['console'])
    def members(who: str = Depends(staff)) -> list[dict]:
        """Enrolled members (no face data)."""
        return actions.members()

    @app.delete('/api/console/members/{customer_id}', tags=['console'], response_model=Outcome)
    def delete_member(customer_id: str, who: str = Depends(staff)):
        """Erase a member and every trace of their face."""
        success, message = actions.delete_member(customer_id[:64])
        audit(f'member {customer_id[:64]} deletion by {who}: {message}')
        return JSONResponse({'success': success, 'message': message}, status_code=200 if success else 404)

    return app
