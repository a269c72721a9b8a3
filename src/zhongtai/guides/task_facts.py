"""The facts a guide's daily tasks are decided on, read for all her customers at once: who
they are, what they bought, returned and collected, their points, and the new arrivals — a
handful of set-based statements, however many customers a store has."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Category, Product, Sku
from zhongtai.core.clock import business_day
from zhongtai.fulfillment.models import MissedPromise
from zhongtai.guides.member_facts import (
    BoughtCategory,
    ExpiringPoints,
    LateOrder,
    MemberFacts,
    NewArrival,
    RecentReturn,
    WaitingPickup,
)
from zhongtai.guides.models import Guide, GuideBinding, GuideStatus
from zhongtai.guides.task_kinds import TaskPolicy
from zhongtai.loyalty.models import PointsLot
from zhongtai.members.models import ConsentChannel, ConsentRecord, Member, MemberStatus
from zhongtai.orders.kinds import OrderStatus
from zhongtai.orders.lifecycle import entered_at
from zhongtai.orders.models import Order, OrderLine, OrderReturn
from zhongtai.orders.uncollected_orders import collect_by
from zhongtai.stores.models import Location

#: An order in these states is not (or no longer) a purchase.
NOT_BOUGHT = (OrderStatus.CREATED, OrderStatus.CANCELLED)
#: Rows per INSERT and ids per IN list: far below both engines' bound-parameter limits.
BATCH = 500

T = TypeVar("T")


@dataclass(frozen=True)
class Customer:
    member_id: uuid.UUID
    guide_id: uuid.UUID
    store_id: uuid.UUID
    timezone: str
    birthday: date | None
    preferences: Mapping[str, Any]


def batches(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def customer_filter(store_id: uuid.UUID | None) -> list[ColumnElement[bool]]:
    conditions = [
        GuideBinding.ended_at.is_(None),
        Guide.status == GuideStatus.ACTIVE,
        Member.status == MemberStatus.ACTIVE,
    ]
    if store_id is not None:
        conditions.append(Guide.home_store_id == store_id)
    return conditions


def customer_ids_of(store_id: uuid.UUID | None) -> Select[uuid.UUID]:
    """The current customers of the run's active guides, as a subquery for IN."""
    return (
        select(GuideBinding.member_id)
        .join(Guide, Guide.staff_id == GuideBinding.guide_id)
        .join(Member, Member.id == GuideBinding.member_id)
        .where(*customer_filter(store_id))
    )


def customers_of(session: Session, store_id: uuid.UUID | None) -> list[Customer]:
    rows = session.execute(
        select(
            GuideBinding.member_id,
            GuideBinding.guide_id,
            Guide.home_store_id,
            Location.timezone,
            Member.birthday,
            Member.preferences,
        )
        .join(Guide, Guide.staff_id == GuideBinding.guide_id)
        .join(Member, Member.id == GuideBinding.member_id)
        .join(Location, Location.id == Guide.home_store_id)
        .where(*customer_filter(store_id))
    )
    return [Customer(m, g, s, tz, b, p or {}) for m, g, s, tz, b, p in rows]


def owners_of(customer_ids: Select[uuid.UUID]) -> Any:
    """Each customer and every member merged into her, as (member_id, owner_id): orders stay
    with the member who placed them, while her history is that of all her merged records."""
    return (
        select(
            Member.id.label("member_id"),
            func.coalesce(Member.merged_into_id, Member.id).label("owner_id"),
        )
        .where(or_(Member.id.in_(customer_ids), Member.merged_into_id.in_(customer_ids)))
        .subquery("owners")
    )


