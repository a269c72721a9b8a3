"""Use cases of channel allocation: what each sales channel may sell of a store's stock."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Select, String, Table, Uuid, and_, bindparam, or_, select
from sqlalchemy.orm import Session, aliased

from zhongtai.core.clock import utcnow
from zhongtai.core.db import conflict_insert
from zhongtai.core.errors import InvalidInput, NotFound
from zhongtai.core.ids import new_id
from zhongtai.core.outbox import record_event
from zhongtai.inventory.checks import require_location
from zhongtai.inventory.events import AllocationChanged
from zhongtai.inventory.ledger import BALANCES
from zhongtai.inventory.models import ChannelAllocation
from zhongtai.inventory.rules import CHANNEL_PATTERN, Allocation, atp, channel_atp

_CHANNEL = re.compile(CHANNEL_PATTERN)
#: Where :func:`remembering_allocations` keeps the rules read: (channel, location) -> rule.
_REMEMBERED = "inventory.allocation.remembered"


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
    """Create or change the channel's rule for one location (or chain-wide), in one statement,
    and announce it (``allocation.changed``, in the same transaction) unless it was so already.
    """
    check_channel(channel)
    if not 0 <= share_percent <= 100:
        raise InvalidInput.field("share_percent", "must be between 0 and 100")
    if keep_units < 0:
        raise InvalidInput.field("keep_units", "must be zero or more")
    if location_id is not None:
        require_location(session, location_id)
    insert_fn = conflict_insert(session)
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
        # A rule that is so already is left alone, and returns nothing: nothing to announce.
        where=or_(
            table.c.share_percent != stmt.excluded.share_percent,
            table.c.keep_units != stmt.excluded.keep_units,
        ),
    )
    rule: ChannelAllocation | None = session.scalars(
        select(ChannelAllocation).from_statement(stmt.returning(*table.c)),
        execution_options={"populate_existing": True},
    ).one_or_none()
    if rule is not None:
        _announce(session, rule, removed=False)
        return rule
    same = ChannelAllocation.location_id
    return session.scalars(
        select(ChannelAllocation).where(
            ChannelAllocation.channel == channel,
            same.is_(None) if location_id is None else same == location_id,
        )
    ).one()


def _announce(session: Session, rule: ChannelAllocation, *, removed: bool) -> None:
    """Record ``allocation.changed``: the marketplaces selling the channel push the stock of
    the stores the rule governs again."""
    record_event(
        session,
        AllocationChanged(
            allocation_id=rule.id,
            channel=rule.channel,
            location_id=rule.location_id,
            share_percent=None if removed else rule.share_percent,
            keep_units=None if removed else rule.keep_units,
        ),
        aggregate_type="channel_allocation",
        aggregate_id=rule.id,
        store_id=rule.location_id,
    )


def remove_allocation(session: Session, allocation_id: uuid.UUID) -> None:
    rule = session.get(ChannelAllocation, allocation_id)
    if rule is None:
        raise NotFound(f"No channel allocation {allocation_id}.")
    _announce(session, rule, removed=True)
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
    """The rule that governs the channel at the location: its own, else chain-wide, else all.

    Inside :func:`remembering_allocations`, a rule :func:`channel_atp_at` read for the same
    channel and location is answered without reading it again.
    """
    remembered = session.info.get(_REMEMBERED)
    if remembered is not None and (channel, location_id) in remembered:
        rule: Allocation = remembered[(channel, location_id)]
        return rule
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


@lru_cache(maxsize=2)
def _channel_atp_statement(with_channel: bool) -> Select[Any]:
    """The balances of some SKUs at some locations, each with the channel's own rule for its
    location and the channel's chain-wide rule beside it (NULLs when there is none).

    Built once per shape with bound parameters: sourcing asks on every checkout quote. Each
    join meets at most one rule (one per channel and location, one chain-wide per channel).
    """
    columns: list[Any] = [
        BALANCES.c.location_id,
        BALANCES.c.sku_id,
        BALANCES.c.on_hand,
        BALANCES.c.reserved,
        BALANCES.c.safety_stock,
    ]
    stmt = select(*columns)
    if with_channel:
        own, chain = aliased(ChannelAllocation), aliased(ChannelAllocation)
        channel = bindparam("channel", type_=String())
        stmt = (
            stmt.add_columns(
                own.share_percent, own.keep_units, chain.share_percent, chain.keep_units
            )
            .outerjoin(own, and_(own.channel == channel, own.location_id == BALANCES.c.location_id))
            .outerjoin(chain, and_(chain.channel == channel, chain.location_id.is_(None)))
        )
    return stmt.where(
        BALANCES.c.location_id.in_(bindparam("location_ids", type_=Uuid(), expanding=True)),
        BALANCES.c.sku_id.in_(bindparam("sku_ids", type_=Uuid(), expanding=True)),
    )


def _rule(share: int | None, keep: int | None) -> Allocation | None:
    return None if share is None or keep is None else Allocation(share, keep)


def channel_atp_at(
    session: Session,
    channel: str | None,
    location_ids: Collection[uuid.UUID],
    sku_ids: Collection[uuid.UUID],
) -> dict[tuple[uuid.UUID, uuid.UUID], int]:
    """What a channel may sell of each SKU at each location, in one statement (the balances
    with the rules that govern them): the sourcing of a checkout reads many stores at once.
    Missing rows are 0. Without a channel, the store ATP.

    Inside :func:`remembering_allocations` the rules read are remembered, so that holding the
    stock in the same checkout does not read them again.
    """
    if not location_ids or not sku_ids:
        return {}
    params: dict[str, Any] = {
        "location_ids": list(set(location_ids)),
        "sku_ids": list(set(sku_ids)),
    }
    if channel is not None:
        check_channel(channel)
        params["channel"] = channel
    rows = session.execute(_channel_atp_statement(channel is not None), params)
    remembered = session.info.get(_REMEMBERED) if channel is not None else None
    found: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
    for row in rows:
        location_id, sku_id, on_hand, reserved, safety = row[:5]
        rule = Allocation()
        if channel is not None:
            rule = _rule(row[5], row[6]) or _rule(row[7], row[8]) or rule
            if remembered is not None:
                remembered[(channel, location_id)] = rule
        found[(location_id, sku_id)] = channel_atp(atp(on_hand, reserved, safety), rule)
    return found


@contextmanager
def remembering_allocations(session: Session) -> Iterator[None]:
    """Within the block, the allocation rules :func:`channel_atp_at` reads are remembered and
    :func:`allocation_for` answers from them.

    A checkout quote reads the rules to choose its stores and again to hold the stock there,
    in the same transaction and without changing them in between; nothing else should run
    inside the block. Nested blocks share the outer one's memory.
    """
    if _REMEMBERED in session.info:
        yield
        return
    session.info[_REMEMBERED] = {}
    try:
        yield
    finally:
        del session.info[_REMEMBERED]
