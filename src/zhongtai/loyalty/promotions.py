"""Automatic promotions as HQ runs them: define, change, pause, list; read for the rules."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from zhongtai.core.audit import record_audit
from zhongtai.core.errors import AlreadyExists, InvalidInput, NotFound
from zhongtai.core.pagination import PageParams, paginate
from zhongtai.core.reference import ReferenceCache
from zhongtai.core.unique import write_unique
from zhongtai.loyalty import promotion_rules as rules
from zhongtai.loyalty.models import Promotion
from zhongtai.loyalty.promotion_terms import promotion_problems
from zhongtai.loyalty.scopes import scope_from_json, scope_to_json

#: The terms each kind reads; stored as a JSON document on the promotion.
TERM_FIELDS = (
    "percent",
    "amount_fen",
    "threshold_fen",
    "tiers",
    "buy",
    "get",
    "bundle_quantity",
    "bundle_price_fen",
    "member_prices",
    "cap_fen",
)


@dataclass(frozen=True)
class PromotionDefinition:
    """Everything HQ says about a promotion (its id aside)."""

    code: str
    name: str
    kind: rules.PromotionKind
    terms: dict[str, Any]
    scope: rules.Scope
    priority: int = 0
    exclusive: bool = False
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    active: bool = True


def as_rule(row: Promotion) -> rules.Promotion:
    terms = row.terms or {}
    return rules.Promotion(
        id=str(row.id),
        name=row.name,
        kind=row.kind,
        scope=scope_from_json(row.scope),
        priority=row.priority,
        exclusive=row.exclusive,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        percent=int(terms.get("percent") or 0),
        amount_fen=int(terms.get("amount_fen") or 0),
        threshold_fen=int(terms.get("threshold_fen") or 0),
        tiers=tuple((int(t), int(o)) for t, o in terms.get("tiers") or ()),
        buy=int(terms.get("buy") or 0),
        get=int(terms.get("get") or 0),
        bundle_quantity=int(terms.get("bundle_quantity") or 0),
        bundle_price_fen=int(terms.get("bundle_price_fen") or 0),
        member_prices=tuple(
            (uuid.UUID(str(sku)), int(price)) for sku, price in terms.get("member_prices") or ()
        ),
        cap_fen=None if terms.get("cap_fen") is None else int(terms["cap_fen"]),
    )


def _stored_terms(terms: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(terms) - set(TERM_FIELDS))
    if unknown:
        raise InvalidInput.field(f"terms.{unknown[0]}", f"not a term; terms are {TERM_FIELDS}")
    return {k: v for k, v in terms.items() if v is not None}


def _apply(row: Promotion, definition: PromotionDefinition) -> None:
    row.code = definition.code
    row.name = definition.name
    row.kind = definition.kind
    row.terms = _stored_terms(definition.terms)
    row.scope = scope_to_json(definition.scope)
    row.priority = definition.priority
    row.exclusive = definition.exclusive
    row.starts_at = definition.starts_at
    row.ends_at = definition.ends_at
    row.active = definition.active
    problems = promotion_problems(as_rule(row))
    if problems:
        field, message = problems[0]
        raise InvalidInput(
            f"{field}: {message}",
            errors=[{"field": f, "message": m} for f, m in problems],
        )


def _taken(session: Session, code: str) -> AlreadyExists:
    return AlreadyExists(f"Promotion {code!r} exists.", code=code)


def create_promotion(session: Session, definition: PromotionDefinition) -> Promotion:
    row = Promotion()
    _apply(row, definition)

    def write() -> Promotion:
        session.add(row)
        return row

    created = write_unique(session, write, lambda: _taken(session, definition.code))
    record_audit(session, "promotion.created", "promotion", created.id, None, _facts(created))
    return created


def get_promotion(session: Session, promotion_id: uuid.UUID) -> Promotion:
    row = session.get(Promotion, promotion_id)
    if row is None:
        raise NotFound(f"No promotion {promotion_id}.", promotion_id=str(promotion_id))
    return row


def replace_promotion(
    session: Session, promotion_id: uuid.UUID, definition: PromotionDefinition
) -> Promotion:
    """Change a promotion as a whole; baskets priced from now on see the new terms."""
    row = get_promotion(session, promotion_id)
    before = _facts(row)

    def write() -> Promotion:
        _apply(row, definition)
        return row

    changed = write_unique(session, write, lambda: _taken(session, definition.code))
    record_audit(session, "promotion.changed", "promotion", row.id, before, _facts(changed))
    return changed


def _facts(row: Promotion) -> dict[str, Any]:
    return {
        "code": row.code,
        "kind": row.kind.value,
        "terms": row.terms,
        "scope": row.scope,
        "priority": row.priority,
        "exclusive": row.exclusive,
        "active": row.active,
        "starts_at": row.starts_at.isoformat() if row.starts_at else None,
        "ends_at": row.ends_at.isoformat() if row.ends_at else None,
    }


def list_promotions(
    session: Session, page: PageParams, *, live_at: datetime | None = None
) -> tuple[list[Promotion], str | None]:
    """Every promotion by id; with ``live_at``, only those running at that moment."""
    stmt = select(Promotion)
    if live_at is not None:
        stmt = _live(stmt, live_at)
    return paginate(session, stmt, [Promotion.id], page)


def _live(stmt: Select[Any], at: datetime) -> Select[Any]:
    return stmt.where(
        Promotion.active,
        or_(Promotion.starts_at.is_(None), Promotion.starts_at <= at),
        or_(Promotion.ends_at.is_(None), Promotion.ends_at > at),
    )


#: The active promotions as rules, kept at a reference generation (``zhongtai.core.reference``).
_KEPT = ReferenceCache(maxsize=64)


def live_promotions(
    session: Session, at: datetime, *, generation: int | None = None
) -> list[rules.Promotion]:
    """The promotions running at ``at``, as the rules take them: one statement, or none when
    this process read the active promotions at the reference ``generation`` given."""
    if generation is None:
        return [as_rule(row) for row in session.scalars(_live(select(Promotion), at))]

    def read() -> list[rules.Promotion]:
        return [as_rule(row) for row in session.scalars(select(Promotion).where(Promotion.active))]

    return [
        p
        for p in _KEPT.get(session, generation, "active", read)
        if (p.starts_at is None or p.starts_at <= at) and (p.ends_at is None or p.ends_at > at)
    ]
