"""The HTTP routes of the chain's store data and downlink (retail_platform.chain does the work):

  GET  /v1/robots/{robot_id}/downlink?since=V          the robot's store data changed after V
                                                        (a full snapshot without V or when V is
                                                        too old); gzip when asked for
  GET  /v1/robots/{robot_id}/members/{member_id}       a consenting member, on demand
  POST /v1/robots/{robot_id}/forgotten/{member_id}     the robot confirms it forgot the member
  PUT  /v1/products                                    master products (admin)
  PUT  /v1/stores/{store_id}/products/{sku}            store-level price, stock, zone, promotion
  PUT|DELETE /v1/promotions/{promotion_id}             a promotion at chain, region or store level
  PUT  /v1/admin/members/{member_id}                   a member record (admin)
  POST /v1/admin/members/{member_id}/forget            forget a member everywhere (admin); 404
                                                        for an id the platform never saw unless
                                                        ?unknown_ok=true (CLI: --unknown-ok)
  GET  /v1/admin/members/{member_id}/forget            which robots confirmed (admin, analyst)
"""
from __future__ import annotations

import gzip
import json
from typing import Any, Callable

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, ValidationError

from retail_platform.app import LOG, a_credential, MAX_DOCUMENT_BYTES, MAX_SMALL_BODY, NO_NUL, STORE_ID, _responses, read_limited
from retail_platform.campaigns_api import CampaignsSection
from retail_common.events import MEMBER_ID
from retail_platform.chain import MAX_HISTORY, Chain, ChainError, NoSuchThing
from retail_sync.outbox import MAX_ID_CHARS, check_tree

SKU = r'^[^\x00/]{1,64}$'
SCOPE = r'^(chain|region:[A-Za-z0-9._-]{1,64}|store:[A-Za-z0-9._-]{1,64})$'
MAX_PRODUCTS = 100_000
GZIP_FROM = 1024          # bytes: smaller answers go plain


class Purchase(BaseModel):
    model_config = {'extra': 'forbid'}
    sku: str = Field(min_length=1, max_length=64, pattern=NO_NUL)
    ts: str = Field(max_length=64, pattern=NO_NUL, description='ISO 8601 time of the purchase')
    qty: int = Field(1, ge=0, le=1_000_000)
    price_cny: float = Field(ge=0, le=1e9)


class MemberIn(BaseModel):
    model_config = {'extra': 'forbid'}
    consent: bool = Field(description='the member agreed to be served with their data')
    home_store: str | None = Field(None, pattern=STORE_ID.pattern)
    history: list[Purchase] = Field([], max_length=MAX_HISTORY)


class MemberOut(BaseModel):
    member_id: str
    consent: bool
    home_store: str | None
    history: list[dict[str, Any]]
    profile: dict[str, Any] | None = Field(
        None, description='what the member said on earlier visits (retail_platform.profiles); '
                          'absent when nothing is kept')
    version: int | None = None


TEXT = r'^[^\x00]{0,1000}$'
FILLED = r'^\s*[^\x00\s][^\x00]*$'      # not blank (the catalog strips a field first)


class ProductRow(BaseModel):
    """One master product: the catalog's columns (retail_common.catalog), as text."""
    model_config = {'extra': 'forbid'}
    sku: str = Field(max_length=64, pattern=FILLED)
    name_zh: str = Field(max_length=1000, pattern=FILLED)
    name_en: str = Field(max_length=1000, pattern=FILLED)
    aliases: str = Field('', max_length=1000, pattern=TEXT, description='"|"-separated')
    category: str = Field(max_length=64, pattern=r'^\s*[a-z][a-z0-9_]*\s*$')
    category_zh: str = Field('', max_length=1000, pattern=TEXT)
    brand: str = Field(max_length=1000, pattern=FILLED)
    brand_zh: str = Field('', max_length=1000, pattern=TEXT)
    price_cny: str = Field(max_length=20, pattern=r'^\s*[0-9]{1,9}(\.[0-9]{1,4})?\s*$')
    zone: str = Field(max_length=64, pattern=FILLED)
    stock: str = Field(max_length=12, pattern=r'^\s*[0-9]{1,9}\s*$')
    tags: str = Field('', max_length=1000, pattern=TEXT, description='"|"-separated')
    promotion: str = Field('', max_length=1000, pattern=TEXT)
    promotion_en: str = Field('', max_length=1000, pattern=TEXT)


class ProductsIn(BaseModel):
    model_config = {'extra': 'forbid'}
    products: list[ProductRow] = Field(
        [], max_length=MAX_PRODUCTS, description='master products to add or replace')
    remove: list[str] = Field([], max_length=MAX_PRODUCTS, description='skus to remove')


