"""The daily settlement for finance: money per store, channel and tender, reproducible."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.orders.conftest import Chain, new_id, ok, pay_by_wallet, place, quote
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.integrations.providers import Providers
from zhongtai.orders.codes import business_date


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _settlement(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, str]]:
    answer = client.get("/api/v1/finance/settlement", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    return _rows(answer.text)


def test_a_day_of_till_and_app_sales_with_a_refund_settles_per_channel_and_tender(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    for tenders in ([{"type": "cash", "amount": 2000}], [{"type": "alipay", "amount": 1000}]):
        ok(
            client.post(
                "/api/v1/pos/sales",
                json={
                    "client_sale_id": new_id(),
                    "lines": [{"sku_id": str(chain.skus[0].id), "quantity": 1}],
                    "tenders": tenders,
                },
                headers=till,
            ),
            201,
        )
    q = quote(
        client,
        chain.app,
        {"fulfillment_type": "pickup", "store_id": str(chain.store.id), "lines": chain.basket(2)},
    )
    order = place(client, chain.app, q["id"])
    pay_by_wallet(client, providers, chain.app, order["id"])
    ok(
        client.post(
            f"/api/v1/orders/{order['id']}/cancel",
            json={"reason": "changed mind"},
            headers=chain.app,
        )
    )
    day = business_date(datetime.now(UTC), "Asia/Shanghai")
    manager = chain.factory.staff_headers(Role.STORE_MANAGER, [chain.store])
    rows = _settlement(client, manager, day=day.isoformat())
    got = {(r["channel"], r["tender"]): r for r in rows}
    assert set(got) == {("pos", "cash"), ("pos", "alipay"), ("app", "wechat_pay")}
    assert got[("pos", "cash")]["taken_fen"] == "1000"  # cash kept net of the change
    assert (
        got[("app", "wechat_pay")]["taken_fen"],
        got[("app", "wechat_pay")]["refunded_fen"],
    ) == (
        "2000",
        "2000",
    )
    assert got[("app", "wechat_pay")]["net_fen"] == "0"
    assert {r["store_code"] for r in rows} == {chain.store.code}


def test_a_closed_day_drawn_as_of_a_time_stays_the_same_after_a_late_offline_upload(
    client: TestClient, chain: Chain
) -> None:
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    day = business_date(yesterday, "Asia/Shanghai")

    def sale(at: datetime) -> dict[str, Any]:
        return {
            "client_sale_id": new_id(),
            "occurred_at": at.isoformat(),
            "lines": [{"sku_id": str(chain.skus[1].id), "quantity": 1}],
            "tenders": [{"type": "bank_card", "amount": 1000}],
        }

    ok(client.post("/api/v1/pos/sales", json=sale(yesterday), headers=till), 201)
    cut = datetime.now(UTC)
    before = _settlement(client, chain.hq, day=day.isoformat(), as_of=cut.isoformat())
    # A till that was offline uploads another sale of that day later.
    ok(
        client.post("/api/v1/pos/sales", json=sale(yesterday + timedelta(minutes=5)), headers=till),
        201,
    )
    again = _settlement(client, chain.hq, day=day.isoformat(), as_of=cut.isoformat())
    latest = _settlement(client, chain.hq, day=day.isoformat())
    assert before == again
    assert [r["taken_fen"] for r in before] == ["1000"]
    assert [r["taken_fen"] for r in latest] == ["2000"]


def test_a_store_manager_draws_only_her_stores_and_a_clerk_not_at_all(
    client: TestClient, chain: Chain
) -> None:
    other = chain.factory.location()
    manager = chain.factory.staff_headers(Role.STORE_MANAGER, [chain.store])
    denied = client.get(
        "/api/v1/finance/settlement",
        params={"day": "2026-01-05", "store_id": str(other.id)},
        headers=manager,
    )
    assert denied.status_code == 403
    clerk = client.get(
        "/api/v1/finance/settlement", params={"day": "2026-01-05"}, headers=chain.clerk
    )
    assert clerk.status_code == 403
