"""The till's checks: a sale id means one sale (resent with other content it is refused, not
taken for a duplicate), a duplicate answers what the first answer said, bad input (an unknown
member, store or terminal, a tender the till cannot take) is a 4xx naming the field and sinks
no other sale of the batch, and the business day is the store's."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tests.members.conftest import MakeMember
from tests.orders.conftest import Chain, new_id, ok
from tests.orders.test_pos_sales import _pos_orders, _sale
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.models import ApiKey
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Channel, Permission
from zhongtai.inventory.models import StockBalance
from zhongtai.orders import pos
from zhongtai.orders.kinds import TenderType
from zhongtai.orders.models import Payment
from zhongtai.orders.tender_rules import Tender

SALES = "/api/v1/pos/sales"
BATCH = "/api/v1/pos/sales/batch"


def _till(chain: Chain) -> dict[str, str]:
    return chain.factory.api_key_headers(Channel.POS, store=chain.store)


def _chain_wide(name: str = "hq till") -> Principal:
    """A caller who may sell at any store (an HQ tool replaying tills' queues)."""
    return Principal(
        kind="api_key",
        id=uuid.uuid4(),
        name=name,
        permissions=frozenset(Permission),
        store_ids=None,
        channel=Channel.POS,
    )


def _pos_sale(chain: Chain, **changes: Any) -> pos.PosSale:
    fields: dict[str, Any] = {
        "client_sale_id": uuid.uuid4(),
        "store_id": chain.store.id,
        "terminal_code": "T9",
        "lines": [pos.PosLine(chain.skus[0].id, 1, unit_price=1000)],
        "tenders": [Tender(TenderType.CASH, 1000)],
        "occurred_at": datetime.now(UTC) - timedelta(hours=1),
    }
    return pos.PosSale(**{**fields, **changes})


# --- one sale id, one sale ---------------------------------------------------------------------


def test_a_resent_sale_with_other_lines_is_refused_and_the_first_stays(
    client: TestClient, chain: Chain, session: Session
) -> None:
    till = _till(chain)
    sale = _sale(chain, 1)
    first = ok(client.post(SALES, json=sale, headers=till), 201)
    other = {**sale, "lines": [{"sku_id": str(chain.skus[0].id), "quantity": 3}]}
    answer = client.post(SALES, json=other, headers=till)
    assert answer.status_code == 409, answer.text
    assert answer.json()["type"].endswith("/sale-id-reused")
    assert "lines" in answer.json()["detail"]
    assert _pos_orders(session) == 1
    assert chain.stock.balance(chain.store, chain.skus[0]).on_hand == 9
    again = ok(client.post(SALES, json=sale, headers=till), 200)
    assert again["receipt_number"] == first["receipt_number"]


def test_a_resent_sale_paid_with_another_tender_is_refused(
    client: TestClient, chain: Chain, session: Session
) -> None:
    till = _till(chain)
    sale = _sale(chain, 1)
    ok(client.post(SALES, json=sale, headers=till), 201)
    by_card = {**sale, "tenders": [{"type": "bank_card", "amount": 1000}]}
    answer = client.post(SALES, json=by_card, headers=till)
    assert answer.status_code == 409, answer.text
    assert "tenders" in answer.json()["detail"]
    assert [p.tender for p in session.scalars(select(Payment))] == [TenderType.CASH]


def test_a_sale_id_reused_by_another_terminal_of_the_store_is_refused(
    client: TestClient, chain: Chain, session: Session
) -> None:
    sale = _sale(chain, 1)
    ok(client.post(SALES, json=sale, headers=_till(chain)), 201)
    answer = client.post(SALES, json=sale, headers=_till(chain))
    assert answer.status_code == 409, answer.text
    assert "terminal" in answer.json()["detail"]
    assert _pos_orders(session) == 1


def test_an_offline_sale_resent_with_another_time_is_rejected_and_the_rest_of_the_batch_stands(
    session: Session, chain: Chain
) -> None:
    caller = _chain_wide()
    sale = _pos_sale(chain)
    pos.upload_till_sales(session, [sale], caller=caller)
    assert sale.occurred_at is not None
    moved = replace(sale, occurred_at=sale.occurred_at - timedelta(hours=2))
    fresh = _pos_sale(chain)
    results = pos.upload_till_sales(session, [moved, fresh], caller=caller)
    assert [r.status for r in results] == [pos.SaleStatus.REJECTED, pos.SaleStatus.RECORDED]
    assert results[0].problem is not None and results[0].problem["status"] == 409
    assert _pos_orders(session) == 2


def test_a_batch_resent_unchanged_is_still_all_duplicates(session: Session, chain: Chain) -> None:
    """The content check does not mistake a faithful resend (own prices, member, several
    tenders, change) for another sale."""
    caller = _chain_wide()
    sales = [
        _pos_sale(
            chain,
            lines=[
                pos.PosLine(chain.skus[0].id, 2, unit_price=450),
                pos.PosLine(chain.skus[1].id, 1),
            ],
            tenders=[Tender(TenderType.BANK_CARD, 400), Tender(TenderType.CASH, 5000)],
        ),
        _pos_sale(chain, occurred_at=None),
    ]
    first = pos.upload_till_sales(session, sales, caller=caller)
    assert [r.status for r in first] == [pos.SaleStatus.RECORDED] * 2
    again = pos.upload_till_sales(session, sales, caller=caller)
    assert [r.status for r in again] == [pos.SaleStatus.DUPLICATE] * 2
    assert [r.change for r in again] == [r.change for r in first]


def test_a_resent_cash_sale_answers_the_change_it_gave_the_first_time(
    client: TestClient, chain: Chain
) -> None:
    """The till whose first answer was lost prints the receipt from the second: same change."""
    till = _till(chain)
    sale = _sale(chain, 2, tenders=[{"type": "cash", "amount": 5000}])
    first = ok(client.post(SALES, json=sale, headers=till), 201)
    again = ok(client.post(SALES, json=sale, headers=till), 200)
    assert first["change"] == 3000
    assert again["change"] == 3000


def test_a_till_of_another_store_learns_nothing_of_a_sale_by_its_id(
    client: TestClient, chain: Chain
) -> None:
    sale = {**_sale(chain, 1), "store_id": str(chain.store.id)}
    ok(client.post(SALES, json=sale, headers=_till(chain)), 201)
    elsewhere = chain.factory.api_key_headers(Channel.POS, store=chain.open_store())
    answer = client.post(SALES, json=sale, headers=elsewhere)
    assert answer.status_code == 403, answer.text
    assert "receipt_number" not in answer.json()


# --- bad input: a 4xx naming the field, and the rest of the batch stands ----------------------


def test_a_sale_naming_an_unknown_member_gets_422_naming_the_member(
    client: TestClient, chain: Chain, session: Session
) -> None:
    sale = _sale(chain, 1, member_id=new_id())
    answer = client.post(SALES, json=sale, headers=_till(chain))
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "member_id"
    assert _pos_orders(session) == 0


def test_an_unknown_member_rejects_that_sale_only(
    client: TestClient, chain: Chain, session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    session.commit()
    sales = [_sale(chain, 1, member_id=str(member.id)), _sale(chain, 1, member_id=new_id())]
    answer = ok(client.post(BATCH, json={"sales": sales}, headers=_till(chain)))
    assert [r["status"] for r in answer["results"]] == ["recorded", "rejected"]
    assert answer["results"][1]["problem"]["errors"][0]["field"] == "member_id"
    assert _pos_orders(session) == 1


def test_a_sale_of_an_unknown_store_rejects_that_sale_only(session: Session, chain: Chain) -> None:
    results = pos.upload_till_sales(
        session, [_pos_sale(chain), _pos_sale(chain, store_id=uuid.uuid4())], caller=_chain_wide()
    )
    assert [r.status for r in results] == [pos.SaleStatus.RECORDED, pos.SaleStatus.REJECTED]
    assert results[1].problem is not None
    assert results[1].problem["errors"][0]["field"] == "store_id"


def test_a_batch_sale_for_a_store_out_of_reach_writes_nothing_at_that_store(
    session: Session, chain: Chain
) -> None:
    other = chain.open_store()
    caller = Principal(
        kind="api_key",
        id=uuid.uuid4(),
        name="till",
        permissions=frozenset(Permission),
        store_ids=frozenset({chain.store.id}),
        channel=Channel.POS,
        terminal_id="T9",
    )
    results = pos.upload_till_sales(
        session, [_pos_sale(chain), _pos_sale(chain, store_id=other.id)], caller=caller
    )
    assert [r.status for r in results] == [pos.SaleStatus.RECORDED, pos.SaleStatus.REJECTED]
    assert results[1].problem is not None and results[1].problem["status"] == 403
    rows = (
        select(func.count()).select_from(StockBalance).where(StockBalance.location_id == other.id)
    )
    assert session.scalar(rows) == 0


def test_points_are_not_taken_as_a_till_tender(
    client: TestClient, chain: Chain, session: Session, make_member: MakeMember
) -> None:
    """The till debits no points account: a points tender would be goods for nothing, and
    points minted on the return (points tenders are refunded as points)."""
    member = make_member()
    session.commit()
    sale = _sale(chain, 1, member_id=str(member.id), tenders=[{"type": "points", "amount": 1000}])
    answer = client.post(SALES, json=sale, headers=_till(chain))
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "tenders.0.type"
    assert _pos_orders(session) == 0
    assert chain.stock.balance(chain.store, chain.skus[0]).on_hand == 10


def test_a_till_whose_terminal_code_cannot_be_printed_on_a_receipt_gets_422(
    client: TestClient, chain: Chain, session: Session
) -> None:
    issued = auth.create_api_key(
        session, name="till", channel=Channel.POS, store_id=chain.store.id, terminal_id="T1"
    )
    # A key issued before terminal ids were checked at creation.
    session.execute(update(ApiKey).where(ApiKey.name == "till").values(terminal_id="till-1"))
    session.commit()
    till = {"X-API-Key": issued.full_key}
    answer = client.post(SALES, json=_sale(chain, 1), headers=till)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "terminal_code"
    batch = client.post(BATCH, json={"sales": [_sale(chain, 1)]}, headers=till)
    assert ok(batch)["results"][0]["status"] == "rejected"
    assert _pos_orders(session) == 0


# --- the store's business day --------------------------------------------------------------------


def test_a_sale_after_four_in_the_morning_store_time_is_on_the_stores_day_not_utcs(
    session: Session, chain: Chain
) -> None:
    """20:30 UTC is 04:30 the next morning in Shanghai: the new business day there."""
    assert chain.store.timezone == "Asia/Shanghai"
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    at = datetime(yesterday.year, yesterday.month, yesterday.day, 20, 30, tzinfo=UTC)
    [done] = pos.upload_till_sales(
        session, [_pos_sale(chain, occurred_at=at)], caller=_chain_wide()
    )
    assert done.order is not None
    assert done.order.business_date == yesterday + timedelta(days=1)
    assert done.order.receipt_number is not None
    assert f"-{yesterday + timedelta(days=1):%Y%m%d}-" in done.order.receipt_number
