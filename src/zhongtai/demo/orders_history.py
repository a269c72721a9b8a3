"""Ninety days of the demo chain's orders as rows: till sales and online orders of every channel
and fulfilment type, bought by members who had signed up (with the coupons they held), with their
timelines, payments, a few cancellations and returns."""

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from zhongtai.demo import rhythm
from zhongtai.demo.baskets import StoreBaskets
from zhongtai.demo.catalog import Row
from zhongtai.demo.generator import DemoChain
from zhongtai.demo.member_coupons import CouponCampaigns
from zhongtai.demo.members import Shopper
from zhongtai.demo.online_journeys import OnlineJourneys
from zhongtai.demo.order_rows import OrderDraft, OrderHistory, StoreOrderRows
from zhongtai.demo.seeded import stream, uuid7_at
from zhongtai.demo.sites import StoreFormat
from zhongtai.demo.store_trade import StoreTrade
from zhongtai.demo.tenders_and_returns import TendersAndReturns
from zhongtai.orders.codes import business_date, receipt_number
from zhongtai.orders.kinds import FulfillmentType, OrderStatus, SalesChannel, SubstitutionPreference
from zhongtai.orders.pricing_rules import DeliveryFeeRule

HISTORY_DAYS = 90
#: The checkout's default delivery fee: ¥6, free from ¥59.
DELIVERY_FEE = DeliveryFeeRule(fee=600, free_from=5900)
#: Lines on a till receipt, by store format.
TILL_BASKET_LINES: dict[StoreFormat, dict[int, int]] = {
    StoreFormat.SUPERMARKET: {1: 14, 2: 18, 3: 18, 4: 15, 5: 12, 6: 10, 8: 8, 10: 5},
    StoreFormat.CONVENIENCE: {1: 45, 2: 30, 3: 17, 4: 8},
    StoreFormat.DEPARTMENT: {1: 60, 2: 30, 3: 10},
}


