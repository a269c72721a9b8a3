"""Use cases of price overrides: set one for a store and/or channel and window, list, end."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from zhongtai.catalog.models import PriceOverride
from zhongtai.catalog.skus import get_sku
from zhongtai.core.audit import record_audit
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Channel
from zhongtai.core.clock import as_utc, utcnow
from zhongtai.core.errors import Conflict, InvalidInput, NotFound, StoreOutOfScope
from zhongtai.core.pagination import PageParams, paginate
from zhongtai.stores.models import Location, LocationKind


def _ensure_may_price(caller: Principal, store_id: uuid.UUID | None) -> None:
    """A store's prices are set by callers covering it; prices for every store need HQ reach."""
    if store_id is not None:
        caller.ensure_store(store_id)
    elif not caller.chain_wide:
        raise StoreOutOfScope(
            "A price for every store needs a chain-wide caller; name one of your stores "
            "in store_id."
        )


def add_price_override(
    session: Session,
    sku_id: uuid.UUID,
    *,
    caller: Principal,
    price: int,
    store_id: uuid.UUID | None = None,
    channel: Channel | None = None,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
    reason: str | None = None,
) -> PriceOverride:
    """A price for one SKU in a store and/or on a channel from ``valid_from`` (default now)
    until ``valid_to`` (exclusive; none: until ended). Overlapping overrides may coexist:
    :func:`zhongtai.catalog.rules.effective_price` says which one applies.
    """
    sku = get_sku(session, sku_id)
    _ensure_may_price(caller, store_id)
    if price < 0:
        raise InvalidInput.field("price", "must be 0 fen or more")
    if store_id is not None:
        store = session.get(Location, store_id)
        if store is None:
            raise InvalidInput.field("store_id", f"no store {store_id}")
        if store.kind is not LocationKind.STORE:
            raise InvalidInput.field(
                "store_id", f"{store.code} is a {store.kind.value}, not a store"
            )
    # In UTC from here on, as stored: the answer then shows what a later read of it will.
    start = as_utc(valid_from) if valid_from is not None else utcnow()
    valid_to = as_utc(valid_to) if valid_to is not None else None
    if valid_to is not None and valid_to <= start:
        raise InvalidInput.field("valid_to", f"must be later than valid_from ({start.isoformat()})")
    override = PriceOverride(
        sku_id=sku.id,
        channel=channel.value if channel is not None else None,
        store_id=store_id,
        price=price,
        currency=sku.currency,
        valid_from=start,
        valid_to=valid_to,
        reason=reason,
    )
    session.add(override)
    session.flush()
    record_audit(
        session,
        "price_override.created",
        "price_override",
        override.id,
        None,
        _audited(override),
        store_id=store_id,
    )
    return override


def _audited(override: PriceOverride) -> dict[str, object]:
    return {
        "sku_id": override.sku_id,
        "store_id": override.store_id,
        "channel": override.channel,
        "price": override.price,
        "currency": override.currency,
        "valid_from": override.valid_from,
        "valid_to": override.valid_to,
        "reason": override.reason,
    }


def list_price_overrides(
    session: Session,
    sku_id: uuid.UUID,
    page: PageParams,
    *,
    caller: Principal,
    store_id: uuid.UUID | None = None,
) -> tuple[list[PriceOverride], str | None]:
    """A SKU's overrides, past and future, oldest first. A store-bound caller sees those of
    its stores and those for every store."""
    get_sku(session, sku_id)
    stmt = select(PriceOverride).where(PriceOverride.sku_id == sku_id)
    if store_id is not None:
        caller.ensure_store(store_id)
        stmt = stmt.where(PriceOverride.store_id == store_id)
    elif caller.store_ids is not None:
        stmt = stmt.where(
            or_(PriceOverride.store_id.is_(None), PriceOverride.store_id.in_(caller.store_ids))
        )
    return paginate(session, stmt, [PriceOverride.id], page)


def end_price_override(
    session: Session, override_id: uuid.UUID, *, caller: Principal, at: datetime | None = None
) -> PriceOverride | None:
    """Stop an override now, keeping the price history.

    One that has started is ended (``valid_to`` set to now) and kept, so what was charged when
    stays on record; one that has not started yet never applied and is withdrawn (deleted,
    returns None). One already ended answers 409, one withdrawn 404.

    Both writes are conditional on the window and on the end being still the one read: of
    clients ending the same override at once, one ends it and the others answer what they
    would have after it, even one whose "now" came before the winner's (on a row that looks
    open at that moment, the window alone would let it end the override a second time).
    """
    override = session.get(PriceOverride, override_id)
    if override is None:
        raise NotFound(f"No price override {override_id}.")
    _ensure_may_price(caller, override.store_id)
    before = _audited(override)
    now = at or utcnow()
    as_read = (
        PriceOverride.valid_to.is_(None)
        if override.valid_to is None
        else PriceOverride.valid_to == override.valid_to
    )
    ended = session.execute(
        update(PriceOverride)
        .where(
            PriceOverride.id == override_id,
            as_read,
            # One starting exactly now has charged nothing yet: it is withdrawn below (an end
            # equal to its start would also break the window's order).
            PriceOverride.valid_from < now,
            or_(PriceOverride.valid_to.is_(None), PriceOverride.valid_to > now),
        )
        .values(valid_to=now)
        .execution_options(synchronize_session="fetch")
    )
    if ended.rowcount:  # type: ignore[attr-defined]
        record_audit(
            session,
            "price_override.ended",
            "price_override",
            override_id,
            before,
            {**before, "valid_to": now},
            store_id=before["store_id"],  # type: ignore[arg-type]
        )
        return override
    withdrawn = session.execute(
        delete(PriceOverride)
        .where(PriceOverride.id == override_id, as_read, PriceOverride.valid_from >= now)
        .execution_options(synchronize_session="fetch")
    )
    if withdrawn.rowcount:  # type: ignore[attr-defined]
        record_audit(
            session,
            "price_override.withdrawn",
            "price_override",
            override_id,
            before,
            None,
            store_id=before["store_id"],  # type: ignore[arg-type]
        )
        return None
    # Ended before this call, or by another client since it read the override: say which.
    current = session.execute(
        select(PriceOverride.valid_to).where(PriceOverride.id == override_id)
    ).one_or_none()
    if current is None:
        raise NotFound(f"No price override {override_id}.")
    ended_at = current.valid_to.isoformat() if current.valid_to is not None else "?"
    raise Conflict(f"The price override {override_id} already ended at {ended_at}.")
