"""Errors of the guides context with their own stable problem types."""

from __future__ import annotations

import uuid

from zhongtai.core.errors import Conflict, DomainError, NotFound


class NotAGuide(NotFound):
    slug = "not-a-guide"
    title = "No such guide"

    def __init__(self, guide_id: uuid.UUID) -> None:
        super().__init__(f"No guide {guide_id}.", guide_id=str(guide_id))


class GuideHasLeft(Conflict):
    slug = "guide-has-left"
    title = "The guide has left"

    def __init__(self, guide_id: uuid.UUID) -> None:
        super().__init__(f"Guide {guide_id} has left the chain.", guide_id=str(guide_id))


class ShareLinkInvalid(DomainError):
    """The share token is not ours, was tampered with, or names a link that does not exist."""

    slug = "share-link-invalid"
    status = 422
    title = "The share link is not valid"


class ShareLinkExpired(DomainError):
    slug = "share-link-expired"
    status = 410
    title = "The share link has expired"


class MonthNotClosable(Conflict):
    slug = "month-not-closable"
    title = "The month cannot be closed yet"


class MonthClosed(Conflict):
    slug = "month-closed"
    title = "The month is closed"
