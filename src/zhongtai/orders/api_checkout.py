"""HTTP endpoints of checkout: quote a basket (price, store, promise, held stock), release a
quote, and place the order of a quote.

The busiest routes of the chain: app.py includes this router first. Their effects all lie in
the request's transaction, so their Idempotency-Keys are bound at commit (one statement fewer),
and quote and place commit on the endpoint's thread (:func:`respond_now`). They take the session
and settings from the request rather than as dependencies: fewer for FastAPI to solve.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Depends, Request, Response, status
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.errors import Forbidden
from zhongtai.core.http.deps import app_settings, db_session, request_session
from zhongtai.core.http.routing import api_router, idempotent_at_commit, respond_now
from zhongtai.members.pii import cipher_for
from zhongtai.members.rules import mask_phone
from zhongtai.orders import checkout, placing
from zhongtai.orders.api_common import PLACE, customers, sales_channel
from zhongtai.orders.models import Quote
from zhongtai.orders.schemas import OrderOut, PlaceOrderIn, QuoteIn, QuoteOut

router = api_router(tags=["orders"])


@router.post("/checkout/quotes", response_model=QuoteOut, status_code=status.HTTP_201_CREATED)
@idempotent_at_commit
def create_quote(body: QuoteIn, request: Request, principal: Principal = PLACE) -> Any:
    """Price a basket for a fulfilment type, choose the store (the answer explains why, for
    every candidate), promise when it is ready or at the door, and hold its stock until the
    quote expires. 409 ``no-store-can-fulfil`` with the verdicts when no store can."""
    quote = checkout.quote_checkout(
        request_session(request),
        checkout.QuoteRequest(
            channel=sales_channel(principal, body.channel),
            fulfillment_type=body.fulfillment_type,
            lines=[x.line() for x in body.lines],
            services=tuple(body.services),
            address=body.address.address() if body.address else None,
            store_id=body.store_id,
            member_id=body.member_id,
            coupon_ids=body.coupon_ids,
        ),
        caller=principal,
    )
    return respond_now(request, QuoteOut, customers(request, quote), status.HTTP_201_CREATED)


def _own_quote(session: Session, principal: Principal, quote_id: uuid.UUID) -> Quote:
    """A channel key reads and lets go only its own channel's quotes, as it places only those:
    a quote holds another channel's customer's address and stock."""
    quote = checkout.get_quote(session, quote_id)
    if not placing.same_channel(principal, quote.channel):
        raise Forbidden(
            f"Quote {quote.id} was made for the {quote.channel.value} channel.",
            quote_id=str(quote.id),
        )
    return quote


@router.get("/checkout/quotes/{quote_id}", response_model=QuoteOut)
def get_quote(
    quote_id: uuid.UUID, principal: Principal = PLACE, session: Session = Depends(db_session)
) -> Any:
    return _own_quote(session, principal, quote_id)


@router.delete("/checkout/quotes/{quote_id}", status_code=status.HTTP_204_NO_CONTENT)
def release_quote(
    quote_id: uuid.UUID, principal: Principal = PLACE, session: Session = Depends(db_session)
) -> Response:
    """The customer left the checkout: the held stock and coupons are available again at once,
    and the quote can no longer be placed."""
    checkout.release_quote(session, _own_quote(session, principal, quote_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/orders",
    response_model=OrderOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "Placed before (same quote or channel order id)."}},
)
@idempotent_at_commit
def place_order(body: PlaceOrderIn, request: Request, principal: Principal = PLACE) -> Any:
    """Place the order of a quote. Idempotent by quote, by ``channel_order_id`` and by the
    Idempotency-Key. Unpaid orders are cancelled when their quote's hold ends. A ``guide_id``
    must name a guide of the chain who has not left (422 on ``guide_id`` otherwise)."""
    sealed = masked = None
    if body.contact_phone:
        sealed = cipher_for(app_settings(request)).encrypt(
            body.contact_phone, purpose="order_contact"
        )
        masked = mask_phone(body.contact_phone)
    placed = placing.place_order(
        request_session(request),
        placing.PlaceOrder(
            quote_id=body.quote_id,
            channel_order_id=body.channel_order_id,
            contact_name=body.contact_name,
            contact_phone_masked=masked,
            contact_phone_sealed=sealed,
            note=body.note,
            substitution=body.substitution,
            guide_id=body.guide_id,
            address_text=body.address_text,
        ),
        caller=principal,
    )
    created = status.HTTP_201_CREATED if placed.created else status.HTTP_200_OK
    return respond_now(request, OrderOut, customers(request, placed.order), created)
