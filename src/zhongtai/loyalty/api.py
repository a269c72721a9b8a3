"""HTTP endpoints of loyalty: points (balance, history, earn, redeem, reverse, adjust) here;
promotions, basket pricing with offers, coupons and earn rules mounted from their modules."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import Depends, Response, status
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.clock import utcnow
from zhongtai.core.http.deps import app_settings, db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.core.pagination import Page, PageParams, page_params
from zhongtai.core.settings import Settings
from zhongtai.loyalty import api_coupons, api_earn_rules, api_promotions, rules, service
from zhongtai.loyalty.models import SourceType
from zhongtai.loyalty.schemas import (
    AdjustIn,
    BalanceOut,
    BookedOut,
    EarnIn,
    EntryOut,
    ExpiringOut,
    MaturingOut,
    RedeemIn,
    ReverseIn,
    SaleSource,
)
from zhongtai.loyalty.settings import loyalty_settings
from zhongtai.members import service as members
from zhongtai.orders.kinds import SalesChannel

router = api_router(tags=["points"])
router.include_router(api_promotions.router)
router.include_router(api_coupons.router)
router.include_router(api_earn_rules.router)
BASE = "/members/{member_id}/points"


def _store(session: Session, principal: Principal, store_id: uuid.UUID | None) -> uuid.UUID | None:
    """The store of the operation: as given (in the caller's scope), else a store-bound
    caller's only store."""
    if store_id is None and principal.store_ids is not None and len(principal.store_ids) == 1:
        store_id = next(iter(principal.store_ids))
    if store_id is not None:
        principal.ensure_store(store_id)
        members.known_store(session, store_id, "store_id")
    return store_id


def _booked(booked: service.Booked, response: Response) -> BookedOut:
    response.status_code = status.HTTP_200_OK if booked.replayed else status.HTTP_201_CREATED
    return BookedOut(replayed=booked.replayed, entry=EntryOut.model_validate(booked.entry))


@router.get(BASE, response_model=BalanceOut)
def points_balance(
    member_id: uuid.UUID,
    _: Principal = Depends(require(Permission.POINTS_READ)),
    session: Session = Depends(db_session),
) -> BalanceOut:
    """What she can spend now, what is pending (inside orders' return windows), her debt, and
    the next lots to expire and to mature."""
    b = service.points_balance(session, member_id, utcnow())
    return BalanceOut(
        member_id=b.member_id,
        balance=b.balance,
        pending=b.pending,
        debt=b.debt,
        expiring=[ExpiringOut(expires_at=e.expires_at, points=e.points) for e in b.expiring],
        maturing=[MaturingOut(matures_at=m.matures_at, points=m.points) for m in b.maturing],
        tier=b.tier,
    )


@router.get(f"{BASE}/entries", response_model=Page[EntryOut])
def points_history(
    member_id: uuid.UUID,
    _: Principal = Depends(require(Permission.POINTS_READ)),
    page: PageParams = Depends(page_params),
    session: Session = Depends(db_session),
) -> Page[EntryOut]:
    """Every change of her points, oldest first (members merged into her included)."""
    rows, cursor = service.points_history(session, member_id, page)
    return Page(items=[EntryOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(f"{BASE}/earn", response_model=BookedOut, status_code=status.HTTP_201_CREATED)
def earn_points(
    member_id: uuid.UUID,
    body: EarnIn,
    response: Response,
    principal: Principal = Depends(require(Permission.POINTS_WRITE)),
    settings: Settings = Depends(app_settings),
    session: Session = Depends(db_session),
) -> BookedOut:
    """Book the points a sale earns by the chain's rules: HQ's category and campaign
    multipliers and her tier's (points and coupon tenders earn nothing); with
    ``ZHONGTAI_POINTS_PENDING_DAYS`` the points are pending that long. A replay of the same sale
    (an offline POS syncing twice) answers 200 with the first booking and changes nothing."""
    booked = service.earn_for_reported_sale(
        session,
        member_id,
        service.Source(SourceType(body.source_type.value), body.source_id),
        [(line.net_fen, line.category_id) for line in body.lines],
        [rules.Tender(t.kind, t.amount_fen) for t in body.tenders],
        points_per_yuan=settings.points_per_yuan,
        channel=_channel(body, principal),
        store_id=_store(session, principal, body.store_id),
        valid_for=timedelta(days=settings.points_valid_days),
        pending_for=loyalty_settings().points_pending_for,
    )
    return _booked(booked, response)


def _channel(body: EarnIn, principal: Principal) -> str | None:
    """The sale's channel: as given; a till sale's is the POS; else the calling key's."""
    if body.channel is not None:
        return body.channel.value
    if body.source_type is SaleSource.POS_SALE:
        return SalesChannel.POS.value
    channel = principal.channel.value if principal.channel else None
    return channel if channel in {c.value for c in SalesChannel} else None


@router.post(f"{BASE}/redeem", response_model=BookedOut, status_code=status.HTTP_201_CREATED)
def redeem_points(
    member_id: uuid.UUID,
    body: RedeemIn,
    response: Response,
    principal: Principal = Depends(require(Permission.POINTS_WRITE)),
    session: Session = Depends(db_session),
) -> BookedOut:
    """Spend points for a sale or order, nearest-expiry first; 409 insufficient-points when
    the balance is short (nothing is booked). A replay answers the first booking."""
    booked = service.redeem_points(
        session,
        member_id,
        service.Source(SourceType(body.source_type.value), body.source_id),
        body.points,
        store_id=_store(session, principal, body.store_id),
    )
    return _booked(booked, response)


@router.post(f"{BASE}/reverse", response_model=BookedOut, status_code=status.HTTP_201_CREATED)
def reverse_points(
    member_id: uuid.UUID,
    body: ReverseIn,
    response: Response,
    principal: Principal = Depends(require(Permission.POINTS_WRITE)),
    session: Session = Depends(db_session),
) -> BookedOut:
    """Take back the points of returned goods, in proportion to the amount refunded; points
    already spent become debt that her next earnings pay off."""
    booked = service.reverse_points(
        session,
        member_id,
        service.Source(SourceType.RETURN, body.return_id),
        earned_by=service.Source(
            SourceType(body.earned_by.source_type.value), body.earned_by.source_id
        ),
        returned_fen=body.returned_fen,
        store_id=_store(session, principal, body.store_id),
    )
    return _booked(booked, response)


@router.post(f"{BASE}/adjust", response_model=BookedOut, status_code=status.HTTP_201_CREATED)
def adjust_points(
    member_id: uuid.UUID,
    body: AdjustIn,
    response: Response,
    settings: Settings = Depends(app_settings),
    _: Principal = Depends(require(Permission.POINTS_ADJUST)),
    session: Session = Depends(db_session),
) -> BookedOut:
    """HQ's correction by hand, with a reason; a debit beyond the balance is 409."""
    booked = service.adjust_points(
        session,
        member_id,
        service.Source(SourceType.ADJUSTMENT, body.reference),
        body.points,
        reason=body.reason,
        valid_for=timedelta(days=settings.points_valid_days),
    )
    return _booked(booked, response)
