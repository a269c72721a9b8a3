"""The demo chain's members: as many as asked for and shared over the stores by format, known by
a demo phone and the touchpoints they use — each identity leading to one member through the
members service — with profiles and consents; WeCom contacts found by a unionid the member
already had, and orders only from members who had signed up."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr
from rich.console import Console
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.demo.conftest import HISTORY_SETTINGS, SEED_DAY, SMALL_CHAIN_MEMBERS, small_chain
from zhongtai.app import create_app
from zhongtai.cli import app
from zhongtai.core.clock import as_utc
from zhongtai.core.db import Database
from zhongtai.demo import build_chain, demo_credentials
from zhongtai.demo.members import (
    PHONE_BLOCK,
    build_demo_members,
    demo_phone,
    members_per_store,
    seal_phones,
)
from zhongtai.demo.orders_history import history_window
from zhongtai.demo.sites import StoreFormat
from zhongtai.demo.tour import tour_panel
from zhongtai.guides.models import WeComContact
from zhongtai.loyalty.tier_rules import Tier
from zhongtai.members import service as members_service
from zhongtai.members.identity import identity_value
from zhongtai.members.models import (
    ConsentChannel,
    ConsentRecord,
    IdentityKind,
    Member,
    MemberIdentity,
)
from zhongtai.members.pii import cipher_for
from zhongtai.orders.models import Order

CHAIN = small_chain()
_, HISTORY_END = history_window(SEED_DAY, 90, "Asia/Shanghai")


@pytest.fixture(scope="module")
def db(history_url: str) -> Iterator[Database]:
    database = Database.connect(history_url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    with db.reader() as s:
        yield s


@given(st.integers(min_value=0, max_value=200_000), st.integers(min_value=1, max_value=40))
def test_members_are_shared_over_the_stores_exactly_and_by_format(total: int, stores: int) -> None:
    chain = build_chain(42, stores=stores, skus=0, staff_per_store=0)
    counts = members_per_store(chain, total)
    assert sum(counts.values()) == total
    by_format: dict[StoreFormat, list[int]] = defaultdict(list)
    for code, n in counts.items():
        by_format[chain.formats[code]].append(n)
    # A store's share follows its format's weight, give or take the one member rounding moves.
    for weaker, stronger in (
        (StoreFormat.CONVENIENCE, StoreFormat.DEPARTMENT),
        (StoreFormat.DEPARTMENT, StoreFormat.SUPERMARKET),
    ):
        if by_format[weaker] and by_format[stronger]:
            assert max(by_format[weaker]) <= min(by_format[stronger]) + 1


def test_seed_demo_loads_as_many_members_as_asked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'members.db'}"
    small = ["--stores", "2", "--skus", "30", "--staff-per-store", "0"]
    result = CliRunner().invoke(
        app,
        ["seed-demo", *small, "--members", "240", "--credentials-file", str(tmp_path / "c.json")],
        env={"ZHONGTAI_DATABASE_URL": url},
    )
    assert result.exit_code == 0, result.output
    assert "240" in result.stdout  # the summary counts them
    db = Database.connect(url)
    try:
        with db.reader() as session:
            assert session.scalar(select(func.count()).select_from(Member)) == 240
    finally:
        db.dispose()


def test_the_loaded_members_are_the_chains_and_each_identity_is_one_members(
    session: Session,
) -> None:
    assert session.scalar(select(func.count()).select_from(Member)) == SMALL_CHAIN_MEMBERS
    keys = Counter(session.execute(select(MemberIdentity.kind, MemberIdentity.lookup_key)).all())
    assert keys and max(keys.values()) == 1
    phones = session.scalars(
        select(MemberIdentity).where(MemberIdentity.kind == IdentityKind.PHONE)
    ).all()
    # Numbers are never stored in clear: a keyed hash to look up, AES-GCM to read.
    assert phones and all(len(p.lookup_key) == 64 and int(p.lookup_key, 16) for p in phones)
    assert not any(p.ciphertext is None or PHONE_BLOCK.encode() in p.ciphertext for p in phones)


def test_a_demo_phone_finds_its_member_through_the_members_service(session: Session) -> None:
    cipher = cipher_for(HISTORY_SETTINGS)
    phones = session.scalars(
        select(MemberIdentity).where(MemberIdentity.kind == IdentityKind.PHONE)
    ).all()
    owners = {identity_value(cipher, p): p.member_id for p in phones}
    assert sorted(owners) == [demo_phone(n) for n in range(1, len(phones) + 1)]
    for number in (demo_phone(1), demo_phone(len(phones) // 2), demo_phone(len(phones))):
        found = members_service.find_member_id(session, cipher, IdentityKind.PHONE, number)
        assert found == owners[number]
    unused = demo_phone(len(phones) + 1)
    assert members_service.find_member_id(session, cipher, IdentityKind.PHONE, unused) is None
    # Found by the keyed hash of the chain's key, not by the number: another key finds nobody.
    other = HISTORY_SETTINGS.model_copy(update={"secret_key": SecretStr("another-key-" * 4)})
    first = demo_phone(1)
    assert (
        members_service.find_member_id(session, cipher_for(other), IdentityKind.PHONE, first)
        is None
    )


def test_the_tours_demo_phone_identifies_her_over_http_with_her_points_and_coupons(
    history_url: str, db: Database
) -> None:
    summary = demo_credentials(CHAIN)
    console = Console(record=True, width=240)
    console.print(tour_panel(summary, "http://127.0.0.1:8000", Path("c.json")))
    assert f"phone {demo_phone(1)}" in console.export_text()
    app_key = next(k["key"] for k in summary["api_keys"] if k["channel"] == "app")
    settings = HISTORY_SETTINGS.model_copy(
        update={"database_url": history_url, "log_json": False, "log_level": "WARNING"}
    )
    with TestClient(create_app(settings, db=db)) as client:
        headers = {"X-API-Key": app_key}
        found = client.post(
            "/api/v1/members/identify",
            headers=headers,
            json={"kind": "phone", "value": demo_phone(1)},
        )
        assert found.status_code == 200, found.text
        assert found.json()["created"] is False
        member_id = found.json()["member"]["id"]
        points = client.get(f"/api/v1/members/{member_id}/points", headers=headers)
        assert points.status_code == 200, points.text
        assert points.json()["tier"] in {t.value for t in Tier}
        coupons = client.get(f"/api/v1/members/{member_id}/coupons", headers=headers)
        assert coupons.status_code == 200, coupons.text


def test_most_have_a_phone_many_are_on_wechat_and_some_use_several_touchpoints(
    session: Session,
) -> None:
    kinds: dict[uuid.UUID, set[IdentityKind]] = defaultdict(set)
    for member_id, kind in session.execute(select(MemberIdentity.member_id, MemberIdentity.kind)):
        kinds[member_id].add(kind)
    assert len(kinds) == SMALL_CHAIN_MEMBERS
    share = Counter(k for found in kinds.values() for k in found)
    assert share[IdentityKind.PHONE] > 0.8 * SMALL_CHAIN_MEMBERS
    assert share[IdentityKind.WECHAT_UNIONID] == share[IdentityKind.WECHAT_OPENID]
    assert share[IdentityKind.WECHAT_UNIONID] > 0.4 * SMALL_CHAIN_MEMBERS
    assert 0.1 * SMALL_CHAIN_MEMBERS < share[IdentityKind.APP_USER_ID] < SMALL_CHAIN_MEMBERS / 2
    assert 0.1 * SMALL_CHAIN_MEMBERS < share[IdentityKind.POS_CARD] < SMALL_CHAIN_MEMBERS / 2
    touchpoints = Counter(len(found - {IdentityKind.WECHAT_OPENID}) for found in kinds.values())
    assert touchpoints[1] and touchpoints[2] and touchpoints[3]


def test_some_members_have_a_birthday_sizes_tags_and_marketing_consents(
    session: Session,
) -> None:
    people = session.scalars(select(Member)).all()
    assert 0.4 < sum(m.birthday is not None for m in people) / len(people) < 0.7
    assert any("top_size" in m.preferences for m in people)
    assert 0.2 < sum(bool(m.tags) for m in people) / len(people) < 0.4
    latest: dict[tuple[uuid.UUID, ConsentChannel], ConsentRecord] = {}
    for record in session.scalars(select(ConsentRecord).order_by(ConsentRecord.recorded_at)):
        latest[(record.member_id, record.channel)] = record
    granted = Counter(c for (_, c), r in latest.items() if r.granted)
    withdrawn = Counter(c for (_, c), r in latest.items() if not r.granted)
    assert 0.3 * len(people) < granted[ConsentChannel.SMS] < 0.6 * len(people)
    assert granted[ConsentChannel.APP_PUSH] and granted[ConsentChannel.WECOM]
    assert withdrawn[ConsentChannel.SMS], "some changed their minds"
    joined = {m.id: as_utc(m.created_at) for m in people}
    assert all(as_utc(r.recorded_at) >= joined[m] for (m, _), r in latest.items())


def test_wecom_finds_each_members_contact_by_a_unionid_she_already_had(session: Session) -> None:
    unionids = dict(
        session.execute(
            select(MemberIdentity.member_id, MemberIdentity.created_at).where(
                MemberIdentity.kind == IdentityKind.WECHAT_UNIONID
            )
        ).all()
    )
    contacts = session.scalars(
        select(WeComContact).where(WeComContact.member_id.is_not(None))
    ).all()
    assert len(contacts) > 50
    for contact in contacts:
        assert contact.member_id in unionids, contact.external_userid
        assert as_utc(unionids[contact.member_id]) <= as_utc(contact.added_at)


def test_members_buy_only_after_signing_up_and_some_signed_up_during_the_history(
    session: Session,
) -> None:
    joined = {m.id: as_utc(m.created_at) for m in session.scalars(select(Member))}
    start, end = history_window(SEED_DAY, 90, "Asia/Shanghai")
    assert min(joined.values()) < start - (end - start) * 4
    newcomers = [m for m, at in joined.items() if start <= at < end]
    assert 0.05 * len(joined) < len(newcomers) < 0.25 * len(joined)
    buyers: Counter[uuid.UUID] = Counter()
    for member_id, placed_at in session.execute(
        select(Order.member_id, Order.placed_at).where(Order.member_id.is_not(None))
    ):
        assert member_id is not None and as_utc(placed_at) > joined[member_id]
        buyers[member_id] += 1
    assert any(m in buyers for m in newcomers)
    # More members than buyers in three months, and a few regulars buying week after week.
    assert len(buyers) < 0.7 * len(joined)
    assert max(buyers.values()) >= 10


def test_the_same_seed_gives_the_same_members_and_more_members_keep_the_first_ones() -> None:
    first = build_demo_members(CHAIN, until=HISTORY_END, total=900)
    again = build_demo_members(CHAIN, until=HISTORY_END, total=900)
    assert first.members == again.members and first.identities == again.identities
    assert first.consents == again.consents and first.phones == again.phones
    seal_phones(first, cipher_for(HISTORY_SETTINGS))
    seal_phones(again, cipher_for(HISTORY_SETTINGS))
    looked_up = [(i["kind"], i["lookup_key"]) for i in first.identities]
    assert looked_up == [(i["kind"], i["lookup_key"]) for i in again.identities]
    more = build_demo_members(CHAIN, until=HISTORY_END, total=1200)
    for code, ids in first.by_store.items():
        assert set(ids) < set(more.by_store[code])
