"""HTTP endpoints for running guides: enrolment, leaving with handover, reassignment, unbound
members, the programme, commission rules, targets, corrections, statements, payroll export,
month closing, an order's attribution, and members opening share links."""

from __future__ import annotations

import uuid

from fastapi import Depends, Query, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.clock import utcnow
from zhongtai.core.http.deps import app_settings, db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.core.pagination import Page, PageParams, page_params
from zhongtai.core.settings import Settings
from zhongtai.guides import binding, roster, share_links, workbench
from zhongtai.guides.api_common import managed_guide, parse_month, performance_out
from zhongtai.guides.api_workbench import customer_out
from zhongtai.guides.attribution import explain_order
from zhongtai.guides.commission_rules import TargetTier
from zhongtai.guides.ledger import first_of_month
from zhongtai.guides.models import Guide, GuideBinding, LineAttribution
from zhongtai.guides.program import ProgramTerms, change_program, program_terms
from zhongtai.guides.schemas import (
    AttributionOut,
    BindingOut,
    CustomerOut,
    GuideChangeIn,
    GuideIn,
    GuideOut,
    LeaveIn,
    LeaveOut,
    OpenLinkIn,
    OpenLinkOut,
    PerformanceOut,
    ProgramIn,
    ProgramOut,
    ReassignIn,
    ReassignOut,
    TierIn,
    UnboundMemberOut,
)
from zhongtai.members.api import pii_cipher
from zhongtai.members.pii import PiiCipher
from zhongtai.orders.lifecycle import get_order

router = api_router(tags=["guides"])
MANAGE = Depends(require(Permission.GUIDES_MANAGE))
PROGRAM = Depends(require(Permission.GUIDES_PROGRAM))


@router.post("/guides", response_model=GuideOut, status_code=status.HTTP_201_CREATED)
def enroll_guide(
    body: GuideIn, principal: Principal = MANAGE, session: Session = Depends(db_session)
) -> GuideOut:
    """Make a staff user with the guide role a guide of one of her stores."""
    if body.home_store_id is not None:
        principal.ensure_store(body.home_store_id)
    guide = roster.enroll_guide(
        session,
        body.staff_id,
        home_store_id=body.home_store_id,
        level=body.level,
        wecom_userid=body.wecom_userid,
    )
    principal.ensure_store(guide.home_store_id)
    return GuideOut.model_validate(guide)


@router.get("/guides", response_model=list[GuideOut])
def list_guides(
    store_id: uuid.UUID = Query(...),
    principal: Principal = MANAGE,
    session: Session = Depends(db_session),
) -> list[GuideOut]:
    principal.ensure_store(store_id)
    rows = session.scalars(
        select(Guide).where(Guide.home_store_id == store_id).order_by(Guide.created_at)
    )
    return [GuideOut.model_validate(g) for g in rows]


@router.get("/guides/{guide_id}", response_model=GuideOut)
def get_guide(
    guide_id: uuid.UUID, principal: Principal = MANAGE, session: Session = Depends(db_session)
) -> GuideOut:
    return GuideOut.model_validate(managed_guide(session, principal, guide_id))


@router.patch("/guides/{guide_id}", response_model=GuideOut)
def change_guide(
    guide_id: uuid.UUID,
    body: GuideChangeIn,
    principal: Principal = MANAGE,
    session: Session = Depends(db_session),
) -> GuideOut:
    managed_guide(session, principal, guide_id)
    guide = roster.change_guide(session, guide_id, level=body.level, wecom_userid=body.wecom_userid)
    return GuideOut.model_validate(guide)


@router.post("/guides/{guide_id}/leave", response_model=LeaveOut)
def guide_leaves(
    guide_id: uuid.UUID,
    body: LeaveIn,
    principal: Principal = MANAGE,
    session: Session = Depends(db_session),
) -> LeaveOut:
    """She leaves: her customers go to the successor, or are spread over her colleagues."""
    managed_guide(session, principal, guide_id)
    if body.successor_id is not None:
        managed_guide(session, principal, body.successor_id)
    departure = roster.guide_leaves(session, guide_id, at=utcnow(), successor_id=body.successor_id)
    return LeaveOut(guide_id=departure.guide_id, handed_over=departure.handed_over)


@router.get("/guides/{guide_id}/customers", response_model=Page[CustomerOut])
def guide_customers(
    guide_id: uuid.UUID,
    page: PageParams = Depends(page_params),
    principal: Principal = MANAGE,
    session: Session = Depends(db_session),
    cipher: PiiCipher = Depends(pii_cipher),
) -> Page[CustomerOut]:
    """A guide's customers as her manager sees them (masked)."""
    managed_guide(session, principal, guide_id)
    cards, cursor = workbench.my_customers(session, cipher, guide_id, page, now=utcnow())
    return Page(items=[customer_out(c) for c in cards], next_cursor=cursor)


@router.get("/members/{member_id}/guide-bindings", response_model=list[BindingOut])
def member_bindings(
    member_id: uuid.UUID, _: Principal = MANAGE, session: Session = Depends(db_session)
) -> list[BindingOut]:
    """Her guides over time, the current one last (ended_at null)."""
    rows = session.scalars(
        select(GuideBinding)
        .where(GuideBinding.member_id == member_id)
        .order_by(GuideBinding.bound_at, GuideBinding.id)
    )
    return [BindingOut.model_validate(b) for b in rows]


