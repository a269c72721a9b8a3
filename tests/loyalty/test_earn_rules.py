"""HQ's earn rules at work: the nearest category's rule, the campaign of the sale's moment,
channel and store, recorded on the entry, and a replayed order earning nothing twice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.catalog.conftest import CatalogFactory
from tests.members.conftest import MakeMember
from tests.orders.conftest import Chain, new_id, ok
from zhongtai.catalog.models import Category, Sku
from zhongtai.core.audit import AuditEntry
from zhongtai.core.auth.roles import Channel
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.errors import AlreadyExists
from zhongtai.core.outbox import OutboxEvent
from zhongtai.integrations.handlers import HANDLERS, PublishedEvent, handle
from zhongtai.integrations.relay import Relay
from zhongtai.loyalty import earn_rules
from zhongtai.loyalty import service as loyalty
from zhongtai.loyalty.models import EarnRule, EntryKind, PointsEntry, SourceType
from zhongtai.loyalty.multiplier_rules import EarnRuleDraft, EarnRuleKind

DAY = timedelta(days=1)


def category_rule(session: Session, category: Category, pct: int) -> EarnRule:
    return earn_rules.create_earn_rule(
        session,
        EarnRuleDraft(EarnRuleKind.CATEGORY, f"{category.name} {pct}%", pct, str(category.id)),
    )


def campaign_rule(
    session: Session,
    pct: int,
    *,
    starts: datetime | None = None,
    ends: datetime | None = None,
    channels: frozenset[str] = frozenset(),
    stores: frozenset[uuid.UUID] = frozenset(),
    created_at: datetime | None = None,
) -> EarnRule:
    now = utcnow()
    return earn_rules.create_earn_rule(
        session,
        EarnRuleDraft(
            EarnRuleKind.CAMPAIGN,
            f"积分 {pct}%",
            pct,
            starts_at=starts or now - DAY,
            ends_at=ends or now + DAY,
            channels=channels,
            store_ids=frozenset(str(s) for s in stores),
        ),
        now=created_at or now,
    )


def _relay(test_db: Database) -> None:
    asyncio.run(Relay(test_db.writer, holder="earn-rules-test").run_once())


def _till_sale(
    client: TestClient,
    chain: Chain,
    member_id: uuid.UUID,
    skus: list[Sku],
    *,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """One of each SKU (10 yuan each) paid in cash at the chain's store."""
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    body: dict[str, Any] = {
        "client_sale_id": new_id(),
        "member_id": str(member_id),
        "lines": [{"sku_id": str(sku.id), "quantity": 1} for sku in skus],
        "tenders": [{"type": "cash", "amount": 1_000 * len(skus)}],
    }
    if occurred_at is not None:
        body["occurred_at"] = occurred_at.isoformat()
    return ok(client.post("/api/v1/pos/sales", json=body, headers=till), 201)  # type: ignore[no-any-return]


def _earned(session: Session, order_id: str) -> PointsEntry:
    return session.scalars(
        select(PointsEntry).where(
            PointsEntry.source_type == SourceType.ORDER,
            PointsEntry.source_id == order_id,
            PointsEntry.kind == EntryKind.EARN,
        )
    ).one()


def test_the_nearest_categorys_rule_wins_and_the_entry_says_which_applied(
    session: Session, catalog: CatalogFactory, make_member: MakeMember
) -> None:
    food = catalog.category()
    fresh = catalog.category(parent=food)
    fruit = catalog.category(parent=fresh)
    vegetables = catalog.category(parent=fresh)
    bread = catalog.category(parent=food)
    fresh_rule = category_rule(session, fresh, 150)
    fruit_rule = category_rule(session, fruit, 200)
    member = make_member()
    booked = loyalty.earn_for_reported_sale(
        session,
        member.id,
        loyalty.Source(SourceType.POS_SALE, "CAT-1"),
        [(10_000, fruit.id), (10_000, vegetables.id), (10_000, bread.id)],
        [],
        points_per_yuan=1,
    )
    # fruit ×2 (its own rule beats fresh's), vegetables ×1.5 (from fresh), bread ×1
    assert booked.entry.points == 200 + 150 + 100
    applied = booked.entry.multipliers
    assert applied is not None
    assert sorted((c["rule_id"], c["eligible_fen"]) for c in applied["categories"]) == sorted(
        [(str(fresh_rule.id), 10_000), (str(fruit_rule.id), 10_000)]
    )
    assert applied["campaign"] is None
    assert applied["tier"] == {"tier": "standard", "multiplier_pct": 100}


