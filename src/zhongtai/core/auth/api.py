"""HTTP endpoints of identity and access: login/logout, staff accounts, channel API keys."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import Depends, Request, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core.auth import service
from zhongtai.core.auth.models import ApiKey, StaffStore, StaffUser
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    LoginRequest,
    MeOut,
    StaffCreate,
    StaffOut,
    StaffUpdate,
    TokenResponse,
)
from zhongtai.core.errors import Forbidden
from zhongtai.core.http.deps import app_settings, database, db_session
from zhongtai.core.http.routing import (
    api_router,
    committing_refusals,
    idempotent_at_commit,
    redact_on_replay,
)
from zhongtai.core.http.security import client_ip, current_principal, key_cache, require
from zhongtai.core.pagination import Page, PageParams, page_params, paginate

router = api_router()


@router.post("/auth/login", response_model=TokenResponse, tags=["auth"])
@idempotent_at_commit
def login(
    body: LoginRequest, request: Request, session: Session = Depends(db_session)
) -> TokenResponse:
    """Exchange a staff username and password for an expiring access token. Failures are
    counted; too many for the username or from the address answer 429, the right password too."""
    settings = app_settings(request)
    ip = client_ip(request)
    # The password is checked before this request's transaction begins (on SQLite, no write
    # lock is held for the hash); the try is then judged and a failure counted in it, under the
    # locks of the username and the address: committed with the answer, so the next try
    # (waiting for them) counts it too.
    with committing_refusals(session, service.COUNTED_REFUSALS):
        user = service.log_in(
            session,
            body.username,
            body.password,
            reader=database(request).reader,
            client_ip=ip,
            settings=settings,
        )
    issued = service.open_session(
        session,
        user,
        secret=settings.secret_key.get_secret_value(),
        ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        client_ip=ip,
    )
    return TokenResponse(
        access_token=issued.access_token,
        expires_at=issued.session.expires_at,
        user=StaffOut.model_validate(user),
    )


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, tags=["auth"])
def logout(
    principal: Principal = Depends(current_principal), session: Session = Depends(db_session)
) -> None:
    """Revoke the access token used for this request."""
    if principal.session_id is None:
        raise Forbidden("API keys do not log out; revoke the key instead.")
    service.revoke_session(session, principal.session_id)


@router.get("/auth/me", response_model=MeOut, tags=["auth"])
def me(principal: Principal = Depends(current_principal)) -> MeOut:
    """Who the credentials belong to, what they may do and in which stores."""
    return MeOut(
        kind=principal.kind,
        id=principal.id,
        name=principal.name,
        role=principal.role,
        channel=principal.channel,
        terminal_id=principal.terminal_id,
        permissions=sorted(principal.permissions),
        store_ids=sorted(principal.store_ids, key=str) if principal.store_ids is not None else None,
    )


@router.get("/staff", response_model=Page[StaffOut], tags=["staff"])
def list_staff(
    principal: Principal = Depends(require(Permission.STAFF_READ)),
    page: PageParams = Depends(page_params),
    session: Session = Depends(db_session),
) -> Page[StaffOut]:
    """Staff users; store managers see the staff of their own stores."""
    stmt = select(StaffUser)
    if principal.store_ids is not None:
        stmt = stmt.where(
            StaffUser.id.in_(
                select(StaffStore.user_id).where(StaffStore.store_id.in_(principal.store_ids))
            )
        )
    rows, cursor = paginate(session, stmt, [StaffUser.id], page)
    return Page(items=[StaffOut.model_validate(u) for u in rows], next_cursor=cursor)


@router.post("/staff", response_model=StaffOut, status_code=status.HTTP_201_CREATED, tags=["staff"])
def create_staff(
    body: StaffCreate,
    _: Principal = Depends(require(Permission.STAFF_WRITE)),
    session: Session = Depends(db_session),
) -> StaffOut:
    user = service.create_staff_user(
        session,
        username=body.username,
        display_name=body.display_name,
        role=body.role,
        password=body.password,
        store_ids=body.store_ids,
    )
    return StaffOut.model_validate(user)


@router.get("/staff/{user_id}", response_model=StaffOut, tags=["staff"])
def get_staff(
    user_id: uuid.UUID,
    principal: Principal = Depends(require(Permission.STAFF_READ)),
    session: Session = Depends(db_session),
) -> StaffOut:
    user = service.get_staff_user(session, user_id)
    principal.ensure_shares_a_store(user.store_ids)
    return StaffOut.model_validate(user)


@router.patch("/staff/{user_id}", response_model=StaffOut, tags=["staff"])
def update_staff(
    user_id: uuid.UUID,
    body: StaffUpdate,
    _: Principal = Depends(require(Permission.STAFF_WRITE)),
    session: Session = Depends(db_session),
) -> StaffOut:
    """Change role, stores, password or deactivate; such changes end the user's sessions."""
    user = service.get_staff_user(session, user_id)
    service.update_staff_user(session, user, **body.model_dump(exclude_unset=True))
    return StaffOut.model_validate(user)


@router.get("/api-keys", response_model=Page[ApiKeyOut], tags=["api keys"])
def list_api_keys(
    _: Principal = Depends(require(Permission.API_KEYS_WRITE)),
    page: PageParams = Depends(page_params),
    session: Session = Depends(db_session),
) -> Page[ApiKeyOut]:
    rows, cursor = paginate(session, select(ApiKey), [ApiKey.id], page)
    return Page(items=[ApiKeyOut.model_validate(k) for k in rows], next_cursor=cursor)


@router.post(
    "/api-keys",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    tags=["api keys"],
)
def create_api_key(
    request: Request,
    body: ApiKeyCreate,
    principal: Principal = Depends(require(Permission.API_KEYS_WRITE)),
    session: Session = Depends(db_session),
) -> ApiKeyCreated:
    """Create a touchpoint key. The response holds the full key; it is never shown again.

    A replay of this request (same Idempotency-Key) answers the same key record with `key`
    null: the secret is not kept anywhere, not even for replays.
    """
    redact_on_replay(request, "key")
    issued = service.create_api_key(
        session,
        name=body.name,
        channel=body.channel,
        scopes=body.scopes,
        store_id=body.store_id,
        terminal_id=body.terminal_id,
        created_by=principal.id if principal.kind == "staff" else None,
    )
    out = ApiKeyOut.model_validate(issued.key).model_dump()
    return ApiKeyCreated(**out, key=issued.full_key)


@router.post("/api-keys/{key_id}/revoke", response_model=ApiKeyOut, tags=["api keys"])
def revoke_api_key(
    request: Request,
    key_id: uuid.UUID,
    _: Principal = Depends(require(Permission.API_KEYS_WRITE)),
    session: Session = Depends(db_session),
) -> ApiKeyOut:
    key = service.revoke_api_key(session, key_id)
    key_cache(request).evict(key.prefix)
    return ApiKeyOut.model_validate(key)
