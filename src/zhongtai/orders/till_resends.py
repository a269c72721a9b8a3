"""A till sale sent again: the same sale answers its first recording, another sale under the
same id is refused.

A till resends what it has no answer for (the network dropped, the batch was cut halfway) and
deletes a sale once the server answers it recorded or duplicate. So a duplicate must be that
very sale: the same id with other lines, tenders, time, member or terminal is another sale,
and answering it "duplicate" would have the till delete a sale that was never recorded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from zhongtai.core.clock import as_utc
from zhongtai.core.errors import Conflict
from zhongtai.orders.codes import parse_receipt_number
from zhongtai.orders.models import Order, OrderLine, Payment
from zhongtai.orders.tender_rules import check_tenders, kept_payments

if TYPE_CHECKING:
    from zhongtai.orders.pos import PosLine, PosSale


class SaleIdReused(Conflict):
    slug = "sale-id-reused"
    title = "This sale id was recorded for another sale"


def resent_change(sale: PosSale, order: Order, payments: Sequence[Payment]) -> int:
    """The change the first recording of ``sale`` (as ``order``, having taken ``payments``)
    handed back, for the till to print its receipt again; 409 when ``sale`` is not that sale."""
    if order.store_id != sale.store_id:
        raise Conflict(
            f"Sale {sale.client_sale_id} was recorded for another store.",
            client_sale_id=str(sale.client_sale_id),
        )
    check = check_tenders(order.total, sale.tenders)
    differing = _differences(sale, order, payments, check.change)
    if differing or not check.ok:
        differing = differing or ["tenders"]
        raise SaleIdReused(
            f"Sale {sale.client_sale_id} was recorded as receipt {order.receipt_number} with "
            f"other {', '.join(differing)}: this is another sale, give it an id of its own.",
            client_sale_id=str(sale.client_sale_id),
            receipt_number=order.receipt_number,
            fields=differing,
        )
    return check.change


def _differences(
    sale: PosSale, order: Order, payments: Sequence[Payment], change: int
) -> list[str]:
    """What of ``sale`` its earlier recording as ``order`` does not say. An absent sale time
    or unit price was the server's own at the first recording, so it is not compared."""
    differing = []
    assert order.receipt_number is not None  # every till sale has one
    if parse_receipt_number(order.receipt_number).terminal_code != sale.terminal_code:
        differing.append("terminal_code")
    if sale.occurred_at is not None and as_utc(sale.occurred_at) != as_utc(order.placed_at):
        differing.append("occurred_at")
    if sale.member_id != order.member_id:
        differing.append("member_id")
    if sale.guide_id != order.guide_id:
        differing.append("guide_id")
    if not _same_lines(sale.lines, order.lines):
        differing.append("lines")
    taken = Counter((p.tender, p.amount, p.tendered) for p in payments)
    if Counter(kept_payments(sale.tenders, change)) != taken:
        differing.append("tenders")
    return differing


def _same_lines(sent: Sequence[PosLine], recorded: Sequence[OrderLine]) -> bool:
    return len(sent) == len(recorded) and all(
        (x.sku_id, x.quantity) == (y.sku_id, y.quantity) and x.unit_price in (None, y.unit_price)
        for x, y in zip(sent, recorded, strict=True)
    )
