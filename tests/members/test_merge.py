"""Merging the same person found twice: everything moves to the survivor, once, traceably."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.inventory.conftest import StockFactory
from tests.members.conftest import MakeMember, new_phone
from tests.orders.conftest import Chain, new_id, ok, place, quote
from zhongtai.core.audit import AuditEntry
from zhongtai.core.auth.roles import Channel
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, InvalidInput
from zhongtai.core.outbox import OutboxEvent
from zhongtai.loyalty import service as loyalty
from zhongtai.loyalty.models import PointsLot, SourceType
from zhongtai.members import service
from zhongtai.members.models import ConsentChannel, IdentityKind, MemberStatus
from zhongtai.members.pii import PiiCipher
from zhongtai.orders.models import Order, Quote


def _sale(n: str) -> loyalty.Source:
    return loyalty.Source(SourceType.POS_SALE, n)


def test_a_merge_moves_identities_consents_and_points_to_the_survivor(
    session: Session, cipher: PiiCipher, make_member: MakeMember
) -> None:
    phone, card = new_phone(), "CARD-77"
    survivor = make_member(phone, name="周洁")
    duplicate = make_member(birthday=date(1990, 7, 7))
    service.link_identity(session, cipher, duplicate.id, IdentityKind.POS_CARD, card)
    service.set_consent(session, duplicate.id, ConsentChannel.WECOM, granted=True, source="guide")
    loyalty.earn_points(session, survivor.id, _sale("A"), 100)
    loyalty.earn_points(session, duplicate.id, _sale("B"), 250)

    trace = service.merge_members(session, survivor.id, duplicate.id)

    assert service.find_member_id(session, cipher, IdentityKind.POS_CARD, card) == survivor.id
    assert len(service.identities_of(session, survivor.id)) == 3  # her phone, its phone, card
    kept = service.get_member(session, survivor.id)
    assert (kept.name, kept.birthday) == ("周洁", date(1990, 7, 7))
    wecom = next(
        c for c in service.consents_of(session, survivor.id) if c.channel is ConsentChannel.WECOM
    )
    assert wecom.granted
    assert loyalty.points_balance(session, survivor.id, utcnow()).balance == 350
    assert (
        session.scalar(
            select(func.count()).select_from(PointsLot).where(PointsLot.member_id == duplicate.id)
        )
        == 0
    )
    assert loyalty.verify(session).clean
    assert trace.moved["points"] == {
        "lots": 1,
        "points": 250,
        "debt": 0,
        "tier": "standard",
        "coupons": 0,
    }
    [audit] = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "member.merged", AuditEntry.subject_id == str(duplicate.id)
        )
    ).all()
    assert audit.after is not None and audit.after["survivor_id"] == str(survivor.id)
    assert len(trace.moved["identities"]) == 2


def test_the_merged_members_id_still_finds_the_survivor(
    session: Session, make_member: MakeMember
) -> None:
    survivor, duplicate = make_member(), make_member()
    service.merge_members(session, survivor.id, duplicate.id)
    assert service.get_member(session, duplicate.id).id == survivor.id
    session.refresh(duplicate)
    assert (duplicate.status, duplicate.merged_into_id) == (MemberStatus.MERGED, survivor.id)


def test_merging_the_same_pair_again_answers_the_first_merge_and_changes_nothing(
    session: Session, make_member: MakeMember
) -> None:
    survivor, duplicate = make_member(), make_member()
    loyalty.earn_points(session, duplicate.id, _sale("C"), 40)
    first = service.merge_members(session, survivor.id, duplicate.id)
    second = service.merge_members(session, survivor.id, duplicate.id)
    assert second.id == first.id
    assert loyalty.points_balance(session, survivor.id, utcnow()).balance == 40
    events = session.scalar(
        select(func.count()).where(
            OutboxEvent.type == "member.merged", OutboxEvent.aggregate_id == str(survivor.id)
        )
    )
    assert events == 1


def test_a_replayed_sale_after_a_merge_does_not_earn_twice(
    session: Session, make_member: MakeMember
) -> None:
    survivor, duplicate = make_member(), make_member()
    loyalty.earn_points(session, duplicate.id, _sale("D"), 70)
    service.merge_members(session, survivor.id, duplicate.id)
    replay = loyalty.earn_points(session, duplicate.id, _sale("D"), 70)
    assert replay.replayed
    assert loyalty.points_balance(session, survivor.id, utcnow()).balance == 70


def test_merges_chain_into_one_hop_to_the_last_survivor(
    session: Session, make_member: MakeMember
) -> None:
    a, b, c = make_member(), make_member(), make_member()
    service.merge_members(session, b.id, a.id)
    service.merge_members(session, c.id, b.id)
    assert service.get_member(session, a.id).id == c.id
    session.refresh(a)
    assert a.merged_into_id == c.id


def test_a_member_cannot_merge_with_herself_nor_into_a_merged_member(
    session: Session, make_member: MakeMember
) -> None:
    a, b, c = make_member(), make_member(), make_member()
    with pytest.raises(InvalidInput):
        service.merge_members(session, a.id, a.id)
    service.merge_members(session, a.id, b.id)
    with pytest.raises(Conflict, match="already merged"):
        service.merge_members(session, b.id, c.id)
    with pytest.raises(Conflict, match="already merged"):
        service.merge_members(session, c.id, b.id)


def test_a_debt_of_one_is_paid_by_the_points_of_the_other_when_they_merge(
    session: Session, make_member: MakeMember
) -> None:
    survivor, duplicate = make_member(), make_member()
    loyalty.earn_points(session, duplicate.id, _sale("E"), 100, basis_fen=10_000)
    loyalty.redeem_points(session, duplicate.id, loyalty.Source(SourceType.ORDER, "O-E"), 100)
    loyalty.reverse_points(
        session,
        duplicate.id,
        loyalty.Source(SourceType.RETURN, "R-E"),
        earned_by=_sale("E"),
        returned_fen=10_000,
    )
    loyalty.earn_points(session, survivor.id, _sale("F"), 300)
    service.merge_members(session, survivor.id, duplicate.id)
    balance = loyalty.points_balance(session, survivor.id, utcnow())
    assert (balance.balance, balance.debt) == (200, 0)
    assert loyalty.verify(session).clean


@pytest.fixture
def shop(session: Session, factory: Factory) -> Chain:
    """The orders tests' small chain: one store with stock, the app's key, a clerk and HQ."""
    return Chain(session, factory, StockFactory(session, factory))


def _till_sale(client: TestClient, chain: Chain, member_id: uuid.UUID) -> str:
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    sale = {
        "client_sale_id": new_id(),
        "member_id": str(member_id),
        "lines": [{"sku_id": str(chain.skus[0].id), "quantity": 1}],
        "tenders": [{"type": "cash", "amount": 10_000}],
    }
    return str(ok(client.post("/api/v1/pos/sales", json=sale, headers=till), 201)["order_id"])


def _app_order(client: TestClient, chain: Chain, member_id: uuid.UUID) -> str:
    body = {
        "fulfillment_type": "pickup",
        "store_id": str(chain.store.id),
        "lines": chain.basket(1),
        "member_id": str(member_id),
    }
    return str(place(client, chain.app, quote(client, chain.app, body)["id"])["id"])


def _orders_of(session: Session, member_id: uuid.UUID) -> set[str]:
    return {str(i) for i in session.scalars(select(Order.id).where(Order.member_id == member_id))}


def test_a_merge_moves_her_orders_of_every_channel_to_the_survivor_and_the_trace_names_them(
    client: TestClient, shop: Chain, session: Session, make_member: MakeMember
) -> None:
    survivor, duplicate = make_member(), make_member()
    session.commit()
    own = _till_sale(client, shop, survivor.id)
    moved = {_till_sale(client, shop, duplicate.id), _app_order(client, shop, duplicate.id)}

    trace = service.merge_members(session, survivor.id, duplicate.id)

    assert _orders_of(session, survivor.id) == moved | {own}
    assert _orders_of(session, duplicate.id) == set()
    assert trace.moved["orders"] == {"orders": 2, "order_ids": sorted(moved), "quotes": 1}
    quotes = session.scalar(
        select(func.count()).select_from(Quote).where(Quote.member_id == duplicate.id)
    )
    assert quotes == 0
    [audit] = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "member.merged", AuditEntry.subject_id == str(duplicate.id)
        )
    ).all()
    assert audit.after is not None
    assert sorted(audit.after["moved"]["orders"]["order_ids"]) == sorted(moved)


def test_merging_again_moves_no_order_and_answers_the_first_trace(
    client: TestClient, shop: Chain, session: Session, make_member: MakeMember
) -> None:
    survivor, duplicate = make_member(), make_member()
    session.commit()
    sale = _till_sale(client, shop, duplicate.id)
    first = service.merge_members(session, survivor.id, duplicate.id)

    again = service.merge_members(session, survivor.id, duplicate.id)

    assert again.id == first.id
    assert again.moved["orders"] == {"orders": 1, "order_ids": [sale], "quotes": 0}
    assert _orders_of(session, survivor.id) == {sale}
    merges = session.scalar(
        select(func.count()).where(
            AuditEntry.action == "member.merged", AuditEntry.subject_id == str(duplicate.id)
        )
    )
    assert merges == 1


def test_after_a_merge_her_data_export_lists_the_orders_of_both(
    client: TestClient,
    shop: Chain,
    session: Session,
    cipher: PiiCipher,
    make_member: MakeMember,
) -> None:
    survivor, duplicate = make_member(), make_member()
    session.commit()
    orders = {_till_sale(client, shop, survivor.id), _app_order(client, shop, duplicate.id)}
    service.merge_members(session, survivor.id, duplicate.id)

    exported = service.export_member(session, cipher, duplicate.id)["orders"]

    assert {o["id"] for o in exported} == orders
    pickup = next(o for o in exported if o["channel"] == "app")
    assert (pickup["fulfillment_type"], pickup["status"]) == ("pickup", "created")
    assert pickup["store_name"] == shop.store.name
    assert [line["quantity"] for line in pickup["lines"]] == [1]
