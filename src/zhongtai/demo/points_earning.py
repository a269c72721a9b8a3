"""The demo's mirror of the points earning rules: what a completed order earned
(``earn_for_order``) and a return took back (``reverse_for_return``), booked on a member's
points ledger with the chain's points settings, so the seeded books match the live handlers."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from zhongtai.core.settings import Settings
from zhongtai.demo.catalog import Row
from zhongtai.demo.points_ledger import PointsLedger
from zhongtai.loyalty import rules
from zhongtai.loyalty.models import SourceType


@dataclass(frozen=True)
class LoyaltyTerms:
    """The chain's points settings, as the live handlers read them."""

    points_per_yuan: int = 1
    valid_days: int = 365

    @classmethod
    def of(cls, settings: Settings) -> LoyaltyTerms:
        return cls(settings.points_per_yuan, settings.points_valid_days)


class OrderRows(Protocol):
    """The history's rows the points are booked from."""

    orders: list[Row]
    lines: list[Row]
    payments: list[Row]
    returns: list[Row]


def sales_by_order(
    history: OrderRows,
) -> tuple[dict[uuid.UUID, list[Row]], dict[uuid.UUID, list[Row]], dict[uuid.UUID, list[Row]]]:
    """The history's lines, payments and returns by order: what an earn and a reversal read."""
    lines: dict[uuid.UUID, list[Row]] = defaultdict(list)
    for line in history.lines:
        lines[line["order_id"]].append(line)
    paid: dict[uuid.UUID, list[Row]] = defaultdict(list)
    for payment in history.payments:
        paid[payment["order_id"]].append(payment)
    returns: dict[uuid.UUID, list[Row]] = defaultdict(list)
    for came_back in history.returns:
        returns[came_back["order_id"]].append(came_back)
    return lines, paid, returns


def order_earning(
    ledger: PointsLedger,
    order: Row,
    lines: Mapping[uuid.UUID, list[Row]],
    paid: Mapping[uuid.UUID, list[Row]],
    terms: LoyaltyTerms,
    valid: timedelta,
) -> Callable[[datetime], None]:
    def earn(at: datetime) -> None:
        """``earn_for_order``: the goods' nets less short picks, money tenders only."""
        sale = [rules.SaleLine(x["net_amount"] - x["short_refund"]) for x in lines[order["id"]]]
        tenders = [
            rules.Tender(rules.TenderKind(p["tender"].value), p["amount"])
            for p in paid.get(order["id"], ())
        ]
        policy = rules.EarnPolicy(terms.points_per_yuan, tier_multiplier_pct=ledger.multiplier)
        earning = rules.points_for_sale(sale, tenders, policy)
        ledger.earned[str(order["id"])] = ledger.credit(
            (SourceType.ORDER, str(order["id"])),
            earning.points,
            at,
            valid,
            store_id=order["store_id"],
            basis_fen=earning.basis_fen,
        )

    return earn


def return_reversal(ledger: PointsLedger, order: Row, came_back: Row) -> Callable[[datetime], None]:
    def reverse(at: datetime) -> None:
        """``reverse_for_return``: only what a credited order earned is taken back."""
        earn = ledger.earned.get(str(order["id"]))
        if earn is None or came_back["refund_total"] <= 0:
            return
        ledger.reverse(
            (SourceType.RETURN, str(came_back["id"])), earn, came_back["refund_total"], at
        )

    return reverse
