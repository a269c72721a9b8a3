"""On PostgreSQL with many parallel clients: one member per phone, no overdraft, no double earn."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.live_server import LiveServer
from tests.races import (
    MANY_CONNECTIONS,
    all_at_once,
    hq_admin_headers,
    race_server,
    requests_at_once,
)
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.roles import Channel
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import DomainError
from zhongtai.core.settings import Settings
from zhongtai.loyalty import coupons
from zhongtai.loyalty import service as loyalty
from zhongtai.loyalty.coupon_rules import CouponKind, CouponTerms
from zhongtai.loyalty.models import Coupon, EntryKind, PointsEntry, SourceType
from zhongtai.members import service as members
from zhongtai.members.models import IdentityKind, Member, MemberIdentity

pytestmark = MANY_CONNECTIONS
# More clients than the server has connections (50) or request slots: requests queue for a
# slot on the event loop, and the one holding a member's lock always finds a thread to answer.
CLIENTS = 64


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with race_server("zt_loyalty") as srv:
        yield srv


@pytest.fixture(scope="module")
def touchpoints(server: LiveServer) -> list[dict[str, str]]:
    """Keys of the app, the mini-program and the POS of several stores' tills."""
    keys = []
    with server.db.writer() as s, s.begin():
        for i, channel in enumerate([Channel.APP, Channel.MINI_PROGRAM] * 4):
            issued = auth.create_api_key(
                s, name=f"race {i}", channel=channel, scopes=None, store_id=None, terminal_id=None
            )
            keys.append({"X-API-Key": issued.full_key})
    return keys


def _new_member(server: LiveServer, headers: dict[str, str], phone: str) -> str:
    r = httpx.post(
        f"{server.url}/api/v1/members/identify",
        json={"kind": "phone", "value": phone},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["member"]["id"])


def test_touchpoints_meeting_one_new_phone_at_once_create_one_member(
    server: LiveServer, touchpoints: list[dict[str, str]]
) -> None:
    body = {"kind": "phone", "value": "13600000001"}
    url = f"{server.url}/api/v1/members/identify"
    with server.db.reader() as s:
        before = s.scalar(select(func.count()).select_from(Member))
    responses = requests_at_once(
        [
            lambda c, h=touchpoints[i % len(touchpoints)]: c.post(url, json=body, headers=h)
            for i in range(CLIENTS)
        ]
    )
    assert sorted({r.status_code for r in responses}) == [200, 201]
    assert sum(r.status_code == 201 for r in responses) == 1
    assert len({r.json()["member"]["id"] for r in responses}) == 1
    with server.db.reader() as s:
        member_id = responses[0].json()["member"]["id"]
        assert (
            s.scalar(
                select(func.count())
                .select_from(MemberIdentity)
                .where(MemberIdentity.member_id == member_id)
            )
            == 1
        )
        assert s.scalar(select(func.count()).select_from(Member)) == before + 1


def test_spending_one_balance_from_many_touchpoints_at_once_never_overdraws_it(
    server: LiveServer, touchpoints: list[dict[str, str]]
) -> None:
    member = _new_member(server, touchpoints[0], "13600000002")
    with server.db.writer() as s, s.begin():
        fund = loyalty.Source(SourceType.CAMPAIGN, "race-fund")
        loyalty.earn_points(s, uuid.UUID(member), fund, 200)
    url = f"{server.url}/api/v1/members/{member}/points/redeem"

    def spend(i: int) -> Callable[[httpx.Client], httpx.Response]:
        body = {"source_type": "order", "source_id": f"RACE-{i}", "points": 10}
        return lambda c: c.post(url, json=body, headers=touchpoints[i % len(touchpoints)])

    responses = requests_at_once([spend(i) for i in range(CLIENTS)])
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 20
    assert statuses.count(409) == CLIENTS - 20
    assert all(
        r.json()["type"].endswith("/insufficient-points") for r in responses if r.status_code == 409
    )
    with server.db.reader() as s:
        balance = httpx.get(
            f"{server.url}/api/v1/members/{member}/points", headers=touchpoints[0]
        ).json()
        assert (balance["balance"], balance["debt"]) == (0, 0)
        assert loyalty.verify(s).clean


def _redeem_ten_each(
    server: LiveServer, touchpoints: list[dict[str, str]], member: str, prefix: str
) -> list[httpx.Response]:
    url = f"{server.url}/api/v1/members/{member}/points/redeem"

    def spend(i: int) -> Callable[[httpx.Client], httpx.Response]:
        body = {"source_type": "order", "source_id": f"{prefix}-{i}", "points": 10}
        return lambda c: c.post(url, json=body, headers=touchpoints[i % len(touchpoints)])

    return requests_at_once([spend(i) for i in range(CLIENTS)])


