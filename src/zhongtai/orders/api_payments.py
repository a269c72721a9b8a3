"""HTTP endpoints of paying for an order: start a payment (a wallet, or the member's points),
take the providers' signed notifications, and, in the sandbox, play the customer approving.

Included after the orders router: ``/orders/{order_id}/payments`` is read there (GET) and
started here (POST), and a wrong method keeps answering with the reading route's 405.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Depends, Request, Response, status
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.errors import InvalidInput, NotFound
from zhongtai.core.http.deps import app_settings, db_session
from zhongtai.core.http.routing import api_router, request_body
from zhongtai.core.settings import Settings
from zhongtai.orders import payment_notifications, payments
from zhongtai.orders.api_common import PLACE, callback_url, ensure_may_see, providers_of
from zhongtai.orders.kinds import TenderType
from zhongtai.orders.lifecycle import get_order
from zhongtai.orders.schemas import PaymentIn, StartedPaymentOut

router = api_router(tags=["orders"])


@router.post(
    "/orders/{order_id}/payments",
    response_model=StartedPaymentOut,
    status_code=status.HTTP_201_CREATED,
)
def pay_order(
    order_id: uuid.UUID,
    body: PaymentIn,
    request: Request,
    principal: Principal = PLACE,
    session: Session = Depends(db_session),
    settings: Settings = Depends(app_settings),
) -> Any:
    """Pay (part of) an order online. A wallet answers ``pending`` with the ``customer_action``
    to show; the provider's signed notification completes it and the order becomes paid.
    ``{"tender": "points", "points": N}`` pays part with the member's points, at once."""
    ensure_may_see(principal, get_order(session, order_id))
    if body.tender is TenderType.POINTS:
        if body.points is None:
            raise InvalidInput.field("points", "how many points to pay with")
        return StartedPaymentOut.model_validate(
            payments.pay_with_points(session, order_id, body.points)
        )
    providers = providers_of(request)
    provider = providers.payments.get(body.provider)
    if provider is None:  # the caller's choice, so a bad request naming it rather than a 404
        configured = ", ".join(sorted(providers.payments)) or "none"
        raise InvalidInput.field("provider", f"one of the configured providers: {configured}")
    started = payments.start_payment(
        session,
        order_id,
        tender=body.tender,
        amount=body.amount,
        provider=provider,
        notify_url=callback_url(request, settings, f"/payments/notifications/{body.provider}"),
        providers=providers.payments,
    )
    out = StartedPaymentOut.model_validate(started.payment)
    out.customer_action = started.customer_action
    return out


@router.post("/payments/notifications/{provider}", status_code=status.HTTP_204_NO_CONTENT)
def payment_notification(
    provider: str,
    request: Request,
    body: bytes = Depends(request_body),
    session: Session = Depends(db_session),
) -> Response:
    """Where payment providers call back (signed; see docs/orders.md). Repeated and stale
    notifications change nothing; the answer is 204 either way so the provider stops."""
    providers = providers_of(request)
    payment_notifications.apply_notification(
        session,
        providers.payment(provider),
        dict(request.headers),
        body,
        providers=providers.payments,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/sandbox/payments/{provider_ref}/confirm", status_code=status.HTTP_204_NO_CONTENT)
def sandbox_customer_confirms(
    provider_ref: str, request: Request, principal: Principal = PLACE
) -> Response:
    """Sandbox only: play the customer approving a pending wallet payment in WeChat/Alipay.
    The sandbox then calls back (signed) and the order becomes paid."""
    gateway = providers_of(request).payment("sandbox")
    confirm = getattr(gateway, "customer_confirms", None)
    if confirm is None:
        raise NotFound("The sandbox payment gateway is not running here.")
    confirm(provider_ref)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
