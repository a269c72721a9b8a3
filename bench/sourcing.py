"""Sourcing speed: ``choose_stores`` for a 5-line delivery basket over 500 Shanghai-area stores.

In-process and pure (no database): 500 seeded random stores in a ~40 km box around People's
Square, each with a 3-5 km delivery radius, a picking backlog and channel ATP for a 200-SKU
assortment; every call takes a random address in the box and a random 5-line basket. The
lead calls ``run`` from ``bench/orders.py`` (metric ``sourcing_p99_ms``; target < 20 ms).
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

from zhongtai.fulfillment.rules import (
    BasketLine,
    GeoPoint,
    SourcingRequest,
    StoreCandidate,
    choose_stores,
)
from zhongtai.orders.kinds import FulfillmentType

STORES = 500
SKUS = 200
BASKET_LINES = 5
CENTRE = (31.23, 121.47)  # People's Square, Shanghai
HALF_BOX_DEG = (0.18, 0.21)  # about 20 km either way
SEED = 20240605
NOW = datetime(2024, 6, 5, 10, 0, tzinfo=UTC)


def _point(rng: random.Random) -> tuple[float, float]:
    return (
        CENTRE[0] + rng.uniform(-HALF_BOX_DEG[0], HALF_BOX_DEG[0]),
        CENTRE[1] + rng.uniform(-HALF_BOX_DEG[1], HALF_BOX_DEG[1]),
    )


def _stores(rng: random.Random, skus: list[uuid.UUID]) -> list[StoreCandidate]:
    types = [FulfillmentType.DELIVERY, FulfillmentType.PICKUP, FulfillmentType.SHIP]
    stores = []
    for n in range(STORES):
        lat, lng = _point(rng)
        open_now = rng.random() > 0.05
        stores.append(
            StoreCandidate(
                store_id=uuid.UUID(int=rng.getrandbits(128)),
                code=f"SH{n:04d}",
                latitude=lat,
                longitude=lng,
                open_now=open_now,
                next_open_at=None if open_now else NOW + timedelta(hours=rng.randint(1, 12)),
                closes_at=NOW + timedelta(hours=rng.randint(1, 12)) if open_now else None,
                fulfillment_types=frozenset(t for t in types if rng.random() > 0.1),
                delivery_radius_m=rng.choice([3_000, 4_000, 5_000]),
                services=frozenset(["fish_cleaning"]) if rng.random() > 0.5 else frozenset(),
                # Most stores carry most of the assortment; some SKUs are out here and there.
                stock={sku: rng.choice([0, 2, 5, 20, 50]) for sku in skus if rng.random() > 0.1},
                open_tasks=rng.randint(0, 10),
            )
        )
    return stores


def run(*, quick: bool = False) -> tuple[dict[str, float], list[str]]:
    rng = random.Random(SEED)
    skus = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(SKUS)]
    stores = _stores(rng, skus)
    calls = 200 if quick else 2_000
    requests = [
        SourcingRequest(
            fulfillment_type=FulfillmentType.DELIVERY,
            lines=[BasketLine(sku, rng.randint(1, 3)) for sku in rng.sample(skus, BASKET_LINES)],
            address=GeoPoint(*_point(rng)),
        )
        for _ in range(calls)
    ]
    for request in requests[:20]:  # warm-up: imports, caches
        choose_stores(request, stores, NOW)
    timings: list[float] = []
    found = within = 0
    for request in requests:
        started = time.perf_counter()
        decision = choose_stores(request, stores, NOW)
        timings.append((time.perf_counter() - started) * 1000)
        found += decision.found
        within += decision.within_target
    timings.sort()
    metrics = {
        "sourcing_p50_ms": round(statistics.median(timings), 3),
        "sourcing_p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 3),
    }
    notes = [
        f"choose_stores: {calls} calls, {STORES} stores, {BASKET_LINES}-line delivery baskets, "
        f"in-process; a store found for {found}, within 30 min for {within}"
    ]
    return metrics, notes


if __name__ == "__main__":
    print(run(quick=True))