def test_many_touchpoints_spending_at_once_never_reach_pending_points(
    server: LiveServer, touchpoints: list[dict[str, str]]
) -> None:
    member = _new_member(server, touchpoints[0], "13600000006")
    now = utcnow()
    with server.db.writer() as s, s.begin():
        loyalty.earn_points(
            s, uuid.UUID(member), loyalty.Source(SourceType.CAMPAIGN, "p-fund"), 100
        )
        loyalty.earn_points(
            s,
            uuid.UUID(member),
            loyalty.Source(SourceType.ORDER, "PENDING-RACE"),
            500,
            basis_fen=50_000,
            pending_until=now + timedelta(days=7),
        )
    statuses = [r.status_code for r in _redeem_ten_each(server, touchpoints, member, "PR")]
    assert statuses.count(201) == 10
    assert statuses.count(409) == CLIENTS - 10
    balance = httpx.get(f"{server.url}/api/v1/members/{member}/points", headers=touchpoints[0])
    assert (balance.json()["balance"], balance.json()["pending"]) == (0, 500)
    with server.db.reader() as s:
        assert loyalty.verify(s).clean


def test_pending_points_that_just_matured_are_spent_once_by_racing_touchpoints(
    server: LiveServer, touchpoints: list[dict[str, str]]
) -> None:
    member = _new_member(server, touchpoints[0], "13600000007")
    now = utcnow()
    with server.db.writer() as s, s.begin():
        # The window closed a moment ago and no job has matured the lot yet: the first
        # redemption to take her lock matures it, the others find it spendable already.
        loyalty.earn_points(
            s,
            uuid.UUID(member),
            loyalty.Source(SourceType.ORDER, "MATURED-RACE"),
            200,
            basis_fen=20_000,
            at=now - timedelta(days=7, seconds=2),
            pending_until=now - timedelta(seconds=1),
        )
    statuses = [r.status_code for r in _redeem_ten_each(server, touchpoints, member, "MR")]
    assert statuses.count(201) == 20
    assert statuses.count(409) == CLIENTS - 20
    with server.db.reader() as s:
        matured = s.scalar(
            select(func.count())
            .select_from(PointsEntry)
            .where(PointsEntry.member_id == uuid.UUID(member), PointsEntry.kind == EntryKind.MATURE)
        )
        assert matured == 1
        assert loyalty.verify(s).clean


def test_one_sale_replayed_by_many_clients_at_once_earns_once(
    server: LiveServer, touchpoints: list[dict[str, str]]
) -> None:
    member = _new_member(server, touchpoints[0], "13600000003")
    url = f"{server.url}/api/v1/members/{member}/points/earn"
    body = {"source_type": "pos_sale", "source_id": "OFFLINE-1", "lines": [{"net_fen": 9_900}]}
    responses = requests_at_once(
        [
            lambda c, h=touchpoints[i % len(touchpoints)]: c.post(url, json=body, headers=h)
            for i in range(CLIENTS)
        ]
    )
    assert sorted(r.status_code for r in responses).count(201) == 1
    assert {r.status_code for r in responses} == {200, 201}
    assert len({r.json()["entry"]["id"] for r in responses}) == 1
    with server.db.reader() as s:
        earned = s.scalar(
            select(func.count())
            .select_from(PointsEntry)
            .where(PointsEntry.source_id == "OFFLINE-1", PointsEntry.kind == EntryKind.EARN)
        )
        assert earned == 1
        assert loyalty.verify(s).clean


def test_one_merge_sent_by_many_clients_at_once_happens_once(
    server: LiveServer, touchpoints: list[dict[str, str]]
) -> None:
    survivor = _new_member(server, touchpoints[0], "13600000004")
    duplicate = _new_member(server, touchpoints[0], "13600000005")
    with server.db.writer() as s, s.begin():
        fund = loyalty.Source(SourceType.CAMPAIGN, "merge-fund")
        loyalty.earn_points(s, uuid.UUID(duplicate), fund, 70)
    hq = hq_admin_headers(server.db, "merge-admin")
    url = f"{server.url}/api/v1/members/{survivor}/merge"
    body = {"merged_member_id": duplicate}
    responses = requests_at_once([lambda c: c.post(url, json=body, headers=hq)] * CLIENTS)
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["merge_id"] for r in responses}) == 1
    balance = httpx.get(f"{server.url}/api/v1/members/{duplicate}/points", headers=hq).json()
    assert (balance["member_id"], balance["balance"]) == (survivor, 70)
    with server.db.reader() as s:
        assert loyalty.verify(s).clean


def _race(server: LiveServer, work: Callable[[Session], object]) -> list[str]:
    """Run ``work`` in CLIENTS transactions at once; what each ended with."""

    def one(_: int) -> str:
        try:
            with server.db.writer() as s, s.begin():
                work(s)
            return "ok"
        except DomainError as refused:
            return refused.slug

    return all_at_once(CLIENTS, one)


def test_a_coupon_raced_for_by_every_touchpoint_is_redeemed_once(server: LiveServer) -> None:
    with server.db.writer() as s, s.begin():
        member = members.find_or_create_member(
            s, members.cipher_for(Settings()), IdentityKind.POS_CARD, "RACE-CARD", via="pos"
        )[0]
        template = coupons.create_template(
            s,
            code="RACE-1",
            name="race",
            valid_days=1,
            terms=CouponTerms(CouponKind.AMOUNT_OFF, 100),
        )
        coupon = coupons.issue_coupon(s, template.id, member.id)
    counter = itertools.count()

    def redeem(s: Session) -> None:
        source = loyalty.Source(SourceType.ORDER, f"C-{next(counter)}")
        loyalty.redeem_coupon(s, coupon.id, source, order_fen=1_000)

    outcomes = _race(server, redeem)
    assert outcomes.count("ok") == 1
    assert outcomes.count("coupon-not-redeemable") == CLIENTS - 1


