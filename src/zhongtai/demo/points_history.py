"""The demo chain's points and tiers over the members' lives: each member's signup bonus, what
her completed orders earned and her returns took back, her gifts from the points mall, and the
nightly expiry and tier review between them, event by event in time order."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from zhongtai.demo.catalog import Row
from zhongtai.demo.generator import DemoChain
from zhongtai.demo.members import DemoMembers
from zhongtai.demo.points_earning import (
    LoyaltyTerms,
    OrderRows,
    order_earning,
    return_reversal,
    sales_by_order,
)
from zhongtai.demo.points_ledger import PointsBooks, PointsLedger
from zhongtai.demo.seeded import stream, uuid7_at
from zhongtai.loyalty.models import SourceType

#: Points every member got for signing up, booked once per member under this campaign.
SIGNUP_BONUS = 100
SIGNUP_CAMPAIGN = "signup-bonus"
#: What the points mall gives for points, dearest first.
POINTS_MALL = ((2000, "保温杯"), (1000, "¥10 购物卡"), (300, "环保购物袋"))
#: Each member looks at the points mall up to this many times in the history, and takes the
#: dearest gift she can afford this often.
MALL_VISITS = 2
MALL_TAKE = 0.4


def build_points(
    chain: DemoChain,
    members: DemoMembers,
    history: OrderRows,
    *,
    start: datetime,
    end: datetime,
    terms: LoyaltyTerms,
) -> PointsBooks:
    """Every member's points and tier up to ``end``, event by event in time order: her signup
    bonus, the points her completed orders earned (1 point a yuan paid with money, times her
    tier's multiplier), taken back by returns, gifts from the points mall, and the nightly
    expiry and tier review. Pure."""
    books = PointsBooks()
    valid = timedelta(days=terms.valid_days)
    lines, paid, returns = sales_by_order(history)
    orders: dict[uuid.UUID, list[Row]] = defaultdict(list)
    for order in history.orders:
        if order["member_id"] is not None and order["completed_at"] is not None:
            orders[order["member_id"]].append(order)
    by_store: dict[uuid.UUID, list[Row]] = defaultdict(list)
    for member in members.members:
        by_store[member["registered_store_id"]].append(member)
    for store in chain.stores:
        rng = stream(chain.seed, f"points:{store['code']}")
        for member in by_store[store["id"]]:
            ledger = PointsLedger(books, member["id"], rng)
            events: list[tuple[datetime, int, Callable[[datetime], None]]] = []
            joined, home = member["created_at"], member["registered_store_id"]

            def signup(at: datetime, ledger: PointsLedger = ledger, home: uuid.UUID = home) -> None:
                source = (SourceType.CAMPAIGN, SIGNUP_CAMPAIGN)
                ledger.credit(source, SIGNUP_BONUS, at, valid, store_id=home)

            events.append((joined, 0, signup))
            for order in orders.get(member["id"], ()):
                events.append(
                    (
                        order["completed_at"],
                        1,
                        order_earning(ledger, order, lines, paid, terms, valid),
                    )
                )
                for came_back in returns.get(order["id"], ()):
                    events.append(
                        (came_back["occurred_at"], 2, return_reversal(ledger, order, came_back))
                    )
            for _ in range(MALL_VISITS):
                since = max(start, joined)
                if since < end:
                    at = since + (end - since) * rng.random()
                    events.append((at, 3, _mall_visit(ledger, rng, home)))
            for at, _, happen in sorted(events, key=lambda e: (e[0], e[1])):
                ledger.run_jobs(at)
                happen(at)
            ledger.run_jobs(end)
            books.accounts.append(
                {
                    "member_id": member["id"],
                    "balance": ledger.balance,
                    "debt": ledger.debt,
                    "updated_at": ledger.last or joined,
                }
            )
    return books


def _mall_visit(
    ledger: PointsLedger, rng: random.Random, store_id: uuid.UUID
) -> Callable[[datetime], None]:
    fancies = rng.random() < MALL_TAKE

    def visit(at: datetime) -> None:
        """She takes the dearest gift her points buy, if she fancies one."""
        points = ledger.spendable_points(at)
        gift = next(((p, name) for p, name in POINTS_MALL if p <= points), None)
        if gift is None or not fancies:
            return
        source = (SourceType.CAMPAIGN, f"points-mall:{uuid7_at(rng, at)}")
        ledger.redeem(source, gift[0], at, store_id, f"积分商城兑换：{gift[1]}")

    return visit
