"""A member's checkout and order answers stored under an Idempotency-Key (how far she lives from
each store, her contact name and masked phone) go with her erasure: a retry answers 410
idempotency-key-forgotten and runs nothing again. Answers about nobody's order are kept."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.members.conftest import MakeMember
from tests.orders.conftest import Chain, ok, pay_by_wallet
from zhongtai.core.idempotency import IdempotencyRecord
from zhongtai.integrations.providers import Providers
from zhongtai.members import service as members
from zhongtai.orders.models import Order

CONTACT = "孙丽丽"
ADDRESS = {"latitude": 31.2404, "longitude": 121.4737, "text": "黄浦区某小区 3 号楼"}


def _keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def _delivery(chain: Chain, member_id: Any = None) -> dict[str, Any]:
    return {
        "fulfillment_type": "delivery",
        "lines": chain.basket(1),
        "address": ADDRESS,
        "member_id": None if member_id is None else str(member_id),
    }


def _ordered_and_cancelled(
    client: TestClient, chain: Chain, providers: Providers, prefix: str, member_id: Any
) -> dict[str, Any]:
    """Quote, place, pay, accept and cancel an order, the steps of hers each under a key of
    ``prefix``: the body the placing sent."""
    q = ok(
        client.post(
            "/api/v1/checkout/quotes",
            json=_delivery(chain, member_id),
            headers=_keyed(chain.app, f"{prefix}-quote"),
        ),
        201,
    )
    placing = {"quote_id": q["id"], "contact_name": CONTACT, "contact_phone": "13912345678"}
    order = ok(
        client.post("/api/v1/orders", json=placing, headers=_keyed(chain.app, f"{prefix}-place")),
        201,
    )
    pay_by_wallet(client, providers, chain.app, order["id"])
    ok(
        client.post(
            f"/api/v1/fulfillment/orders/{order['id']}/accept",
            headers=_keyed(chain.clerk, f"{prefix}-accept"),
        )
    )
    ok(
        client.post(
            f"/api/v1/orders/{order['id']}/cancel",
            json={"reason": "customer changed her mind"},
            headers=_keyed(chain.app, f"{prefix}-cancel"),
        )
    )
    return placing


def _bodies(session: Session, prefix: str) -> dict[str, bytes | None]:
    session.expire_all()
    rows = session.execute(
        select(IdempotencyRecord.key, IdempotencyRecord.body).where(
            IdempotencyRecord.key.like(f"{prefix}-%")
        )
    )
    return {key: body for key, body in rows}


def test_her_erasure_forgets_her_stored_checkout_and_order_answers_and_a_retry_gets_410(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    make_member: MakeMember,
) -> None:
    her = make_member()
    placing = _ordered_and_cancelled(client, chain, providers, "hers", her.id)
    stored = _bodies(session, "hers")
    assert sorted(stored) == ["hers-accept", "hers-cancel", "hers-place", "hers-quote"]
    assert all(CONTACT.encode() in (stored[k] or b"") for k in ("hers-place", "hers-cancel"))
    assert b"distance_m" in (stored["hers-quote"] or b"")  # how far she is from each store

    members.erase_member(session, her.id)
    session.commit()

    assert _bodies(session, "hers") == dict.fromkeys(stored)
    orders = session.scalar(select(func.count()).select_from(Order))
    retried = client.post("/api/v1/orders", json=placing, headers=_keyed(chain.app, "hers-place"))
    assert retried.status_code == 410, retried.text
    assert retried.json()["type"].endswith("/idempotency-key-forgotten")
    assert CONTACT not in retried.text
    assert session.scalar(select(func.count()).select_from(Order)) == orders


def test_answers_about_an_order_of_nobody_or_of_another_member_are_kept(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    make_member: MakeMember,
) -> None:
    her, other = make_member(), make_member()
    _ordered_and_cancelled(client, chain, providers, "nobody", None)
    placing = _ordered_and_cancelled(client, chain, providers, "other", other.id)

    members.erase_member(session, her.id)
    session.commit()

    for prefix in ("nobody", "other"):
        assert all(body for body in _bodies(session, prefix).values())
    replayed = client.post("/api/v1/orders", json=placing, headers=_keyed(chain.app, "other-place"))
    assert replayed.status_code == 201 and replayed.json()["contact_name"] == CONTACT