def test_claims_racing_for_the_last_coupons_never_exceed_the_total(server: LiveServer) -> None:
    with server.db.writer() as s, s.begin():
        cipher = members.cipher_for(Settings())
        people = [
            members.find_or_create_member(
                s, cipher, IdentityKind.POS_CARD, f"CLAIM-{i}", via="pos"
            )[0].id
            for i in range(CLIENTS)
        ]
        template = coupons.create_template(
            s,
            code="RACE-10",
            name="race",
            valid_days=1,
            terms=CouponTerms(CouponKind.AMOUNT_OFF, 100),
            total_limit=10,
        )
    queue = iter(people)
    lock = threading.Lock()

    def claim(s: Session) -> None:
        with lock:
            member_id = next(queue)
        coupons.issue_coupon(s, template.id, member_id)

    outcomes = _race(server, claim)
    assert outcomes.count("ok") == 10
    assert outcomes.count("coupon-limit-reached") == CLIENTS - 10
    with server.db.reader() as s:
        assert (
            s.scalar(
                select(func.count()).select_from(Coupon).where(Coupon.template_id == template.id)
            )
            == 10
        )


def _coupon_for(
    server: LiveServer, card: str, *, per_member_limit: int = 1, claim_code: str | None = None
) -> tuple[str, str]:
    """A member (by POS card) holding one new coupon: (member id, coupon id)."""
    with server.db.writer() as s, s.begin():
        member = members.find_or_create_member(
            s, members.cipher_for(Settings()), IdentityKind.POS_CARD, card, via="pos"
        )[0]
        made = coupons.create_template(
            s,
            code=f"T-{card}",
            name="race",
            valid_days=1,
            terms=CouponTerms(CouponKind.AMOUNT_OFF, 100),
            rules=coupons.TemplateRules(claim_code=claim_code),
            per_member_limit=per_member_limit,
        )
        coupon = coupons.issue_coupon(s, made.id, member.id)
        return str(member.id), str(coupon.id)


def test_one_coupon_redeemed_by_every_touchpoint_at_once_over_http_is_used_once(
    server: LiveServer, touchpoints: list[dict[str, str]]
) -> None:
    member, coupon = _coupon_for(server, "RACE-HTTP")
    url = f"{server.url}/api/v1/members/{member}/coupons/{coupon}/redeem"

    def redeem(i: int) -> Callable[[httpx.Client], httpx.Response]:
        body = {"source_type": "order", "source_id": f"HTTP-{i}", "discount_fen": 100}
        return lambda c: c.post(url, json=body, headers=touchpoints[i % len(touchpoints)])

    responses = requests_at_once([redeem(i) for i in range(CLIENTS)])
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 1
    assert statuses.count(409) == CLIENTS - 1
    assert all(
        r.json()["type"].endswith("/coupon-not-redeemable")
        for r in responses
        if r.status_code == 409
    )
    with server.db.reader() as s:
        used = s.get(Coupon, uuid.UUID(coupon))
        assert used is not None and used.redeemed_source_id is not None
        winner = next(i for i, r in enumerate(responses) if r.status_code == 201)
        assert used.redeemed_source_id == f"HTTP-{winner}"


def test_checkouts_racing_to_lock_one_coupon_leave_it_with_one_of_them(
    server: LiveServer,
) -> None:
    _, coupon = _coupon_for(server, "RACE-LOCK")
    counter = itertools.count()

    def lock_then_redeem(s: Session) -> None:
        n = next(counter)
        loyalty.lock_coupon(s, uuid.UUID(coupon), f"quote:{n}")
        loyalty.redeem_coupon(
            s,
            uuid.UUID(coupon),
            loyalty.Source(SourceType.ORDER, f"L-{n}"),
            discount_fen=100,
            reference=f"quote:{n}",
        )

    outcomes = _race(server, lock_then_redeem)
    assert outcomes.count("ok") == 1
    assert outcomes.count("coupon-not-redeemable") == CLIENTS - 1


def test_one_member_claiming_from_every_touchpoint_at_once_gets_her_limit_and_no_more(
    server: LiveServer, touchpoints: list[dict[str, str]]
) -> None:
    member, _ = _coupon_for(server, "RACE-CLAIM", per_member_limit=3, claim_code="RACE3")
    url = f"{server.url}/api/v1/members/{member}/coupons/claim"
    responses = requests_at_once(
        [
            lambda c, h=touchpoints[i % len(touchpoints)]: c.post(
                url, json={"claim_code": "RACE3"}, headers=h
            )
            for i in range(CLIENTS)
        ]
    )
    statuses = [r.status_code for r in responses]
    # She already held one of the three (issued with the template): two more claims win.
    assert statuses.count(201) == 2
    assert statuses.count(409) == CLIENTS - 2
