"""HTTP endpoints of HQ's points earn rules: create, list, read, deactivate."""

from __future__ import annotations

import uuid

from fastapi import Depends, Query, status
from pydantic import AwareDatetime
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.http.deps import db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.core.pagination import Page, PageParams, page_params
from zhongtai.loyalty import earn_rules
from zhongtai.loyalty.earn_rule_schemas import EarnRuleIn, EarnRuleOut
from zhongtai.loyalty.multiplier_rules import EarnRuleKind

router = api_router(tags=["points"])
BASE = "/points/earn-rules"

#: Earn rules are HQ marketing's to set, like promotions and coupon campaigns.
MANAGE_RULES = Permission.OFFERS_MANAGE


@router.post(BASE, response_model=EarnRuleOut, status_code=status.HTTP_201_CREATED)
def create_earn_rule(
    body: EarnRuleIn,
    _: Principal = Depends(require(MANAGE_RULES)),
    session: Session = Depends(db_session),
) -> EarnRuleOut:
    """A category multiplier (the category and its subcategories; the nearest category's rule
    wins, one live rule per category) or a campaign (a window, optionally channels and stores;
    when several match a sale the highest multiplier wins, they never stack). Orders completing
    from now on earn by it."""
    return EarnRuleOut.model_validate(earn_rules.create_earn_rule(session, body.draft()))


@router.get(BASE, response_model=Page[EarnRuleOut])
def list_earn_rules(
    kind: EarnRuleKind | None = Query(default=None),
    active: bool | None = Query(default=None),
    live_at: AwareDatetime | None = Query(
        default=None, description="Only those a sale at this moment earns by."
    ),
    _: Principal = Depends(require(Permission.POINTS_READ)),
    page: PageParams = Depends(page_params),
    session: Session = Depends(db_session),
) -> Page[EarnRuleOut]:
    """Every earn rule in the order it was created; touchpoints read the live campaigns to
    show them (积分翻倍 today)."""
    rows, cursor = earn_rules.list_earn_rules(
        session, page, kind=kind, active=active, live_at=live_at
    )
    return Page(items=[EarnRuleOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get(f"{BASE}/{{rule_id}}", response_model=EarnRuleOut)
def get_earn_rule(
    rule_id: uuid.UUID,
    _: Principal = Depends(require(Permission.POINTS_READ)),
    session: Session = Depends(db_session),
) -> EarnRuleOut:
    return EarnRuleOut.model_validate(earn_rules.get_earn_rule(session, rule_id))


@router.post(f"{BASE}/{{rule_id}}/deactivate", response_model=EarnRuleOut)
def deactivate_earn_rule(
    rule_id: uuid.UUID,
    _: Principal = Depends(require(MANAGE_RULES)),
    session: Session = Depends(db_session),
) -> EarnRuleOut:
    """Stop the rule: orders completing from now on no longer earn by it; points already
    booked stay. Deactivating it again answers the same."""
    return EarnRuleOut.model_validate(earn_rules.deactivate_earn_rule(session, rule_id))
