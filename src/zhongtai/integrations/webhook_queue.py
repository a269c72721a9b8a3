"""Webhook delivery queues: enqueue events per subscription, pick due work, record outcomes."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.orm import Session, aliased

from zhongtai.core.clock import utcnow
from zhongtai.core.ids import new_id
from zhongtai.core.outbox import OutboxEvent
from zhongtai.integrations.handlers import PublishedEvent
from zhongtai.integrations.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from zhongtai.integrations.rules import backoff_seconds, subscription_matches


def enqueue_deliveries(session: Session, events: Sequence[PublishedEvent]) -> int:
    """One pending delivery per (matching active subscription, event); returns how many."""
    if not events:
        return 0
    subscriptions = list(
        session.execute(
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
        session.execute(insert(WebhookDelivery), rows)
    return len(rows)


@dataclass(frozen=True)
class DueDelivery:
    """The head of one subscription's queue, ready to send."""

    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    url: str
    secret: str
    attempts: int
    event: PublishedEvent


def due_deliveries(session: Session, *, busy: Sequence[uuid.UUID], limit: int) -> list[DueDelivery]:
    """For each active subscription not busy, its oldest pending delivery if it is due now.

    Deliveries of a subscription go out one at a time in event order, so a receiver sees an
    aggregate's events in order; a failing head waits for its retry (or dies) before the next.
    """
    head = aliased(WebhookDelivery)
    oldest = (
        select(head.subscription_id, func.min(head.event_seq).label("seq"))
        .where(head.status == DeliveryStatus.PENDING)
        .group_by(head.subscription_id)
        .subquery()
    )
    stmt = (
        select(WebhookDelivery, WebhookSubscription, OutboxEvent)
        .join(
            oldest,
            and_(
                oldest.c.subscription_id == WebhookDelivery.subscription_id,
                oldest.c.seq == WebhookDelivery.event_seq,
            ),
        )
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= utcnow(),
            WebhookSubscription.active.is_(True),
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    if busy:
        stmt = stmt.where(WebhookDelivery.subscription_id.not_in(list(busy)))
    return [
        DueDelivery(
            delivery_id=d.id,
            subscription_id=s.id,
            url=s.url,
            secret=s.secret,
            attempts=d.attempts,
            event=PublishedEvent.of(e),
        )
        for d, s, e in session.execute(stmt)
    ]


def record_success(session: Session, delivery_id: uuid.UUID, status_code: int) -> None:
    now = utcnow()
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == DeliveryStatus.PENDING)
        .values(
            status=DeliveryStatus.DELIVERED,
            attempts=WebhookDelivery.attempts + 1,
            delivered_at=now,
            last_status_code=status_code,
            last_error=None,
            updated_at=now,
        )
    )


def record_failure(
    session: Session,
    delivery_id: uuid.UUID,
    *,
    attempts_before: int,
    status_code: int | None,
    error: str,
    max_attempts: int,
    backoff_base: float,
    backoff_cap: float,
) -> DeliveryStatus:
    """Count the failed attempt; schedule the retry with backoff, or mark the delivery dead."""
    attempt = attempts_before + 1
    now = utcnow()
    dead = attempt >= max_attempts
    delay = backoff_seconds(attempt, base=backoff_base, cap=backoff_cap, jitter=random.random())  # noqa: S311 (spreading retries, not secrecy)
    status = DeliveryStatus.DEAD if dead else DeliveryStatus.PENDING
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == DeliveryStatus.PENDING)
        .values(
            status=status,
            attempts=WebhookDelivery.attempts + 1,
            next_attempt_at=now + timedelta(seconds=delay),
            last_status_code=status_code,
            last_error=error[:2000],
            updated_at=now,
        )
    )
    return status
