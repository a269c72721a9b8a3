"""On PostgreSQL: a return giving points back to a member while she is being erased. Her
erasure locks her row, then her orders (it blanks their contacts); a return of her order paid
in points locks her row before the order's, in the same order, so the two queue instead of
deadlocking: the return waits for the erasure, then refunds her money and records the points
she can no longer take as forfeited."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select, text

from tests.factories import clerk_of
from tests.fulfillment.conftest import gateway as gateway  # the race gateway
from tests.fulfillment.orders_at_work import order_being_picked
from tests.races import race_database, until_another_backend_waits_for_a_lock
from zhongtai.core.audit import AuditEntry
from zhongtai.core.auth.principal import Principal
from zhongtai.core.db import Database
from zhongtai.core.settings import Settings
from zhongtai.fulfillment import pickup, tasks
from zhongtai.integrations.payments.sandbox import SandboxPaymentGateway
from zhongtai.loyalty import service as loyalty
from zhongtai.loyalty.models import SourceType
from zhongtai.members import service as members
from zhongtai.members.models import IdentityKind, MemberStatus
from zhongtai.members.pii import cipher_for
from zhongtai.orders import returns
from zhongtai.orders.kinds import FulfillmentType, OrderStatus
from zhongtai.orders.models import Order

pytestmark = pytest.mark.postgres_only
SETTINGS = Settings(secret_key="race-secret-0123456789abcdef0123456789abcdef")  # type: ignore[arg-type]
CIPHER = cipher_for(SETTINGS)
#: 10.00 of the 20.00 order paid with her points (100 a yuan).
POINTS = 1000
_phones = itertools.count(13400000001)


@pytest.fixture(scope="module")
def race_db() -> Iterator[Database]:
    with race_database("zt_erased_return", pool_size=4) as database:
        yield database


def _collected_with_points(
    db: Database, gateway: SandboxPaymentGateway
) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, Principal]:
    """A member's pickup order of 2 units at 10.00, half paid with her points, collected:
    (her, the order, its line, a clerk of its store)."""
    with db.writer() as s, s.begin():
        member, _ = members.find_or_create_member(
            s, CIPHER, IdentityKind.PHONE, str(next(_phones)), via="app"
        )
        loyalty.earn_points(s, member.id, loyalty.Source(SourceType.CAMPAIGN, "welcome"), POINTS)
    picking = order_being_picked(
        db, gateway, FulfillmentType.PICKUP, "ERASERET", member_id=member.id, points=POINTS
    )
    clerk = clerk_of(picking.store_id)
    with db.writer() as s, s.begin():
        tasks.pack_order(s, picking.order_id, providers={"sandbox": gateway})
        order = pickup.make_ready_for_pickup(s, picking.order_id, settings=SETTINGS)
        ticket = pickup.pickup_ticket(order, SETTINGS)
        assert ticket is not None
        collected = pickup.hand_over_pickup(
            s,
            clerk=clerk,
            client_ip="10.0.0.1",
            settings=SETTINGS,
            order_ref=order.number,
            code=ticket.code,
        )
        assert collected.status is OrderStatus.COMPLETED
        [line] = collected.lines
        return member.id, picking.order_id, line.id, clerk


def test_a_return_giving_her_points_back_waits_for_her_erasure_in_flight_and_forfeits_them(
    race_db: Database, gateway: SandboxPaymentGateway
) -> None:
    member_id, order_id, line_id, clerk = _collected_with_points(race_db, gateway)
    assert clerk.store_ids is not None
    [store_id] = clerk.store_ids

    def give_back() -> int:
        with race_db.writer() as s, s.begin():
            done = returns.return_goods(
                s,
                order_id,
                reference="back-in-store",
                store_id=store_id,
                lines=[returns.ReturnLine(line_id, 2)],
                reason=None,
                caller=clerk,
                providers={"sandbox": gateway},
            )
            return done.order_return.refund_total

    with race_db.writer() as erasing, erasing.begin(), ThreadPoolExecutor(1) as till:
        members.lock_member(erasing, member_id)  # her erasure's first step
        own_pid = erasing.execute(text("SELECT pg_backend_pid()")).scalar_one()
        returning = till.submit(give_back)
        until_another_backend_waits_for_a_lock(race_db, own_pid)
        # Had the return locked her order first, blanking her orders would wait for it while
        # it waits for her: a deadlock, one of the two undone.
        erasing.execute(text("SET LOCAL lock_timeout = '10s'"))
        assert members.erase_member(erasing, member_id).status is MemberStatus.ERASED
        erasing.commit()
        assert returning.result(timeout=30) == 2000

    with race_db.reader() as s:
        order = s.get(Order, order_id)
        assert order is not None and order.refunded_amount == 2000
        assert order.contact_name is None
        forfeited = s.scalars(
            select(AuditEntry.after).where(
                AuditEntry.action == "points.forfeited", AuditEntry.subject_id == str(order_id)
            )
        ).all()
        assert [entry["points"] for entry in forfeited] == [POINTS]
