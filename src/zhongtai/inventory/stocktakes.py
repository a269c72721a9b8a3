"""Use cases of stocktakes: count zone by zone while selling, post the variances on approval.

A SKU counted in several zones adds up. Its expected quantity is the on-hand recorded with
its first count sheet; sales and receipts after that are in the ledger already, so the
variance (counted - expected) is posted as a delta against today's balance. A location has
one stocktake counting at a time: two would each post the same shortfall.

Approving and cancelling each claim the counting stocktake in one conditional UPDATE: of the
two racing, exactly one happens and the other answers 409 naming the status it found, so the
variances are posted wholly or not at all, and never under a stocktake reported cancelled.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from zhongtai.core import context
from zhongtai.core.clock import utcnow
from zhongtai.core.db import conflict_insert
from zhongtai.core.errors import Conflict, InvalidInput, NotFound
from zhongtai.inventory.checks import require_location, require_skus, require_text
from zhongtai.inventory.ledger import BALANCES, Posted, upsert_balance, write_movement
from zhongtai.inventory.models import (
    MovementKind,
    Stocktake,
    StocktakeCount,
    StocktakeStatus,
)
from zhongtai.inventory.rules import Line
from zhongtai.stores.models import Location

STOCKTAKES: Table = Stocktake.__table__  # type: ignore[assignment]
COUNTS: Table = StocktakeCount.__table__  # type: ignore[assignment]
ZONE_MAX = 32


def get_stocktake(session: Session, stocktake_id: uuid.UUID) -> Stocktake:
    stocktake = session.get(Stocktake, stocktake_id, populate_existing=True)
    if stocktake is None:
        raise NotFound(f"No stocktake {stocktake_id}.")
    return stocktake


def open_stocktake(
    session: Session, location_id: uuid.UUID, *, note: str | None = None
) -> Stocktake:
    require_location(session, location_id)
    # Opening stocktakes of one location queue on its row (NO KEY UPDATE lets stock rows that
    # refer to it be written meanwhile), so two openers cannot both find none counting.
    session.execute(
        select(Location.id).where(Location.id == location_id).with_for_update(key_share=True)
    )
    counting = session.scalar(
        select(STOCKTAKES.c.id).where(
            STOCKTAKES.c.location_id == location_id,
            STOCKTAKES.c.status == StocktakeStatus.COUNTING,
        )
    )
    if counting is not None:
        raise Conflict(
            f"Location {location_id} is being counted by stocktake {counting}; approve or "
            "cancel it first.",
            stocktake_id=str(counting),
        )
    stocktake = Stocktake(location_id=location_id, note=note)
    session.add(stocktake)
    session.flush()
    return stocktake


def _counting(session: Session, stocktake_id: uuid.UUID, *, share: bool = False) -> Stocktake:
    """The stocktake, 409 unless counting; with ``share``, its row stays share-locked so that
    an approval (an UPDATE of the row) waits until this sheet is committed."""
    stocktake = session.get(
        Stocktake,
        stocktake_id,
        populate_existing=True,
        with_for_update={"read": True} if share else None,
    )
    if stocktake is None:
        raise NotFound(f"No stocktake {stocktake_id}.")
    if stocktake.status is not StocktakeStatus.COUNTING:
        raise Conflict(
            f"Stocktake {stocktake_id} is {stocktake.status.value}; counts are closed.",
            status_now=stocktake.status.value,
        )
    return stocktake


def record_count(
    session: Session, stocktake_id: uuid.UUID, zone: str, counts: Sequence[Line]
) -> Stocktake:
    """Record (or re-record) one zone's count sheet. Selling goes on meanwhile."""
    zone = require_text(zone, "zone", max_length=ZONE_MAX)
    for i, line in enumerate(counts):
        if line.quantity < 0:
            raise InvalidInput.field(f"lines.{i}.quantity", "a count cannot be negative")
    if len({x.sku_id for x in counts}) != len(counts):
        raise InvalidInput.field("lines", "give one line per SKU")
    stocktake = _counting(session, stocktake_id, share=True)
    require_skus(session, [x.sku_id for x in counts])
    rows = {
        sku: on_hand
        for sku, on_hand in session.execute(
            select(BALANCES.c.sku_id, BALANCES.c.on_hand).where(
                BALANCES.c.location_id == stocktake.location_id,
                BALANCES.c.sku_id.in_([x.sku_id for x in counts]),
            )
        )
    }
    insert_fn = conflict_insert(session)
    now = utcnow()
    for line in counts:
        stmt = insert_fn(COUNTS).values(
            stocktake_id=stocktake_id,
            zone=zone,
            sku_id=line.sku_id,
            counted=line.quantity,
            on_hand_at_count=rows.get(line.sku_id, 0),
            counted_by=context.actor.get(),
            counted_at=now,
        )
        # A recount of the zone replaces the sheet: its figure is of this moment, so it is held
        # against this moment's on-hand (the first one's would count the sales since twice).
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[COUNTS.c.stocktake_id, COUNTS.c.zone, COUNTS.c.sku_id],
                set_={
                    name: stmt.excluded[name]
                    for name in ("counted", "on_hand_at_count", "counted_by", "counted_at")
                },
            )
        )
    return get_stocktake(session, stocktake_id)


