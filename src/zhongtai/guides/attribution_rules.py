"""Pure attribution rule: which guide, if any, is credited with each line of a sale, and why.

In order of precedence, for every line:

1. **selling guide** — the guide the sale names (the clerk entered her id at the till, or the
   guide placed the order for her customer), if she is an active guide;
2. **share link** — for an online order, the guide whose share link the member opened within
   the attribution window before placing it; a link for the line's own product beats a later
   link for something else, otherwise the latest link wins;
3. **bound guide** — the member's current guide, when the chain lets her earn on it: on online
   orders only if ``bound_guide_earns_online``; in a store only at her own store, or at any
   store if ``bound_guide_earns_other_stores``.

A guide who has left earns nothing. Every verdict carries an explanation for the guide's phone.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class AttributionReason(StrEnum):
    SELLING_GUIDE = "selling_guide"
    SHARE_LINK = "share_link"
    BOUND_GUIDE = "bound_guide"


@dataclass(frozen=True)
class GuideStanding:
    guide_id: uuid.UUID
    home_store_id: uuid.UUID
    active: bool


@dataclass(frozen=True)
class ShareTouch:
    """The member opened a guide's share link (for a product, or for the guide's shop)."""

    link_id: uuid.UUID
    guide_id: uuid.UUID
    opened_at: datetime
    sku_id: uuid.UUID | None = None


@dataclass(frozen=True)
class BoundGuide:
    guide_id: uuid.UUID
    binding_id: uuid.UUID


@dataclass(frozen=True)
class SaleLine:
    line_id: uuid.UUID
    sku_id: uuid.UUID | None


@dataclass(frozen=True)
class Sale:
    order_id: uuid.UUID
    #: Placed online (app, mini-program, marketplace, share link) rather than at a till.
    online: bool
    #: The store that sold it (the till's store, or the store that fulfilled the online order).
    store_id: uuid.UUID
    placed_at: datetime
    lines: tuple[SaleLine, ...]
    selling_guide_id: uuid.UUID | None = None
    bound_guide: BoundGuide | None = None


@dataclass(frozen=True)
class AttributionPolicy:
    share_window: timedelta = timedelta(days=7)
    bound_guide_earns_online: bool = True
    bound_guide_earns_other_stores: bool = False


@dataclass(frozen=True)
class LineCredit:
    line_id: uuid.UUID
    guide_id: uuid.UUID | None
    reason: AttributionReason | None
    #: The share link id or binding id behind the reason.
    ref: str | None
    explanation: str


def _touches_in_window(
    sale: Sale,
    touches: Sequence[ShareTouch],
    guides: Mapping[uuid.UUID, GuideStanding],
    window: timedelta,
) -> list[ShareTouch]:
    """Touches that may credit this sale, latest first (ties broken by link id)."""
    usable = [
        t
        for t in touches
        if sale.placed_at - window <= t.opened_at <= sale.placed_at
        and (standing := guides.get(t.guide_id)) is not None
        and standing.active
    ]
    return sorted(usable, key=lambda t: (t.opened_at, t.link_id), reverse=True)


def _share_credit(line: SaleLine, touches: list[ShareTouch]) -> LineCredit | None:
    if not touches:
        return None
    same_product = [t for t in touches if t.sku_id is not None and t.sku_id == line.sku_id]
    touch = same_product[0] if same_product else touches[0]
    what = "this product" if same_product else "a link"
    return LineCredit(
        line_id=line.line_id,
        guide_id=touch.guide_id,
        reason=AttributionReason.SHARE_LINK,
        ref=str(touch.link_id),
        explanation=(
            f"The customer opened the guide's share link for {what} on "
            f"{touch.opened_at:%Y-%m-%d %H:%M} UTC, within the attribution window."
        ),
    )


def _bound_credit(
    sale: Sale, line: SaleLine, guides: Mapping[uuid.UUID, GuideStanding], policy: AttributionPolicy
) -> tuple[LineCredit | None, str]:
    bound = sale.bound_guide
    if bound is None:
        return None, "no guide sold it, no share link was opened in time, and she has no guide"
    standing = guides.get(bound.guide_id)
    if standing is None or not standing.active:
        return None, "her bound guide is no longer active"
    if sale.online and not policy.bound_guide_earns_online:
        return None, "the chain does not credit bound guides with online orders"
    if (
        not sale.online
        and sale.store_id != standing.home_store_id
        and not policy.bound_guide_earns_other_stores
    ):
        return None, "bought in another store than her guide's, which the chain does not credit"
    where = "online" if sale.online else "in a store"
    return (
        LineCredit(
            line_id=line.line_id,
            guide_id=bound.guide_id,
            reason=AttributionReason.BOUND_GUIDE,
            ref=str(bound.binding_id),
            explanation=f"The customer is bound to this guide and bought {where}.",
        ),
        "",
    )


def attribute_sale(
    sale: Sale,
    touches: Sequence[ShareTouch],
    guides: Mapping[uuid.UUID, GuideStanding],
    policy: AttributionPolicy = AttributionPolicy(),
) -> list[LineCredit]:
    """One credit per line of the sale, in the sale's line order (``guide_id`` None: nobody)."""
    if sale.placed_at.tzinfo is None:
        raise ValueError("placed_at must be timezone-aware")
    seller = guides.get(sale.selling_guide_id) if sale.selling_guide_id else None
    recent = _touches_in_window(sale, touches, guides, policy.share_window) if sale.online else []
    credits: list[LineCredit] = []
    for line in sale.lines:
        if seller is not None and seller.active:
            credits.append(
                LineCredit(
                    line_id=line.line_id,
                    guide_id=seller.guide_id,
                    reason=AttributionReason.SELLING_GUIDE,
                    ref=None,
                    explanation="The guide made this sale (named on the order).",
                )
            )
            continue
        shared = _share_credit(line, recent)
        if shared is not None:
            credits.append(shared)
            continue
        bound, why_not = _bound_credit(sale, line, guides, policy)
        credits.append(
            bound
            or LineCredit(
                line_id=line.line_id,
                guide_id=None,
                reason=None,
                ref=None,
                explanation=f"No guide is credited: {why_not}.",
            )
        )
    return credits
