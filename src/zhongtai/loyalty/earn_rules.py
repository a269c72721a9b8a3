"""HQ's points earn rules: category and campaign multipliers created, listed, deactivated
(each change audited), and read for a sale."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from zhongtai.catalog.categories import get_category
from zhongtai.core.audit import record_audit
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import AlreadyExists, InvalidInput, NotFound
from zhongtai.core.pagination import PageParams, paginate
from zhongtai.core.unique import write_unique
from zhongtai.loyalty.models import EarnRule
from zhongtai.loyalty.multiplier_rules import (
    CampaignMultiplier,
    CategoryMultiplier,
    EarnRuleDraft,
    EarnRuleKind,
    earn_rule_problems,
)
from zhongtai.stores.models import Location, LocationKind


@dataclass(frozen=True)
class SaleMultipliers:
    """HQ's live rules that bear on one sale: category rules of its lines' lineages, and the
    campaigns running at the moment of the sale (the pure rules pick the winner)."""

    categories: list[CategoryMultiplier]
    campaigns: list[CampaignMultiplier]


def _check(session: Session, draft: EarnRuleDraft, now: datetime) -> None:
    problems = earn_rule_problems(draft, now)
    if draft.category_id is not None and not any(f == "category_id" for f, _ in problems):
        try:
            get_category(session, uuid.UUID(draft.category_id))
        except NotFound:
            problems.append(("category_id", f"no category {draft.category_id}"))
    if draft.store_ids:
        known = set(
            session.scalars(
                select(Location.id).where(
                    Location.id.in_([uuid.UUID(s) for s in draft.store_ids]),
                    Location.kind == LocationKind.STORE,
                )
            )
        )
        unknown = sorted(s for s in draft.store_ids if uuid.UUID(s) not in known)
        if unknown:
            problems.append(("store_ids", f"not stores of the chain: {', '.join(unknown[:5])}"))
    if problems:
        field, message = problems[0]
        raise InvalidInput(
            f"{field}: {message}", errors=[{"field": f, "message": m} for f, m in problems]
        )


def create_earn_rule(
    session: Session, draft: EarnRuleDraft, *, now: datetime | None = None
) -> EarnRule:
    """Store a rule HQ set; sales completing from now on earn by it. A category holds one live
    rule at a time: a second is 409 naming the first (deactivate it to change the rate)."""
    now = now or utcnow()
    _check(session, draft, now)
    row = EarnRule(
        kind=draft.kind,
        name=draft.name.strip(),
        multiplier_pct=draft.multiplier_pct,
        category_id=None if draft.category_id is None else uuid.UUID(draft.category_id),
        starts_at=draft.starts_at,
        ends_at=draft.ends_at,
        channels=sorted(draft.channels),
        store_ids=sorted(draft.store_ids),
        active=True,
        created_at=now,
    )

    def write() -> EarnRule:
        session.add(row)
        return row

    created = write_unique(session, write, lambda: _category_taken(session, row.category_id))
    record_audit(session, "earn_rule.created", "earn_rule", created.id, None, _facts(created))
    return created


def _category_taken(session: Session, category_id: uuid.UUID | None) -> AlreadyExists | None:
    live = session.scalar(
        select(EarnRule.id).where(EarnRule.category_id == category_id, EarnRule.active)
    )
    if live is None:
        return None
    return AlreadyExists(
        f"Category {category_id} already has the live earn rule {live}; deactivate it first.",
        category_id=str(category_id),
        earn_rule_id=str(live),
    )


def get_earn_rule(session: Session, rule_id: uuid.UUID) -> EarnRule:
    row = session.get(EarnRule, rule_id)
    if row is None:
        raise NotFound(f"No earn rule {rule_id}.", earn_rule_id=str(rule_id))
    return row


def deactivate_earn_rule(
    session: Session, rule_id: uuid.UUID, *, now: datetime | None = None
) -> EarnRule:
    """Stop a rule: sales completing from now on no longer earn by it (entries already booked
    keep what they got). Deactivating it again changes nothing."""
    row = session.get(EarnRule, rule_id, with_for_update=True)
    if row is None:
        raise NotFound(f"No earn rule {rule_id}.", earn_rule_id=str(rule_id))
    if not row.active:
        return row
    before = _facts(row)
    row.active = False
    row.deactivated_at = now or utcnow()
    session.flush()
    record_audit(session, "earn_rule.deactivated", "earn_rule", row.id, before, _facts(row))
    return row


def list_earn_rules(
    session: Session,
    page: PageParams,
    *,
    kind: EarnRuleKind | None = None,
    active: bool | None = None,
    live_at: datetime | None = None,
) -> tuple[list[EarnRule], str | None]:
    """Rules by id (the order they were created); ``live_at``: only those a sale at that moment
    could earn by (active, and for campaigns inside their window)."""
    stmt: Select[Any] = select(EarnRule)
    if kind is not None:
        stmt = stmt.where(EarnRule.kind == kind)
    if active is not None:
        stmt = stmt.where(EarnRule.active.is_(active))
    if live_at is not None:
        stmt = stmt.where(
            EarnRule.active,
            (EarnRule.kind == EarnRuleKind.CATEGORY)
            | ((EarnRule.starts_at <= live_at) & (EarnRule.ends_at > live_at)),
        )
    return paginate(session, stmt, [EarnRule.id], page)


def multipliers_for_sale(
    session: Session, category_ids: Collection[str], at: datetime
) -> SaleMultipliers:
    """The live category rules among ``category_ids`` (the sale's lines' lineages) and the
    campaigns whose window holds ``at``: one statement."""
    wanted = [uuid.UUID(c) for c in set(category_ids)]
    running = (EarnRule.kind == EarnRuleKind.CAMPAIGN) & (EarnRule.starts_at <= at)
    running &= EarnRule.ends_at > at
    rows = session.scalars(
        select(EarnRule).where(
            EarnRule.active, or_(EarnRule.category_id.in_(wanted), running) if wanted else running
        )
    )
    categories, campaigns = [], []
    for row in rows:
        if row.kind is EarnRuleKind.CATEGORY and row.category_id is not None:
            categories.append(
                CategoryMultiplier(str(row.id), row.name, str(row.category_id), row.multiplier_pct)
            )
        elif row.starts_at is not None and row.ends_at is not None:
            campaigns.append(
                CampaignMultiplier(
                    rule_id=str(row.id),
                    name=row.name,
                    multiplier_pct=row.multiplier_pct,
                    starts_at=row.starts_at,
                    ends_at=row.ends_at,
                    channels=frozenset(row.channels or ()),
                    store_ids=frozenset(row.store_ids or ()),
                )
            )
    return SaleMultipliers(categories, campaigns)


def _facts(row: EarnRule) -> dict[str, Any]:
    return {
        "kind": row.kind.value,
        "name": row.name,
        "multiplier_pct": row.multiplier_pct,
        "category_id": None if row.category_id is None else str(row.category_id),
        "starts_at": row.starts_at.isoformat() if row.starts_at else None,
        "ends_at": row.ends_at.isoformat() if row.ends_at else None,
        "channels": row.channels,
        "store_ids": row.store_ids,
        "active": row.active,
    }
