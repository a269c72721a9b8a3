"""Judging a batch of baskets against the balance rows and taking what they hold from them.

The baskets of a batch are judged in arrival order against figures read under lock, each
all-or-nothing, and then each changed row gets one conditional ``UPDATE`` of what the batch
holds there: the database checks the condition again, so a wrong judgement fails rather than
oversells. A batch whose baskets all take from one row under one allocation rule (a hot SKU)
skips the lock: one conditional UPDATE of their total decides them all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import BigInteger, bindparam, cast, literal, select, tuple_
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Sku
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import InvalidInput
from zhongtai.inventory import pg_batches
from zhongtai.inventory.allocation import allocation_for
from zhongtai.inventory.errors import InsufficientStock
from zhongtai.inventory.hold_requests import HoldRequest, Outcome
from zhongtai.inventory.ledger import BALANCES, Figures, change_balance
from zhongtai.inventory.rules import Allocation, atp, channel_atp, lock_order, may_take

BalanceKey = tuple[uuid.UUID, uuid.UUID]  # (location_id, sku_id): one balance row
AllocationKey = tuple[str | None, uuid.UUID]  # (channel, location_id): one allocation rule


@dataclass
class BatchRow:
    """A balance row as the batch sees it, and what the batch adds to it (and for whom)."""

    on_hand: int
    reserved: int
    safety_stock: int
    low_stock_level: int
    added: int = 0
    takers: set[int] = field(default_factory=set)

    @property
    def atp(self) -> int:
        return atp(self.on_hand, self.reserved, self.safety_stock)


@dataclass(frozen=True)
class Judgement:
    """What a batch held: the held requests with the figures of their lines after the batch,
    and every row it judged against (with what it added there) and its figures after."""

    held: dict[int, list[Figures]]
    rows: dict[BalanceKey, BatchRow]
    figures: dict[BalanceKey, Figures]


def allocations_for_requests(
    session: Session, requests: list[HoldRequest]
) -> dict[AllocationKey, Allocation]:
    """The allocation rule of each (channel, location) asked; no channel, no restriction."""
    found: dict[AllocationKey, Allocation] = {}
    for r in requests:
        key = (r.channel, r.location_id)
        if key not in found:
            found[key] = (
                Allocation() if r.channel is None else allocation_for(session, *key)  # type: ignore[arg-type]
            )
    return found


def judge_baskets(
    session: Session,
    requests: list[HoldRequest],
    new: list[int],
    allocations: dict[AllocationKey, Allocation],
    outcomes: list[Outcome | None],
) -> Judgement:
    """Hold what can be held, in arrival order; an ``InsufficientStock`` (or 422) outcome
    for the others."""
    if not new:
        return Judgement({}, {}, {})
    keys = sorted({(requests[i].location_id, x.sku_id) for i in new for x in requests[i].lines})
    rules = {allocations[(requests[i].channel, requests[i].location_id)] for i in new}
    rows: dict[BalanceKey, BatchRow] | None = None
    if len(keys) == 1 and len(rules) == 1:
        rows = _hold_one_row(session, requests, new, keys[0], rules.pop())
    if rows is None:
        rows = _lock_rows(session, keys)
        _decide(requests, new, allocations, rows, outcomes)
        _apply(session, rows)
    _unknown_skus(session, requests, [i for i in new if outcomes[i] is not None], outcomes)
    held = [i for i in new if outcomes[i] is None]
    figures = {
        key: Figures(*key, row.on_hand, row.reserved, row.safety_stock, row.low_stock_level)
        for key, row in rows.items()
    }
    return Judgement(
        held={
            i: [figures[(requests[i].location_id, x.sku_id)] for x in requests[i].lines]
            for i in held
        },
        rows=rows,
        figures=figures,
    )


def _hold_one_row(
    session: Session,
    requests: list[HoldRequest],
    new: list[int],
    key: BalanceKey,
    rule: Allocation,
) -> dict[BalanceKey, BatchRow] | None:
    """Every basket on one row under one allocation: one conditional UPDATE of their total.

    Sufficient: when the total fits the rule, every basket fits in turn (the share and the
    units kept back only grow stricter per unit). None when it does not fit: judge one by one.
    """
    total = sum(x.quantity for i in new for x in requests[i].lines)
    b = BALANCES.c
    available = b.on_hand - b.reserved - b.safety_stock
    condition = available >= total
    if rule.share_percent < 100:
        # 64-bit: grams of stock times a percentage overflow a 32-bit integer.
        condition &= cast(available, BigInteger) * rule.share_percent >= (
            cast(literal(total), BigInteger) * 100
        )
    if rule.keep_units:
        condition &= available - rule.keep_units >= total
    after = change_balance(session, *key, reserved=total, condition=condition)
    if after is None:
        return None
    row = BatchRow(after.on_hand, after.reserved, after.safety_stock, after.low_stock_level)
    row.added = total
    row.takers = set(new)
    return {key: row}


def _lock_rows(session: Session, keys: list[BalanceKey]) -> dict[BalanceKey, BatchRow]:
    if session.get_bind().dialect.name == "postgresql":
        found = pg_batches.lock_balances(session, keys)
    else:  # SQLite: the writer's BEGIN IMMEDIATE already excludes every other writer
        b = BALANCES.c
        found = [
            (loc, sku, on_hand, reserved, safety, low)
            for loc, sku, on_hand, reserved, safety, low in session.execute(
                select(
                    b.location_id,
                    b.sku_id,
                    b.on_hand,
                    b.reserved,
                    b.safety_stock,
                    b.low_stock_level,
                ).where(tuple_(b.location_id, b.sku_id).in_(keys))
            )
        ]
    return {(loc, sku): BatchRow(a, b, c, d) for loc, sku, a, b, c, d in found}


def _decide(
    requests: list[HoldRequest],
    new: list[int],
    allocations: dict[AllocationKey, Allocation],
    rows: dict[BalanceKey, BatchRow],
    outcomes: list[Outcome | None],
) -> None:
    for i in new:
        r = requests[i]
        rule = allocations[(r.channel, r.location_id)]
        for x in lock_order(r.lines):
            row = rows.get((r.location_id, x.sku_id))
            store_atp = 0 if row is None else row.atp
            if row is None or not may_take(store_atp, rule, x.quantity):
                outcomes[i] = InsufficientStock(
                    location_id=r.location_id,
                    sku_id=x.sku_id,
                    requested=x.quantity,
                    available=channel_atp(store_atp, rule),
                )
                break
        else:
            for x in r.lines:
                row = rows[(r.location_id, x.sku_id)]
                row.reserved += x.quantity
                row.added += x.quantity
                row.takers.add(i)


def _apply(session: Session, rows: dict[BalanceKey, BatchRow]) -> None:
    """Add what the batch holds to each locked row, the database checking it still fits."""
    changed = [(loc, sku, row.added) for (loc, sku), row in rows.items() if row.added]
    if not changed:
        return
    if session.get_bind().dialect.name == "postgresql":
        done = pg_batches.add_reserved(session, changed, utcnow())
    else:
        b = BALANCES.c
        stmt = (
            BALANCES.update()
            .where(b.location_id == bindparam("l"), b.sku_id == bindparam("s"))
            .where(b.on_hand - b.reserved - b.safety_stock >= bindparam("q"))
            .values(reserved=b.reserved + bindparam("q"))
        )
        params = [{"l": loc, "s": sku, "q": q} for loc, sku, q in changed]
        done = session.execute(stmt, params).rowcount  # type: ignore[attr-defined]
    if done != len(changed):  # the rows are locked: a miss is a bug, never a race
        raise RuntimeError(f"held stock on {done} of {len(changed)} locked balance rows")


def _unknown_skus(
    session: Session,
    requests: list[HoldRequest],
    refused: list[int],
    outcomes: list[Outcome | None],
) -> None:
    """A refused basket naming a SKU that does not exist answers 422 for that line instead."""
    asked = {x.sku_id for i in refused for x in requests[i].lines}
    if not asked:
        return
    known = set(session.scalars(select(Sku.id).where(Sku.id.in_(asked))))
    for i in refused:
        for n, x in enumerate(requests[i].lines):
            if x.sku_id not in known:
                outcomes[i] = InvalidInput.field(f"lines.{n}.sku_id", f"no SKU {x.sku_id}")
                break
