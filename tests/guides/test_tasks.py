"""The guide's daily task list on the database: generated once per occurrence for her current
customers, expired when no longer due or when the customer moves to another guide, closed by
her alone, and counted for her performance view."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.catalog.conftest import CatalogFactory
from tests.factories import Factory
from tests.members.conftest import MakeMember, cipher, make_member  # noqa: F401 (fixtures)
from tests.orders.conftest import (  # noqa: F401 (fixtures)
    Chain,
    chain,
    ok,
    pay_by_wallet,
    place,
    quote,
    stock,
    store_step,
)
from tests.statements import statements_sent
from zhongtai.catalog.models import Category, Product, Sku
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Channel, Permission, Role
from zhongtai.core.clock import business_day, utcnow
from zhongtai.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from zhongtai.fulfillment.promise_clock import flag_missed_promises
from zhongtai.guides import binding, roster
from zhongtai.guides.binding_rules import BindingSource
from zhongtai.guides.task_kinds import TaskKind, TaskPolicy
from zhongtai.guides.task_models import GuideTask
from zhongtai.guides.task_states import TaskOutcome, TaskStatus
from zhongtai.guides.tasks import close_task, generate_tasks, task_counts, tasks_for_guide
from zhongtai.integrations.providers import Providers
from zhongtai.loyalty.accounts import Source
from zhongtai.loyalty.ledger import earn_points
from zhongtai.loyalty.models import SourceType
from zhongtai.members import service as members
from zhongtai.members.models import ConsentChannel, Member
from zhongtai.orders import pos, returns
from zhongtai.orders.kinds import TenderType
from zhongtai.orders.models import Order
from zhongtai.orders.tender_rules import Tender
from zhongtai.stores.models import Location

TZ = "Asia/Shanghai"
_seq = itertools.count(1)


@dataclass
class Shop:
    """One store with its till, its catalogue and helpers that go through the real services."""

    session: Session
    factory: Factory
    store: Location
    catalog: CatalogFactory
    make_member: MakeMember
    now: datetime

    @property
    def today(self) -> date:
        return business_day(self.now, TZ)

    @property
    def till(self) -> Principal:
        return Principal(
            kind="api_key",
            id=uuid.UUID(int=77),
            name="till",
            permissions=frozenset(Permission),
            store_ids=frozenset({self.store.id}),
            channel=Channel.POS,
            terminal_id="T1",
        )

    def guide(self, store: Location | None = None) -> uuid.UUID:
        staff = self.factory.staff(Role.GUIDE, [store or self.store])
        return roster.enroll_guide(self.session, staff.id).staff_id

    def customer(
        self,
        guide_id: uuid.UUID,
        *,
        birthday: date | None = None,
        preferences: dict[str, Any] | None = None,
    ) -> Member:
        member = self.make_member(birthday=birthday)
        if preferences:
            members.update_profile(self.session, member.id, preferences=preferences)
        binding.touch_member(
            self.session,
            member.id,
            guide_id,
            BindingSource.IN_STORE_SALE,
            at=self.now - timedelta(days=200),
        )
        return member

    def sku(self, category: Category | None = None, size: str | None = None) -> Sku:
        product = self.catalog.product(category=category, skus=[self.catalog.new_sku(size=size)])
        return product.skus[0]

    def sale(self, member: Member, sku: Sku, *, days_ago: float) -> Order:
        at = self.now - timedelta(days=days_ago)
        result = pos.record_till_sale(
            self.session,
            pos.PosSale(
                client_sale_id=uuid.uuid4(),
                store_id=self.store.id,
                terminal_code="T1",
                lines=[pos.PosLine(sku.id, 1, unit_price=1000)],
                tenders=[Tender(TenderType.CASH, 1000)],
                occurred_at=at,
                member_id=member.id,
            ),
            caller=self.till,
            now=at,
        )
        assert result.order is not None
        return result.order

    def generate(self, days_later: int = 0, **kw: Any) -> Any:
        now = self.now + timedelta(days=days_later)
        return generate_tasks(self.session, today=business_day(now, TZ), now=now, **kw)

    def open_tasks(self, guide_id: uuid.UUID) -> list[tuple[str, str]]:
        return [
            (t.kind.value, str(t.member_id))
            for t in tasks_for_guide(self.session, guide_id, status=TaskStatus.OPEN)
        ]


@pytest.fixture
def shop(session: Session, factory: Factory, make_member: MakeMember) -> Shop:  # noqa: F811
    store = factory.location()
    return Shop(session, factory, store, CatalogFactory(session, factory), make_member, utcnow())


def _age_products(session: Session, days: int) -> None:
    """Make every product in the catalogue old news (no longer a new arrival)."""
    session.execute(
        update(Product).values(created_at=utcnow() - timedelta(days=days)),
        execution_options={"synchronize_session": False},
    )


def _birthday_in(days: int, today: date) -> date:
    day = today + timedelta(days=days)
    return date(1992, day.month, day.day)  # a leap year: 29 February is a valid birthday


def _task(session: Session, guide_id: uuid.UUID, kind: TaskKind) -> GuideTask:
    return session.scalars(
        select(GuideTask).where(GuideTask.guide_id == guide_id, GuideTask.kind == kind)
    ).one()


# --- generation ------------------------------------------------------------------------------


def test_the_morning_run_lists_each_due_task_once_and_a_second_run_adds_nothing(
    shop: Shop, session: Session, providers: Providers
) -> None:
    guide = shop.guide()
    tops = shop.catalog.category()
    old_tee, rice = shop.sku(tops), shop.sku()
    _age_products(session, 100)
    birthday = shop.customer(guide, birthday=_birthday_in(3, shop.today))
    quiet = shop.customer(guide)
    shop.sale(quiet, rice, days_ago=75)
    saver = shop.customer(guide)
    earn_points(
        session,
        saver.id,
        Source(SourceType.CAMPAIGN, f"welcome-{next(_seq)}"),
        800,
        at=shop.now - timedelta(days=355),
    )
    returner = shop.customer(guide, preferences={"top_size": "M"})
    order = shop.sale(returner, old_tee, days_ago=10)
    returns.return_goods(
        session,
        order.id,
        reference=f"R-{next(_seq)}",
        store_id=shop.store.id,
        lines=[returns.ReturnLine(order.lines[0].id, 1)],
        reason="too small",
        caller=shop.till,
        providers=providers.payments,
    )
    new_tee = shop.catalog.product(
        category=tops,
        skus=[shop.catalog.new_sku(size=s) for s in ("S", "M", "L")],
        name="新款 T恤",
    )
    shop.customer(guide)  # nothing is due for her

    summary = shop.generate()

    assert summary.members == 5 and summary.guides == 1
    assert dict(summary.created) == {
        TaskKind.BIRTHDAY: 1,
        TaskKind.DORMANT: 1,
        TaskKind.POINTS_EXPIRING: 1,
        TaskKind.AFTER_SALE: 1,
        TaskKind.NEW_ARRIVALS: 1,
    }
    assert sorted(shop.open_tasks(guide)) == sorted(
        [
            ("after_sale", str(returner.id)),
            ("points_expiring", str(saver.id)),
            ("birthday", str(birthday.id)),
            ("dormant", str(quiet.id)),
            ("new_arrivals", str(returner.id)),
        ]
    )
    listed = tasks_for_guide(session, guide)
    assert listed[0].kind is TaskKind.AFTER_SALE  # what she went through comes first
    assert "too small" in listed[0].explanation
    points = _task(session, guide, TaskKind.POINTS_EXPIRING)
    assert points.details["points"] == 800 and "800 of her points" in points.explanation
    arrivals = _task(session, guide, TaskKind.NEW_ARRIVALS)
    [suggested] = arrivals.details["skus"]
    assert suggested["product_id"] == str(new_tee.id)
    assert (suggested["size"], suggested["in_her_size"]) == ("M", True)
    assert all(t.due_on == shop.today and t.store_id == shop.store.id for t in listed)

    again = shop.generate()
    assert again.created_total == 0 and again.expired == 0
    assert len(tasks_for_guide(session, guide)) == 5


def test_a_task_she_closed_is_not_given_again_the_next_day_for_the_same_occurrence(
    shop: Shop, session: Session
) -> None:
    guide = shop.guide()
    member = shop.customer(guide, birthday=_birthday_in(5, shop.today))
    shop.generate()
    task = _task(session, guide, TaskKind.BIRTHDAY)
    close_task(session, task.id, guide, outcome="done", note="sent a card", at=shop.now)

    for day in range(1, 6):
        assert shop.generate(days_later=day).created_total == 0
    [only] = tasks_for_guide(session, guide)
    assert (only.id, only.status, only.outcome_note) == (task.id, TaskStatus.DONE, "sent a card")
    assert only.member_id == member.id


def test_an_open_task_whose_occasion_passed_expires_with_the_reason(
    shop: Shop, session: Session
) -> None:
    guide = shop.guide()
    shop.customer(guide, birthday=_birthday_in(1, shop.today))
    shop.generate()
    summary = shop.generate(days_later=2)
    assert summary.expired == 1
    task = _task(session, guide, TaskKind.BIRTHDAY)
    assert task.status is TaskStatus.EXPIRED
    assert task.outcome_note == "The birthday has passed."
    assert task.closed_at is not None and task.closed_by is None


def test_buying_again_ends_the_dormant_task(shop: Shop, session: Session) -> None:
    guide = shop.guide()
    member = shop.customer(guide)
    sku = shop.sku()
    _age_products(session, 100)
    shop.sale(member, sku, days_ago=61)
    shop.generate()
    assert shop.open_tasks(guide) == [("dormant", str(member.id))]
    shop.sale(member, sku, days_ago=0)
    summary = shop.generate()
    assert summary.expired == 1 and summary.created_total == 0
    assert _task(session, guide, TaskKind.DORMANT).outcome_note == "She has bought again."


def test_withdrawing_her_wecom_consent_stops_marketing_but_not_service_tasks(
    shop: Shop, session: Session, providers: Providers
) -> None:
    guide = shop.guide()
    member = shop.customer(guide, birthday=_birthday_in(2, shop.today))
    earn_points(
        session,
        member.id,
        Source(SourceType.CAMPAIGN, f"gift-{next(_seq)}"),
        100,
        at=shop.now - timedelta(days=360),
    )
    shop.generate()
    assert {k for k, _ in shop.open_tasks(guide)} == {"birthday", "points_expiring"}
    members.set_consent(session, member.id, ConsentChannel.WECOM, granted=False, source="app")
    shop.generate()
    assert {k for k, _ in shop.open_tasks(guide)} == {"points_expiring"}
    birthday = _task(session, guide, TaskKind.BIRTHDAY)
    assert birthday.status is TaskStatus.EXPIRED
    assert birthday.outcome_note == "She has not consented to marketing messages."


def test_only_active_guides_of_the_store_asked_for_get_tasks(shop: Shop, session: Session) -> None:
    here = shop.guide()
    elsewhere_store = shop.factory.location()
    elsewhere = shop.guide(elsewhere_store)
    soon = _birthday_in(1, shop.today)
    mine = shop.customer(here, birthday=soon)
    theirs = shop.customer(elsewhere, birthday=soon)

    summary = shop.generate(store_id=shop.store.id)
    assert (summary.guides, summary.members) == (1, 1)
    assert shop.open_tasks(here) == [("birthday", str(mine.id))]
    assert shop.open_tasks(elsewhere) == []

    shop.generate(store_id=elsewhere_store.id)
    assert shop.open_tasks(elsewhere) == [("birthday", str(theirs.id))]
    assert shop.open_tasks(here) == [("birthday", str(mine.id))]  # untouched by their run


def test_a_handed_over_customers_open_tasks_move_to_her_new_guide(
    shop: Shop, session: Session
) -> None:
    leaving, colleague = shop.guide(), shop.guide()
    member = shop.customer(leaving, birthday=_birthday_in(4, shop.today))
    greeted = shop.customer(leaving, birthday=_birthday_in(4, shop.today))
    shop.generate()
    done = session.scalars(
        select(GuideTask).where(GuideTask.guide_id == leaving, GuideTask.member_id == greeted.id)
    ).one()
    close_task(session, done.id, leaving, outcome=TaskOutcome.DONE, note=None, at=shop.now)

    roster.guide_leaves(session, leaving, at=shop.now + timedelta(hours=1), successor_id=colleague)
    summary = shop.generate(days_later=1)

    old = session.scalars(
        select(GuideTask).where(GuideTask.guide_id == leaving, GuideTask.member_id == member.id)
    ).one()
    assert old.status is TaskStatus.EXPIRED
    assert old.outcome_note == "She is no longer this guide's customer."
    # Her birthday greeting was already sent by the old guide: nobody is asked to send another.
    assert shop.open_tasks(colleague) == [("birthday", str(member.id))]
    assert summary.created_total == 1 and summary.expired == 1


def test_a_customer_handed_back_gets_her_expired_task_reopened_on_the_first_guides_list(
    shop: Shop, session: Session
) -> None:
    first, second = shop.guide(), shop.guide()
    member = shop.customer(first, birthday=_birthday_in(5, shop.today))
    shop.generate()
    binding.reassign_customers(session, [member.id], second, at=shop.now)
    shop.generate()
    assert shop.open_tasks(first) == [] and shop.open_tasks(second) == [
        ("birthday", str(member.id))
    ]
    binding.reassign_customers(session, [member.id], first, at=shop.now + timedelta(hours=2))
    summary = shop.generate(days_later=1)
    assert summary.reopened == 1 and summary.created_total == 0
    assert shop.open_tasks(first) == [("birthday", str(member.id))]
    assert shop.open_tasks(second) == []
    reopened = _task(session, first, TaskKind.BIRTHDAY)
    assert (reopened.closed_at, reopened.due_on) == (None, shop.today + timedelta(days=1))


def test_a_merged_members_purchases_count_in_the_survivors_history(
    shop: Shop,
    session: Session,
    cipher: Any,  # noqa: F811
) -> None:
    guide = shop.guide()
    survivor = shop.customer(guide)
    duplicate = shop.make_member()
    sku = shop.sku()
    shop.sale(survivor, sku, days_ago=90)
    shop.sale(duplicate, sku, days_ago=5)
    members.merge_members(session, survivor.id, duplicate.id)
    _age_products(session, 100)
    assert shop.generate().created_total == 0  # she bought 5 days ago, as her other record


def test_generation_reads_in_the_same_few_statements_for_2_or_12_customers(
    shop: Shop, session: Session
) -> None:
    def statements_for(customers: int) -> int:
        guide = shop.guide()
        for _ in range(customers):
            shop.customer(guide, birthday=_birthday_in(2, shop.today))
        with _counting(session) as seen:
            shop.generate(store_id=shop.store.id)
        return len(seen)

    assert statements_for(2) == statements_for(12)


@contextmanager
def _counting(session: Session) -> Iterator[list[str]]:
    with statements_sent(session.connection()) as seen:
        yield seen


def _a_customers_paid_pickup(
    client: TestClient,
    chain: Chain,  # noqa: F811
    providers: Providers,
    session: Session,
    factory: Factory,
    make_member: MakeMember,  # noqa: F811
) -> tuple[Shop, uuid.UUID, Any]:
    """A guide of the chain's store, a customer of hers, and a pickup she placed and paid."""
    shop = Shop(
        session, factory, chain.store, CatalogFactory(session, factory), make_member, utcnow()
    )
    guide = shop.guide()
    member = shop.customer(guide)
    session.commit()
    q = quote(
        client,
        chain.app,
        {
            "fulfillment_type": "pickup",
            "store_id": str(chain.store.id),
            "member_id": str(member.id),
            "lines": chain.basket(1),
        },
    )
    order = place(client, chain.app, q["id"], contact_name="王女士", contact_phone="13812345678")
    pay_by_wallet(client, providers, chain.app, order["id"])
    return shop, guide, order


