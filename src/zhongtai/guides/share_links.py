"""Share links and QR codes: a guide shares a product, a coupon or her shop; the token is signed
and expires; a member opening it is a touch (binding) and credits the guide with her online
orders for the attribution window; a coupon link gives her the coupon."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from sqlalchemy import update
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Sku
from zhongtai.core.errors import InvalidInput
from zhongtai.core.settings import Settings
from zhongtai.guides.binding import BindingOutcome, touch_member
from zhongtai.guides.binding_rules import BindingSource
from zhongtai.guides.errors import ShareLinkExpired, ShareLinkInvalid
from zhongtai.guides.models import ShareLink, ShareVisit
from zhongtai.guides.program import program_terms
from zhongtai.guides.roster import active_guide
from zhongtai.loyalty.coupons import get_template, issue_coupon
from zhongtai.loyalty.errors import CouponLimitReached, CouponTemplateClosed

_ALGORITHM = "HS256"
_AUDIENCE = "zhongtai/share-link"
OPEN_CHANNELS = frozenset({"app", "mini_program"})


def _signing_key(settings: Settings) -> bytes:
    secret = settings.secret_key.get_secret_value().encode()
    return hmac.new(secret, b"zhongtai/guides/share-links", hashlib.sha256).digest()


@dataclass(frozen=True)
class SharedLink:
    link: ShareLink
    token: str
    #: What the guide sends or prints as a QR code (the app/mini-program opens it).
    url: str


def share_url(settings: Settings, token: str) -> str:
    base = (settings.public_url or "").rstrip("/")
    return f"{base}/s/{token}" if base else f"zhongtai://share/{token}"


def create_share_link(
    session: Session,
    settings: Settings,
    guide_id: uuid.UUID,
    *,
    at: datetime,
    sku_id: uuid.UUID | None = None,
    coupon_template_id: uuid.UUID | None = None,
    valid_days: int | None = None,
) -> SharedLink:
    guide = active_guide(session, guide_id)
    if sku_id is not None and session.get(Sku, sku_id) is None:
        raise InvalidInput.field("sku_id", "no such SKU")
    if coupon_template_id is not None:
        template = get_template(session, coupon_template_id)
        if not template.active:
            raise InvalidInput.field("coupon_template_id", "the coupon is no longer given out")
    days = valid_days if valid_days is not None else program_terms(session).share_link_days
    if not 1 <= days <= 365:
        raise InvalidInput.field("valid_days", "between 1 and 365")
    link = ShareLink(
        guide_id=guide.staff_id,
        store_id=guide.home_store_id,
        sku_id=sku_id,
        coupon_template_id=coupon_template_id,
        created_at=at,
        expires_at=at + timedelta(days=days),
    )
    session.add(link)
    session.flush()
    claims = {
        "aud": _AUDIENCE,
        "lid": str(link.id),
        "gid": str(guide.staff_id),
        "exp": int(link.expires_at.timestamp()),
        "iat": int(at.timestamp()),
    }
    if sku_id is not None:
        claims["sku"] = str(sku_id)
    if coupon_template_id is not None:
        claims["cpn"] = str(coupon_template_id)
    token = jwt.encode(claims, _signing_key(settings), algorithm=_ALGORITHM)
    return SharedLink(link, token, share_url(settings, token))


def read_share_token(settings: Settings, token: str, *, at: datetime) -> uuid.UUID:
    """The link id the token names, if the signature holds and it has not expired at ``at``."""
    try:
        claims = jwt.decode(
            token,
            _signing_key(settings),
            algorithms=[_ALGORITHM],
            audience=_AUDIENCE,
            options={"verify_exp": False, "require": ["exp", "lid", "gid"]},
        )
        link_id = uuid.UUID(claims["lid"])
    except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
        raise ShareLinkInvalid(
            "The share link is not one of ours or was altered.",
            errors=[{"field": "token", "message": str(exc)}],
        ) from exc
    if int(claims["exp"]) <= at.timestamp():
        raise ShareLinkExpired(
            "The share link has expired; ask the guide for a new one.", link_id=str(link_id)
        )
    return link_id


@dataclass(frozen=True)
class OpenedLink:
    link: ShareLink
    visit: ShareVisit
    binding: BindingOutcome
    #: The coupon given to her ("issued"), or why not ("limit_reached", "closed"), or None.
    coupon: str | None
    coupon_id: uuid.UUID | None


def open_share_link(
    session: Session,
    settings: Settings,
    token: str,
    member_id: uuid.UUID,
    *,
    channel: str,
    at: datetime,
) -> OpenedLink:
    """The member opened the link in the app or mini-program."""
    if channel not in OPEN_CHANNELS:
        raise InvalidInput.field("channel", f"one of {', '.join(sorted(OPEN_CHANNELS))}")
    link_id = read_share_token(settings, token, at=at)
    link = session.get(ShareLink, link_id)
    if link is None:
        raise ShareLinkInvalid("The share link does not exist.", link_id=str(link_id))
    binding = touch_member(
        session, member_id, link.guide_id, BindingSource.SHARE_LINK, at=at, source_ref=str(link.id)
    )
    visit = ShareVisit(
        link_id=link.id,
        guide_id=link.guide_id,
        member_id=binding.member_id,
        sku_id=link.sku_id,
        opened_at=at,
        channel=channel,
    )
    session.add(visit)
    session.execute(
        update(ShareLink)
        .where(ShareLink.id == link.id)
        .values(opened_count=ShareLink.opened_count + 1)
    )
    coupon, coupon_id = None, None
    if link.coupon_template_id is not None:
        try:
            with session.begin_nested():
                issued = issue_coupon(
                    session, link.coupon_template_id, binding.member_id, at=at, via="guide"
                )
            coupon, coupon_id = "issued", issued.id
        except CouponLimitReached:
            coupon = "limit_reached"
        except CouponTemplateClosed:
            coupon = "closed"
    session.flush()
    session.refresh(link)
    return OpenedLink(link, visit, binding, coupon, coupon_id)
