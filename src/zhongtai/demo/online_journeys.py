"""What happens to the demo history's online orders after checkout, as the order state machine
allows it: which fulfilment a channel offers, the delivery address near the store, the promise,
and the journey — paid or not, accepted, picked, packed, delivered, shipped or collected, now
and then cancelled or returned."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from enum import StrEnum

from zhongtai.demo import rhythm
from zhongtai.demo.catalog import Row
from zhongtai.demo.order_rows import OrderDraft, close_order
from zhongtai.demo.store_trade import StoreTrade
from zhongtai.demo.tenders_and_returns import TendersAndReturns, minutes
from zhongtai.orders.kinds import FulfillmentType, OrderStatus, SalesChannel
from zhongtai.orders.models import RefundReason
from zhongtai.stores.rules import distance_m

_CARRIERS = ("SF Express", "ZTO Express", "JD Logistics")


#: Per fulfilment type, the (fewest, most) minutes a store takes to accept, to start picking
#: and to pack an order; other types take ((1, 8), (1, 10), (4, 25)).
_STORE_PACE = {
    FulfillmentType.SHIP: ((1, 180), (1, 60), (4, 60)),
    FulfillmentType.DELIVERY: ((0.5, 3), (1, 6), (2, 8)),
}


class Outcome(StrEnum):
    COMPLETED = "completed"
    UNPAID = "unpaid"  # the payment window ended: cancelled, nothing paid
    CANCELLED = "cancelled"  # cancelled after payment (or a try-on nobody came to buy)


class OnlineJourneys:
    """One store's online orders from checkout on, drawn from its history stream (``rng``)."""

    def __init__(self, rng: random.Random, trade: StoreTrade, tenders: TendersAndReturns) -> None:
        self.rng = rng
        self.trade = trade
        self.store = trade.store
        self.tenders = tenders

    def fulfilment_type(self, channel: SalesChannel) -> FulfillmentType | None:
        offered = self.trade.online_types
        if channel is SalesChannel.MARKETPLACE:  # marketplaces sell delivery and pickup only
            offered = tuple(
                t for t in offered if t in (FulfillmentType.DELIVERY, FulfillmentType.PICKUP)
            )
        mix = {t: w for t, w in rhythm.FULFILMENT_MIX.items() if t in offered}
        return rhythm.pick(self.rng, mix) if mix else None

    def address(self) -> dict[str, object]:
        radius = (self.trade.delivery_radius_m or 3000) * 0.9
        lat, lng = self.store["latitude"], self.store["longitude"]
        for _ in range(20):
            dlat = self.rng.uniform(-1, 1) * radius / 111_195
            dlng = self.rng.uniform(-1, 1) * radius / (111_195 * math.cos(math.radians(lat)))
            if distance_m(lat, lng, lat + dlat, lng + dlng) <= radius:
                break
        lane, building = self.rng.randint(1, 300), self.rng.randint(1, 30)
        return {
            "latitude": round(lat + dlat, 6),
            "longitude": round(lng + dlng, 6),
            "text": f"{self.store['region']}{lane}弄{building}号",
        }

    def promise(self, row: Row, ftype: FulfillmentType, at: datetime) -> None:
        ready = at + timedelta(minutes=15 if ftype is FulfillmentType.DELIVERY else 40)
        row["promised_ready_at"] = ready
        row["promised_by"] = {
            FulfillmentType.DELIVERY: at + timedelta(minutes=self.rng.choice((30, 35, 45))),
            FulfillmentType.SHIP: ready + timedelta(days=2),
        }.get(ftype, ready)

    def journey(self, order: OrderDraft, ftype: FulfillmentType, at: datetime) -> None:
        """The order's steps, as the state machine allows them, and what each step wrote."""
        rng, row, steps = self.rng, order.row, order.steps
        roll = rng.random()
        t = at
        if ftype is FulfillmentType.RESERVE_TRY:
            outcome = Outcome.COMPLETED if roll < 0.55 else Outcome.CANCELLED
        else:
            row["payment_due_at"] = at + timedelta(minutes=15)
            outcome = (
                Outcome.UNPAID
                if roll < 0.025
                else Outcome.CANCELLED
                if roll < 0.04
                else Outcome.COMPLETED
            )
            if outcome is Outcome.UNPAID:
                close_order(order, OrderStatus.CANCELLED, at + timedelta(minutes=15), "unpaid")
                return
            t += minutes(rng, 0.3, 3)
            self.tenders.pay(order, rhythm.pick(rng, rhythm.ONLINE_TENDERS), t, online=True)
            row["payment_due_at"] = None
            steps.append((OrderStatus.PAID, t, None))
            if outcome is Outcome.CANCELLED:
                t += minutes(rng, 2, 20)
                self.tenders.refund(order, row["total"], RefundReason.CANCELLED, t)
                close_order(order, OrderStatus.CANCELLED, t, "customer changed their mind")
                return
        # Minutes to accept, to start picking, to pack: parcels wait for the afternoon round,
        # a 30-minute delivery jumps the queue.
        pace = _STORE_PACE.get(ftype, ((1, 8), (1, 10), (4, 25)))
        for status, (low, high) in zip(
            (OrderStatus.ACCEPTED, OrderStatus.PICKING, OrderStatus.PACKED), pace, strict=True
        ):
            t += minutes(rng, low, high)
            steps.append((status, t, None))
        for line in order.lines:
            line["picked_quantity"] = line["quantity"]
        if ftype is FulfillmentType.DELIVERY:
            t += minutes(rng, 2, 8)
            steps.append((OrderStatus.OUT_FOR_DELIVERY, t, "rider collected"))
            t += minutes(rng, 5, 18)
            close_order(order, OrderStatus.COMPLETED, t, "delivered by rider")
        elif ftype is FulfillmentType.SHIP:
            t += minutes(rng, 30, 600)
            tracking = f"{rng.choice(_CARRIERS)} SF{rng.randint(10**11, 10**12 - 1)}"
            steps.append((OrderStatus.SHIPPED, t, tracking))
            close_order(order, OrderStatus.COMPLETED, t + minutes(rng, 16 * 60, 44 * 60), None)
        else:
            t += minutes(rng, 1, 5)
            steps.append((OrderStatus.READY_FOR_PICKUP, t, None))
            if outcome is Outcome.CANCELLED:  # the try-on customer never came, or bought nothing
                t += minutes(rng, 6 * 60, 72 * 60)
                close_order(order, OrderStatus.CANCELLED, t, "customer did not buy")
                return
            t += minutes(rng, 20, 8 * 60)
            close_order(order, OrderStatus.COMPLETED, t, "picked up")
        if row["status"] is OrderStatus.COMPLETED and row["paid_amount"]:
            self.tenders.maybe_return(order, 0.025)
