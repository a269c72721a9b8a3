"""Use cases that move on-hand stock: receipts, adjustments, write-offs, POS sales and returns."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.catalog.models import ProductKind, Sku
from zhongtai.core.audit import record_audit
from zhongtai.core.clock import utcnow
from zhongtai.core.db import conflict_insert
from zhongtai.core.errors import InvalidInput
from zhongtai.inventory.checks import (
    require_basket,
    require_location,
    require_skus,
    require_text,
    sku_kinds,
)
from zhongtai.inventory.errors import InsufficientStock
from zhongtai.inventory.ledger import (
    BALANCES,
    Figures,
    Posted,
    announce,
    change_balance,
    upsert_balance,
    write_movement,
)
from zhongtai.inventory.models import MovementKind
from zhongtai.inventory.rules import Line, atp, lock_order

REFERENCE_MAX = 128
REASON_MAX = 200


@dataclass(frozen=True)
class ReceiptLine:
    sku_id: uuid.UUID
    quantity: int
    lot: str | None = None
    expires_on: date | None = None


def receive_stock(
    session: Session,
    location_id: uuid.UUID,
    lines: Sequence[ReceiptLine],
    *,
    reference_type: str | None = None,
    reference_id: str | None = None,
) -> list[Posted]:
    """Goods arrived from a supplier or the DC: on-hand rises, one receipt movement per line.

    Fresh goods carry their expiry date (and usually a lot).
    """
    require_location(session, location_id)
    require_basket([Line(x.sku_id, x.quantity) for x in lines])
    kinds = sku_kinds(session, [x.sku_id for x in lines])
    for i, line in enumerate(lines):
        if kinds[line.sku_id] is ProductKind.FRESH and line.expires_on is None:
            raise InvalidInput.field(f"lines.{i}.expires_on", "is required for fresh goods")
    posted = []
    for line in sorted(lines, key=lambda x: x.sku_id):
        figures = upsert_balance(session, location_id, line.sku_id, on_hand=line.quantity)
        posted.append(
            write_movement(
                session,
                figures,
                kind=MovementKind.RECEIPT,
                quantity=line.quantity,
                reference_type=reference_type,
                reference_id=reference_id,
                lot=line.lot,
                expires_on=line.expires_on,
            )
        )
    return posted


_ADJUSTING = frozenset({MovementKind.ADJUSTMENT, MovementKind.WRITE_OFF})


def adjust_stock(
    session: Session,
    location_id: uuid.UUID,
    sku_id: uuid.UUID,
    quantity: int,
    *,
    reason: str,
    approver: str | None,
    kind: MovementKind = MovementKind.ADJUSTMENT,
    reference_type: str | None = None,
    reference_id: str | None = None,
) -> Posted:
    """A manual correction (signed) or a damage/expiry write-off (negative), with its reason.

    Only POS sales may take on-hand below zero; a decrease beyond on-hand answers 409.
    """
    if kind not in _ADJUSTING:
        raise InvalidInput.field("kind", "must be adjustment or write_off")
    if quantity == 0:
        raise InvalidInput.field("quantity", "must not be zero")
    if kind is MovementKind.WRITE_OFF and quantity > 0:
        raise InvalidInput.field("quantity", "a write-off takes stock out: must be negative")
    reason = require_text(reason, "reason", max_length=REASON_MAX)
    require_location(session, location_id)
    require_skus(session, [sku_id], field="sku")
    figures: Figures | None
    if quantity > 0:
        figures = upsert_balance(session, location_id, sku_id, on_hand=quantity)
    else:
        figures = change_balance(
            session,
            location_id,
            sku_id,
            on_hand=quantity,
            condition=BALANCES.c.on_hand + quantity >= 0,
        )
        if figures is None:
            raise InsufficientStock(
                location_id=location_id,
                sku_id=sku_id,
                requested=-quantity,
                available=_on_hand(session, location_id, sku_id),
            )
    posted = write_movement(
        session,
        figures,
        kind=kind,
        quantity=quantity,
        reason=reason,
        approver=approver,
        reference_type=reference_type,
        reference_id=reference_id,
    )
    record_audit(
        session,
        "stock.adjusted",
        "stock",
        sku_id,
        {"on_hand": figures.on_hand - quantity},
        {
            "on_hand": figures.on_hand,
            "quantity": quantity,
            "kind": kind.value,
            "reason": reason,
            "approver": approver,
            "movement_id": posted.movement_id,
        },
        store_id=location_id,
    )
    return posted


def _on_hand(session: Session, location_id: uuid.UUID, sku_id: uuid.UUID) -> int:
    value = session.scalar(
        select(BALANCES.c.on_hand).where(
            BALANCES.c.location_id == location_id, BALANCES.c.sku_id == sku_id
        )
    )
    return max(0, value or 0)


def record_pos_sale(
    session: Session, location_id: uuid.UUID, lines: Sequence[Line], *, reference: str
) -> list[Posted]:
    """A till sold goods: on-hand drops at once, and the sale is never refused for stock.

    The goods are in the customer's hand, so a sale that takes on-hand below zero is recorded
    all the same and flagged (``stock.discrepancy_detected``, listed for the store manager).
    """
    reference = require_text(reference, "reference", max_length=REFERENCE_MAX)
    require_location(session, location_id)
    require_basket(lines)
    require_skus(session, [x.sku_id for x in lines])
    return [
        write_movement(
            session,
            upsert_balance(session, location_id, line.sku_id, on_hand=-line.quantity),
            kind=MovementKind.SALE,
            quantity=-line.quantity,
            reference_type="pos_sale",
            reference_id=reference,
            flag_negative=True,
        )
        for line in lock_order(lines)
    ]


def record_return(
    session: Session, location_id: uuid.UUID, lines: Sequence[Line], *, reference: str
) -> list[Posted]:
    """Goods came back (at a till or from an order) fit for sale: on-hand rises."""
    reference = require_text(reference, "reference", max_length=REFERENCE_MAX)
    require_location(session, location_id)
    require_basket(lines)
    require_skus(session, [x.sku_id for x in lines])
    return [
        write_movement(
            session,
            upsert_balance(session, location_id, line.sku_id, on_hand=line.quantity),
            kind=MovementKind.RETURN,
            quantity=line.quantity,
            reference_type="return",
            reference_id=reference,
        )
        for line in lock_order(lines)
    ]


def set_stock_levels(
    session: Session,
    location_id: uuid.UUID,
    sku_id: uuid.UUID,
    *,
    safety_stock: int,
    low_stock_level: int,
) -> Figures:
    """Set the safety stock (kept back from every channel) and the low-stock announcement level."""
    if safety_stock < 0:
        raise InvalidInput.field("safety_stock", "must be zero or more")
    if low_stock_level < 0:
        raise InvalidInput.field("low_stock_level", "must be zero or more")
    require_location(session, location_id)
    require_skus(session, [sku_id], field="sku")
    # The row lock orders this change with concurrent ones, so the ATP before is the real one.
    before = session.execute(
        select(BALANCES.c.on_hand, BALANCES.c.reserved, BALANCES.c.safety_stock)
        .where(BALANCES.c.location_id == location_id, BALANCES.c.sku_id == sku_id)
        .with_for_update()
    ).first()
    figures = upsert_balance(
        session, location_id, sku_id, safety_stock=safety_stock, low_stock_level=low_stock_level
    )
    announce(
        session,
        figures,
        cause="settings",
        quantity=0,
        atp_before=atp(*before) if before else 0,
    )
    record_audit(
        session,
        "stock.levels_set",
        "stock",
        sku_id,
        {"safety_stock": before[2]} if before else None,
        {"safety_stock": safety_stock, "low_stock_level": low_stock_level},
        store_id=location_id,
    )
    return figures


def lock_stock_rows(
    session: Session, location_id: uuid.UUID, sku_ids: Collection[uuid.UUID]
) -> None:
    """Lock a location's balance rows of these SKUs now, in SKU order, making missing ones.

    A batch that changes many rows one use case at a time (an offline till's upload: sale
    after sale, each in its own line order) takes its locks here first, in the order every use
    case locks in, so two batches of one store wait for each other instead of deadlocking.
    Unknown SKUs are skipped (the use case itself refuses them).
    """
    known = sorted(set(session.scalars(select(Sku.id).where(Sku.id.in_(set(sku_ids))))))
    if not known:
        return
    insert_fn = conflict_insert(session)
    now = utcnow()
    stmt = insert_fn(BALANCES).values(
        [
            {"location_id": location_id, "sku_id": sku_id, "on_hand": 0, "updated_at": now}
            for sku_id in known
        ]
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[BALANCES.c.location_id, BALANCES.c.sku_id],
            set_={"on_hand": BALANCES.c.on_hand},
        )
    )
