"""The guide finds her customers by tag: a whole tag, Chinese or not, however the member's tags
were written — by this version (JSON text with escaped characters, ``\\u9ad8\\u7aef``) or by
earlier ones and imports (the characters themselves)."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import Uuid, bindparam, text
from sqlalchemy.orm import Session

from tests.guides.conftest import EnrollGuide, GuideAtWork
from tests.members.conftest import MakeMember
from tests.orders.conftest import Chain, ok
from zhongtai.core.clock import utcnow
from zhongtai.guides import binding
from zhongtai.guides.binding_rules import BindingSource
from zhongtai.members import service as members


def _hers(
    session: Session, guide: GuideAtWork, member_id: uuid.UUID, tags: list[str] | None = None
) -> uuid.UUID:
    """Her customer, tagged through the members service (as the API does) when tags are given."""
    if tags is not None:
        members.update_profile(session, member_id, tags=tags)
    binding.touch_member(session, member_id, guide.guide.staff_id, BindingSource.WECOM, at=utcnow())
    return member_id


def _store_tags_as_text(session: Session, member_id: uuid.UUID, stored: str) -> None:
    """Write the tags column's JSON text exactly as given, as an earlier version or an import
    may have left it."""
    update = (
        "UPDATE members SET tags = CAST(:tags AS JSON) WHERE id = :id"
        if session.get_bind().dialect.name == "postgresql"
        else "UPDATE members SET tags = :tags WHERE id = :id"
    )
    session.execute(
        text(update).bindparams(bindparam("id", type_=Uuid())),
        {"tags": stored, "id": member_id},
    )


def _found(client: TestClient, guide: GuideAtWork, tag: str) -> set[str]:
    page = ok(client.get("/api/v1/guides/me/customers", params={"tag": tag}, headers=guide.headers))
    return {c["member_id"] for c in page["items"]}


def test_a_chinese_tag_finds_the_customers_with_exactly_that_tag_however_it_was_stored(
    client: TestClient,
    chain: Chain,
    enroll_guide: EnrollGuide,
    make_member: MakeMember,
    session: Session,
) -> None:
    guide = enroll_guide(chain.store)
    by_api = _hers(session, guide, make_member().id, ["VIP", "高端"])
    escaped = _hers(session, guide, make_member().id)
    _store_tags_as_text(session, escaped, '["\\u9ad8\\u7aef", "\\u9c9c\\u98df"]')  # 高端, 鲜食
    plain = _hers(session, guide, make_member().id)
    _store_tags_as_text(session, plain, '["鲜食","高端"]')
    # Tags that contain it are not it.
    longer = _hers(session, guide, make_member().id, ["高端客户", "非高端"])
    _hers(session, guide, make_member().id, [])
    _hers(session, enroll_guide(chain.store), make_member().id, ["高端"])  # not hers
    session.commit()

    assert _found(client, guide, "高端") == {str(by_api), str(escaped), str(plain)}
    assert _found(client, guide, "鲜食") == {str(escaped), str(plain)}
    assert _found(client, guide, "VIP") == {str(by_api)}
    assert _found(client, guide, "高端客户") == {str(longer)}
    assert _found(client, guide, "端") == set()


def test_a_tag_search_matches_whole_tags_only_and_takes_no_wildcards(
    client: TestClient,
    chain: Chain,
    enroll_guide: EnrollGuide,
    make_member: MakeMember,
    session: Session,
) -> None:
    guide = enroll_guide(chain.store)
    percent = _hers(session, guide, make_member().id, ["满100%返", "a_b"])
    _hers(session, guide, make_member().id, ["axb", "满100元返"])
    quoted = _hers(session, guide, make_member().id, ['say "hi"'])
    session.commit()

    assert _found(client, guide, "%") == set()
    assert _found(client, guide, "满100_返") == set()
    assert _found(client, guide, "a_b") == {str(percent)}
    assert _found(client, guide, "满100%返") == {str(percent)}
    assert _found(client, guide, 'say "hi"') == {str(quoted)}
    assert _found(client, guide, "say") == set()


def test_a_search_with_a_control_character_is_refused_naming_the_parameter(
    client: TestClient, chain: Chain, enroll_guide: EnrollGuide
) -> None:
    guide = enroll_guide(chain.store)
    for parameter in ("tag", "name"):
        answer = client.get(
            "/api/v1/guides/me/customers", params={parameter: "高端\x00"}, headers=guide.headers
        )
        assert answer.status_code == 422
        assert [e["field"] for e in answer.json()["errors"]] == [f"query.{parameter}"]
