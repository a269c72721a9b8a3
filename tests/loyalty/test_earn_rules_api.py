"""Earn rules over HTTP: HQ creates, lists and deactivates them; bad input is a problem naming
the field; touchpoints and stores may read them but not set them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.catalog.conftest import CatalogFactory
from tests.factories import Factory
from tests.orders.conftest import ok
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.core.clock import utcnow

URL = "/api/v1/points/earn-rules"


def _double_points(**extra: Any) -> dict[str, Any]:
    now = utcnow()
    return {
        "kind": "campaign",
        "name": "会员日 积分翻倍",
        "multiplier_pct": 200,
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(days=1)).isoformat(),
        **extra,
    }


def test_hq_creates_lists_and_deactivates_earn_rules(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    store = factory.location()
    wine = catalog.category()
    campaign = ok(
        client.post(
            URL,
            json=_double_points(channels=["pos", "app"], store_ids=[str(store.id)]),
            headers=hq,
        ),
        201,
    )
    assert (campaign["kind"], campaign["channels"], campaign["store_ids"]) == (
        "campaign",
        ["app", "pos"],
        [str(store.id)],
    )
    category = ok(
        client.post(
            URL,
            json={
                "kind": "category",
                "name": "酒水 ×1.5",
                "multiplier_pct": 150,
                "category_id": str(wine.id),
            },
            headers=hq,
        ),
        201,
    )
    campaigns = ok(client.get(URL, params={"kind": "campaign", "active": True}, headers=hq))
    assert [r["id"] for r in campaigns["items"]] == [campaign["id"]]

    stopped = ok(client.post(f"{URL}/{campaign['id']}/deactivate", headers=hq))
    assert stopped["active"] is False and stopped["deactivated_at"] is not None
    again = ok(client.post(f"{URL}/{campaign['id']}/deactivate", headers=hq))
    assert again == stopped
    live = ok(client.get(URL, params={"live_at": utcnow().isoformat()}, headers=hq))
    assert [r["id"] for r in live["items"]] == [category["id"]]
    assert ok(client.get(f"{URL}/{category['id']}", headers=hq))["multiplier_pct"] == 150


def test_a_second_live_rule_for_a_category_is_refused_naming_the_first(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    fresh = catalog.category()
    body = {"kind": "category", "name": "生鲜", "multiplier_pct": 150, "category_id": str(fresh.id)}
    first = ok(client.post(URL, json=body, headers=hq), 201)
    taken = client.post(URL, json={**body, "multiplier_pct": 300}, headers=hq)
    assert taken.status_code == 409
    assert taken.json()["type"].endswith("/already-exists")
    assert taken.json()["earn_rule_id"] == first["id"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ends_at": None}, "ends_at"),
        ({"multiplier_pct": 2}, "multiplier_pct"),
        ({"multiplier_pct": 5_000}, "multiplier_pct"),
        ({"ends_at": "2020-01-01T00:00:00+00:00"}, "ends_at"),
        ({"starts_at": "2030-01-01T00:00:00"}, "starts_at"),
        ({"channels": ["carrier_pigeon"]}, "channels.0"),
        ({"store_ids": ["00000000-0000-7000-8000-000000000000"]}, "store_ids"),
        ({"category_id": "00000000-0000-7000-8000-000000000000"}, "category_id"),
        ({"kind": "category"}, "category_id"),
        ({"name": ""}, "name"),
        ({"multiplier": 200}, "multiplier"),
    ],
)
def test_bad_input_is_a_problem_naming_the_field(
    client: TestClient, factory: Factory, change: dict[str, Any], field: str
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    r = client.post(URL, json=_double_points(**change), headers=hq)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["field"] == field


def test_an_unknown_rule_is_404(client: TestClient, factory: Factory) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    missing = "00000000-0000-7000-8000-000000000000"
    assert client.post(f"{URL}/{missing}/deactivate", headers=hq).status_code == 404
    assert client.get(f"{URL}/{missing}", headers=hq).status_code == 404


def test_touchpoints_and_stores_read_the_rules_but_only_hq_sets_them(
    client: TestClient, factory: Factory
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    created = ok(client.post(URL, json=_double_points(), headers=hq), 201)
    store = factory.location()
    for caller in (
        factory.api_key_headers(Channel.POS, store=store),
        factory.api_key_headers(Channel.APP),
        factory.staff_headers(Role.STORE_MANAGER, [store]),
    ):
        assert client.get(URL, headers=caller).status_code == 200
        refused = client.post(URL, json=_double_points(), headers=caller)
        assert refused.status_code == 403
        assert client.post(f"{URL}/{created['id']}/deactivate", headers=caller).status_code == 403
    assert client.get(URL).status_code == 401
