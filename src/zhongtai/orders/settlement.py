"""The daily settlement for finance: money taken and given back per store, business day, sales
channel and tender, as CSV, reproducible for a closed day.

A payment belongs to the business day it was captured on in its store's time zone (a till
sale: the day printed on its receipt, even when an offline till uploaded it later); a refund to
the day it was given. ``as_of`` cuts at a recording time, so a report of a closed day comes out
the same however often it is drawn, even after a late offline upload (drawn without a cut, the
late sale is in the day it belongs to, and the difference shows).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.orders.codes import DAY_STARTS, business_date
from zhongtai.orders.models import Order, Payment, PaymentStatus, Refund
from zhongtai.stores.models import Location, LocationKind

COLUMNS = (
    "business_date",
    "store_code",
    "channel",
    "tender",
    "payments",
    "taken_fen",
    "refunds",
    "refunded_fen",
    "net_fen",
)


@dataclass(frozen=True)
class Movement:
    """One payment (positive) or refund (negative) as finance counts it."""

    business_date: date
    store_code: str
    channel: str
    tender: str
    amount: int
    is_refund: bool


@dataclass(frozen=True)
class SettlementRow:
    business_date: date
    store_code: str
    channel: str
    tender: str
    payments: int
    taken_fen: int
    refunds: int
    refunded_fen: int

    @property
    def net_fen(self) -> int:
        return self.taken_fen - self.refunded_fen

    def as_csv(self) -> list[str]:
        return [
            self.business_date.isoformat(),
            self.store_code,
            self.channel,
            self.tender,
            str(self.payments),
            str(self.taken_fen),
            str(self.refunds),
            str(self.refunded_fen),
            str(self.net_fen),
        ]


def settle(movements: Iterable[Movement]) -> list[SettlementRow]:
    """Sum movements per (day, store, channel, tender), in that order: a pure function."""
    totals: dict[tuple[date, str, str, str], list[int]] = {}
    for m in movements:
        row = totals.setdefault((m.business_date, m.store_code, m.channel, m.tender), [0, 0, 0, 0])
        if m.is_refund:
            row[2] += 1
            row[3] += m.amount
        else:
            row[0] += 1
            row[1] += m.amount
    return [
        SettlementRow(day, store, channel, tender, *figures)
        for (day, store, channel, tender), figures in sorted(totals.items())
    ]


def _window(day: date, zone: str) -> tuple[datetime, datetime]:
    """The UTC instants a business day of a store starts and ends."""
    tz = ZoneInfo(zone)
    start = datetime.combine(day, DAY_STARTS, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), DAY_STARTS, tzinfo=tz)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


def _stores(session: Session, store_ids: Sequence[uuid.UUID] | None) -> list[Location]:
    stmt = select(Location).where(Location.kind == LocationKind.STORE)
    if store_ids is not None:
        stmt = stmt.where(Location.id.in_(store_ids))
    return list(session.scalars(stmt.order_by(Location.code)))


def settlement_for_day(
    session: Session,
    day: date,
    *,
    store_ids: Sequence[uuid.UUID] | None = None,
    as_of: datetime | None = None,
) -> list[SettlementRow]:
    """The day's settlement rows for the stores (all, or ``store_ids``)."""
    movements: list[Movement] = []
    for store in _stores(session, store_ids):
        start, end = _window(day, store.timezone)
        # Captured in the window, or a till sale of this business day uploaded late.
        paid = (
            select(Payment, Order)
            .join(Order, Order.id == Payment.order_id)
            .where(
                Order.store_id == store.id,
                Payment.status == PaymentStatus.CAPTURED,
                (
                    (Order.business_date == day)
                    | (
                        Order.business_date.is_(None)
                        & (Payment.captured_at >= start)
                        & (Payment.captured_at < end)
                    )
                ),
            )
        )
        refunded = (
            select(Refund, Order)
            .join(Order, Order.id == Refund.order_id)
            .where(
                Order.store_id == store.id, Refund.occurred_at >= start, Refund.occurred_at < end
            )
        )
        if as_of is not None:
            paid = paid.where(Payment.created_at <= as_of)
            refunded = refunded.where(Refund.occurred_at <= as_of)
        for payment, order in session.execute(paid):
            captured = payment.captured_at or payment.created_at
            when = order.business_date or business_date(captured, store.timezone)
            if when != day:
                continue
            movements.append(
                Movement(
                    day,
                    store.code,
                    order.channel.value,
                    payment.tender.value,
                    payment.amount,
                    False,
                )
            )
        for refund, order in session.execute(refunded):
            movements.append(
                Movement(
                    day, store.code, order.channel.value, refund.tender.value, refund.amount, True
                )
            )
    return settle(movements)


def settlement_csv(rows: Iterable[SettlementRow]) -> str:
    """CSV with a header row; amounts in fen; one line per day, store, channel and tender."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(row.as_csv())
    return out.getvalue()
