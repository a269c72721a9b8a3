"""Pure rules of points: how many a sale earns, how many a return takes back, which lots pay."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

FEN_PER_YUAN = 100
PCT = 100  # multipliers are integer percentages: 150 = ×1.5; no floats anywhere
#: The largest sale points are booked for (fen, ¥10m): its amount, and the points it earns, are
#: kept in the 32-bit columns of PostgreSQL.
MAX_SALE_FEN = 1_000_000_000


class TenderKind(StrEnum):
    CASH = "cash"
    BANK_CARD = "bank_card"
    WECHAT_PAY = "wechat_pay"
    ALIPAY = "alipay"
    STORED_VALUE = "stored_value"
    POINTS = "points"
    COUPON = "coupon"


#: Paying with points or coupons earns nothing: they are not money the customer spent.
NON_EARNING_TENDERS = frozenset({TenderKind.POINTS, TenderKind.COUPON})


@dataclass(frozen=True)
class SaleLine:
    """A line's net amount after discounts, in fen, and its category with the category's
    ancestors, nearest first (for multipliers: the nearest category with one wins)."""

    net_fen: int
    category_id: str | None = None
    ancestors: tuple[str, ...] = ()

    @property
    def lineage(self) -> tuple[str, ...]:
        return self.ancestors if self.category_id is None else (self.category_id, *self.ancestors)


@dataclass(frozen=True)
class Tender:
    kind: TenderKind
    amount_fen: int


@dataclass(frozen=True)
class EarnPolicy:
    points_per_yuan: int
    #: By category: a line earns at the rate of its nearest category found here.
    category_multiplier_pct: Mapping[str, int] = field(default_factory=dict)
    tier_multiplier_pct: int = PCT
    campaign_multiplier_pct: int = PCT


@dataclass(frozen=True)
class Earning:
    points: int
    #: The sale's net amount (what a later return is measured against).
    basis_fen: int
    #: Per line, the amount that earned points (net minus its share of points/coupon tenders).
    eligible_fen: tuple[int, ...]


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` over ``weights`` proportionally, largest remainder: the parts sum to it."""
    whole = sum(weights)
    if whole <= 0 or total == 0:
        return [0] * len(weights)
    exact = [total * w for w in weights]
    parts = [e // whole for e in exact]
    short = total - sum(parts)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] % whole), i))
    for i in by_remainder[:short]:
        parts[i] += 1
    return parts


def multiplied_category(line: SaleLine, multipliers: Mapping[str, object]) -> str | None:
    """The category whose multiplier the line earns at: its own, else the nearest ancestor
    that has one; None when none has (the line earns at 100%)."""
    return next((c for c in line.lineage if c in multipliers), None)


def points_for_sale(
    lines: Sequence[SaleLine], tenders: Sequence[Tender], policy: EarnPolicy
) -> Earning:
    """Points a sale earns: base rate per yuan of the net amount paid with money (points and
    coupon tenders excluded, shared over the lines by amount), times the multiplier of the
    line's nearest category that has one, the tier's and the campaign's; rounded down once, at
    the end."""
    nets = [max(0, line.net_fen) for line in lines]
    basis = sum(nets)
    excluded = sum(t.amount_fen for t in tenders if t.kind in NON_EARNING_TENDERS)
    shares = allocate(min(max(0, excluded), basis), nets)
    eligible = tuple(n - s for n, s in zip(nets, shares, strict=True))
    rates = policy.category_multiplier_pct

    def rate(line: SaleLine) -> int:
        category = multiplied_category(line, rates)
        return PCT if category is None else rates[category]

    weighted = sum(e * rate(line) for e, line in zip(eligible, lines, strict=True))
    numerator = (
        weighted
        * policy.points_per_yuan
        * policy.tier_multiplier_pct
        * policy.campaign_multiplier_pct
    )
    points = numerator // (FEN_PER_YUAN * PCT * PCT * PCT)
    return Earning(points=max(0, points), basis_fen=basis, eligible_fen=eligible)


