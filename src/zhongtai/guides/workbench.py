"""The guide's phone: her customers (masked, consent-aware), one customer's 360° summary, and
her performance; and the store manager's views of the store's guides and unbound members."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from zhongtai.core.errors import Forbidden
from zhongtai.core.pagination import PageParams, paginate
from zhongtai.guides.binding import current_binding
from zhongtai.guides.member_tags import has_tag
from zhongtai.guides.models import (
    Guide,
    GuideBinding,
    GuideStatus,
    LineAttribution,
    ShareLink,
    ShareVisit,
    WeComContact,
)
from zhongtai.guides.roster import get_guide
from zhongtai.guides.statements import StatementRow, Totals, month_statements
from zhongtai.guides.tasks import task_counts_by_guide
from zhongtai.loyalty.models import Coupon, CouponStatus
from zhongtai.loyalty.queries import points_balance
from zhongtai.members.identity import get_member, identity_value
from zhongtai.members.models import (
    ConsentChannel,
    ConsentRecord,
    IdentityKind,
    Member,
    MemberIdentity,
    MemberStatus,
)
from zhongtai.members.pii import PiiCipher
from zhongtai.members.rules import mask_phone
from zhongtai.orders.kinds import OrderStatus
from zhongtai.orders.models import Order

#: Orders that count as purchases (not cancelled, not still waiting for payment).
_BOUGHT = [s for s in OrderStatus if s not in {OrderStatus.CANCELLED, OrderStatus.CREATED}]


@dataclass(frozen=True)
class CustomerCard:
    member_id: uuid.UUID
    name: str | None
    phone: str | None
    tags: list[str]
    bound_at: datetime
    source: str
    protected_until: datetime
    last_purchase_at: datetime | None
    orders_12m: int
    spend_12m: int
    #: How she may be contacted now: her consents, and WeCom only if she is in the guide's
    #: WeCom contacts.
    contact_options: list[str]


def _phones(session: Session, cipher: PiiCipher, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = session.scalars(
        select(MemberIdentity).where(
            MemberIdentity.member_id.in_(ids), MemberIdentity.kind == IdentityKind.PHONE
        )
    )
    return {i.member_id: mask_phone(identity_value(cipher, i)) for i in rows}


def _consents(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, set[ConsentChannel]]:
    granted: dict[uuid.UUID, dict[ConsentChannel, bool]] = {}
    rows = session.scalars(
        select(ConsentRecord)
        .where(ConsentRecord.member_id.in_(ids))
        .order_by(ConsentRecord.recorded_at, ConsentRecord.id)
    )
    for row in rows:
        granted.setdefault(row.member_id, {})[row.channel] = row.granted
    return {m: {c for c, ok in by.items() if ok} for m, by in granted.items()}


def _purchases(
    session: Session, ids: list[uuid.UUID], since: datetime
) -> dict[uuid.UUID, tuple[datetime | None, int, int]]:
    last = dict(
        session.execute(
            select(Order.member_id, func.max(Order.placed_at))
            .where(Order.member_id.in_(ids), Order.status.in_(_BOUGHT))
            .group_by(Order.member_id)
        ).all()
    )
    recent = {
        m: (int(n), int(total or 0))
        for m, n, total in session.execute(
            select(Order.member_id, func.count(), func.sum(Order.total - Order.refunded_amount))
            .where(Order.member_id.in_(ids), Order.status.in_(_BOUGHT), Order.placed_at >= since)
            .group_by(Order.member_id)
        )
    }
    return {m: (last.get(m), *recent.get(m, (0, 0))) for m in ids}


def _cards(
    session: Session,
    cipher: PiiCipher,
    guide_id: uuid.UUID,
    bindings: list[GuideBinding],
    now: datetime,
) -> list[CustomerCard]:
    ids = [b.member_id for b in bindings]
    members = {m.id: m for m in session.scalars(select(Member).where(Member.id.in_(ids)))}
    phones = _phones(session, cipher, ids)
    consents = _consents(session, ids)
    bought = _purchases(session, ids, now - timedelta(days=365))
    on_wecom = set(
        session.scalars(
            select(WeComContact.member_id).where(
                WeComContact.guide_id == guide_id,
                WeComContact.member_id.in_(ids),
                WeComContact.removed_at.is_(None),
            )
        )
    )
    cards = []
    for b in bindings:
        member = members[b.member_id]
        granted = consents.get(b.member_id, set())
        options = [
            c.value
            for c in ConsentChannel
            if c in granted and (c is not ConsentChannel.WECOM or b.member_id in on_wecom)
        ]
        last, n, spend = bought[b.member_id]
        cards.append(
            CustomerCard(
                member_id=b.member_id,
                name=member.name,
                phone=phones.get(b.member_id),
                tags=list(member.tags or []),
                bound_at=b.bound_at,
                source=b.source.value,
                protected_until=b.protected_until,
                last_purchase_at=last,
                orders_12m=n,
                spend_12m=spend,
                contact_options=options,
            )
        )
    return cards


def my_customers(
    session: Session,
    cipher: PiiCipher,
    guide_id: uuid.UUID,
    params: PageParams,
    *,
    now: datetime,
    name: str | None = None,
    tag: str | None = None,
) -> tuple[list[CustomerCard], str | None]:
    """Her current customers, longest-bound first; filter by a part of the name or a whole
    tag (:func:`has_tag`)."""
    stmt = select(GuideBinding).where(
        GuideBinding.guide_id == guide_id, GuideBinding.ended_at.is_(None)
    )
    if name or tag:
        stmt = stmt.join(Member, Member.id == GuideBinding.member_id)
        if name:
            stmt = stmt.where(Member.name.contains(name, autoescape=True))
        if tag:
            stmt = stmt.where(has_tag(session, tag))
    bindings, cursor = paginate(session, stmt, [GuideBinding.bound_at, GuideBinding.id], params)
    return _cards(session, cipher, guide_id, bindings, now), cursor


def ensure_my_customer(session: Session, guide_id: uuid.UUID, member_id: uuid.UUID) -> Member:
    """The member, if she is this guide's customer (a guide sees only her own)."""
    member = get_member(session, member_id)
    binding = current_binding(session, member.id)
    if binding is None or binding.guide_id != guide_id:
        raise Forbidden("This member is not one of your customers.", member_id=str(member_id))
    return member


