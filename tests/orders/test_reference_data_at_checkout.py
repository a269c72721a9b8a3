"""A checkout keeps the reference data it read (pilot rules, opening hours, lineages,
promotions) only while HQ changes none of it: the next quote after a change sees the change."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from tests.orders.conftest import NEARBY, Chain, quote
from zhongtai.loyalty import service
from zhongtai.loyalty.models import Promotion
from zhongtai.loyalty.promotion_rules import PromotionKind, Scope
from zhongtai.stores.models import PilotScope
from zhongtai.stores.service_pilot import upsert_pilot_rule


def test_a_promotion_started_after_a_quote_prices_the_next_quote_and_stops_when_ended(
    client: TestClient, chain: Chain, session: Session
) -> None:
    body = {"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(1)}
    first = quote(client, chain.app, body)
    assert first["discount_total"] == 0
    promotion = service.create_promotion(
        session,
        service.PromotionDefinition(
            code="HALF",
            name="五折",
            kind=PromotionKind.PERCENT_OFF,
            terms={"percent": 50},
            scope=Scope(),
        ),  # type: ignore[call-arg]
    )
    session.commit()
    second = quote(client, chain.app, body)
    assert second["discount_total"] == first["subtotal"] // 2
    session.execute(update(Promotion).where(Promotion.id == promotion.id).values(active=False))
    session.commit()
    assert quote(client, chain.app, body)["discount_total"] == 0


def test_a_pilot_switched_off_after_a_quote_refuses_the_next_one(
    client: TestClient, chain: Chain, session: Session
) -> None:
    body = {"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(1)}
    quote(client, chain.app, body)
    upsert_pilot_rule(
        session, feature="delivery", scope=PilotScope.CHAIN, scope_value="*", enabled=False
    )
    session.commit()
    refused = quote(client, chain.app, body, status=409)
    assert refused["type"].endswith("no-store-can-fulfil")
