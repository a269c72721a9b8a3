"""Pure rules of members: normalising identities, masking personal data, merging profiles."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any

from zhongtai.members.models import IdentityKind

# ASCII digits only: ``\d`` would also take the digits of other scripts (Arabic-Indic,
# Devanagari, ...), and a number kept with them never meets its ASCII twin.
_CN_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_OPAQUE_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
# Separators people type between groups: spaces, hyphens and dashes, brackets, dots.
_PHONE_NOISE = re.compile(r"[\s\-().\u2010-\u2015\u2212]")


class IdentityValueInvalid(ValueError):
    """The value is not a valid identity of its kind (the message says what is expected)."""


def normalize_identity(kind: IdentityKind, value: str) -> str:
    """The one spelling of an identity that lookups use; raises for values of the wrong shape.

    Phones: a mainland China mobile number, with or without +86 / 0086 and separators.
    Other kinds are opaque ids issued by their touchpoint (1-128 visible ASCII characters).
    Full-width characters (a Chinese keyboard's ``１３８``, ``＋８６``, ``－``) are read as the
    ASCII ones they stand for (NFKC), so one identity has one spelling whatever the keyboard.
    """
    value = unicodedata.normalize("NFKC", value)
    if kind is IdentityKind.PHONE:
        digits = _PHONE_NOISE.sub("", value)
        for prefix in ("+86", "0086", "86"):
            if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
                digits = digits[len(prefix) :]
                break
        if not _CN_MOBILE.match(digits):
            raise IdentityValueInvalid(
                "expected a mainland China mobile number of 11 digits starting with 1, "
                "e.g. 13812341234 (+86 allowed)"
            )
        return digits
    stripped = value.strip()
    if not _OPAQUE_ID.match(stripped):
        raise IdentityValueInvalid("expected 1-128 visible ASCII characters without spaces")
    return stripped


def mask_phone(phone: str) -> str:
    """138****1234: the first three and the last four digits, as guides and clerks see it."""
    if len(phone) < 8:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_identifier(value: str) -> str:
    """An opaque id shortened to its ends, enough to tell two apart on a screen."""
    if len(value) <= 8:
        return value[:1] + "*" * (len(value) - 1)
    return value[:4] + "****" + value[-4:]


def shown_identity(kind: IdentityKind, value: str, *, may_see_pii: bool) -> str:
    """What a caller sees of an identity: whole with the PII permission, masked otherwise."""
    if may_see_pii:
        return value
    return mask_phone(value) if kind is IdentityKind.PHONE else mask_identifier(value)


@dataclass(frozen=True)
class Profile:
    name: str | None
    birthday: date | None
    preferred_store_id: Any
    preferences: dict[str, Any]
    tags: list[str]


def merged_profile(survivor: Profile, merged: Profile) -> Profile:
    """The survivor's profile, with the gaps filled from the merged member's; tags united.

    The survivor wins every field both have: she is the record the person chose to keep.
    """
    tags = list(dict.fromkeys([*survivor.tags, *merged.tags]))
    return Profile(
        name=survivor.name if survivor.name is not None else merged.name,
        birthday=survivor.birthday if survivor.birthday is not None else merged.birthday,
        preferred_store_id=(
            survivor.preferred_store_id
            if survivor.preferred_store_id is not None
            else merged.preferred_store_id
        ),
        preferences={**merged.preferences, **survivor.preferences},
        tags=tags,
    )


def normalized_tags(tags: list[str]) -> list[str]:
    """Tags trimmed, empty ones dropped, duplicates removed, first spelling kept in order."""
    return list(dict.fromkeys(t.strip() for t in tags if t.strip()))
