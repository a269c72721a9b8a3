"""HTTP endpoints of back-office imports: send a batch (CSV or JSON), read its report."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Query, Request, Response, status
from pydantic import BaseModel
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.errors import InvalidInput
from zhongtai.core.http.deps import app_settings, db_session
from zhongtai.core.http.routing import api_router, request_body
from zhongtai.core.http.security import current_principal
from zhongtai.core.settings import Settings
from zhongtai.integrations import imports
from zhongtai.integrations.import_rules import BatchUnreadable, ImportKind, fingerprint, read_batch

router = api_router(tags=["imports"])

#: Who may send each kind: the catalog's writers, the price setters, the stock correctors.
NEEDS = {
    ImportKind.PRODUCTS: Permission.CATALOG_WRITE,
    ImportKind.PRICES: Permission.PRICES_WRITE,
    ImportKind.STOCK: Permission.INVENTORY_ADJUST,
}


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


@router.get("/imports/batches/{batch_id}", response_model=BatchOut)
def read_batch_report(
    batch_id: str,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(db_session),
) -> BatchOut:
    """A loaded batch's reconciliation report."""
    batch = imports.get_batch(session, batch_id)
    principal.require(NEEDS[ImportKind(batch.kind)])
    return _out(batch)
