"""Webhook delivery lanes: enqueue events per subscription, pick lane heads, record outcomes.

A lane is one subscription's deliveries of one aggregate (the event's aggregate type and id). A
lane goes out strictly in event order: only its oldest pending delivery (its head) may be sent,
and a head waiting for a retry holds its lane until it is delivered or dies. Lanes go out side by
side, so a subscription is not limited to one request at a time.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    Integer,
    String,
    Table,
    and_,
    bindparam,
    exists,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from zhongtai.core.clock import utcnow
from zhongtai.core.ids import new_id
from zhongtai.core.outbox import OutboxEvent
from zhongtai.integrations.handlers import PublishedEvent
from zhongtai.integrations.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from zhongtai.integrations.rules import backoff_seconds, subscription_matches
from zhongtai.integrations.secret_rotation import SealedSigningSecrets

# A literal, not a bound parameter: the planners of both engines use a partial index only when
# they can see that the query's condition is the index's.
_PENDING = literal_column(f"'{DeliveryStatus.PENDING.value}'", String())


# The queue's statements run on the session's connection, as Core: at hundreds of deliveries a
# second the ORM's per-statement work was a good part of the sender's CPU.
_DELIVERIES = cast(Table, WebhookDelivery.__table__)


def enqueue_deliveries(session: Session, events: Sequence[PublishedEvent]) -> int:
    """One pending delivery per (matching active subscription, event); returns how many."""
    if not events:
        return 0
    connection = session.connection()
    subscriptions = list(
        connection.execute(
            select(
                WebhookSubscription.id,
                WebhookSubscription.event_types,
                WebhookSubscription.store_ids,
            ).where(WebhookSubscription.active.is_(True))
        )
    )
    now = utcnow()
    rows = [
        {
            "id": new_id(),
            "subscription_id": sub_id,
            "event_id": event.id,
            "event_seq": event.seq,
            "event_type": event.type,
            "aggregate_type": event.aggregate_type,
            "aggregate_id": event.aggregate_id,
            "status": DeliveryStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for event in events
        for sub_id, types, stores in subscriptions
        if subscription_matches(
            types, stores, event.type, str(event.store_id) if event.store_id else None
        )
    ]
    if rows:
        connection.execute(insert(_DELIVERIES), rows)
    return len(rows)


@dataclass(frozen=True)
class DueDelivery:
    """The head of one lane (subscription x aggregate), ready to send."""

    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    url: str
    #: The subscription's signing secrets as stored (the sender opens them just before signing).
    secrets: SealedSigningSecrets
    attempts: int
    event: PublishedEvent


def due_deliveries(
    session: Session,
    *,
    in_flight: Mapping[uuid.UUID, uuid.UUID],
    per_subscription: int,
    limit: int,
) -> list[DueDelivery]:
    """Due lane heads of the active subscriptions, oldest event first.

    ``in_flight`` maps the deliveries being sent now to their subscriptions: they are not handed
    out again, they still hold their lanes, and they count against ``per_subscription`` (the
    lanes of one subscription sent at once). At most ``limit`` in all.
    """
    busy: dict[uuid.UUID, int] = {}
    for subscription_id in in_flight.values():
        busy[subscription_id] = busy.get(subscription_id, 0) + 1
    connection = session.connection()
    subscriptions = list(
        connection.execute(
            select(
                WebhookSubscription.id,
                WebhookSubscription.url,
                WebhookSubscription.secret_sealed,
                WebhookSubscription.previous_secret_sealed,
                WebhookSubscription.previous_secret_expires_at,
            ).where(WebhookSubscription.active.is_(True))
        )
    )
    # The least busy subscriptions choose first, so a subscription with a deep backlog does not
    # take every free slot.
    subscriptions.sort(key=lambda row: busy.get(row.id, 0))
    now = utcnow()
    due: list[DueDelivery] = []
    for sub_id, url, sealed, previous, previous_expires_at in subscriptions:
        room = min(per_subscription - busy.get(sub_id, 0), limit - len(due))
        if room <= 0:
            continue
        heads = connection.execute(
            _lane_heads(),
            {"subscription_id": sub_id, "now": now, "skip": list(in_flight), "room": room},
        )
        for row in heads:
            due.append(
                DueDelivery(
                    delivery_id=row.delivery_id,
                    subscription_id=sub_id,
                    url=url,
                    secrets=SealedSigningSecrets(sealed, previous, previous_expires_at),
                    attempts=row.attempts,
                    event=event_of_row(row),
                )
            )
    return due


@cache
def _lane_heads() -> Any:
    """A subscription's due pending deliveries with no older pending one in their lane.

    Walks the subscription's pending deliveries in event order and stops after ``room`` heads:
    with many lanes the first pending rows are mostly heads, so a deep backlog costs little.
    Built once, with parameters (``subscription_id``, ``now``, ``skip``, ``room``): the sender
    runs it many times a second, and building it each time cost more than running it.
    """
    delivery = WebhookDelivery
    older = aliased(WebhookDelivery)
    return (
        select(delivery.id.label("delivery_id"), delivery.attempts, *EVENT_COLUMNS)
        .join(OutboxEvent, OutboxEvent.id == delivery.event_id)
        .where(
            delivery.subscription_id == bindparam("subscription_id"),
            delivery.status == _PENDING,
            delivery.next_attempt_at <= bindparam("now"),
            delivery.id.not_in(bindparam("skip", expanding=True)),
            ~exists().where(
                and_(
                    older.subscription_id == delivery.subscription_id,
                    older.aggregate_type == delivery.aggregate_type,
                    older.aggregate_id == delivery.aggregate_id,
                    older.status == _PENDING,
                    older.event_seq < delivery.event_seq,
                )
            ),
        )
        .order_by(delivery.event_seq)
        .limit(bindparam("room", type_=Integer()))
    )


#: The outbox columns a :class:`PublishedEvent` is made of (see :func:`event_of_row`).
EVENT_COLUMNS = (
    OutboxEvent.seq,
    OutboxEvent.id,
    OutboxEvent.type,
    OutboxEvent.version,
    OutboxEvent.aggregate_type,
    OutboxEvent.aggregate_id,
    OutboxEvent.store_id,
    OutboxEvent.occurred_at,
    OutboxEvent.payload,
    OutboxEvent.request_id,
    OutboxEvent.actor,
)


def event_of_row(row: Any) -> PublishedEvent:
    """The event of a row selected with :data:`EVENT_COLUMNS` (and perhaps more)."""
    return PublishedEvent(
        seq=row.seq,
        id=row.id,
        type=row.type,
        version=row.version,
        aggregate_type=row.aggregate_type,
        aggregate_id=row.aggregate_id,
        store_id=row.store_id,
        occurred_at=row.occurred_at,
        payload=row.payload,
        request_id=row.request_id,
        actor=row.actor,
    )


@dataclass(frozen=True)
class AttemptOutcome:
    """How one attempt ended: ``error`` None means the receiver answered 2xx."""

    delivery_id: uuid.UUID
    attempts_before: int
    status_code: int | None
    error: str | None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    backoff_base: float
    backoff_cap: float


def record_outcomes(
    session: Session, outcomes: Sequence[AttemptOutcome], policy: RetryPolicy
) -> list[DeliveryStatus]:
    """Record many attempts in one statement; returns each delivery's status after it.

    A success is delivered; a failure is retried after backoff with jitter, or dead after the
    last attempt. Only pending deliveries change, so a late outcome cannot undo a re-drive.
    """
    if not outcomes:
        return []
    now = utcnow()
    rows: list[dict[str, Any]] = []
    statuses: list[DeliveryStatus] = []
    for outcome in outcomes:
        attempt = outcome.attempts_before + 1
        if outcome.error is None:
            status, next_at, delivered_at = DeliveryStatus.DELIVERED, now, now
        else:
            status = (
                DeliveryStatus.DEAD if attempt >= policy.max_attempts else DeliveryStatus.PENDING
            )
            delay = backoff_seconds(
                attempt,
                base=policy.backoff_base,
                cap=policy.backoff_cap,
                jitter=random.random(),  # noqa: S311 (spreading retries, not secrecy)
            )
            next_at, delivered_at = now + timedelta(seconds=delay), None
        statuses.append(status)
        rows.append(
            {
                "b_id": outcome.delivery_id,
                "b_status": status,
                "b_next": next_at,
                "b_delivered": delivered_at,
                "b_code": outcome.status_code,
                "b_error": None if outcome.error is None else outcome.error[:2000],
            }
        )
    table = _DELIVERIES
    session.connection().execute(
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.status == DeliveryStatus.PENDING)
        .values(
            status=bindparam("b_status"),
            attempts=table.c.attempts + 1,
            next_attempt_at=bindparam("b_next"),
            delivered_at=bindparam("b_delivered"),
            last_status_code=bindparam("b_code"),
            last_error=bindparam("b_error"),
            updated_at=now,
        ),
        rows,
    )
    return statuses
