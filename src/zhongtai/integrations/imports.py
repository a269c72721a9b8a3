"""Back-office imports (ERP/WMS): product master, prices and stock snapshots, row by row.

Each good row loads in a savepoint of its own through the owning context's use cases (catalog,
prices, inventory), so a bad row is reported with its line and the rest still load, and no row
is ever half-written. The sender's batch id is bound to the batch's content: the same batch sent
again answers the first load's report and changes nothing; other content under that id is a 409.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zhongtai.catalog import service as catalog
from zhongtai.catalog.models import Barcode, Category, Product, ProductKind, SaleUnit, Sku
from zhongtai.core import context
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Channel
from zhongtai.core.errors import Conflict, DomainError, InvalidInput
from zhongtai.core.ids import new_id
from zhongtai.integrations import import_batches
from zhongtai.integrations.import_models import ImportBatch
from zhongtai.integrations.import_rules import (
    ImportKind,
    PriceRow,
    ProductRow,
    RawRow,
    RowProblem,
    StockRow,
    check_price_row,
    check_product_row,
    check_stock_row,
    named_store_code,
)
from zhongtai.inventory.ledger import BALANCES
from zhongtai.inventory.stock import adjust_stock, lock_stock_rows
from zhongtai.stores.models import Location

BATCH_ID_MAX = 128
#: Codes looked up, and balance rows locked, per statement: well inside both engines' limits
#: on bound parameters, however many rows a batch has.
_CHUNK = 1000


@dataclass(frozen=True)
class Loaded:
    batch: ImportBatch
    created: bool


class _RowRejected(Exception):
    def __init__(self, problems: Sequence[RowProblem]) -> None:
        self.problems = list(problems)


def _reject(field: str, message: str) -> _RowRejected:
    return _RowRejected([RowProblem(field, message)])


def _sku(session: Session, code: str) -> Sku:
    sku = session.scalars(select(Sku).where(Sku.code == code)).one_or_none()
    if sku is None:
        raise _reject("sku_code", f"no SKU {code}")
    return sku


def _location(session: Session, code: str, field: str) -> Location:
    location = session.scalars(select(Location).where(Location.code == code)).one_or_none()
    if location is None:
        raise _reject(field, f"no location {code}")
    return location


def _load_product(session: Session, row: ProductRow, currency: str) -> dict[str, Any]:
    """Create the product and SKU when new; otherwise bring names and the base price up to date."""
    category = session.scalars(select(Category).where(Category.code == row.category_code)).first()
    if category is None:
        raise _reject("category_code", f"no category {row.category_code}")
    product = session.scalars(select(Product).where(Product.code == row.product_code)).first()
    new_sku = catalog.NewSku(
        code=row.sku_code,
        name=row.sku_name,
        base_price=row.base_price,
        price_per=row.price_per,
        size=row.size,
        colour=row.colour,
        barcodes=[row.barcode] if row.barcode else [],
    )
    if product is None:
        catalog.create_product(
            session,
            code=row.product_code,
            name=row.product_name,
            category_id=category.id,
            kind=ProductKind(row.kind),
            unit=SaleUnit(row.unit),
            currency=currency,
            skus=[new_sku],
            brand=row.brand,
            shelf_life_days=row.shelf_life_days,
        )
        return {"outcome": "created", "product": row.product_code, "sku": row.sku_code}
    changes: dict[str, Any] = {}
    if product.name != row.product_name:
        catalog.update_product(session, product.id, name=row.product_name)
        changes["product_name"] = row.product_name
    sku = session.scalars(select(Sku).where(Sku.code == row.sku_code)).one_or_none()
    if sku is None:
        catalog.add_sku(session, product.id, new_sku, currency=currency)
        return {"outcome": "created", "product": row.product_code, "sku": row.sku_code}
    if sku.product_id != product.id:
        raise _reject("sku_code", f"SKU {row.sku_code} belongs to another product")
    if sku.name != row.sku_name or sku.base_price != row.base_price:
        catalog.update_sku(session, sku.id, name=row.sku_name, base_price=row.base_price)
        changes |= {"sku_name": row.sku_name, "base_price": row.base_price}
    if row.barcode and session.get(Barcode, row.barcode) is None:
        catalog.add_barcode(session, sku.id, row.barcode)
        changes["barcode"] = row.barcode
    outcome = "updated" if changes else "unchanged"
    return {"outcome": outcome, "sku": row.sku_code, "changes": changes}


def _load_price(session: Session, row: PriceRow, caller: Principal) -> dict[str, Any]:
    sku = _sku(session, row.sku_code)
    store = _location(session, row.store_code, "store_code") if row.store_code else None
    override = catalog.add_price_override(
        session,
        sku.id,
        caller=caller,
        price=row.price,
        store_id=store.id if store else None,
        channel=Channel(row.channel) if row.channel else None,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        reason="ERP price import",
    )
    return {"outcome": "created", "sku": row.sku_code, "price_override_id": str(override.id)}


def _load_stock(
    session: Session, row: StockRow, caller: Principal, batch_id: str
) -> dict[str, Any]:
    """Bring on-hand to the counted figure with one adjustment of the difference."""
    location = _location(session, row.location_code, "location_code")
    caller.ensure_store(location.id)
    sku = _sku(session, row.sku_code)
    # Read under the row's lock (taken for the whole batch by :func:`_lock_counted_stock`): the
    # on-hand read is the one the adjustment changes, so a sale or another snapshot committing
    # meanwhile is neither lost nor counted twice.
    before = session.scalar(
        select(BALANCES.c.on_hand)
        .where(BALANCES.c.location_id == location.id, BALANCES.c.sku_id == sku.id)
        .with_for_update()
    )
    before = before or 0
    variance = row.on_hand - before
    if variance:
        adjust_stock(
            session,
            location.id,
            sku.id,
            variance,
            reason=f"stock snapshot {batch_id}",
            approver=caller.name,
            reference_type="import",
            reference_id=batch_id,
        )
    return {
        "outcome": "adjusted" if variance else "unchanged",
        "location": row.location_code,
        "sku": row.sku_code,
        "on_hand_before": before,
        "on_hand_after": row.on_hand,
        "variance": variance,
    }


def _loader(
    kind: ImportKind, caller: Principal, batch_id: str, currency: str
) -> Callable[[Session, dict[str, Any]], dict[str, Any]]:
    def products(session: Session, values: dict[str, Any]) -> dict[str, Any]:
        row = check_product_row(values)
        if isinstance(row, list):
            raise _RowRejected(row)
        return _load_product(session, row, currency)

    def prices(session: Session, values: dict[str, Any]) -> dict[str, Any]:
        row = check_price_row(values)
        if isinstance(row, list):
            raise _RowRejected(row)
        return _load_price(session, row, caller)

    def stock(session: Session, values: dict[str, Any]) -> dict[str, Any]:
        row = check_stock_row(values)
        if isinstance(row, list):
            raise _RowRejected(row)
        return _load_stock(session, row, caller, batch_id)

    return {ImportKind.PRODUCTS: products, ImportKind.PRICES: prices, ImportKind.STOCK: stock}[kind]


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _ids_by_code(
    session: Session, column: Any, id_column: Any, codes: Collection[str]
) -> dict[str, uuid.UUID]:
    found: dict[str, uuid.UUID] = {}
    for chunk in _chunks(sorted(codes)):
        rows = session.execute(select(column, id_column).where(column.in_(chunk)))
        found |= {code: id_ for code, id_ in rows}
    return found


def _lock_counted_stock(session: Session, rows: Sequence[RawRow], caller: Principal) -> None:
    """Lock every balance row a stock snapshot sets before loading any, in the order every use
    case locks them (location, then SKU): two snapshots of one location listing its SKUs in
    different orders queue instead of deadlocking. Only at locations the caller may count, as a
    row refused for its location must write nothing."""
    wanted: dict[str, set[str]] = {}
    for raw in rows:
        row = None if raw.problems else check_stock_row(raw.values)
        if isinstance(row, StockRow):
            wanted.setdefault(row.location_code, set()).add(row.sku_code)
    if not wanted:
        return
    locations = _ids_by_code(session, Location.code, Location.id, wanted)
    skus = _ids_by_code(session, Sku.code, Sku.id, set().union(*wanted.values()))
    by_location = {
        locations[code]: sorted(skus[c] for c in sku_codes if c in skus)
        for code, sku_codes in wanted.items()
        if code in locations and caller.covers_store(locations[code])
    }
    for location_id in sorted(by_location):
        for chunk in _chunks(by_location[location_id]):
            lock_stock_rows(session, location_id, chunk)


def _named_locations(session: Session, kind: ImportKind, rows: Sequence[RawRow]) -> set[uuid.UUID]:
    """The locations the rows name (whether or not the row loads): whose batch it is."""
    codes = {code for raw in rows if (code := named_store_code(kind, raw.values))}
    return set(_ids_by_code(session, Location.code, Location.id, codes).values())


def _problems_of(error: DomainError) -> list[dict[str, str]]:
    if error.errors:
        return [
            {"field": e.get("field", ""), "message": e.get("message", "")} for e in error.errors
        ]
    return [{"field": "", "message": error.detail}]


def load_batch(
    session: Session,
    kind: ImportKind,
    batch_id: str,
    rows: Sequence[RawRow],
    *,
    fingerprint: str,
    caller: Principal,
    currency: str = "CNY",
) -> Loaded:
    """Load a batch once, row by row, and keep its reconciliation report."""
    batch_id = batch_id.strip()
    if not batch_id or len(batch_id) > BATCH_ID_MAX:
        raise InvalidInput.field("batch_id", f"1 to {BATCH_ID_MAX} characters")
    if not rows:
        raise InvalidInput.field("rows", "the batch has no rows")
    batch = ImportBatch(
        id=new_id(),
        batch_id=batch_id,
        kind=kind.value,
        fingerprint=fingerprint,
        rows_total=len(rows),
        rows_loaded=0,
        rows_rejected=0,
        report=[],
        actor=context.actor.get(),
    )
    # The batch id is claimed first: a copy racing in waits on the unique index, then answers
    # the first load's report instead of loading the rows again.
    try:
        with session.begin_nested():
            session.add(batch)
            session.flush()
    except IntegrityError:
        return Loaded(_same_batch(session, batch_id, kind, fingerprint, caller), created=False)
    import_batches.record_stores(session, batch, caller, _named_locations(session, kind, rows))
    if kind is ImportKind.STOCK:
        _lock_counted_stock(session, rows, caller)
    load = _loader(kind, caller, batch_id, currency)
    report: list[dict[str, Any]] = []
    for raw in rows:
        try:
            if raw.problems:
                raise _RowRejected(raw.problems)
            with session.begin_nested():
                result = load(session, dict(raw.values))
            report.append({"line": raw.line, **result})
        except _RowRejected as refused:
            report.append(
                {
                    "line": raw.line,
                    "outcome": "rejected",
                    "problems": [
                        {"field": p.field, "message": p.message} for p in refused.problems
                    ],
                }
            )
        except DomainError as error:
            report.append(
                {"line": raw.line, "outcome": "rejected", "problems": _problems_of(error)}
            )
    refused_rows = sum(1 for r in report if r["outcome"] == "rejected")
    batch.rows_loaded = len(rows) - refused_rows
    batch.rows_rejected = refused_rows
    batch.report = report
    session.flush()
    return Loaded(batch, created=True)


def _same_batch(
    session: Session, batch_id: str, kind: ImportKind, fingerprint: str, caller: Principal
) -> ImportBatch:
    """The first load of a batch sent again, to answer its report; a 409 for other content
    under its id, or for an id another store's batch holds (whatever the content: the answer
    tells nothing of that batch)."""
    earlier = import_batches.find_batch(session, batch_id)
    if earlier is None or not import_batches.readable(session, earlier, caller):
        raise Conflict(
            f"Batch id {batch_id} is taken; send your data under a new batch id.",
            batch_id=batch_id,
        )
    if earlier.fingerprint != fingerprint or earlier.kind != kind.value:
        raise Conflict(
            f"Batch {batch_id} was loaded before with other content; send new data under a "
            "new batch id.",
            batch_id=batch_id,
        )
    return earlier
