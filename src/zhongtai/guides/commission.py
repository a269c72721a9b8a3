"""Commission set-up and corrections: HQ's rules, guides' monthly targets, a manager's
adjustment (with a reason, audited), and closing a month (target tier bonuses booked)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Category
from zhongtai.core import context
from zhongtai.core.audit import record_audit
from zhongtai.core.errors import InvalidInput, NotFound
from zhongtai.core.money import yuan
from zhongtai.guides.commission_rules import CommissionBasis, monthly_tier_bonus
from zhongtai.guides.errors import MonthClosed, MonthNotClosable
from zhongtai.guides.ledger import book_entry, mature_commission, next_month
from zhongtai.guides.models import (
    ClosedMonth,
    CommissionEntry,
    CommissionKind,
    CommissionRuleRecord,
    CommissionStatus,
    Guide,
    MonthlyTarget,
)
from zhongtai.guides.program import program_terms
from zhongtai.guides.roster import get_guide, store_of
from zhongtai.guides.statements import attributed_sales


def create_rule(
    session: Session,
    *,
    name: str,
    basis: CommissionBasis,
    rate_bp: int = 0,
    amount_per_item: int = 0,
    category_id: uuid.UUID | None = None,
    store_id: uuid.UUID | None = None,
    guide_level: str | None = None,
    priority: int = 0,
) -> CommissionRuleRecord:
    if basis is CommissionBasis.PERCENT and not 0 < rate_bp <= 10000:
        raise InvalidInput.field("rate_bp", "a percent rule needs 1..10000 basis points")
    if basis is CommissionBasis.PER_ITEM and amount_per_item <= 0:
        raise InvalidInput.field("amount_per_item", "a per-item rule needs a positive amount")
    if category_id is not None and session.get(Category, category_id) is None:
        raise InvalidInput.field("category_id", "no such category")
    if store_id is not None:
        store_of(session, store_id)
    rule = CommissionRuleRecord(
        name=name,
        basis=basis,
        rate_bp=rate_bp if basis is CommissionBasis.PERCENT else 0,
        amount_per_item=amount_per_item if basis is CommissionBasis.PER_ITEM else 0,
        category_id=category_id,
        store_id=store_id,
        guide_level=guide_level,
        priority=priority,
        created_by=context.actor.get(),
    )
    session.add(rule)
    session.flush()
    record_audit(
        session,
        "commission_rule.created",
        "commission_rule",
        rule.id,
        None,
        {
            "name": name,
            "basis": basis,
            "rate_bp": rule.rate_bp,
            "amount_per_item": rule.amount_per_item,
            "category_id": category_id,
            "store_id": store_id,
            "guide_level": guide_level,
            "priority": priority,
        },
        store_id=store_id,
    )
    return rule


def deactivate_rule(session: Session, rule_id: uuid.UUID) -> CommissionRuleRecord:
    rule = session.get(CommissionRuleRecord, rule_id, with_for_update=True)
    if rule is None:
        raise NotFound(f"No commission rule {rule_id}.", rule_id=str(rule_id))
    if rule.active:
        rule.active = False
        session.flush()
        record_audit(
            session,
            "commission_rule.deactivated",
            "commission_rule",
            rule.id,
            {"active": True},
            {"active": False},
            store_id=rule.store_id,
        )
    return rule


def list_rules(session: Session, *, include_inactive: bool = False) -> list[CommissionRuleRecord]:
    stmt = select(CommissionRuleRecord).order_by(CommissionRuleRecord.created_at)
    if not include_inactive:
        stmt = stmt.where(CommissionRuleRecord.active)
    return list(session.scalars(stmt))


def _month(value: date) -> date:
    if value.day != 1:
        raise InvalidInput.field("month", "the first day of the month, e.g. 2026-11-01")
    return value


def set_target(
    session: Session, guide_id: uuid.UUID, month: date, target_amount: int
) -> MonthlyTarget:
    _month(month)
    if target_amount < 0:
        raise InvalidInput.field("target_amount", "must not be negative")
    guide = get_guide(session, guide_id)
    if session.get(ClosedMonth, month) is not None:
        raise MonthClosed(f"{month:%Y-%m} is closed.", month=f"{month:%Y-%m}")
    target = session.get(MonthlyTarget, (guide_id, month), with_for_update=True)
    before = None if target is None else {"target_amount": target.target_amount}
    if target is None:
        target = MonthlyTarget(guide_id=guide_id, month=month, target_amount=target_amount)
        session.add(target)
    target.target_amount = target_amount
    target.set_by = context.actor.get()
    session.flush()
    record_audit(
        session,
        "guide_target.set",
        "guide",
        guide_id,
        before,
        {"month": month, "target_amount": target_amount},
        store_id=guide.home_store_id,
    )
    return target


def adjust_commission(
    session: Session,
    guide_id: uuid.UUID,
    *,
    amount: int,
    reason: str,
    month: date,
    reference: str,
    at: datetime,
) -> CommissionEntry:
    """A manager's correction on a guide's statement, payable at once; ``reference`` (the
    request's idempotency key or a generated id) makes a retry add nothing."""
    _month(month)
    if amount == 0:
        raise InvalidInput.field("amount", "must not be zero")
    if not reason.strip():
        raise InvalidInput.field("reason", "say why the commission is corrected")
    if session.get(ClosedMonth, month) is not None:
        raise MonthClosed(
            f"{month:%Y-%m} is closed; book the correction on an open month.",
            month=f"{month:%Y-%m}",
        )
    guide = get_guide(session, guide_id)
    entry = book_entry(
        session,
        guide=guide,
        kind=CommissionKind.ADJUSTMENT,
        amount=amount,
        month=month,
        status=CommissionStatus.PAYABLE,
        payable_at=at,
        source_ref=f"adjustment:{reference}",
        reason=f"Adjustment {yuan(amount)}: {reason.strip()}",
        details={"reason": reason.strip()},
    )
    record_audit(
        session,
        "commission.adjusted",
        "guide",
        guide_id,
        None,
        {"entry_id": entry.id, "amount": amount, "month": month, "reason": reason.strip()},
        store_id=guide.home_store_id,
    )
    return entry


def close_month(session: Session, month: date, *, now: datetime) -> list[CommissionEntry]:
    """Close a statement month once every sale of it is past the return window: pending
    commission matures, each guide with a target gets her tier bonus, and later entries go to
    the next month. Closing twice changes nothing."""
    _month(month)
    terms = program_terms(session)
    # A sale on the last evening of the month is past the window this long after month end
    # (one extra day covers the store time zones ahead of UTC).
    closable_at = datetime.combine(next_month(month), datetime.min.time(), now.tzinfo)
    closable_at += terms.return_window + timedelta(days=1)
    if now < closable_at:
        raise MonthNotClosable(
            f"{month:%Y-%m} can be closed from {closable_at:%Y-%m-%d %H:%M} UTC, when its "
            "sales are past the return window.",
            closable_at=closable_at.isoformat(),
        )
    if session.get(ClosedMonth, month, with_for_update=True) is not None:
        return []
    mature_commission(session, now=now)
    targets = list(session.scalars(select(MonthlyTarget).where(MonthlyTarget.month == month)))
    sales = attributed_sales(session, month, {t.guide_id for t in targets})
    base = dict(
        session.execute(
            select(CommissionEntry.guide_id, func.sum(CommissionEntry.amount))
            .where(
                CommissionEntry.month == month,
                CommissionEntry.kind.in_([CommissionKind.EARNED, CommissionKind.REVERSED]),
                CommissionEntry.guide_id.in_({t.guide_id for t in targets}),
            )
            .group_by(CommissionEntry.guide_id)
        ).all()
    )
    bonuses: list[CommissionEntry] = []
    for target in sorted(targets, key=lambda t: t.guide_id):
        outcome = monthly_tier_bonus(
            sales.get(target.guide_id, 0),
            target.target_amount,
            int(base.get(target.guide_id) or 0),
            terms.target_tiers,
        )
        if outcome.bonus <= 0:
            continue
        guide = session.get(Guide, target.guide_id)
        assert guide is not None
        bonuses.append(
            book_entry(
                session,
                guide=guide,
                kind=CommissionKind.TARGET_BONUS,
                amount=outcome.bonus,
                month=month,
                status=CommissionStatus.PAYABLE,
                payable_at=now,
                source_ref=f"bonus:{target.guide_id}:{month:%Y-%m}",
                reason=(
                    f"Target {yuan(target.target_amount)} {outcome.attainment_pct}% reached: "
                    f"commission x{outcome.tier.multiplier_pct / 100:.2f}"
                ),
                details={
                    "sales": sales.get(target.guide_id, 0),
                    "target": target.target_amount,
                    "attainment_pct": outcome.attainment_pct,
                    "multiplier_pct": outcome.tier.multiplier_pct,
                },
            )
        )
    session.add(ClosedMonth(month=month, closed_at=now, closed_by=context.actor.get()))
    session.flush()
    record_audit(
        session,
        "commission_month.closed",
        "commission_month",
        f"{month:%Y-%m}",
        None,
        {"bonuses": len(bonuses), "bonus_total": sum(b.amount for b in bonuses)},
    )
    return bonuses
