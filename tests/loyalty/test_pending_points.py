"""Pending points: earned from an order but not spendable until its return window has passed;
a return inside the window takes them back first, and the books still balance."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tests.members.conftest import MakeMember
from tests.orders.conftest import Chain, new_id, ok
from tests.orders.returning import return_line
from zhongtai.core.auth.roles import Channel
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.outbox import OutboxEvent
from zhongtai.integrations.relay import Relay
from zhongtai.loyalty import service as loyalty
from zhongtai.loyalty.errors import InsufficientPoints
from zhongtai.loyalty.models import EntryKind, PointsEntry, PointsLot, SourceType
from zhongtai.loyalty.settings import loyalty_settings
from zhongtai.members import service as members

Source = loyalty.Source
WINDOW = timedelta(days=7)
SECOND = timedelta(seconds=1)


def sale(n: str) -> Source:
    return Source(SourceType.POS_SALE, n)


def ret(n: str) -> Source:
    return Source(SourceType.RETURN, n)


def pending_sale(
    session: Session, member_id: uuid.UUID, n: str, points: int, at: datetime, **kw: object
) -> loyalty.Booked:
    """A sale of ``points`` yuan earning 1 point a yuan, pending for the return window."""
    return loyalty.earn_points(
        session,
        member_id,
        sale(n),
        points,
        basis_fen=points * 100,
        at=at,
        pending_until=at + WINDOW,
        **kw,  # type: ignore[arg-type]
    )


def entries(session: Session, member_id: uuid.UUID, kind: EntryKind) -> list[PointsEntry]:
    return list(
        session.scalars(
            select(PointsEntry)
            .where(PointsEntry.member_id == member_id, PointsEntry.kind == kind)
            .order_by(PointsEntry.id)
        )
    )


def test_pending_points_cannot_be_spent_until_their_window_has_passed(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    now = utcnow()
    loyalty.earn_points(session, member.id, Source(SourceType.CAMPAIGN, "welcome"), 100, at=now)
    earned = pending_sale(session, member.id, "P-1", 200, now)
    assert (earned.entry.points, earned.entry.pending_change) == (0, 200)
    assert earned.entry.matures_at == now + WINDOW

    seen = loyalty.points_balance(session, member.id, now)
    assert (seen.balance, seen.pending) == (100, 200)
    assert [(m.matures_at, m.points) for m in seen.maturing] == [(now + WINDOW, 200)]
    with pytest.raises(InsufficientPoints) as refused:
        loyalty.redeem_points(session, member.id, Source(SourceType.ORDER, "O-1"), 150, at=now)
    assert refused.value.extra == {"requested": 150, "available": 100}

    later = now + WINDOW + SECOND
    assert loyalty.points_balance(session, member.id, later).balance == 300
    spent = loyalty.redeem_points(
        session, member.id, Source(SourceType.ORDER, "O-1"), 150, at=later
    )
    assert spent.entry.balance_after == 150
    [matured] = entries(session, member.id, EntryKind.MATURE)
    assert (matured.points, matured.pending_change, matured.related_entry_id) == (
        200,
        -200,
        earned.entry.id,
    )
    assert (matured.source_type, matured.source_id) == (SourceType.POS_SALE, "P-1")
    assert matured.occurred_at == now + WINDOW
    assert loyalty.verify(session).clean


def test_a_return_inside_the_window_takes_the_sales_pending_points_and_leaves_no_debt(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    now = utcnow()
    loyalty.earn_points(session, member.id, Source(SourceType.CAMPAIGN, "gift"), 50, at=now)
    loyalty.redeem_points(session, member.id, Source(SourceType.ORDER, "O-2"), 50, at=now)
    pending_sale(session, member.id, "P-2", 100, now)

    back = loyalty.reverse_points(
        session, member.id, ret("R-2"), earned_by=sale("P-2"), returned_fen=4_000, at=now
    )
    entry = back.entry
    assert (entry.points, entry.pending_change, entry.debt_change) == (0, -40, 0)
    seen = loyalty.points_balance(session, member.id, now)
    assert (seen.balance, seen.pending, seen.debt) == (0, 60, 0)
    # What is left matures at the end of the window.
    assert loyalty.points_balance(session, member.id, now + WINDOW).balance == 60
    assert loyalty.verify(session).clean


def test_a_sale_returned_in_full_inside_its_window_leaves_nothing_to_mature(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    now = utcnow()
    pending_sale(session, member.id, "P-3", 80, now)
    loyalty.reverse_points(
        session, member.id, ret("R-3"), earned_by=sale("P-3"), returned_fen=8_000, at=now
    )
    run = loyalty.mature_points(session, now + WINDOW)
    assert (run.lots, run.points) == (1, 0)
    assert entries(session, member.id, EntryKind.MATURE) == []
    seen = loyalty.points_balance(session, member.id, now + WINDOW)
    assert (seen.balance, seen.pending, seen.debt) == (0, 0, 0)
    assert loyalty.verify(session).clean


def test_a_return_after_the_window_leaves_a_debt_that_pending_points_pay_when_they_mature(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    now = utcnow()
    pending_sale(session, member.id, "P-4", 100, now)
    later = now + WINDOW + SECOND
    loyalty.redeem_points(session, member.id, Source(SourceType.ORDER, "O-4"), 100, at=later)
    owed = loyalty.reverse_points(
        session, member.id, ret("R-4"), earned_by=sale("P-4"), returned_fen=10_000, at=later
    )
    assert (owed.entry.points, owed.entry.debt_change) == (0, 100)

    pending_sale(session, member.id, "P-5", 30, later)
    seen = loyalty.points_balance(session, member.id, later)
    assert (seen.balance, seen.pending, seen.debt) == (0, 30, 100)  # pending pays nothing yet
    matured_at = later + WINDOW
    # Read before the job runs, the matured points already show as paying the debt.
    ahead = loyalty.points_balance(session, member.id, matured_at)
    assert (ahead.balance, ahead.pending, ahead.debt) == (0, 0, 70)
    loyalty.mature_points(session, matured_at)
    [settle] = [e for e in entries(session, member.id, EntryKind.SETTLE) if e.source_id == "P-5"]
    assert (settle.points, settle.debt_change, settle.debt_after) == (-30, -30, 70)
    assert loyalty.verify(session).clean


def test_validity_counts_from_when_the_points_became_spendable(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    now = utcnow()
    pending_sale(session, member.id, "P-6", 40, now, valid_for=timedelta(days=10))
    lot = session.scalars(select(PointsLot).where(PointsLot.member_id == member.id)).one()
    assert lot.expires_at == now + WINDOW + timedelta(days=10)
    assert loyalty.points_balance(session, member.id, now + timedelta(days=12)).balance == 40
    gone = now + WINDOW + timedelta(days=10)
    assert loyalty.points_balance(session, member.id, gone).balance == 0
    run = loyalty.expire_points(session, gone)
    assert (run.lots, run.points) == (1, 40)
    assert [e.kind for e in entries(session, member.id, EntryKind.MATURE)] == [EntryKind.MATURE]
    assert loyalty.verify(session).clean


def test_the_maturing_job_matures_each_lot_once_and_announces_it(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    now = utcnow()
    pending_sale(session, member.id, "P-7", 25, now)
    assert loyalty.mature_points(session, now + WINDOW - SECOND).lots == 0
    first = loyalty.mature_points(session, now + WINDOW)
    assert (first.members, first.lots, first.points) == (1, 1, 25)
    assert loyalty.mature_points(session, now + WINDOW).lots == 0
    announced = session.scalars(
        select(OutboxEvent).where(
            OutboxEvent.type == "points.matured", OutboxEvent.aggregate_id == str(member.id)
        )
    ).all()
    assert [
        (e.payload["points"], e.payload["balance"], e.payload["pending"]) for e in announced
    ] == [(25, 25, 0)]


def test_a_merge_moves_pending_points_with_their_lots(
    session: Session, make_member: MakeMember
) -> None:
    survivor, duplicate = make_member(), make_member()
    now = utcnow()
    pending_sale(session, duplicate.id, "P-8", 60, now)
    members.merge_members(session, survivor.id, duplicate.id)
    seen = loyalty.points_balance(session, survivor.id, now)
    assert (seen.balance, seen.pending) == (0, 60)
    # The return of the duplicate's sale still finds its pending points.
    back = loyalty.reverse_points(
        session, survivor.id, ret("R-8"), earned_by=sale("P-8"), returned_fen=6_000, at=now
    )
    assert (back.entry.pending_change, back.entry.debt_change) == (-60, 0)
    assert loyalty.verify(session).clean


def test_verify_finds_pending_points_the_account_does_not_hold(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    now = utcnow()
    loyalty.earn_points(session, member.id, sale("V-1"), 70, at=now)
    session.execute(
        update(PointsLot)
        .where(PointsLot.member_id == member.id)
        .values(pending=True, matures_at=now + WINDOW)
    )
    report = loyalty.verify(session)
    assert any("pending 0, pending lots hold 70" in d.what for d in report.discrepancies)


# -- from orders, with ZHONGTAI_POINTS_PENDING_DAYS ---------------------------------------------


@pytest.fixture
def return_window(monkeypatch: pytest.MonkeyPatch) -> Iterator[timedelta]:
    monkeypatch.setenv("ZHONGTAI_POINTS_PENDING_DAYS", "7")
    loyalty_settings.cache_clear()
    yield WINDOW
    loyalty_settings.cache_clear()


def _relay(test_db: Database) -> None:
    asyncio.run(Relay(test_db.writer, holder="pending-test").run_once())


def test_an_orders_points_are_pending_for_the_return_window_and_a_return_takes_them_back(
    client: TestClient,
    chain: Chain,
    make_member: MakeMember,
    test_db: Database,
    session: Session,
    return_window: timedelta,
) -> None:
    member = make_member()
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    body = {
        "client_sale_id": new_id(),
        "member_id": str(member.id),
        "lines": [{"sku_id": str(chain.skus[0].id), "quantity": 3}],
        "tenders": [{"type": "cash", "amount": 3_000}],
    }
    done = ok(client.post("/api/v1/pos/sales", json=body, headers=till), 201)
    _relay(test_db)
    points = f"/api/v1/members/{member.id}/points"
    seen = ok(client.get(points, headers=till))
    assert (seen["balance"], seen["pending"], seen["debt"]) == (0, 30, 0)
    [maturing] = seen["maturing"]
    order = ok(client.get(f"/api/v1/orders/{done['order_id']}", headers=till))
    completed = datetime.fromisoformat(order["completed_at"])
    assert (datetime.fromisoformat(maturing["matures_at"]), maturing["points"]) == (
        completed + return_window,
        30,
    )
    [earned] = ok(client.get(f"{points}/entries", headers=till))["items"]
    assert (earned["points"], earned["pending_change"], earned["pending_after"]) == (0, 30, 30)

    return_line(client, order, till, store_id=chain.store.id)
    _relay(test_db)
    after = ok(client.get(points, headers=till))
    assert (after["balance"], after["pending"], after["debt"]) == (0, 20, 0)
    spend = client.post(
        f"{points}/redeem",
        json={"source_type": "order", "source_id": "APP-1", "points": 10},
        headers=till,
    )
    assert spend.status_code == 409 and spend.json()["available"] == 0
    assert loyalty.verify(session).clean


def test_a_sale_reported_by_a_touchpoint_is_pending_too(
    client: TestClient, chain: Chain, make_member: MakeMember, return_window: timedelta
) -> None:
    member = make_member()
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    r = client.post(
        f"/api/v1/members/{member.id}/points/earn",
        json={"source_type": "pos_sale", "source_id": "EXT-1", "lines": [{"net_fen": 5_000}]},
        headers=till,
    )
    entry = ok(r, 201)["entry"]
    assert (entry["points"], entry["pending_change"]) == (0, 50)
    assert entry["matures_at"] is not None
    assert entry["multipliers"]["eligible_fen"] == 5_000


def test_points_of_orders_are_spendable_at_once_without_the_setting(
    session: Session, make_member: MakeMember
) -> None:
    assert loyalty_settings().points_pending_days == 0
    member = make_member()
    booked = loyalty.earn_for_reported_sale(
        session, member.id, sale("NOW-1"), [(2_000, None)], [], points_per_yuan=1
    )
    assert (booked.entry.points, booked.entry.pending_change, booked.entry.matures_at) == (
        20,
        0,
        None,
    )
    held = session.scalar(
        select(func.count())
        .select_from(PointsLot)
        .where(PointsLot.member_id == member.id, PointsLot.pending.is_(True))
    )
    assert held == 0
