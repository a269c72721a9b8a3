"""Which of the catalogue's new products to put in front of one customer, and why: the pure
rule behind the guide's weekly new-arrivals nudge.

A product is hers by what she bought (a category) or what she told us (a brand or category
among her preferences); her size only chooses among a product's SKUs. Kept apart from the
other task rules because it ranks a catalogue rather than reading her own history.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from zhongtai.guides.member_facts import MemberFacts, NewArrival
from zhongtai.guides.task_kinds import TaskPolicy


def _sizes(preferences: Mapping[str, Any]) -> set[str]:
    return {
        v.strip().casefold()
        for k, v in preferences.items()
        if k.endswith("size") and isinstance(v, str) and v.strip()
    }


def _preference_matches(preferences: Mapping[str, Any], arrival: NewArrival) -> list[str]:
    """Her preferences naming the product's brand or category ("brand: 申城衣橱")."""
    names = {n.strip().casefold() for n in (arrival.brand, arrival.category_name) if n}
    return [
        f"{k}: {v.strip()}"
        for k, v in sorted(preferences.items())
        if isinstance(v, str) and v.strip() and v.strip().casefold() in names
    ]


@dataclass(frozen=True)
class ArrivalPick:
    """A new SKU chosen for her, with why (the first reason is the strongest)."""

    arrival: NewArrival
    reasons: tuple[str, ...]
    in_her_size: bool

    @property
    def rank(self) -> tuple[int, int, int, str]:
        a = self.arrival
        return (-len(self.reasons), -int(self.in_her_size), -a.created_on.toordinal(), a.sku_code)


def pick_new_arrivals(
    facts: MemberFacts,
    arrivals: Sequence[NewArrival],
    today: date,
    policy: TaskPolicy = TaskPolicy(),
) -> list[ArrivalPick]:
    """Up to ``new_arrivals_max_skus`` new SKUs for her, one per product.

    A new product is hers when its category is one she bought from within the purchase
    history, or when a preference of hers names its brand or category. A size preference
    only chooses among the product's SKUs (her size first): a size alone recommends nothing.
    Products with both reasons come first, then those in her size, then the newest.
    """
    new_since = today - timedelta(days=policy.new_arrivals_within_days)
    bought_since = today - timedelta(days=policy.purchase_history_days)
    hers = {
        c.category_id: c
        for c in facts.bought_categories
        if bought_since <= c.last_bought_on <= today
    }
    sizes = _sizes(facts.preferences)
    best: dict[uuid.UUID, ArrivalPick] = {}
    for arrival in arrivals:
        if not new_since <= arrival.created_on <= today:
            continue
        reasons = []
        bought = hers.get(arrival.category_id)
        if bought is not None:
            reasons.append(f"she bought {bought.name} on {bought.last_bought_on.isoformat()}")
        reasons += [f"her preference {m}" for m in _preference_matches(facts.preferences, arrival)]
        if not reasons:
            continue
        size = arrival.size.strip().casefold() if arrival.size else None
        pick = ArrivalPick(arrival, tuple(reasons), size is not None and size in sizes)
        kept = best.get(arrival.product_id)
        if kept is None or pick.rank < kept.rank:
            best[arrival.product_id] = pick
    return sorted(best.values(), key=lambda p: p.rank)[: policy.new_arrivals_max_skus]
