"""Webhook delivery lanes: enqueue events per subscription, find the lane heads due to be sent.

A lane is one subscription's deliveries of one aggregate (the event's aggregate type and id). A
lane goes out strictly in event order: only its oldest pending delivery (its head) may be sent,
and a head waiting for a retry holds its lane until it is delivered or dies. Lanes go out side by
side, so a subscription is not limited to one request at a time, but a lane never has two
attempts in flight: a lane with a claimed delivery (:mod:`webhook_attempts`, which claims heads
and records how their attempts ended) has no head due until that attempt has ended.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
)
from sqlalchemy.orm import Session, aliased

from zhongtai.core.clock import utcnow
from zhongtai.core.ids import new_id
from zhongtai.core.outbox import OutboxEvent
from zhongtai.integrations.handlers import PublishedEvent
from zhongtai.integrations.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from zhongtai.integrations.rules import subscription_matches
from zhongtai.integrations.secret_rotation import SealedSigningSecrets

# A literal, not a bound parameter: the planners of both engines use a partial index only when
# they can see that the query's condition is the index's.
PENDING = literal_column(f"'{DeliveryStatus.PENDING.value}'", String())


# The queue's statements run on the session's connection, as Core: at hundreds of deliveries a
# second the ORM's per-statement work was a good part of the sender's CPU.
DELIVERIES = cast(Table, WebhookDelivery.__table__)


def enqueue_deliveries(session: Session, events: Sequence[PublishedEvent]) -> int:
    """One pending delivery per (matching active subscription, event); returns how many.

    The active subscriptions are key-share locked until the caller commits (PostgreSQL), as the
    deliveries' foreign key would lock them anyway: a deactivation, which locks its subscription
    for update, waits for this transaction and then cancels what it queued, or is waited for and
    leaves its subscription out. Either way no delivery is left pending for an inactive one.
    """
    if not events:
        return 0
    connection = session.connection()
    subscriptions = list(
        connection.execute(
            select(
                WebhookSubscription.id,
                WebhookSubscription.event_types,
                WebhookSubscription.store_ids,
            )
            .where(WebhookSubscription.active.is_(True))
            .with_for_update(read=True, key_share=True)
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
        connection.execute(insert(DELIVERIES), rows)
    return len(rows)


@dataclass(frozen=True)
class DueDelivery:
    """The head of one lane (subscription x aggregate), ready to send."""

    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    url: str
    #: The subscription's signing secrets as stored (the sender opens them just before signing).
    secrets: SealedSigningSecrets
    #: Attempts counted before this one.
    attempts: int
    event: PublishedEvent
    #: The claim this attempt is made under (``webhook_attempts.claim_deliveries``); None while
    #: it is only a candidate.
    claim_id: uuid.UUID | None = None

    @property
    def lane(self) -> tuple[uuid.UUID, str, str]:
        """The subscription and aggregate whose events go out one at a time, in order."""
        return (self.subscription_id, self.event.aggregate_type, self.event.aggregate_id)


def due_deliveries(
    session: Session,
    *,
    in_flight: Mapping[uuid.UUID, uuid.UUID],
    per_subscription: int,
    limit: int,
) -> list[DueDelivery]:
    """Due lane heads of the active subscriptions, oldest event first: the candidates to claim
    (read only; :func:`webhook_attempts.claim_deliveries` makes sure of each before it is sent).

    A lane with an attempt in flight (a live claim, whichever sender made it) has no due head.
    ``in_flight`` maps the deliveries this sender is sending now to their subscriptions: they are
    not handed out again, and they count against ``per_subscription`` (the lanes of one
    subscription sent at once). At most ``limit`` in all.
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
    """A subscription's due pending deliveries with no older pending one in their lane, and no
    attempt in flight there (a claim that has not lapsed, of a delivery in any status: one
    cancelled while in flight holds its lane until its attempt ends).

    Walks the subscription's pending deliveries in event order and stops after ``room`` heads:
    with many lanes the first pending rows are mostly heads, so a deep backlog costs little.
    Built once, with parameters (``subscription_id``, ``now``, ``skip``, ``room``): the sender
    runs it many times a second, and building it each time cost more than running it.
    """
    delivery = WebhookDelivery
    older = aliased(WebhookDelivery)
    claimed = aliased(WebhookDelivery)
    return (
        select(delivery.id.label("delivery_id"), delivery.attempts, *EVENT_COLUMNS)
        .join(OutboxEvent, OutboxEvent.id == delivery.event_id)
        .where(
            delivery.subscription_id == bindparam("subscription_id"),
            delivery.status == PENDING,
            delivery.next_attempt_at <= bindparam("now"),
            delivery.id.not_in(bindparam("skip", expanding=True)),
            ~exists().where(
                and_(
                    older.subscription_id == delivery.subscription_id,
                    older.aggregate_type == delivery.aggregate_type,
                    older.aggregate_id == delivery.aggregate_id,
                    older.status == PENDING,
                    older.event_seq < delivery.event_seq,
                )
            ),
            ~exists().where(
                and_(
                    claimed.subscription_id == delivery.subscription_id,
                    claimed.aggregate_type == delivery.aggregate_type,
                    claimed.aggregate_id == delivery.aggregate_id,
                    claimed.claim_id.is_not(None),
                    claimed.next_attempt_at > bindparam("now"),
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
