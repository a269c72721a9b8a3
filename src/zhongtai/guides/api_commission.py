"""HTTP endpoints of commission: HQ's rules, guides' monthly targets, managers' corrections,
statements per guide and per store, the payroll export, and closing a month."""

from __future__ import annotations

import uuid

from fastapi import Depends, Header, status
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import InvalidInput
from zhongtai.core.http.deps import db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.core.ids import new_id
from zhongtai.guides import commission, statements
from zhongtai.guides.api_common import managed_guide, parse_month, row_out, statement_out
from zhongtai.guides.schemas import (
    AdjustmentIn,
    CloseMonthOut,
    EntryOut,
    RuleIn,
    RuleOut,
    StatementOut,
    StatementRowOut,
    TargetIn,
    TargetOut,
)

router = api_router(tags=["guide commission"])
MANAGE = Depends(require(Permission.GUIDES_MANAGE))
PROGRAM = Depends(require(Permission.GUIDES_PROGRAM))


@router.post("/commission-rules", response_model=RuleOut, status_code=status.HTTP_201_CREATED)
def create_rule(
    body: RuleIn, _: Principal = PROGRAM, session: Session = Depends(db_session)
) -> RuleOut:
    """A commission rule; for each line the most specific matching rule applies (category
    nearest the product, store, guide level)."""
    return RuleOut.model_validate(commission.create_rule(session, **body.model_dump()))


@router.get("/commission-rules", response_model=list[RuleOut])
def list_rules(
    include_inactive: bool = False,
    _: Principal = MANAGE,
    session: Session = Depends(db_session),
) -> list[RuleOut]:
    rules = commission.list_rules(session, include_inactive=include_inactive)
    return [RuleOut.model_validate(r) for r in rules]


@router.post("/commission-rules/{rule_id}/deactivate", response_model=RuleOut)
def deactivate_rule(
    rule_id: uuid.UUID, _: Principal = PROGRAM, session: Session = Depends(db_session)
) -> RuleOut:
    return RuleOut.model_validate(commission.deactivate_rule(session, rule_id))


@router.put("/guides/{guide_id}/targets", response_model=TargetOut)
def set_target(
    guide_id: uuid.UUID,
    body: TargetIn,
    principal: Principal = MANAGE,
    session: Session = Depends(db_session),
) -> TargetOut:
    managed_guide(session, principal, guide_id)
    target = commission.set_target(session, guide_id, body.month, body.target_amount)
    return TargetOut.model_validate(target)


@router.post(
    "/guides/{guide_id}/commission-adjustments",
    response_model=EntryOut,
    status_code=status.HTTP_201_CREATED,
)
def adjust_commission(
    guide_id: uuid.UUID,
    body: AdjustmentIn,
    principal: Principal = MANAGE,
    session: Session = Depends(db_session),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> EntryOut:
    """A manager's correction (with a reason; audited), payable at once."""
    managed_guide(session, principal, guide_id)
    entry = commission.adjust_commission(
        session,
        guide_id,
        amount=body.amount,
        reason=body.reason,
        month=body.month,
        reference=f"{principal.scope_key}:{idempotency_key}" if idempotency_key else str(new_id()),
        at=utcnow(),
    )
    return EntryOut.model_validate(entry)


@router.get("/guides/{guide_id}/statements/{month}", response_model=StatementOut)
def guide_statement(
    guide_id: uuid.UUID,
    month: str,
    principal: Principal = MANAGE,
    session: Session = Depends(db_session),
) -> StatementOut:
    guide = managed_guide(session, principal, guide_id)
    return statement_out(statements.guide_statement(session, guide, parse_month(month)))


def _store_scope(principal: Principal, store_id: uuid.UUID | None) -> uuid.UUID | None:
    if store_id is not None:
        principal.ensure_store(store_id)
    elif not principal.chain_wide:
        raise InvalidInput.field("store_id", "required for callers limited to their stores")
    return store_id


@router.get("/commission-statements/{month}", response_model=list[StatementRowOut])
def month_statements(
    month: str,
    store_id: uuid.UUID | None = None,
    principal: Principal = MANAGE,
    session: Session = Depends(db_session),
) -> list[StatementRowOut]:
    """One row per guide: attributed sales, commission earned, reversed, adjusted, bonus,
    pending and payable — the manager's view of the store's guides."""
    store = _store_scope(principal, store_id)
    rows = statements.month_statements(session, parse_month(month), store_id=store)
    return [row_out(r) for r in rows]


@router.get(
    "/commission-statements/{month}/payroll.csv",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def payroll_export(
    month: str,
    store_id: uuid.UUID | None = None,
    principal: Principal = MANAGE,
    session: Session = Depends(db_session),
) -> PlainTextResponse:
    """The month for payroll, one line per guide (amounts in fen)."""
    store = _store_scope(principal, store_id)
    body = statements.payroll_csv(session, parse_month(month), store_id=store)
    name = f"guide-commission-{month}{'-' + str(store) if store else ''}.csv"
    return PlainTextResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post("/commission-months/{month}/close", response_model=CloseMonthOut)
def close_month(
    month: str, _: Principal = PROGRAM, session: Session = Depends(db_session)
) -> CloseMonthOut:
    """Close a month past its return window: pending matures, target bonuses are booked."""
    start = parse_month(month)
    bonuses = commission.close_month(session, start, now=utcnow())
    return CloseMonthOut(month=start, bonuses=[EntryOut.model_validate(b) for b in bonuses])
