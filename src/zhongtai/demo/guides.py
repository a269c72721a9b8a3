"""The demo chain's shopping guides (导购) at work: the guides' world over the order history —
the roster, their customers and the links they shared, what the history's sales earned them and
this month's targets — built store by store and written in bulk."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from zhongtai.demo.catalog import Row
from zhongtai.demo.generator import DemoChain
from zhongtai.demo.guide_commission import GuideBooks, StoreCommission
from zhongtai.demo.guide_customers import StoreGuideCustomers
from zhongtai.demo.guide_roster import (
    ACTOR,
    PROGRAMME_LEAD,
    DemoGuide,
    GuideWorld,
    commission_rules,
    demo_guides,
    guide_rows,
)
from zhongtai.demo.history_loader import DemoHistory, ReportFn, TableRows, bulk_insert_tables
from zhongtai.demo.seeded import stream
from zhongtai.demo.sites import TIMEZONE
from zhongtai.guides.ledger import first_of_month
from zhongtai.guides.models import (
    CommissionEntry,
    CommissionRuleRecord,
    Guide,
    GuideBinding,
    LineAttribution,
    MonthlyTarget,
    ShareLink,
    ShareVisit,
    WeComContact,
)
from zhongtai.members.models import ConsentRecord
from zhongtai.orders.kinds import SalesChannel

#: The part of a store's buying members, the most active first, who have a guide of their own.
BOUND_SHARE = 0.6


def _targets(
    world: GuideWorld, guides: Sequence[DemoGuide], history: DemoHistory, seed: int
) -> None:
    """This month's target of each guide: her usual month of attributed sales, stretched."""
    rng = stream(seed, "guide-targets")
    days = max(1, round((history.end - history.start).total_seconds() / 86400))
    sold: dict[uuid.UUID, int] = defaultdict(int)
    for row in world.attributions:
        sold[row["guide_id"]] += row["net_amount"] - row["refunded_amount"]
    month = first_of_month(history.today)
    set_at = datetime.combine(month, time(9), tzinfo=ZoneInfo(TIMEZONE)).astimezone(UTC)
    for guide in guides:
        usual = sold[guide.staff_id] * 30 // days
        target = max(100_000, round(usual * rng.uniform(0.9, 1.3) / 10_000) * 10_000)
        world.targets.append(
            {
                "guide_id": guide.staff_id,
                "month": month,
                "target_amount": target,
                "set_at": min(set_at, history.end),
                "set_by": ACTOR,
            }
        )


def build_guide_world(
    chain: DemoChain,
    guides: Mapping[str, Sequence[uuid.UUID]],
    history: DemoHistory,
) -> GuideWorld:
    """The guides' world over the history, from the staff ids of each store's guides. Pure but
    for one thing: it names the guide on the history's orders that credit one (share-link
    orders, spread over the store's guides, and till sales where the clerk entered her), so
    build it before the history is written."""
    world = GuideWorld()
    roster = demo_guides(chain, guides)
    if not roster:
        return world
    since = history.start - PROGRAMME_LEAD
    world.guides = guide_rows(roster, since)
    world.rules = commission_rules(chain, since)
    books = GuideBooks(chain, roster, history, world.rules)
    registered = {m["id"]: m["created_at"] for m in history.members.members}
    by_member: dict[uuid.UUID, list[Row]] = defaultdict(list)
    anonymous_shares: dict[uuid.UUID, list[Row]] = defaultdict(list)
    completed: dict[uuid.UUID, list[Row]] = defaultdict(list)
    for order in sorted(history.orders.orders, key=lambda o: (o["placed_at"], o["id"])):
        if order["member_id"] is not None:
            by_member[order["member_id"]].append(order)
        elif order["channel"] is SalesChannel.GUIDE_SHARE:
            anonymous_shares[order["store_id"]].append(order)
        if order["completed_at"] is not None:
            completed[order["store_id"]].append(order)
    for store in chain.stores:
        mine = [g for g in roster if g.store_id == store["id"]]
        if not mine:
            continue
        customers = StoreGuideCustomers(
            world, books, chain, store, mine, since, history.members.unionid_since
        )
        customers.skus = list(
            dict.fromkeys(
                line["sku_id"] for o in completed[store["id"]] for line in books.lines[o["id"]]
            )
        )
        members = [m for m in history.members.by_store.get(store["code"], []) if by_member[m]]
        busiest = sorted(members, key=lambda m: (-len(by_member[m]), m))
        bound = set(busiest[: round(len(busiest) * BOUND_SHARE)])
        for member_id in members:
            orders = by_member[member_id]
            customers.follow(member_id, registered[member_id], orders, bound=member_id in bound)
        for order in anonymous_shares[store["id"]]:
            customers.shared_anonymously(order)
        customers.strangers_on_wecom()
        for member_id in members:
            customers.bind(member_id)
        commission = StoreCommission(
            world, books, customers.rng, customers.timelines, customers.opened
        )
        for order in completed[store["id"]]:
            commission.attribute(order)
    _targets(world, roster, history, chain.seed)
    return world


def load_guide_world(session: Session, world: GuideWorld, report: ReportFn) -> dict[str, int]:
    """Writes the guides' world in bulk, in the caller's transaction, after the history it
    credits; what was written, by table. Like the history, it writes no events."""
    tables: list[TableRows] = [
        (Guide, world.guides, "guides"),
        (CommissionRuleRecord, world.rules, "commission rules"),
        (ShareLink, world.links, "share links"),
        (ShareVisit, world.visits, "share visits"),
        (GuideBinding, world.bindings, "guide customers"),
        (WeComContact, world.contacts, "WeCom contacts"),
        (ConsentRecord, world.consents, "WeCom consents"),
        (LineAttribution, world.attributions, "attributed lines"),
        (CommissionEntry, world.commission, "commission ledger"),
        (MonthlyTarget, world.targets, "monthly targets"),
    ]
    return bulk_insert_tables(session, tables, report)
