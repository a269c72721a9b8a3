"""Picking rules: the pick list a clerk walks, and what a pick hands over and refunds."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from zhongtai.core.errors import InvalidInput
from zhongtai.orders.kinds import SubstitutionPreference


@dataclass(frozen=True)
class PickLine:
    """An order line to pick. ``paid_fen`` is what the customer paid for the whole line after
    discounts (the paid unit price is ``paid_fen / quantity``, exact even for weighed goods,
    whose quantity is in grams)."""

    line_id: uuid.UUID
    sku_id: uuid.UUID
    sku_code: str
    name: str
    quantity: int
    paid_fen: int
    zone: str = ""
    category_code: str = ""
    category_name: str = ""


@dataclass(frozen=True)
class PickGroup:
    """The lines of one category in one zone of the store, in the order they are picked."""

    zone: str
    category_code: str
    category_name: str
    lines: tuple[PickLine, ...]


def pick_list(lines: Iterable[PickLine], zone_order: Sequence[str] = ()) -> list[PickGroup]:
    """Group lines by zone, then category, so the clerk walks each aisle once.

    Zones follow ``zone_order`` (the store's walking route) and then come alphabetically;
    categories go by code, lines by SKU code. Equal keys keep their input order.
    """
    route = {zone: i for i, zone in enumerate(zone_order)}

    def walk(line: PickLine) -> tuple[int, str, str, str]:
        return (route.get(line.zone, len(route)), line.zone, line.category_code, line.sku_code)

    groups: list[PickGroup] = []
    for line in sorted(lines, key=walk):
        last = groups[-1] if groups else None
        if last and (last.zone, last.category_code) == (line.zone, line.category_code):
            groups[-1] = PickGroup(
                last.zone, last.category_code, last.category_name, (*last.lines, line)
            )
        else:
            groups.append(PickGroup(line.zone, line.category_code, line.category_name, (line,)))
    return groups


@dataclass(frozen=True)
class Substitute:
    """A similar SKU the picker offers for units of the ordered one, one unit for one unit,
    at its own price: ``unit_price_fen`` per ``price_per`` units (per 500 g for weighed goods)."""

    sku_id: uuid.UUID
    quantity: int
    unit_price_fen: int
    price_per: int = 1


@dataclass(frozen=True)
class SubstituteAsked:
    """The picker's offer as it comes from the store: which SKU, how many. Its price is the
    catalog's, never one typed at the packing table."""

    sku_id: uuid.UUID
    quantity: int


@dataclass(frozen=True)
class Handover:
    """Goods that leave the store for the customer, and what the customer pays for them."""

    sku_id: uuid.UUID
    quantity: int
    charged_fen: int


@dataclass(frozen=True)
class PickResult:
    """The outcome of picking one line.

    ``picked + substituted + short == ordered``, and ``refund_fen`` (short units at the paid
    unit price, plus the saving on a cheaper substitute) never exceeds what was paid. When the
    picker's input is impossible, ``problem`` says why and nothing is handed over or refunded.
    """

    ordered: int
    picked: int
    substituted: int
    short: int
    handed_over: tuple[Handover, ...]
    refund_fen: int
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def pick_outcome(
    line: PickLine,
    picked_qty: int,
    substitute: Substitute | None,
    preference: SubstitutionPreference,
) -> PickResult:
    """What is handed over and refunded after a clerk picked ``picked_qty`` of ``line``.

    Missing units are substituted only when the customer asked for SIMILAR; a substitute is
    charged at its own price but never above the original's paid price. Units neither picked
    nor substituted are short-picked and refunded at the paid unit price; what is charged plus
    what is refunded is exactly what was paid, any fraction of a fen going to the customer.
    """
    ordered = line.quantity
    problem = _problem(line, picked_qty, substitute, preference)
    if problem is not None:
        return PickResult(ordered, 0, 0, 0, (), 0, problem)
    missing = ordered - picked_qty
    kept = _share(line, picked_qty)
    handed: list[Handover] = []
    if picked_qty:
        handed.append(Handover(line.sku_id, picked_qty, kept))
    substituted = charged = 0
    if substitute is not None:
        substituted = substitute.quantity
        worth = _share(line, picked_qty + substituted) - kept
        # Rounded down: a fraction of a fen goes to the customer, never to the store.
        charged = min(substitute.unit_price_fen * substituted // substitute.price_per, worth)
        handed.append(Handover(substitute.sku_id, substituted, charged))
    refund = line.paid_fen - kept - charged
    return PickResult(
        ordered=ordered,
        picked=picked_qty,
        substituted=substituted,
        short=missing - substituted,
        handed_over=tuple(handed),
        refund_fen=refund,
    )


def _share(line: PickLine, units: int) -> int:
    """The part of the line's paid amount that the first ``units`` units carry. Rounded down:
    a fraction of a fen goes to the customer's refund, never to the store."""
    return line.paid_fen * units // line.quantity


def _problem(
    line: PickLine,
    picked_qty: int,
    substitute: Substitute | None,
    preference: SubstitutionPreference,
) -> str | None:
    if line.quantity <= 0:
        return "the line has nothing to pick"
    if picked_qty < 0:
        return "picked quantity cannot be negative"
    if picked_qty > line.quantity:
        return f"picked {picked_qty} but only {line.quantity} were ordered"
    if substitute is None:
        return None
    if preference is not SubstitutionPreference.SIMILAR:
        return "the customer asked for no substitutes: short-pick instead"
    if substitute.sku_id == line.sku_id:
        return "a substitute must be a different SKU"
    if substitute.quantity <= 0:
        return "a substitute quantity must be positive"
    if substitute.unit_price_fen < 0:
        return "a substitute price cannot be negative"
    if picked_qty + substitute.quantity > line.quantity:
        missing = line.quantity - picked_qty
        return f"only {missing} units are missing, cannot substitute {substitute.quantity}"
    return None


@dataclass(frozen=True)
class SkuFacts:
    """What makes two SKUs alike enough to stand in for each other: the category they are
    sold in and the unit they are counted in (pieces or grams)."""

    category_id: uuid.UUID
    unit: str


def substitute_problem(ordered: SkuFacts, substitute: SkuFacts | None) -> str | None:
    """Why a SKU cannot substitute the ordered one, or None when it is similar. The substitute
    goes one unit for one unit, so grams never stand in for pieces (or the reverse)."""
    if substitute is None:
        return "no such SKU"
    if substitute.category_id != ordered.category_id:
        return "not similar: a substitute must come from the ordered SKU's category"
    if substitute.unit != ordered.unit:
        return (
            f"not similar: the substitute is counted in {substitute.unit}s, "
            f"the ordered SKU in {ordered.unit}s"
        )
    return None


@dataclass(frozen=True)
class LinePick:
    """What the picker found for one line: units picked, and maybe a substitute."""

    line_id: uuid.UUID
    picked: int
    substitute: SubstituteAsked | None = None


def picks_by_line(picks: Sequence[LinePick]) -> dict[uuid.UUID, tuple[int, LinePick]]:
    """Each pick by its line, with its place in the request (for the error's field). A line
    named twice is refused: which of the two would the clerk have meant?"""
    by_line: dict[uuid.UUID, tuple[int, LinePick]] = {}
    for index, pick in enumerate(picks):
        if pick.line_id in by_line:
            first = by_line[pick.line_id][0]
            raise InvalidInput.field(
                f"picks[{index}]",
                f"names line {pick.line_id} again (picks[{first}]): one pick per line",
            )
        by_line[pick.line_id] = (index, pick)
    return by_line
