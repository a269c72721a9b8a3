"""Use cases of inventory, the context's public face: one import for the other contexts.

Each use case lives in the module of its subject (stock movements, reservations, queries,
the audit); this module re-exports them so that callers need not know the split.
"""

from __future__ import annotations

from zhongtai.core.pagination import PageParams
from zhongtai.inventory.ledger import Figures, Posted
from zhongtai.inventory.models import MovementKind, Reservation, ReservationStatus
from zhongtai.inventory.queries import (
    BalanceView,
    balances_of_sku,
    list_balances,
    list_discrepancies,
    list_movements,
)
from zhongtai.inventory.reservations import (
    Reserved,
    confirm_reservation,
    expire_reservations,
    get_reservation,
    release_reservation,
    reserve,
    select_reservation_by_reference,
)
from zhongtai.inventory.rules import Line
from zhongtai.inventory.stock import (
    ReceiptLine,
    adjust_stock,
    receive_stock,
    record_pos_sale,
    record_return,
    set_stock_levels,
)
from zhongtai.inventory.verify import Difference, verify_stock

__all__ = [
    "BalanceView",
    "Difference",
    "Figures",
    "Line",
    "MovementKind",
    "PageParams",
    "Posted",
    "ReceiptLine",
    "Reservation",
    "ReservationStatus",
    "Reserved",
    "adjust_stock",
    "balances_of_sku",
    "confirm_reservation",
    "expire_reservations",
    "get_reservation",
    "list_balances",
    "list_discrepancies",
    "list_movements",
    "receive_stock",
    "record_pos_sale",
    "record_return",
    "release_reservation",
    "reserve",
    "select_reservation_by_reference",
    "set_stock_levels",
    "verify_stock",
]
