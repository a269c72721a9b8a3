"""Pure promotions engine: which automatic promotions a basket gets, how much, on which lines."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from zhongtai.catalog.rules import price_for_quantity
from zhongtai.loyalty.multibuy_rules import bundle_saving, free_units_saving, unit_runs
from zhongtai.orders.kinds import LineKind
from zhongtai.orders.pricing_rules import BasketLine, Discount, allocate_discount

PCT = 100


class PromotionKind(StrEnum):
    #: ``percent`` off the lines in scope (at least ``threshold_fen`` of them).
    PERCENT_OFF = "percent_off"
    #: ``amount_fen`` off the lines in scope (at least ``threshold_fen`` of them).
    AMOUNT_OFF = "amount_off"
    #: 满减 tiers: the highest ``(threshold, off)`` the lines in scope reach, e.g. 满100减20,
    #: 满200减50.
    TIERED_AMOUNT_OFF = "tiered_amount_off"
    #: Buy ``buy`` get ``get`` free: of every ``buy + get`` units in scope the cheapest go free.
    BUY_N_GET_M = "buy_n_get_m"
    #: Every second unit of a SKU in scope at ``percent`` of its price (第二件半价: 50).
    SECOND_ITEM_PERCENT = "second_item_percent"
    #: Any ``bundle_quantity`` units in scope for ``bundle_price_fen`` (任选3件99元).
    BUNDLE_PRICE = "bundle_price"
    #: The SKU's member price (``member_prices``) instead of its shelf price.
    MEMBER_PRICE = "member_price"


#: Kinds counted in units: weighed goods (priced per many grams) take no part in them.
UNIT_KINDS = frozenset(
    {PromotionKind.BUY_N_GET_M, PromotionKind.SECOND_ITEM_PERCENT, PromotionKind.BUNDLE_PRICE}
)


@dataclass(frozen=True)
class OfferLine:
    """A basket line as promotions see it: what it is (SKU, its category and the category's
    ancestors) and what it costs before any discount."""

    sku_id: uuid.UUID | None
    categories: tuple[uuid.UUID, ...]
    unit_price: int
    price_per: int
    quantity: int
    kind: LineKind = LineKind.GOODS

    @property
    def amount(self) -> int:
        return price_for_quantity(self.unit_price, self.price_per, self.quantity)

    @property
    def counted_in_units(self) -> bool:
        return self.kind is LineKind.GOODS and self.price_per == 1

    def basket_line(self) -> BasketLine:
        return BasketLine(self.sku_id, self.unit_price, self.price_per, self.quantity, self.kind)


@dataclass(frozen=True)
class OfferContext:
    """Who buys, where and when: what scopes are matched against."""

    channel: str
    store_id: uuid.UUID | None
    now: datetime
    #: The member's tier; None for a shopper who is not a member.
    tier: str | None = None
    new_member: bool = False


@dataclass(frozen=True)
class Scope:
    """Where a promotion or coupon holds; an empty set means no restriction on that axis."""

    channels: frozenset[str] = frozenset()
    store_ids: frozenset[uuid.UUID] = frozenset()
    #: Lines whose SKU is named or whose category lineage meets one of these; none: all goods.
    sku_ids: frozenset[uuid.UUID] = frozenset()
    category_ids: frozenset[uuid.UUID] = frozenset()
    #: Tiers allowed; a non-empty set also shuts out shoppers who are not members.
    tiers: frozenset[str] = frozenset()
    members_only: bool = False
    new_members_only: bool = False

    def covers(self, line: OfferLine) -> bool:
        if line.kind is not LineKind.GOODS:
            return False
        if not self.sku_ids and not self.category_ids:
            return True
        if line.sku_id is not None and line.sku_id in self.sku_ids:
            return True
        return any(c in self.category_ids for c in line.categories)

    def refusal(self, context: OfferContext) -> Reason | None:
        """Why the shopper or the touchpoint is outside the scope; None when inside."""
        if self.channels and context.channel not in self.channels:
            return Reason.OTHER_CHANNEL
        if self.store_ids and context.store_id not in self.store_ids:
            return Reason.OTHER_STORE
        members_needed = self.members_only or self.new_members_only or bool(self.tiers)
        if members_needed and context.tier is None:
            return Reason.MEMBERS_ONLY
        if self.tiers and context.tier not in self.tiers:
            return Reason.TIER_NOT_ELIGIBLE
        if self.new_members_only and not context.new_member:
            return Reason.NEW_MEMBERS_ONLY
        return None


@dataclass(frozen=True)
class Promotion:
    """An automatic promotion: no code, it applies to every basket in its scope and window.

    ``priority``: higher applies first (ties: by id). ``exclusive``: never combined with any
    other promotion on the same line — it takes only lines no promotion has discounted yet,
    and no later promotion touches the lines it discounted.
    """

    id: str
    name: str
    kind: PromotionKind
    scope: Scope = Scope()
    priority: int = 0
    exclusive: bool = False
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    percent: int = 0
    amount_fen: int = 0
    threshold_fen: int = 0
    #: 满减 tiers as (threshold fen, fen off), any order.
    tiers: tuple[tuple[int, int], ...] = ()
    buy: int = 0
    get: int = 0
    bundle_quantity: int = 0
    bundle_price_fen: int = 0
    #: Member price per SKU, in fen per the SKU's ``price_per``.
    member_prices: tuple[tuple[uuid.UUID, int], ...] = ()
    #: The most the promotion takes off one basket.
    cap_fen: int | None = None

    @property
    def source(self) -> str:
        return f"promotion:{self.id}"


class Reason(StrEnum):
    """Why a promotion or coupon did (not) apply: stable codes for receipts and consoles."""

    APPLIED = "applied"
    NOT_STARTED = "not_started"
    ENDED = "ended"
    OTHER_CHANNEL = "other_channel"
    OTHER_STORE = "other_store"
    MEMBERS_ONLY = "members_only"
    TIER_NOT_ELIGIBLE = "tier_not_eligible"
    NEW_MEMBERS_ONLY = "new_members_only"
    NO_LINES_IN_SCOPE = "no_lines_in_scope"
    LINES_TAKEN_BY_EXCLUSIVE = "lines_taken_by_exclusive"
    EXCLUSIVE_LINES_DISCOUNTED = "exclusive_lines_discounted"
    BELOW_THRESHOLD = "below_threshold"
    NOT_ENOUGH_ITEMS = "not_enough_items"
    NO_SAVING = "no_saving"
    DOES_NOT_STACK = "does_not_stack"


SENTENCES = {
    Reason.APPLIED: "applied",
    Reason.NOT_STARTED: "has not started yet",
    Reason.ENDED: "has ended",
    Reason.OTHER_CHANNEL: "does not run on this channel",
    Reason.OTHER_STORE: "does not run in this store",
    Reason.MEMBERS_ONLY: "is for members only",
    Reason.TIER_NOT_ELIGIBLE: "is not for the member's tier",
    Reason.NEW_MEMBERS_ONLY: "is for new members only",
    Reason.NO_LINES_IN_SCOPE: "covers nothing in the basket",
    Reason.LINES_TAKEN_BY_EXCLUSIVE: "its lines already have an exclusive promotion",
    Reason.EXCLUSIVE_LINES_DISCOUNTED: "is exclusive and its lines already have a promotion",
    Reason.BELOW_THRESHOLD: "the lines it covers do not reach its threshold",
    Reason.NOT_ENOUGH_ITEMS: "not enough items it covers in the basket",
    Reason.NO_SAVING: "would save nothing on this basket",
    Reason.DOES_NOT_STACK: "does not combine with what is already applied",
}


@dataclass(frozen=True)
class Explanation:
    """One promotion's (or coupon's) verdict on the basket."""

    source: str
    name: str
    reason: Reason
    amount: int = 0
    line_indexes: tuple[int, ...] = ()

    @property
    def applied(self) -> bool:
        return self.reason is Reason.APPLIED

    @property
    def sentence(self) -> str:
        return f"{self.name}: {SENTENCES[self.reason]}"


@dataclass(frozen=True)
class Offers:
    """What the engine decided: the discounts in the order to apply them, and every verdict."""

    discounts: tuple[Discount, ...]
    explanations: tuple[Explanation, ...]
    #: Each line's amount after these discounts (what coupons and tenders then work on).
    nets: tuple[int, ...] = field(default=())


def window_refusal(
    starts_at: datetime | None, ends_at: datetime | None, now: datetime
) -> Reason | None:
    if starts_at is not None and now < starts_at:
        return Reason.NOT_STARTED
    if ends_at is not None and now >= ends_at:
        return Reason.ENDED
    return None


@dataclass(frozen=True)
class _Saving:
    total: int = 0
    #: Savings that belong to particular lines (member price, second item): line -> fen.
    per_line: dict[int, int] | None = None
    refused: Reason | None = None


def _saving(
    promotion: Promotion, lines: Sequence[OfferLine], targets: Sequence[int], room: int
) -> _Saving:
    """What the promotion takes off its lines (before its cap), or why nothing."""
    kind = promotion.kind
    if kind in (PromotionKind.PERCENT_OFF, PromotionKind.AMOUNT_OFF):
        if room < promotion.threshold_fen:
            return _Saving(refused=Reason.BELOW_THRESHOLD)
        if kind is PromotionKind.PERCENT_OFF:
            return _Saving(room * promotion.percent // PCT)
        return _Saving(promotion.amount_fen)
    if kind is PromotionKind.TIERED_AMOUNT_OFF:
        reached = [off for threshold, off in promotion.tiers if room >= threshold]
        return _Saving(max(reached)) if reached else _Saving(refused=Reason.BELOW_THRESHOLD)
    if kind is PromotionKind.MEMBER_PRICE:
        prices = dict(promotion.member_prices)
        per_line = {}
        for i in targets:
            line = lines[i]
            member = prices.get(line.sku_id) if line.sku_id is not None else None
            if member is not None:
                at_member = price_for_quantity(member, line.price_per, line.quantity)
                per_line[i] = max(0, line.amount - at_member)
        return _Saving(sum(per_line.values()), per_line)
    if kind is PromotionKind.SECOND_ITEM_PERCENT:
        per_line = {
            i: lines[i].quantity // 2 * (price - price * promotion.percent // PCT)
            for i in targets
            if lines[i].quantity >= 2
            for price in (lines[i].unit_price,)
        }
        if not per_line:
            return _Saving(refused=Reason.NOT_ENOUGH_ITEMS)
        return _Saving(sum(per_line.values()), per_line)
    runs = unit_runs((lines[i].unit_price, lines[i].quantity) for i in targets)
    if kind is PromotionKind.BUY_N_GET_M:
        saved = free_units_saving(runs, promotion.buy, promotion.get)
    else:  # BUNDLE_PRICE
        saved = bundle_saving(runs, promotion.bundle_quantity, promotion.bundle_price_fen)
    return _Saving(refused=Reason.NOT_ENOUGH_ITEMS) if saved is None else _Saving(saved)


def apply_promotions(
    lines: Sequence[OfferLine], promotions: Sequence[Promotion], context: OfferContext
) -> Offers:
    """Decide every promotion on the basket: priority first, exclusive ones alone on a line.

    Each discount is measured on what its lines still cost after the promotions before it and
    spread like ``orders.pricing_rules.price_basket`` spreads it, so applying the returned
    discounts in order there gives exactly the amounts explained here. The input order of
    ``promotions`` does not matter.
    """
    nets = [line.amount for line in lines]
    #: Per line: an exclusive promotion holds it (True), a stackable one touched it (False).
    held: dict[int, bool] = {}
    discounts: list[Discount] = []
    verdicts: list[Explanation] = []
    for promotion in sorted(promotions, key=lambda p: (-p.priority, p.id)):

        def refuse(reason: Reason, p: Promotion = promotion) -> None:
            verdicts.append(Explanation(p.source, p.name, reason))

        outside = window_refusal(
            promotion.starts_at, promotion.ends_at, context.now
        ) or promotion.scope.refusal(context)
        if outside is not None:
            refuse(outside)
            continue
        covered = [i for i, line in enumerate(lines) if promotion.scope.covers(line)]
        if not covered:
            refuse(Reason.NO_LINES_IN_SCOPE)
            continue
        if promotion.exclusive:
            targets = [i for i in covered if i not in held]
            blocked = Reason.EXCLUSIVE_LINES_DISCOUNTED
        else:
            targets = [i for i in covered if not held.get(i, False)]
            blocked = Reason.LINES_TAKEN_BY_EXCLUSIVE
        if not targets:
            refuse(blocked)
            continue
        if promotion.kind in UNIT_KINDS:
            targets = [i for i in targets if lines[i].counted_in_units]
            if not targets:
                refuse(Reason.NOT_ENOUGH_ITEMS)
                continue
        room = sum(nets[i] for i in targets)
        saving = _saving(promotion, lines, targets, room)
        if saving.refused is not None:
            refuse(saving.refused)
            continue
        cap = room if promotion.cap_fen is None else min(room, promotion.cap_fen)
        if saving.per_line is None:
            amount = min(saving.total, cap)
            shares = dict(
                zip(targets, allocate_discount(amount, [nets[i] for i in targets]), strict=True)
            )
            found = [Discount(promotion.source, amount, tuple(targets))] if amount else []
        else:
            # Savings of particular lines stay on those lines (returning the line with the
            # member price gives back its member price), one discount per line.
            owed = {i: min(s, nets[i]) for i, s in sorted(saving.per_line.items()) if s > 0}
            amount = min(sum(owed.values()), cap)
            shares = dict(zip(owed, allocate_discount(amount, list(owed.values())), strict=True))
            found = [Discount(promotion.source, s, (i,)) for i, s in shares.items() if s]
        if amount <= 0:
            refuse(Reason.NO_SAVING)
            continue
        touched = tuple(i for i, part in shares.items() if part)
        for i in touched:
            nets[i] -= shares[i]
            held[i] = held.get(i, False) or promotion.exclusive
        discounts.extend(found)
        verdicts.append(
            Explanation(promotion.source, promotion.name, Reason.APPLIED, amount, touched)
        )
    return Offers(tuple(discounts), tuple(verdicts), tuple(nets))
