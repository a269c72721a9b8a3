"""Tables of orders: checkout quotes, orders and their lines, status timeline, payments, refunds,
returns, and the POS receipt counters."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from zhongtai.core.clock import utcnow
from zhongtai.core.db import Base, IdMixin, TimestampMixin, str_enum
from zhongtai.orders.kinds import (
    PICKING_BACKLOG_SQL,
    FulfillmentType,
    LineKind,
    OrderStatus,
    SalesChannel,
    SubstitutionPreference,
    TenderType,
)


class Quote(IdMixin, TimestampMixin, Base):
    """A priced basket with its sourcing decision and promise, stock held until ``expires_at``.

    Placing the order turns the quote's holds into the order's; a quote is used at most once.
    """

    __tablename__ = "checkout_quotes"

    channel: Mapped[SalesChannel] = mapped_column(str_enum(SalesChannel, length=16))
    fulfillment_type: Mapped[FulfillmentType] = mapped_column(str_enum(FulfillmentType, length=16))
    # Indexed for a member's merge, which moves her quotes to the survivor.
    member_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("members.id"), index=True)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"))
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[int]
    discount_total: Mapped[int] = mapped_column(default=0)
    delivery_fee: Mapped[int] = mapped_column(default=0)
    total: Mapped[int]
    #: Lines as priced: sku_id, kind, service, location_id, quantity, unit_price, price_per,
    #: amount, discount, net_amount (JSON; the order copies them into order_lines).
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    address: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: The sourcing decision with every candidate's verdict, as shown to the caller.
    sourcing: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Promotions and coupons: each one's verdict, and the coupons used with their amounts.
    offers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    promised_ready_at: Mapped[datetime | None]
    promised_by: Mapped[datetime | None]
    #: Reservation ids (one per fulfilling location).
    reservation_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    expires_at: Mapped[datetime]
    order_id: Mapped[uuid.UUID | None] = mapped_column(
        unique=True, doc="Set when an order was placed from this quote."
    )
    actor: Mapped[str | None] = mapped_column(String(80))


class Order(IdMixin, TimestampMixin, Base):
    """One order of any channel and fulfilment type: a POS sale, a delivery, a pickup, ..."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("channel", "channel_order_id"),
        Index("ix_orders_store_status", "store_id", "status"),
        # Only the open orders a store still has to pick: small whatever the order history.
        Index(
            "ix_orders_store_backlog",
            "store_id",
            sqlite_where=text(PICKING_BACKLOG_SQL),
            postgresql_where=text(PICKING_BACKLOG_SQL),
        ),
        Index("ix_orders_member", "member_id", "placed_at"),
        Index("ix_orders_unpaid_expiry", "status", "payment_due_at"),
        # The promise clock looks for orders still under way past their delivery promise.
        Index("ix_orders_delivery_promise", "status", "promised_by"),
        CheckConstraint("total >= 0", name="total_not_negative"),
        CheckConstraint("paid_amount >= 0 AND refunded_amount >= 0", name="money_not_negative"),
        CheckConstraint("refunded_amount <= paid_amount", name="refund_within_paid"),
    )

    number: Mapped[str] = mapped_column(String(40), unique=True)
    channel: Mapped[SalesChannel] = mapped_column(str_enum(SalesChannel, length=16))
    channel_order_id: Mapped[str | None] = mapped_column(
        String(128), doc="The channel's own order id (marketplace, app), unique per channel."
    )
    fulfillment_type: Mapped[FulfillmentType] = mapped_column(str_enum(FulfillmentType, length=16))
    status: Mapped[OrderStatus] = mapped_column(
        str_enum(OrderStatus, length=24), default=OrderStatus.CREATED
    )
    store_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("locations.id"), doc="The store that sells, hands over or dispatches."
    )
    member_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("members.id"))
    guide_id: Mapped[uuid.UUID | None] = mapped_column(
        doc="The shopping guide credited at the sale (attribution reads it)."
    )
    quote_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("checkout_quotes.id"))
    substitution: Mapped[SubstitutionPreference] = mapped_column(
        str_enum(SubstitutionPreference, length=16), default=SubstitutionPreference.NONE
    )
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[int]
    discount_total: Mapped[int] = mapped_column(default=0)
    delivery_fee: Mapped[int] = mapped_column(default=0)
    total: Mapped[int]
    paid_amount: Mapped[int] = mapped_column(default=0)
    refunded_amount: Mapped[int] = mapped_column(default=0)
    contact_name: Mapped[str | None] = mapped_column(String(80))
    contact_phone_masked: Mapped[str | None] = mapped_column(String(32))
    contact_phone_sealed: Mapped[bytes | None] = mapped_column(
        LargeBinary, doc="AES-GCM sealed (members' PII cipher): for the rider and the store."
    )
    address: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(String(500))
    reservation_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Promotions and coupons as priced at checkout (coupons are redeemed when it is paid).
    offers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    placed_at: Mapped[datetime] = mapped_column(default=utcnow)
    payment_due_at: Mapped[datetime | None] = mapped_column(
        doc="An unpaid order is cancelled and its stock released after this."
    )
    promised_ready_at: Mapped[datetime | None]
    promised_by: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    pickup_code_digest: Mapped[str | None] = mapped_column(
        String(64), doc="Keyed hash the clerk's code is checked against, in constant time."
    )
    pickup_code_sealed: Mapped[bytes | None] = mapped_column(
        LargeBinary, doc="The code sealed for showing to the customer again (order tracking)."
    )
    receipt_number: Mapped[str | None] = mapped_column(String(72), unique=True)
    terminal_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("pos_terminals.id"))
    client_sale_id: Mapped[uuid.UUID | None] = mapped_column(
        unique=True, doc="The POS terminal's own UUID of an (offline) sale: uploaded once."
    )
    business_date: Mapped[date | None] = mapped_column(
        doc="The store's business day of a POS sale (late-uploaded sales keep theirs)."
    )
    actor: Mapped[str | None] = mapped_column(String(80))

    lines: Mapped[list[OrderLine]] = relationship(
        lazy="selectin", order_by="OrderLine.line_no", cascade="all, delete-orphan"
    )


