"""Pure pricing of a basket: line amounts, discounts spread over lines, delivery fee, totals."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from zhongtai.catalog.rules import price_for_quantity
from zhongtai.orders.kinds import LineKind


@dataclass(frozen=True)
class BasketLine:
    """One line to price: ``unit_price`` fen per ``price_per`` units (grams for weighed goods)."""

    sku_id: uuid.UUID | None  # a service line (fish cleaning) may have no SKU
    unit_price: int
    price_per: int
    quantity: int
    kind: LineKind = LineKind.GOODS


@dataclass(frozen=True)
class Discount:
    """An order-level reduction from one source, spread over the lines it applies to.

    This is the seam promotions and coupons plug into: they decide the amount and the lines,
    pricing spreads it. ``source`` names it for receipts and reversal on return, e.g.
    ``"promotion:<id>"`` or ``"coupon:<code>"``. ``line_indexes`` are positions in the basket;
    ``None`` means every line.
    """

    source: str
    amount: int
    line_indexes: tuple[int, ...] | None = None


@dataclass(frozen=True)
class DeliveryFeeRule:
    """A flat delivery fee, waived when the goods' amount after discounts reaches ``free_from``."""

    fee: int
    free_from: int | None = None


@dataclass(frozen=True)
class DiscountShare:
    source: str
    amount: int


@dataclass(frozen=True)
class PricedLine:
    sku_id: uuid.UUID | None
    kind: LineKind
    quantity: int
    unit_price: int
    price_per: int
    amount: int  # before discounts
    discount: int  # the sum of ``discounts``
    net: int  # amount - discount: what the customer pays for this line, and gets back on return
    discounts: tuple[DiscountShare, ...]


@dataclass(frozen=True)
class AppliedDiscount:
    """A discount as applied: less than asked when its lines were already cheaper than that."""

    source: str
    requested: int
    applied: int


@dataclass(frozen=True)
class PricedBasket:
    lines: tuple[PricedLine, ...]
    discounts: tuple[AppliedDiscount, ...]
    subtotal: int  # the lines before discounts
    discount_total: int
    delivery_fee: int
    total: int  # payable: subtotal - discount_total + delivery_fee


def allocate_discount(amount: int, line_amounts: Sequence[int]) -> list[int]:
    """Split ``amount`` fen over lines in proportion to their amounts (largest remainder).

    Each line first gets the floor of its exact share; the fen left over go one each to the
    lines with the largest fractional parts (ties: the larger line, then the earlier one). The
    parts sum to ``amount`` exactly and no part exceeds its line, so no line turns negative;
    a line of 0 gets 0.
    """
    if amount < 0 or any(a < 0 for a in line_amounts):
        raise ValueError("amounts are never negative")
    base = sum(line_amounts)
    if amount > base:
        raise ValueError(f"cannot spread {amount} fen over lines worth {base} fen")
    if amount == 0:
        return [0] * len(line_amounts)
    parts = [amount * a // base for a in line_amounts]
    left = amount - sum(parts)
    by_remainder = sorted(
        range(len(line_amounts)),
        key=lambda i: (-(amount * line_amounts[i] % base), -line_amounts[i], i),
    )
    for i in by_remainder[:left]:
        parts[i] += 1
    return parts


def delivery_fee(net_subtotal: int, rule: DeliveryFeeRule | None) -> int:
    """The fee for delivering goods worth ``net_subtotal`` (after discounts); none without a rule.

    The threshold counts what the customer pays for the goods, so a coupon that takes the
    basket below it brings the fee back.
    """
    if rule is None:
        return 0
    if rule.free_from is not None and net_subtotal >= rule.free_from:
        return 0
    return rule.fee


def price_basket(
    lines: Sequence[BasketLine],
    *,
    delivery_fee_rule: DeliveryFeeRule | None,
    discounts: Sequence[Discount] = (),
) -> PricedBasket:
    """Price each line, apply ``discounts`` in the order given, add the delivery fee.

    Each discount is spread over what its lines still cost after the discounts before it, and
    is capped at that: stacked discounts never take a line below zero. A discount naming no
    line of the basket (or lines already free) applies 0.
    """
    for i, line in enumerate(lines):
        if line.quantity <= 0 or line.price_per <= 0 or line.unit_price < 0:
            raise ValueError(f"line {i}: quantity and price_per are positive, price not negative")
    amounts = [price_for_quantity(ln.unit_price, ln.price_per, ln.quantity) for ln in lines]
    nets = list(amounts)
    shares: list[list[DiscountShare]] = [[] for _ in lines]
    applied: list[AppliedDiscount] = []
    for discount in discounts:
        if discount.amount < 0:
            raise ValueError(f"discount {discount.source!r} is negative")
        named = discount.line_indexes
        targets = sorted(set(range(len(lines)) if named is None else named))
        if any(not 0 <= i < len(lines) for i in targets):
            raise ValueError(f"discount {discount.source!r} names a line outside the basket")
        room = sum(nets[i] for i in targets)
        amount = min(discount.amount, room)
        parts = allocate_discount(amount, [nets[i] for i in targets])
        for i, part in zip(targets, parts, strict=True):
            if part:
                nets[i] -= part
                shares[i].append(DiscountShare(discount.source, part))
        applied.append(AppliedDiscount(discount.source, discount.amount, amount))

    priced = tuple(
        PricedLine(
            sku_id=ln.sku_id,
            kind=ln.kind,
            quantity=ln.quantity,
            unit_price=ln.unit_price,
            price_per=ln.price_per,
            amount=amounts[i],
            discount=amounts[i] - nets[i],
            net=nets[i],
            discounts=tuple(shares[i]),
        )
        for i, ln in enumerate(lines)
    )
    subtotal = sum(amounts)
    discount_total = subtotal - sum(nets)
    fee = delivery_fee(sum(nets), delivery_fee_rule)
    return PricedBasket(
        lines=priced,
        discounts=tuple(applied),
        subtotal=subtotal,
        discount_total=discount_total,
        delivery_fee=fee,
        total=subtotal - discount_total + fee,
    )


@dataclass(frozen=True)
class GiftLine:
    """A gift a coupon gives with the order: a goods line at its catalog price, all of it
    taken off by ``source`` (the coupon), so the order's books show what the gift was worth."""

    line: BasketLine
    source: str


def price_with_gifts(
    lines: Sequence[BasketLine],
    gifts: Sequence[GiftLine],
    *,
    delivery_fee_rule: DeliveryFeeRule | None,
    discounts: Sequence[Discount] = (),
) -> PricedBasket:
    """Price the basket with its gift lines after its own lines.

    The basket's own discounts keep to the basket's own lines (one meant for every line
    still means those, never the gifts); each gift then gets a discount of its whole amount
    from its coupon. The gifts' lines cost nothing, so the goods' total, and the delivery fee
    it decides, are what they were without them.
    """
    own = tuple(range(len(lines)))
    kept = [
        d if d.line_indexes is not None else Discount(d.source, d.amount, own) for d in discounts
    ]
    for j, gift in enumerate(gifts):
        worth = price_for_quantity(gift.line.unit_price, gift.line.price_per, gift.line.quantity)
        kept.append(Discount(gift.source, worth, (len(lines) + j,)))
    return price_basket(
        [*lines, *(g.line for g in gifts)], delivery_fee_rule=delivery_fee_rule, discounts=kept
    )