class StoreProductIn(BaseModel):
    model_config = {'extra': 'forbid'}
    price_cny: float | None = Field(None, ge=0, le=1e9)
    stock: int | None = Field(None, ge=0, le=1_000_000_000)
    zone: str | None = Field(None, min_length=1, max_length=64, pattern=NO_NUL)
    promotion: str | None = Field(None, max_length=1000, pattern=NO_NUL)
    promotion_en: str | None = Field(None, max_length=1000, pattern=NO_NUL)


class PromotionIn(BaseModel):
    model_config = {'extra': 'forbid'}
    scope: str = Field(pattern=SCOPE, description='chain, region:<id> or store:<id>')
    content: dict[str, str | int | float | bool | None] = Field(
        description='what the robot shows: title, text, skus ("|"-separated), discount ...')


class Confirmation(BaseModel):
    model_config = {'extra': 'forbid'}
    detail: str = Field('', max_length=200, pattern=NO_NUL,
                        description='what the robot deleted (cache, gallery entry)')


class VersionOut(BaseModel):
    version: int = Field(description='the chain\'s downlink version after the change')


class DownlinkOut(BaseModel):
    store_id: str
    version: int
    since: int | None
    full: bool = Field(description='a snapshot: replace everything; else apply as a delta')
    products: list[dict[str, Any]]
    products_removed: list[str]
    promotions: list[dict[str, Any]]
    promotions_removed: list[str]
    appointments: list[dict[str, Any]]
    appointments_removed: list[str]
    members: list[dict[str, Any]]
    members_removed: list[str]
    forget: list[str] = Field(description='members to forget (tombstones), until confirmed')
    campaigns: CampaignsSection = Field(description='the store\'s active campaigns with the '
                                          'matching members the robot knows: the whole state '
                                          'in every answer (retail_platform.campaigns)')


class ForgetRobot(BaseModel):
    robot_id: str
    expected: bool = Field(description='the robot may hold the member')
    confirmed: bool
    confirmed_at: float | None
    detail: str


class ForgetStatus(BaseModel):
    member_id: str
    requested_at: float
    requested_by: str
    robots: list[ForgetRobot]
    pending: list[str] = Field(description='expected robots that have not confirmed yet')
    complete: bool


