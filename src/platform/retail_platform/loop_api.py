"""The data loop's routes on the platform app (registered by `create_app`):

  POST /v1/stores/{store_id}/receipts   till receipts as JSON lines (store staff in scope; admin)
  GET  /v1/stores/{store_id}/receipts   a store's receipts in a time range (staff, not robots)
  GET  /v1/stores/{store_id}/funnel     the store's funnel per day and in total (staff)
  GET  /v1/funnel                       every store's funnel (admin, analyst; a region: its own)
  GET  /v1/funnel/export?format=csv|parquet   the same store-days as a CSV or Parquet file
  GET  /v1/members/{member}/profile     what a consenting member said (a robot that holds her:
                                        sent in its downlink or fetched on demand; admin)
Definitions of the funnel: docs/metrics.md. The funnel routes only read the rollups, which the
serve process's background refresher (background.py) keeps up to date; each answer says when
they were last refreshed (`refreshed_at`).
"""
from __future__ import annotations

import io
from datetime import date
from typing import Literal

import sqlalchemy as sa
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from retail_common.events import member_id_problem
from retail_platform import funnel, funnel_export, hq, profiles, purchases
from retail_platform.app import a_credential
from retail_platform.chain import Chain

MAX_RECEIPTS_BODY = 16 * 1024 * 1024
RANGE_WORDS = (f'first day (default: 6 days before `to`, which defaults to today); a range of '
               f'more than {funnel.MAX_RANGE_DAYS} days is refused with 422 naming the limit; '
               '`from` after `to` is an empty range')


