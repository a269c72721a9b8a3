"""Binding sources, handover, and commission from sale to payable, reversed by returns."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.guides.conftest import EnrollGuide, GuideAtWork, relay
from tests.members.conftest import MakeMember
from tests.orders.conftest import Chain, new_id, ok
from tests.orders.returning import return_line
from tests.statements import statements_sent
from zhongtai.core.audit import AuditEntry
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.guides import binding, commission, roster, workbench
from zhongtai.guides.binding_rules import BindingRule, BindingSource
from zhongtai.guides.commission_rules import CommissionBasis
from zhongtai.guides.ledger import first_of_month, mature_commission
from zhongtai.guides.models import CommissionEntry, GuideBinding, GuideStatus
from zhongtai.guides.program import change_program
from zhongtai.members import service as members
from zhongtai.members.models import Member


def _rule(session: Session, rate_bp: int = 1000) -> None:
    commission.create_rule(
        session, name="All goods", basis=CommissionBasis.PERCENT, rate_bp=rate_bp
    )
    session.commit()


def _till_sale(
    client: TestClient, chain: Chain, member_id: uuid.UUID, guide: GuideAtWork, quantity: int
) -> dict[str, Any]:
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    sale = {
        "client_sale_id": new_id(),
        "member_id": str(member_id),
        "guide_id": str(guide.id),
        "lines": [{"sku_id": str(chain.skus[0].id), "quantity": quantity}],
        "tenders": [{"type": "cash", "amount": 1000 * quantity}],
    }
    done = ok(client.post("/api/v1/pos/sales", json=sale, headers=till), 201)
    return ok(client.get(f"/api/v1/orders/{done['order_id']}", headers=till)) | {"till": till}


def _return_one(client: TestClient, chain: Chain, order: dict[str, Any]) -> None:
    return_line(client, order, order["till"], store_id=chain.store.id)


def _entries(session: Session, guide: GuideAtWork) -> list[tuple[str, int, str]]:
    rows = session.scalars(
        select(CommissionEntry)
        .where(CommissionEntry.guide_id == guide.id)
        .order_by(CommissionEntry.created_at, CommissionEntry.kind)
    )
    return [(e.kind.value, e.amount, e.status.value) for e in rows]


@dataclass
class GuideOnCommission:
    """A guide of the chain's store under a 10 % commission rule, and a customer she has yet
    to sell to."""

    client: TestClient
    chain: Chain
    test_db: Database
    guide: GuideAtWork
    member: Member

    def sells(self, quantity: int) -> dict[str, Any]:
        """She sells ``quantity`` units to the customer at the till; the events are relayed."""
        order = _till_sale(self.client, self.chain, self.member.id, self.guide, quantity)
        relay(self.test_db)
        return order


@pytest.fixture
def on_commission(
    client: TestClient,
    chain: Chain,
    enroll_guide: EnrollGuide,
    make_member: MakeMember,
    test_db: Database,
    session: Session,
) -> GuideOnCommission:
    guide = enroll_guide(chain.store)
    _rule(session)
    member = make_member()
    session.commit()
    return GuideOnCommission(client, chain, test_db, guide, member)


def test_till_sale_naming_a_guide_binds_her_customer_and_credits_her_the_sale(
    client: TestClient, on_commission: GuideOnCommission, session: Session
) -> None:
    guide, member = on_commission.guide, on_commission.member
    on_commission.sells(3)
    current = binding.current_binding(session, member.id)
    assert current is not None
    assert (current.guide_id, current.source) == (guide.id, BindingSource.IN_STORE_SALE)
    assert _entries(session, guide) == [("earned", 300, "pending")]
    customers = ok(client.get("/api/v1/guides/me/customers", headers=guide.headers))["items"]
    assert [c["member_id"] for c in customers] == [str(member.id)]
    assert customers[0]["phone"].count("*") == 4 and customers[0]["orders_12m"] == 1


def test_a_return_before_payment_nets_out_in_the_same_pending_month(
    client: TestClient,
    chain: Chain,
    on_commission: GuideOnCommission,
    test_db: Database,
    session: Session,
) -> None:
    guide = on_commission.guide
    order = on_commission.sells(3)
    _return_one(client, chain, order)
    relay(test_db)
    assert _entries(session, guide) == [("earned", 300, "pending"), ("reversed", -100, "pending")]
    statement = ok(
        client.get(f"/api/v1/guides/me/statements/{utcnow():%Y-%m}", headers=guide.headers)
    )
    assert statement["totals"]["pending"] == 200
    assert statement["attributed_sales"] == 2000
    assert "taken back" in statement["entries"][1]["reason"]


def test_a_return_after_the_commission_became_payable_is_deducted_as_payable(
    client: TestClient,
    chain: Chain,
    on_commission: GuideOnCommission,
    test_db: Database,
    session: Session,
) -> None:
    guide = on_commission.guide
    order = on_commission.sells(2)
    assert mature_commission(session, now=utcnow() + timedelta(days=8)) == 1
    session.commit()
    _return_one(client, chain, order)
    relay(test_db)
    _return_one(client, chain, order)
    relay(test_db)
    assert _entries(session, guide) == [
        ("earned", 200, "payable"),
        ("reversed", -100, "payable"),
        ("reversed", -100, "payable"),
    ]


def test_a_replayed_completion_credits_nothing_twice(
    on_commission: GuideOnCommission, session: Session
) -> None:
    from zhongtai.core.outbox import OutboxEvent
    from zhongtai.integrations.handlers import HANDLERS, PublishedEvent, handle

    guide = on_commission.guide
    order = on_commission.sells(1)
    completed = session.scalars(
        select(OutboxEvent).where(
            OutboxEvent.type == "order.completed", OutboxEvent.aggregate_id == order["id"]
        )
    ).one()
    for registration in HANDLERS["order.completed"]:
        handle(session, registration, PublishedEvent.of(completed))
    assert _entries(session, guide) == [("earned", 100, "pending")]


def test_a_leaving_guides_customers_go_to_the_colleagues_with_the_fewest_and_history_stays(
    chain: Chain, enroll_guide: EnrollGuide, make_member: MakeMember, session: Session
) -> None:
    leaving, busy, idle = (enroll_guide(chain.store) for _ in range(3))
    now = utcnow()
    binding.touch_member(session, make_member().id, busy.id, BindingSource.WECOM, at=now)
    hers = [make_member().id for _ in range(3)]
    for member_id in hers:
        binding.touch_member(session, member_id, leaving.id, BindingSource.SHARE_LINK, at=now)

    departure = roster.guide_leaves(session, leaving.id, at=now + timedelta(minutes=1))

    assert departure.handed_over == {idle.id: 2, busy.id: 1}
    assert roster.get_guide(session, leaving.id).status is GuideStatus.LEFT
    for member_id in hers:
        history = session.scalars(
            select(GuideBinding)
            .where(GuideBinding.member_id == member_id)
            .order_by(GuideBinding.bound_at)
        ).all()
        assert (history[0].guide_id, history[0].end_reason) == (leaving.id, "handover")
        assert history[-1].source is BindingSource.HANDOVER and history[-1].ended_at is None
    # She earns nothing more and binds nobody.
    outcome = binding.touch_member(
        session, make_member().id, leaving.id, BindingSource.SHARE_LINK, at=now
    )
    assert outcome.guide_id is None


def test_a_manager_names_the_successor_who_takes_every_customer(
    client: TestClient,
    chain: Chain,
    enroll_guide: EnrollGuide,
    make_member: MakeMember,
    session: Session,
) -> None:
    leaving, other, successor = (enroll_guide(chain.store) for _ in range(3))
    for _ in range(2):
        binding.touch_member(
            session, make_member().id, leaving.id, BindingSource.WECOM, at=utcnow()
        )
    manager = chain.factory.staff_headers(Role.STORE_MANAGER, [chain.store])
    answer = ok(
        client.post(
            f"/api/v1/guides/{leaving.id}/leave",
            json={"successor_id": str(successor.id)},
            headers=manager,
        )
    )
    assert answer["handed_over"] == {str(successor.id): 2}
    elsewhere = chain.factory.staff_headers(Role.STORE_MANAGER, [chain.factory.location()])
    refused = client.post(f"/api/v1/guides/{other.id}/leave", json={}, headers=elsewhere)
    assert refused.status_code == 403


def test_last_touch_takes_her_over_only_after_the_protection_and_first_touch_never(
    chain: Chain, enroll_guide: EnrollGuide, make_member: MakeMember, session: Session
) -> None:
    first, second = enroll_guide(chain.store), enroll_guide(chain.store)
    member = make_member()
    now = utcnow()
    change_program(session, binding_rule=BindingRule.LAST_TOUCH, protection_days=30)
    binding.touch_member(session, member.id, first.id, BindingSource.SHARE_LINK, at=now)
    early = binding.touch_member(
        session, member.id, second.id, BindingSource.SHARE_LINK, at=now + timedelta(days=29)
    )
    assert (early.decision.verdict, early.guide_id) == ("refuse", first.id)
    late = binding.touch_member(
        session, member.id, second.id, BindingSource.SHARE_LINK, at=now + timedelta(days=31)
    )
    assert (late.decision.verdict, late.guide_id) == ("rebind", second.id)

    change_program(session, binding_rule=BindingRule.FIRST_TOUCH)
    much_later = binding.touch_member(
        session, member.id, first.id, BindingSource.SHARE_LINK, at=now + timedelta(days=400)
    )
    assert much_later.guide_id == second.id


def test_merging_members_keeps_the_survivors_guide_or_takes_the_merged_ones(
    chain: Chain, enroll_guide: EnrollGuide, make_member: MakeMember, session: Session
) -> None:
    guide = enroll_guide(chain.store)
    survivor, duplicate = make_member(), make_member()
    binding.touch_member(session, duplicate.id, guide.id, BindingSource.WECOM, at=utcnow())
    members.merge_members(session, survivor.id, duplicate.id)
    current = binding.current_binding(session, survivor.id)
    assert current is not None and current.guide_id == guide.id
    assert binding.current_binding(session, duplicate.id) is None


def test_a_managers_adjustment_is_audited_and_a_retried_request_adds_nothing(
    client: TestClient, chain: Chain, enroll_guide: EnrollGuide, session: Session
) -> None:
    guide = enroll_guide(chain.store)
    manager = chain.factory.staff_headers(Role.STORE_MANAGER, [chain.store])
    body = {
        "amount": -500,
        "reason": "Sale booked twice by mistake",
        "month": f"{utcnow():%Y-%m}-01",
    }
    headers = {**manager, "Idempotency-Key": "adj-1"}
    first = ok(
        client.post(
            f"/api/v1/guides/{guide.id}/commission-adjustments", json=body, headers=headers
        ),
        201,
    )
    again = ok(
        client.post(
            f"/api/v1/guides/{guide.id}/commission-adjustments", json=body, headers=headers
        ),
        201,
    )
    assert first["id"] == again["id"]
    assert _entries(session, guide) == [("adjustment", -500, "payable")]
    audit = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "commission.adjusted")
    ).all()
    assert len(audit) == 1 and audit[0].after["reason"] == "Sale booked twice by mistake"
    no_reason = client.post(
        f"/api/v1/guides/{guide.id}/commission-adjustments",
        json={**body, "reason": ""},
        headers=manager,
    )
    assert no_reason.status_code == 422
    assert _entries(session, guide) == [("adjustment", -500, "payable")]


def test_closing_a_month_books_the_target_tier_bonus_once_and_not_before_the_window(
    client: TestClient, chain: Chain, on_commission: GuideOnCommission, session: Session
) -> None:
    guide = on_commission.guide
    month = first_of_month(utcnow().date())
    commission.set_target(session, guide.id, month, 2_500)  # ¥25: ¥30 sold is 120 %
    session.commit()
    on_commission.sells(3)
    refused = client.post(f"/api/v1/commission-months/{month:%Y-%m}/close", headers=chain.hq)
    assert refused.status_code == 409
    after_window = utcnow() + timedelta(days=40)
    bonuses = commission.close_month(session, month, now=after_window)
    assert [(b.amount, b.details["multiplier_pct"]) for b in bonuses] == [(150, 150)]
    assert commission.close_month(session, month, now=after_window) == []
    assert sorted(_entries(session, guide)) == [
        ("earned", 300, "payable"),
        ("target_bonus", 150, "payable"),
    ]
    assert date(month.year, month.month, 1) == month


def test_the_store_board_ranks_every_guide_as_her_own_view_does_in_the_same_statements(
    client: TestClient,
    chain: Chain,
    enroll_guide: EnrollGuide,
    make_member: MakeMember,
    test_db: Database,
    session: Session,
) -> None:
    _rule(session)
    top, second = enroll_guide(chain.store), enroll_guide(chain.store)
    session.commit()
    for guide, quantity in ((second, 1), (top, 3), (top, 1)):
        _till_sale(client, chain, make_member().id, guide, quantity)
        session.commit()
    relay(test_db)
    now = utcnow()
    month = first_of_month(now.date())

    def board() -> tuple[list[workbench.Performance], int]:
        with statements_sent(session.connection()) as seen:
            rows = workbench.store_performance(session, chain.store.id, month, until=now)
        return rows, len(seen)

    rows, statements = board()
    assert [(p.guide_id, p.rank_in_store, p.attributed_sales) for p in rows[:2]] == [
        (top.id, 1, 4000),
        (second.id, 2, 1000),
    ]
    assert (rows[0].customers, rows[0].attributed_orders, rows[0].commission.pending) == (2, 2, 400)
    for p in rows:
        assert p == workbench.performance(session, p.guide_id, chain.store.id, month, until=now)
    enroll_guide(chain.store)
    enroll_guide(chain.store)
    more, statements_with_more = board()
    assert len(more) == len(rows) + 2
    assert statements_with_more == statements
