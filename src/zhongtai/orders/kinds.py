"""The vocabularies of an order: sales channels, fulfilment types, statuses, tenders."""

from __future__ import annotations

from enum import StrEnum

from zhongtai.core.auth.roles import Channel


class SalesChannel(StrEnum):
    """Where the customer placed the order."""

    POS = "pos"
    APP = "app"
    MINI_PROGRAM = "mini_program"
    MARKETPLACE = "marketplace"
    GUIDE_SHARE = "guide_share"


#: The price list each sales channel sells at (a guide's share link opens in the mini-program).
PRICE_CHANNEL: dict[SalesChannel, Channel] = {
    SalesChannel.POS: Channel.POS,
    SalesChannel.APP: Channel.APP,
    SalesChannel.MINI_PROGRAM: Channel.MINI_PROGRAM,
    SalesChannel.MARKETPLACE: Channel.MARKETPLACE,
    SalesChannel.GUIDE_SHARE: Channel.MINI_PROGRAM,
}


class FulfillmentType(StrEnum):
    """How the goods reach the customer."""

    IN_STORE = "in_store"  # POS sale: handed over at once
    DELIVERY = "delivery"  # instant delivery by a rider from a store
    PICKUP = "pickup"  # bought online, collected in a store with a code
    SHIP = "ship"  # parcel from a store or a DC; may be split
    RESERVE_TRY = "reserve_try"  # held in a store for a try-on visit; paid only if bought


class OrderStatus(StrEnum):
    CREATED = "created"  # placed, stock held, waiting for payment
    PAID = "paid"
    ACCEPTED = "accepted"  # the fulfilling store took it
    PICKING = "picking"
    PACKED = "packed"
    READY_FOR_PICKUP = "ready_for_pickup"  # pickup and reserve_try: waiting in the store
    OUT_FOR_DELIVERY = "out_for_delivery"  # delivery: with the rider
    SHIPPED = "shipped"  # ship: with the carrier
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    PARTIALLY_RETURNED = "partially_returned"
    RETURNED = "returned"


#: Orders a store still has to work on: its picking backlog, counted at every quote.
PICKING_BACKLOG = (OrderStatus.PAID, OrderStatus.ACCEPTED, OrderStatus.PICKING)
#: The backlog as SQL, with the statuses as constants (the partial index's predicate, and the
#: sourcing query's, so that even a prepared statement's generic plan can use that index).
PICKING_BACKLOG_SQL = "status IN ({})".format(", ".join(f"'{x.value}'" for x in PICKING_BACKLOG))


class TenderType(StrEnum):
    """How a customer pays. Points and coupons are tenders too once loyalty joins the checkout."""

    CASH = "cash"
    BANK_CARD = "bank_card"
    WECHAT_PAY = "wechat_pay"
    ALIPAY = "alipay"
    STORED_VALUE = "stored_value"
    POINTS = "points"
    COUPON = "coupon"


class LineKind(StrEnum):
    GOODS = "goods"
    SERVICE = "service"  # e.g. fish cleaning, alterations: adds preparation time, no stock


class SubstitutionPreference(StrEnum):
    """What the customer wants when a line cannot be picked in full."""

    SIMILAR = "similar"  # a picker may substitute a similar SKU at no extra cost
    NONE = "none"  # short-pick and refund the difference
