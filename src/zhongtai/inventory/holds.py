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

On PostgreSQL a round whose baskets share no balance row is held by
:mod:`pg_hold_statement` in two statements instead; what they leave undecided (retries,
closed locations, baskets that do not fit) is answered by the steps above.

The request and its outcome are in :mod:`hold_requests`. This module only runs the steps in
order and sorts the outcomes back into the order of the requests.

A service: it never commits; the caller's transaction holds everything or nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.inventory.hold_announcements import announce_holds
from zhongtai.inventory.hold_claims import (
    check_locations,
    claim_references,
    existing_holds,
    release_claims,
)
from zhongtai.inventory.hold_judging import allocations_for_requests, judge_baskets
from zhongtai.inventory.hold_records import as_loaded, write_holds
from zhongtai.inventory.hold_requests import HoldRequest, Outcome, Reserved
from zhongtai.inventory.pg_hold_statement import hold_round, independent


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
    if session.get_bind().dialect.name != "postgresql" or not independent(requests):
        return _judge_round(session, requests)
    # Independent baskets: one statement holds those that fit; the rest (a reference used
    # before, a closed location, a basket that does not fit) are answered by the general path.
    now = utcnow()
    decided = hold_round(session, requests, allocations_for_requests(session, requests), now)
    release_claims(session, list(decided.not_fitting.values()))
    outcomes: list[Outcome | None] = [None] * len(requests)
    rest = []
    for i, r in enumerate(requests):
        reservation_id = decided.held.get(r.reference)
        if reservation_id is None:
            rest.append(i)
        else:
            outcomes[i] = Reserved(True, as_loaded(r, reservation_id, now))
    for i, outcome in zip(rest, _judge_round(session, [requests[i] for i in rest]), strict=True):
        outcomes[i] = outcome
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
    unclaimed = [i for i in asked if requests[i].reference not in claimed]
    found = existing_holds(session, [requests[i] for i in unclaimed])
    for i, outcome in zip(unclaimed, found, strict=True):
        outcomes[i] = outcome
    missing = [i for i in unclaimed if outcomes[i] is None]
    refused = check_locations(session, requests, missing)
    if len(refused) != len(missing):  # neither claimed, nor there, nor refused: a bug
        raise RuntimeError("a reservation was neither claimed nor found")
    for i, error in refused.items():
        outcomes[i] = error
    allocations = allocations_for_requests(session, [requests[i] for i in new])
    judgement = judge_baskets(session, requests, new, allocations, outcomes)
    announce_holds(session, requests, judgement.rows, judgement.figures)
    held = judgement.held
    release_claims(session, [claimed[requests[i].reference] for i in new if i not in held])
    reservations = write_holds(session, requests, held, claimed, now)
    for i, build in reservations.items():
        outcomes[i] = Reserved(True, build)
    return [o for o in outcomes if o is not None]
