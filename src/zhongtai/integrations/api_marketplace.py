"""HTTP endpoints of marketplace connections (HQ): connect, list, change, rotate the secret,
resync, watch pushes."""

from __future__ import annotations

import uuid

from fastapi import Depends, Query, Request, status
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.http.deps import db_session
from zhongtai.core.http.routing import api_router, redact_on_replay
from zhongtai.core.http.security import require
from zhongtai.core.pagination import Page, PageParams, page_params
from zhongtai.integrations import marketplace
from zhongtai.integrations.marketplace_schemas import (
    ConnectionChange,
    ConnectionCreate,
    ConnectionCreated,
    ConnectionOut,
    ConnectionSecretRotated,
    ResyncResult,
    StockPushOut,
)
from zhongtai.integrations.marketplace_settings import MarketplaceSettings, marketplace_settings
from zhongtai.integrations.schemas import SecretRotation
from zhongtai.integrations.sealed_secrets import SecretSealer
from zhongtai.integrations.targets import TargetGuard

router = api_router(tags=["marketplaces"])
MANAGE = Depends(require(Permission.WEBHOOKS_MANAGE))


def connection_guard(
    settings: MarketplaceSettings = Depends(marketplace_settings),
) -> TargetGuard:
    """Where stock pushes may go: public addresses, unless private targets are allowed."""
    return TargetGuard(allow_private=settings.allow_private_targets)


def connection_sealer(request: Request) -> SecretSealer:
    """Seals signing secrets under the app's ZHONGTAI_SECRET_KEY (the stock pushes open them)."""
    return marketplace.marketplace_secrets(request.app.state.settings)


def _out(view: marketplace.ConnectionView) -> ConnectionOut:
    c = view.connection
    return ConnectionOut(
        id=c.id,
        name=c.name,
        channel=c.channel,
        endpoint_url=c.endpoint_url,
        store_ids=view.store_ids,
        min_interval_ms=c.min_interval_ms,
        active=c.active,
        created_at=c.created_at,
        updated_at=c.updated_at,
        previous_secret_expires_at=c.previous_secret_expires_at,
    )


@router.post(
    "/marketplace/connections",
    response_model=ConnectionCreated,
    status_code=status.HTTP_201_CREATED,
)
def create_connection(
    request: Request,
    body: ConnectionCreate,
    _: Principal = MANAGE,
    session: Session = Depends(db_session),
    guard: TargetGuard = Depends(connection_guard),
    sealer: SecretSealer = Depends(connection_sealer),
) -> ConnectionCreated:
    """Connect a marketplace: every change of a store's sellable stock is pushed to its URL.

    The secret is in this response only. Each push is a signed POST of the store's changed
    SKUs with their channel ATP (docs/marketplace.md); every SKU stocked at its stores is
    pushed once at the start. 409 when the name is taken. An `endpoint_url` that is not
    http(s), or whose host is on a loopback, private, link-local, multicast or reserved address,
    is refused (422) unless ZHONGTAI_MARKETPLACE_ALLOW_PRIVATE_TARGETS is set.
    """
    redact_on_replay(request, "secret")
    view, secret = marketplace.create_connection(
        session,
        name=body.name,
        endpoint_url=body.endpoint_url,
        guard=guard,
        sealer=sealer,
        channel=body.channel,
        store_ids=body.store_ids,
        min_interval_ms=body.min_interval_ms,
        secret=body.secret,
    )
    return ConnectionCreated(**_out(view).model_dump(), secret=secret)


@router.get("/marketplace/connections", response_model=Page[ConnectionOut])
def list_connections(
    _: Principal = MANAGE,
    page: PageParams = Depends(page_params),
    session: Session = Depends(db_session),
) -> Page[ConnectionOut]:
    views, cursor = marketplace.list_connections(session, page)
    return Page(items=[_out(v) for v in views], next_cursor=cursor)


@router.get("/marketplace/connections/{connection_id}", response_model=ConnectionOut)
def get_connection(
    connection_id: uuid.UUID, _: Principal = MANAGE, session: Session = Depends(db_session)
) -> ConnectionOut:
    return _out(marketplace.view_connection(session, connection_id))


@router.patch("/marketplace/connections/{connection_id}", response_model=ConnectionOut)
def change_connection(
    connection_id: uuid.UUID,
    body: ConnectionChange,
    _: Principal = MANAGE,
    session: Session = Depends(db_session),
    guard: TargetGuard = Depends(connection_guard),
) -> ConnectionOut:
    """Change the URL, interval, stores, or pause (`active: false`) and resume a connection.

    Resuming it or changing its stores pushes every SKU of its stores again. A new URL is
    checked as at connection (422 on an internal target; nothing changes).
    """
    change = marketplace.ConnectionChange(
        endpoint_url=body.endpoint_url,
        min_interval_ms=body.min_interval_ms,
        active=body.active,
        store_ids=body.store_ids,
        stores_given="store_ids" in body.model_fields_set,
    )
    return _out(marketplace.change_connection(session, connection_id, change, guard=guard))


@router.post(
    "/marketplace/connections/{connection_id}/rotate-secret",
    response_model=ConnectionSecretRotated,
)
def rotate_secret(
    request: Request,
    connection_id: uuid.UUID,
    body: SecretRotation | None = None,
    _: Principal = MANAGE,
    session: Session = Depends(db_session),
    sealer: SecretSealer = Depends(connection_sealer),
) -> ConnectionSecretRotated:
    """Give the connection a new signing secret, in this response only.

    For `overlap_seconds` (default 24 h, at most 7 days) each push's `Zhongtai-Signature`
    carries a second `v1=` signature under the old secret, so the marketplace's side switches
    when it is ready. It also works when the old secret no longer opens (ZHONGTAI_SECRET_KEY
    changed): then the new secret signs alone at once, and the waiting stock goes out with it.
    """
    redact_on_replay(request, "secret")
    view, rolled = marketplace.rotate_secret(
        session,
        connection_id,
        sealer=sealer,
        overlap_seconds=(body or SecretRotation()).overlap_seconds,
    )
    return ConnectionSecretRotated(**_out(view).model_dump(), secret=rolled.secret)


@router.post("/marketplace/connections/{connection_id}/resync", response_model=ResyncResult)
def resync_connection(
    connection_id: uuid.UUID, _: Principal = MANAGE, session: Session = Depends(db_session)
) -> ResyncResult:
    """Push every SKU of the connection's stores again (e.g. after its allocation changed)."""
    return ResyncResult(marked=marketplace.resync_connection(session, connection_id))


@router.get("/marketplace/connections/{connection_id}/stock", response_model=Page[StockPushOut])
def list_stock_pushes(
    connection_id: uuid.UUID,
    waiting: bool = Query(False, description="Only SKUs with a change not yet acknowledged."),
    _: Principal = MANAGE,
    page: PageParams = Depends(page_params),
    session: Session = Depends(db_session),
) -> Page[StockPushOut]:
    """Where each store's SKU stands with the marketplace: versions, next try, last error."""
    rows, cursor = marketplace.list_stock_pushes(session, connection_id, page, waiting_only=waiting)
    return Page(items=[StockPushOut.model_validate(r) for r in rows], next_cursor=cursor)
