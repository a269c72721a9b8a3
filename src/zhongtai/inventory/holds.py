"""Holding the stock of many baskets in one transaction: claim references, lock, decide, write once.

:func:`hold_baskets` is what :func:`reservations.reserve` runs for one basket and what the
:class:`~zhongtai.inventory.reservation_desk.ReservationDesk` runs for a batch of concurrent
ones. Per batch it takes a fixed number of statements, whatever the number of baskets:

1. every new reference at an open location claimed in one ``INSERT ... ON CONFLICT DO
   NOTHING RETURNING``, in reference order (two batches sharing references wait on each
   other in the same order); the references not claimed are read back as retries, or
   refused for their location (on SQLite the locations are checked first, in one SELECT);
   see :mod:`hold_claims`;
2. the balance rows, locked in one ``SELECT ... ORDER BY location_id, sku_id FOR UPDATE``
   (the order every use case locks in, so no deadlock), and the baskets judged in arrival
   order against the locked figures, each all-or-nothing; a single row skips the lock and is
   changed by one conditional UPDATE of the batch's total (the common case of a hot SKU);
3. one conditional ``UPDATE`` per changed row adding what the batch holds there; the
   condition is checked again by the database, so a wrong judgement fails rather than
   oversells (2 and 3: :mod:`hold_judging`);
4. the stock events (one per changed row, :mod:`hold_announcements`) and the lines of the
   held baskets (:mod:`hold_records`) in one INSERT each; the references of baskets that
   could not be held are deleted again.

On PostgreSQL the baskets of a round that share no balance row with an earlier basket are held
by :mod:`pg_hold_statement` in two statements and one round trip instead; what they leave
undecided (the later baskets of a shared row, retries, closed locations, baskets that do not
fit) is answered by the steps above, after them.

The request and its outcome are in :mod:`hold_requests`. This module only runs the steps in
order and sorts the outcomes back into the order of the requests.

A service: it never commits; the caller's transaction holds everything or nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.inventory.hold_announcements import announce_holds
from zhongtai.inventory.hold_claims import (
    check_locations,
    claim_references,
    existing_holds,
    release_claims,
)
from zhongtai.inventory.hold_judging import (
    AllocationKey,
    allocations_for_requests,
    judge_baskets,
)
from zhongtai.inventory.hold_records import as_loaded, write_holds
from zhongtai.inventory.hold_requests import HoldRequest, Outcome, Reserved
from zhongtai.inventory.pg_hold_statement import hold_round, independent_first
from zhongtai.inventory.rules import Allocation


def hold_baskets(session: Session, requests: Sequence[HoldRequest]) -> list[Outcome]:
    """Hold every basket that can be held, in arrival order; an outcome per request.

    A basket is held whole or not at all (``InsufficientStock`` naming the first short SKU),
    a reference already used answers its reservation (``created=False``) or 409 for another
    basket. A reference repeated inside the batch is judged after the first, as a retry.
    """
    outcomes: list[Outcome | None] = [None] * len(requests)
    pending = list(range(len(requests)))
    while pending:
        seen: set[str] = set()
        first: list[int] = []
        later: list[int] = []
        for i in pending:
            (later if requests[i].reference in seen else first).append(i)
            seen.add(requests[i].reference)
        round_ = _hold_round(session, [requests[i] for i in first])
        for i, outcome in zip(first, round_, strict=True):
            outcomes[i] = outcome
        pending = later
    return [o for o in outcomes if o is not None]


def _hold_round(session: Session, requests: list[HoldRequest]) -> list[Outcome]:
    if session.get_bind().dialect.name != "postgresql":
        return _judge_round(session, requests)
    first, later = independent_first(requests)
    if len(later) > len(first):  # mostly one row (a hot SKU): the general path batches it
        return _judge_round(session, requests)
    # The database claims every basket and locks all their rows (claims, then rows, as below),
    # and holds those of the first group that fit; the claimed rest (the later baskets of a
    # shared row, baskets that do not fit) are judged after them, in arrival order, and the
    # references not claimed (retries, closed locations) answered, by the general steps.
    now = utcnow()
    allocations = allocations_for_requests(session, requests)
    decided = hold_round(session, requests, allocations, now, judged=first)
    outcomes: list[Outcome | None] = [None] * len(requests)
    for i in first:
        reservation_id = decided.held.get(requests[i].reference)
        if reservation_id is not None:
            outcomes[i] = Reserved(
                True, reservation_id, as_loaded(requests[i], reservation_id, now)
            )
    claimed = decided.claimed
    new = [i for i, r in enumerate(requests) if r.reference in claimed and outcomes[i] is None]
    _answer_unclaimed(
        session,
        requests,
        [i for i, r in enumerate(requests) if r.reference not in claimed],
        outcomes,
    )
    _judge_claimed(session, requests, new, claimed, allocations, outcomes, now)
    return [o for o in outcomes if o is not None]


def _judge_round(session: Session, requests: list[HoldRequest]) -> list[Outcome]:
    """Claim, lock, judge in arrival order, write: any round, on either database."""
    if not requests:
        return []
    outcomes: list[Outcome | None] = [None] * len(requests)
    asked = list(range(len(requests)))
    if session.get_bind().dialect.name != "postgresql":
        # PostgreSQL checks the location in the claim itself.
        refused = check_locations(session, requests, asked)
        outcomes = [refused.get(i) for i in asked]
        asked = [i for i in asked if i not in refused]
    now = utcnow()
    claimed = claim_references(session, [requests[i] for i in asked], now)
    new = [i for i in asked if requests[i].reference in claimed]
    _answer_unclaimed(
        session, requests, [i for i in asked if requests[i].reference not in claimed], outcomes
    )
    allocations = allocations_for_requests(session, [requests[i] for i in new])
    _judge_claimed(session, requests, new, claimed, allocations, outcomes, now)
    return [o for o in outcomes if o is not None]


def _answer_unclaimed(
    session: Session,
    requests: list[HoldRequest],
    unclaimed: list[int],
    outcomes: list[Outcome | None],
) -> None:
    """A reference not claimed is a retry (its reservation, or 409 for another basket), or
    its location refused the claim (422)."""
    found = existing_holds(session, [requests[i] for i in unclaimed])
    for i, outcome in zip(unclaimed, found, strict=True):
        outcomes[i] = outcome
    missing = [i for i in unclaimed if outcomes[i] is None]
    refused = check_locations(session, requests, missing)
    if len(refused) != len(missing):  # neither claimed, nor there, nor refused: a bug
        raise RuntimeError("a reservation was neither claimed nor found")
    for i, error in refused.items():
        outcomes[i] = error


def _judge_claimed(
    session: Session,
    requests: list[HoldRequest],
    new: list[int],
    claimed: dict[str, uuid.UUID],
    allocations: dict[AllocationKey, Allocation],
    outcomes: list[Outcome | None],
    now: datetime,
) -> None:
    """Lock, judge in arrival order and write the claimed baskets at ``new``; free the claims
    of those that cannot be held."""
    if not new:
        return
    judgement = judge_baskets(session, requests, new, allocations, outcomes)
    announce_holds(session, requests, judgement.rows, judgement.figures)
    held = judgement.held
    release_claims(session, [claimed[requests[i].reference] for i in new if i not in held])
    reservations = write_holds(session, requests, held, claimed, now)
    for i, build in reservations.items():
        outcomes[i] = Reserved(True, claimed[requests[i].reference], build)
