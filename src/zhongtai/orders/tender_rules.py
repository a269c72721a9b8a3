"""Pure rules of tenders: whether a set of tenders pays a total, and how a refund is split."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from zhongtai.core.errors import Conflict
from zhongtai.orders.kinds import TenderType

#: Tenders that return value to the customer but are not money paid out.
NOT_MONEY: frozenset[TenderType] = frozenset({TenderType.POINTS, TenderType.COUPON})


@dataclass(frozen=True)
class Tender:
    """One tender offered at payment. For cash: what was handed over (change comes back)."""

    type: TenderType
    amount: int


@dataclass(frozen=True)
class TenderProblem:
    field: str
    message: str


@dataclass(frozen=True)
class TenderCheck:
    """The verdict on a set of tenders for a total due."""

    problems: tuple[TenderProblem, ...]
    tendered: int  # all that was offered
    change: int  # cash handed back
    missing: int  # still due when the tenders fall short

    @property
    def ok(self) -> bool:
        return not self.problems


def check_tenders(total: int, tenders: Sequence[Tender], *, field: str = "tenders") -> TenderCheck:
    """Whether ``tenders`` pay ``total`` fen exactly, cash alone being allowed to exceed it.

    Non-cash tenders are taken in the order given, and each may take at most what is still due
    after the ones before it: a card, wallet, stored value, points or coupon never overpays
    (there is no change to give on them). Cash then covers the rest, and what it exceeds that
    by comes back as change; cash where nothing is left to pay is refused. Each tender must be
    more than 0 fen. A total of 0 is paid by no tenders at all.
    """
    if total < 0:
        raise ValueError("a total due is never negative")
    problems: list[TenderProblem] = []
    due = total
    for i, tender in enumerate(tenders):
        if tender.amount <= 0:
            problems.append(TenderProblem(f"{field}.{i}.amount", "must be more than 0 fen"))
        elif tender.type is not TenderType.CASH:
            if tender.amount > due:
                problems.append(
                    TenderProblem(
                        f"{field}.{i}.amount",
                        f"is {tender.amount} fen but only {due} fen remain due; "
                        f"a {tender.type.value} tender cannot exceed what is due "
                        "(only cash may, and gets change)",
                    )
                )
            else:
                due -= tender.amount
    cash = sum(t.amount for t in tenders if t.type is TenderType.CASH and t.amount > 0)
    if cash and due == 0:
        first_cash = next(
            i for i, t in enumerate(tenders) if t.type is TenderType.CASH and t.amount > 0
        )
        problems.append(
            TenderProblem(
                f"{field}.{first_cash}", "is cash, but the other tenders already pay the total"
            )
        )
    change = max(0, cash - due)
    missing = max(0, due - cash)
    if missing and not problems:
        problems.append(
            TenderProblem(field, f"cover {total - missing} of {total} fen due; {missing} missing")
        )
    tendered = sum(t.amount for t in tenders if t.amount > 0)
    return TenderCheck(tuple(problems), tendered=tendered, change=change, missing=missing)


# --- refunds ---------------------------------------------------------------------------------


def kept_payments(
    tenders: Sequence[Tender], change: int
) -> list[tuple[TenderType, int, int | None]]:
    """Each tender as the payment it is kept as: (tender, amount kept, cash handed over when
    change came back from it). Cash is kept net of the change; cash all given back is none."""
    plan = []
    change_left = change
    for tender in tenders:
        amount, handed = tender.amount, None
        if tender.type is TenderType.CASH and change_left:
            handed = tender.amount
            amount = tender.amount - min(change_left, tender.amount)
            change_left -= tender.amount - amount
        if amount > 0:
            plan.append((tender.type, amount, handed))
    return plan


@dataclass(frozen=True)
class PaidTender:
    """A tender an order was paid with, as kept (cash net of change), and refunded so far."""

    payment_id: uuid.UUID
    type: TenderType
    amount: int
    refunded: int = 0

    @property
    def refundable(self) -> int:
        return max(0, self.amount - self.refunded)


@dataclass(frozen=True)
class RefundPart:
    """What one tender gives back. Not ``is_money`` for points (credited back) and coupons
    (never paid out: loyalty decides whether the coupon is restored)."""

    payment_id: uuid.UUID
    type: TenderType
    amount: int

    @property
    def is_money(self) -> bool:
        return self.type not in NOT_MONEY


class RefundExceedsPaid(Conflict):
    slug = "refund-exceeds-paid"
    title = "The refund is more than is left to refund"


#: The order refunds draw on tenders, and why. Wallets and stored value first, newest payment
#: first: they go back to the account they came from at once and cost nothing to reverse.
#: Bank cards next (the acquirer's reversal is slower). Cash after money on accounts, since a
#: store doing a "return anywhere" may not hold the cash. Points last of what has value to the
#: customer, who would rather have money. Coupon value only absorbs what is left, never paid out.
REFUND_ORDER: tuple[frozenset[TenderType], ...] = (
    frozenset({TenderType.STORED_VALUE, TenderType.WECHAT_PAY, TenderType.ALIPAY}),
    frozenset({TenderType.BANK_CARD}),
    frozenset({TenderType.CASH}),
    frozenset({TenderType.POINTS}),
    frozenset({TenderType.COUPON}),
)
_RANK = {t: rank for rank, group in enumerate(REFUND_ORDER) for t in group}


def refund_plan(paid_tenders: Sequence[PaidTender], amount: int) -> list[RefundPart]:
    """Split a refund of ``amount`` fen over the tenders an order was paid with.

    ``paid_tenders`` are in the order they were paid. Tenders are drawn on in
    :data:`REFUND_ORDER`, newest first within a group, each for at most what it still holds.
    The parts sum to ``amount`` exactly; more than the tenders still hold is
    :class:`RefundExceedsPaid`.
    """
    if amount < 0:
        raise ValueError("a refund is never negative")
    refundable = sum(t.refundable for t in paid_tenders)
    if amount > refundable:
        raise RefundExceedsPaid(
            f"A refund of {amount} fen is more than the {refundable} fen the order's tenders "
            "still hold.",
            requested=amount,
            refundable=refundable,
        )
    drawing_order = sorted(
        range(len(paid_tenders)), key=lambda i: (_RANK[paid_tenders[i].type], -i)
    )
    parts: list[RefundPart] = []
    left = amount
    for i in drawing_order:
        if left == 0:
            break
        tender = paid_tenders[i]
        take = min(left, tender.refundable)
        if take:
            parts.append(RefundPart(tender.payment_id, tender.type, take))
            left -= take
    return parts


def points_given_back(refunded_before_fen: int, refund_fen: int, points_per_yuan: int) -> int:
    """Points a refund of a points tender gives back: the difference of the rounded-down
    totals before and after it, so partial refunds add up to what the whole refund gives
    (at 150 points a yuan, 101 fen then 99 fen give back 151 + 149 = 300 points, not 299)
    and never to more than was spent."""
    if min(refunded_before_fen, refund_fen, points_per_yuan) < 0:
        raise ValueError("refunds and the points rate are not negative")
    after = (refunded_before_fen + refund_fen) * points_per_yuan // 100
    return after - refunded_before_fen * points_per_yuan // 100
