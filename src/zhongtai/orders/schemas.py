"""Request and response bodies of checkout, orders, payments, returns and the POS."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from zhongtai.core.text import NoteText, PlainText
from zhongtai.fulfillment.location_facts import Address
from zhongtai.inventory.rules import Line
from zhongtai.orders.kinds import (
    FulfillmentType,
    LineKind,
    OrderStatus,
    SalesChannel,
    SubstitutionPreference,
    TenderType,
)
from zhongtai.orders.models import PaymentStatus, RefundReason

Quantity = Field(gt=0, le=10_000_000, description="Units (grams for weighed goods).")
Fen = Field(ge=0, le=10**12, description="Amount in fen (分).")


class QuoteLineIn(BaseModel):
    sku_id: uuid.UUID
    quantity: int = Quantity

    def line(self) -> Line:
        return Line(self.sku_id, self.quantity)


class AddressIn(BaseModel):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    text: str | None = Field(default=None, max_length=255, examples=["上海市静安区南京西路1号"])

    def address(self) -> Address:
        return Address(self.latitude, self.longitude, self.text)


class QuoteIn(BaseModel):
    fulfillment_type: FulfillmentType
    lines: list[QuoteLineIn] = Field(min_length=1, max_length=100)
    services: list[Annotated[str, Field(min_length=1, max_length=48)]] = Field(
        default_factory=list,
        max_length=5,
        description="In-store services to add (e.g. fish_cleaning); they add preparation time.",
    )
    address: AddressIn | None = Field(
        default=None, description="Required for delivery and ship; finds stores near it."
    )
    store_id: uuid.UUID | None = Field(
        default=None, description="The store the customer chose (pickup, reserve_try)."
    )
    member_id: uuid.UUID | None = None
    coupon_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=5,
        description="The member's coupons to use; each is held for this checkout.",
    )
    channel: SalesChannel | None = Field(
        default=None,
        description="Staff only (a channel key sells on its own channel); guide_share for a "
        "guide's share link opened in the app or mini-program.",
    )


class QuoteLineOut(BaseModel):
    sku_id: uuid.UUID | None
    kind: LineKind
    service: str | None
    location_id: uuid.UUID
    quantity: int
    unit_price: int
    price_per: int
    amount: int
    discount: int
    net_amount: int


class QuoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    channel: SalesChannel
    fulfillment_type: FulfillmentType
    store_id: uuid.UUID
    member_id: uuid.UUID | None
    currency: str
    subtotal: int
    discount_total: int
    delivery_fee: int
    total: int
    lines: list[QuoteLineOut]
    promised_ready_at: datetime | None
    promised_by: datetime | None
    sourcing: dict[str, Any] = Field(
        description="Why this store: the choice, the promise and every candidate's verdict."
    )
    offers: dict[str, Any] | None = Field(
        default=None,
        description="Every promotion's and coupon's verdict, and the coupons used with their "
        "amounts (each line's share is in its discount).",
    )
    expires_at: datetime = Field(description="Stock is held until then; place the order before.")
    order_id: uuid.UUID | None


class PlaceOrderIn(BaseModel):
    quote_id: uuid.UUID
    channel_order_id: PlainText | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="The channel's own order id: placing it twice answers the first order.",
    )
    contact_name: PlainText | None = Field(default=None, max_length=80)
    contact_phone: str | None = Field(
        default=None, pattern=r"^\+?[0-9]{6,15}$", description="Stored encrypted, shown masked."
    )
    address_text: PlainText | None = Field(default=None, max_length=255)
    note: NoteText | None = Field(default=None, max_length=500)
    substitution: SubstitutionPreference = SubstitutionPreference.NONE
    guide_id: uuid.UUID | None = Field(
        default=None, description="The shopping guide credited for the sale."
    )


class OrderLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    line_no: int
    kind: LineKind
    sku_id: uuid.UUID | None
    service: str | None
    location_id: uuid.UUID
    quantity: int
    unit_price: int
    price_per: int
    amount: int
    discount: int
    net_amount: int
    picked_quantity: int | None
    substitute_sku_id: uuid.UUID | None
    substitute_quantity: int | None
    short_refund: int
    returned_quantity: int
    returned_refund: int
    substitute_returned_quantity: int
    substitute_returned_refund: int


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    number: str
    channel: SalesChannel
    channel_order_id: str | None
    fulfillment_type: FulfillmentType
    status: OrderStatus
    store_id: uuid.UUID
    member_id: uuid.UUID | None
    guide_id: uuid.UUID | None
    substitution: SubstitutionPreference
    currency: str
    subtotal: int
    discount_total: int
    delivery_fee: int
    total: int
    paid_amount: int
    refunded_amount: int
    contact_name: str | None
    contact_phone_masked: str | None
    address: dict[str, Any] | None
    note: str | None
    placed_at: datetime
    payment_due_at: datetime | None
    promised_ready_at: datetime | None
    promised_by: datetime | None
    completed_at: datetime | None
    receipt_number: str | None
    business_date: date | None
    lines: list[OrderLineOut]


class PaymentIn(BaseModel):
    tender: TenderType = Field(examples=["wechat_pay"])
    amount: int | None = Field(default=None, gt=0, description="Default: all that is still due.")
    points: int | None = Field(
        default=None, gt=0, description="For tender points: how many of the member's points."
    )
    provider: str = Field(default="sandbox", max_length=32)


class PaymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    order_id: uuid.UUID
    tender: TenderType
    amount: int
    tendered: int | None
    status: PaymentStatus
    provider: str | None
    provider_ref: str | None
    refunded_amount: int
    captured_at: datetime | None


class StartedPaymentOut(PaymentOut):
    customer_action: str | None = Field(
        default=None, description="For wallets: the QR / deep link the customer opens to pay."
    )


class CancelIn(BaseModel):
    reason: str = Field(min_length=1, max_length=200, examples=["customer changed their mind"])


class RefundOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    payment_id: uuid.UUID
    tender: TenderType
    amount: int
    reason: RefundReason
    occurred_at: datetime


class TimelineEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: str | None
    to_status: str
    occurred_at: datetime
    note: str | None


class PickupTicketOut(BaseModel):
    code: str = Field(description="Six digits the customer says at the counter.")
    qr_payload: str = Field(description="Text to show as a QR code; the clerk scans it.")
    collect_by: datetime = Field(
        description="The order waits at the counter until then; not collected, it is cancelled "
        "and what was paid refunded."
    )


class CourierOut(BaseModel):
    provider: str
    status: str
    rider: dict[str, Any] | None
    estimated_delivery_at: datetime | None
    delivered_at: datetime | None


class TrackingOut(BaseModel):
    """What the customer's app shows: where the order is, when it comes, how to collect it."""

    order_id: uuid.UUID
    number: str
    status: OrderStatus
    fulfillment_type: FulfillmentType
    store_id: uuid.UUID
    promised_ready_at: datetime | None
    promised_by: datetime | None
    timeline: list[TimelineEntryOut]
    pickup: PickupTicketOut | None
    courier: CourierOut | None