def add_chain_routes(app: FastAPI, chain: Chain, caller: Callable, roles: Callable,
                     robot_scope: Callable, store_access: Callable) -> None:
    """Register the routes above on `app` (create_app's guards: caller, roles, robot_scope,
    store_access(store_id, who, write))."""

    async def body(request: Request, model: type[BaseModel], what: str, limit: int,
                   depth: int = 4) -> Any:
        raw = await read_limited(request, limit)
        try:
            decoded = json.loads(raw)
        except RecursionError:
            raise HTTPException(422, f'{what} refused: nested too deeply') from None
        except (ValueError, UnicodeDecodeError):
            raise HTTPException(400, f'{what} refused: body is not JSON') from None
        check_tree(decoded, what, depth,
                   error=lambda message: HTTPException(422, f'{what} refused: {message}'))
        try:
            return model.model_validate(decoded)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = '.'.join(str(part) for part in first.get('loc', ()))
            raise HTTPException(422, f'{what} refused: {where}: {first.get("msg")}') from None

    models: dict[str, Any] = {}          # nested body models, added to the document's components

    def body_of(model: type[BaseModel]) -> dict:
        schema = model.model_json_schema(ref_template='#/components/schemas/{model}')
        models.update(schema.pop('$defs', {}))
        return {'requestBody': {'required': True, 'content': {'application/json': {'schema': schema}}}}

    plain_openapi = app.openapi

    def openapi_with_chain_models() -> dict:
        document = plain_openapi()
        document.setdefault('components', {}).setdefault('schemas', {}).update(models)
        return document
    app.openapi = openapi_with_chain_models  # type: ignore[method-assign]

    def refused(exc: Exception) -> HTTPException:
        return HTTPException(404 if isinstance(exc, NoSuchThing) else 422, str(exc))

    member_path = Path(pattern=MEMBER_ID, max_length=MAX_ID_CHARS, description='pseudonymous member id')

    @app.get('/v1/robots/{robot_id}/downlink', response_model=DownlinkOut,
             summary='The robot\'s store data changed after `since` (a full snapshot without it, '
                     'or when it is older than the kept change log or newer than the platform)',
             description='Products as the store sells them (master with the store\'s price, '
                         'stock, zone and promotion), the chain\'s, region\'s and store\'s '
                         'promotions, the store\'s appointments, the members the store has a '
                         'reason to know, and members to forget. Each list holds the current '
                         'state of what changed; `*_removed` what is gone. gzip when asked.',
             responses=_responses(401, 403, 404, 422, 503))
    def downlink(request: Request, robot_id: str = Depends(robot_scope),
                 since: int | None = Query(None, ge=0, le=2 ** 63 - 1,
                                           description='the version the robot holds')) -> Response:
        try:
            answer = chain.delta(robot_id, since)
        except NoSuchThing as exc:
            raise refused(exc) from None
        content = json.dumps(answer, ensure_ascii=False, separators=(',', ':')).encode()
        headers = {'Vary': 'Accept-Encoding'}
        if len(content) >= GZIP_FROM and 'gzip' in request.headers.get('accept-encoding', ''):
            content = gzip.compress(content, 6)
            headers['Content-Encoding'] = 'gzip'
        return Response(content, media_type='application/json', headers=headers)

    @app.get('/v1/robots/{robot_id}/members/{member_id}', response_model=MemberOut,
             summary='A consenting member the robot recognised (the robot caches it for offline '
                     'use); a robot\'s lookups are paced (429 with Retry-After past them)',
             responses=_responses(401, 403, 404, 422, 429, 503))
    def member(request: Request, member_id: str = member_path,
               robot_id: str = Depends(robot_scope), who=Depends(caller)) -> dict:
        if who.role == 'robot':         # guessing ids would list the chain's members
            from retail_platform.storage import MEMBER_LOOKUP_BURST, MEMBER_LOOKUPS_PER_HOUR
            wait = request.app.state.storage.take_member_lookup(robot_id)
            if wait:
                raise HTTPException(429, f'member lookups are paced (at most '
                                         f'{MEMBER_LOOKUP_BURST} at once, '
                                         f'{MEMBER_LOOKUPS_PER_HOUR} an hour per robot); retry '
                                         f'after {wait} s', headers={'Retry-After': str(wait)})
        try:
            return chain.member_on_demand(robot_id, member_id)
        except NoSuchThing as exc:
            raise refused(exc) from None

    @app.post('/v1/robots/{robot_id}/forgotten/{member_id}',
              summary='The robot confirms it deleted the member (cache and gallery entry)',
              responses=_responses(401, 403, 404, 413, 422, 503), openapi_extra=body_of(Confirmation))
    async def forgotten(request: Request, member_id: str = member_path,
                        robot_id: str = Depends(robot_scope)) -> dict:
        confirmation = await body(request, Confirmation, 'confirmation', MAX_SMALL_BODY)
        try:
            await run_in_threadpool(chain.confirm_forget, robot_id, member_id, confirmation.detail)
        except NoSuchThing as exc:
            raise refused(exc) from None
        return {'member_id': member_id, 'robot_id': robot_id, 'confirmed': True}

    @app.put('/v1/products', response_model=VersionOut, dependencies=[Depends(roles('admin'))],
             summary='Add, replace or remove master products (admin; one transaction)',
             responses=_responses(400, 401, 403, 413, 422, 503), openapi_extra=body_of(ProductsIn))
    async def put_products(request: Request) -> dict:
        given = await body(request, ProductsIn, 'products', MAX_DOCUMENT_BYTES, depth=3)
        try:
            return {'version': await run_in_threadpool(
                chain.put_products, [p.model_dump() for p in given.products], given.remove)}
        except (ChainError, NoSuchThing) as exc:
            raise refused(exc) from None

    @app.put('/v1/stores/{store_id}/products/{sku}', response_model=VersionOut,
             summary='A store\'s price, stock, zone or promotion of a master product (null: the '
                     'master\'s)', responses=_responses(400, 401, 403, 404, 413, 422, 503),
             openapi_extra=body_of(StoreProductIn))
    async def put_store_product(request: Request, store_id: str = Path(max_length=64),
                                sku: str = Path(pattern=SKU), who=Depends(caller)) -> dict:
        await run_in_threadpool(store_access, store_id, who, True)
        given = await body(request, StoreProductIn, 'store product', MAX_SMALL_BODY)
        try:
            return {'version': await run_in_threadpool(chain.set_store_product, store_id, sku,
                                                       given.model_dump())}
        except (ChainError, NoSuchThing) as exc:
            raise refused(exc) from None

    def may_write_scope(scope: str, who) -> None:
        level, _, name = scope.partition(':')
        c = who.credential
        if level == 'store':
            store_access(name, who, True)
        elif level == 'region':
            if not (c.role == 'admin' or (c.role == 'region' and c.region == name)):
                raise HTTPException(403, f'{a_credential(c.role)} may not change region {name}\'s promotions')
        elif c.role != 'admin':
            raise HTTPException(403, f'{a_credential(c.role)} may not change the chain\'s promotions')

    promotion_path = Path(pattern=STORE_ID.pattern, description='the promotion\'s id')

    @app.put('/v1/promotions/{promotion_id}', response_model=VersionOut,
             summary='Add or replace a promotion at chain, region or store level (admin; region '
                     'credential for its region; store staff for their stores)',
             responses=_responses(400, 401, 403, 404, 409, 413, 422, 503), openapi_extra=body_of(PromotionIn))
    async def put_promotion(request: Request, promotion_id: str = promotion_path,
                            who=Depends(caller)) -> dict:
        given = await body(request, PromotionIn, 'promotion', MAX_SMALL_BODY)
        await run_in_threadpool(may_write_scope, given.scope, who)
        old = await run_in_threadpool(chain.promotion_scope, promotion_id)
        if old and old != given.scope:
            try:
                await run_in_threadpool(may_write_scope, old, who)
            except HTTPException:
                # ids are the chain's: the caller learns the id is taken, not where (another
                # store's or region's promotions are not theirs to see)
                raise HTTPException(409, f'promotion id {promotion_id!r} is taken by a promotion '
                                         'you may not change: choose another id') from None
        try:
            return {'version': await run_in_threadpool(chain.put_promotion, promotion_id,
                                                       given.scope, given.content)}
        except (ChainError, NoSuchThing) as exc:
            raise refused(exc) from None

    @app.delete('/v1/promotions/{promotion_id}', response_model=VersionOut,
                summary='Remove a promotion (who may change its level)',
                responses=_responses(401, 403, 404, 422, 503))
    def delete_promotion(promotion_id: str = promotion_path, who=Depends(caller)) -> dict:
        scope = chain.promotion_scope(promotion_id)
        if scope is None:
            raise HTTPException(404, f'no promotion {promotion_id!r}')
        may_write_scope(scope, who)
        try:
            return {'version': chain.delete_promotion(promotion_id)}
        except NoSuchThing as exc:
            raise refused(exc) from None

    @app.put('/v1/admin/members/{member_id}', response_model=VersionOut,
             dependencies=[Depends(roles('admin'))],
             summary='Add or replace a member: consent, home store, purchases (admin)',
             responses=_responses(400, 401, 403, 404, 413, 422, 503), openapi_extra=body_of(MemberIn))
    async def put_member(request: Request, member_id: str = member_path) -> dict:
        given = await body(request, MemberIn, 'member', 4 * MAX_SMALL_BODY)
        try:
            return {'version': await run_in_threadpool(
                chain.put_member, member_id, given.consent, given.home_store,
                [p.model_dump() for p in given.history])}
        except (ChainError, NoSuchThing) as exc:
            raise refused(exc) from None

    forget_responses = _responses(401, 403, 404, 422, 503)
    forget_responses[404] = dict(forget_responses[404], description=(
        'the platform has never seen this member id (no member record, appointment, receipt, '
        'profile or event: most likely a typo) and unknown_ok is not true; nothing was changed'))

    @app.post('/v1/admin/members/{member_id}/forget', response_model=ForgetStatus,
              summary='Forget a member: their data is removed here and every robot that may '
                      'hold it gets a tombstone (admin)',
              description='An id the platform has never seen is refused (404) unless '
                          '`unknown_ok=true`, as `retailbot platform forget-member` refuses it '
                          'unless `--unknown-ok`: a misspelt id would otherwise stay on every '
                          'robot\'s forget list for good. Forgetting again is allowed (the id '
                          'is known by its forget request) and answers the current status.',
              responses=forget_responses)
    def forget(member_id: str = member_path, who=Depends(roles('admin')),
               unknown_ok: bool = Query(False, description='forget an id the platform has never '
                                        'seen (e.g. one known only to a robot\'s gallery): every '
                                        'robot gets its tombstone')) -> dict:
        if not unknown_ok and not chain.member_seen(member_id):
            raise HTTPException(404, f'the platform has never seen member {member_id!r} (no '
                                     'member record, appointment, receipt, profile or event): '
                                     'check the id, or add ?unknown_ok=true to send every robot '
                                     'its tombstone anyway')
        from retail_platform.forget_ledger import LedgerError
        try:
            return chain.forget_member(member_id, who.credential.role)
        except LedgerError as exc:       # not done: the request is in neither ledger nor database
            LOG.error(str(exc))
            raise HTTPException(503, f'{exc}: the member was not forgotten; try again') from None

    @app.get('/v1/admin/members/{member_id}/forget', response_model=ForgetStatus,
             dependencies=[Depends(roles('admin', 'analyst'))],
             summary='Which robots have confirmed forgetting a member',
             responses=_responses(401, 403, 404, 422, 503))
    def forget_status(member_id: str = member_path) -> dict:
        try:
            return chain.forget_status(member_id)
        except NoSuchThing as exc:
            raise refused(exc) from None
