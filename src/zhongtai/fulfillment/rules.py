"""Pure fulfilment rules in one place: sourcing, delivery promise, SLA clocks and picking."""

from __future__ import annotations

from zhongtai.fulfillment.picking import (
    Handover,
    PickGroup,
    PickLine,
    PickResult,
    Substitute,
    pick_list,
    pick_outcome,
)
from zhongtai.fulfillment.promise import (
    DEFAULT_SERVICE_PREP_SECONDS,
    FALLBACK_SLA,
    PACK_ALLOWANCE,
    PICKUP_HOLD,
    BasketLine,
    GeoPoint,
    Promise,
    PromiseSettings,
    StoreCandidate,
    TaskKind,
    delivery_promise,
    promise_for_workload,
    sla_breached,
    sla_deadline,
)
from zhongtai.fulfillment.sourcing import choose_stores
from zhongtai.fulfillment.sourcing_decisions import (
    DEFAULT_TARGET_MINUTES,
    Assignment,
    Reason,
    SourcingDecision,
    SourcingRequest,
    Verdict,
)

__all__ = [
    "DEFAULT_SERVICE_PREP_SECONDS",
    "DEFAULT_TARGET_MINUTES",
    "FALLBACK_SLA",
    "PACK_ALLOWANCE",
    "PICKUP_HOLD",
    "Assignment",
    "BasketLine",
    "GeoPoint",
    "Handover",
    "PickGroup",
    "PickLine",
    "PickResult",
    "Promise",
    "PromiseSettings",
    "Reason",
    "SourcingDecision",
    "SourcingRequest",
    "StoreCandidate",
    "Substitute",
    "TaskKind",
    "Verdict",
    "choose_stores",
    "delivery_promise",
    "pick_list",
    "pick_outcome",
    "promise_for_workload",
    "sla_breached",
    "sla_deadline",
]
