"""The public face of the members context: the use cases other contexts and the API call."""

from __future__ import annotations

from zhongtai.members.identity import (
    find_member_id,
    find_or_create_member,
    get_member,
    identities_of,
    known_store,
    link_identity,
    lock_member,
    member_ids_of,
    member_ids_select,
)
from zhongtai.members.merge import merge_members
from zhongtai.members.pii import PiiCipher, cipher_for
from zhongtai.members.privacy import erase_member, export_member
from zhongtai.members.profile import (
    Consent,
    MemberView,
    ShownIdentity,
    consents_of,
    describe_member,
    set_consent,
    update_profile,
)

__all__ = [
    "Consent",
    "MemberView",
    "PiiCipher",
    "ShownIdentity",
    "cipher_for",
    "consents_of",
    "describe_member",
    "erase_member",
    "export_member",
    "find_member_id",
    "find_or_create_member",
    "get_member",
    "identities_of",
    "known_store",
    "link_identity",
    "lock_member",
    "member_ids_of",
    "member_ids_select",
    "merge_members",
    "set_consent",
    "update_profile",
]
