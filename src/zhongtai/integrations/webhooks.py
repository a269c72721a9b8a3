"""Webhook subscriptions and their deliveries: the use cases behind the HQ webhook endpoints.

Where webhooks may go is decided by :mod:`targets`, how their signing secrets are kept by
:mod:`sealed_secrets` (both shared with marketplace stock pushes)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from zhongtai.core.audit import record_audit
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


#: The ``cancel_reason`` of the deliveries a deactivation ends.
DEACTIVATED = "the subscription was deactivated"
#: The statuses an operator re-drives: a delivery that ended without getting through.
REDRIVABLE = (DeliveryStatus.DEAD, DeliveryStatus.CANCELLED)


@dataclass(frozen=True)
class Deactivated:
    subscription: WebhookSubscription
    #: How many pending deliveries it ended (cancelled).
    cancelled: int


def _locked(
    session: Session, subscription_id: uuid.UUID, *, share: bool = False
) -> WebhookSubscription:
    """The subscription, locked until the transaction ends (on PostgreSQL): for update, or
    ``share``-d (key share: a deactivation waits for it, as it waits for a deactivation)."""
    subscription = session.scalars(
        select(WebhookSubscription)
        .where(WebhookSubscription.id == subscription_id)
        .with_for_update(read=share, key_share=share)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if subscription is None:
        raise NotFound(f"No webhook subscription {subscription_id}.")
    return subscription


def deactivate_subscription(session: Session, subscription_id: uuid.UUID) -> Deactivated:
    """Stop delivering to a subscription and end its pending deliveries (cancelled, with the
    reason), so that nothing waits for a subscription that sends nothing and no lane stays held.

    An attempt in flight finishes: if it gets through, its delivery is delivered after all;
    either way it holds its lane until it has ended. The subscription is locked for update
    first: the relay's enqueueing, a re-drive and the sender's claims of it key-share or
    no-key-update lock it, so each runs wholly before this (whose later statements then see its
    rows) or after (and sees the subscription inactive). Audited when it changes anything.
    """
    subscription = _locked(session, subscription_id)
    was_active = subscription.active
    now = utcnow()
    if was_active:
        subscription.active = False
        subscription.updated_at = now
        session.flush()
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.subscription_id == subscription_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        .values(status=DeliveryStatus.CANCELLED, cancel_reason=DEACTIVATED, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    cancelled = int(result.rowcount)  # type: ignore[attr-defined]
    if was_active or cancelled:
        record_audit(
            session,
            "webhook_subscription.deactivated",
            "webhook_subscription",
            subscription_id,
            {"active": was_active},
            {"active": False, "cancelled_deliveries": cancelled},
        )
    return Deactivated(subscription, cancelled)


def reactivate_subscription(session: Session, subscription_id: uuid.UUID) -> WebhookSubscription:
    """Deliver to a deactivated subscription again: the events published from now on. What was
    cancelled stays cancelled unless an operator re-drives it. Audited; an active subscription
    is left as it is."""
    subscription = _locked(session, subscription_id)
    if not subscription.active:
        subscription.active = True
        subscription.updated_at = utcnow()
        session.flush()
        record_audit(
            session,
            "webhook_subscription.reactivated",
            "webhook_subscription",
            subscription_id,
            {"active": False},
            {"active": True},
        )
    return subscription


def _require_active(session: Session, subscription_id: uuid.UUID) -> None:
    """409 unless the subscription is active: a delivery re-driven for an inactive one would
    wait for nothing. Key-share locks it, so no deactivation slips in before the commit."""
    if not _locked(session, subscription_id, share=True).active:
        raise Conflict(
            f"Webhook subscription {subscription_id} is inactive; reactivate it "
            "(POST .../reactivate) before re-driving its deliveries.",
            subscription_active=False,
        )


def _redrive_values() -> dict[str, object]:
    """A re-driven delivery starts again: a fresh attempt count, due now, no claim or reason."""
    now = utcnow()
    return {
        "status": DeliveryStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "claim_id": None,
        "cancel_reason": None,
        "updated_at": now,
    }


def _not_in_flight() -> ColumnElement[bool]:
    """A delivery cancelled while its attempt was in flight is not re-driven until that attempt
    has ended (or its claim lapsed): its lane would have two requests open."""
    return or_(WebhookDelivery.claim_id.is_(None), WebhookDelivery.next_attempt_at <= utcnow())


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
    """Send a dead or cancelled delivery again from a fresh attempt count: it becomes its lane's
    head again (before the lane's pending deliveries, after an attempt in flight). 409 unless it
    is dead or cancelled (and its attempt, if one was in flight, has ended), or if its
    subscription is inactive."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound(f"No webhook delivery {delivery_id}.")
    _require_active(session, delivery.subscription_id)
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status.in_(REDRIVABLE),
            _not_in_flight(),
        )
        .values(_redrive_values())
        .execution_options(synchronize_session=False)
    )
    session.refresh(delivery)
    if not result.rowcount:  # type: ignore[attr-defined]
        if delivery.status in REDRIVABLE:
            raise Conflict(
                f"Delivery {delivery_id} is {delivery.status.value} but its last attempt is "
                "still in flight; re-drive it once that has ended.",
                delivery_status=delivery.status.value,
            )
        raise Conflict(
            f"Delivery {delivery_id} is {delivery.status.value}; only dead or cancelled ones "
            "are re-driven.",
            delivery_status=delivery.status.value,
        )
    return delivery


def redrive_all(
    session: Session, subscription_id: uuid.UUID, status: DeliveryStatus = DeliveryStatus.DEAD
) -> int:
    """Send every dead (or every cancelled) delivery of a subscription again; returns how many.
    409 if the subscription is inactive."""
    if status not in REDRIVABLE:
        raise InvalidInput.field("status", "only dead or cancelled deliveries are re-driven")
    _require_active(session, subscription_id)
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.subscription_id == subscription_id,
            WebhookDelivery.status == status,
            _not_in_flight(),
        )
        .values(_redrive_values())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def redrive_dead(session: Session, subscription_id: uuid.UUID) -> int:
    """Send every dead delivery of a subscription again; returns how many."""
    return redrive_all(session, subscription_id, DeliveryStatus.DEAD)