@dataclass
class Gathered:
    last_purchase: dict[uuid.UUID, datetime] = field(default_factory=dict)
    categories: dict[uuid.UUID, list[tuple[uuid.UUID, str, datetime]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    points: dict[uuid.UUID, list[tuple[int, datetime]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    pickups: dict[uuid.UUID, list[WaitingPickup]] = field(default_factory=lambda: defaultdict(list))
    late_orders: dict[uuid.UUID, list[LateOrder]] = field(default_factory=lambda: defaultdict(list))
    returns: dict[uuid.UUID, list[tuple[uuid.UUID, uuid.UUID, str, datetime, int, str | None]]] = (
        field(default_factory=lambda: defaultdict(list))
    )
    consent: dict[uuid.UUID, bool] = field(default_factory=dict)


def gather_facts(
    session: Session,
    customer_ids: Select[uuid.UUID],
    *,
    now: datetime,
    policy: TaskPolicy,
) -> Gathered:
    """Every fact of every customer in one statement per kind of fact."""
    facts = Gathered()
    owners = owners_of(customer_ids)
    bought = Order.status.not_in(NOT_BOUGHT)
    # A day of slack on every window: the rules cut on the store's local calendar.
    slack = timedelta(days=1)

    for owner, last in session.execute(
        select(owners.c.owner_id, func.max(Order.placed_at))
        .select_from(Order)
        .join(owners, owners.c.member_id == Order.member_id)
        .where(bought)
        .group_by(owners.c.owner_id)
    ):
        facts.last_purchase[owner] = last

    history_since = now - timedelta(days=policy.purchase_history_days) - slack
    for owner, category_id, name, last in session.execute(
        select(owners.c.owner_id, Product.category_id, Category.name, func.max(Order.placed_at))
        .select_from(Order)
        .join(owners, owners.c.member_id == Order.member_id)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .join(Sku, Sku.id == OrderLine.sku_id)
        .join(Product, Product.id == Sku.product_id)
        .join(Category, Category.id == Product.category_id)
        .where(bought, Order.placed_at >= history_since)
        .group_by(owners.c.owner_id, Product.category_id, Category.name)
    ):
        facts.categories[owner].append((category_id, name, last))

    points_until = now + timedelta(days=policy.points_expiring_within_days) + slack
    for member_id, remaining, expires_at in session.execute(
        select(PointsLot.member_id, PointsLot.remaining, PointsLot.expires_at).where(
            PointsLot.member_id.in_(customer_ids),
            PointsLot.remaining > 0,
            PointsLot.expires_at > now,
            PointsLot.expires_at <= points_until,
        )
    ):
        assert expires_at is not None  # lots that never expire are not selected
        facts.points[member_id].append((remaining, expires_at))

    # The timeline says when it became ready; the order's last change stands in for it.
    ready_since = func.coalesce(entered_at(OrderStatus.READY_FOR_PICKUP), Order.updated_at)
    for owner, order_id, number, store_id, kind, since in session.execute(
        select(
            owners.c.owner_id,
            Order.id,
            Order.number,
            Order.store_id,
            Order.fulfillment_type,
            ready_since,
        )
        .select_from(Order)
        .join(owners, owners.c.member_id == Order.member_id)
        .where(Order.status == OrderStatus.READY_FOR_PICKUP)
    ):
        facts.pickups[owner].append(
            WaitingPickup(order_id, number, store_id, since, collect_by(kind, since))
        )

    late_since = now - timedelta(days=policy.late_order_within_days) - slack
    for owner, order_id, number, store_id, kind, promised_by, found_at, status in session.execute(
        select(
            owners.c.owner_id,
            Order.id,
            Order.number,
            MissedPromise.store_id,
            MissedPromise.fulfillment_type,
            MissedPromise.promised_by,
            MissedPromise.detected_at,
            Order.status,
        )
        .select_from(MissedPromise)
        .join(Order, Order.id == MissedPromise.order_id)
        .join(owners, owners.c.member_id == Order.member_id)
        .where(MissedPromise.detected_at >= late_since, Order.status != OrderStatus.CANCELLED)
    ):
        facts.late_orders[owner].append(
            LateOrder(order_id, number, store_id, kind, promised_by, found_at, status.value)
        )

    returns_since = now - timedelta(days=policy.after_sale_within_days) - slack
    for owner, return_id, order_id, number, at, refund, reason in session.execute(
        select(
            owners.c.owner_id,
            OrderReturn.id,
            Order.id,
            Order.number,
            OrderReturn.occurred_at,
            OrderReturn.refund_total,
            OrderReturn.reason,
        )
        .select_from(Order)
        .join(owners, owners.c.member_id == Order.member_id)
        .join(OrderReturn, OrderReturn.order_id == Order.id)
        .where(OrderReturn.occurred_at >= returns_since)
    ):
        facts.returns[owner].append((return_id, order_id, number, at, refund, reason))

    latest = (
        select(
            ConsentRecord.member_id,
            ConsentRecord.granted,
            func.row_number()
            .over(
                partition_by=ConsentRecord.member_id,
                order_by=(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc()),
            )
            .label("newest_first"),
        )
        .where(
            ConsentRecord.member_id.in_(customer_ids),
            ConsentRecord.channel == ConsentChannel.WECOM,
        )
        .subquery()
    )
    for member_id, granted in session.execute(
        select(latest.c.member_id, latest.c.granted).where(latest.c.newest_first == 1)
    ):
        facts.consent[member_id] = bool(granted)
    return facts


def arrival_rows(session: Session, *, now: datetime, policy: TaskPolicy) -> list[Any]:
    since = now - timedelta(days=policy.new_arrivals_within_days + 1)
    return list(
        session.execute(
            select(
                Sku.id,
                Sku.code,
                Sku.name,
                Sku.size,
                Product.id,
                Product.name,
                Product.brand,
                Product.category_id,
                Category.name,
                Product.created_at,
            )
            .join(Product, Product.id == Sku.product_id)
            .join(Category, Category.id == Product.category_id)
            .where(
                Product.created_at >= since,
                Product.is_active.is_(True),
                Sku.is_active.is_(True),
            )
            .order_by(Product.created_at.desc(), Sku.code)
        )
    )


def arrivals_in(rows: Iterable[Any], timezone: str) -> tuple[NewArrival, ...]:
    """The new SKUs with the day each product was created, in a store's own calendar."""
    arrivals = []
    for row in rows:
        sku_id, code, name, size, product_id, product_name, brand, category_id, category, at = row
        arrivals.append(
            NewArrival(
                sku_id=sku_id,
                sku_code=code,
                sku_name=name,
                size=size,
                product_id=product_id,
                product_name=product_name,
                brand=brand,
                category_id=category_id,
                category_name=category,
                created_on=business_day(at, timezone),
            )
        )
    return tuple(arrivals)


def facts_of(customer: Customer, gathered: Gathered) -> MemberFacts:
    tz = customer.timezone
    m = customer.member_id
    last = gathered.last_purchase.get(m)
    return MemberFacts(
        member_id=m,
        birthday=customer.birthday,
        last_purchase_on=business_day(last, tz) if last is not None else None,
        bought_categories=tuple(
            BoughtCategory(category_id, name, business_day(at, tz))
            for category_id, name, at in gathered.categories.get(m, ())
        ),
        preferences=customer.preferences,
        points=tuple(
            ExpiringPoints(remaining, business_day(expires_at, tz))
            for remaining, expires_at in gathered.points.get(m, ())
        ),
        pickups=tuple(gathered.pickups.get(m, ())),
        late_orders=tuple(gathered.late_orders.get(m, ())),
        returns=tuple(
            RecentReturn(return_id, order_id, number, business_day(at, tz), refund, reason)
            for return_id, order_id, number, at, refund, reason in gathered.returns.get(m, ())
        ),
        marketing_consent=gathered.consent.get(m),
    )