def test_a_pickup_waiting_over_a_day_is_a_task_until_she_collects_it(
    client: TestClient,
    chain: Chain,  # noqa: F811
    providers: Providers,
    session: Session,
    factory: Factory,
    make_member: MakeMember,  # noqa: F811
) -> None:
    shop, guide, order = _a_customers_paid_pickup(
        client, chain, providers, session, factory, make_member
    )
    for step in ("accept", "start-picking"):
        store_step(client, chain.clerk, order["id"], step)
    store_step(client, chain.clerk, order["id"], "pack", {"packages": 1})
    store_step(client, chain.clerk, order["id"], "ready")
    _age_products(session, 100)

    shop.now = utcnow() + timedelta(hours=20)
    assert shop.generate().created_total == 0
    shop.now = utcnow() + timedelta(hours=25)
    assert shop.generate().created == {TaskKind.PICKUP_WAITING: 1}
    task = _task(session, guide, TaskKind.PICKUP_WAITING)
    assert task.priority == 1 and order["number"] in task.explanation
    session.commit()

    code = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))["pickup"][
        "code"
    ]
    ok(
        client.post(
            "/api/v1/fulfillment/pickups",
            json={"order": order["number"], "code": code},
            headers=chain.clerk,
        )
    )
    assert shop.generate().expired == 1
    session.refresh(task)
    assert task.status is TaskStatus.EXPIRED
    assert task.outcome_note == "The order is no longer waiting for pickup."