def register(app: FastAPI, storage, caller, store_reader, store_writer, read_limited,
             responses) -> None:
    engine = storage.engine

    def staff(who) -> None:
        if who.role == 'robot':
            raise HTTPException(403, 'a robot credential may not read this')

    @app.post('/v1/stores/{store_id}/receipts',
              summary='Import till receipts of a store (JSON lines as text, one receipt a line; '
                      'idempotent by receipt_id; a bad line is reported and skipped)',
              responses=responses(401, 403, 404, 413, 422, 503),
              openapi_extra={'requestBody': {'required': True, 'content': {
                  'text/plain': {'schema': {'type': 'string', 'description': 'JSON lines: '
                                 'one receipt a line (retail_platform.purchases)'}}}}})
    async def post_receipts(request: Request, store_id: str = Depends(store_writer)) -> dict:
        body = await read_limited(request, MAX_RECEIPTS_BODY)

        def work() -> dict:
            try:
                text = body.decode('utf-8')
            except UnicodeDecodeError:
                raise HTTPException(422, 'receipts refused: body is not UTF-8') from None
            if purchases.looks_like_csv(text):
                raise HTTPException(422, 'receipts refused: the body is CSV; this endpoint takes '
                                         'JSON lines, one receipt object a line (import a CSV '
                                         'file with `retailbot platform import-purchases`)')
            items = purchases.read_jsonl(io.StringIO(text), 'body', funnel.CHAIN_ZONE)
            result = purchases.store_receipts(engine, items, only_store=store_id)
            return result.as_dict()
        return await run_in_threadpool(work)

    @app.get('/v1/stores/{store_id}/receipts', summary='A store\'s receipts (staff)',
             responses=responses(401, 403, 404, 422, 503))
    def get_receipts(store_id: str = Depends(store_reader), who=Depends(caller),
                     start: float = Query(0.0, alias='from', ge=0, le=1e11,
                                          description='seconds since 1970'),
                     end: float = Query(4102444800.0, alias='to', ge=0, le=1e11),
                     limit: int = Query(1000, ge=1, le=10000)) -> dict:
        staff(who)
        return {'receipts': purchases.receipts_page(engine, store_id, start, end, limit)}

    def day_range(first: date | None, last: date | None) -> tuple[str, str]:
        """The range asked for, or 422 naming the limit (never a silently shorter range)."""
        asked = (first.isoformat() if first else None, last.isoformat() if last else None)
        a, b = funnel.check_range(*asked, strict=False)
        try:
            funnel.check_range(*asked, strict=True)
        except ValueError as exc:
            if 'at most' in str(exc):
                raise HTTPException(422, f'from {a} to {last or "today"} is more than '
                                         f'{funnel.MAX_RANGE_DAYS} days; ask for at most '
                                         f'{funnel.MAX_RANGE_DAYS} days at once') from None
        return a, b

    @app.get('/v1/stores/{store_id}/funnel',
             summary='The store\'s funnel per day and over the range (docs/metrics.md; '
                     'undefined rates are null)', responses=responses(401, 403, 404, 422, 503))
    def store_funnel(store_id: str = Depends(store_reader), who=Depends(caller),
                     first: date | None = Query(None, alias='from', description=RANGE_WORDS),
                     last: date | None = Query(None, alias='to')) -> dict:
        staff(who)
        a, b = day_range(first, last)
        rows = funnel.read(engine, [store_id], a, b)
        return {'store_id': store_id, 'from': a, 'to': b, 'definitions': funnel.DEFINITIONS,
                'refreshed_at': funnel.last_refresh(engine), 'days': rows,
                'total': funnel.total(rows)}

    @app.get('/v1/funnel', summary='Every store\'s funnel over a range (HQ: admin, analyst; '
             'a region credential: its stores)', responses=responses(401, 403, 422, 503))
    def chain_funnel(who=Depends(caller),
                     first: date | None = Query(None, alias='from', description=RANGE_WORDS),
                     last: date | None = Query(None, alias='to')) -> dict:
        c = who.credential
        if c.role in ('admin', 'analyst'):
            ids = None
        elif c.role == 'region':
            ids = [s['id'] for s in storage.stores() if s['region_id'] == c.region]
        else:
            raise HTTPException(403, f'{a_credential(c.role)} reads /v1/stores/{{store}}/funnel')
        a, b = day_range(first, last)
        rows = funnel.read(engine, ids, a, b)
        by_store: dict[str, list[dict]] = {}
        for row in rows:
            by_store.setdefault(row['store_id'], []).append(row)
        return {'from': a, 'to': b, 'definitions': funnel.DEFINITIONS,
                'refreshed_at': funnel.last_refresh(engine), 'stores': {s: funnel.total(r) for s, r in sorted(by_store.items())},
                'total': funnel.total(rows)}

    @app.get('/v1/funnel/export',
             summary='The store-days of a range as a file: CSV or Parquet (typed columns; rates '
                     'null when undefined). Admin, analyst; a region credential: its stores; a '
                     'store manager: its stores',
             responses={**responses(401, 403, 422, 503), 200: {
                 'description': 'the file (funnel-FROM-TO.csv or .parquet)',
                 'content': {'text/csv': {'schema': {'type': 'string'}},
                             'application/vnd.apache.parquet': {
                                 'schema': {'type': 'string', 'format': 'binary'}}}}})
    def chain_funnel_export(who=Depends(caller),
                            kind: Literal['csv', 'parquet'] = Query('csv', alias='format'),
                            first: date | None = Query(None, alias='from', description=RANGE_WORDS),
                            last: date | None = Query(None, alias='to')) -> Response:
        c = who.credential
        if c.role in ('admin', 'analyst'):
            scope = hq.Scope()
        elif c.role == 'region':
            scope = hq.Scope(region=c.region)
        elif c.role == 'store_manager':
            scope = hq.Scope(stores=tuple(sorted(c.stores)))
        else:
            raise HTTPException(403, 'a robot credential may not read this')
        a, b = day_range(first, last)
        # streamed as the pages' export is (hq.export_batches: a batch of store-days at a time,
        # the HQ summaries' columns; memory bounded by one batch, not the range)
        return funnel_export.answer_columns(hq.export_batches(engine, scope, a, b), kind, a, b)

    def withdrawn(member: str) -> bool:
        """The member has a record on the platform and it says she does not consent (the
        on-demand member record, the downlink and campaigns already leave her out)."""
        from retail_platform.chain import members
        with engine.connect() as c:
            consent = c.execute(sa.select(members.c.consent)
                                .where(members.c.member_id == member)).first()
        return consent is not None and not consent[0]

    def held_by(robot_id: str, member: str) -> bool:
        """The robot holds the member: she was sent in its downlink or fetched on demand (and
        not dropped since), so the platform has recorded it and a forget expects the robot's
        confirmation; and her record says she consents."""
        from retail_platform.chain import members, robot_members
        rm = robot_members.c
        with engine.connect() as c:
            return c.execute(sa.select(rm.member_id).select_from(robot_members.join(
                members, members.c.member_id == rm.member_id)).where(
                rm.robot_id == robot_id, rm.member_id == member, rm.dropped_version.is_(None),
                members.c.consent.is_(True))).first() is not None

    @app.get('/v1/members/{member}/profile',
             summary='What a consenting member said on earlier visits (a robot that holds her: '
                     'sent in its downlink or fetched on demand; admin); 404 when nothing is '
                     'kept or the robot does not hold her',
             responses=responses(401, 403, 404, 422, 503))
    def member_profile(member: str, who=Depends(caller)) -> dict:
        if who.role not in ('robot', 'admin'):
            raise HTTPException(403, f'{a_credential(who.role)} may not read members\' profiles')
        if member_id_problem(member) is not None:
            raise HTTPException(404, 'no such member')
        if who.role == 'robot' and not held_by(who.robot_id or '', member):
            # the answer of a member with no profile: a robot learns nothing of the chain's
            # other members (a robot of any store read anyone's by id, unrecorded)
            raise HTTPException(404, 'no profile kept for this member')
        Chain(engine).refresh_profiles()          # the downlink hears of what it folds
        found = profiles.profile(engine, member)
        if found is not None and withdrawn(member):
            found = None      # her record says no consent: no robot is served what she said
        if found is None:
            raise HTTPException(404, 'no profile kept for this member')
        return found

