"""Which due SKUs go out together: one request per (marketplace, store), never beside one in
flight, never more than a marketplace's share of the slots; and the body a marketplace reads."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from zhongtai.integrations.marketplace_rules import DirtyStock, PushedItem, plan_batches, push_body

CONNECTIONS = [uuid.UUID(int=i) for i in range(1, 4)]
STORES = [uuid.UUID(int=100 + i) for i in range(1, 5)]
SKUS = [uuid.UUID(int=1000 + i) for i in range(1, 40)]


def _dirty(connection: int, store: int, sku: int, version: int = 1) -> DirtyStock:
    return DirtyStock(CONNECTIONS[connection], STORES[store], SKUS[sku], version)


def test_skus_of_one_store_go_in_one_request_and_other_stores_in_their_own() -> None:
    due = [_dirty(0, 0, 0), _dirty(0, 1, 1), _dirty(0, 0, 2), _dirty(1, 0, 0)]
    batches = plan_batches(
        due, busy=(), in_flight_per_connection={}, per_connection=4, max_items=10, room=10
    )
    assert [(b.key, [i.sku_id for i in b.items]) for b in batches] == [
        ((CONNECTIONS[0], STORES[0]), [SKUS[0], SKUS[2]]),
        ((CONNECTIONS[0], STORES[1]), [SKUS[1]]),
        ((CONNECTIONS[1], STORES[0]), [SKUS[0]]),
    ]


def test_a_store_with_a_push_in_flight_waits_and_a_busy_marketplace_gets_no_more_slots() -> None:
    due = [_dirty(0, 0, 0), _dirty(0, 1, 1), _dirty(1, 2, 2)]
    batches = plan_batches(
        due,
        busy=[(CONNECTIONS[0], STORES[0]), (CONNECTIONS[0], STORES[3])],
        in_flight_per_connection={CONNECTIONS[0]: 2},
        per_connection=2,
        max_items=10,
        room=10,
    )
    assert [b.key for b in batches] == [(CONNECTIONS[1], STORES[2])]


def test_a_large_store_is_pushed_in_requests_of_at_most_max_items() -> None:
    due = [_dirty(0, 0, n) for n in range(25)]
    [batch] = plan_batches(
        due, busy=(), in_flight_per_connection={}, per_connection=1, max_items=10, room=5
    )
    assert [i.sku_id for i in batch.items] == SKUS[:10], "the oldest due first; the rest wait"


due_items = st.lists(
    st.builds(
        _dirty,
        st.integers(0, len(CONNECTIONS) - 1),
        st.integers(0, len(STORES) - 1),
        st.integers(0, len(SKUS) - 1),
        st.integers(1, 50),
    ),
    max_size=80,
    unique_by=lambda d: (d.connection_id, d.location_id, d.sku_id),
)
pairs = st.sets(st.tuples(st.sampled_from(CONNECTIONS), st.sampled_from(STORES)), max_size=5)


@given(
    due=due_items,
    busy=pairs,
    per_connection=st.integers(1, 4),
    max_items=st.integers(1, 12),
    room=st.integers(0, 8),
)
def test_a_plan_respects_every_limit_and_loses_or_invents_nothing(
    due: list[DirtyStock],
    busy: set[tuple[uuid.UUID, uuid.UUID]],
    per_connection: int,
    max_items: int,
    room: int,
) -> None:
    in_flight: dict[uuid.UUID, int] = {}
    for connection, _ in busy:
        in_flight[connection] = in_flight.get(connection, 0) + 1
    batches = plan_batches(
        due,
        busy=busy,
        in_flight_per_connection=in_flight,
        per_connection=per_connection,
        max_items=max_items,
        room=room,
    )
    keys = [b.key for b in batches]
    assert len(keys) == len(set(keys)) <= room, "one request per (marketplace, store)"
    assert not set(keys) & busy, "never beside a request in flight"
    for connection in CONNECTIONS:
        opened = sum(1 for c, _ in keys if c == connection)
        assert opened == 0 or opened + in_flight.get(connection, 0) <= per_connection
    for batch in batches:
        assert 1 <= len(batch.items) <= max_items
        assert all(i.connection_id == batch.connection_id for i in batch.items)
        assert all(i.location_id == batch.location_id for i in batch.items)
        mine = [d for d in due if (d.connection_id, d.location_id) == batch.key]
        assert list(batch.items) == mine[:max_items], "the oldest due of the store, in order"
    if room and due and not batches:
        # Nothing planned: every due store is in flight or its marketplace has no slot left.
        for d in due:
            blocked = (d.connection_id, d.location_id) in busy
            full = in_flight.get(d.connection_id, 0) >= per_connection
            assert blocked or full


def test_the_body_names_the_store_and_each_sku_with_its_quantity_and_version() -> None:
    body = push_body(
        "meituan", "S0001", [PushedItem("SKU1", 7, 3), PushedItem("SKU2", 0, 12)], "2026-11-26"
    )
    assert body == {
        "format": "zhongtai.stock.v1",
        "connection": "meituan",
        "store": "S0001",
        "sent_at": "2026-11-26",
        "items": [
            {"sku": "SKU1", "quantity": 7, "version": 3},
            {"sku": "SKU2", "quantity": 0, "version": 12},
        ],
    }
