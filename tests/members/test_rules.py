"""Pure member rules: identity spelling, masking of personal data, merging profiles."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhongtai.members import rules
from zhongtai.members.models import IdentityKind

mobiles = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)


@pytest.mark.parametrize(
    "spelling", ["13812341234", "+86 138 1234 1234", "0086-138-1234-1234", "86 13812341234"]
)
def test_every_spelling_of_a_mobile_number_normalises_to_its_11_digits(spelling: str) -> None:
    assert rules.normalize_identity(IdentityKind.PHONE, spelling) == "13812341234"


@pytest.mark.parametrize("bad", ["1381234123", "23812341234", "138123412345", "phone", ""])
def test_a_value_that_is_not_a_mainland_mobile_number_is_refused(bad: str) -> None:
    with pytest.raises(rules.IdentityValueInvalid, match="11 digits"):
        rules.normalize_identity(IdentityKind.PHONE, bad)


def test_opaque_ids_are_kept_as_issued_but_refuse_spaces_inside() -> None:
    assert rules.normalize_identity(IdentityKind.WECHAT_OPENID, " oX9a_b-1 ") == "oX9a_b-1"
    with pytest.raises(rules.IdentityValueInvalid):
        rules.normalize_identity(IdentityKind.POS_CARD, "12 34")


def test_a_guide_sees_a_phone_as_138_stars_1234() -> None:
    assert rules.mask_phone("13812341234") == "138****1234"


@given(mobiles)
def test_a_masked_phone_keeps_only_the_first_three_and_last_four_digits(phone: str) -> None:
    masked = rules.mask_phone(phone)
    assert len(masked) == len(phone)
    assert masked[:3] == phone[:3] and masked[-4:] == phone[-4:]
    assert set(masked[3:-4]) == {"*"}


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1))
def test_a_masked_identifier_shows_at_most_eight_of_its_characters(value: str) -> None:
    masked = rules.mask_identifier(value)
    shown = [c for c in masked if c != "*"]
    assert len(shown) <= min(8, len(value))
    assert masked.startswith(value[:1])
    if len(value) > 8:
        assert masked == value[:4] + "****" + value[-4:]


def test_who_may_see_pii_sees_it_whole_and_others_masked() -> None:
    phone = "13812341234"
    assert rules.shown_identity(IdentityKind.PHONE, phone, may_see_pii=True) == phone
    assert rules.shown_identity(IdentityKind.PHONE, phone, may_see_pii=False) == "138****1234"
    openid = "oABCDEFGHIJKLMNOP"
    assert rules.shown_identity(IdentityKind.WECHAT_OPENID, openid, may_see_pii=False) == (
        "oABC****MNOP"
    )


def test_a_merged_profile_keeps_the_survivors_fields_and_fills_her_gaps() -> None:
    survivor = rules.Profile("王芳", None, None, {"top_size": "M"}, ["vip", "fresh"])
    merged = rules.Profile(
        "王小芳", date(1990, 5, 1), "store-1", {"top_size": "L", "shoe": "37"}, ["fresh", "apparel"]
    )
    result = rules.merged_profile(survivor, merged)
    assert result.name == "王芳"
    assert result.birthday == date(1990, 5, 1)
    assert result.preferred_store_id == "store-1"
    assert result.preferences == {"top_size": "M", "shoe": "37"}
    assert result.tags == ["vip", "fresh", "apparel"]