def test_a_till_sale_earns_at_the_campaign_of_its_store_and_channel(
    client: TestClient,
    chain: Chain,
    session: Session,
    make_member: MakeMember,
    test_db: Database,
) -> None:
    other_store = chain.open_store()
    campaign_rule(session, 300, channels=frozenset({"app", "mini_program"}))  # online only
    campaign_rule(session, 500, stores=frozenset({other_store.id}))  # another store's opening
    ours = campaign_rule(session, 200, channels=frozenset({"pos"}), stores={chain.store.id})
    session.commit()
    member = make_member()
    sale = _till_sale(client, chain, member.id, chain.skus[:2])
    _relay(test_db)
    entry = _earned(session, sale["order_id"])
    assert entry.points == 40  # 20 yuan × 2
    assert entry.multipliers is not None
    assert entry.multipliers["campaign"] == {
        "rule_id": str(ours.id),
        "name": ours.name,
        "multiplier_pct": 200,
    }


def test_a_till_sale_uploaded_late_earns_at_the_campaign_running_when_it_was_sold(
    client: TestClient,
    chain: Chain,
    session: Session,
    make_member: MakeMember,
    test_db: Database,
) -> None:
    now = utcnow()
    # HQ set it up before it ran; it has ended by the time the offline till uploads.
    campaign_rule(session, 200, starts=now - 3 * DAY, ends=now - DAY, created_at=now - 4 * DAY)
    session.commit()
    member = make_member()
    during = _till_sale(client, chain, member.id, chain.skus[:1], occurred_at=now - 2 * DAY)
    after = _till_sale(client, chain, member.id, chain.skus[:1])
    _relay(test_db)
    assert _earned(session, during["order_id"]).points == 20
    assert _earned(session, after["order_id"]).points == 10


def test_a_deactivated_campaign_no_longer_applies_and_a_replay_earns_nothing_twice(
    client: TestClient,
    chain: Chain,
    session: Session,
    make_member: MakeMember,
    test_db: Database,
) -> None:
    double = campaign_rule(session, 200)
    session.commit()
    member = make_member()
    first = _till_sale(client, chain, member.id, chain.skus[:1])
    _relay(test_db)
    assert _earned(session, first["order_id"]).points == 20

    earn_rules.deactivate_earn_rule(session, double.id)
    session.commit()
    # The completion delivered again after HQ changed the rules: the first booking stands.
    completed = session.scalars(
        select(OutboxEvent).where(
            OutboxEvent.type == "order.completed", OutboxEvent.aggregate_id == first["order_id"]
        )
    ).one()
    for registration in HANDLERS["order.completed"]:
        handle(session, registration, PublishedEvent.of(completed))
    earned = session.scalar(
        select(func.count())
        .select_from(PointsEntry)
        .where(PointsEntry.source_id == first["order_id"], PointsEntry.kind == EntryKind.EARN)
    )
    assert earned == 1
    assert loyalty.points_balance(session, member.id, utcnow()).balance == 20

    second = _till_sale(client, chain, member.id, chain.skus[:1])
    _relay(test_db)
    assert _earned(session, second["order_id"]).points == 10
    assert loyalty.verify(session).clean


def test_a_till_sale_earns_at_its_skus_category_rules(
    client: TestClient,
    chain: Chain,
    session: Session,
    catalog: CatalogFactory,
    make_member: MakeMember,
    test_db: Database,
) -> None:
    fresh = catalog.category()
    fruit = catalog.category(parent=fresh)
    apple = catalog.product(category=fruit).skus[0]
    chain.stock.receive(chain.store, apple, 5)
    category_rule(session, fresh, 300)
    session.commit()
    member = make_member()
    sale = _till_sale(client, chain, member.id, [apple, chain.skus[0]])
    _relay(test_db)
    entry = _earned(session, sale["order_id"])
    assert entry.points == 30 + 10
    assert entry.multipliers is not None
    [applied] = entry.multipliers["categories"]
    assert (applied["category_id"], applied["eligible_fen"]) == (str(fresh.id), 1_000)


def test_a_category_holds_one_live_rule_and_every_change_is_audited(
    session: Session, catalog: CatalogFactory
) -> None:
    wine = catalog.category()
    first = category_rule(session, wine, 150)
    with pytest.raises(AlreadyExists) as taken:
        category_rule(session, wine, 200)
    assert taken.value.extra["earn_rule_id"] == str(first.id)
    stopped = earn_rules.deactivate_earn_rule(session, first.id)
    assert (stopped.active, stopped.deactivated_at is not None) == (False, True)
    assert earn_rules.deactivate_earn_rule(session, first.id).deactivated_at == (
        stopped.deactivated_at
    )
    second = category_rule(session, wine, 200)
    actions = session.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.subject_id.in_([str(first.id), str(second.id)]))
        .order_by(AuditEntry.id)
    ).all()
    assert actions == ["earn_rule.created", "earn_rule.deactivated", "earn_rule.created"]
