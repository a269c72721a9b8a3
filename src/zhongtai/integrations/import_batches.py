"""Whose an import batch is: the stores it belongs to, and reading and listing batches by them.

A batch belongs to the stores its rows name (a stock snapshot's locations, a price list's
stores) among those its sender may reach; a store-bound sender's batch naming none of them
belongs to the sender's stores. A caller bound to stores reads a batch only when every store
it belongs to is hers, as :meth:`Principal.covers_store` decides everywhere else; any other
batch answers exactly as no batch at all. A batch of no store (HQ's product master) is HQ's.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable

from sqlalchemy import ColumnElement, exists, false, insert, select
from sqlalchemy.orm import Session, defer

from zhongtai.core.auth.principal import Principal
from zhongtai.core.errors import NotFound
from zhongtai.core.pagination import PageParams, paginate
from zhongtai.integrations.import_models import ImportBatch, ImportBatchStore


def record_stores(
    session: Session, batch: ImportBatch, sender: Principal, named: Iterable[uuid.UUID]
) -> None:
    """Record the stores ``batch`` belongs to: those of ``named`` (the locations its rows name)
    that ``sender`` reaches, else a store-bound sender's own stores."""
    stores = {store for store in named if sender.covers_store(store)}
    if not stores and sender.store_ids is not None:
        stores = set(sender.store_ids)
    if stores:
        session.execute(
            insert(ImportBatchStore),
            [{"batch_id": batch.id, "store_id": s} for s in sorted(stores, key=str)],
        )


def may_read(caller: Principal, stores: Collection[uuid.UUID]) -> bool:
    """Whether ``caller`` may read a batch of these stores: HQ any, a store-bound caller one
    whose every store is hers (and not one of no store, which is HQ's)."""
    if caller.chain_wide:
        return True
    return bool(stores) and all(caller.covers_store(store) for store in stores)


def _stores_of(session: Session, batch: ImportBatch) -> set[uuid.UUID]:
    return set(
        session.scalars(
            select(ImportBatchStore.store_id).where(ImportBatchStore.batch_id == batch.id)
        )
    )


def find_batch(session: Session, batch_id: str) -> ImportBatch | None:
    """The batch under this id, whoever's it is (for the loader's once-only check)."""
    return session.scalars(
        select(ImportBatch).where(ImportBatch.batch_id == batch_id)
    ).one_or_none()


def readable(session: Session, batch: ImportBatch, caller: Principal) -> bool:
    return may_read(caller, _stores_of(session, batch))


def get_batch(session: Session, batch_id: str, caller: Principal) -> ImportBatch:
    """The batch, if ``caller`` may read it; another store's answers as no batch at all."""
    batch = find_batch(session, batch_id)
    if batch is None or not readable(session, batch, caller):
        raise NotFound(f"No import batch {batch_id}.")
    return batch


def _readable_by(caller: Principal) -> ColumnElement[bool] | None:
    """:func:`may_read` as a condition on batches (None: every batch)."""
    if caller.store_ids is None:
        return None
    if not caller.store_ids:
        return false()
    link = ImportBatchStore
    of_a_store = exists().where(link.batch_id == ImportBatch.id)
    elsewhere = exists().where(
        link.batch_id == ImportBatch.id, link.store_id.not_in(sorted(caller.store_ids, key=str))
    )
    return of_a_store & ~elsewhere


def list_batches(
    session: Session, caller: Principal, kinds: Collection[str], page: PageParams
) -> tuple[list[ImportBatch], str | None]:
    """The batches of these kinds ``caller`` may read, oldest first."""
    stmt = (
        select(ImportBatch)
        .where(ImportBatch.kind.in_(sorted(kinds)))
        .options(defer(ImportBatch.report))  # a listing shows no report
    )
    condition = _readable_by(caller)
    if condition is not None:
        stmt = stmt.where(condition)
    return paginate(session, stmt, [ImportBatch.id], page)
