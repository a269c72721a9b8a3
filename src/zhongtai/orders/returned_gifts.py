"""Gifts when goods of their order come back: each gift the order was given (its ``offers``
keep what earned it) is judged by ``orders.gift_returns`` after the return's lines, and what
is withheld from the refund or given back is recorded with the return, with why.

Runs under the order's row lock (the return took it), so two returns of one order judge one
after the other and each sees what the other withheld.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Sku
from zhongtai.orders.gift_returns import (
    CountedLine,
    GiftState,
    GiftVerdict,
    Units,
    explain,
    judge_gift,
)
from zhongtai.orders.models import Order, OrderLine, ReturnGiftAdjustment


def units_of(line: OrderLine) -> Units:
    """What became of the line's units so far."""
    short = 0 if line.picked_quantity is None else line.quantity - line.picked_quantity
    return Units(
        line.quantity,
        returned=line.returned_quantity,
        short=short,
        substitute_sent=line.substitute_quantity or 0,
        substitute_returned=line.substitute_returned_quantity,
    )


def gifts_given(order: Order) -> list[dict[str, Any]]:
    """The gifts the checkout gave the order, as it recorded them (none for a till sale, or an
    order placed before gifts were recorded: those are never judged)."""
    gifts = (order.offers or {}).get("gifts")
    return list(gifts) if isinstance(gifts, list) else []


def _withheld_so_far(session: Session, gift_line_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = session.execute(
        select(ReturnGiftAdjustment.gift_line_id, func.sum(ReturnGiftAdjustment.amount))
        .where(ReturnGiftAdjustment.gift_line_id.in_(gift_line_ids))
        .group_by(ReturnGiftAdjustment.gift_line_id)
    )
    return {line_id: int(total) for line_id, total in rows}


def _state(gift: Mapping[str, Any], lines: Mapping[int, OrderLine]) -> GiftState:
    gift_line = lines[gift["line"]]
    counted = tuple(CountedLine(fen, units_of(lines[i])) for i, fen in gift["counted"])
    return GiftState(gift["threshold_fen"], counted, units_of(gift_line), gift_line.amount)


def settle_gifts(session: Session, order: Order, refund: int) -> list[ReturnGiftAdjustment]:
    """What a return whose lines refund ``refund`` does about the order's gifts, its lines
    already counted back on the order's lines: for each gift whose due changed, the worth
    withheld from the refund (at most what is left of it) or given back. One statement when
    the order had a gift, plus one per gift whose due changed (its SKU, for the sentence);
    none without."""
    gifts = gifts_given(order)
    if not gifts:
        return []
    lines = {x.line_no - 1: x for x in order.lines}
    before = _withheld_so_far(session, [lines[g["line"]].id for g in gifts])
    names = {
        e["source"]: e["name"] for e in (order.offers or {}).get("explanations", []) if "name" in e
    }
    adjustments = []
    left = refund
    for position, gift in enumerate(gifts):
        gift_line = lines[gift["line"]]
        verdict = judge_gift(
            _state(gift, lines), withheld_before=before.get(gift_line.id, 0), refund=left
        )
        if not verdict.amount:
            continue
        left -= verdict.withheld
        adjustments.append(
            _adjustment(session, gift, gift_line, position, verdict, names.get(gift["source"]))
        )
    return adjustments


def _adjustment(
    session: Session,
    gift: Mapping[str, Any],
    gift_line: OrderLine,
    position: int,
    verdict: GiftVerdict,
    coupon_name: str | None,
) -> ReturnGiftAdjustment:
    coupon_id = uuid.UUID(gift["coupon_id"])
    sku = session.get(Sku, gift_line.sku_id) if gift_line.sku_id is not None else None
    coupon = f"coupon {coupon_name} ({coupon_id})" if coupon_name else f"coupon {coupon_id}"
    what = f"{sku.name} ({sku.code})" if sku is not None else str(gift_line.sku_id)
    return ReturnGiftAdjustment(
        gift_line_id=gift_line.id,
        position=position,
        coupon_id=coupon_id,
        gift_sku_id=gift_line.sku_id,
        threshold_fen=verdict.threshold,
        kept_fen=verdict.kept,
        amount=verdict.amount,
        why=explain(verdict, coupon=coupon, gift=what)[:400],
    )
