"""Request and response bodies of the members endpoints."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints
from pydantic_core import PydanticCustomError

from zhongtai.core.clock import utcnow
from zhongtai.core.text import plain_text
from zhongtai.members.models import ConsentChannel, IdentityKind, MemberStatus

#: The earliest birthday taken: an older one is a typing slip (0001-01-01, 1092 for 1992).
EARLIEST_BIRTHDAY = date(1900, 1, 1)
PREFERENCE_VALUE_MAX = 64


def _preference_value(value: str | int | bool) -> str | int | bool:
    if isinstance(value, str):
        if len(value) > PREFERENCE_VALUE_MAX:
            raise PydanticCustomError(
                "string_too_long",
                "String should have at most {max_length} characters",
                {"max_length": PREFERENCE_VALUE_MAX},
            )
        plain_text(value)
    return value


def _birthday(value: date | None) -> date | None:
    # A day's grace: it is already tomorrow in China while still today in UTC.
    latest = utcnow().date() + timedelta(days=1)
    if value is not None and not EARLIEST_BIRTHDAY <= value <= latest:
        raise PydanticCustomError(
            "birthday_out_of_range",
            "must be a past date from {earliest} on",
            {"earliest": EARLIEST_BIRTHDAY.isoformat()},
        )
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(plain_text),
]
Birthday = Annotated[date | None, AfterValidator(_birthday)]
Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=32),
    AfterValidator(plain_text),
]
PreferenceKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
# One validator over the whole union, so a bad value is one error named by its key alone.
PreferenceValue = Annotated[str | int | bool, AfterValidator(_preference_value)]


class IdentityIn(BaseModel):
    kind: IdentityKind
    value: str = Field(
        min_length=1,
        max_length=128,
        description="Phones: a mainland mobile number (+86 and separators allowed); "
        "other kinds: the id the touchpoint issued.",
        examples=["13812341234"],
    )


class IdentifyIn(IdentityIn):
    create: bool = Field(
        default=True, description="Create the member on first sight (false: 404 when unknown)."
    )
    name: Name | None = None
    birthday: Birthday = None
    store_id: uuid.UUID | None = Field(default=None, description="The store she registered in.")


class ProfileIn(BaseModel):
    name: Name | None = None
    birthday: Birthday = None
    preferred_store_id: uuid.UUID | None = None
    preferences: dict[PreferenceKey, PreferenceValue] | None = Field(
        default=None,
        max_length=50,
        description='Sizes and preferences, e.g. {"shoe_size": "37", "top_size": "M"}.',
    )
    tags: list[Tag] | None = Field(default=None, max_length=50)


class ConsentIn(BaseModel):
    granted: bool


class IdentityOut(BaseModel):
    kind: IdentityKind
    value: str = Field(description="Masked (138****1234) unless the caller may see PII.")
    masked: bool


class ConsentOut(BaseModel):
    channel: ConsentChannel
    granted: bool
    recorded_at: datetime | None
    source: str | None


class MemberOut(BaseModel):
    id: uuid.UUID
    status: MemberStatus
    name: str | None
    birthday: date | None
    preferred_store_id: uuid.UUID | None
    preferences: dict[str, Any]
    tags: list[str]
    registered_via: str
    registered_store_id: uuid.UUID | None
    created_at: datetime
    identities: list[IdentityOut]
    consents: list[ConsentOut]


class IdentifyOut(BaseModel):
    created: bool
    member: MemberOut


class MergeIn(BaseModel):
    merged_member_id: uuid.UUID = Field(
        description="The duplicate: it becomes a pointer to the member in the path."
    )


class MergeOut(BaseModel):
    merge_id: uuid.UUID
    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    merged_at: datetime
    moved: dict[str, Any]


# --- the member 360 (GET /members/{id}/overview) ----------------------------------------------
# Each section below is supplied by the context that owns the data (members.hooks); its model
# lives here so that the whole overview is one documented schema.


class ChannelSpendOut(BaseModel):
    channel: str = Field(
        description="pos, app, mini_program, marketplace or guide_share.", examples=["app"]
    )
    orders_12m: int
    net_spend_12m: int = Field(description="Fen: order totals less refunds, last 12 months.")
    orders_all_time: int
    net_spend_all_time: int = Field(description="Fen: order totals less refunds, all time.")


class OrderSummaryOut(BaseModel):
    order_id: uuid.UUID
    number: str
    channel: str
    fulfillment_type: str = Field(examples=["pickup"])
    store_id: uuid.UUID
    store_name: str
    status: str
    currency: str
    total: int = Field(description="Fen.")
    placed_at: datetime


class OrdersOverviewOut(BaseModel):
    """Purchases (orders paid at least once: not cancelled, not awaiting payment) of every
    channel, under her id and every id merged into her."""

    channels: list[ChannelSpendOut] = Field(description="Every sales channel, zeros included.")
    orders_12m: int
    net_spend_12m: int
    orders_all_time: int
    net_spend_all_time: int
    first_order_at: datetime | None = Field(description="Her first purchase.")
    last_order_at: datetime | None = Field(description="Her latest purchase.")
    latest: list[OrderSummaryOut] = Field(
        description="Her 10 latest orders of any channel and status, newest first."
    )


class ExpiringPointsOut(BaseModel):
    expires_at: datetime
    points: int


class PointsOverviewOut(BaseModel):
    balance: int = Field(description="Spendable now.")
    pending: int = Field(description="Earned, spendable once the orders' return windows close.")
    debt: int = Field(description="Spent points a return took back: her next points pay it.")
    tier: str = Field(examples=["silver"])
    tier_review_at: datetime | None = Field(
        description="When her tier is next reviewed (null: never reviewed yet, standard)."
    )
    expiring_30d: int = Field(description="Points that expire within the next 30 days.")
    expiring: list[ExpiringPointsOut] = Field(description="Those points, by expiry date.")


class ActiveCouponOut(BaseModel):
    coupon_id: uuid.UUID
    template_name: str
    kind: str = Field(examples=["amount_off"])
    value_summary: str = Field(examples=["¥20 off from ¥199"])
    held_by_checkout: bool = Field(description="Locked by a checkout in progress right now.")
    valid_from: datetime | None = Field(description="Null: usable now.")
    valid_until: datetime


class CouponsOverviewOut(BaseModel):
    active: list[ActiveCouponOut] = Field(description="Still usable, soonest to expire first.")
    used: int
    expired: int = Field(description="Not used before their end.")


class BoundGuideOut(BaseModel):
    guide_id: uuid.UUID
    name: str
    guide_status: str = Field(examples=["active"])
    store_id: uuid.UUID = Field(description="The guide's home store.")
    store_name: str
    since: datetime
    source: str = Field(
        description="How she was bound: in_store_sale, share_link, wecom, manager or handover."
    )
    protected_until: datetime


class GuideOverviewOut(BaseModel):
    current: BoundGuideOut | None = Field(description="Null: no guide looks after her.")


class MemberOverviewOut(BaseModel):
    """Everything the chain knows of her, on one page: the console's member 360."""

    member: MemberOut = Field(
        description="Profile, identities (masked unless the caller holds members:pii) and "
        "consents, exactly as GET /members/{id} answers."
    )
    merged_member_ids: list[uuid.UUID] = Field(
        description="Members merged into her: their ids answer this overview too."
    )
    orders: OrdersOverviewOut
    points: PointsOverviewOut
    coupons: CouponsOverviewOut
    guide: GuideOverviewOut
    feedback: dict[str, Any] | None = Field(
        default=None,
        description="After-sales cases and NPS answers: supplied by the feedback context once "
        "it registers its overview section; null until then.",
    )