def reversal_points(
    earned: int, basis_fen: int, returned_before_fen: int, returning_fen: int
) -> int:
    """Points a return takes back: proportional to the amount returned, counted cumulatively so
    that returning everything, in any number of parts, takes back exactly what was earned."""
    if basis_fen <= 0 or earned <= 0:
        return 0
    before = min(basis_fen, max(0, returned_before_fen))
    after = min(basis_fen, before + max(0, returning_fen))
    return earned * after // basis_fen - earned * before // basis_fen


@dataclass(frozen=True)
class LotBalance:
    lot_id: uuid.UUID
    remaining: int
    expires_at: datetime | None
    earned_at: datetime
    #: Still inside its order's return window: not spendable, only a return takes from it.
    pending: bool = False


def spending_order(lot: LotBalance) -> tuple[bool, datetime, datetime, uuid.UUID]:
    """Nearest expiry first; never-expiring lots last; then the oldest; then by id."""
    never = lot.expires_at is None
    return (never, lot.expires_at or lot.earned_at, lot.earned_at, lot.lot_id)


def plan_spending(lots: Sequence[LotBalance], points: int) -> list[tuple[uuid.UUID, int]]:
    """Which lots pay ``points`` and how many each: nearest expiry first, as far as they go.
    Pending lots never pay."""
    plan: list[tuple[uuid.UUID, int]] = []
    left = points
    for lot in sorted((lot for lot in lots if not lot.pending), key=spending_order):
        if left <= 0:
            break
        take = min(lot.remaining, left)
        if take > 0:
            plan.append((lot.lot_id, take))
            left -= take
    return plan


@dataclass(frozen=True)
class ReversalPlan:
    """Where the points a return takes back come from."""

    #: (lot, points) taken, the sale's own lot first.
    lots: list[tuple[uuid.UUID, int]]
    #: Taken from pending points (the sale's own lot, still inside its return window).
    from_pending: int
    #: Taken from spendable points.
    from_balance: int
    #: Already spent: owed, and paid off by her next earnings.
    debt: int


def plan_reversal(due: int, own: LotBalance | None, others: Sequence[LotBalance]) -> ReversalPlan:
    """Take ``due`` points back: from the sale's own lot first (pending or not, so a return
    inside the window costs nothing spent and leaves no debt), then from her other spendable
    lots nearest expiry first; what is still missing becomes debt. Other sales' pending points
    are never taken: they pay the debt when they mature."""
    lots: list[tuple[uuid.UUID, int]] = []
    from_pending = from_balance = 0
    if own is not None and due > 0 and own.remaining > 0:
        first = min(own.remaining, due)
        lots.append((own.lot_id, first))
        if own.pending:
            from_pending = first
        else:
            from_balance = first
    rest = [lot for lot in others if own is None or lot.lot_id != own.lot_id]
    more = plan_spending(rest, due - from_pending - from_balance)
    lots += more
    from_balance += sum(p for _, p in more)
    return ReversalPlan(lots, from_pending, from_balance, due - from_pending - from_balance)


def redeemable_points(
    *, order_fen: int, balance: int, points_per_yuan_off: int, max_share_pct: int
) -> int:
    """The most points an order may be paid with: within the balance and at most
    ``max_share_pct`` of the order, in whole fen (``points_per_yuan_off`` points = 1 yuan)."""
    if points_per_yuan_off <= 0 or order_fen <= 0:
        return 0
    cap_fen = order_fen * max(0, min(PCT, max_share_pct)) // PCT
    cap_points = cap_fen * points_per_yuan_off // FEN_PER_YUAN
    usable = min(balance, cap_points)
    # Only amounts worth whole fen (what a points tender accepts): ``points × 100 / rate`` is
    # whole exactly for multiples of ``rate / gcd(rate, 100)`` -- 5 at 250 points a yuan, not
    # the 2 points a fen the rate rounds down to.
    step = points_per_yuan_off // math.gcd(points_per_yuan_off, FEN_PER_YUAN)
    return usable - usable % step