@dataclass(frozen=True)
class CustomerSummary:
    card: CustomerCard
    birthday: date | None
    preferences: dict[str, Any]
    tier: str
    points: int
    points_expiring: list[dict[str, Any]]
    coupons_available: int
    orders_by_channel: dict[str, int]
    recent_orders: list[dict[str, Any]] = field(default_factory=list)


def customer_summary(
    session: Session, cipher: PiiCipher, guide_id: uuid.UUID, member_id: uuid.UUID, *, now: datetime
) -> CustomerSummary:
    """One customer at a glance: profile (masked), purchases of every channel, points, coupons."""
    member = ensure_my_customer(session, guide_id, member_id)
    binding = current_binding(session, member.id)
    assert binding is not None
    card = _cards(session, cipher, guide_id, [binding], now)[0]
    balance = points_balance(session, member.id, now)
    coupons = session.scalar(
        select(func.count()).where(
            Coupon.member_id == member.id,
            Coupon.status == CouponStatus.AVAILABLE,
            Coupon.expires_at > now,
        )
    )
    by_channel = {
        str(channel): int(n)
        for channel, n in session.execute(
            select(Order.channel, func.count())
            .where(Order.member_id == member.id, Order.status.in_(_BOUGHT))
            .group_by(Order.channel)
        )
    }
    recent = [
        {
            "order_id": o.id,
            "number": o.number,
            "channel": o.channel.value,
            "fulfillment_type": o.fulfillment_type.value,
            "status": o.status.value,
            "total": o.total,
            "placed_at": o.placed_at,
        }
        for o in session.scalars(
            select(Order)
            .where(Order.member_id == member.id)
            .order_by(Order.placed_at.desc())
            .limit(5)
        )
    ]
    return CustomerSummary(
        card=card,
        birthday=member.birthday,
        preferences=dict(member.preferences or {}),
        tier=balance.tier.value,
        points=balance.balance,
        points_expiring=[{"at": e.expires_at, "points": e.points} for e in balance.expiring],
        coupons_available=int(coupons or 0),
        orders_by_channel=by_channel,
        recent_orders=recent,
    )


@dataclass(frozen=True)
class Performance:
    guide_id: uuid.UUID
    month: date
    customers: int
    new_customers: int
    share_links_opened: int
    attributed_sales: int
    attributed_orders: int
    commission: Totals
    rank_in_store: int | None
    guides_in_store: int
    tasks_done: int
    tasks_skipped: int
    tasks_open: int


def performance(
    session: Session, guide_id: uuid.UUID, store_id: uuid.UUID, month: date, *, until: datetime
) -> Performance:
    """Her month: customers, share links opened, attributed sales and orders, commission
    pending and payable, and her rank among the store's guides by attributed sales."""
    get_guide(session, guide_id)
    [mine] = _performances(session, [guide_id], store_id, month, until=until)
    return mine


