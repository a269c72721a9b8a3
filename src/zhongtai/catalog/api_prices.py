"""HTTP endpoints of prices: overrides per store and channel, effective prices, barcode scans."""

from __future__ import annotations

import uuid

from fastapi import Depends, Query, status
from sqlalchemy.orm import Session

from zhongtai.catalog import service
from zhongtai.catalog.schemas import (
    BarcodeLookupOut,
    Moment,
    PriceOverrideCreate,
    PriceOverrideOut,
    SkuPriceOut,
)
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Channel, Permission
from zhongtai.core.clock import utcnow
from zhongtai.core.http.deps import db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.core.pagination import Page, PageParams, page_params

router = api_router(tags=["catalog: prices"])

_STORE = Query(
    None,
    description="Default: the caller's store when it has exactly one (a POS key's own store).",
)
_CHANNEL = Query(None, description="For staff; an API key always gets its own channel's price.")


@router.post(
    "/catalog/skus/{sku_id}/prices",
    response_model=PriceOverrideOut,
    status_code=status.HTTP_201_CREATED,
)
def add_price_override(
    sku_id: uuid.UUID,
    body: PriceOverrideCreate,
    principal: Principal = Depends(require(Permission.PRICES_WRITE)),
    session: Session = Depends(db_session),
) -> PriceOverrideOut:
    """A price for a store and/or channel within a window. Only callers covering the store
    may set its prices; prices for every store need a chain-wide caller."""
    override = service.add_price_override(
        session,
        sku_id,
        caller=principal,
        price=body.price,
        store_id=body.store_id,
        channel=body.channel,
        valid_from=body.valid_from,
        valid_to=body.valid_to,
        reason=body.reason,
    )
    return PriceOverrideOut.of(override, utcnow())


@router.get("/catalog/skus/{sku_id}/prices", response_model=Page[PriceOverrideOut])
def list_price_overrides(
    sku_id: uuid.UUID,
    store_id: uuid.UUID | None = Query(None),
    page: PageParams = Depends(page_params),
    principal: Principal = Depends(require(Permission.CATALOG_READ)),
    session: Session = Depends(db_session),
) -> Page[PriceOverrideOut]:
    """A SKU's price overrides, ended and scheduled ones too, oldest first."""
    rows, cursor = service.list_price_overrides(
        session, sku_id, page, caller=principal, store_id=store_id
    )
    now = utcnow()
    return Page(items=[PriceOverrideOut.of(o, now) for o in rows], next_cursor=cursor)


@router.delete("/catalog/prices/{override_id}", status_code=status.HTTP_204_NO_CONTENT)
def end_price_override(
    override_id: uuid.UUID,
    principal: Principal = Depends(require(Permission.PRICES_WRITE)),
    session: Session = Depends(db_session),
) -> None:
    """End an override now. One that has applied keeps its row with `valid_to` = now, so the
    price history stays; one that has not started yet is withdrawn. Already ended: 409;
    withdrawn: 404. Of clients ending one at once, one does; the others get the same answers."""
    service.end_price_override(session, override_id, caller=principal)


@router.get("/catalog/skus/{sku_id}/price", response_model=SkuPriceOut)
def sku_price(
    sku_id: uuid.UUID,
    store_id: uuid.UUID | None = _STORE,
    channel: Channel | None = _CHANNEL,
    at: Moment | None = Query(None, description="Default: now."),
    principal: Principal = Depends(require(Permission.CATALOG_READ)),
    session: Session = Depends(db_session),
) -> SkuPriceOut:
    """The price that applies to a SKU in a store on a channel at a moment, and its source."""
    priced = service.sku_price(
        session, sku_id, caller=principal, store_id=store_id, channel=channel, at=at
    )
    return SkuPriceOut.of(priced)


@router.get("/catalog/barcodes/{code}", response_model=BarcodeLookupOut)
def lookup_barcode(
    code: str,
    store_id: uuid.UUID | None = _STORE,
    channel: Channel | None = _CHANNEL,
    principal: Principal = Depends(require(Permission.CATALOG_READ)),
    session: Session = Depends(db_session),
) -> BarcodeLookupOut:
    """What a scanned code is and what it costs here, now: the POS's hot path (one query).
    A scale label (EAN-13 `2F PPPPP WWWWW C`) also gives its weight and the price of it."""
    hit = service.lookup_barcode(
        session, code, caller=principal, store_id=store_id, channel=channel
    )
    return BarcodeLookupOut.of(hit)
