"""HTTP endpoints of products, SKUs and barcodes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Path, Query, Request, status
from sqlalchemy.orm import Session

from zhongtai.catalog import service
from zhongtai.catalog.models import ProductKind
from zhongtai.catalog.schemas import (
    BarcodeCreate,
    BarcodeOut,
    ProductCreate,
    ProductDetail,
    ProductOut,
    ProductUpdate,
    SkuCreate,
    SkuOut,
    SkuUpdate,
)
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.http.deps import app_settings, db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.core.pagination import Page, PageParams, page_params
from zhongtai.core.text import PlainText

router = api_router(tags=["catalog: products"])


@router.get("/catalog/products", response_model=Page[ProductOut])
def list_products(
    category_id: uuid.UUID | None = Query(None, description="Includes every category below."),
    q: PlainText | None = Query(
        None,
        min_length=1,
        max_length=100,
        description="Part of a product name, product code or SKU code, or a whole barcode.",
    ),
    kind: ProductKind | None = Query(None),
    is_active: bool | None = Query(None),
    page: PageParams = Depends(page_params),
    _: Principal = Depends(require(Permission.CATALOG_READ)),
    session: Session = Depends(db_session),
) -> Page[ProductOut]:
    """Products, oldest first, one page at a time."""
    rows, cursor = service.list_products(
        session, page, category_id=category_id, q=q, kind=kind, is_active=is_active
    )
    return Page(items=[ProductOut.model_validate(p) for p in rows], next_cursor=cursor)


@router.get("/catalog/products/{product_id}", response_model=ProductDetail)
def get_product(
    product_id: uuid.UUID,
    _: Principal = Depends(require(Permission.CATALOG_READ)),
    session: Session = Depends(db_session),
) -> ProductDetail:
    """A product with its SKUs and their barcodes."""
    return ProductDetail.of(service.get_product(session, product_id))


@router.post("/catalog/products", response_model=ProductDetail, status_code=status.HTTP_201_CREATED)
def create_product(
    body: ProductCreate,
    request: Request,
    _: Principal = Depends(require(Permission.CATALOG_WRITE)),
    session: Session = Depends(db_session),
) -> ProductDetail:
    """A product with its SKUs and barcodes in one request, all or nothing. A product code,
    SKU code or barcode already taken answers 409 `already-exists` naming it."""
    product = service.create_product(
        session,
        code=body.code,
        name=body.name,
        brand=body.brand,
        category_id=body.category_id,
        kind=body.kind,
        unit=body.unit,
        shelf_life_days=body.shelf_life_days,
        description=body.description,
        currency=app_settings(request).currency,
        skus=[s.to_new_sku() for s in body.skus],
    )
    return ProductDetail.of(product)


@router.patch("/catalog/products/{product_id}", response_model=ProductDetail)
def update_product(
    product_id: uuid.UUID,
    body: ProductUpdate,
    _: Principal = Depends(require(Permission.CATALOG_WRITE)),
    session: Session = Depends(db_session),
) -> ProductDetail:
    """Change name, brand, category, kind, shelf life, description or `is_active`.
    The sale unit is fixed once created."""
    product = service.update_product(session, product_id, **body.model_dump(exclude_unset=True))
    return ProductDetail.of(product)


@router.post(
    "/catalog/products/{product_id}/skus",
    response_model=SkuOut,
    status_code=status.HTTP_201_CREATED,
)
def add_sku(
    product_id: uuid.UUID,
    body: SkuCreate,
    request: Request,
    _: Principal = Depends(require(Permission.CATALOG_WRITE)),
    session: Session = Depends(db_session),
) -> SkuOut:
    """Another SKU of a product: a new size or colour, another pack."""
    sku = service.add_sku(
        session, product_id, body.to_new_sku(), currency=app_settings(request).currency
    )
    return SkuOut.of(sku)


@router.get("/catalog/skus/{sku_id}", response_model=SkuOut)
def get_sku(
    sku_id: uuid.UUID,
    _: Principal = Depends(require(Permission.CATALOG_READ)),
    session: Session = Depends(db_session),
) -> SkuOut:
    return SkuOut.of(service.get_sku(session, sku_id))


@router.patch("/catalog/skus/{sku_id}", response_model=SkuOut)
def update_sku(
    sku_id: uuid.UUID,
    body: SkuUpdate,
    _: Principal = Depends(require(Permission.CATALOG_WRITE)),
    session: Session = Depends(db_session),
) -> SkuOut:
    """Change name, size, colour, attributes, base price or `is_active`. `price_per` is fixed
    once created: stock and price overrides are expressed in it."""
    sku = service.update_sku(session, sku_id, **body.model_dump(exclude_unset=True))
    return SkuOut.of(sku)


@router.post(
    "/catalog/skus/{sku_id}/barcodes",
    response_model=BarcodeOut,
    status_code=status.HTTP_201_CREATED,
)
def add_barcode(
    sku_id: uuid.UUID,
    body: BarcodeCreate,
    _: Principal = Depends(require(Permission.CATALOG_WRITE)),
    session: Session = Depends(db_session),
) -> BarcodeOut:
    """Attach an EAN-13, EAN-8 or in-store code; a code another SKU carries answers 409."""
    return BarcodeOut.model_validate(service.add_barcode(session, sku_id, body.code))


@router.delete("/catalog/skus/{sku_id}/barcodes/{code}", status_code=status.HTTP_204_NO_CONTENT)
def remove_barcode(
    sku_id: uuid.UUID,
    code: Annotated[PlainText, Path(max_length=32, description="The barcode to detach.")],
    _: Principal = Depends(require(Permission.CATALOG_WRITE)),
    session: Session = Depends(db_session),
) -> None:
    service.remove_barcode(session, sku_id, code)
