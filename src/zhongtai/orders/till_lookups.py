"""What the sales of one till upload share, read once for the batch rather than once per sale.

An offline terminal uploads hundreds of sales of one store at a time. Each sale needs its
store, its terminal, the price unit of every SKU it names, whether its member exists, the
roster's entry of the guide it names, and whether it was recorded before (and then with which
payments, to tell a resend from another sale under the same id);
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
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Sku
from zhongtai.core.clock import utcnow
from zhongtai.core.db import conflict_insert
from zhongtai.core.errors import InvalidInput
from zhongtai.core.ids import new_id
from zhongtai.members.models import Member
from zhongtai.orders.models import Order, Payment, PosTerminal
from zhongtai.orders.selling_guides import RosterEntry, guide_roster_entries
from zhongtai.stores.models import Location


class TillSale(Protocol):
    """What the lookups read of a sale (``pos.PosSale``)."""

    @property
    def client_sale_id(self) -> uuid.UUID: ...

    @property
    def store_id(self) -> uuid.UUID: ...

    @property
    def member_id(self) -> uuid.UUID | None: ...

    @property
    def guide_id(self) -> uuid.UUID | None: ...


class TillLookups:
    """Stores, terminals, SKU price units, members, guides and earlier recordings (with their
    payments), each read at most once."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._stores: dict[uuid.UUID, Location | None] = {}
        self._terminals: dict[tuple[uuid.UUID, str], PosTerminal] = {}
        self._price_pers: dict[uuid.UUID, int | None] = {}
        #: client_sale_id -> its order, or None when looked up and not recorded
        self._recorded: dict[uuid.UUID, Order | None] = {}
        #: order id -> its payments, for the orders of earlier recordings
        self._payments: dict[uuid.UUID, list[Payment]] = {}
        self._members: dict[uuid.UUID, bool] = {}
        #: guide id -> her roster entry, or None when she is no guide
        self._guides: dict[uuid.UUID, RosterEntry | None] = {}

    @classmethod
    def for_sales(
        cls,
        session: Session,
        sales: Sequence[TillSale],
        sku_ids: Iterable[uuid.UUID],
        stores: Mapping[uuid.UUID, Location | None],
    ) -> TillLookups:
        """Read what these sales need in a few statements, whatever their number: their stores
        (as :func:`stores_of` read them), the price units of ``sku_ids``, their
        members and guides, and those of them recorded before with their payments."""
        lookups = cls(session)
        lookups._stores = dict(stores)
        member_ids = {sale.member_id for sale in sales if sale.member_id is not None}
        if member_ids:
            lookups._members = dict.fromkeys(member_ids, False)
            found = session.scalars(select(Member.id).where(Member.id.in_(member_ids)))
            lookups._members.update(dict.fromkeys(found, True))
        guide_ids = {sale.guide_id for sale in sales if sale.guide_id is not None}
        if guide_ids:
            lookups._guides = dict.fromkeys(guide_ids)
            lookups._guides.update(guide_roster_entries(session, guide_ids))
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
        orders = [order.id for order in lookups._recorded.values() if order is not None]
        if orders:
            lookups._payments = {order_id: [] for order_id in orders}
            for payment in session.scalars(select(Payment).where(Payment.order_id.in_(orders))):
                lookups._payments[payment.order_id].append(payment)
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

    def payments(self, order: Order) -> list[Payment]:
        """The payments an earlier recording of a sale took."""
        if order.id not in self._payments:
            self._payments[order.id] = list(
                self._session.scalars(select(Payment).where(Payment.order_id == order.id))
            )
        return self._payments[order.id]

    def member_exists(self, member_id: uuid.UUID) -> bool:
        if member_id not in self._members:
            found = self._session.scalar(select(Member.id).where(Member.id == member_id))
            self._members[member_id] = found is not None
        return self._members[member_id]

    def guide(self, guide_id: uuid.UUID) -> RosterEntry | None:
        """The roster's entry of the guide a sale names; None when she is no guide."""
        if guide_id not in self._guides:
            self._guides[guide_id] = guide_roster_entries(self._session, [guide_id]).get(guide_id)
        return self._guides[guide_id]

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


def stores_of(session: Session, sales: Sequence[TillSale]) -> dict[uuid.UUID, Location | None]:
    """The stores these sales name, read in one statement (None: no such location)."""
    store_ids = {sale.store_id for sale in sales}
    stores: dict[uuid.UUID, Location | None] = dict.fromkeys(store_ids)
    stores.update(
        (store.id, store)
        for store in session.scalars(select(Location).where(Location.id.in_(store_ids)))
    )
    return stores


def recorded_sale(session: Session, client_sale_id: uuid.UUID) -> Order | None:
    """The order a till sale was recorded as, read from the database."""
    return session.scalars(
        select(Order).where(Order.client_sale_id == client_sale_id)
    ).one_or_none()


def _registered_terminal(session: Session, store_id: uuid.UUID, code: str) -> PosTerminal:
    insert_fn = conflict_insert(session)
    now = utcnow()
    session.execute(
        insert_fn(PosTerminal)
        .values(id=new_id(), store_id=store_id, code=code, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["store_id", "code"])
    )
    return session.scalars(
        select(PosTerminal).where(PosTerminal.store_id == store_id, PosTerminal.code == code)
    ).one()