class OrderLine(Base):
    """A line as sold: price, discount and net amount fixed at checkout, then what was picked,
    substituted, refunded and returned."""

    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("net_amount >= 0", name="net_not_negative"),
        CheckConstraint(
            "returned_quantity >= 0 AND returned_quantity <= quantity", name="returned_within"
        ),
        CheckConstraint(
            "substitute_returned_quantity >= 0 AND "
            "substitute_returned_quantity <= COALESCE(substitute_quantity, 0)",
            name="substitute_returned_within",
        ),
        Index("ix_order_lines_sku", "sku_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    line_no: Mapped[int]
    kind: Mapped[LineKind] = mapped_column(str_enum(LineKind, length=16))
    sku_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("skus.id"))
    service: Mapped[str | None] = mapped_column(String(48))
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"))
    quantity: Mapped[int]
    unit_price: Mapped[int] = mapped_column(doc="fen per `price_per` units")
    price_per: Mapped[int] = mapped_column(default=1)
    amount: Mapped[int]
    discount: Mapped[int] = mapped_column(default=0)
    net_amount: Mapped[int]
    picked_quantity: Mapped[int | None]
    substitute_sku_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("skus.id"))
    substitute_quantity: Mapped[int | None]
    short_refund: Mapped[int] = mapped_column(default=0)
    returned_quantity: Mapped[int] = mapped_column(default=0)
    returned_refund: Mapped[int] = mapped_column(default=0)
    #: Units of the substitute brought back, and what they refunded.
    substitute_returned_quantity: Mapped[int] = mapped_column(default=0, server_default="0")
    substitute_returned_refund: Mapped[int] = mapped_column(default=0, server_default="0")


class OrderStatusChange(IdMixin, Base):
    """The order's timeline: every transition, who made it, when."""

    __tablename__ = "order_status_changes"

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(80))
    note: Mapped[str | None] = mapped_column(String(200))


class PaymentStatus(StrEnum):
    PENDING = "pending"  # waiting for the customer (wallet) or the provider
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    FAILED = "failed"
    VOIDED = "voided"  # released before capture: replaced by another tender, or the order ended


