"""End to end: a guide shares a product link, the member orders it online for pickup, picks
it up, and the guide's statement shows the pending commission with its reason."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.guides.conftest import EnrollGuide, relay
from tests.members.conftest import MakeMember
from tests.orders.conftest import Chain, ok, pay_by_wallet, place, quote, store_step
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.guides.ledger import mature_commission
from zhongtai.integrations.providers import Providers


def _pick_up(client: TestClient, chain: Chain, order: dict) -> dict:  # type: ignore[type-arg]
    for step in ("accept", "start-picking"):
        store_step(client, chain.clerk, order["id"], step)
    store_step(client, chain.clerk, order["id"], "pack", {"packages": 1})
    store_step(client, chain.clerk, order["id"], "ready")
    code = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))["pickup"][
        "code"
    ]
    return ok(
        client.post(
            "/api/v1/fulfillment/pickups",
            json={"order": order["number"], "code": code},
            headers=chain.clerk,
        )
    )


def test_shared_product_ordered_for_pickup_shows_as_pending_commission_with_its_reason(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    enroll_guide: EnrollGuide,
    make_member: MakeMember,
    test_db: Database,
    session: Session,
) -> None:
    guide = enroll_guide(chain.store)
    manager_view = chain.hq
    ok(
        client.post(
            "/api/v1/commission-rules",
            json={"name": "Everything", "basis": "percent", "rate_bp": 500},
            headers=chain.hq,
        ),
        201,
    )
    shared = ok(
        client.post(
            "/api/v1/guides/me/share-links",
            json={"sku_id": str(chain.skus[0].id)},
            headers=guide.headers,
        ),
        201,
    )
    assert shared["token"] in shared["url"]

    member = make_member()
    session.commit()
    opened = ok(
        client.post(
            "/api/v1/share-links/open",
            json={"token": shared["token"], "member_id": str(member.id), "channel": "mini_program"},
            headers=chain.app,
        )
    )
    assert (opened["binding"], opened["bound_guide_id"]) == ("bind", str(guide.id))

    q = quote(
        client,
        chain.app,
        {
            "fulfillment_type": "pickup",
            "store_id": str(chain.store.id),
            "member_id": str(member.id),
            "lines": chain.basket(2),
        },
    )
    order = place(client, chain.app, q["id"], contact_name="李女士", contact_phone="13900001111")
    pay_by_wallet(client, providers, chain.app, order["id"])
    assert _pick_up(client, chain, order)["status"] == "completed"
    relay(test_db)

    month = utcnow().strftime("%Y-%m")
    statement = ok(client.get(f"/api/v1/guides/me/statements/{month}", headers=guide.headers))
    [entry] = statement["entries"]
    net = order["total"]
    assert entry["kind"] == "earned" and entry["status"] == "pending"
    assert entry["amount"] == round(net * 0.05)
    assert order["number"] in entry["reason"] and "share link" in entry["reason"]
    assert statement["totals"]["pending"] == entry["amount"]
    assert statement["totals"]["payable"] == 0
    assert statement["attributed_sales"] == net

    credited = ok(
        client.get(f"/api/v1/orders/{order['id']}/guide-attribution", headers=manager_view)
    )
    assert [c["reason"] for c in credited] == ["share_link"]
    assert credited[0]["ref"] == shared["id"] and credited[0]["stored"] is True

    performance = ok(client.get("/api/v1/guides/me/performance", headers=guide.headers))
    assert performance["attributed_sales"] == net
    assert performance["commission"]["pending"] == entry["amount"]
    assert performance["rank_in_store"] == 1 and performance["share_links_opened"] == 1

    colleague = enroll_guide(chain.store)
    board = ok(
        client.get(f"/api/v1/stores/{chain.store.id}/guide-performance", headers=manager_view)
    )
    assert [(g["guide_id"], g["attributed_sales"]) for g in board] == [
        (str(guide.id), net),
        (str(colleague.id), 0),
    ]
    assert board[0]["customers"] == 1 and board[0]["new_customers"] == 1

    # The return window closes: the commission becomes payable, once.
    later = utcnow() + timedelta(days=8)
    assert mature_commission(session, now=later) == 1
    assert mature_commission(session, now=later) == 0
    session.commit()
    statement = ok(client.get(f"/api/v1/guides/me/statements/{month}", headers=guide.headers))
    assert (statement["totals"]["pending"], statement["totals"]["payable"]) == (0, entry["amount"])
