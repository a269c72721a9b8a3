"""The guides API: who may call what, and bad input answered clearly with nothing changed."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.guides.conftest import EnrollGuide
from tests.members.conftest import MakeMember
from tests.orders.conftest import Chain, ok
from zhongtai.core.audit import AuditEntry
from zhongtai.core.auth.roles import Role
from zhongtai.core.clock import utcnow
from zhongtai.core.settings import Settings
from zhongtai.guides import binding, commission, share_links
from zhongtai.guides.binding_rules import BindingSource
from zhongtai.guides.commission_rules import CommissionBasis
from zhongtai.guides.models import Guide, GuideBinding, ShareVisit


def test_only_a_guide_role_staff_user_can_be_enrolled_and_the_field_is_named(
    client: TestClient, chain: Chain, session: Session
) -> None:
    clerk = chain.factory.staff(Role.STORE_STAFF, [chain.store])
    session.commit()
    answer = client.post(
        "/api/v1/guides",
        json={"staff_id": str(clerk.id), "home_store_id": str(chain.store.id)},
        headers=chain.hq,
    )
    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        {"field": "staff_id", "message": "the staff user's role is store_staff, not guide"}
    ]
    assert session.scalar(select(func.count()).select_from(Guide)) == 0


def test_a_manager_enrolls_a_guide_of_her_store_but_not_of_another(
    client: TestClient, chain: Chain, session: Session
) -> None:
    other_store = chain.factory.location()
    here = chain.factory.staff(Role.GUIDE, [chain.store])
    there = chain.factory.staff(Role.GUIDE, [other_store])
    session.commit()
    manager = chain.factory.staff_headers(Role.STORE_MANAGER, [chain.store])
    enrolled = ok(
        client.post("/api/v1/guides", json={"staff_id": str(here.id)}, headers=manager), 201
    )
    assert enrolled["home_store_id"] == str(chain.store.id) and enrolled["status"] == "active"
    refused = client.post("/api/v1/guides", json={"staff_id": str(there.id)}, headers=manager)
    assert refused.status_code == 403
    assert session.get(Guide, there.id) is None


def test_a_guide_sees_only_her_own_customers_and_no_manager_views(
    client: TestClient,
    chain: Chain,
    enroll_guide: EnrollGuide,
    make_member: MakeMember,
    session: Session,
) -> None:
    alice, betty = enroll_guide(chain.store), enroll_guide(chain.store)
    hers = make_member(name="张三")
    binding.touch_member(session, hers.id, betty.id, BindingSource.WECOM, at=utcnow())
    session.commit()
    refused = client.get(f"/api/v1/guides/me/customers/{hers.id}", headers=alice.headers)
    assert refused.status_code == 403
    summary = ok(client.get(f"/api/v1/guides/me/customers/{hers.id}", headers=betty.headers))
    assert summary["customer"]["name"] == "张三" and "*" in summary["customer"]["phone"]
    for path in (
        f"/api/v1/guides/{betty.id}/statements/{utcnow():%Y-%m}",
        f"/api/v1/commission-statements/{utcnow():%Y-%m}?store_id={chain.store.id}",
        f"/api/v1/stores/{chain.store.id}/unbound-members",
    ):
        assert client.get(path, headers=alice.headers).status_code == 403


def test_a_tampered_share_token_is_refused_and_an_expired_one_answers_410(
    client: TestClient,
    chain: Chain,
    enroll_guide: EnrollGuide,
    make_member: MakeMember,
    session: Session,
    settings: Settings,
) -> None:
    guide = enroll_guide(chain.store)
    member = make_member()
    old = share_links.create_share_link(
        session, settings, guide.id, at=utcnow() - timedelta(days=3), valid_days=2
    )
    session.commit()
    body = {"member_id": str(member.id), "channel": "app"}
    expired = client.post(
        "/api/v1/share-links/open", json={**body, "token": old.token}, headers=chain.app
    )
    assert expired.status_code == 410
    assert expired.json()["type"].endswith("/share-link-expired")
    forged = old.token[:-4] + ("AAAA" if not old.token.endswith("AAAA") else "BBBB")
    tampered = client.post(
        "/api/v1/share-links/open", json={**body, "token": forged}, headers=chain.app
    )
    assert tampered.status_code == 422
    assert tampered.json()["type"].endswith("/share-link-invalid")
    assert session.scalar(select(func.count()).select_from(ShareVisit)) == 0
    assert session.scalar(select(func.count()).select_from(GuideBinding)) == 0
    not_a_channel = client.post(
        "/api/v1/share-links/open", json={**body, "token": old.token}, headers=guide.headers
    )
    assert not_a_channel.status_code == 403


def test_a_coupon_link_gives_the_coupon_once_per_member(
    client: TestClient,
    chain: Chain,
    enroll_guide: EnrollGuide,
    make_member: MakeMember,
    session: Session,
) -> None:
    guide = enroll_guide(chain.store)
    template = ok(
        client.post(
            "/api/v1/coupon-templates",
            json={
                "code": "GUIDE10",
                "name": "满100减10",
                "kind": "amount_off",
                "value": 1000,
                "threshold_fen": 10000,
                "valid_days": 30,
                "per_member_limit": 1,
            },
            headers=chain.hq,
        ),
        201,
    )
    link = ok(
        client.post(
            "/api/v1/guides/me/share-links",
            json={"coupon_template_id": template["id"]},
            headers=guide.headers,
        ),
        201,
    )
    member = make_member()
    session.commit()
    body = {"token": link["token"], "member_id": str(member.id), "channel": "app"}
    first = ok(client.post("/api/v1/share-links/open", json=body, headers=chain.app))
    second = ok(client.post("/api/v1/share-links/open", json=body, headers=chain.app))
    assert (first["coupon"], second["coupon"]) == ("issued", "limit_reached")
    assert first["coupon_id"] is not None and second["coupon_id"] is None


def test_bad_months_and_rules_are_refused_with_the_field_named(
    client: TestClient, chain: Chain, enroll_guide: EnrollGuide
) -> None:
    guide = enroll_guide(chain.store)
    month = client.get("/api/v1/guides/me/statements/2026-13", headers=guide.headers)
    assert month.status_code == 422 and month.json()["errors"][0]["field"] == "month"
    rule = client.post(
        "/api/v1/commission-rules",
        json={"name": "Nothing", "basis": "per_item", "amount_per_item": 0},
        headers=chain.hq,
    )
    assert rule.status_code == 422
    assert rule.json()["errors"][0]["field"] == "amount_per_item"
    manager = chain.factory.staff_headers(Role.STORE_MANAGER, [chain.store])
    program = client.put("/api/v1/guide-program", json={"protection_days": 10}, headers=manager)
    assert program.status_code == 403


def test_hq_changes_the_programme_and_the_change_is_audited(
    client: TestClient, chain: Chain, session: Session
) -> None:
    changed = ok(
        client.put(
            "/api/v1/guide-program",
            json={"binding_rule": "first_touch", "bound_guide_earns_other_stores": True},
            headers=chain.hq,
        )
    )
    assert changed["binding_rule"] == "first_touch"
    assert changed["bound_guide_earns_other_stores"] is True
    assert changed["protection_days"] == 30  # untouched fields keep their value
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "guide_program.changed")
    ).one()
    assert entry.before["binding_rule"] == "last_touch"
    assert entry.after["binding_rule"] == "first_touch"
    bad = client.put("/api/v1/guide-program", json={"share_window_days": 400}, headers=chain.hq)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "share_window_days"


def test_the_payroll_export_has_one_line_per_guide_with_payable_and_pending(
    client: TestClient, chain: Chain, enroll_guide: EnrollGuide, session: Session
) -> None:
    guide = enroll_guide(chain.store)
    commission.create_rule(session, name="All", basis=CommissionBasis.PERCENT, rate_bp=100)
    month = utcnow().date().replace(day=1)
    commission.adjust_commission(
        session,
        guide.id,
        amount=1234,
        reason="Window display bonus",
        month=month,
        reference="r1",
        at=utcnow(),
    )
    session.commit()
    manager = chain.factory.staff_headers(Role.STORE_MANAGER, [chain.store])
    csv = client.get(
        f"/api/v1/commission-statements/{month:%Y-%m}/payroll.csv?store_id={chain.store.id}",
        headers=manager,
    )
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    header, line = csv.text.strip().splitlines()
    assert header.split(",")[-2:] == ["payable_fen", "pending_fen"]
    assert line.split(",")[2] == str(guide.id) and line.split(",")[-2:] == ["1234", "0"]
    no_store = client.get(f"/api/v1/commission-statements/{month:%Y-%m}", headers=manager)
    assert no_store.status_code == 422


def test_a_guide_sees_her_morning_tasks_and_marks_one_done(
    client: TestClient,
    chain: Chain,
    enroll_guide: EnrollGuide,
    make_member: MakeMember,
    session: Session,
) -> None:
    from zhongtai.guides.tasks import generate_tasks

    guide = enroll_guide(chain.store)
    now = utcnow()
    soon = now.date() + timedelta(days=3)
    born = 1992 if (soon.month, soon.day) == (2, 29) else 1990  # a leap year for 29 Feb
    member = make_member(name="王五", birthday=soon.replace(year=born))
    binding.touch_member(session, member.id, guide.id, BindingSource.WECOM, at=now)
    generate_tasks(session, today=now.date(), now=now)
    session.commit()
    [task] = ok(client.get("/api/v1/guides/me/tasks?status=open", headers=guide.headers))
    assert (task["kind"], task["member_id"]) == ("birthday", str(member.id))
    done = ok(
        client.post(
            f"/api/v1/guides/me/tasks/{task['id']}/close",
            json={"outcome": "done", "note": "Sent a birthday coupon on WeCom"},
            headers=guide.headers,
        )
    )
    assert done["status"] == "done" and done["outcome_note"].startswith("Sent")
    assert ok(client.get("/api/v1/guides/me/tasks?status=open", headers=guide.headers)) == []
    other = enroll_guide(chain.store)
    stranger = client.post(
        f"/api/v1/guides/me/tasks/{task['id']}/close",
        json={"outcome": "skipped"},
        headers=other.headers,
    )
    assert stranger.status_code == 403
