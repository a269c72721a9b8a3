"""HTTP endpoints of inventory: balances, the ledger, receipts, adjustments, POS sales, holds."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import Depends, Query, Request, Response, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.http.deps import db_session, request_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.core.pagination import Page, PageParams, page_params
from zhongtai.inventory import service
from zhongtai.inventory.api_channels import caller_channel
from zhongtai.inventory.api_channels import router as channels_router
from zhongtai.inventory.api_stocktakes import router as stocktakes_router
from zhongtai.inventory.api_transfers import router as transfers_router
from zhongtai.inventory.models import MovementKind
from zhongtai.inventory.reservation_desk import ReservationDesk
from zhongtai.inventory.schemas import (
    AdjustmentIn,
    BalanceOut,
    DiscrepancyOut,
    FiguresOut,
    MovementOut,
    PostedList,
    PostedOut,
    ReceiptIn,
    ReservationIn,
    ReservationOut,
    SaleIn,
    StockLevelsIn,
)

router = api_router(tags=["inventory"])
READ = Depends(require(Permission.INVENTORY_READ))


@router.get("/inventory/locations/{location_id}/balances", response_model=Page[BalanceOut])
def location_balances(
    location_id: uuid.UUID,
    sku_id: list[uuid.UUID] | None = Query(None, description="Only these SKUs (repeatable)."),
    principal: Principal = READ,
    page: PageParams = Depends(page_params),
    session: Session = Depends(db_session),
) -> Page[BalanceOut]:
    """A location's stock per SKU with ATP, by SKU id."""
    principal.ensure_store(location_id)
    rows, cursor = service.list_balances(session, location_id, page, sku_ids=sku_id)
    return Page(items=[BalanceOut.of(r) for r in rows], next_cursor=cursor)


@router.get("/inventory/skus/{sku_id}/balances", response_model=Page[BalanceOut])
def sku_balances(
    sku_id: uuid.UUID,
    principal: Principal = READ,
    page: PageParams = Depends(page_params),
    session: Session = Depends(db_session),
) -> Page[BalanceOut]:
    """One SKU's stock in every location the caller covers."""
    rows, cursor = service.balances_of_sku(session, sku_id, page, store_ids=principal.store_ids)
    return Page(items=[BalanceOut.of(r) for r in rows], next_cursor=cursor)


