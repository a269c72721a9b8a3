"""Which eligible location fulfils what: the best one for the whole basket, or a parcel split.

Delivery, pickup, reserve_try and in_store go to the best-ranked eligible store whole. A
``ship`` parcel may be split, and splitting is where the search lives: whole lines go to the
fewest locations (then the latest part's promise, then the best-ranked locations), found
exhaustively within :data:`SPLIT_SEARCH_BUDGET` combinations and greedily past it, so the
search stays bounded however many locations hold part of the parcel.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from itertools import combinations
from types import MappingProxyType

from zhongtai.fulfillment.promise import Promise, promise_for_workload
from zhongtai.fulfillment.sourcing_candidates import Basket, Eligible
from zhongtai.fulfillment.sourcing_decisions import Assignment
from zhongtai.orders.kinds import FulfillmentType

#: Ship splits try every set of locations up to this many combinations, then go greedy.
SPLIT_SEARCH_BUDGET = 20_000


def single_assignment(eligible: list[Eligible], basket: Basket) -> list[Assignment]:
    """The whole basket at the best-ranked eligible store; [] when none is eligible."""
    if not eligible:
        return []
    best = eligible[0]
    return [_assignment(best, dict(basket.need), basket.services, best.promise)]


def plan_split(
    eligible: list[Eligible], basket: Basket, now: datetime, ftype: FulfillmentType
) -> list[Assignment]:
    """Assign a parcel's lines to locations (see ``choose_stores``); [] when it cannot be done."""
    whole_skus = [
        s for s in basket.need if any(e.store.stock.get(s, 0) >= basket.need[s] for e in eligible)
    ]
    split_skus = [s for s in basket.need if s not in whole_skus]
    services = sorted(basket.services)
    for sku in split_skus:
        if sum(max(0, e.store.stock.get(sku, 0)) for e in eligible) < basket.need[sku]:
            return []
    if any(not any(s in e.store.services for e in eligible) for s in services):
        return []

    # Each whole line is one bit; a location covers the lines it holds in full.
    lines: list[uuid.UUID | str] = [*whole_skus, *services]
    masks = [_mask(e, lines, basket) for e in eligible]
    chosen = _fewest_locations(masks, (1 << len(lines)) - 1, eligible)

    parts: dict[int, tuple[dict[uuid.UUID, int], set[str]]] = {}
    for bit, line in enumerate(lines):
        owner = next(i for i in chosen if masks[i] >> bit & 1)
        quantities, part_services = parts.setdefault(owner, ({}, set()))
        if isinstance(line, str):
            part_services.add(line)
        else:
            quantities[line] = basket.need[line]
    for sku in split_skus:
        remaining = basket.need[sku]
        # Chosen locations first (in rank order), then the others with the most stock first.
        order = [
            *sorted(parts),
            *sorted(
                (i for i in range(len(eligible)) if i not in parts),
                key=lambda i: (-eligible[i].store.stock.get(sku, 0), i),
            ),
        ]
        for i in order:
            take = min(remaining, max(0, eligible[i].store.stock.get(sku, 0)))
            if take:
                parts.setdefault(i, ({}, set()))[0][sku] = take
                remaining -= take
            if not remaining:
                break

    assignments = []
    for i in sorted(parts):
        quantities, part_services = parts[i]
        e = eligible[i]
        promise = promise_for_workload(
            e.store,
            goods_lines=len(quantities),
            services=part_services,
            distance=e.distance,
            now=now,
            fulfillment_type=ftype,
        )
        assignments.append(
            _assignment(e, quantities, frozenset(part_services), promise or e.promise)
        )
    return assignments


def _assignment(
    e: Eligible, quantities: dict[uuid.UUID, int], services: frozenset[str], promise: Promise
) -> Assignment:
    return Assignment(
        store_id=e.store.store_id,
        code=e.store.code,
        quantities=MappingProxyType(quantities),
        services=services,
        promise=promise,
        distance_m=e.distance,
    )


def _mask(e: Eligible, lines: list[uuid.UUID | str], basket: Basket) -> int:
    mask = 0
    for bit, line in enumerate(lines):
        if isinstance(line, str):
            covered = line in e.store.services
        else:
            covered = e.store.stock.get(line, 0) >= basket.need[line]
        if covered:
            mask |= 1 << bit
    return mask


def _fewest_locations(masks: list[int], full: int, eligible: list[Eligible]) -> list[int]:
    """Indexes (rank order) of the fewest locations whose masks cover ``full``; among equals,
    the latest promise is earliest, then the sum of ranks is lowest. Exhaustive over
    non-dominated masks within ``SPLIT_SEARCH_BUDGET`` combinations, else greedy."""
    if not full:
        return []
    # A location whose lines are a subset of a better-ranked one's never improves a set.
    kept: list[int] = []
    for i, mask in enumerate(masks):
        if mask and not any(mask | masks[j] == masks[j] for j in kept):
            kept.append(i)
    budget = SPLIT_SEARCH_BUDGET
    for size in range(1, len(kept) + 1):
        best: tuple[tuple[int, int], tuple[int, ...]] | None = None
        for combo in combinations(kept, size):
            budget -= 1
            if budget < 0:
                return _greedy(masks, full, kept)
            union = 0
            for i in combo:
                union |= masks[i]
            if union != full:
                continue
            quality = (max(eligible[i].promise.minutes for i in combo), sum(combo))
            if best is None or quality < best[0]:
                best = (quality, combo)
        if best is not None:
            return list(best[1])
    return _greedy(masks, full, kept)  # unreachable while every line is held somewhere


def _greedy(masks: list[int], full: int, kept: list[int]) -> list[int]:
    chosen: list[int] = []
    left = full
    while left:
        i = max(kept, key=lambda i: (bin(masks[i] & left).count("1"), -i))
        chosen.append(i)
        left &= ~masks[i]
    return sorted(chosen)
