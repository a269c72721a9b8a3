"""HTTP endpoints of back-office imports: send a batch (CSV or JSON), read its report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Depends, Query, Request, Response, status
from pydantic import BaseModel
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.errors import Forbidden, InvalidInput
from zhongtai.core.http.body_limit import accepts_bulk_body
from zhongtai.core.http.deps import app_settings, db_session
from zhongtai.core.http.routing import api_router, request_body
from zhongtai.core.http.security import current_principal
from zhongtai.core.pagination import Page, PageParams, page_params
from zhongtai.core.settings import Settings
from zhongtai.integrations import import_batches, imports
from zhongtai.integrations.import_rules import BatchUnreadable, ImportKind, fingerprint, read_batch

router = api_router(tags=["imports"])

#: Who may send each kind: the catalog's writers, the price setters, the stock correctors.
NEEDS = {
    ImportKind.PRODUCTS: Permission.CATALOG_WRITE,
    ImportKind.PRICES: Permission.PRICES_WRITE,
    ImportKind.STOCK: Permission.INVENTORY_ADJUST,
}


class BatchSummaryOut(BaseModel):
    batch_id: str
    kind: str
    rows_total: int
    rows_loaded: int
    rows_rejected: int
    loaded_at: datetime


class BatchOut(BaseModel):
    batch_id: str
    kind: str
    rows_total: int
    rows_loaded: int
    rows_rejected: int
    report: list[dict[str, Any]]


def _out(batch: Any) -> BatchOut:
    return BatchOut(
        batch_id=batch.batch_id,
        kind=batch.kind,
        rows_total=batch.rows_total,
        rows_loaded=batch.rows_loaded,
        rows_rejected=batch.rows_rejected,
        report=batch.report,
    )


@router.post(
    "/imports/{kind}",
    response_model=BatchOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "This batch id was loaded before: its first report."}},
)
@accepts_bulk_body
def send_batch(
    kind: ImportKind,
    request: Request,
    response: Response,
    batch_id: str = Query(min_length=1, max_length=128, description="Your id of this batch."),
    body: bytes = Depends(request_body),
    principal: Principal = Depends(current_principal),
    session: Session = Depends(db_session),
    settings: Settings = Depends(app_settings),
) -> BatchOut:
    """Load a product master, price list or stock snapshot, as CSV (`text/csv`, header line
    first) or JSON (a list of objects). Each row loads or is rejected with its line and the
    field at fault; the report also says what changed (stock: on-hand before, after, variance).
    Sending the same batch id again changes nothing and answers the first report."""
    principal.require(NEEDS[kind])
    try:
        rows = read_batch(body, request.headers.get("content-type", "text/csv"))
    except BatchUnreadable as error:
        raise InvalidInput.field("body", str(error)) from None
    loaded = imports.load_batch(
        session,
        kind,
        batch_id,
        rows,
        fingerprint=fingerprint(body),
        caller=principal,
        currency=settings.currency,
    )
    if not loaded.created:
        response.status_code = status.HTTP_200_OK
    return _out(loaded.batch)


@router.get("/imports/batches", response_model=Page[BatchSummaryOut])
def list_batches(
    kind: ImportKind | None = None,
    principal: Principal = Depends(current_principal),
    page: PageParams = Depends(page_params),
    session: Session = Depends(db_session),
) -> Page[BatchSummaryOut]:
    """The loaded batches (without their reports), oldest first: of the kinds the caller may
    send, and, for a caller bound to stores, only her stores' batches."""
    if kind is not None:
        principal.require(NEEDS[kind])
    kinds = [k.value for k, needed in NEEDS.items() if principal.can(needed)]
    if not kinds:
        raise Forbidden("Reading import batches needs a permission to send them.")
    rows, cursor = import_batches.list_batches(
        session, principal, [kind.value] if kind else kinds, page
    )
    return Page(
        items=[
            BatchSummaryOut(
                batch_id=b.batch_id,
                kind=b.kind,
                rows_total=b.rows_total,
                rows_loaded=b.rows_loaded,
                rows_rejected=b.rows_rejected,
                loaded_at=b.loaded_at,
            )
            for b in rows
        ],
        next_cursor=cursor,
    )


@router.get("/imports/batches/{batch_id}", response_model=BatchOut)
def read_batch_report(
    batch_id: str,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(db_session),
) -> BatchOut:
    """A loaded batch's reconciliation report. Another store's batch answers 404, as no batch."""
    batch = import_batches.get_batch(session, batch_id, principal)
    principal.require(NEEDS[ImportKind(batch.kind)])
    return _out(batch)