def test_an_order_of_hers_that_missed_its_promise_is_a_task_to_say_sorry(
    client: TestClient,
    chain: Chain,  # noqa: F811
    providers: Providers,
    session: Session,
    factory: Factory,
    make_member: MakeMember,  # noqa: F811
) -> None:
    shop, guide, order = _a_customers_paid_pickup(
        client, chain, providers, session, factory, make_member
    )
    promised = datetime.fromisoformat(order["promised_by"])
    assert flag_missed_promises(session, now=promised + timedelta(minutes=1)) == 1
    _age_products(session, 100)

    shop.now = promised + timedelta(hours=1)
    assert shop.generate().created == {TaskKind.LATE_ORDER: 1}
    task = _task(session, guide, TaskKind.LATE_ORDER)
    assert task.explanation == (
        f"Order {order['number']} missed the time she was promised: say sorry; the store is "
        "still getting it ready."
    )
    session.commit()

    shop.now = promised + timedelta(days=3)  # past the policy's two days
    assert shop.generate().expired == 1
    session.refresh(task)
    assert task.status is TaskStatus.EXPIRED


# --- closing and counting --------------------------------------------------------------------


@pytest.fixture
def birthday_task(shop: Shop, session: Session) -> tuple[uuid.UUID, GuideTask]:
    guide = shop.guide()
    shop.customer(guide, birthday=_birthday_in(0, shop.today))
    shop.generate()
    return guide, _task(session, guide, TaskKind.BIRTHDAY)


