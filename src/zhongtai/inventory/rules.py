"""Pure rules of stock: available to promise, reservation steps, low/out thresholds, baskets."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from zhongtai.inventory.models import ReservationStatus

MIN_TTL_SECONDS = 30
MAX_TTL_SECONDS = 7 * 24 * 3600
MAX_BASKET_LINES = 200


def atp(on_hand: int, reserved: int, safety_stock: int) -> int:
    """Available to promise: what may still be sold or reserved; never below zero."""
    return max(0, on_hand - reserved - safety_stock)


# --- reservation state machine ---------------------------------------------------------------


class Step(StrEnum):
    APPLY = "apply"  # the transition happens
    ALREADY = "already"  # the reservation is already where the caller wants it: answer as is
    ILLEGAL = "illegal"  # 409


_A, _C, _R, _E = (
    ReservationStatus.ACTIVE,
    ReservationStatus.CONFIRMED,
    ReservationStatus.RELEASED,
    ReservationStatus.EXPIRED,
)

#: Allowed transitions (from, to). Everything else is illegal unless it is already done.
TRANSITIONS: frozenset[tuple[ReservationStatus, ReservationStatus]] = frozenset(
    {(_A, _C), (_A, _R), (_A, _E)}
)
#: Finished states that already satisfy a wish: releasing an expired hold holds nothing either.
EQUIVALENT: frozenset[tuple[ReservationStatus, ReservationStatus]] = frozenset({(_E, _R)})


def reservation_step(current: ReservationStatus, wanted: ReservationStatus) -> Step:
    if current is wanted or (current, wanted) in EQUIVALENT:
        return Step.ALREADY
    if (current, wanted) in TRANSITIONS:
        return Step.APPLY
    return Step.ILLEGAL


# --- thresholds ------------------------------------------------------------------------------


class Threshold(StrEnum):
    LOW = "low"
    OUT = "out"


def crossed(atp_before: int, atp_after: int, low_stock_level: int) -> Threshold | None:
    """Which threshold a change of ATP crossed downwards, if any (announced once, not per sale).

    OUT when ATP reaches zero from above; LOW when it falls to ``low_stock_level`` or below
    from above it (and is still positive). A level of 0 turns LOW off.
    """
    if atp_after <= 0 < atp_before:
        return Threshold.OUT
    if 0 < atp_after <= low_stock_level < atp_before:
        return Threshold.LOW
    return None


# --- baskets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    sku_id: uuid.UUID
    quantity: int


@dataclass(frozen=True)
class LineProblem:
    field: str
    message: str


def basket_problems(lines: Sequence[Line], *, field: str = "lines") -> list[LineProblem]:
    """What is wrong with a basket: empty, too long, non-positive quantities, repeated SKUs."""
    if not lines:
        return [LineProblem(field, "must hold at least one line")]
    if len(lines) > MAX_BASKET_LINES:
        return [LineProblem(field, f"must hold at most {MAX_BASKET_LINES} lines")]
    problems: list[LineProblem] = []
    seen: dict[uuid.UUID, int] = {}
    for i, line in enumerate(lines):
        if line.quantity <= 0:
            problems.append(LineProblem(f"{field}.{i}.quantity", "must be a positive integer"))
        if line.sku_id in seen:
            problems.append(
                LineProblem(
                    f"{field}.{i}.sku_id",
                    f"repeats the SKU of {field}.{seen[line.sku_id]}; give one line per SKU",
                )
            )
        else:
            seen[line.sku_id] = i
    return problems


def lock_order(lines: Sequence[Line]) -> list[Line]:
    """Lines in the one order every use case locks balance rows in: by SKU id.

    Two baskets that share SKUs then wait for each other in the same order and never deadlock.
    """
    return sorted(lines, key=lambda line: line.sku_id)


def ttl_problem(ttl_seconds: int) -> str | None:
    if not MIN_TTL_SECONDS <= ttl_seconds <= MAX_TTL_SECONDS:
        return f"must be between {MIN_TTL_SECONDS} and {MAX_TTL_SECONDS} seconds"
    return None


# --- channel allocation ----------------------------------------------------------------------

CHANNEL_PATTERN = r"^[a-z][a-z0-9_]{1,23}(:[a-z0-9_.-]{1,23})?$"


@dataclass(frozen=True)
class Allocation:
    """What one channel may sell of a store's ATP. The default: all of it."""

    share_percent: int = 100
    keep_units: int = 0


def channel_atp(store_atp: int, allocation: Allocation) -> int:
    """The channel's share of the ATP (rounded down), and never the units kept back."""
    share = store_atp * allocation.share_percent // 100
    return max(0, min(share, store_atp - allocation.keep_units))


def may_take(store_atp: int, allocation: Allocation, quantity: int) -> bool:
    """Whether the channel may take ``quantity`` now (the SQL condition of a reservation)."""
    return (
        store_atp >= quantity
        and store_atp * allocation.share_percent >= quantity * 100
        and store_atp - allocation.keep_units >= quantity
    )


# --- transfers -------------------------------------------------------------------------------

#: Allowed steps of a transfer (from, to).
TRANSFER_STEPS: frozenset[tuple[str, str]] = frozenset(
    {
        ("requested", "approved"),
        ("requested", "cancelled"),
        ("approved", "shipped"),
        ("approved", "cancelled"),
        ("shipped", "received"),
    }
)


def transfer_step(current: str, wanted: str) -> Step:
    if current == wanted:
        return Step.ALREADY
    return Step.APPLY if (current, wanted) in TRANSFER_STEPS else Step.ILLEGAL
