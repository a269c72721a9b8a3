"""What sourcing is asked and what it answers: the request, the decision, a verdict per candidate.

These are the words clients see (the planner, the checkout's 409 that lists why no store
can fulfil), so they are kept apart from how the decision is reached: judging the candidates
(:mod:`sourcing_candidates`), assigning the basket (:mod:`sourcing_assignments`) and choosing
(:mod:`sourcing`) all speak them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from zhongtai.fulfillment.promise import BasketLine, GeoPoint, Promise
from zhongtai.orders.kinds import FulfillmentType

DEFAULT_TARGET_MINUTES: Mapping[FulfillmentType, int] = MappingProxyType(
    {FulfillmentType.DELIVERY: 30}
)


class Reason(StrEnum):
    """Why a candidate cannot fulfil; stable strings for clients."""

    NOT_CHOSEN_STORE = "not_chosen_store"
    TYPE_NOT_ENABLED = "type_not_enabled"
    OUTSIDE_RADIUS = "outside_radius"
    MISSING_SERVICE = "missing_service"
    MISSING_STOCK = "missing_stock"
    CLOSED = "closed"  # closed, or closing before the order is ready, with no next opening known
    PAUSED = "paused"  # the store paused taking orders of this type for a while


@dataclass(frozen=True)
class SourcingRequest:
    """What to source. ``preferred_store_id`` (the store a customer picked for pickup or a
    try-on, or the till's store) makes every other store ineligible. ``target_minutes`` None
    takes ``DEFAULT_TARGET_MINUTES`` for the type; types without a default have no target."""

    fulfillment_type: FulfillmentType
    lines: Sequence[BasketLine]
    address: GeoPoint | None = None
    preferred_store_id: uuid.UUID | None = None
    target_minutes: int | None = None

    @property
    def target(self) -> int | None:
        if self.target_minutes is not None:
            return self.target_minutes
        return DEFAULT_TARGET_MINUTES.get(self.fulfillment_type)


@dataclass(frozen=True)
class Verdict:
    """One candidate's outcome: eligible and ranked, or the reasons it is not."""

    store_id: uuid.UUID
    code: str
    eligible: bool
    reasons: tuple[Reason, ...]
    explanation: str
    distance_m: float | None
    promise: Promise | None
    rank: int | None = None  # 1 = best, among the eligible
    chosen: bool = False


@dataclass(frozen=True)
class Assignment:
    """What one location fulfils: goods quantities by SKU, services by name, and its promise."""

    store_id: uuid.UUID
    code: str
    quantities: Mapping[uuid.UUID, int]
    services: frozenset[str]
    promise: Promise
    distance_m: float | None


@dataclass(frozen=True)
class SourcingDecision:
    """The choice (one assignment, or several for a split parcel) and every verdict.

    ``promise`` is the latest promise among the assignments (a parcel is complete when its last
    part is). ``within_target`` is True only when a choice exists and its rounded-up minutes are
    within the target (or there is no target).
    """

    fulfillment_type: FulfillmentType
    assignments: tuple[Assignment, ...]
    verdicts: tuple[Verdict, ...]
    promise: Promise | None
    target_minutes: int | None
    within_target: bool
    summary: str

    @property
    def found(self) -> bool:
        return bool(self.assignments)

    @property
    def store_id(self) -> uuid.UUID | None:
        """The fulfilling store; the first (best-ranked) one of a split."""
        return self.assignments[0].store_id if self.assignments else None

    @property
    def split(self) -> bool:
        return len(self.assignments) > 1
