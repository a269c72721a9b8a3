"""The services an order asks of its store (fish cleaning, alterations) reach the store's staff:
in the store's queue and at the service counter, each timed as the delivery promise timed it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.orders.conftest import Chain, ok, pay_by_wallet, place, quote, store_step
from tests.orders.conftest import chain as chain  # the order tests' fixtures
from tests.orders.conftest import stock as stock
from zhongtai.core.auth.roles import Role
from zhongtai.fulfillment.models import FulfillmentProfile
from zhongtai.fulfillment.promise import PromiseSettings
from zhongtai.fulfillment.service_counter import ServiceAsked, ServiceJob, service_jobs
from zhongtai.integrations.providers import Providers
from zhongtai.stores import service as stores
from zhongtai.stores.models import Capability

WORK = "/api/v1/fulfillment/orders/{}/{}"
#: What the fishmonger of the test store takes to clean a fish, by its fulfilment profile.
FISH_CLEANING_HERE = 480


def _offers_services(chain: Chain, *, profile: dict[str, int] | None) -> None:
    """The chain's store cleans fish and alters clothes; ``profile`` is its fulfilment
    profile's preparation times (None: the store keeps no profile and works at the defaults)."""
    stores.set_capability(
        chain.session,
        chain.store.id,
        Capability.IN_STORE_SERVICES,
        services=["fish_cleaning", "alterations"],
    )
    if profile is not None:
        chain.session.add(
            FulfillmentProfile(
                location_id=chain.store.id,
                avg_pick_seconds=120,
                pick_pack_seconds=180,
                per_line_seconds=45,
                handover_seconds=120,
                road_factor=1.4,
                rider_speed_m_per_min=250,
                service_prep_seconds=profile,
            )
        )
    chain.session.commit()