@router.post("/guides/reassignments", response_model=ReassignOut)
def reassign(
    body: ReassignIn, principal: Principal = MANAGE, session: Session = Depends(db_session)
) -> ReassignOut:
    """A manager moves members to a guide of her store (their protection starts afresh)."""
    guide = managed_guide(session, principal, body.guide_id)
    roster.active_guide(session, guide.staff_id)
    outcomes = binding.reassign_customers(session, body.member_ids, guide.staff_id, at=utcnow())
    done = [o.member_id for o in outcomes if o.guide_id == guide.staff_id]
    return ReassignOut(
        guide_id=guide.staff_id,
        reassigned=done,
        refused=[o.member_id for o in outcomes if o.guide_id != guide.staff_id],
    )


@router.get("/stores/{store_id}/guide-performance", response_model=list[PerformanceOut])
def store_guide_performance(
    store_id: uuid.UUID,
    month: str | None = Query(None, description="YYYY-MM; this month when left out."),
    principal: Principal = MANAGE,
    session: Session = Depends(db_session),
) -> list[PerformanceOut]:
    """The store's guides side by side for the month: customers, links opened, attributed
    sales, commission, tasks done — ranked by attributed sales."""
    principal.ensure_store(store_id)
    now = utcnow()
    start = parse_month(month) if month else first_of_month(now.date())
    rows = workbench.store_performance(session, store_id, start, until=now)
    return [performance_out(p) for p in rows]


@router.get("/stores/{store_id}/unbound-members", response_model=Page[UnboundMemberOut])
def unbound_members(
    store_id: uuid.UUID,
    page: PageParams = Depends(page_params),
    principal: Principal = MANAGE,
    session: Session = Depends(db_session),
) -> Page[UnboundMemberOut]:
    """The store's members without a guide, to assign."""
    principal.ensure_store(store_id)
    rows, cursor = workbench.unbound_members(session, store_id, page)
    return Page(
        items=[
            UnboundMemberOut(
                member_id=m.id,
                name=m.name,
                registered_via=m.registered_via,
                created_at=m.created_at,
            )
            for m in rows
        ],
        next_cursor=cursor,
    )


def _program_out(terms: ProgramTerms) -> ProgramOut:
    values = terms.as_dict()
    values["target_tiers"] = [TierIn(**t) for t in values["target_tiers"]]
    return ProgramOut(**values)


@router.get("/guide-program", response_model=ProgramOut)
def get_program(_: Principal = MANAGE, session: Session = Depends(db_session)) -> ProgramOut:
    return _program_out(program_terms(session))


@router.put("/guide-program", response_model=ProgramOut)
def put_program(
    body: ProgramIn, _: Principal = PROGRAM, session: Session = Depends(db_session)
) -> ProgramOut:
    """Change the chain's binding rule, protection, attribution switches, return window or
    target tiers (only the fields given); audited."""
    changes = body.model_dump(exclude_none=True)
    if body.target_tiers is not None:
        changes["target_tiers"] = [TargetTier(**t.model_dump()) for t in body.target_tiers]
    return _program_out(change_program(session, **changes))


@router.get("/orders/{order_id}/guide-attribution", response_model=list[AttributionOut])
def order_attribution(
    order_id: uuid.UUID, principal: Principal = MANAGE, session: Session = Depends(db_session)
) -> list[AttributionOut]:
    """Who was credited with each line and why (as stored at completion), or what the rule
    says now for an order not completed yet."""
    order = get_order(session, order_id)
    principal.ensure_store(order.store_id)
    stored = {
        a.order_line_id: a
        for a in session.scalars(
            select(LineAttribution).where(LineAttribution.order_id == order_id)
        )
    }
    if stored:
        return [
            AttributionOut(
                line_id=line.id,
                guide_id=a.guide_id if a else None,
                reason=a.reason if a else None,
                ref=a.reason_ref if a else None,
                explanation=a.explanation if a else "No guide was credited with this line.",
                stored=True,
            )
            for line in order.lines
            for a in [stored.get(line.id)]
        ]
    return [
        AttributionOut(
            line_id=c.line_id,
            guide_id=c.guide_id,
            reason=c.reason,
            ref=c.ref,
            explanation=c.explanation,
            stored=False,
        )
        for c in explain_order(session, order)
    ]


@router.post("/share-links/open", response_model=OpenLinkOut)
def open_share_link(
    body: OpenLinkIn,
    _: Principal = Depends(require(Permission.SHARE_LINKS_OPEN)),
    session: Session = Depends(db_session),
    settings: Settings = Depends(app_settings),
) -> OpenLinkOut:
    """The member opened a guide's link in the app or mini-program: she may be bound to the
    guide, her online orders credit the guide for the attribution window, and a coupon link
    gives her the coupon."""
    opened = share_links.open_share_link(
        session, settings, body.token, body.member_id, channel=body.channel, at=utcnow()
    )
    link = opened.link
    return OpenLinkOut(
        link_id=link.id,
        guide_id=link.guide_id,
        sku_id=link.sku_id,
        coupon_template_id=link.coupon_template_id,
        member_id=opened.binding.member_id,
        bound_guide_id=opened.binding.guide_id,
        binding=opened.binding.decision.verdict.value,
        binding_reason=opened.binding.decision.reason,
        coupon=opened.coupon,
        coupon_id=opened.coupon_id,
    )