class Payment(IdMixin, TimestampMixin, Base):
    """One tender of an order: cash or card at the till, a wallet payment online, ..."""

    __tablename__ = "order_payments"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("refunded_amount >= 0 AND refunded_amount <= amount", name="refund_within"),
        UniqueConstraint("provider", "provider_ref"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    tender: Mapped[TenderType] = mapped_column(str_enum(TenderType, length=16))
    amount: Mapped[int]
    tendered: Mapped[int | None] = mapped_column(
        doc="Cash handed over (change = tendered - amount)."
    )
    status: Mapped[PaymentStatus] = mapped_column(str_enum(PaymentStatus, length=16))
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_ref: Mapped[str | None] = mapped_column(String(128))
    #: The highest notification sequence applied: older or repeated ones change nothing.
    provider_sequence: Mapped[int] = mapped_column(default=0)
    refunded_amount: Mapped[int] = mapped_column(default=0)
    captured_at: Mapped[datetime | None]


class RefundReason(StrEnum):
    CANCELLED = "cancelled"
    SHORT_PICK = "short_pick"
    RETURN = "return"


class Refund(IdMixin, Base):
    """Money given back on one tender, for a cancellation, a short pick or a return."""

    __tablename__ = "order_refunds"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("order_payments.id"))
    tender: Mapped[TenderType] = mapped_column(str_enum(TenderType, length=16))
    amount: Mapped[int]
    reason: Mapped[RefundReason] = mapped_column(str_enum(RefundReason, length=16))
    return_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("order_returns.id"))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)


class ItemCondition(StrEnum):
    RESELLABLE = "resellable"
    DAMAGED = "damaged"


class OrderReturn(IdMixin, Base):
    """Goods of an order brought back, in any store; refunded to the original tenders."""

    __tablename__ = "order_returns"

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    reference: Mapped[str] = mapped_column(
        String(128), unique=True, doc="The caller's id of this return: a retry changes nothing."
    )
    store_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("locations.id"), doc="Where the goods came back."
    )
    refund_total: Mapped[int]
    reason: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(80))

    lines: Mapped[list[OrderReturnLine]] = relationship(
        lazy="selectin", cascade="all, delete-orphan"
    )
    #: What the return did about gifts whose threshold it touched (``orders.gift_returns``).
    gift_adjustments: Mapped[list[ReturnGiftAdjustment]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="ReturnGiftAdjustment.position"
    )


class OrderReturnLine(Base):
    __tablename__ = "order_return_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    return_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("order_returns.id", ondelete="CASCADE"), primary_key=True
    )
    order_line_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("order_lines.id"), primary_key=True)
    #: True: units of the substitute the store sent for this line, not of the line's own SKU.
    substitute: Mapped[bool] = mapped_column(
        primary_key=True, default=False, server_default=false()
    )
    quantity: Mapped[int]
    condition: Mapped[ItemCondition] = mapped_column(str_enum(ItemCondition, length=16))
    refund: Mapped[int]


class ReturnGiftAdjustment(Base):
    """A gift's worth withheld from a return's refund (the goods kept no longer reach its
    coupon's threshold and the gift stays with the customer), or given back (the gift came
    back after its worth was withheld). The sum over a gift line's rows is what is withheld
    for it now."""

    __tablename__ = "order_return_gift_adjustments"
    __table_args__ = (CheckConstraint("amount <> 0", name="amount_not_zero"),)

    return_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("order_returns.id", ondelete="CASCADE"), primary_key=True
    )
    gift_line_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("order_lines.id"), primary_key=True, index=True
    )
    #: The gift's place among the order's gifts (the answer lists them so).
    position: Mapped[int]
    coupon_id: Mapped[uuid.UUID]
    gift_sku_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("skus.id"))
    #: The coupon's threshold and what the goods that earned the gift are worth to it now.
    threshold_fen: Mapped[int]
    kept_fen: Mapped[int]
    #: Withheld from this return's refund (positive) or given back with it (negative).
    amount: Mapped[int]
    why: Mapped[str] = mapped_column(String(400))


class PosTerminal(IdMixin, TimestampMixin, Base):
    """A till of a store. Its receipts are numbered per business day without gaps."""

    __tablename__ = "pos_terminals"
    __table_args__ = (UniqueConstraint("store_id", "code"),)

    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"))
    code: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(default=True)


class ReceiptCounter(Base):
    """The last receipt number a terminal issued on a business day (incremented in the sale's
    own transaction, so a rolled-back sale leaves no gap)."""

    __tablename__ = "pos_receipt_counters"

    terminal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pos_terminals.id"), primary_key=True)
    business_date: Mapped[date] = mapped_column(primary_key=True)
    last_number: Mapped[int] = mapped_column(default=0)


class ExpiryFailure(Base):
    """An order a sweeper failed to cancel (unpaid past its deadline, or uncollected past the
    counter's hold): it tries again after ``retry_at`` (later after each failure) and cancels
    the orders behind it meanwhile. Removed once cancelled."""

    __tablename__ = "order_expiry_failures"

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    attempts: Mapped[int]
    retry_at: Mapped[datetime]
    last_error: Mapped[str] = mapped_column(String(500))
    failed_at: Mapped[datetime]
