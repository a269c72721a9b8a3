"""On PostgreSQL: returns of one order's goods arriving at once, each leaving the goods kept
below a gift's threshold, take the gift's worth once between them (judged one after the
other under the order's lock), never once each."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from tests.factories import Factory
from tests.races import MANY_CONNECTIONS, all_at_once, race_database
from zhongtai.catalog import service as catalog
from zhongtai.catalog.models import ProductKind, SaleUnit
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Channel, Permission
from zhongtai.core.db import Database
from zhongtai.inventory import service as inventory
from zhongtai.orders import pos, returns
from zhongtai.orders.kinds import OrderStatus, TenderType
from zhongtai.orders.models import Order, ReturnGiftAdjustment
from zhongtai.orders.tender_rules import Tender

pytestmark = MANY_CONNECTIONS

#: Units bought, each returned by a client of its own at once.
UNITS = 6


@pytest.fixture
def race_db() -> Iterator[Database]:
    with race_database("zt_gift_return_race", pool_size=UNITS + 2) as database:
        yield database


def _order_with_a_gift(db: Database) -> tuple[Principal, uuid.UUID, uuid.UUID, uuid.UUID]:
    """A paid sale of ``UNITS`` at 10.00 with a gift worth 8.00 that a coupon gave from
    ``UNITS`` x 10.00 (as a checkout records it): (the till, the store, the order, its line)."""
    with db.writer() as s, s.begin():
        store = Factory(s).location()
        category = catalog.create_category(s, code=f"GR{store.code}", name="g", parent_id=None)
        product = catalog.create_product(
            s,
            code=f"GR{store.code}",
            name="满额赠",
            category_id=category.id,
            kind=ProductKind.STANDARD,
            unit=SaleUnit.PIECE,
            currency="CNY",
            skus=[
                catalog.NewSku(code=f"GR{store.code}-0", name="0", base_price=1000),
                catalog.NewSku(code=f"GR{store.code}-G", name="赠品", base_price=800),
            ],
        )
        bought, gift = (x.id for x in product.skus)
        inventory.receive_stock(
            s, store.id, [inventory.ReceiptLine(bought, 10), inventory.ReceiptLine(gift, 10)]
        )
        till = Principal(
            kind="api_key",
            id=uuid.uuid4(),
            name="till",
            permissions=frozenset(Permission),
            store_ids=frozenset({store.id}),
            channel=Channel.POS,
            terminal_id="T1",
        )
        sale = pos.record_till_sale(
            s,
            pos.PosSale(
                client_sale_id=uuid.uuid4(),
                store_id=store.id,
                terminal_code="T1",
                lines=[pos.PosLine(bought, UNITS), pos.PosLine(gift, 1, unit_price=0)],
                tenders=[Tender(TenderType.CASH, UNITS * 1000)],
            ),
            caller=till,
        )
        order = sale.order
        assert order is not None
        line, gift_line = order.lines
        gift_line.amount = gift_line.discount = 800
        coupon = uuid.uuid4()
        order.offers = {
            "gifts": [
                {
                    "source": f"coupon:{coupon}",
                    "coupon_id": str(coupon),
                    "line": 1,
                    "sku_id": str(gift),
                    "quantity": 1,
                    "worth": 800,
                    "threshold_fen": UNITS * 1000,
                    "counted": [[0, UNITS * 1000]],
                }
            ]
        }
        return till, store.id, order.id, line.id


def test_returns_at_once_take_the_gifts_worth_once_between_them(race_db: Database) -> None:
    till, store_id, order_id, line_id = _order_with_a_gift(race_db)

    def send(i: int) -> int:
        with race_db.writer() as s, s.begin():
            done = returns.return_goods(
                s,
                order_id,
                reference=f"R-{order_id}-{i}",
                store_id=store_id,
                lines=[returns.ReturnLine(line_id, 1)],
                reason=None,
                caller=till,
                providers={},
            )
            return done.order_return.refund_total

    refunds = all_at_once(UNITS, send)

    assert sorted(refunds) == [200] + [1000] * (UNITS - 1)
    with race_db.reader() as s:
        order = s.get(Order, order_id)
        assert order is not None
        assert (order.status, order.refunded_amount) == (
            OrderStatus.PARTIALLY_RETURNED,  # the gift is still with her
            UNITS * 1000 - 800,
        )
        withheld = s.scalar(select(func.sum(ReturnGiftAdjustment.amount)))
        assert withheld == 800
