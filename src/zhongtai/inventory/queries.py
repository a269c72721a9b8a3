"""Reads of stock: balances per location or per SKU, the ledger, discrepancies (paginated)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core.pagination import PageParams, paginate
from zhongtai.inventory.models import MovementKind, StockBalance, StockDiscrepancy, StockMovement
from zhongtai.inventory.rules import atp


@dataclass(frozen=True)
class BalanceView:
    location_id: uuid.UUID
    sku_id: uuid.UUID
    on_hand: int
    reserved: int
    safety_stock: int
    in_transit: int
    low_stock_level: int
    atp: int


def _view(row: StockBalance) -> BalanceView:
    return BalanceView(
        location_id=row.location_id,
        sku_id=row.sku_id,
        on_hand=row.on_hand,
        reserved=row.reserved,
        safety_stock=row.safety_stock,
        in_transit=row.in_transit,
        low_stock_level=row.low_stock_level,
        atp=atp(row.on_hand, row.reserved, row.safety_stock),
    )


def list_balances(
    session: Session,
    location_id: uuid.UUID,
    page: PageParams,
    *,
    sku_ids: Collection[uuid.UUID] | None = None,
) -> tuple[list[BalanceView], str | None]:
    """One page of a location's balances, by SKU id."""
    stmt = select(StockBalance).where(StockBalance.location_id == location_id)
    if sku_ids:
        stmt = stmt.where(StockBalance.sku_id.in_(sku_ids))
    rows, cursor = paginate(session, stmt, [StockBalance.sku_id], page)
    return [_view(r) for r in rows], cursor


def balances_of_sku(
    session: Session,
    sku_id: uuid.UUID,
    page: PageParams,
    *,
    store_ids: Collection[uuid.UUID] | None = None,
) -> tuple[list[BalanceView], str | None]:
    """One page of a SKU's balances across locations (only ``store_ids`` when given)."""
    stmt = select(StockBalance).where(StockBalance.sku_id == sku_id)
    if store_ids is not None:
        stmt = stmt.where(StockBalance.location_id.in_(store_ids))
    rows, cursor = paginate(session, stmt, [StockBalance.location_id], page)
    return [_view(r) for r in rows], cursor


def list_movements(
    session: Session,
    page: PageParams,
    *,
    location_id: uuid.UUID | None = None,
    sku_id: uuid.UUID | None = None,
    kind: MovementKind | None = None,
    reference_type: str | None = None,
    reference_id: str | None = None,
    store_ids: Collection[uuid.UUID] | None = None,
) -> tuple[list[StockMovement], str | None]:
    """One page of the ledger, oldest first (ids are time-ordered)."""
    stmt = select(StockMovement)
    if location_id is not None:
        stmt = stmt.where(StockMovement.location_id == location_id)
    if store_ids is not None:
        stmt = stmt.where(StockMovement.location_id.in_(store_ids))
    if sku_id is not None:
        stmt = stmt.where(StockMovement.sku_id == sku_id)
    if kind is not None:
        stmt = stmt.where(StockMovement.kind == kind)
    if reference_type is not None:
        stmt = stmt.where(StockMovement.reference_type == reference_type)
    if reference_id is not None:
        stmt = stmt.where(StockMovement.reference_id == reference_id)
    return paginate(session, stmt, [StockMovement.id], page)


def list_discrepancies(
    session: Session,
    page: PageParams,
    *,
    location_id: uuid.UUID | None = None,
    store_ids: Collection[uuid.UUID] | None = None,
    open_only: bool = True,
) -> tuple[list[StockDiscrepancy], str | None]:
    """One page of stock discrepancies for store managers, oldest first."""
    stmt = select(StockDiscrepancy)
    if location_id is not None:
        stmt = stmt.where(StockDiscrepancy.location_id == location_id)
    if store_ids is not None:
        stmt = stmt.where(StockDiscrepancy.location_id.in_(store_ids))
    if open_only:
        stmt = stmt.where(StockDiscrepancy.resolved_at.is_(None))
    return paginate(session, stmt, [StockDiscrepancy.id], page)
