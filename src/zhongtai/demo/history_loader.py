"""Loads the demo chain's members, order history and loyalty books in bulk: no stock moves (the
history predates the opening stock) and no events are written (history is not news)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from zhongtai.core.auth.models import StaffUser
from zhongtai.core.auth.roles import Role
from zhongtai.core.clock import business_day, utcnow
from zhongtai.core.db import Base
from zhongtai.core.settings import Settings
from zhongtai.demo.generator import DemoChain
from zhongtai.demo.member_coupons import CouponCampaigns
from zhongtai.demo.members import DemoMembers, build_demo_members, seal_phones
from zhongtai.demo.order_rows import OrderHistory
from zhongtai.demo.orders_history import HISTORY_DAYS, build_order_history, history_window
from zhongtai.demo.points_earning import LoyaltyTerms
from zhongtai.demo.points_history import build_points
from zhongtai.demo.points_ledger import PointsBooks
from zhongtai.demo.sites import TIMEZONE
from zhongtai.demo.store_trade import store_trades
from zhongtai.loyalty.models import (
    Coupon,
    CouponTemplate,
    CouponUse,
    MemberTier,
    PointsAccount,
    PointsEntry,
    PointsLot,
    PointsLotUse,
)
from zhongtai.members.models import ConsentRecord, Member, MemberIdentity
from zhongtai.members.pii import PiiCipher, cipher_for
from zhongtai.orders.models import (
    Order,
    OrderLine,
    OrderReturn,
    OrderReturnLine,
    OrderStatusChange,
    Payment,
    PosTerminal,
    ReceiptCounter,
    Refund,
)

CHUNK = 5000
ReportFn = Callable[[str, int, int], None]


@dataclass
class DemoHistory:
    """The members, orders and loyalty books of the history, built and not yet written."""

    today: date
    #: The UTC span the history covers: the ``days`` local days before ``today``.
    start: datetime
    end: datetime
    members: DemoMembers
    orders: OrderHistory
    coupons: CouponCampaigns
    points: PointsBooks


def guides_by_store(session: Session, chain: DemoChain) -> dict[str, list[uuid.UUID]]:
    """The staff ids of each store's shopping guides, by store code, in roster order
    (``guide.<code>`` first). Staff must be loaded."""
    codes = {s.username: s.store_code for s in chain.staff if s.role is Role.GUIDE and s.store_code}
    ids = dict(
        session.execute(
            select(StaffUser.username, StaffUser.id).where(StaffUser.username.in_(list(codes)))
        ).all()
    )
    found: dict[str, list[uuid.UUID]] = {}
    for username, code in codes.items():
        if username in ids:
            found.setdefault(code, []).append(ids[username])
    return found


def bulk_insert(
    session: Session,
    model: type[Base],
    rows: Sequence[dict[str, Any]],
    step: str,
    report: ReportFn,
) -> None:
    report(step, 0, len(rows))
    for start in range(0, len(rows), CHUNK):
        # Core's insert, not the ORM's bulk path: tens of thousands of rows, nothing to track.
        session.execute(insert(cast(Table, model.__table__)), list(rows[start : start + CHUNK]))
        report(step, min(start + CHUNK, len(rows)), len(rows))


#: The rows of one table to write: its model, the rows, and the step the progress names.
TableRows = tuple[type[Base], list[dict[str, Any]], str]


def bulk_insert_tables(
    session: Session, tables: Sequence[TableRows], report: ReportFn
) -> dict[str, int]:
    """Writes each table's rows in bulk, in the order given (parents before the rows that
    point at them); what was written, by step."""
    for model, rows, step in tables:
        bulk_insert(session, model, rows, step, report)
    return {step: len(rows) for _, rows, step in tables}


def build_demo_history(
    chain: DemoChain,
    *,
    ranges: Mapping[uuid.UUID, Sequence[uuid.UUID]],
    guides: Mapping[str, Sequence[uuid.UUID]],
    today: date,
    days: int = HISTORY_DAYS,
    terms: LoyaltyTerms | None = None,
) -> DemoHistory:
    """The chain's members (signed up over two years, some during the history), the coupons
    HQ's campaigns gave them, ``days`` of orders before ``today`` (Shanghai) that used some of
    the coupons, and the points and tiers the orders earned. Pure. A store's share-link orders
    name its first guide (the guides' world may spread them over her colleagues)."""
    start, end = history_window(today, days, TIMEZONE)
    members = build_demo_members(chain, until=end, total=chain.member_count)
    coupons = CouponCampaigns(chain, members, end)
    first_guides = {code: ids[0] for code, ids in guides.items() if ids}
    trades = store_trades(chain, ranges, members.by_store, first_guides)
    orders = build_order_history(
        chain, trades, today=today, days=days, shoppers=members.shoppers, coupons=coupons
    )
    points = build_points(
        chain, members, orders, start=start, end=end, terms=terms or LoyaltyTerms()
    )
    return DemoHistory(today, start, end, members, orders, coupons, points)


def insert_demo_history(
    session: Session, history: DemoHistory, report: ReportFn, cipher: PiiCipher
) -> dict[str, int]:
    """Writes the history in bulk in the caller's transaction, phones sealed with ``cipher``
    as the members service seals them; what was written, by table."""
    members, orders, coupons, points = (
        history.members,
        history.orders,
        history.coupons,
        history.points,
    )
    seal_phones(members, cipher)
    tables: list[TableRows] = [
        (Member, members.members, "members"),
        (MemberIdentity, members.identities, "member identities"),
        (ConsentRecord, members.consents, "member consents"),
        (PosTerminal, orders.terminals, "POS terminals"),
        (Order, orders.orders, "orders"),
        (OrderLine, orders.lines, "order lines"),
        (OrderStatusChange, orders.changes, "order timelines"),
        (Payment, orders.payments, "payments"),
        (OrderReturn, orders.returns, "returns"),
        (OrderReturnLine, orders.return_lines, "returned lines"),
        (Refund, orders.refunds, "refunds"),
        (ReceiptCounter, orders.counters, "receipt counters"),
        (CouponTemplate, coupons.templates, "coupon templates"),
        (Coupon, coupons.coupons, "coupons"),
        (CouponUse, coupons.uses, "coupon history"),
        (PointsAccount, points.accounts, "points accounts"),
        (PointsEntry, points.entries, "points entries"),
        (PointsLot, points.lots, "points lots"),
        (PointsLotUse, points.lot_uses, "points lot uses"),
        (MemberTier, points.tiers, "member tiers"),
    ]
    return bulk_insert_tables(session, tables, report)


def load_order_history(
    session: Session,
    chain: DemoChain,
    *,
    ranges: Mapping[uuid.UUID, Sequence[uuid.UUID]],
    report: ReportFn,
    settings: Settings,
    today: date | None = None,
    days: int = HISTORY_DAYS,
) -> dict[str, int]:
    """Members, then ``days`` of orders before ``today`` (Shanghai) and the loyalty books, in
    the caller's transaction; what was loaded, by table. Staff must be loaded first (guides
    are credited). Only the history: ``load_demo_chain`` adds the guides' world to it."""
    today = today or business_day(utcnow(), TIMEZONE)
    history = build_demo_history(
        chain,
        ranges=ranges,
        guides=guides_by_store(session, chain),
        today=today,
        days=days,
        terms=LoyaltyTerms.of(settings),
    )
    return insert_demo_history(session, history, report, cipher_for(settings))
