"""Taking a guide's commission back when goods she sold come back: per credited line, in
proportion to the money that actually went back to the customer for it — the line's refund
less what the return withheld for a gift (满额赠) she keeps, plus what a later return gave back
for that gift (``guides.refund_rules``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core.money import yuan
from zhongtai.guides.commission_rules import reversal_for_return
from zhongtai.guides.ledger import book_entry, booking_month
from zhongtai.guides.models import (
    CommissionEntry,
    CommissionKind,
    CommissionStatus,
    Guide,
    LineAttribution,
)
from zhongtai.guides.refund_rules import LineRefund, ReturnedMoney, line_refunds
from zhongtai.orders.models import OrderReturn


def _money(order_return: OrderReturn) -> ReturnedMoney:
    # A line may come back twice in one return: its own units and its substitute's.
    refunds: dict[uuid.UUID, int] = {}
    for line in order_return.lines:
        refunds[line.order_line_id] = refunds.get(line.order_line_id, 0) + line.refund
    gifts = [(x.gift_line_id, x.amount) for x in order_return.gift_adjustments]
    return ReturnedMoney(refunds, gifts)


def _slices(
    session: Session, order_return: OrderReturn
) -> tuple[dict[uuid.UUID, int], dict[uuid.UUID, LineRefund]]:
    """What the order's returns before this one refunded of each line, and this one's slices.

    From the order's return history, ordered by time then id (the same order every time, so
    the returns' slices never overlap), rather than from a running total: a redelivered event
    finds the same slices and the same ledger entries."""
    history = list(
        session.scalars(
            select(OrderReturn)
            .where(OrderReturn.order_id == order_return.order_id)
            .order_by(OrderReturn.occurred_at, OrderReturn.id)
        )
    )
    upto = history[: [x.id for x in history].index(order_return.id) + 1]
    *earlier, now = line_refunds([_money(x) for x in upto])
    before: dict[uuid.UUID, int] = {}
    for returned in earlier:
        for line_id, refund in returned.items():
            before[line_id] = before.get(line_id, 0) + refund.net
    return before, now


def _reason(reference: str, refund: int, line: LineRefund, taken: int) -> str:
    gifts = []
    if line.withheld:
        gifts.append(f"{yuan(line.withheld)} of its {yuan(line.refund)} withheld for a gift kept")
    if line.given_back:
        gifts.append(f"{yuan(line.given_back)} withheld for a gift given back")
    why = f" ({'; '.join(gifts)})" if gifts else ""
    return (
        f"Return {reference}: {yuan(refund)} refunded{why}, {yuan(taken)} of commission taken back"
    )


def _details(
    order_return: OrderReturn, refund: int, before: int, line: LineRefund
) -> dict[str, object]:
    details: dict[str, object] = {
        "refund": refund,
        "refunded_before": before,
        "return_id": str(order_return.id),
    }
    if line.withheld or line.given_back:
        details |= {
            "line_refund": line.refund,
            "gift_withheld": line.withheld,
            "gift_given_back": line.given_back,
        }
    return details


def reverse_for_return(
    session: Session, order_return: OrderReturn, *, at: datetime
) -> list[CommissionEntry]:
    """Take commission back for the lines the return refunded, in proportion to what was
    refunded net of gifts (``guides.refund_rules``): a line whose refund was withheld for a
    gift the customer keeps gives back commission on the rest only, and when the gift comes
    back and what was withheld is given back, the commission on that follows, booked on the
    lines it was withheld from (the gift line itself earned nothing). Counted cumulatively per
    line (``reversal_for_return``), never beyond what the line earned; one entry per return and
    line, so a redelivered event books nothing twice.

    A reversal of commission still pending nets out before it is paid (same month, same
    payable time); of commission already payable, it is deducted on the current statement."""
    earlier, now = _slices(session, order_return)
    attributions = list(
        session.scalars(
            select(LineAttribution)
            .where(LineAttribution.order_line_id.in_(list(now)))
            .with_for_update()
            .order_by(LineAttribution.order_line_id)
        )
    )
    made: list[CommissionEntry] = []
    for attribution in attributions:
        line_id, net = attribution.order_line_id, attribution.net_amount
        line = now[line_id]
        before = min(net, earlier.get(line_id, 0))
        after = min(net, earlier.get(line_id, 0) + line.net)
        attribution.refunded_amount = max(attribution.refunded_amount, after)
        refund = after - before
        if refund <= 0:
            continue
        earned = session.scalar(
            select(CommissionEntry).where(
                CommissionEntry.kind == CommissionKind.EARNED,
                CommissionEntry.source_ref == f"line:{line_id}",
            )
        )
        if earned is None:
            continue
        taken = reversal_for_return(earned.amount, net, before, refund)
        if taken <= 0:
            continue
        pending = earned.status is CommissionStatus.PENDING
        guide = session.get(Guide, attribution.guide_id)
        assert guide is not None
        made.append(
            book_entry(
                session,
                guide=guide,
                kind=CommissionKind.REVERSED,
                amount=-taken,
                month=earned.month if pending else booking_month(session, at, guide.home_store_id),
                status=earned.status,
                payable_at=earned.payable_at if pending else at,
                source_ref=f"return:{order_return.id}:{line_id}",
                attribution_id=attribution.id,
                order_id=attribution.order_id,
                rule_id=earned.rule_id,
                reason=_reason(order_return.reference, refund, line, taken),
                details=_details(order_return, refund, before, line),
            )
        )
    session.flush()
    return made
