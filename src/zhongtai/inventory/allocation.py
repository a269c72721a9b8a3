"""Use cases of channel allocation: what each sales channel may sell of a store's stock."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Sequence

from sqlalchemy import ColumnElement, Table, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.errors import InvalidInput, NotFound
from zhongtai.core.ids import new_id
from zhongtai.inventory.checks import require_location
from zhongtai.inventory.ledger import BALANCES
from zhongtai.inventory.models import ChannelAllocation
from zhongtai.inventory.rules import CHANNEL_PATTERN, Allocation, atp, channel_atp

_CHANNEL = re.compile(CHANNEL_PATTERN)


def check_channel(channel: str) -> None:
    if not _CHANNEL.match(channel):
        raise InvalidInput.field(
            "channel",
            "must be a touchpoint such as 'app' or 'mini_program', or 'marketplace:<name>'",
        )


def set_allocation(
    session: Session,
    channel: str,
    location_id: uuid.UUID | None,
    *,
    share_percent: int,
    keep_units: int,
) -> ChannelAllocation:
    """Create or change the channel's rule for one location (or chain-wide), in one statement."""
    check_channel(channel)
    if not 0 <= share_percent <= 100:
        raise InvalidInput.field("share_percent", "must be between 0 and 100")
    if keep_units < 0:
        raise InvalidInput.field("keep_units", "must be zero or more")
    if location_id is not None:
        require_location(session, location_id)
    insert_fn = (
        postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    )
    now = utcnow()
    table: Table = ChannelAllocation.__table__  # type: ignore[assignment]
    stmt = insert_fn(table).values(
        id=new_id(),
        channel=channel,
        location_id=location_id,
        share_percent=share_percent,
        keep_units=keep_units,
        created_at=now,
        updated_at=now,
    )
    where = (
        table.c.location_id.is_(None) if location_id is None else table.c.location_id.isnot(None)
    )
    elements = ["channel"] if location_id is None else ["channel", "location_id"]
    stmt = stmt.on_conflict_do_update(
        index_elements=elements,
        index_where=where,
        set_={"share_percent": share_percent, "keep_units": keep_units, "updated_at": now},
    )
    rule: ChannelAllocation = session.scalars(
        select(ChannelAllocation).from_statement(stmt.returning(*table.c)),
        execution_options={"populate_existing": True},
    ).one()
    return rule


def remove_allocation(session: Session, allocation_id: uuid.UUID) -> None:
    rule = session.get(ChannelAllocation, allocation_id)
    if rule is None:
        raise NotFound(f"No channel allocation {allocation_id}.")
    session.delete(rule)
    session.flush()


def list_allocations(session: Session, channel: str | None = None) -> list[ChannelAllocation]:
    stmt = select(ChannelAllocation).order_by(
        ChannelAllocation.channel, ChannelAllocation.location_id, ChannelAllocation.id
    )
    if channel is not None:
        stmt = stmt.where(ChannelAllocation.channel == channel)
    return list(session.scalars(stmt))


def _applies(channel: str, location_id: uuid.UUID) -> ColumnElement[bool]:
    return (ChannelAllocation.channel == channel) & or_(
        ChannelAllocation.location_id == location_id, ChannelAllocation.location_id.is_(None)
    )


def allocation_for(session: Session, channel: str, location_id: uuid.UUID) -> Allocation:
    """The rule that governs the channel at the location: its own, else chain-wide, else all."""
    rows = session.execute(
        select(
            ChannelAllocation.location_id,
            ChannelAllocation.share_percent,
            ChannelAllocation.keep_units,
        ).where(_applies(channel, location_id))
    ).all()
    best = sorted(rows, key=lambda r: r[0] is None)
    return Allocation(best[0][1], best[0][2]) if best else Allocation()


def channel_balances(
    session: Session, channel: str, location_id: uuid.UUID, sku_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, int]]:
    """(store ATP, channel ATP) of each SKU at the location; SKUs never stocked there: 0."""
    check_channel(channel)
    allocation = allocation_for(session, channel, location_id)
    rows = session.execute(
        select(
            BALANCES.c.sku_id, BALANCES.c.on_hand, BALANCES.c.reserved, BALANCES.c.safety_stock
        ).where(BALANCES.c.location_id == location_id, BALANCES.c.sku_id.in_(set(sku_ids)))
    ).all()
    found = {sku: atp(on_hand, reserved, safety) for sku, on_hand, reserved, safety in rows}
    return {sku: (found.get(sku, 0), channel_atp(found.get(sku, 0), allocation)) for sku in sku_ids}


def channel_atp_at(
    session: Session,
    channel: str | None,
    location_ids: Collection[uuid.UUID],
    sku_ids: Collection[uuid.UUID],
) -> dict[tuple[uuid.UUID, uuid.UUID], int]:
    """What a channel may sell of each SKU at each location, in two statements (the rules, then
    the balances): the sourcing of a checkout reads many stores at once. Missing rows are 0.
    Without a channel, the store ATP."""
    if not location_ids or not sku_ids:
        return {}
    rules: dict[uuid.UUID | None, Allocation] = {}
    if channel is not None:
        check_channel(channel)
        for location_id, share, keep in session.execute(
            select(
                ChannelAllocation.location_id,
                ChannelAllocation.share_percent,
                ChannelAllocation.keep_units,
            ).where(ChannelAllocation.channel == channel)
        ):
            rules[location_id] = Allocation(share, keep)
    rows = session.execute(
        select(
            BALANCES.c.location_id,
            BALANCES.c.sku_id,
            BALANCES.c.on_hand,
            BALANCES.c.reserved,
            BALANCES.c.safety_stock,
        ).where(BALANCES.c.location_id.in_(set(location_ids)), BALANCES.c.sku_id.in_(set(sku_ids)))
    )
    chain_rule = rules.get(None, Allocation())
    return {
        (location_id, sku_id): channel_atp(
            atp(on_hand, reserved, safety), rules.get(location_id, chain_rule)
        )
        for location_id, sku_id, on_hand, reserved, safety in rows
    }
