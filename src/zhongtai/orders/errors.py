"""Errors of the orders context with their own stable problem types."""

from __future__ import annotations

from zhongtai.core.errors import Conflict, DomainError


class IllegalOrderStep(Conflict):
    """The order's state machine does not allow this step from where the order is."""

    slug = "illegal-order-step"
    title = "Not allowed in the order's current status"


class NoStoreCanFulfil(Conflict):
    """Sourcing found no store that can fulfil the basket; the decision explains each store."""

    slug = "no-store-can-fulfil"
    title = "No store can fulfil this basket"


class QuoteExpired(Conflict):
    slug = "quote-expired"
    title = "The quote expired; ask for a new one"


class PaymentMismatch(DomainError):
    """Tenders that do not add up to what is due, or a refund beyond what was paid."""

    slug = "payment-mismatch"
    status = 422
    title = "The tenders do not match the amount due"


class WrongPickupCode(DomainError):
    slug = "wrong-pickup-code"
    status = 422
    title = "The pickup code does not match this order"
