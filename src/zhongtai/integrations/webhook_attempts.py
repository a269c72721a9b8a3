"""Webhook attempts: claim due lane heads before sending them, record how each attempt ended.

An attempt starts with a claim, written to the delivery in one statement with the count of the
attempt: ``claim_id`` (this sender pass's), ``attempts + 1``, and ``next_attempt_at`` pushed to
when the claim lapses (the attempt's timeout and a grace). While the claim lives the delivery is
not due, and its lane has no due head (:func:`webhook_queue.due_deliveries`): neither this
sender nor another — a relay that has just taken the lease over, or an old leader whose
attempts are still out — sends a second request of the lane, re-driven heads included. Claims
of one subscription are made one transaction at a time (its row is locked for them), and each
re-checks that the delivery is still its lane's head and the lane still free.

Only the claimed attempt's outcome is recorded, once: it must match the delivery's ``claim_id``,
which the recording clears. An outcome written again (a commit whose answer was lost) or late
(after its claim lapsed and another sender claimed the delivery) changes nothing; the attempt it
reports was counted when it started. A claim that lapses — its sender stopped mid-attempt — was
counted too, so a delivery is never attempted more than ``max_attempts`` times: when none is
left, it dies saying that the last attempt never reported back (and is delivered after all
should that attempt report a 2xx later).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import Boolean, bindparam, case, exists, literal, select, update
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.ids import new_id
from zhongtai.integrations.models import DeliveryStatus, WebhookSubscription
from zhongtai.integrations.rules import backoff_seconds
from zhongtai.integrations.webhook_queue import DELIVERIES, PENDING, DueDelivery

#: How long a claim outlives its attempt's timeout: time to sign, and to record the outcome
#: (kept and written again while the database is away). After it another sender may try.
CLAIM_GRACE_SECONDS = 30.0
#: Why a delivery whose last attempt's claim lapsed is dead.
NEVER_REPORTED = "the last attempt never reported back (its sender stopped); no attempt is left"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    backoff_base: float
    backoff_cap: float


@dataclass(frozen=True)
class AttemptOutcome:
    """How one claimed attempt ended: ``error`` None means the receiver answered 2xx."""

    delivery_id: uuid.UUID
    #: The claim the attempt was made under: only its outcome is recorded.
    claim_id: uuid.UUID
    #: The attempt's number (1 for the first), as counted when it was claimed.
    attempt: int
    status_code: int | None
    error: str | None


def claim_deliveries(
    session: Session,
    candidates: Sequence[DueDelivery],
    *,
    max_attempts: int,
    claim_seconds: float,
) -> list[DueDelivery]:
    """Claim the candidates still due, each still its lane's head with no attempt in flight in
    its lane, of subscriptions still active; returns them, claimed (in the candidates' order).

    The candidates' subscriptions are locked (``FOR NO KEY UPDATE``, in id order) first, so
    concurrent claimers of one subscription take turns and each sees the claims made before it;
    a deactivation, which locks its subscription for update, is ordered with them. Each claim
    counts its attempt. A candidate with no attempt left (its last claim lapsed) dies instead.
    """
    if not candidates:
        return []
    connection = session.connection()
    active = set(
        connection.scalars(
            select(WebhookSubscription.id)
            .where(
                WebhookSubscription.id.in_(sorted({c.subscription_id for c in candidates})),
                WebhookSubscription.active.is_(True),
            )
            .order_by(WebhookSubscription.id)
            .with_for_update(key_share=True)
        )
    )
    now = utcnow()
    live = [c for c in candidates if c.subscription_id in active]
    spent = [c.delivery_id for c in live if c.attempts >= max_attempts]
    if spent:
        connection.execute(_end_spent(), {"ids": spent, "now": now, "reason": NEVER_REPORTED})
    wanted = [c for c in live if c.attempts < max_attempts]
    if not wanted:
        return []
    claim_id = new_id()
    claimed = connection.execute(
        _claim(),
        {
            "ids": [c.delivery_id for c in wanted],
            "now": now,
            "lapses": now + timedelta(seconds=claim_seconds),
            "claim": claim_id,
        },
    )
    counted = {row.id: row.attempts for row in claimed}
    return [
        replace(c, attempts=counted[c.delivery_id] - 1, claim_id=claim_id)
        for c in wanted
        if c.delivery_id in counted
    ]


@cache
def _claim() -> Any:
    """UPDATE the given deliveries that are still due heads of free lanes: claimed, counted,
    not due again until the claim lapses; RETURNING their id and attempt count."""
    d = DELIVERIES
    older = d.alias("older")
    claimed = d.alias("claimed")
    now: Any = bindparam("now")
    return (
        update(d)
        .where(
            d.c.id.in_(bindparam("ids", expanding=True)),
            d.c.status == PENDING,
            d.c.next_attempt_at <= now,
            ~exists().where(
                older.c.subscription_id == d.c.subscription_id,
                older.c.aggregate_type == d.c.aggregate_type,
                older.c.aggregate_id == d.c.aggregate_id,
                older.c.status == PENDING,
                older.c.event_seq < d.c.event_seq,
            ),
            ~exists().where(
                claimed.c.subscription_id == d.c.subscription_id,
                claimed.c.aggregate_type == d.c.aggregate_type,
                claimed.c.aggregate_id == d.c.aggregate_id,
                claimed.c.claim_id.is_not(None),
                claimed.c.next_attempt_at > now,
            ),
        )
        .values(
            claim_id=bindparam("claim"),
            attempts=d.c.attempts + 1,
            next_attempt_at=bindparam("lapses"),
            updated_at=now,
        )
        .returning(d.c.id, d.c.attempts)
    )


@cache
def _end_spent() -> Any:
    """UPDATE the given due pending deliveries to dead: no attempt is left for them. If a claim
    lapsed on them, that attempt never reported back: that is their last error. The claim stays:
    should the attempt report back after all, what it reports is recorded (delivered, if it got
    through), unless the delivery was re-driven meanwhile."""
    d = DELIVERIES
    return (
        update(d)
        .where(
            d.c.id.in_(bindparam("ids", expanding=True)),
            d.c.status == PENDING,
            d.c.next_attempt_at <= bindparam("now"),
        )
        .values(
            status=DeliveryStatus.DEAD,
            last_error=case((d.c.claim_id.is_not(None), bindparam("reason")), else_=d.c.last_error),
            updated_at=bindparam("now"),
        )
    )


def record_outcomes(
    session: Session, outcomes: Sequence[AttemptOutcome], policy: RetryPolicy
) -> list[DeliveryStatus]:
    """Record many attempts in one statement; returns each delivery's status after it, as it
    is if the attempt still held its claim.

    A success is delivered; a failure is retried after backoff with jitter, or dead after the
    last attempt. A delivery cancelled while its attempt was in flight stays cancelled, unless
    the attempt got through: then it is delivered. Only an outcome that holds the delivery's
    claim is recorded, and it releases the claim, so it is recorded once; the attempt itself was
    counted when it was claimed. Rows are written in id order (no deadlock with another writer
    of several deliveries doing the same).
    """
    if not outcomes:
        return []
    now = utcnow()
    rows: list[dict[str, Any]] = []
    statuses: list[DeliveryStatus] = []
    for outcome in outcomes:
        if outcome.error is None:
            status, next_at, delivered_at = DeliveryStatus.DELIVERED, now, now
        else:
            last = outcome.attempt >= policy.max_attempts
            status = DeliveryStatus.DEAD if last else DeliveryStatus.PENDING
            delay = backoff_seconds(
                outcome.attempt,
                base=policy.backoff_base,
                cap=policy.backoff_cap,
                jitter=random.random(),  # noqa: S311 (spreading retries, not secrecy)
            )
            next_at, delivered_at = now + timedelta(seconds=delay), None
        statuses.append(status)
        rows.append(
            {
                "b_id": outcome.delivery_id,
                "b_claim": outcome.claim_id,
                "b_status": status,
                "b_ok": outcome.error is None,
                "b_next": next_at,
                "b_delivered": delivered_at,
                "b_code": outcome.status_code,
                "b_error": None if outcome.error is None else outcome.error[:2000],
                "b_now": now,
            }
        )
    rows.sort(key=lambda row: row["b_id"])
    session.connection().execute(_record(), rows)
    return statuses


@cache
def _record() -> Any:
    d = DELIVERIES
    got_through = bindparam("b_ok", type_=Boolean())
    status = case(
        (d.c.status == PENDING, bindparam("b_status", type_=d.c.status.type)),
        (got_through, literal(DeliveryStatus.DELIVERED, d.c.status.type)),
        else_=d.c.status,
    )
    return (
        update(d)
        .where(d.c.id == bindparam("b_id"), d.c.claim_id == bindparam("b_claim"))
        .values(
            status=status,
            claim_id=None,
            next_attempt_at=bindparam("b_next"),
            delivered_at=bindparam("b_delivered"),
            last_status_code=bindparam("b_code"),
            last_error=bindparam("b_error"),
            cancel_reason=case((got_through, None), else_=d.c.cancel_reason),
            updated_at=bindparam("b_now"),
        )
    )
