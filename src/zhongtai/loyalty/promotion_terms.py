"""Whether a promotion HQ defines makes sense: its kind's terms, cap and window, each problem
named by its field."""

from __future__ import annotations

from zhongtai.loyalty.promotion_rules import PCT, Promotion, PromotionKind


def promotion_problems(promotion: Promotion) -> list[tuple[str, str]]:
    """What is wrong with a promotion's definition, as (field, message); empty when sound."""
    kind = promotion.kind
    problems: list[tuple[str, str]] = []
    if kind is PromotionKind.PERCENT_OFF and not 0 < promotion.percent <= PCT:
        problems.append(("terms.percent", "a percentage off from 1 to 100"))
    if kind is PromotionKind.SECOND_ITEM_PERCENT and not 0 <= promotion.percent < PCT:
        problems.append(("terms.percent", "the second item's price in percent, 0 to 99"))
    if kind is PromotionKind.AMOUNT_OFF and promotion.amount_fen <= 0:
        problems.append(("terms.amount_fen", "must be 1 fen or more"))
    if kind is PromotionKind.TIERED_AMOUNT_OFF:
        if not promotion.tiers:
            problems.append(("terms.tiers", "give at least one [threshold_fen, off_fen] tier"))
        for n, (threshold, off) in enumerate(promotion.tiers):
            if not 0 < off <= threshold:
                problems.append(
                    (f"terms.tiers[{n}]", "the amount off is 1 fen up to its threshold")
                )
    if kind is PromotionKind.BUY_N_GET_M and (promotion.buy < 1 or promotion.get < 1):
        problems.append(("terms.buy", "buy and get are both 1 or more"))
    if kind is PromotionKind.BUNDLE_PRICE:
        if promotion.bundle_quantity < 2:
            problems.append(("terms.bundle_quantity", "a bundle has 2 items or more"))
        if promotion.bundle_price_fen <= 0:
            problems.append(("terms.bundle_price_fen", "must be 1 fen or more"))
    if kind is PromotionKind.MEMBER_PRICE and not promotion.member_prices:
        problems.append(("terms.member_prices", "name at least one SKU and its member price"))
    if any(price < 0 for _, price in promotion.member_prices):
        problems.append(("terms.member_prices", "prices are 0 fen or more"))
    if promotion.threshold_fen < 0:
        problems.append(("terms.threshold_fen", "must be 0 or more"))
    if promotion.cap_fen is not None and promotion.cap_fen <= 0:
        problems.append(("terms.cap_fen", "must be 1 fen or more (or none)"))
    if promotion.starts_at and promotion.ends_at and promotion.ends_at <= promotion.starts_at:
        problems.append(("ends_at", "must be after starts_at"))
    return problems