def _paid_pickup_with(
    client: TestClient, chain: Chain, providers: Providers, *services: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A paid pickup order of one SKU and ``services``, with the quote that promised it."""
    q = quote(
        client,
        chain.app,
        {
            "fulfillment_type": "pickup",
            "store_id": str(chain.store.id),
            "lines": chain.basket(1),
            "services": list(services),
        },
    )
    order = place(client, chain.app, q["id"])
    pay_by_wallet(client, providers, chain.app, order["id"])
    return q, order


def _queue_item(client: TestClient, chain: Chain, order: dict[str, Any]) -> Any:
    queue = ok(
        client.get(f"/api/v1/fulfillment/stores/{chain.store.id}/queue", headers=chain.clerk)
    )
    [item] = [x for x in queue if x["order"]["id"] == order["id"]]
    return item


def _counter(client: TestClient, chain: Chain, order: dict[str, Any]) -> Any:
    return ok(client.get(WORK.format(order["id"], "services"), headers=chain.clerk))


def _promised_prep(q: dict[str, Any]) -> int:
    seconds: int = q["sourcing"]["promise"]["service_prep_seconds"]
    return seconds


# --- the store's queue -----------------------------------------------------------------------


def test_the_store_queue_shows_the_fish_cleaning_an_order_needs_with_its_preparation_time(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    _offers_services(chain, profile={"fish_cleaning": FISH_CLEANING_HERE})
    q, order = _paid_pickup_with(client, chain, providers, "fish_cleaning")

    item = _queue_item(client, chain, order)

    assert item["services"] == [{"service": "fish_cleaning", "prep_seconds": FISH_CLEANING_HERE}]
    assert _promised_prep(q) == FISH_CLEANING_HERE, "the very time the promise counted"


def test_a_service_the_store_profile_does_not_time_shows_the_time_the_promise_counted(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    _offers_services(chain, profile={"fish_cleaning": FISH_CLEANING_HERE})
    q, order = _paid_pickup_with(client, chain, providers, "alterations")

    [alterations] = _queue_item(client, chain, order)["services"]

    assert alterations["service"] == "alterations"
    assert alterations["prep_seconds"] == _promised_prep(q)
    assert alterations["prep_seconds"] == PromiseSettings().prep_seconds("alterations")


def test_a_store_without_a_fulfilment_profile_shows_the_default_preparation_time(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    _offers_services(chain, profile=None)
    q, order = _paid_pickup_with(client, chain, providers, "fish_cleaning")

    [cleaning] = _queue_item(client, chain, order)["services"]

    assert cleaning["prep_seconds"] == _promised_prep(q)
    assert cleaning["prep_seconds"] == PromiseSettings().prep_seconds("fish_cleaning")


def test_an_order_of_goods_only_asks_the_store_for_no_service(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    _offers_services(chain, profile={"fish_cleaning": FISH_CLEANING_HERE})
    _, order = _paid_pickup_with(client, chain, providers)

    assert _queue_item(client, chain, order)["services"] == []
    assert _counter(client, chain, order) == []


# --- the service counter ---------------------------------------------------------------------


def test_the_service_counter_lists_each_service_line_of_the_order_with_its_preparation_time(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    _offers_services(chain, profile={"fish_cleaning": FISH_CLEANING_HERE, "alterations": 1500})
    _, order = _paid_pickup_with(client, chain, providers, "fish_cleaning", "alterations")
    lines = {x["service"]: x for x in order["lines"] if x["kind"] == "service"}

    counter = _counter(client, chain, order)

    assert counter == [
        {
            "line_id": lines["fish_cleaning"]["id"],
            "service": "fish_cleaning",
            "quantity": 1,
            "prep_seconds": FISH_CLEANING_HERE,
        },
        {
            "line_id": lines["alterations"]["id"],
            "service": "alterations",
            "quantity": 1,
            "prep_seconds": 1500,
        },
    ]


def test_the_service_counter_still_sees_the_work_while_the_order_is_picked(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    _offers_services(chain, profile={"fish_cleaning": FISH_CLEANING_HERE})
    _, order = _paid_pickup_with(client, chain, providers, "fish_cleaning")
    store_step(client, chain.clerk, order["id"], "accept")
    store_step(client, chain.clerk, order["id"], "start-picking")

    [job] = _counter(client, chain, order)

    assert (job["service"], job["prep_seconds"]) == ("fish_cleaning", FISH_CLEANING_HERE)
    assert _queue_item(client, chain, order)["services"] == [
        {"service": "fish_cleaning", "prep_seconds": FISH_CLEANING_HERE}
    ]


def test_the_pick_list_keeps_listing_goods_only_when_the_order_asks_for_a_service(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    _offers_services(chain, profile={"fish_cleaning": FISH_CLEANING_HERE})
    _, order = _paid_pickup_with(client, chain, providers, "fish_cleaning")
    [goods] = [x for x in order["lines"] if x["kind"] == "goods"]

    groups = ok(client.get(WORK.format(order["id"], "pick-list"), headers=chain.clerk))

    assert [line["line_id"] for g in groups for line in g["lines"]] == [goods["id"]]
    assert set(groups[0]) == {"zone", "category_code", "category_name", "lines"}


def test_a_clerk_of_another_store_cannot_see_the_services_an_order_asks(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    _offers_services(chain, profile={"fish_cleaning": FISH_CLEANING_HERE})
    _, order = _paid_pickup_with(client, chain, providers, "fish_cleaning")
    elsewhere = chain.factory.staff_headers(Role.STORE_STAFF, [chain.factory.location()])

    answer = client.get(WORK.format(order["id"], "services"), headers=elsewhere)

    assert answer.status_code == 403, answer.text
    assert "fish_cleaning" not in answer.text


def test_the_service_counter_of_an_order_that_does_not_exist_is_a_404(
    client: TestClient, chain: Chain
) -> None:
    unknown = uuid.uuid4()
    answer = client.get(WORK.format(unknown, "services"), headers=chain.hq)
    assert answer.status_code == 404, answer.text
    assert answer.json()["detail"] == f"No order {unknown}."


# --- the rule, with plain data ---------------------------------------------------------------

STORE, WAREHOUSE = uuid.UUID(int=1), uuid.UUID(int=2)
PACE = PromiseSettings(service_prep_seconds={"fish_cleaning": 300})


def _asked(n: int, service: str, location_id: uuid.UUID = STORE) -> ServiceAsked:
    return ServiceAsked(
        line_id=uuid.UUID(int=100 + n), service=service, quantity=1, location_id=location_id
    )


def test_each_service_takes_the_time_the_store_pace_gives_it_in_the_order_of_its_lines() -> None:
    jobs = service_jobs([_asked(1, "fish_cleaning"), _asked(2, "cake_writing")], STORE, PACE)
    assert jobs == [
        ServiceJob(uuid.UUID(int=101), "fish_cleaning", 1, 300),
        ServiceJob(uuid.UUID(int=102), "cake_writing", 1, PACE.default_service_prep_seconds),
    ]


def test_a_service_done_at_another_location_is_not_this_store_work() -> None:
    jobs = service_jobs(
        [_asked(1, "fish_cleaning", WAREHOUSE), _asked(2, "fish_cleaning")], STORE, PACE
    )
    assert [job.line_id for job in jobs] == [uuid.UUID(int=102)]


@pytest.mark.parametrize("lines", [[], [_asked(1, "fish_cleaning", WAREHOUSE)]])
def test_no_service_asked_of_the_store_gives_its_counter_nothing(lines: list[ServiceAsked]) -> None:
    assert service_jobs(lines, STORE, PACE) == []
