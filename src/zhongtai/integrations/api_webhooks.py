"""HTTP endpoints of webhook subscriptions and deliveries (HQ): subscribe, rotate the secret,
deactivate and reactivate, list, re-drive."""

from __future__ import annotations

import uuid

from fastapi import Depends, Query, Request, status
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.http.deps import db_session
from zhongtai.core.http.routing import api_router, redact_on_replay
from zhongtai.core.http.security import require
from zhongtai.core.pagination import Page, PageParams, page_params
from zhongtai.integrations import webhooks
from zhongtai.integrations.models import DeliveryStatus
from zhongtai.integrations.schemas import (
    RedrivenStatus,
    RedriveResult,
    SecretRotation,
    WebhookDeliveryOut,
    WebhookSecretRotated,
    WebhookSubscriptionCreate,
    WebhookSubscriptionCreated,
    WebhookSubscriptionDeactivated,
    WebhookSubscriptionOut,
)
from zhongtai.integrations.sealed_secrets import SecretSealer
from zhongtai.integrations.settings import EventSettings, event_settings
from zhongtai.integrations.targets import TargetGuard

router = api_router(tags=["webhooks"])
MANAGE = Depends(require(Permission.WEBHOOKS_MANAGE))


def target_guard(events: EventSettings = Depends(event_settings)) -> TargetGuard:
    """Where subscriptions may point: public addresses, unless private targets are allowed."""
    return TargetGuard(allow_private=events.webhook_allow_private_targets)


def secret_sealer(request: Request) -> SecretSealer:
    """Seals signing secrets under the app's ZHONGTAI_SECRET_KEY (the sender opens them)."""
    return webhooks.webhook_secrets(request.app.state.settings)


@router.post(
    "/webhooks/subscriptions",
    response_model=WebhookSubscriptionCreated,
    status_code=status.HTTP_201_CREATED,
)
def create_subscription(
    request: Request,
    body: WebhookSubscriptionCreate,
    _: Principal = MANAGE,
    session: Session = Depends(db_session),
    guard: TargetGuard = Depends(target_guard),
    sealer: SecretSealer = Depends(secret_sealer),
) -> WebhookSubscriptionCreated:
    """Subscribe a URL to event types (and stores). The secret is in this response only.

    Each delivery is a POST of the event as JSON, signed in the `Zhongtai-Signature` header
    (see docs/webhooks.md for the format and a verification snippet). A URL that is not
    http(s), or whose host is on a loopback, private, link-local, multicast or reserved address,
    is refused (422) unless ZHONGTAI_WEBHOOK_ALLOW_PRIVATE_TARGETS is set.
    """
    redact_on_replay(request, "secret")
    subscription, secret = webhooks.create_subscription(
        session,
        url=body.url,
        event_types=body.event_types,
        guard=guard,
        sealer=sealer,
        store_ids=body.store_ids,
        secret=body.secret,
        description=body.description,
    )
    out = WebhookSubscriptionOut.model_validate(subscription).model_dump()
    return WebhookSubscriptionCreated(**out, secret=secret)


