"""On PostgreSQL, clients ending the same price override at once: one ends it, the others get
the answer a DELETE after it gets (409 already ended, 404 once withdrawn), and the audit log
holds one entry."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, text

from tests.catalog.conftest import HQ
from tests.live_server import LiveServer
from tests.races import (
    MANY_CONNECTIONS,
    hq_admin_headers,
    race_server,
    requests_at_once,
    until_another_backend_waits_for_a_lock,
)
from zhongtai.catalog import service
from zhongtai.catalog.models import PriceOverride, ProductKind, SaleUnit
from zhongtai.catalog.service import NewSku
from zhongtai.core.audit import AuditEntry
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, NotFound

pytestmark = MANY_CONNECTIONS
CLIENTS = 16


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with race_server("zt_price_end") as srv:
        yield srv


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> dict[str, str]:
    return hq_admin_headers(server.db, "price-admin")


def _override(server: LiveServer, valid_from: datetime) -> uuid.UUID:
    """A fresh SKU with one chain-wide override of 700 fen from ``valid_from``."""
    tag = uuid.uuid4().hex[:8]
    with server.db.writer() as s, s.begin():
        category = service.create_category(s, code=f"c-{tag}", name="race")
        product = service.create_product(
            s,
            code=f"P-{tag}",
            name="race",
            category_id=category.id,
            kind=ProductKind.STANDARD,
            unit=SaleUnit.PIECE,
            currency="CNY",
            skus=[NewSku(code=f"SKU-{tag}", name="x", base_price=1000)],
        )
        override = service.add_price_override(
            s, product.skus[0].id, caller=HQ, price=700, valid_from=valid_from
        )
        return override.id


def _audited(server: LiveServer, override_id: uuid.UUID) -> list[str]:
    with server.db.reader() as s:
        return list(
            s.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.subject_id == str(override_id))
                .order_by(AuditEntry.at)
            )
        )


def _delete_at_once(
    server: LiveServer, admin: dict[str, str], override_id: uuid.UUID
) -> list[httpx.Response]:
    url = f"{server.url}/api/v1/catalog/prices/{override_id}"
    return requests_at_once([lambda c: c.delete(url, headers=admin)] * CLIENTS)


def test_sixteen_clients_ending_an_active_override_one_ends_it_the_rest_get_409(
    server: LiveServer, admin: dict[str, str]
) -> None:
    override_id = _override(server, utcnow() - timedelta(days=1))
    responses = _delete_at_once(server, admin, override_id)
    codes = sorted(r.status_code for r in responses)
    assert codes == [204] + [409] * (CLIENTS - 1), [r.text for r in responses]
    assert all("already ended" in r.json()["detail"] for r in responses if r.status_code == 409)
    assert _audited(server, override_id) == ["price_override.created", "price_override.ended"]


def test_sixteen_clients_withdrawing_a_scheduled_override_one_withdraws_it_the_rest_get_404(
    server: LiveServer, admin: dict[str, str]
) -> None:
    override_id = _override(server, utcnow() + timedelta(days=3))
    responses = _delete_at_once(server, admin, override_id)
    codes = sorted(r.status_code for r in responses)
    assert codes == [204] + [404] * (CLIENTS - 1), [r.text for r in responses]
    assert all(r.json()["type"].endswith("/not-found") for r in responses if r.status_code == 404)
    assert _audited(server, override_id) == ["price_override.created", "price_override.withdrawn"]


def test_an_end_waiting_for_another_that_ended_the_override_answers_409_and_keeps_its_end(
    server: LiveServer,
) -> None:
    """The second client read the override open and took its "now" before the first ended
    it, but reached the row after: its end, a moment earlier than the first's, used to pass
    the window check (the row still looked open at that moment), end the override a second
    time and move its recorded end back."""
    override_id = _override(server, utcnow() - timedelta(days=1))
    first_end = utcnow()
    first = server.db.writer()
    first.begin()
    service.end_price_override(first, override_id, caller=HQ, at=first_end)
    own_pid = first.execute(text("SELECT pg_backend_pid()")).scalar_one()
    second = server.db.writer()
    second.begin()
    assert second.get(PriceOverride, override_id) is not None  # read while still open

    def end_a_moment_earlier() -> None:
        service.end_price_override(
            second, override_id, caller=HQ, at=first_end - timedelta(seconds=1)
        )

    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(end_a_moment_earlier)
        until_another_backend_waits_for_a_lock(server.db, own_pid)
        first.commit()
        first.close()
        with pytest.raises(Conflict, match="already ended"):
            waiting.result(timeout=30)
    second.rollback()
    second.close()
    with server.db.reader() as s:
        ended = s.get(PriceOverride, override_id)
        assert ended is not None and ended.valid_to == first_end
    assert _audited(server, override_id) == ["price_override.created", "price_override.ended"]


def test_a_withdrawal_waiting_for_another_that_withdrew_the_override_answers_404(
    server: LiveServer,
) -> None:
    """The second client found the scheduled override, then waited on the first's delete of
    it: the row was gone when it got there, which used to answer 409 "already ended at ?"."""
    override_id = _override(server, utcnow() + timedelta(days=3))
    first = server.db.writer()
    first.begin()
    assert service.end_price_override(first, override_id, caller=HQ) is None
    own_pid = first.execute(text("SELECT pg_backend_pid()")).scalar_one()
    second = server.db.writer()
    second.begin()

    def withdraw() -> None:
        service.end_price_override(second, override_id, caller=HQ)

    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(withdraw)
        until_another_backend_waits_for_a_lock(server.db, own_pid)
        first.commit()
        first.close()
        with pytest.raises(NotFound):
            waiting.result(timeout=30)
    second.rollback()
    second.close()
    assert _audited(server, override_id) == ["price_override.created", "price_override.withdrawn"]