def _settle(session: Session, stocktake_id: uuid.UUID, **values: object) -> bool:
    """Move the counting stocktake on with ``values`` in one conditional UPDATE; False when it
    was not counting any more (on PostgreSQL, the UPDATE waited for the step that won)."""
    claimed = session.execute(
        update(STOCKTAKES)
        .where(STOCKTAKES.c.id == stocktake_id, STOCKTAKES.c.status == StocktakeStatus.COUNTING)
        .values(**values, updated_at=utcnow())
        .returning(STOCKTAKES.c.id)
    ).first()
    return claimed is not None


def approve_stocktake(session: Session, stocktake_id: uuid.UUID) -> list[Posted]:
    """Post every SKU's variance as one batch of stocktake_variance movements; once only.

    409 naming the status found unless counting (approved already, or cancelled), also when
    a cancel or another approval won a race with this one; nothing is posted then.
    """
    location_id = _counting(session, stocktake_id).location_id
    actor = context.actor.get()
    approved = _settle(
        session,
        stocktake_id,
        status=StocktakeStatus.APPROVED,
        approved_by=actor,
        approved_at=utcnow(),
    )
    if not approved:
        found = get_stocktake(session, stocktake_id).status.value
        raise Conflict(
            f"Stocktake {stocktake_id} was {found} meanwhile; nothing was posted.",
            status_now=found,
        )
    posted = []
    for sku_id, variance in sorted(_variances(session, stocktake_id).items()):
        if variance == 0:
            continue
        figures = upsert_balance(session, location_id, sku_id, on_hand=variance)
        posted.append(
            write_movement(
                session,
                figures,
                kind=MovementKind.STOCKTAKE_VARIANCE,
                quantity=variance,
                reference_type="stocktake",
                reference_id=str(stocktake_id),
                approver=actor,
            )
        )
    return posted


def _variances(session: Session, stocktake_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """Counted minus expected per SKU, read after the claim: a sheet that was being recorded
    held the claim back until it committed, so this read sees it."""
    counted: dict[uuid.UUID, int] = {}
    expected: dict[uuid.UUID, int] = {}
    rows = session.execute(
        select(COUNTS.c.sku_id, COUNTS.c.counted, COUNTS.c.on_hand_at_count)
        .where(COUNTS.c.stocktake_id == stocktake_id)
        .order_by(COUNTS.c.counted_at, COUNTS.c.zone)
    )
    # The expected quantity is the on-hand when the SKU's first sheet was recorded.
    for sku_id, figure, on_hand_at_count in rows:
        counted[sku_id] = counted.get(sku_id, 0) + figure
        expected.setdefault(sku_id, on_hand_at_count)
    return {sku_id: counted[sku_id] - expected[sku_id] for sku_id in counted}


def cancel_stocktake(session: Session, stocktake_id: uuid.UUID) -> Stocktake:
    """Drop the count without posting anything; cancelling again answers the cancellation.

    409 naming ``approved`` once approved (also when the approval won a race with this
    cancel): its variances are posted and stand, and a new count corrects them.
    """
    stocktake = get_stocktake(session, stocktake_id)
    meanwhile = ""
    if stocktake.status is StocktakeStatus.COUNTING:
        if _settle(session, stocktake_id, status=StocktakeStatus.CANCELLED):
            return get_stocktake(session, stocktake_id)
        stocktake, meanwhile = get_stocktake(session, stocktake_id), " meanwhile"
    if stocktake.status is StocktakeStatus.APPROVED:
        raise Conflict(
            f"Stocktake {stocktake_id} was approved{meanwhile}: its variances are posted and "
            "stand; a new count corrects them.",
            status_now=stocktake.status.value,
        )
    return stocktake
