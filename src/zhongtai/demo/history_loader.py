"""Loads the demo chain's members and order history in bulk: no stock moves (the history predates
the opening stock) and no events are written (history is not news)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from zhongtai.core.auth.models import StaffUser
from zhongtai.core.clock import business_day, utcnow
from zhongtai.core.db import Base
from zhongtai.demo.generator import DemoChain
from zhongtai.demo.members import build_demo_members
from zhongtai.demo.orders_history import HISTORY_DAYS, build_order_history, history_window
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


def _guides(session: Session, chain: DemoChain) -> dict[str, uuid.UUID]:
    """The first shopping guide of each store (credited on its share-link orders)."""
    wanted = {f"guide.{s['code'].lower()}": s["code"] for s in chain.stores}
    rows = session.execute(
        select(StaffUser.username, StaffUser.id).where(StaffUser.username.in_(wanted))
    )
    return {wanted[username]: user_id for username, user_id in rows}


def _bulk(
    session: Session,
    model: type[Base],
    rows: Sequence[dict[str, Any]],
    step: str,
    report: Callable[[str, int, int], None],
) -> None:
    report(step, 0, len(rows))
    for start in range(0, len(rows), CHUNK):
        # Core's insert, not the ORM's bulk path: tens of thousands of rows, nothing to track.
        session.execute(insert(cast(Table, model.__table__)), list(rows[start : start + CHUNK]))
        report(step, min(start + CHUNK, len(rows)), len(rows))


def load_order_history(
    session: Session,
    chain: DemoChain,
    *,
    ranges: Mapping[uuid.UUID, Sequence[uuid.UUID]],
    report: Callable[[str, int, int], None],
    today: date | None = None,
    days: int = HISTORY_DAYS,
) -> dict[str, int]:
    """Members, then ``days`` of orders before ``today`` (Shanghai), in the caller's
    transaction; what was loaded, by table. Staff must be loaded first (guides are credited)."""
    today = today or business_day(utcnow(), TIMEZONE)
    start, _ = history_window(today, days, TIMEZONE)
    members = build_demo_members(chain, registered_before=start)
    trades = store_trades(chain, ranges, members.by_store, _guides(session, chain))
    history = build_order_history(chain, trades, today=today, days=days)
    tables: list[tuple[type[Base], list[dict[str, Any]], str]] = [
        (Member, members.members, "members"),
        (MemberIdentity, members.identities, "member identities"),
        (PosTerminal, history.terminals, "POS terminals"),
        (Order, history.orders, "orders"),
        (OrderLine, history.lines, "order lines"),
        (OrderStatusChange, history.changes, "order timelines"),
        (Payment, history.payments, "payments"),
        (OrderReturn, history.returns, "returns"),
        (OrderReturnLine, history.return_lines, "returned lines"),
        (Refund, history.refunds, "refunds"),
        (ReceiptCounter, history.counters, "receipt counters"),
    ]
    for model, rows, step in tables:
        _bulk(session, model, rows, step, report)
    return {step: len(rows) for _, rows, step in tables}
