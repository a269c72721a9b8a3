"""Errors of the members context with their own stable problem types."""

from __future__ import annotations

import uuid

from zhongtai.core.errors import AlreadyExists, Conflict


class IdentityTaken(AlreadyExists):
    """The identity already leads to another member: merge the two instead."""

    slug = "identity-taken"
    title = "The identity belongs to another member"

    def __init__(self, kind: str, owner_id: uuid.UUID) -> None:
        super().__init__(
            f"This {kind} already belongs to member {owner_id}; if both are the same person, "
            "merge the members.",
            kind=kind,
            member_id=str(owner_id),
        )


class MemberErased(Conflict):
    """The member was erased at her request; nothing can be recorded for her any more."""

    slug = "member-erased"
    title = "The member was erased"

    def __init__(self, member_id: uuid.UUID) -> None:
        super().__init__(f"Member {member_id} was erased at her request.", member_id=str(member_id))
