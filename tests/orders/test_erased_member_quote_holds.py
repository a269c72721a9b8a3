"""Her erasure lets go of the stock her open checkout quotes held: nobody is left to place
them, so the stock is available again at once, in the erasure's own transaction, rather than
blocked until the quotes' holds run out. A quote she placed is an order, and stays one; the
erasure's audit entry counts the quotes it let go of."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.members.conftest import MakeMember
from tests.orders.conftest import Chain, ok, pay_by_wallet, place, quote, store_step
from zhongtai.core.audit import AuditEntry
from zhongtai.integrations.providers import Providers
from zhongtai.inventory.models import Reservation, ReservationStatus
from zhongtai.members import service as members
from zhongtai.members.models import Member
from zhongtai.orders.models import Order, Quote


def _pickup(chain: Chain, member_id: Any, *quantities: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "fulfillment_type": "pickup",
        "store_id": str(chain.store.id),
        "lines": chain.basket(*quantities),
    }
    if member_id is not None:
        body["member_id"] = str(member_id)
    return body


def _stock(chain: Chain, sku: int) -> tuple[int, int]:
    balance = chain.stock.balance(chain.store, chain.skus[sku])
    assert balance is not None
    return balance.on_hand, balance.reserved


def _holds(session: Session, quote_id: str) -> list[ReservationStatus]:
    session.expire_all()
    held = session.get(Quote, uuid.UUID(quote_id))
    assert held is not None
    return [
        session.scalars(
            select(Reservation.status).where(Reservation.id == uuid.UUID(reservation_id))
        ).one()
        for reservation_id in held.reservation_ids
    ]


def _erase(session: Session, member: Member) -> dict[str, Any]:
    """Erase her; what her erasure's audit entry says it forgot."""
    members.erase_member(session, member.id)
    session.commit()
    [entry] = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "member.erased", AuditEntry.subject_id == str(member.id)
        )
    ).all()
    assert entry.after is not None
    forgotten: dict[str, Any] = entry.after["forgotten"]
    return forgotten


@pytest.mark.parametrize("quoted_as", ["her own id", "an id merged into her"])
def test_her_erasure_lets_go_of_the_stock_her_open_quotes_held_at_once(
    client: TestClient, chain: Chain, session: Session, make_member: MakeMember, quoted_as: str
) -> None:
    member = make_member()
    quoted_for = member.id
    if quoted_as == "an id merged into her":
        duplicate = make_member()
        members.merge_members(session, member.id, duplicate.id)
        session.commit()
        quoted_for = duplicate.id
    first = quote(client, chain.app, _pickup(chain, quoted_for, 2))
    second = quote(client, chain.app, _pickup(chain, quoted_for, 3, 4))
    assert (_stock(chain, 0), _stock(chain, 1)) == ((10, 5), (10, 4))

    forgotten = _erase(session, member)

    assert (_stock(chain, 0), _stock(chain, 1)) == ((10, 0), (10, 0))
    assert _holds(session, first["id"]) == [ReservationStatus.RELEASED]
    assert _holds(session, second["id"]) == [ReservationStatus.RELEASED]
    assert forgotten["released_quotes"] == 2
    # Another customer may have every unit at once, not once her quotes would have run out.
    everything = quote(client, chain.app, _pickup(chain, None, 10, 10))
    assert everything["total"] > 0
    assert (_stock(chain, 0), _stock(chain, 1)) == ((10, 10), (10, 10))


def test_a_quote_she_placed_stays_her_order_with_its_stock_and_only_her_open_ones_are_let_go(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    make_member: MakeMember,
) -> None:
    member = make_member()
    bought = quote(client, chain.app, _pickup(chain, member.id, 2))
    order = place(client, chain.app, bought["id"])
    pay_by_wallet(client, providers, chain.app, order["id"])
    for step in ("accept", "start-picking"):
        store_step(client, chain.clerk, order["id"], step)
    store_step(client, chain.clerk, order["id"], "pack", {"packages": 1})
    store_step(client, chain.clerk, order["id"], "ready")
    tracking = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))
    handed = ok(
        client.post(
            "/api/v1/fulfillment/pickups",
            json={"order": order["number"], "code": tracking["pickup"]["code"]},
            headers=chain.clerk,
        )
    )
    assert handed["status"] == "completed"
    still_open = quote(client, chain.app, _pickup(chain, member.id, 1, 1))
    assert (_stock(chain, 0), _stock(chain, 1)) == ((8, 1), (10, 1))

    forgotten = _erase(session, member)

    assert forgotten["released_quotes"] == 1
    assert _holds(session, still_open["id"]) == [ReservationStatus.RELEASED]
    assert _holds(session, bought["id"]) == [ReservationStatus.CONFIRMED]
    assert (_stock(chain, 0), _stock(chain, 1)) == ((8, 0), (10, 0))
    placed = session.get(Order, uuid.UUID(order["id"]))
    assert placed is not None and placed.member_id == member.id
    assert session.scalar(select(Quote.order_id).where(Quote.id == uuid.UUID(bought["id"]))) == (
        placed.id
    )


def test_erasing_a_member_without_open_quotes_lets_go_of_nothing(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    assert _erase(session, member)["released_quotes"] == 0


def test_erasing_her_again_lets_go_of_nothing_more(
    client: TestClient, chain: Chain, session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    quote(client, chain.app, _pickup(chain, member.id, 2))
    _erase(session, member)
    quote(client, chain.app, _pickup(chain, None, 3))

    assert _erase(session, member)["released_quotes"] == 1
    members.erase_member(session, member.id)
    session.commit()

    assert _stock(chain, 0) == (10, 3), "another customer's hold is untouched"
