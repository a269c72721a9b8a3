"""Which store (or stores, for a parcel) fulfils a basket, and why each candidate was or was not.

:func:`choose_stores` judges every candidate (:mod:`sourcing_candidates`), ranks the eligible
ones, assigns the basket (:mod:`sourcing_assignments`) and explains the outcome in sentences,
in the words of :mod:`sourcing_decisions`. Pure: no I/O, the caller brings the candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from zhongtai.core.clock import as_utc
from zhongtai.fulfillment.promise import Promise, StoreCandidate
from zhongtai.fulfillment.sourcing_assignments import plan_split, single_assignment
from zhongtai.fulfillment.sourcing_candidates import (
    Eligible,
    Origin,
    basket_of,
    judge_candidate,
    km,
)
from zhongtai.fulfillment.sourcing_decisions import (
    Assignment,
    SourcingDecision,
    SourcingRequest,
    Verdict,
)
from zhongtai.orders.kinds import FulfillmentType


def choose_stores(
    request: SourcingRequest, candidates: Sequence[StoreCandidate], now: datetime
) -> SourcingDecision:
    """Choose the fulfilling store(s) and explain the decision for every candidate.

    Eligible: the type is enabled; for delivery, the address is within the delivery radius;
    the store offers the basket's services; it holds the whole basket; it can promise (open, or
    a known next opening). Delivery, pickup, reserve_try and in_store never split. ``ship`` may
    split: whole lines go to the fewest locations (then the latest part's promise, then the
    best-ranked locations); a SKU line is split across locations only when no single eligible
    location holds all of it, drawing first on locations already chosen. Ranking: promise
    minutes, then distance, then picking backlog, then store code: deterministic. When no store
    meets the target the best promise (or slot) is still chosen, with ``within_target`` False.
    """
    now = as_utc(now)
    basket = basket_of(request)
    ftype = request.fulfillment_type
    ship = ftype is FulfillmentType.SHIP
    origin = None if request.address is None else Origin(request.address)
    eligible: list[Eligible] = []
    rejected: list[Verdict] = []
    for store in candidates:
        result = judge_candidate(store, request, basket, origin, now, ship=ship)
        if isinstance(result, Verdict):
            rejected.append(result)
        else:
            eligible.append(result)
    eligible.sort(key=Eligible.key)
    assignments = (
        plan_split(eligible, basket, now, ftype) if ship else single_assignment(eligible, basket)
    )
    chosen_ids = {a.store_id for a in assignments}
    verdicts = [
        Verdict(
            store_id=e.store.store_id,
            code=e.store.code,
            eligible=True,
            reasons=(),
            explanation=_eligible_sentence(e, rank, len(eligible), ftype),
            distance_m=e.distance,
            promise=e.promise,
            rank=rank,
            chosen=e.store.store_id in chosen_ids,
        )
        for rank, e in enumerate(eligible, start=1)
    ]
    rejected.sort(key=lambda v: (v.distance_m or 0.0, v.code, v.store_id))
    promise = max((a.promise for a in assignments), key=lambda p: p.deliver_by, default=None)
    target = request.target
    within = promise is not None and (target is None or promise.minutes <= target)
    return SourcingDecision(
        fulfillment_type=ftype,
        assignments=tuple(assignments),
        verdicts=(*verdicts, *rejected),
        promise=promise,
        target_minutes=target,
        within_target=within,
        summary=_summary(assignments, promise, target, within, rejected, ftype),
    )


# --- explanations ----------------------------------------------------------------------------


def _eligible_sentence(e: Eligible, rank: int, of: int, ftype: FulfillmentType) -> str:
    p = e.promise
    verb = "delivered" if ftype is FulfillmentType.DELIVERY else "ready"
    when = f"{verb} in {p.minutes} min"
    if p.slot:
        when += f" (works from its next opening at {p.starts_at:%Y-%m-%d %H:%M} UTC)"
    where = "" if e.distance is None else f", {km(e.distance)} away"
    extra = f"; {e.note}" if e.note else ""
    return (
        f"{e.store.code}: ranked {rank} of {of}: {when}{where}, "
        f"{e.store.open_tasks} open picking tasks{extra}."
    )


def _summary(
    assignments: list[Assignment],
    promise: Promise | None,
    target: int | None,
    within: bool,
    rejected: list[Verdict],
    ftype: FulfillmentType,
) -> str:
    if promise is None:
        counts: dict[str, int] = {}
        for verdict in rejected:
            for reason in verdict.reasons:
                counts[reason.value] = counts.get(reason.value, 0) + 1
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))
        return f"No location can fulfil this {ftype.value} order ({why or 'no candidates'})."
    who = " + ".join(a.code for a in assignments)
    text = f"{who}: {promise.minutes} min"
    if promise.slot:
        text += f", from the slot opening {promise.starts_at:%Y-%m-%d %H:%M} UTC"
    if target is None:
        return text + "."
    if within:
        return text + f", within the {target}-minute target."
    return text + f": no location meets the {target}-minute target, this is the best promise."