@router.get("/inventory/movements", response_model=Page[MovementOut])
def movements(
    location_id: uuid.UUID | None = None,
    sku_id: uuid.UUID | None = None,
    kind: MovementKind | None = None,
    reference_type: str | None = Query(None, max_length=32),
    reference_id: str | None = Query(None, max_length=128),
    principal: Principal = READ,
    page: PageParams = Depends(page_params),
    session: Session = Depends(db_session),
) -> Page[MovementOut]:
    """The stock ledger, oldest first; store callers see their stores' lines only."""
    if location_id is not None:
        principal.ensure_store(location_id)
    rows, cursor = service.list_movements(
        session,
        page,
        location_id=location_id,
        sku_id=sku_id,
        kind=kind,
        reference_type=reference_type,
        reference_id=reference_id,
        store_ids=principal.store_ids,
    )
    return Page(items=[MovementOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post("/inventory/receipts", response_model=PostedList, status_code=status.HTTP_201_CREATED)
def receive(
    body: ReceiptIn,
    principal: Principal = Depends(require(Permission.INVENTORY_RECEIVE)),
    session: Session = Depends(db_session),
) -> PostedList:
    """Goods arrived: one receipt movement per line (fresh goods with their expiry date)."""
    principal.ensure_store(body.location_id)
    posted = service.receive_stock(
        session,
        body.location_id,
        [service.ReceiptLine(x.sku_id, x.quantity, x.lot, x.expires_on) for x in body.lines],
        reference_type=body.reference_type,
        reference_id=body.reference_id,
    )
    return PostedList(movements=[PostedOut.of(p) for p in posted])


@router.post(
    "/inventory/adjustments", response_model=PostedOut, status_code=status.HTTP_201_CREATED
)
def adjust(
    body: AdjustmentIn,
    principal: Principal = Depends(require(Permission.INVENTORY_ADJUST)),
    session: Session = Depends(db_session),
) -> PostedOut:
    """A correction or a write-off with its reason; the caller is recorded as the approver."""
    principal.ensure_store(body.location_id)
    posted = service.adjust_stock(
        session,
        body.location_id,
        body.sku_id,
        body.quantity,
        reason=body.reason,
        approver=principal.scope_key,
        kind=body.kind,
    )
    return PostedOut.of(posted)


@router.put("/inventory/locations/{location_id}/skus/{sku_id}/levels", response_model=FiguresOut)
def set_levels(
    location_id: uuid.UUID,
    sku_id: uuid.UUID,
    body: StockLevelsIn,
    principal: Principal = Depends(require(Permission.INVENTORY_ADJUST)),
    session: Session = Depends(db_session),
) -> FiguresOut:
    """Safety stock (kept back from every channel) and the stock.low level of a SKU here."""
    principal.ensure_store(location_id)
    figures = service.set_stock_levels(
        session,
        location_id,
        sku_id,
        safety_stock=body.safety_stock,
        low_stock_level=body.low_stock_level,
    )
    return FiguresOut.of(figures)


@router.post("/inventory/pos-sales", response_model=PostedList, status_code=status.HTTP_201_CREATED)
def pos_sale(
    body: SaleIn,
    principal: Principal = Depends(require(Permission.INVENTORY_SELL)),
    session: Session = Depends(db_session),
) -> PostedList:
    """A till sale: on-hand drops at once; never refused for stock (going negative is flagged)."""
    principal.ensure_store(body.location_id)
    posted = service.record_pos_sale(
        session, body.location_id, [x.line() for x in body.lines], reference=body.reference
    )
    return PostedList(movements=[PostedOut.of(p) for p in posted])


@router.post("/inventory/returns", response_model=PostedList, status_code=status.HTTP_201_CREATED)
def store_return(
    body: SaleIn,
    principal: Principal = Depends(require(Permission.INVENTORY_SELL)),
    session: Session = Depends(db_session),
) -> PostedList:
    """Goods returned fit for sale at this store: on-hand rises."""
    principal.ensure_store(body.location_id)
    posted = service.record_return(
        session, body.location_id, [x.line() for x in body.lines], reference=body.reference
    )
    return PostedList(movements=[PostedOut.of(p) for p in posted])


@router.get("/inventory/discrepancies", response_model=Page[DiscrepancyOut])
def discrepancies(
    location_id: uuid.UUID | None = None,
    include_resolved: bool = False,
    principal: Principal = READ,
    page: PageParams = Depends(page_params),
    session: Session = Depends(db_session),
) -> Page[DiscrepancyOut]:
    """Sales that took on-hand below zero, for the store manager to count."""
    if location_id is not None:
        principal.ensure_store(location_id)
    rows, cursor = service.list_discrepancies(
        session,
        page,
        location_id=location_id,
        store_ids=principal.store_ids,
        open_only=not include_resolved,
    )
    return Page(items=[DiscrepancyOut.model_validate(r) for r in rows], next_cursor=cursor)


def reservation_desk(request: Request) -> ReservationDesk:
    """The app's desk, started and stopped with the app (see ``app.create_app``)."""
    desk: ReservationDesk | None = getattr(request.app.state, "reservation_desk", None)
    if desk is None:
        raise RuntimeError("the reservation desk runs only while the app is started")
    return desk


@router.post(
    "/inventory/reservations",
    response_model=ReservationOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "The reference was reserved before: the same reservation."}},
)
async def reserve(
    body: ReservationIn,
    request: Request,
    response: Response,
    principal: Principal = Depends(require(Permission.INVENTORY_RESERVE)),
) -> ReservationOut:
    """Hold a whole basket at one location for a checkout or order, or nothing (409
    ``insufficient-stock`` naming the SKU and what is available). Idempotent by ``reference``.

    Held by the app's reservation desk with the baskets of concurrent requests, in a
    transaction of the batch's own; the answer comes after that commit, and the request waits
    on the event loop, holding neither a worker thread nor a connection. A request that has
    already opened its own transaction -- to claim an Idempotency-Key, or to check a key or
    token not verified lately -- is held in that transaction instead: one commit then binds
    the key to its answer, and the desk never waits for a lock the request holds (on SQLite,
    the one write lock)."""
    principal.ensure_store(body.location_id)
    lines = [x.line() for x in body.lines]
    ttl = timedelta(seconds=body.ttl_seconds)
    channel = caller_channel(principal, body.channel)
    if getattr(request.state, "db_session", None) is not None:
        created, out = await run_in_threadpool(
            _reserve_in_request, request_session(request), body, lines, ttl, channel
        )
    else:
        held = await reservation_desk(request).reserve_async(
            body.reference, body.location_id, lines, ttl, channel=channel
        )
        created, out = held.created, ReservationOut.model_validate(held.reservation)
    if not created:
        response.status_code = status.HTTP_200_OK
    return out


def _reserve_in_request(
    session: Session,
    body: ReservationIn,
    lines: list[service.Line],
    ttl: timedelta,
    channel: str | None,
) -> tuple[bool, ReservationOut]:
    held = service.reserve(session, body.reference, body.location_id, lines, ttl, channel=channel)
    return held.created, ReservationOut.model_validate(held.reservation)


def _reservation_in_scope(
    session: Session, principal: Principal, reservation_id: uuid.UUID
) -> None:
    principal.ensure_store(service.get_reservation(session, reservation_id).location_id)


@router.get("/inventory/reservations/{reservation_id}", response_model=ReservationOut)
def get_reservation(
    reservation_id: uuid.UUID, principal: Principal = READ, session: Session = Depends(db_session)
) -> ReservationOut:
    reservation = service.get_reservation(session, reservation_id)
    principal.ensure_store(reservation.location_id)
    return ReservationOut.model_validate(reservation)


@router.post("/inventory/reservations/{reservation_id}/confirm", response_model=ReservationOut)
def confirm(
    reservation_id: uuid.UUID,
    principal: Principal = Depends(require(Permission.INVENTORY_RESERVE)),
    session: Session = Depends(db_session),
) -> ReservationOut:
    """Fulfilled: the held stock leaves as a shipment. Repeating it changes nothing."""
    _reservation_in_scope(session, principal, reservation_id)
    return ReservationOut.model_validate(service.confirm_reservation(session, reservation_id))


@router.post("/inventory/reservations/{reservation_id}/release", response_model=ReservationOut)
def release(
    reservation_id: uuid.UUID,
    principal: Principal = Depends(require(Permission.INVENTORY_RESERVE)),
    session: Session = Depends(db_session),
) -> ReservationOut:
    """Cancelled: the held stock is available again. Repeating it changes nothing."""
    _reservation_in_scope(session, principal, reservation_id)
    return ReservationOut.model_validate(service.release_reservation(session, reservation_id))


router.include_router(channels_router)
router.include_router(transfers_router)
router.include_router(stocktakes_router)
