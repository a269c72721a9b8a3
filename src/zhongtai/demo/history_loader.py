"""Loads the demo chain's members and order history in bulk: no stock moves (the history predates
the opening stock) and no events are written (history is not news)."""

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
from zhongtai.demo.generator import DemoChain
from zhongtai.demo.members import DemoMembers, build_demo_members
from zhongtai.demo.orders_history import (
    HISTORY_DAYS,
    OrderHistory,
    build_order_history,
    history_window,
)
from zhongtai.demo.sites import TIMEZONE
from zhongtai.demo.store_trade import store_trades
from zhongtai.members.models import Member, MemberIdentity
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
    """The members and orders of the history, built and not yet written."""

    today: date
    #: The UTC span the history covers: the ``days`` local days before ``today``.
    start: datetime
    end: datetime
    members: DemoMembers
    orders: OrderHistory


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


def build_demo_history(
    chain: DemoChain,
    *,
    ranges: Mapping[uuid.UUID, Sequence[uuid.UUID]],
    guides: Mapping[str, Sequence[uuid.UUID]],
    today: date,
    days: int = HISTORY_DAYS,
) -> DemoHistory:
    """Members, and ``days`` of orders before ``today`` (Shanghai). Pure. A store's share-link
    orders name its first guide (the guides' world may spread them over her colleagues)."""
    start, end = history_window(today, days, TIMEZONE)
    members = build_demo_members(chain, registered_before=start)
    first_guides = {code: ids[0] for code, ids in guides.items() if ids}
    trades = store_trades(chain, ranges, members.by_store, first_guides)
    orders = build_order_history(chain, trades, today=today, days=days)
    return DemoHistory(today, start, end, members, orders)


def insert_demo_history(session: Session, history: DemoHistory, report: ReportFn) -> dict[str, int]:
    """Writes the history in bulk in the caller's transaction; what was written, by table."""
    members, orders = history.members, history.orders
    tables: list[tuple[type[Base], list[dict[str, Any]], str]] = [
        (Member, members.members, "members"),
        (MemberIdentity, members.identities, "member identities"),
        (PosTerminal, orders.terminals, "POS terminals"),
        (Order, orders.orders, "orders"),
        (OrderLine, orders.lines, "order lines"),
        (OrderStatusChange, orders.changes, "order timelines"),
        (Payment, orders.payments, "payments"),
        (OrderReturn, orders.returns, "returns"),
        (OrderReturnLine, orders.return_lines, "returned lines"),
        (Refund, orders.refunds, "refunds"),
        (ReceiptCounter, orders.counters, "receipt counters"),
    ]
    for model, rows, step in tables:
        bulk_insert(session, model, rows, step, report)
    return {step: len(rows) for _, rows, step in tables}


def load_order_history(
    session: Session,
    chain: DemoChain,
    *,
    ranges: Mapping[uuid.UUID, Sequence[uuid.UUID]],
    report: ReportFn,
    today: date | None = None,
    days: int = HISTORY_DAYS,
) -> dict[str, int]:
    """Members, then ``days`` of orders before ``today`` (Shanghai), in the caller's
    transaction; what was loaded, by table. Staff must be loaded first (guides are credited).
    Only the history: ``load_demo_chain`` adds the guides' world to it."""
    today = today or business_day(utcnow(), TIMEZONE)
    history = build_demo_history(
        chain, ranges=ranges, guides=guides_by_store(session, chain), today=today, days=days
    )
    return insert_demo_history(session, history, report)
