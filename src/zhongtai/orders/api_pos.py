"""HTTP endpoints of the till: one sale, or an offline terminal's queue uploaded in batches."""

from __future__ import annotations

from fastapi import Depends, Response, status
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.errors import InvalidInput
from zhongtai.core.http.body_limit import accepts_bulk_body
from zhongtai.core.http.deps import db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.orders import pos
from zhongtai.orders.schemas import PosBatchIn, PosBatchOut, PosSaleIn, PosSaleOut
from zhongtai.orders.tender_rules import Tender

router = api_router(tags=["pos"])
SELL = Depends(require(Permission.POS_SELL))


def _sale(body: PosSaleIn, principal: Principal) -> pos.PosSale:
    store_id = body.store_id
    if store_id is None:
        if principal.store_ids is None or len(principal.store_ids) != 1:
            raise InvalidInput.field("store_id", "name the store of the till")
        store_id = next(iter(principal.store_ids))
    terminal = body.terminal_code or principal.terminal_id
    if not terminal:
        raise InvalidInput.field("terminal_code", "name the till (a POS key knows its own)")
    if body.terminal_code and principal.terminal_id and body.terminal_code != principal.terminal_id:
        raise InvalidInput.field("terminal_code", "a POS key sells on its own terminal only")
    return pos.PosSale(
        client_sale_id=body.client_sale_id,
        store_id=store_id,
        terminal_code=terminal,
        lines=[pos.PosLine(x.sku_id, x.quantity, x.unit_price) for x in body.lines],
        tenders=[Tender(x.type, x.amount) for x in body.tenders],
        occurred_at=body.occurred_at,
        member_id=body.member_id,
        guide_id=body.guide_id,
    )


def _out(result: pos.SaleResult) -> PosSaleOut:
    order = result.order
    return PosSaleOut(
        client_sale_id=result.client_sale_id,
        status=result.status.value,
        order_id=order.id if order else None,
        receipt_number=order.receipt_number if order else None,
        total=order.total if order else None,
        change=result.change,
        problem=result.problem,
    )


@router.post(
    "/pos/sales",
    response_model=PosSaleOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "This client_sale_id was recorded before."}},
)
def sell(
    body: PosSaleIn,
    response: Response,
    principal: Principal = SELL,
    session: Session = Depends(db_session),
) -> PosSaleOut:
    """Record a till sale: stock leaves the store's on-hand at once (never refused: a sale
    below zero is flagged), the receipt gets the terminal's next number of the business day.
    A ``guide_id`` must name an active guide of the sale's store (422 on ``guide_id``)."""
    result = pos.record_till_sale(session, _sale(body, principal), caller=principal)
    if result.status is pos.SaleStatus.DUPLICATE:
        response.status_code = status.HTTP_200_OK
    return _out(result)


@router.post("/pos/sales/batch", response_model=PosBatchOut)
@accepts_bulk_body
def upload_offline_sales(
    body: PosBatchIn, principal: Principal = SELL, session: Session = Depends(db_session)
) -> PosBatchOut:
    """An offline terminal's queued sales. Each is recorded once by its ``client_sale_id``,
    whatever is resent; the answer says per sale what the terminal may delete (recorded,
    duplicate) and what to fix (rejected, with the problem: a guide who is not an active guide
    of the store rejects that sale alone)."""
    sales = []
    for i, item in enumerate(body.sales):
        try:
            sales.append(_sale(item, principal))
        except InvalidInput as error:
            raise InvalidInput(
                f"sales[{i}]: {error.detail}",
                errors=[
                    {"field": f"sales[{i}].{e['field']}", "message": e["message"]}
                    for e in error.errors or []
                ],
            ) from None
    results = pos.upload_till_sales(session, sales, caller=principal)
    return PosBatchOut(results=[_out(r) for r in results])
