"""What the sales of one till upload share, read once for the batch rather than once per sale.

An offline terminal uploads hundreds of sales of one store at a time. Each sale needs its
store, its terminal, the price unit of every SKU it names and whether it was recorded before;
read per sale, that is most of a sale's statements (and the store, weakly held by the
session's identity map, is loaded again with its capabilities and opening hours for every
sale). :class:`TillLookups` reads them once per upload, or lazily, one by one, for a single
sale.

Only reads are remembered, plus the terminals registered on the way. A terminal registered in
a sale whose savepoint is rolled back is gone again, so :meth:`TillLookups.forget_terminals`
must be called after such a rollback (``upload_till_sales`` does).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Sku
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import InvalidInput
from zhongtai.core.ids import new_id
from zhongtai.orders.models import Order, PosTerminal
from zhongtai.stores.models import Location


class TillSale(Protocol):
    """What the lookups read of a sale (``pos.PosSale``)."""

    @property
    def client_sale_id(self) -> uuid.UUID: ...

    @property
    def store_id(self) -> uuid.UUID: ...


class TillLookups:
    """Stores, terminals, SKU price units and earlier recordings, each read at most once."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._stores: dict[uuid.UUID, Location | None] = {}
        self._terminals: dict[tuple[uuid.UUID, str], PosTerminal] = {}
        self._price_pers: dict[uuid.UUID, int | None] = {}
        #: client_sale_id -> its order, or None when looked up and not recorded
        self._recorded: dict[uuid.UUID, Order | None] = {}

    @classmethod
    def for_sales(
        cls, session: Session, sales: Sequence[TillSale], sku_ids: Iterable[uuid.UUID]
    ) -> TillLookups:
        """Read what these sales need in three statements: their stores, the price units of
        ``sku_ids``, and those of them recorded before."""
        lookups = cls(session)
        store_ids = {sale.store_id for sale in sales}
        found = session.scalars(select(Location).where(Location.id.in_(store_ids))).all()
        lookups._stores = dict.fromkeys(store_ids)
        lookups._stores.update({store.id: store for store in found})
        wanted = set(sku_ids)
        if wanted:
            lookups._price_pers = dict.fromkeys(wanted)
            rows = session.execute(select(Sku.id, Sku.price_per).where(Sku.id.in_(wanted)))
            lookups._price_pers.update((sku_id, per) for sku_id, per in rows)
        ids = {sale.client_sale_id for sale in sales}
        lookups._recorded = dict.fromkeys(ids)
        lookups._recorded.update(
            (order.client_sale_id, order)
            for order in session.scalars(select(Order).where(Order.client_sale_id.in_(ids)))
            if order.client_sale_id is not None
        )
        return lookups

    def store(self, store_id: uuid.UUID) -> Location | None:
        if store_id not in self._stores:
            self._stores[store_id] = self._session.get(Location, store_id)
        return self._stores[store_id]

    def recorded(self, client_sale_id: uuid.UUID) -> Order | None:
        """The order this sale was recorded as before, if it was."""
        if client_sale_id not in self._recorded:
            self._recorded[client_sale_id] = recorded_sale(self._session, client_sale_id)
        return self._recorded[client_sale_id]

    def remember_recorded(self, order: Order) -> None:
        """A sale of this batch was recorded (its savepoint committed): a repeat of it later in
        the batch is a duplicate."""
        if order.client_sale_id is not None:
            self._recorded[order.client_sale_id] = order

    def price_per(self, sku_id: uuid.UUID, index: int) -> int:
        """The SKU's price unit; 422 naming the sale's line if the SKU does not exist."""
        if sku_id not in self._price_pers:
            self._price_pers[sku_id] = self._session.scalar(
                select(Sku.price_per).where(Sku.id == sku_id)
            )
        per = self._price_pers[sku_id]
        if per is None:
            raise InvalidInput.field(f"lines[{index}].sku_id", f"no SKU {sku_id}")
        return per

    def terminal(self, store_id: uuid.UUID, code: str) -> PosTerminal:
        """The store's terminal with this code, registered on its first sale."""
        key = (store_id, code)
        if key not in self._terminals:
            self._terminals[key] = _registered_terminal(self._session, store_id, code)
        return self._terminals[key]

    def forget_terminals(self) -> None:
        """A sale's savepoint was rolled back: a terminal it registered is gone again."""
        self._terminals.clear()


def recorded_sale(session: Session, client_sale_id: uuid.UUID) -> Order | None:
    """The order a till sale was recorded as, read from the database."""
    return session.scalars(
        select(Order).where(Order.client_sale_id == client_sale_id)
    ).one_or_none()


def _registered_terminal(session: Session, store_id: uuid.UUID, code: str) -> PosTerminal:
    insert_fn = (
        postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    )
    now = utcnow()
    session.execute(
        insert_fn(PosTerminal)
        .values(id=new_id(), store_id=store_id, code=code, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["store_id", "code"])
    )
    return session.scalars(
        select(PosTerminal).where(PosTerminal.store_id == store_id, PosTerminal.code == code)
    ).one()