@router.get("/webhooks/subscriptions", response_model=Page[WebhookSubscriptionOut])
def list_subscriptions(
    _: Principal = MANAGE,
    page: PageParams = Depends(page_params),
    session: Session = Depends(db_session),
) -> Page[WebhookSubscriptionOut]:
    rows, cursor = webhooks.list_subscriptions(session, page)
    return Page(items=[WebhookSubscriptionOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "/webhooks/subscriptions/{subscription_id}/rotate-secret", response_model=WebhookSecretRotated
)
def rotate_secret(
    request: Request,
    subscription_id: uuid.UUID,
    body: SecretRotation | None = None,
    _: Principal = MANAGE,
    session: Session = Depends(db_session),
    sealer: SecretSealer = Depends(secret_sealer),
) -> WebhookSecretRotated:
    """Give the subscription a new signing secret, in this response only.

    For `overlap_seconds` (default 24 h, at most 7 days) each delivery's `Zhongtai-Signature`
    carries a second `v1=` signature under the old secret, so the receiver switches when it is
    ready. It also works when the old secret no longer opens (ZHONGTAI_SECRET_KEY changed):
    then the new secret signs alone at once. The subscription keeps its deliveries.
    """
    redact_on_replay(request, "secret")
    subscription, rolled = webhooks.rotate_secret(
        session,
        subscription_id,
        sealer=sealer,
        overlap_seconds=(body or SecretRotation()).overlap_seconds,
    )
    out = WebhookSubscriptionOut.model_validate(subscription).model_dump()
    return WebhookSecretRotated(**out, secret=rolled.secret)


@router.post(
    "/webhooks/subscriptions/{subscription_id}/deactivate",
    response_model=WebhookSubscriptionDeactivated,
)
def deactivate_subscription(
    subscription_id: uuid.UUID, _: Principal = MANAGE, session: Session = Depends(db_session)
) -> WebhookSubscriptionDeactivated:
    """Stop sending to this subscription. Its pending deliveries end as `cancelled` (with a
    `cancel_reason`); an attempt already under way finishes, and is `delivered` if it gets
    through. Audited. Deactivating an inactive subscription changes nothing."""
    deactivated = webhooks.deactivate_subscription(session, subscription_id)
    out = WebhookSubscriptionOut.model_validate(deactivated.subscription).model_dump()
    return WebhookSubscriptionDeactivated(**out, cancelled_deliveries=deactivated.cancelled)


@router.post(
    "/webhooks/subscriptions/{subscription_id}/reactivate", response_model=WebhookSubscriptionOut
)
def reactivate_subscription(
    subscription_id: uuid.UUID, _: Principal = MANAGE, session: Session = Depends(db_session)
) -> WebhookSubscriptionOut:
    """Send to this subscription again: the events published from now on. Its cancelled (and
    dead) deliveries are sent again only when re-driven. Audited. Reactivating an active
    subscription changes nothing."""
    return WebhookSubscriptionOut.model_validate(
        webhooks.reactivate_subscription(session, subscription_id)
    )


@router.post("/webhooks/subscriptions/{subscription_id}/redrive", response_model=RedriveResult)
def redrive_subscription(
    subscription_id: uuid.UUID,
    redriven: RedrivenStatus = Query(RedrivenStatus.DEAD, alias="status"),
    _: Principal = MANAGE,
    session: Session = Depends(db_session),
) -> RedriveResult:
    """Send every dead delivery of this subscription again (`?status=cancelled`: every
    cancelled one). 409 while the subscription is inactive: reactivate it first."""
    count = webhooks.redrive_all(session, subscription_id, DeliveryStatus(redriven.value))
    return RedriveResult(redriven=count)


@router.get("/webhooks/deliveries", response_model=Page[WebhookDeliveryOut])
def list_deliveries(
    subscription_id: uuid.UUID | None = Query(None),
    delivery_status: DeliveryStatus | None = Query(None, alias="status"),
    _: Principal = MANAGE,
    page: PageParams = Depends(page_params),
    session: Session = Depends(db_session),
) -> Page[WebhookDeliveryOut]:
    """Deliveries, e.g. `?status=dead` for the dead letters of every subscription."""
    rows, cursor = webhooks.list_deliveries(
        session, page, subscription_id=subscription_id, status=delivery_status
    )
    return Page(items=[WebhookDeliveryOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post("/webhooks/deliveries/{delivery_id}/redrive", response_model=WebhookDeliveryOut)
def redrive_delivery(
    delivery_id: uuid.UUID, _: Principal = MANAGE, session: Session = Depends(db_session)
) -> WebhookDeliveryOut:
    """Send a dead or cancelled delivery again (409 unless it is one, or while its subscription
    is inactive)."""
    return WebhookDeliveryOut.model_validate(webhooks.redrive_delivery(session, delivery_id))
