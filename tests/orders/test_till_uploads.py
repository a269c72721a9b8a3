"""An offline terminal's batch reads what its sales share once: the store, the terminal, the
SKUs' price units and which sales were recorded before -- whatever the batch's size."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from tests.orders.conftest import Chain
from tests.orders.test_checkout_reads_and_writes import statements_on
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Channel, Permission
from zhongtai.orders import pos
from zhongtai.orders.kinds import TenderType
from zhongtai.orders.tender_rules import Tender


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


def _sales(chain: Chain, count: int) -> list[pos.PosSale]:
    at = datetime.now(UTC) - timedelta(hours=1)
    return [
        pos.PosSale(
            client_sale_id=uuid.uuid4(),
            store_id=chain.store.id,
            terminal_code="T7",
            lines=[pos.PosLine(chain.skus[i % 2].id, 1, unit_price=990)],
            tenders=[Tender(TenderType.CASH, 1000)],
            occurred_at=at + timedelta(minutes=i),
        )
        for i in range(count)
    ]


def _reads_of_shared_facts(sent: list[str]) -> int:
    shared = ("FROM locations", "FROM pos_terminals", "FROM skus", "INTO pos_terminals")
    return sum(
        1
        for statement in sent
        if any(table in statement for table in shared) and "products" not in statement
    )


def test_a_batch_reads_store_terminal_and_prices_once_whatever_its_size(
    session: Session, connection: Connection, chain: Chain
) -> None:
    till = _till(chain)
    counts = []
    for size in (2, 8):
        sales = _sales(chain, size)
        with statements_on(connection, session) as sent:
            results = pos.upload_till_sales(session, sales, caller=till)
        assert [r.status for r in results] == [pos.SaleStatus.RECORDED] * size
        counts.append(_reads_of_shared_facts(sent))
    assert counts[0] == counts[1]


def test_a_batch_resent_reads_its_recorded_sales_in_one_statement(
    session: Session, connection: Connection, chain: Chain
) -> None:
    till = _till(chain)
    sales = _sales(chain, 6)
    pos.upload_till_sales(session, sales, caller=till)
    with statements_on(connection, session) as sent:
        again = pos.upload_till_sales(session, sales, caller=till)
    assert [r.status for r in again] == [pos.SaleStatus.DUPLICATE] * 6
    assert sum(1 for s in sent if s.startswith("SELECT") and "FROM orders" in s) == 1
    written = ("INTO orders", "INTO stock_movements", "INTO outbox_events", "UPDATE orders")
    assert not any(table in s for s in sent for table in written)


def test_a_sale_named_twice_in_one_batch_is_recorded_once_then_answered_duplicate(
    session: Session, chain: Chain
) -> None:
    till = _till(chain)
    [sale] = _sales(chain, 1)
    results = pos.upload_till_sales(session, [sale, sale], caller=till)
    assert [r.status for r in results] == [pos.SaleStatus.RECORDED, pos.SaleStatus.DUPLICATE]
    assert results[0].order is not None and results[1].order is not None
    assert results[1].order.receipt_number == results[0].order.receipt_number


def test_a_line_naming_an_unknown_sku_rejects_that_sale_only(
    session: Session, chain: Chain
) -> None:
    till = _till(chain)
    good, bad = _sales(chain, 2)
    bad = pos.PosSale(
        client_sale_id=bad.client_sale_id,
        store_id=bad.store_id,
        terminal_code=bad.terminal_code,
        lines=[pos.PosLine(uuid.uuid4(), 1, unit_price=990)],
        tenders=bad.tenders,
        occurred_at=bad.occurred_at,
    )
    results = pos.upload_till_sales(session, [bad, good], caller=till)
    assert [r.status for r in results] == [pos.SaleStatus.REJECTED, pos.SaleStatus.RECORDED]
    assert results[0].problem is not None
    assert results[0].problem["errors"][0]["field"] == "lines[0].sku_id"
    assert results[1].order is not None
    assert results[1].order.receipt_number is not None
    assert results[1].order.receipt_number.endswith("-000001")
