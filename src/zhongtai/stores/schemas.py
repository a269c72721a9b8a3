"""Request and response bodies of the stores and pilot endpoints."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, time
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    computed_field,
)

from zhongtai.core.clock import as_utc, utcnow
from zhongtai.core.moments import Moment as AwareMoment
from zhongtai.core.moments import calendar_moment
from zhongtai.core.text import PlainText
from zhongtai.stores.models import Capability, LocationKind, LocationStatus, PilotScope

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _parse_clock(value: Any) -> Any:
    if isinstance(value, str):
        match = _CLOCK.match(value)
        if match is None:
            raise ValueError("expected a local time as HH:MM, e.g. 09:00 or 22:30")
        return time(int(match[1]), int(match[2]))
    return value


ClockTime = Annotated[
    time,
    BeforeValidator(_parse_clock),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": _CLOCK.pattern, "examples": ["09:00"]}),
]

FEATURE = r"^[a-z][a-z0-9_.]{1,63}$"


def _calendar_moment_or_no_offset(value: datetime) -> datetime:
    """The calendar check every moment passes (:func:`calendar_moment`); one without an offset
    goes on to the opening-hours service, which refuses it naming ``at`` as it always has."""
    return value if value.tzinfo is None else calendar_moment(value)


#: The moment ``/stores/{id}/open`` is asked about.
Moment = Annotated[datetime, AfterValidator(_calendar_moment_or_no_offset)]


class LocationCreate(BaseModel):
    code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$", examples=["SH001"])
    name: PlainText = Field(min_length=1, max_length=100)
    kind: LocationKind = LocationKind.STORE
    region: PlainText = Field(min_length=1, max_length=64, examples=["华东"])
    city: PlainText = Field(min_length=1, max_length=64)
    address: PlainText = Field(min_length=1, max_length=255)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    timezone: PlainText = Field(
        min_length=1, max_length=64, description="IANA time zone", examples=["Asia/Shanghai"]
    )
    phone: PlainText | None = Field(default=None, max_length=32)


class LocationUpdate(BaseModel):
    code: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    name: PlainText | None = Field(default=None, min_length=1, max_length=100)
    kind: LocationKind | None = None
    status: LocationStatus | None = None
    region: PlainText | None = Field(default=None, min_length=1, max_length=64)
    city: PlainText | None = Field(default=None, min_length=1, max_length=64)
    address: PlainText | None = Field(default=None, min_length=1, max_length=255)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    timezone: PlainText | None = Field(default=None, min_length=1, max_length=64)
    phone: PlainText | None = Field(default=None, max_length=32)


class CapabilityIn(BaseModel):
    delivery_radius_m: int | None = Field(
        default=None,
        gt=0,
        le=1_000_000,
        description="Required for delivery: how far riders go, in metres.",
    )
    services: list[PlainText] | None = Field(
        default=None,
        max_length=50,
        description="Required for in_store_services, e.g. ['fish_cleaning', 'alterations'].",
    )


class CapabilityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    capability: Capability
    delivery_radius_m: int | None
    services: list[str]
    paused_until: datetime | None = Field(
        default=None, description="No orders of this capability until then (a past moment: over)."
    )
    pause_reason: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def paused(self) -> bool:
        """Whether the store takes no orders of this capability now."""
        return self.paused_until is not None and as_utc(self.paused_until) > utcnow()


class PauseIn(BaseModel):
    until: AwareMoment = Field(
        description="The moment orders are taken again (at most 24 h ahead)."
    )
    reason: PlainText = Field(min_length=1, max_length=200, examples=["两位拣货员病假"])


class LocationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    kind: LocationKind
    status: LocationStatus
    region: str
    city: str
    address: str
    latitude: float
    longitude: float
    timezone: str
    phone: str | None
    capabilities: list[CapabilityOut]
    created_at: datetime
    updated_at: datetime


class HoursSpan(BaseModel):
    """A weekly span in the store's local time; closes_at at or before opens_at runs overnight."""

    model_config = ConfigDict(from_attributes=True)

    weekday: int = Field(ge=0, le=6, description="0 = Monday ... 6 = Sunday")
    opens_at: ClockTime
    closes_at: ClockTime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def overnight(self) -> bool:
        return self.closes_at <= self.opens_at


class HoursIn(BaseModel):
    spans: list[HoursSpan] = Field(max_length=70, description="Replaces all weekly spans.")


class HoursOut(BaseModel):
    location_id: uuid.UUID
    timezone: str
    spans: list[HoursSpan]


class ExceptionIn(BaseModel):
    on_date: date
    closed: bool = False
    opens_at: ClockTime | None = None
    closes_at: ClockTime | None = None
    note: PlainText | None = Field(default=None, max_length=200, examples=["春节 Spring Festival"])


class ExceptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    on_date: date
    closed: bool
    opens_at: ClockTime | None
    closes_at: ClockTime | None
    note: str | None


class LocationDetail(LocationOut):
    hours: list[HoursSpan]
    upcoming_exceptions: list[ExceptionOut]
    open_now: bool
    next_opening: datetime | None = Field(description="In the store's local offset.")


class OpenOut(BaseModel):
    location_id: uuid.UUID
    timezone: str
    at: datetime = Field(description="The moment asked about, in the store's local offset.")
    open: bool
    next_opening: datetime | None = Field(
        description="When it is next open (the moment itself if open); null if not in 4 weeks."
    )


class PilotRuleIn(BaseModel):
    feature: str = Field(pattern=FEATURE, examples=["delivery"])
    scope: PilotScope
    scope_value: PlainText | None = Field(
        default=None,
        max_length=64,
        description="'*' or empty for chain; a region name; a store id; a category id.",
    )
    enabled: bool
    note: PlainText | None = Field(default=None, max_length=200)


class PilotRuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    feature: str
    scope: PilotScope
    scope_value: str
    enabled: bool
    note: str | None
    created_at: datetime
    updated_at: datetime


class PilotCheckOut(BaseModel):
    feature: str
    store_id: uuid.UUID
    category_id: uuid.UUID | None
    enabled: bool
    reason: str = Field(description="Which rule decided, in words.")


class PilotStoresOut(BaseModel):
    feature: str
    category_id: uuid.UUID | None
    store_ids: list[uuid.UUID]
