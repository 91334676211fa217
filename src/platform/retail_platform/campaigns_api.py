"""The campaigns' routes (retail_platform.campaigns does the work):

  PUT    /v1/campaigns/{campaign_id}           create or replace a campaign (admin)
  DELETE /v1/campaigns/{campaign_id}           remove it (admin)
  GET    /v1/campaigns                         the campaigns this credential may see: admin and
                                               analyst every one; a region credential those
                                               covering one of its stores; a store manager those
                                               covering one of its stores (read-only)
  GET    /v1/campaigns/{campaign_id}           one of them (404 when not visible)
  GET    /v1/campaigns/{campaign_id}/audience  how many members it matches now (admin, analyst)
  GET    /v1/robots/{robot_id}/campaigns       the robot's store's active campaigns with the
                                               matching members the robot knows (the downlink's
                                               `campaigns` section; the robot itself or admin)
"""
from __future__ import annotations

import json
from typing import Any, Callable

from fastapi import Depends, FastAPI, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, ValidationError

from retail_platform import campaigns
from retail_platform.app import MAX_SMALL_BODY, _responses, read_limited
from retail_platform.chain import Chain, NoSuchThing
from retail_sync.outbox import check_tree


class CampaignOut(campaigns.CampaignIn):
    id: str
    updated_at: float | None = None


class CampaignList(BaseModel):
    campaigns: list[CampaignOut]


class ActiveCampaign(BaseModel):
    id: str
    name: str
    skus: list[str]
    message_zh: str
    message_en: str
    starts_at: float = Field(description='seconds since 1970')
    ends_at: float
    members: list[str] = Field(description='the matching members this robot knows')


class CampaignsSection(BaseModel):
    """The downlink answer's `campaigns` section (version 1): the whole current state."""
    version: int = Field(description=f'the section\'s version ({campaigns.SECTION_VERSION})')
    at: float = Field(description='when it was computed (platform clock)')
    store_id: str
    active: list[ActiveCampaign]


class AudienceSize(BaseModel):
    id: str
    at: float
    members: int = Field(description='consenting members the audience matches now')
    counted_of: int
    active: bool


def register(app: FastAPI, chain: Chain, storage, caller: Callable, roles: Callable,
             robot_scope: Callable) -> None:
    engine = storage.engine
    campaign_path = Path(pattern=campaigns.CAMPAIGN_ID, description='campaign id')

    def body_schema() -> dict:
        schema = campaigns.CampaignIn.model_json_schema(ref_template='#/components/schemas/{model}')
        nested = schema.pop('$defs', {})
        plain = app.openapi

        def with_models() -> dict:
            document = plain()
            document.setdefault('components', {}).setdefault('schemas', {}).update(nested)
            return document
        app.openapi = with_models  # type: ignore[method-assign]
        return {'requestBody': {'required': True,
                                'content': {'application/json': {'schema': schema}}}}

    def seen_stores(who) -> list[dict] | None:
        c = who.credential
        if c.role in ('admin', 'analyst'):
            return None
        stores = storage.stores()
        if c.role == 'region':
            return [s for s in stores if s['region_id'] == c.region]
        if c.role == 'store_manager':
            return [s for s in stores if s['id'] in c.stores]
        raise HTTPException(403, 'a robot reads /v1/robots/{robot_id}/campaigns')

    @app.put('/v1/campaigns/{campaign_id}', response_model=CampaignOut,
             dependencies=[Depends(roles('admin'))],
             summary='Create or replace a campaign: who (audience rules), what (products and a '
                     'sentence in zh and en), where (stores, regions; none: every store), when',
             responses=_responses(400, 401, 403, 404, 413, 422, 503), openapi_extra=body_schema())
    async def put_campaign(request: Request, campaign_id: str = campaign_path,
                           who=Depends(caller)) -> dict:
        raw = await read_limited(request, MAX_SMALL_BODY)
        try:
            decoded = json.loads(raw)
        except RecursionError:
            raise HTTPException(422, 'campaign refused: nested too deeply') from None
        except (ValueError, UnicodeDecodeError):
            raise HTTPException(400, 'campaign refused: body is not JSON') from None
        check_tree(decoded, 'campaign', 5,
                   error=lambda message: HTTPException(422, f'campaign refused: {message}'))
        try:
            given = campaigns.CampaignIn.model_validate(decoded)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = '.'.join(str(part) for part in first.get('loc', ())) or 'body'
            raise HTTPException(422, f'campaign refused: {where}: {first.get("msg")}') from None
        try:
            return await run_in_threadpool(campaigns.put, engine, campaign_id, given,
                                           f'{who.role}:{who.credential.robot_id or ""}')
        except campaigns.CampaignError as exc:
            raise HTTPException(404, f'campaign refused: {exc}') from None

    @app.delete('/v1/campaigns/{campaign_id}', dependencies=[Depends(roles('admin'))],
                summary='Remove a campaign (admin); robots stop offering it at their next '
                        'downlink', responses=_responses(401, 403, 404, 422, 503))
    def delete_campaign(campaign_id: str = campaign_path) -> dict:
        try:
            campaigns.delete(engine, campaign_id)
        except campaigns.NoSuchCampaign as exc:
            raise HTTPException(404, str(exc)) from None
        return {'id': campaign_id, 'deleted': True}

    @app.get('/v1/campaigns', response_model=CampaignList,
             summary='The campaigns this credential may see (admin, analyst: all; region, store '
                     'manager: those covering their stores; read-only but for admin)',
             responses=_responses(401, 403, 422, 503))
    def list_campaigns(who=Depends(caller)) -> dict:
        return {'campaigns': campaigns.visible(engine, seen_stores(who))}

    @app.get('/v1/campaigns/{campaign_id}', response_model=CampaignOut,
             summary='One campaign (404 when there is none this credential may see)',
             responses=_responses(401, 403, 404, 422, 503))
    def get_campaign(campaign_id: str = campaign_path, who=Depends(caller)) -> dict:
        found = next((c for c in campaigns.visible(engine, seen_stores(who))
                      if c['id'] == campaign_id), None)
        if found is None:
            raise HTTPException(404, f'no campaign {campaign_id!r}')
        return found

    @app.get('/v1/campaigns/{campaign_id}/audience', response_model=AudienceSize,
             dependencies=[Depends(roles('admin', 'analyst'))],
             summary='How many consenting members the campaign matches now (HQ)',
             responses=_responses(401, 403, 404, 422, 503))
    def audience(campaign_id: str = campaign_path) -> dict:
        try:
            return campaigns.audience_size(engine, campaign_id)
        except campaigns.NoSuchCampaign as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get('/v1/robots/{robot_id}/campaigns', response_model=CampaignsSection,
             summary='The robot\'s store\'s active campaigns, each with the matching members '
                     'the robot knows (also in every downlink answer)',
             responses=_responses(401, 403, 404, 422, 503))
    def robot_campaigns(robot_id: str = Depends(robot_scope)) -> dict[str, Any]:
        try:
            return chain.campaigns_for(robot_id)
        except NoSuchThing as exc:
            raise HTTPException(404, str(exc)) from None
