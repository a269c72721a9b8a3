"""Using a coupon: locked by a checkout, redeemed once by whichever touchpoint comes first,
released on cancel or when the lock runs out, restored when its order comes back in full (never
to a member who was erased meanwhile: hers stay used).

Every step is one conditional UPDATE on the state the coupon must be in: of two touchpoints
racing for a coupon, the database lets one through and the other finds it gone (409).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.errors import InvalidInput, NotFound
from zhongtai.core.outbox import record_event
from zhongtai.loyalty.accounts import Source
from zhongtai.loyalty.coupon_rules import CouponKind, CouponTerms, coupon_discount
from zhongtai.loyalty.coupons import note_use
from zhongtai.loyalty.errors import CouponNotRedeemable
from zhongtai.loyalty.events import CouponRedeemed
from zhongtai.loyalty.models import Coupon, CouponAction, CouponStatus, CouponTemplate
from zhongtai.members import service as members
from zhongtai.members.models import MemberStatus

#: How long a checkout holds a coupon unless it says otherwise (a quote's lifetime).
DEFAULT_HOLD = timedelta(minutes=15)


def _usable_at(at: datetime) -> Any:
    return and_(Coupon.expires_at > at, or_(Coupon.starts_at.is_(None), Coupon.starts_at <= at))


def _free_for(reference: str | None, at: datetime) -> Any:
    """Available, or locked by this very checkout, or held by a lock that ran out."""
    lock_gone = Coupon.locked_until <= at
    mine = lock_gone if reference is None else or_(Coupon.locked_by == reference, lock_gone)
    return or_(
        Coupon.status == CouponStatus.AVAILABLE,
        and_(Coupon.status == CouponStatus.LOCKED, mine),
    )


def get_coupon(session: Session, coupon_id: uuid.UUID) -> Coupon:
    coupon = session.get(Coupon, coupon_id, populate_existing=True)
    if coupon is None:
        raise NotFound(f"No coupon {coupon_id}.", coupon_id=str(coupon_id))
    return coupon


def _check_holder(session: Session, coupon: Coupon, member_id: uuid.UUID | None) -> None:
    if member_id is not None and coupon.member_id not in members.member_ids_of(session, member_id):
        # Whose coupons exist is nobody else's business: the same answer as a missing one.
        raise NotFound(f"No coupon {coupon.id}.", coupon_id=str(coupon.id))


def _refusal(coupon: Coupon, at: datetime) -> CouponNotRedeemable:
    if coupon.status is CouponStatus.REDEEMED:
        reason = "was already used"
    elif coupon.expires_at <= at:
        reason = "has expired"
    elif coupon.starts_at is not None and coupon.starts_at > at:
        reason = f"is valid from {coupon.starts_at.isoformat()}"
    else:
        reason = "is held by another checkout"
    return CouponNotRedeemable(
        f"Coupon {coupon.id} {reason}.", coupon_id=str(coupon.id), coupon_status=coupon.status
    )


def lock_coupon(
    session: Session,
    coupon_id: uuid.UUID,
    reference: str,
    *,
    member_id: uuid.UUID | None = None,
    hold: timedelta = DEFAULT_HOLD,
    at: datetime | None = None,
) -> Coupon:
    """Hold the coupon for a checkout (``reference``, e.g. ``quote:<id>``) until it is paid or
    the hold ends; locking it again for the same checkout extends the hold."""
    at = at or utcnow()
    coupon = get_coupon(session, coupon_id)
    _check_holder(session, coupon, member_id)
    won = session.execute(
        update(Coupon)
        .where(Coupon.id == coupon_id, _free_for(reference, at), _usable_at(at))
        .values(status=CouponStatus.LOCKED, locked_by=reference, locked_until=at + hold)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    coupon = get_coupon(session, coupon_id)
    if won != 1:
        raise _refusal(coupon, at)
    note_use(session, coupon_id, CouponAction.LOCK, reference, at=at)
    return coupon


def release_coupons(
    session: Session, reference: str, *, at: datetime | None = None
) -> list[uuid.UUID]:
    """Give back every coupon the checkout holds (cancelled, abandoned); the ids released.
    Releasing twice releases nothing the second time."""
    at = at or utcnow()
    released = list(
        session.scalars(
            update(Coupon)
            .where(Coupon.status == CouponStatus.LOCKED, Coupon.locked_by == reference)
            .values(status=CouponStatus.AVAILABLE, locked_by=None, locked_until=None)
            .returning(Coupon.id)
            .execution_options(synchronize_session=False)
        )
    )
    for coupon_id in released:
        note_use(session, coupon_id, CouponAction.RELEASE, reference, at=at)
    return released


def release_lapsed_locks(session: Session, *, at: datetime | None = None) -> int:
    """The sweeper: coupons whose checkout hold ran out are available again."""
    at = at or utcnow()
    released = list(
        session.execute(
            update(Coupon)
            .where(Coupon.status == CouponStatus.LOCKED, Coupon.locked_until <= at)
            .values(status=CouponStatus.AVAILABLE, locked_by=None, locked_until=None)
            .returning(Coupon.id, Coupon.locked_by)
            .execution_options(synchronize_session=False)
        )
    )
    for coupon_id, _ in released:
        note_use(session, coupon_id, CouponAction.RELEASE, "lapsed", at=at)
    return len(released)


def _discount(session: Session, coupon: Coupon, order_fen: int | None) -> int:
    template = session.get(CouponTemplate, coupon.template_id)
    assert template is not None  # a coupon's template is a foreign key
    terms = CouponTerms(template.kind, template.value, template.threshold_fen, template.cap_fen)
    if order_fen is None:
        raise InvalidInput.field("discount_fen", "give the discount the checkout priced")
    if terms.kind not in (CouponKind.AMOUNT_OFF, CouponKind.PERCENT_OFF):
        if order_fen < terms.threshold_fen:
            raise InvalidInput.field(
                "order_fen",
                f"the order does not reach the coupon's threshold ({terms.threshold_fen})",
            )
        return 0
    discount = coupon_discount(terms, order_fen)
    if discount == 0:
        raise InvalidInput.field(
            "order_fen", f"the order does not reach the coupon's threshold ({terms.threshold_fen})"
        )
    return discount


def _priced(session: Session, coupon: Coupon, discount_fen: int) -> int:
    """The discount the checkout priced, within what the coupon can take off: its amount, or
    its percentage's cap (a till's typo must not book a ¥5 coupon as ¥500 off)."""
    if discount_fen < 0:
        raise InvalidInput.field("discount_fen", "must be 0 or more")
    template = session.get(CouponTemplate, coupon.template_id)
    assert template is not None  # a coupon's template is a foreign key
    most = {
        CouponKind.AMOUNT_OFF: template.value,
        CouponKind.PERCENT_OFF: template.cap_fen,
    }.get(template.kind)
    if most is not None and discount_fen > most:
        raise InvalidInput.field("discount_fen", f"the coupon takes at most {most} fen off")
    return discount_fen


def redeem_coupon(
    session: Session,
    coupon_id: uuid.UUID,
    source: Source,
    *,
    order_fen: int | None = None,
    discount_fen: int | None = None,
    reference: str | None = None,
    member_id: uuid.UUID | None = None,
    at: datetime | None = None,
) -> Coupon:
    """Use the coupon for a sale or order, once: one conditional update decides, so of two
    touchpoints racing for it one wins and the other gets 409. A checkout that locked it
    (``reference``) redeems through its own lock; a replay by the winning source answers the
    redemption again.

    ``discount_fen`` is what the checkout priced (line-level, after promotions); without it the
    discount is worked out on ``order_fen`` (amount and percent coupons).
    """
    at = at or utcnow()
    coupon = get_coupon(session, coupon_id)
    _check_holder(session, coupon, member_id)
    if (coupon.redeemed_source_type, coupon.redeemed_source_id) == (source.type, source.id):
        return coupon
    if discount_fen is None:
        discount = _discount(session, coupon, order_fen)
    else:
        discount = _priced(session, coupon, discount_fen)
    won = session.execute(
        update(Coupon)
        .where(Coupon.id == coupon_id, _free_for(reference, at), _usable_at(at))
        .values(
            status=CouponStatus.REDEEMED,
            locked_by=None,
            locked_until=None,
            redeemed_at=at,
            redeemed_source_type=source.type,
            redeemed_source_id=source.id,
            discount_fen=discount,
        )
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    coupon = get_coupon(session, coupon_id)
    if won != 1:
        if (coupon.redeemed_source_type, coupon.redeemed_source_id) == (source.type, source.id):
            return coupon
        raise _refusal(coupon, at)
    note_use(session, coupon_id, CouponAction.REDEEM, str(source), at=at, discount_fen=discount)
    record_event(
        session,
        CouponRedeemed(
            coupon_id=coupon.id,
            member_id=coupon.member_id,
            source_type=source.type.value,
            source_id=source.id,
            discount_fen=discount,
        ),
        aggregate_type="member",
        aggregate_id=coupon.member_id,
    )
    return coupon


def _redeemed_by(source: Source) -> Any:
    """Redeemed by this very source: its kind as well as its id, as a sale a till reported and
    an order (or any two kinds of source) may carry the same number."""
    return and_(Coupon.redeemed_source_type == source.type, Coupon.redeemed_source_id == source.id)


def _restorable(at: datetime, cancelled: bool) -> list[Any]:
    conditions = [Coupon.status == CouponStatus.REDEEMED, Coupon.expires_at > at]
    if not cancelled:
        restorable = select(CouponTemplate.id).where(CouponTemplate.restore_on_full_return)
        conditions.append(Coupon.template_id.in_(restorable))
    return conditions


def restore_coupons_of(
    session: Session,
    source: Source,
    *same_sale: Source,
    at: datetime | None = None,
    cancelled: bool = False,
) -> list[uuid.UUID]:
    """An order returned in full gives its coupons back, when their template says so and they
    are still valid; a ``cancelled`` order gives back every coupon still valid (it never
    happened). Only the coupons ``source`` redeemed, or ``same_sale``, other names of the same
    sale (a till's sale that is an order too); another kind of source with the same id keeps its
    own. The ids restored; restoring twice restores nothing the second time."""
    at = at or utcnow()
    restored: list[uuid.UUID] = []
    for redeemer in (source, *same_sale):
        back = list(
            session.scalars(
                update(Coupon)
                .where(_redeemed_by(redeemer), *_restorable(at, cancelled))
                .values(
                    status=CouponStatus.AVAILABLE,
                    redeemed_at=None,
                    redeemed_source_type=None,
                    redeemed_source_id=None,
                    discount_fen=None,
                )
                .returning(Coupon.id)
                .execution_options(synchronize_session=False)
            )
        )
        for coupon_id in back:
            note_use(session, coupon_id, CouponAction.RESTORE, str(redeemer), at=at)
        restored.extend(back)
    return restored


@dataclass(frozen=True)
class CouponsBack:
    """What an order coming back did with its coupons: ``restored`` to her, or ``forfeited``
    (those it would have restored, kept used: she was erased)."""

    restored: list[uuid.UUID]
    forfeited: list[uuid.UUID]


def give_back_coupons(
    session: Session,
    member_id: uuid.UUID,
    source: Source,
    *same_sale: Source,
    at: datetime | None = None,
    cancelled: bool = False,
) -> CouponsBack:
    """:func:`restore_coupons_of` for a sale (an order) of ``member_id`` (or of a member merged
    into her), unless she was erased: a person who no longer exists is given nothing back. The
    coupons then stay used, as her erasure left every coupon of hers as it was and makes none
    for her; they are answered as ``forfeited`` for the caller to record why (as
    ``ledger.give_back_points`` leaves forfeited points to its caller).

    Decided under her lock, so an erasure racing the return lands before it (forfeited) or
    after it (restored, and kept with her pseudonymous records).
    """
    at = at or utcnow()
    member = members.lock_member(session, member_id, allow_erased=True)
    if member.status is not MemberStatus.ERASED:
        restored = restore_coupons_of(session, source, *same_sale, at=at, cancelled=cancelled)
        return CouponsBack(restored, [])
    redeemed = or_(*(_redeemed_by(redeemer) for redeemer in (source, *same_sale)))
    kept = session.scalars(
        select(Coupon.id).where(redeemed, *_restorable(at, cancelled)).order_by(Coupon.id)
    ).all()
    return CouponsBack([], list(kept))
