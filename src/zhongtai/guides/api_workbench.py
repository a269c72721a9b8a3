"""HTTP endpoints of the guide's phone: her customers, a customer's summary, share links, her
performance and her commission statement. Every call acts as the signed-in guide."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from fastapi import Depends, Query, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Sku
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.clock import utcnow
from zhongtai.core.http.deps import app_settings, db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.core.pagination import Page, PageParams, page_params
from zhongtai.core.settings import Settings
from zhongtai.core.text import PlainText
from zhongtai.guides import recommendations, share_links, statements, tasks, workbench
from zhongtai.guides.api_common import (
    caller_as_guide,
    parse_month,
    performance_out,
    statement_out,
)
from zhongtai.guides.ledger import first_of_month
from zhongtai.guides.schemas import (
    AttributedLineOut,
    CloseTaskIn,
    CustomerOut,
    CustomerSummaryOut,
    GuideOut,
    PerformanceOut,
    RecommendationOut,
    ShareLinkIn,
    ShareLinkOut,
    StatementOut,
    TaskOut,
)
from zhongtai.guides.task_states import TaskStatus
from zhongtai.members.api import pii_cipher
from zhongtai.members.pii import PiiCipher

router = api_router(tags=["guide workbench"])
WORK = Depends(require(Permission.GUIDE_WORK))


def customer_out(card: workbench.CustomerCard) -> CustomerOut:
    return CustomerOut(**card.__dict__)


@router.get("/guides/me", response_model=GuideOut)
def who_am_i(principal: Principal = WORK, session: Session = Depends(db_session)) -> GuideOut:
    return GuideOut.model_validate(caller_as_guide(session, principal))


@router.get("/guides/me/customers", response_model=Page[CustomerOut])
def my_customers(
    name: PlainText | None = Query(None, max_length=100, description="A part of her name."),
    tag: PlainText | None = Query(
        None, max_length=32, description="One of her tags, whole (e.g. 高端): no wildcards."
    ),
    page: PageParams = Depends(page_params),
    principal: Principal = WORK,
    session: Session = Depends(db_session),
    cipher: PiiCipher = Depends(pii_cipher),
) -> Page[CustomerOut]:
    """Her customers, longest-bound first, with masked phone, last purchase and how she may
    contact each (consents)."""
    guide = caller_as_guide(session, principal)
    cards, cursor = workbench.my_customers(
        session, cipher, guide.staff_id, page, now=utcnow(), name=name, tag=tag
    )
    return Page(items=[customer_out(c) for c in cards], next_cursor=cursor)


@router.get("/guides/me/customers/{member_id}", response_model=CustomerSummaryOut)
def customer_summary(
    member_id: uuid.UUID,
    principal: Principal = WORK,
    session: Session = Depends(db_session),
    cipher: PiiCipher = Depends(pii_cipher),
) -> CustomerSummaryOut:
    """One of her customers at a glance (360°): purchases of every channel, points, coupons."""
    guide = caller_as_guide(session, principal)
    s = workbench.customer_summary(session, cipher, guide.staff_id, member_id, now=utcnow())
    return CustomerSummaryOut(
        customer=customer_out(s.card),
        birthday=s.birthday,
        preferences=s.preferences,
        tier=s.tier,
        points=s.points,
        points_expiring=s.points_expiring,
        coupons_available=s.coupons_available,
        orders_by_channel=s.orders_by_channel,
        recent_orders=s.recent_orders,
    )


@router.post(
    "/guides/me/share-links", response_model=ShareLinkOut, status_code=status.HTTP_201_CREATED
)
def create_share_link(
    body: ShareLinkIn,
    principal: Principal = WORK,
    session: Session = Depends(db_session),
    settings: Settings = Depends(app_settings),
) -> ShareLinkOut:
    """A signed, expiring link (and QR code) for a product, a coupon or her shop."""
    guide = caller_as_guide(session, principal)
    shared = share_links.create_share_link(
        session,
        settings,
        guide.staff_id,
        at=utcnow(),
        sku_id=body.sku_id,
        coupon_template_id=body.coupon_template_id,
        valid_days=body.valid_days,
    )
    link = shared.link
    return ShareLinkOut(
        id=link.id,
        guide_id=link.guide_id,
        sku_id=link.sku_id,
        coupon_template_id=link.coupon_template_id,
        expires_at=link.expires_at,
        token=shared.token,
        url=shared.url,
    )


@router.get("/guides/me/performance", response_model=PerformanceOut)
def my_performance(
    month: str | None = Query(None, description="YYYY-MM; this month when left out."),
    principal: Principal = WORK,
    session: Session = Depends(db_session),
) -> PerformanceOut:
    """Her month: customers, share links opened, attributed sales, commission pending and
    payable, her rank in the store."""
    guide = caller_as_guide(session, principal)
    now = utcnow()
    start = parse_month(month) if month else first_of_month(now.date())
    p = workbench.performance(session, guide.staff_id, guide.home_store_id, start, until=now)
    return performance_out(p)


@router.get("/guides/me/statements/{month}", response_model=StatementOut)
def my_statement(
    month: str, principal: Principal = WORK, session: Session = Depends(db_session)
) -> StatementOut:
    """Her commission for the month, entry by entry, each with its reason."""
    guide = caller_as_guide(session, principal)
    return statement_out(statements.guide_statement(session, guide, parse_month(month)))


@router.get("/guides/me/sales", response_model=Page[AttributedLineOut])
def my_sales(
    month: str | None = Query(None, description="YYYY-MM; this month when left out."),
    page: PageParams = Depends(page_params),
    principal: Principal = WORK,
    session: Session = Depends(db_session),
) -> Page[AttributedLineOut]:
    """The sales credited to her, line by line, with why (selling guide, share link, bound
    guide) and what came back."""
    guide = caller_as_guide(session, principal)
    now = utcnow()
    start = parse_month(month) if month else first_of_month(now.date())
    since = datetime.combine(start, datetime.min.time(), UTC)
    rows, cursor = workbench.my_sales(session, guide.staff_id, page, since=since)
    return Page(items=[AttributedLineOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/guides/me/tasks", response_model=list[TaskOut])
def my_tasks(
    status: TaskStatus | None = Query(None, description="open, done, skipped or expired."),
    day: date | None = Query(None, description="Tasks due that day (all days when left out)."),
    principal: Principal = WORK,
    session: Session = Depends(db_session),
) -> list[TaskOut]:
    """Her task list: pickups waiting, late orders, after-sale follow-ups, points expiring,
    birthdays, dormant customers and new arrivals for them — most urgent first."""
    guide = caller_as_guide(session, principal)
    rows = tasks.tasks_for_guide(session, guide.staff_id, status=status, day=day)
    return [TaskOut.model_validate(t) for t in rows]


@router.post("/guides/me/tasks/{task_id}/close", response_model=TaskOut)
def close_my_task(
    task_id: uuid.UUID,
    body: CloseTaskIn,
    principal: Principal = WORK,
    session: Session = Depends(db_session),
) -> TaskOut:
    """Mark a task done or skipped (with a note); closing it again the same way is a no-op."""
    guide = caller_as_guide(session, principal)
    task = tasks.close_task(
        session, task_id, guide.staff_id, outcome=body.outcome, note=body.note, at=utcnow()
    )
    return TaskOut.model_validate(task)


@router.get(
    "/guides/me/customers/{member_id}/recommendations", response_model=list[RecommendationOut]
)
def recommendations_for_customer(
    member_id: uuid.UUID,
    limit: int = Query(10, ge=1, le=50),
    principal: Principal = WORK,
    session: Session = Depends(db_session),
) -> list[RecommendationOut]:
    """What to show her, best first, each with why: bought with something she bought, time to
    buy again, or popular in the store — in stock at her store, nothing she just bought."""
    guide = caller_as_guide(session, principal)
    member = workbench.ensure_my_customer(session, guide.staff_id, member_id)
    store_id = member.preferred_store_id or guide.home_store_id
    picks = recommendations.recommend_for_member(
        session, member.id, store_id=store_id, limit=limit, now=utcnow()
    )
    ids = {p.sku_id for p in picks} | {p.because_of for p in picks if p.because_of}
    skus = {s.id: s for s in session.scalars(select(Sku).where(Sku.id.in_(ids)))}
    return [
        RecommendationOut(
            sku_id=p.sku_id,
            code=skus[p.sku_id].code,
            name=skus[p.sku_id].name,
            base_price=skus[p.sku_id].base_price,
            score=round(p.score, 6),
            reason=p.reason.value,
            because_of=p.because_of,
            because_of_name=skus[p.because_of].name if p.because_of in skus else None,
        )
        for p in picks
        if p.sku_id in skus
    ]
