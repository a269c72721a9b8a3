"""The demo chain's shopping guides: five per store with their customers, share links and WeCom
contacts, and the history's sales and commission credited exactly as the guides' services credit
them — so that a guide who logs in sees customers, attributed sales and her commission."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tests.demo.conftest import SEED_DAY, loaded_demo_database, small_chain
from zhongtai.app import create_app
from zhongtai.core.auth.models import StaffUser
from zhongtai.core.auth.roles import Role
from zhongtai.core.db import Database
from zhongtai.core.settings import Settings
from zhongtai.demo import DEMO_PASSWORD, DemoChain, build_chain, demo_credentials
from zhongtai.demo.guides import build_guide_world
from zhongtai.demo.history_loader import build_demo_history
from zhongtai.demo.orders_history import history_window
from zhongtai.demo.tour import tour_panel
from zhongtai.guides.attribution import attribute_completed_order
from zhongtai.guides.binding_rules import BindingSource
from zhongtai.guides.ledger import mature_commission
from zhongtai.guides.models import (
    CommissionEntry,
    CommissionKind,
    CommissionStatus,
    Guide,
    GuideBinding,
    GuideStatus,
    LineAttribution,
    MonthlyTarget,
    ShareLink,
    ShareVisit,
    WeComContact,
)
from zhongtai.guides.reversals import reverse_for_return
from zhongtai.members.models import ConsentChannel, ConsentRecord
from zhongtai.orders.kinds import SalesChannel
from zhongtai.orders.models import Order, OrderReturn
from zhongtai.stores.models import Location

CHAIN = small_chain()
_, HISTORY_END = history_window(SEED_DAY, 90, "Asia/Shanghai")
SECRET = "guides-demo-test-secret-0123456789abcdef"
GUIDE_LOGINS = ("guide", "guide2", "guide3", "guide4", "guide5")


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("guides")
    # Loaded with the key the app is served with: the guide's customers' phones open with it.
    with loaded_demo_database(
        directory,
        CHAIN,
        history_days=90,
        today=SEED_DAY,
        settings=Settings(secret_key=SECRET),
    ) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def db(url: str) -> Iterator[Database]:
    database = Database.connect(url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    with db.reader() as s:
        yield s


def test_every_guide_login_is_a_guide_of_her_store_with_a_level_and_a_wecom_account(
    session: Session,
) -> None:
    guides = {g.staff_id: g for g in session.scalars(select(Guide))}
    stores = {loc.code: loc.id for loc in session.scalars(select(Location))}
    logins = [s for s in CHAIN.staff if s.role is Role.GUIDE]
    assert len(logins) == len(guides) == 15
    for login in logins:
        assert login.store_code is not None
        user = session.scalar(select(StaffUser).where(StaffUser.username == login.username))
        assert user is not None
        guide = guides[user.id]
        assert guide.home_store_id == stores[login.store_code]
        assert guide.status is GuideStatus.ACTIVE
    assert {g.level for g in guides.values()} == {"junior", "senior", "star"}
    wecom = [g.wecom_userid for g in guides.values()]
    assert None not in wecom and len(set(wecom)) == len(wecom)


def test_each_member_has_at_most_one_current_guide_and_her_bindings_follow_each_other(
    session: Session,
) -> None:
    bindings: dict[uuid.UUID, list[GuideBinding]] = defaultdict(list)
    for row in session.scalars(select(GuideBinding).order_by(GuideBinding.bound_at)):
        bindings[row.member_id].append(row)
    assert len(bindings) > 100
    rebound = 0
    for rows in bindings.values():
        assert [r.ended_at for r in rows].count(None) <= 1
        for before, after in pairwise(rows):
            assert before.ended_at == after.bound_at and before.end_reason == "rebound"
            assert before.guide_id != after.guide_id
            rebound += 1
        assert all(r.protected_until >= r.bound_at for r in rows)
    assert rebound > 0, "some members moved to another guide"
    sources = Counter(rows[-1].source for rows in bindings.values())
    assert set(sources) == {
        BindingSource.IN_STORE_SALE,
        BindingSource.SHARE_LINK,
        BindingSource.WECOM,
    }


def test_every_guide_has_customers_and_most_active_members_have_a_guide(
    session: Session,
) -> None:
    current = Counter(
        session.scalars(select(GuideBinding.guide_id).where(GuideBinding.ended_at.is_(None)))
    )
    assert set(current) == set(session.scalars(select(Guide.staff_id)))
    buyers = Counter(
        m for m in session.scalars(select(Order.member_id).where(Order.member_id.is_not(None)))
    )
    busiest = [m for m, _ in buyers.most_common(len(buyers) // 3)]
    current_members = select(GuideBinding.member_id).where(GuideBinding.ended_at.is_(None))
    bound = set(session.scalars(current_members))
    assert sum(m in bound for m in busiest) > 0.8 * len(busiest)


def test_wecom_bindings_come_with_the_contact_and_the_members_wecom_consent(
    session: Session,
) -> None:
    contacts = {(c.guide_id, c.external_userid): c for c in session.scalars(select(WeComContact))}
    consented = set(
        session.scalars(
            select(ConsentRecord.member_id).where(
                ConsentRecord.channel == ConsentChannel.WECOM, ConsentRecord.granted
            )
        )
    )
    wecom = list(
        session.scalars(select(GuideBinding).where(GuideBinding.source == BindingSource.WECOM))
    )
    assert wecom
    for binding in wecom:
        assert binding.source_ref is not None
        contact = contacts[(binding.guide_id, binding.source_ref)]
        assert contact.member_id == binding.member_id and contact.added_at == binding.bound_at
        assert binding.member_id in consented
    assert any(c.member_id is None for c in contacts.values()), "contacts not known as members"


def test_share_link_orders_are_spread_over_the_guides_and_follow_a_visit_by_that_guide(
    session: Session,
) -> None:
    links = {link.id: link for link in session.scalars(select(ShareLink))}
    visits: dict[uuid.UUID | None, list[ShareVisit]] = defaultdict(list)
    for visit in session.scalars(select(ShareVisit)):
        assert visit.guide_id == links[visit.link_id].guide_id
        assert visit.sku_id == links[visit.link_id].sku_id
        visits[visit.member_id].append(visit)
    opened = Counter(v.link_id for vs in visits.values() for v in vs)
    assert all(link.opened_count == opened[link.id] for link in links.values())
    guides = {g.staff_id: g.home_store_id for g in session.scalars(select(Guide))}
    shared = list(session.scalars(select(Order).where(Order.channel == SalesChannel.GUIDE_SHARE)))
    per_store: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for order in shared:
        assert order.guide_id is not None and guides[order.guide_id] == order.store_id
        per_store[order.store_id].add(order.guide_id)
        if order.member_id is not None:
            assert any(
                v.guide_id == order.guide_id
                and order.placed_at - timedelta(days=2) <= v.opened_at <= order.placed_at
                for v in visits[order.member_id]
            ), order.number
    assert len(per_store) == 3 and all(len(ids) >= 3 for ids in per_store.values())


def test_every_credit_goes_to_an_active_guide_of_the_credited_store_for_a_good_reason(
    session: Session,
) -> None:
    guides = {g.staff_id: g for g in session.scalars(select(Guide))}
    bindings = {b.id: b for b in session.scalars(select(GuideBinding))}
    visits: dict[tuple[uuid.UUID, uuid.UUID], list[ShareVisit]] = defaultdict(list)
    for visit in session.scalars(select(ShareVisit)):
        visits[(visit.link_id, visit.member_id)].append(visit)
    orders = {o.id: o for o in session.scalars(select(Order))}
    reasons: Counter[str] = Counter()
    for credit in session.scalars(select(LineAttribution)):
        guide, order = guides[credit.guide_id], orders[credit.order_id]
        assert guide.status is GuideStatus.ACTIVE
        assert credit.credited_store_id == guide.home_store_id == order.store_id
        assert order.completed_at == credit.attributed_at
        reasons[credit.reason.value] += 1
        if credit.reason.value == "selling_guide":
            assert order.guide_id == credit.guide_id
        elif credit.reason.value == "share_link":
            assert credit.reason_ref is not None
            assert credit.member_id is not None
            opened = visits[(uuid.UUID(credit.reason_ref), credit.member_id)]
            window = order.placed_at - timedelta(days=7)
            assert any(window <= v.opened_at <= order.placed_at for v in opened), order.number
        else:  # bound before the order completed, and still hers then
            assert credit.reason_ref is not None
            binding = bindings[uuid.UUID(credit.reason_ref)]
            assert binding.guide_id == credit.guide_id and binding.member_id == order.member_id
            assert binding.bound_at <= credit.attributed_at
            assert binding.ended_at is None or credit.attributed_at < binding.ended_at
    assert set(reasons) == {"selling_guide", "share_link", "bound_guide"}


def test_commission_is_payable_once_the_return_window_closed_before_the_seed_day(
    session: Session,
) -> None:
    entries = list(session.scalars(select(CommissionEntry)))
    kinds = Counter(e.kind for e in entries)
    assert kinds[CommissionKind.EARNED] > 1000 and kinds[CommissionKind.REVERSED] > 0
    for entry in entries:
        payable = entry.payable_at <= HISTORY_END
        assert entry.status is (CommissionStatus.PAYABLE if payable else CommissionStatus.PENDING)
    statuses = Counter(e.status for e in entries)
    assert statuses[CommissionStatus.PENDING] > 0 and statuses[CommissionStatus.PAYABLE] > 0
    rules = Counter(e.rule_id for e in entries if e.kind is CommissionKind.EARNED)
    assert len(rules) == 6, "every commission rule pays on some line"


def test_each_guide_has_a_target_for_the_current_month(session: Session) -> None:
    targets = list(session.scalars(select(MonthlyTarget)))
    assert len(targets) == 15
    assert {t.month for t in targets} == {date(2026, 11, 1)}
    assert all(t.target_amount >= 100_000 and t.target_amount % 10_000 == 0 for t in targets)


def _sample(session: Session) -> list[Order]:
    """Completed orders the services would credit today as they did then: the member's guide
    has not changed since (the service reads her current binding). Some of each reason, and
    every one with a return."""
    bound_at: dict[uuid.UUID | None, list[datetime]] = defaultdict(list)
    for member_id, at in session.execute(select(GuideBinding.member_id, GuideBinding.bound_at)):
        bound_at[member_id].append(at)
    reasons: dict[uuid.UUID, set[str]] = defaultdict(set)
    for order_id, reason in session.execute(
        select(LineAttribution.order_id, LineAttribution.reason)
    ):
        reasons[order_id].add(reason.value)
    returned = set(session.scalars(select(OrderReturn.order_id)))
    picked: dict[tuple[str, ...], list[Order]] = defaultdict(list)
    for order in session.scalars(
        select(Order).where(Order.completed_at.is_not(None)).order_by(Order.id)
    ):
        completed = order.completed_at
        if completed is None or any(at > completed for at in bound_at[order.member_id]):
            continue
        kind = (*sorted(reasons[order.id]), "returned" if order.id in returned else "")
        if len(picked[kind]) < (50 if order.id in returned else 6):
            picked[kind].append(order)
    return [o for group in picked.values() for o in group]


def _ledger(session: Session, orders: list[Order]) -> tuple[dict[Any, Any], dict[Any, Any]]:
    ids = [o.id for o in orders]
    credits = {
        a.order_line_id: (
            a.guide_id,
            a.credited_store_id,
            a.member_id,
            a.reason,
            a.reason_ref,
            a.explanation,
            a.sku_id,
            a.net_amount,
            a.refunded_amount,
            a.attributed_at,
        )
        for a in session.scalars(select(LineAttribution).where(LineAttribution.order_id.in_(ids)))
    }
    entries = {
        (e.kind, e.source_ref): (
            e.guide_id,
            e.store_id,
            e.month,
            e.amount,
            e.status,
            e.payable_at,
            e.order_id,
            e.rule_id,
            e.reason,
            e.details,
        )
        for e in session.scalars(select(CommissionEntry).where(CommissionEntry.order_id.in_(ids)))
    }
    return credits, entries


def test_the_history_is_credited_exactly_as_the_attribution_service_credits_it(
    db: Database,
) -> None:
    with db.writer() as session:  # closed without a commit: the demo stays as it was loaded
        orders = _sample(session)
        reasons = {a.reason.value for a in session.scalars(select(LineAttribution))}
        loaded = _ledger(session, orders)
        assert len(orders) > 20 and len(loaded[0]) > 20
        assert any(kind is CommissionKind.REVERSED for kind, _ in loaded[1])
        assert reasons == {"selling_guide", "share_link", "bound_guide"}
        ids = [o.id for o in orders]
        session.execute(delete(CommissionEntry).where(CommissionEntry.order_id.in_(ids)))
        session.execute(delete(LineAttribution).where(LineAttribution.order_id.in_(ids)))
        events: list[tuple[Any, str, Any]] = [(o.completed_at, "completed", o) for o in orders]
        for order_return in session.scalars(
            select(OrderReturn).where(OrderReturn.order_id.in_(ids))
        ):
            events.append((order_return.occurred_at, "returned", order_return))
        # Replayed in the order they happened, the commission job running in between.
        for at, what, subject in sorted(events, key=lambda e: (e[0], e[1])):
            mature_commission(session, now=at)
            if what == "completed":
                attribute_completed_order(session, subject, at=at)
            else:
                reverse_for_return(session, subject, at=at)
        mature_commission(session, now=HISTORY_END)
        assert _ledger(session, orders) == loaded


def test_a_guide_logs_in_to_her_customers_sales_and_commission_and_her_manager_to_statements(
    url: str, db: Database
) -> None:
    settings = Settings(
        database_url=url,
        secret_key=SECRET,
        log_json=False,
        log_level="WARNING",
    )
    store = next(s for s in CHAIN.stores if s["code"] == "SH001")
    with TestClient(create_app(settings, db=db)) as client:

        def login(username: str) -> dict[str, str]:
            answer = client.post(
                "/api/v1/auth/login", json={"username": username, "password": DEMO_PASSWORD}
            )
            assert answer.status_code == 200, answer.text
            return {"Authorization": f"Bearer {answer.json()['access_token']}"}

        guide = login("guide.sh001")
        customers = client.get("/api/v1/guides/me/customers", headers=guide)
        assert customers.status_code == 200, customers.text
        cards = customers.json()["items"]
        assert cards and all(c["orders_12m"] >= 0 for c in cards)
        assert any(c["last_purchase_at"] for c in cards)
        phones = [c["phone"] for c in cards if c["phone"]]
        assert phones and all(p.startswith("199****") for p in phones)  # demo numbers, masked
        month = client.get("/api/v1/guides/me/performance?month=2026-11", headers=guide).json()
        assert month["customers"] > 0 and month["attributed_sales"] > 0
        assert month["commission"]["pending"] > 0 and month["commission"]["payable"] > 0
        assert month["guides_in_store"] == 5 and month["rank_in_store"] in range(1, 6)

        manager = login("manager.sh001")
        rows = client.get(
            f"/api/v1/commission-statements/2026-10?store_id={store['id']}", headers=manager
        )
        assert rows.status_code == 200, rows.text
        usernames = {r["username"] for r in rows.json()}
        assert usernames == {f"{g}.sh001" for g in GUIDE_LOGINS}
        assert all(r["totals"]["payable"] > 0 and r["attributed_sales"] > 0 for r in rows.json())


def _by_username(chain: DemoChain, staff_ids: dict[str, uuid.UUID]) -> dict[str, list[uuid.UUID]]:
    guides: dict[str, list[uuid.UUID]] = {}
    for person in chain.staff:
        if person.role is Role.GUIDE and person.store_code:
            guides.setdefault(person.store_code, []).append(staff_ids[person.username])
    return guides


def test_the_same_seed_and_day_give_the_same_guides_world_whatever_the_staff_ids() -> None:
    """Staff ids are made when the staff are loaded; everything else comes from the seed."""
    ranges = {s["id"]: [sku["id"] for sku in CHAIN.catalog.skus] for s in CHAIN.stores}
    usernames = [s.username for s in CHAIN.staff]

    def world(staff_ids: dict[str, uuid.UUID]) -> str:
        guides = _by_username(CHAIN, staff_ids)
        history = build_demo_history(CHAIN, ranges=ranges, guides=guides, today=SEED_DAY, days=21)
        built = build_guide_world(CHAIN, guides, history)
        assert built.attributions and built.bindings and built.visits
        names = {v: k for k, v in staff_ids.items()}
        # The guide named on an order belongs to the world too: it is decided with the links.
        rows = [vars(built), [o["guide_id"] for o in history.orders.orders]]
        text = repr(rows)
        for staff_id, name in names.items():
            text = text.replace(repr(staff_id), name)
        return text

    first = world({u: uuid.uuid4() for u in usernames})
    again = world({u: uuid.uuid4() for u in usernames})
    assert first == again
    assert "guide3.sh002" in first


def _tour(chain: DemoChain) -> str:
    console = Console(record=True, width=200)
    console.print(tour_panel(demo_credentials(chain), "http://127.0.0.1:8000", Path("c.json")))
    return console.export_text()


def test_the_tour_says_how_a_guide_sees_her_customers_and_performance() -> None:
    shown = _tour(CHAIN)
    assert "guide.sh001 / zhongtai-demo" in shown
    assert "/api/v1/guides/me/customers" in shown and "/api/v1/guides/me/performance" in shown
    assert "Guide's phone" not in _tour(build_chain(42, stores=2, skus=10, staff_per_store=3))
