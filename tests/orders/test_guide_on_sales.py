"""The guide a sale credits must be one who may be credited with it: a guide still with the
chain and, at the till, a guide of the store that sells. Anyone else is refused as a 422 naming
``guide_id`` (in a till's batch, for that sale alone), before commission could pay her."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from tests.factories import APP_CALLER
from tests.guides.conftest import EnrollGuide, enroll_guide  # noqa: F401 (fixture)
from tests.orders.conftest import Chain, new_id, ok, place, quote
from tests.orders.test_checkout_reads_and_writes import delivery_quote, statements_on
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Channel, Permission, Role
from zhongtai.core.clock import utcnow
from zhongtai.guides import roster
from zhongtai.orders import pos
from zhongtai.orders.kinds import TenderType
from zhongtai.orders.models import Order
from zhongtai.orders.placing import PlaceOrder, place_order
from zhongtai.orders.tender_rules import Tender


def _sale(chain: Chain, guide_id: object) -> dict[str, Any]:
    return {
        "client_sale_id": new_id(),
        "guide_id": str(guide_id),
        "lines": [{"sku_id": str(chain.skus[0].id), "quantity": 1}],
        "tenders": [{"type": "cash", "amount": 1000}],
    }


def _refused_for_guide(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert [e["field"] for e in problem["errors"]] == ["guide_id"]
    return problem


def _recorded(session: Session, client_sale_id: str) -> bool:
    found = session.scalar(
        select(Order.id).where(Order.client_sale_id == uuid.UUID(client_sale_id))
    )
    return found is not None


def test_a_till_sale_credits_an_active_guide_of_its_store(
    client: TestClient,
    chain: Chain,
    enroll_guide: EnrollGuide,  # noqa: F811 (fixture)
) -> None:
    guide = enroll_guide(chain.store)
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)

    done = ok(client.post("/api/v1/pos/sales", json=_sale(chain, guide.id), headers=till), 201)

    order = ok(client.get(f"/api/v1/orders/{done['order_id']}", headers=till))
    assert order["guide_id"] == str(guide.id)


@pytest.mark.parametrize("who", ["nobody", "a clerk", "a guide who left", "another store's"])
def test_a_till_sale_naming_someone_who_is_not_an_active_guide_of_its_store_is_refused(
    client: TestClient,
    chain: Chain,
    session: Session,
    enroll_guide: EnrollGuide,  # noqa: F811 (fixture)
    who: str,
) -> None:
    if who == "nobody":
        guide_id: object = uuid.uuid4()
    elif who == "a clerk":
        guide_id = chain.factory.staff(Role.STORE_STAFF, [chain.store]).id
    elif who == "a guide who left":
        guide_id = enroll_guide(chain.store).id
        roster.guide_leaves(session, guide_id, at=utcnow())  # type: ignore[arg-type]
    else:
        guide_id = enroll_guide(chain.open_store()).id
    session.commit()
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    sale = _sale(chain, guide_id)
    on_hand = chain.stock.balance(chain.store, chain.skus[0]).on_hand  # type: ignore[union-attr]

    problem = _refused_for_guide(client.post("/api/v1/pos/sales", json=sale, headers=till))

    assert str(guide_id) in problem["detail"]
    assert not _recorded(session, sale["client_sale_id"])
    session.expire_all()
    assert chain.stock.balance(chain.store, chain.skus[0]).on_hand == on_hand  # type: ignore[union-attr]


def _till(chain: Chain) -> Principal:
    return Principal(
        kind="api_key",
        id=uuid.uuid4(),
        name="till",
        permissions=frozenset(Permission),
        store_ids=frozenset({chain.store.id}),
        channel=Channel.POS,
        terminal_id="T7",
    )


def _offline_sale(chain: Chain, guide_id: uuid.UUID | None, minutes_ago: int) -> pos.PosSale:
    return pos.PosSale(
        client_sale_id=uuid.uuid4(),
        store_id=chain.store.id,
        terminal_code="T7",
        lines=[pos.PosLine(chain.skus[0].id, 1, unit_price=990)],
        tenders=[Tender(TenderType.CASH, 1000)],
        occurred_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
        guide_id=guide_id,
    )


def test_an_offline_batch_rejects_only_the_sales_naming_a_guide_it_may_not_credit(
    session: Session,
    connection: Connection,
    chain: Chain,
    enroll_guide: EnrollGuide,  # noqa: F811 (fixture)
) -> None:
    ours = enroll_guide(chain.store).guide.staff_id
    theirs = enroll_guide(chain.open_store()).guide.staff_id
    gone = enroll_guide(chain.store).guide.staff_id
    roster.guide_leaves(session, gone, at=utcnow())
    session.commit()
    sales = [
        _offline_sale(chain, ours, 50),
        _offline_sale(chain, uuid.uuid4(), 40),
        _offline_sale(chain, theirs, 30),
        _offline_sale(chain, gone, 20),
        _offline_sale(chain, None, 10),
        _offline_sale(chain, ours, 5),
    ]

    with statements_on(connection, session) as sent:
        results = pos.upload_till_sales(session, sales, caller=_till(chain))

    assert [r.status for r in results] == [
        pos.SaleStatus.RECORDED,
        pos.SaleStatus.REJECTED,
        pos.SaleStatus.REJECTED,
        pos.SaleStatus.REJECTED,
        pos.SaleStatus.RECORDED,
        pos.SaleStatus.RECORDED,
    ]
    for rejected in (results[1], results[2], results[3]):
        assert rejected.problem is not None
        assert rejected.problem["status"] == 422
        assert [e["field"] for e in rejected.problem["errors"]] == ["guide_id"]
    assert [r.order.guide_id for r in results if r.order is not None] == [ours, None, ours]
    # The batch reads its guides once, however many sales name one.
    assert sum(1 for s in sent if s.startswith("SELECT") and "FROM guides" in s) == 1


def test_an_app_order_credits_an_active_guide_of_any_store(
    client: TestClient,
    chain: Chain,
    enroll_guide: EnrollGuide,  # noqa: F811 (fixture)
) -> None:
    # A guide sells online for her customer, whichever store fulfils the order.
    guide = enroll_guide(chain.open_store())
    q = quote(
        client,
        chain.app,
        {"fulfillment_type": "pickup", "store_id": str(chain.store.id), "lines": chain.basket(1)},
    )

    order = place(client, chain.app, q["id"], guide_id=str(guide.id))

    assert order["guide_id"] == str(guide.id)


@pytest.mark.parametrize("who", ["nobody", "a guide who left"])
def test_an_app_order_naming_someone_who_is_not_an_active_guide_is_refused_and_its_quote_stays_placeable(  # noqa: E501
    client: TestClient,
    chain: Chain,
    session: Session,
    enroll_guide: EnrollGuide,  # noqa: F811 (fixture)
    who: str,
) -> None:
    if who == "nobody":
        guide_id: object = uuid.uuid4()
    else:
        guide_id = enroll_guide(chain.store).id
        roster.guide_leaves(session, guide_id, at=utcnow())  # type: ignore[arg-type]
        session.commit()
    q = quote(
        client,
        chain.app,
        {"fulfillment_type": "pickup", "store_id": str(chain.store.id), "lines": chain.basket(1)},
    )

    problem = _refused_for_guide(
        client.post(
            "/api/v1/orders",
            json={"quote_id": q["id"], "guide_id": str(guide_id)},
            headers=chain.app,
        )
    )

    assert str(guide_id) in problem["detail"]
    assert place(client, chain.app, q["id"])["guide_id"] is None


def test_an_order_placed_with_a_guide_who_left_since_is_answered_again_on_a_retry(
    client: TestClient,
    chain: Chain,
    session: Session,
    enroll_guide: EnrollGuide,  # noqa: F811 (fixture)
) -> None:
    guide = enroll_guide(chain.store)
    q = quote(
        client,
        chain.app,
        {"fulfillment_type": "pickup", "store_id": str(chain.store.id), "lines": chain.basket(1)},
    )
    first = place(client, chain.app, q["id"], guide_id=str(guide.id))
    roster.guide_leaves(session, guide.guide.staff_id, at=utcnow())
    session.commit()

    again = client.post(
        "/api/v1/orders", json={"quote_id": q["id"], "guide_id": str(guide.id)}, headers=chain.app
    )

    assert (again.status_code, again.json()["id"]) == (200, first["id"])


def test_placing_with_a_guide_reads_her_once_and_without_one_reads_no_guide(
    session: Session,
    connection: Connection,
    chain: Chain,
    enroll_guide: EnrollGuide,  # noqa: F811 (fixture)
) -> None:
    guide_id = enroll_guide(chain.store).guide.staff_id
    with_guide, without = delivery_quote(session, chain), delivery_quote(session, chain)

    with statements_on(connection, session) as named:
        place_order(session, PlaceOrder(with_guide.id, guide_id=guide_id), caller=APP_CALLER)
    with statements_on(connection, session) as unnamed:
        place_order(session, PlaceOrder(without.id), caller=APP_CALLER)

    assert sum(1 for s in named if "FROM guides" in s) == 1
    assert not [s for s in unnamed if "guides" in s]
