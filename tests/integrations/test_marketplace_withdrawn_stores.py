"""A store taken off a marketplace connection: the marketplace is told it has nothing left to
sell there (once), rather than keep showing the last figures it was sent, or be sent the
store's stock after all."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integrations.receiver import Receiver
from tests.integrations.test_marketplace_push import (
    LOOPBACK_ALLOWED,
    Chain,
    _pushing,
    pushes,
)
from zhongtai.core.db import Database
from zhongtai.integrations import marketplace
from zhongtai.stores.models import Location


@pytest.fixture
def chain(db: Database) -> Iterator[Chain]:
    built = Chain(db)
    yield built
    # Later tests' senders must not keep calling this test's (stopped) receiver.
    built.disconnect_all()


def _sell_from(db: Database, connection_id: object, stores: list[Location] | None) -> None:
    with db.writer() as s, s.begin():
        marketplace.change_connection(
            s,
            connection_id,  # type: ignore[arg-type]
            marketplace.ConnectionChange(
                store_ids=None if stores is None else [x.id for x in stores], stores_given=True
            ),
            guard=LOOPBACK_ALLOWED,
        )


def test_a_store_taken_off_a_connection_is_pushed_as_sold_out_once_then_left_alone(
    db: Database, chain: Chain, receiver: Receiver
) -> None:
    kept, dropped = chain.store(), chain.store()
    apples, pears = chain.sku(), chain.sku()
    for store in (kept, dropped):
        chain.receive(store, apples, 6)
        chain.receive(store, pears, 4)
    connection, _ = chain.connect(receiver.url + "/off", [kept, dropped], min_interval_ms=50)
    _pushing(db, lambda: not chain.waiting(connection.id))
    shown = {
        (p.store, code): q for p in pushes(receiver, "/off") for code, (q, _) in p.items.items()
    }
    assert shown[(dropped.code, apples.code)] == 6 and shown[(dropped.code, pears.code)] == 4

    _sell_from(db, connection.id, [kept])
    before = len(pushes(receiver, "/off"))
    _pushing(db, lambda: not chain.waiting(connection.id))
    # (Changing the stores pushes the kept store's stock again, as any change of stores does.)
    after_removal = [p for p in pushes(receiver, "/off")[before:] if p.store == dropped.code]
    assert [{code: q for code, (q, _) in p.items.items()} for p in after_removal] == [
        {apples.code: 0, pears.code: 0}
    ], "one push of the store, telling the marketplace it has nothing left there"

    # Its stock keeps moving; the marketplace no longer sells from it and hears nothing more.
    settled = len(pushes(receiver, "/off"))
    chain.receive(dropped, apples, 5)
    chain.receive(kept, apples, 1)
    _pushing(
        db,
        lambda: (
            any(p.store == kept.code for p in pushes(receiver, "/off")[settled:])
            and not chain.waiting(connection.id)
        ),
    )
    assert {p.store for p in pushes(receiver, "/off")[settled:]} == {kept.code}


def test_a_change_waiting_at_a_store_taken_off_is_sent_as_sold_out_not_as_its_stock(
    db: Database, chain: Chain, receiver: Receiver
) -> None:
    kept, dropped, sku = chain.store(), chain.store(), chain.sku()
    chain.receive(dropped, sku, 9)
    # Connected (its first push waiting) and then taken off before anything was sent.
    connection, _ = chain.connect(receiver.url + "/waiting", [kept, dropped])
    _sell_from(db, connection.id, [kept])
    _pushing(db, lambda: not chain.waiting(connection.id))
    assert [(p.store, p.items[sku.code][0]) for p in pushes(receiver, "/waiting")] == [
        (dropped.code, 0)
    ]


def test_a_store_put_back_on_a_connection_is_pushed_its_stock_again(
    db: Database, chain: Chain, receiver: Receiver
) -> None:
    kept, dropped, sku = chain.store(), chain.store(), chain.sku()
    chain.receive(dropped, sku, 3)
    connection, _ = chain.connect(receiver.url + "/back", [kept, dropped], min_interval_ms=50)
    _pushing(db, lambda: not chain.waiting(connection.id))
    _sell_from(db, connection.id, [kept])
    _pushing(db, lambda: not chain.waiting(connection.id))
    chain.receive(dropped, sku, 2)
    _sell_from(db, connection.id, None)  # every store again
    _pushing(db, lambda: not chain.waiting(connection.id))
    got = [p.items[sku.code][0] for p in pushes(receiver, "/back") if p.store == dropped.code]
    assert got == [3, 0, 5]