# --- POS -------------------------------------------------------------------------------------


class PosLineIn(BaseModel):
    sku_id: uuid.UUID
    quantity: int = Quantity
    unit_price: int | None = Field(
        default=None,
        ge=0,
        description="What the till charged per price unit; default: the store's current price.",
    )


class TenderIn(BaseModel):
    type: TenderType
    amount: int = Field(gt=0, description="Fen; for cash what was handed over (change returns).")


class PosSaleIn(BaseModel):
    client_sale_id: uuid.UUID = Field(
        description="The terminal's own id of the sale: sending it again records nothing new."
    )
    store_id: uuid.UUID | None = Field(default=None, description="Default: the POS key's store.")
    terminal_code: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_]{1,16}$",
        description="Default: the POS key's terminal; staff at a till name it.",
    )
    occurred_at: datetime | None = Field(
        default=None, description="When the till sold it (offline sales upload later)."
    )
    lines: list[PosLineIn] = Field(min_length=1, max_length=200)
    tenders: list[TenderIn] = Field(min_length=0, max_length=10)
    member_id: uuid.UUID | None = None
    guide_id: uuid.UUID | None = None


class PosSaleOut(BaseModel):
    client_sale_id: uuid.UUID
    status: str = Field(description="recorded | duplicate | rejected")
    order_id: uuid.UUID | None = None
    receipt_number: str | None = None
    total: int | None = None
    change: int = 0
    problem: dict[str, Any] | None = Field(
        default=None, description="For a rejected sale: what is wrong (problem+json)."
    )


class PosBatchIn(BaseModel):
    sales: list[PosSaleIn] = Field(min_length=1, max_length=500)


class PosBatchOut(BaseModel):
    results: list[PosSaleOut] = Field(
        description="One per sale, in order: the terminal may delete recorded and duplicate ones."
    )