def test_her_guide_closes_a_task_with_a_note_and_a_retry_changes_nothing(
    shop: Shop, session: Session, birthday_task: tuple[uuid.UUID, GuideTask]
) -> None:
    guide, task = birthday_task
    closed = close_task(session, task.id, guide, outcome="done", note="  called her ", at=shop.now)
    assert (closed.status, closed.outcome_note, closed.closed_at) == (
        TaskStatus.DONE,
        "called her",
        shop.now,
    )
    later = shop.now + timedelta(minutes=5)
    again = close_task(session, task.id, guide, outcome="done", note="other", at=later)
    assert (again.outcome_note, again.closed_at) == ("called her", shop.now)


def test_closing_a_done_task_as_skipped_is_a_conflict(
    shop: Shop, session: Session, birthday_task: tuple[uuid.UUID, GuideTask]
) -> None:
    guide, task = birthday_task
    close_task(session, task.id, guide, outcome="done", note=None, at=shop.now)
    with pytest.raises(Conflict, match="already done"):
        close_task(session, task.id, guide, outcome="skipped", note=None, at=shop.now)


def test_another_guide_may_not_close_her_task(
    shop: Shop, session: Session, birthday_task: tuple[uuid.UUID, GuideTask]
) -> None:
    _, task = birthday_task
    with pytest.raises(Forbidden):
        close_task(session, task.id, shop.guide(), outcome="done", note=None, at=shop.now)
    session.refresh(task)
    assert task.status is TaskStatus.OPEN


