"""Webhook subscriptions and their deliveries: the use cases behind the HQ webhook endpoints.

Where webhooks may go is decided by :mod:`targets`, how their signing secrets are kept by
:mod:`sealed_secrets` (both shared with marketplace stock pushes)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, InvalidInput, NotFound
from zhongtai.core.ids import new_id
from zhongtai.core.outbox import EVENT_TYPES
from zhongtai.core.pagination import PageParams, paginate
from zhongtai.core.settings import Settings
from zhongtai.integrations.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from zhongtai.integrations.sealed_secrets import SecretSealer, sealer_for
from zhongtai.integrations.secret_rotation import (
    DEFAULT_OVERLAP_SECONDS,
    RolledSecret,
    check_overlap,
    rotate_row_secret,
)
from zhongtai.integrations.targets import TargetGuard, TargetRefused


def webhook_secrets(settings: Settings) -> SecretSealer:
    """The sealer of subscriptions' signing secrets for this deployment's ZHONGTAI_SECRET_KEY."""
    return sealer_for(
        settings,
        purpose=b"zhongtai/webhooks/secret/v1",
        remedy="rotate the subscription's secret (POST .../rotate-secret) to sign with a new one",
    )


def _check_event_types(event_types: Sequence[str]) -> None:
    unknown = sorted(set(event_types) - EVENT_TYPES.keys())
    if unknown:
        raise InvalidInput.field(
            "event_types",
            f"unknown event types {unknown}; the catalogue is docs/events.md",
        )


def create_subscription(
    session: Session,
    *,
    url: str,
    event_types: Sequence[str],
    guard: TargetGuard,
    sealer: SecretSealer,
    store_ids: Sequence[uuid.UUID] | None = None,
    secret: str | None = None,
    description: str = "",
) -> tuple[WebhookSubscription, str]:
    """Subscribe ``url`` to events; returns the subscription and its signing secret.

    ``guard`` refuses URLs webhooks may not go to (422 naming ``url``); the secret is stored
    sealed by ``sealer``, so the caller sees it in clear this once only.
    """
    _check_event_types(event_types)
    try:
        guard.check(url)  # last: it may ask DNS
    except TargetRefused as refused:
        raise InvalidInput.field("url", str(refused)) from None
    secret = secret or f"whsec_{secrets.token_urlsafe(32)}"
    subscription_id = new_id()
    subscription = WebhookSubscription(
        id=subscription_id,
        url=url,
        description=description,
        event_types=sorted(set(event_types)),
        store_ids=None if store_ids is None else sorted({str(s) for s in store_ids}),
        secret_sealed=sealer.seal(subscription_id, secret),
        active=True,
    )
    session.add(subscription)
    session.flush()
    return subscription, secret


def get_subscription(session: Session, subscription_id: uuid.UUID) -> WebhookSubscription:
    subscription = session.get(WebhookSubscription, subscription_id)
    if subscription is None:
        raise NotFound(f"No webhook subscription {subscription_id}.")
    return subscription


def rotate_secret(
    session: Session,
    subscription_id: uuid.UUID,
    *,
    sealer: SecretSealer,
    overlap_seconds: int = DEFAULT_OVERLAP_SECONDS,
) -> tuple[WebhookSubscription, RolledSecret]:
    """Give a subscription a new signing secret; the caller sees it in clear this once.

    For ``overlap_seconds`` deliveries are signed with the old secret too, so the receiver can
    switch when it is ready. An old secret that does not open (ZHONGTAI_SECRET_KEY changed) is
    dropped, with no overlap: that is how a subscription recovers from a lost key, keeping its
    deliveries and lanes. The row is locked, so two rotations at once happen one after the other.
    """
    check_overlap(overlap_seconds)
    subscription = session.get(WebhookSubscription, subscription_id, with_for_update=True)
    if subscription is None:
        raise NotFound(f"No webhook subscription {subscription_id}.")
    rolled = rotate_row_secret(
        session,
        subscription,
        subscription_id,
        sealer=sealer,
        prefix="whsec_",
        overlap_seconds=overlap_seconds,
        entity_type="webhook_subscription",
    )
    return subscription, rolled


def list_subscriptions(
    session: Session, page: PageParams
) -> tuple[list[WebhookSubscription], str | None]:
    return paginate(session, select(WebhookSubscription), [WebhookSubscription.id], page)


def deactivate_subscription(session: Session, subscription_id: uuid.UUID) -> WebhookSubscription:
    """Stop delivering to a subscription (its pending deliveries wait; nothing is sent)."""
    subscription = get_subscription(session, subscription_id)
    session.execute(
        update(WebhookSubscription)
        .where(WebhookSubscription.id == subscription_id)
        .values(active=False, updated_at=utcnow())
    )
    session.refresh(subscription)
    return subscription


def list_deliveries(
    session: Session,
    page: PageParams,
    *,
    subscription_id: uuid.UUID | None = None,
    status: DeliveryStatus | None = None,
) -> tuple[list[WebhookDelivery], str | None]:
    stmt = select(WebhookDelivery)
    if subscription_id is not None:
        stmt = stmt.where(WebhookDelivery.subscription_id == subscription_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    return paginate(session, stmt, [WebhookDelivery.id], page)


def redrive_delivery(session: Session, delivery_id: uuid.UUID) -> WebhookDelivery:
    """Send a dead delivery again from a fresh attempt count; 409 unless it is dead."""
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == DeliveryStatus.DEAD)
        .values(
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=utcnow(),
            updated_at=utcnow(),
        )
    )
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound(f"No webhook delivery {delivery_id}.")
    if not result.rowcount:  # type: ignore[attr-defined]
        raise Conflict(
            f"Delivery {delivery_id} is {delivery.status.value}; only dead ones are re-driven.",
            delivery_status=delivery.status.value,
        )
    session.refresh(delivery)
    return delivery


def redrive_dead(session: Session, subscription_id: uuid.UUID) -> int:
    """Send every dead delivery of a subscription again; returns how many."""
    get_subscription(session, subscription_id)
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.subscription_id == subscription_id,
            WebhookDelivery.status == DeliveryStatus.DEAD,
        )
        .values(
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=utcnow(),
            updated_at=utcnow(),
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
