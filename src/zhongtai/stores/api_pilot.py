"""HTTP endpoints of the phased rollout: pilot rules, and whether a feature is on for a store."""

from __future__ import annotations

import uuid

from fastapi import Depends, Query, status
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.http.deps import db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.core.pagination import Page, PageParams, page_params
from zhongtai.stores import service_pilot
from zhongtai.stores.schemas import (
    FEATURE,
    PilotCheckOut,
    PilotRuleIn,
    PilotRuleOut,
    PilotStoresOut,
)

router = api_router()


@router.get("/pilot/rules", response_model=Page[PilotRuleOut], tags=["pilot"])
def list_rules(
    feature: str | None = Query(None, pattern=FEATURE),
    principal: Principal = Depends(require(Permission.STORES_READ)),
    page: PageParams = Depends(page_params),
    session: Session = Depends(db_session),
) -> Page[PilotRuleOut]:
    """Pilot rules by feature; store staff and POS keys see no other store's rules."""
    rows, cursor = service_pilot.list_pilot_rules(
        session, page, feature=feature, store_ids=principal.store_ids
    )
    return Page(items=[PilotRuleOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.put("/pilot/rules", response_model=PilotRuleOut, tags=["pilot"])
def put_rule(
    body: PilotRuleIn,
    _: Principal = Depends(require(Permission.PILOT_WRITE)),
    session: Session = Depends(db_session),
) -> PilotRuleOut:
    """Turn a feature on or off for the chain, a region, a store or a category (upsert).

    Creating or changing a rule is audited (``pilot_rule.created``, ``pilot_rule.changed``);
    a PUT of the rule as it stands changes nothing and leaves no entry."""
    rule = service_pilot.upsert_pilot_rule(session, **body.model_dump())
    return PilotRuleOut.model_validate(rule)


@router.delete("/pilot/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["pilot"])
def delete_rule(
    rule_id: uuid.UUID,
    _: Principal = Depends(require(Permission.PILOT_WRITE)),
    session: Session = Depends(db_session),
) -> None:
    """Remove a rule (audited as ``pilot_rule.deleted``); a rule already gone answers 404."""
    service_pilot.delete_pilot_rule(session, rule_id)


@router.get("/pilot/check", response_model=PilotCheckOut, tags=["pilot"])
def check(
    feature: str = Query(pattern=FEATURE, examples=["delivery"]),
    store_id: uuid.UUID = Query(),
    category_id: uuid.UUID | None = Query(None),
    principal: Principal = Depends(require(Permission.STORES_READ)),
    session: Session = Depends(db_session),
) -> PilotCheckOut:
    """Whether a feature is on for a store (and category), with the rule that decided."""
    principal.ensure_store(store_id)
    decision = service_pilot.is_enabled(session, feature, store_id, category_id)
    return PilotCheckOut(
        feature=feature,
        store_id=store_id,
        category_id=category_id,
        enabled=decision.enabled,
        reason=decision.reason,
    )


@router.get("/pilot/stores", response_model=PilotStoresOut, tags=["pilot"])
def stores(
    feature: str = Query(pattern=FEATURE, examples=["delivery"]),
    category_id: uuid.UUID | None = Query(None),
    principal: Principal = Depends(require(Permission.STORES_READ)),
    session: Session = Depends(db_session),
) -> PilotStoresOut:
    """The active stores where a feature is on (within the caller's stores); warehouses and
    DCs are never listed."""
    found = service_pilot.stores_with(session, feature, category_id, within=principal.store_ids)
    return PilotStoresOut(feature=feature, category_id=category_id, store_ids=found)
