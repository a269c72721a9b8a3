"""The events of the members context. Payloads carry ids and kinds, never personal data."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from zhongtai.core.outbox import event_type


@event_type("member.registered")
class MemberRegistered(BaseModel):
    """A new member was created the first time a touchpoint met one of her identities."""

    member_id: uuid.UUID
    identity_kind: str
    registered_via: str
    store_id: uuid.UUID | None


@event_type("member.identity_linked")
class MemberIdentityLinked(BaseModel):
    """Another touchpoint's identity (a POS card, an openid, ...) now leads to the member."""

    member_id: uuid.UUID
    identity_kind: str


@event_type("member.merged")
class MemberMerged(BaseModel):
    """The same person was found twice: ``merged_id`` now points at ``survivor_id``.

    Everything the merged member held (identities, consents, points) belongs to the survivor;
    consumers holding data under ``merged_id`` should re-key it to ``survivor_id``.
    """

    merge_id: uuid.UUID
    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    identities_moved: int


@event_type("member.erased")
class MemberErased(BaseModel):
    """The member asked to be forgotten: her personal data is gone, her id stays as a pseudonym.

    Consumers must delete any personal data they copied about her (names, phones, openids).
    """

    member_id: uuid.UUID
    erased_at: datetime


@event_type("consent.changed")
class ConsentChanged(BaseModel):
    """A member gave or withdrew marketing consent for one channel (sms, wecom, app_push)."""

    member_id: uuid.UUID
    channel: str
    granted: bool
    source: str
    recorded_at: datetime