def history_window(today: date, days: int, timezone: str) -> tuple[datetime, datetime]:
    """The UTC span of the ``days`` local days before ``today``: the history ends at midnight."""
    zone = ZoneInfo(timezone)
    end = datetime.combine(today, time(0), tzinfo=zone).astimezone(UTC)
    start = datetime.combine(today - timedelta(days=days), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


class _StoreHistory:
    """Writes one store's orders; its own random stream keeps other stores' history unchanged.
    Its baskets, order rows, tenders and returns and online journeys all draw from that one
    stream, in the order the store's day tells them."""

    def __init__(
        self,
        chain: DemoChain,
        trade: StoreTrade,
        stores: Sequence[Row],
        numbers: set[str],
        end: datetime,
        shoppers: Mapping[uuid.UUID, Shopper] | None = None,
        coupons: CouponCampaigns | None = None,
    ) -> None:
        self.trade = trade
        self.store = trade.store
        self.end = end
        self.rng = stream(chain.seed, f"history:{self.store['code']}")
        self.baskets = StoreBaskets(chain, trade, self.rng, shoppers, coupons)
        self.terminals = [
            {
                "id": uuid7_at(self.rng, end - timedelta(days=HISTORY_DAYS + 30)),
                "store_id": self.store["id"],
                "code": code,
                "is_active": True,
                "created_at": end - timedelta(days=HISTORY_DAYS + 30),
                "updated_at": end - timedelta(days=HISTORY_DAYS + 30),
            }
            for code in (("T01", "T02") if trade.format is StoreFormat.SUPERMARKET else ("T01",))
        ]
        self.rows = StoreOrderRows(self.rng, self.store, numbers)
        self.tenders = TendersAndReturns(self.rng, self.store, stores, end, self.baskets.weighed)
        self.online = OnlineJourneys(self.rng, trade, self.tenders)
        self.till_sales: list[OrderDraft] = []
        self.online_orders: list[OrderDraft] = []
        #: The terminal and business day of each till sale, numbered once all are known.
        self.tills: dict[uuid.UUID, tuple[str, date]] = {}

    # --- the till -------------------------------------------------------------------------------

    def till_sale(self, at: datetime) -> None:
        size = rhythm.pick(self.rng, TILL_BASKET_LINES[self.trade.format])
        member = self.baskets.member(0.35, at)
        basket = self.baskets.basket("all", size, None, member, (at, SalesChannel.POS))
        if basket is None:
            return
        priced, coupon = basket
        order = self.rows.draft(at, SalesChannel.POS, FulfillmentType.IN_STORE, priced, member)
        terminal = self.rng.choice(self.terminals)
        day = business_date(at, self.store["timezone"])
        order.row.update(
            client_sale_id=uuid.UUID(int=self.rng.getrandbits(128), version=4),
            terminal_id=terminal["id"],
            business_date=day,
            completed_at=at,
        )
        self.tills[order.row["id"]] = (terminal["code"], day)
        for line in order.lines:
            line["picked_quantity"] = line["quantity"]
        self.tenders.pay(order, rhythm.pick(self.rng, rhythm.TILL_TENDERS), at, online=False)
        order.steps += [(OrderStatus.PAID, at, None), (OrderStatus.COMPLETED, at, None)]
        self.tenders.maybe_return(order, 0.008)
        self.baskets.keep_coupon(order, coupon)
        self.till_sales.append(order)

    def number_receipts(self, history: OrderHistory) -> None:
        """Receipts count from 1 per terminal and business day, in the order they were rung up."""
        last: dict[tuple[str, date], int] = {}
        terminal_ids = {t["code"]: t["id"] for t in self.terminals}
        for order in sorted(self.till_sales, key=lambda o: o.row["placed_at"]):
            code, day = self.tills[order.row["id"]]
            last[(code, day)] = last.get((code, day), 0) + 1
            order.row["receipt_number"] = receipt_number(
                self.store["code"], code, day, last[(code, day)]
            )
            self.rows.add(history, order)
        history.terminals += self.terminals
        history.counters += [
            {"terminal_id": terminal_ids[code], "business_date": day, "last_number": n}
            for (code, day), n in sorted(last.items())
        ]

    # --- online ---------------------------------------------------------------------------------

    def online_order(self, at: datetime) -> None:
        rng = self.rng
        channel = rhythm.pick(rng, rhythm.ONLINE_CHANNELS)
        if channel is SalesChannel.GUIDE_SHARE and self.trade.guide_id is None:
            channel = SalesChannel.MINI_PROGRAM
        ftype = self.online.fulfilment_type(channel)
        if ftype is None:
            return
        assortment, sizes = {
            FulfillmentType.DELIVERY: ("deliverable", (1, 2, 3, 4, 5, 6)),
            FulfillmentType.PICKUP: ("all", (1, 2, 3, 4, 5)),
            FulfillmentType.SHIP: ("all", (1, 2, 3)),
            FulfillmentType.RESERVE_TRY: ("apparel", (1, 2, 3)),
        }[ftype]
        fee = DELIVERY_FEE if ftype in (FulfillmentType.DELIVERY, FulfillmentType.SHIP) else None
        member = None if channel is SalesChannel.MARKETPLACE else self.baskets.member(0.85, at)
        # A try-on is paid at the till, if at all: no coupon is priced into it online.
        coupon_at = None if ftype is FulfillmentType.RESERVE_TRY else (at, channel)
        basket = self.baskets.basket(assortment, rng.choice(sizes), fee, member, coupon_at)
        if basket is None:
            return
        priced, coupon = basket
        order = self.rows.draft(at, channel, ftype, priced, member)
        row = order.row
        if channel is SalesChannel.MARKETPLACE:
            row["channel_order_id"] = f"MT{rng.getrandbits(56):017d}"
        if channel is SalesChannel.GUIDE_SHARE:
            row["guide_id"] = self.trade.guide_id
        row["contact_name"] = rng.choice("王李张刘陈杨赵黄周吴") + rng.choice(("女士", "先生"))
        row["contact_phone_masked"] = (
            f"1{rng.choice('3589')}{rng.randint(0, 9)}****{rng.randint(0, 9999):04d}"
        )
        if ftype in (FulfillmentType.DELIVERY, FulfillmentType.SHIP):
            row["address"] = self.online.address()
        if ftype is FulfillmentType.DELIVERY and rng.random() < 0.4:
            row["substitution"] = SubstitutionPreference.SIMILAR
        self.online.promise(row, ftype, at)
        self.online.journey(order, ftype, at)
        if order.steps[-1][1] >= self.end:
            return  # its story runs past the history's end: today's orders are the simulator's
        self.baskets.keep_coupon(order, coupon)
        self.online_orders.append(order)


def build_order_history(
    chain: DemoChain,
    trades: Sequence[StoreTrade],
    *,
    today: date,
    days: int = HISTORY_DAYS,
    shoppers: Mapping[uuid.UUID, Shopper] | None = None,
    coupons: CouponCampaigns | None = None,
) -> OrderHistory:
    """The chain's orders of the ``days`` local days before ``today``, their buyers drawn from
    the members who had signed up by then (the keener ``shoppers`` more often; without them,
    every member alike), with the ``coupons`` members held. Pure but for the coupons, whose
    uses the orders record: the same chain, trades, day and members give the same rows, ids
    included."""
    history = OrderHistory()
    numbers: set[str] = set()
    stores = [t.store for t in trades]
    for trade in trades:
        timezone = trade.store["timezone"]
        start, end = history_window(today, days, timezone)
        writer = _StoreHistory(chain, trade, stores, numbers, end, shoppers, coupons)
        share = rhythm.ONLINE_SHARE[trade.format]
        hours = rhythm.opening_hours(trade.format, overnight=_overnight(chain, trade))
        for offset in range(days, 0, -1):
            day = today - timedelta(days=offset)
            count = rhythm.orders_on(writer.rng, day, trade.format)
            for at in rhythm.moments_on(writer.rng, day, hours, count, timezone):
                if not start <= at < end:
                    continue
                if writer.rng.random() < share:
                    writer.online_order(at)
                else:
                    writer.till_sale(at)
        writer.number_receipts(history)
        for order in writer.online_orders:
            writer.rows.add(history, order)
    return history


def _overnight(chain: DemoChain, trade: StoreTrade) -> bool:
    """Open past midnight: the store's weekly hours close before they open."""
    return any(
        h["closes_at"] < h["opens_at"]
        for h in chain.opening_hours
        if h["location_id"] == trade.store["id"]
    )