def test_an_expired_task_cannot_be_closed(
    shop: Shop, session: Session, birthday_task: tuple[uuid.UUID, GuideTask]
) -> None:
    guide, task = birthday_task
    shop.generate(days_later=1)
    with pytest.raises(Conflict, match="already expired"):
        close_task(session, task.id, guide, outcome="done", note=None, at=shop.now)


def test_closing_needs_a_known_task_and_outcome(
    shop: Shop, session: Session, birthday_task: tuple[uuid.UUID, GuideTask]
) -> None:
    guide, task = birthday_task
    with pytest.raises(NotFound):
        close_task(session, uuid.uuid4(), guide, outcome="done", note=None, at=shop.now)
    with pytest.raises(InvalidInput, match="outcome"):
        close_task(session, task.id, guide, outcome="finished", note=None, at=shop.now)
    with pytest.raises(InvalidInput, match="note"):
        close_task(session, task.id, guide, outcome="done", note="x" * 501, at=shop.now)


def test_her_counts_show_what_became_of_the_tasks_since_a_day(shop: Shop, session: Session) -> None:
    guide = shop.guide()
    for days in (1, 2, 3):
        shop.customer(guide, birthday=_birthday_in(days, shop.today))
    shop.generate()
    first, second, _ = tasks_for_guide(session, guide)
    close_task(session, first.id, guide, outcome="done", note=None, at=shop.now)
    close_task(session, second.id, guide, outcome="skipped", note="on holiday", at=shop.now)

    counts = task_counts(session, guide, shop.today)
    assert (counts.done, counts.skipped, counts.open, counts.expired) == (1, 1, 1, 0)
    assert counts.total == 3
    assert task_counts(session, guide, shop.today + timedelta(days=1)).total == 0


def test_her_list_filters_by_status_and_day(shop: Shop, session: Session) -> None:
    guide = shop.guide()
    shop.customer(guide, birthday=_birthday_in(1, shop.today))
    shop.generate()
    shop.customer(guide, birthday=_birthday_in(3, shop.today))
    shop.generate(days_later=1)
    tomorrow = shop.today + timedelta(days=1)
    assert [t.due_on for t in tasks_for_guide(session, guide, day=tomorrow)] == [tomorrow]
    assert len(tasks_for_guide(session, guide, status=TaskStatus.OPEN)) == 2
    assert tasks_for_guide(session, guide, status=TaskStatus.DONE) == []


def test_a_stricter_policy_is_honoured(shop: Shop, session: Session) -> None:
    guide = shop.guide()
    shop.customer(guide, birthday=_birthday_in(3, shop.today))
    assert shop.generate(policy=TaskPolicy(birthday_within_days=2)).created_total == 0
    assert shop.generate(policy=TaskPolicy(birthday_within_days=3)).created_total == 1