def store_performance(
    session: Session, store_id: uuid.UUID, month: date, *, until: datetime
) -> list[Performance]:
    """Every active guide of the store (and any who left but earned in the month), best
    attributed sales first. The same statements answer for two guides or two hundred."""
    statements = month_statements(session, month, store_id=store_id)
    earned = {r.guide_id for r in statements}
    guides = list(
        session.scalars(
            select(Guide.staff_id).where(
                Guide.home_store_id == store_id,
                (Guide.status == GuideStatus.ACTIVE) | Guide.staff_id.in_(earned),
            )
        )
    )
    rows = _performances(session, guides, store_id, month, until=until, statements=statements)
    return sorted(rows, key=lambda p: (p.rank_in_store or len(rows) + 1, str(p.guide_id)))


def _performances(
    session: Session,
    guide_ids: list[uuid.UUID],
    store_id: uuid.UUID,
    month: date,
    *,
    until: datetime,
    statements: list[StatementRow] | None = None,
) -> list[Performance]:
    """The month of each guide, in the order given; each figure is one query grouped by guide."""
    if not guide_ids:
        return []
    start = datetime.combine(month, datetime.min.time(), until.tzinfo)
    customers = _per_guide(
        session,
        select(GuideBinding.guide_id, func.count())
        .where(GuideBinding.guide_id.in_(guide_ids), GuideBinding.ended_at.is_(None))
        .group_by(GuideBinding.guide_id),
    )
    new = _per_guide(
        session,
        select(GuideBinding.guide_id, func.count())
        .where(
            GuideBinding.guide_id.in_(guide_ids),
            GuideBinding.bound_at >= start,
            GuideBinding.bound_at <= until,
        )
        .group_by(GuideBinding.guide_id),
    )
    opened = _per_guide(
        session,
        select(ShareLink.guide_id, func.count())
        .select_from(ShareVisit)
        .join(ShareLink, ShareLink.id == ShareVisit.link_id)
        .where(ShareLink.guide_id.in_(guide_ids), ShareVisit.opened_at >= start)
        .group_by(ShareLink.guide_id),
    )
    orders = _per_guide(
        session,
        select(LineAttribution.guide_id, func.count(func.distinct(LineAttribution.order_id)))
        .where(LineAttribution.guide_id.in_(guide_ids), LineAttribution.attributed_at >= start)
        .group_by(LineAttribution.guide_id),
    )
    tasks = task_counts_by_guide(session, guide_ids, month)
    if statements is None:
        statements = month_statements(session, month, store_id=store_id)
    by_guide = {r.guide_id: r for r in statements}
    ranked = sorted(statements, key=lambda r: (-r.attributed_sales, r.username))
    rank = {r.guide_id: i + 1 for i, r in enumerate(ranked)}
    return [
        Performance(
            guide_id=g,
            month=month,
            customers=customers.get(g, 0),
            new_customers=new.get(g, 0),
            share_links_opened=opened.get(g, 0),
            attributed_sales=by_guide[g].attributed_sales if g in by_guide else 0,
            attributed_orders=orders.get(g, 0),
            commission=by_guide[g].totals if g in by_guide else Totals(),
            rank_in_store=rank.get(g),
            guides_in_store=len(statements),
            tasks_done=tasks[g].done,
            tasks_skipped=tasks[g].skipped,
            tasks_open=tasks[g].open,
        )
        for g in guide_ids
    ]


def _per_guide(session: Session, counts: Select[uuid.UUID, int]) -> dict[uuid.UUID, int]:
    return {guide_id: int(n or 0) for guide_id, n in session.execute(counts)}


def unbound_members(
    session: Session, store_id: uuid.UUID, params: PageParams
) -> tuple[list[Member], str | None]:
    """Active members of the store (preferred or registered there) without a guide."""
    bound = select(GuideBinding.member_id).where(GuideBinding.ended_at.is_(None))
    stmt = select(Member).where(
        Member.status == MemberStatus.ACTIVE,
        (Member.preferred_store_id == store_id)
        | ((Member.preferred_store_id.is_(None)) & (Member.registered_store_id == store_id)),
        Member.id.not_in(bound),
    )
    return paginate(session, stmt, [Member.id], params)


def my_sales(
    session: Session, guide_id: uuid.UUID, params: PageParams, *, since: datetime
) -> tuple[list[LineAttribution], str | None]:
    """The order lines credited to her since a moment, oldest first, each with its reason."""
    stmt = select(LineAttribution).where(
        LineAttribution.guide_id == guide_id, LineAttribution.attributed_at >= since
    )
    return paginate(session, stmt, [LineAttribution.attributed_at, LineAttribution.id], params)
