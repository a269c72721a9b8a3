"""The steps of a simulated customer's journey, each one call (or a few) to the server's HTTP
API as the customer, the store's clerk or the till: quote and place, pay in the wallet, pick,
pack, hand over, book and follow a rider, ship, ring a till sale, cancel.

Each step answers the seconds until the journey's next step, or None when it is over. The
clock that runs them is :class:`~zhongtai.demo.simulator.OrderSimulator`, which names a
journey's next steps (``"start-picking"``) and calls the method of that name here.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from zhongtai.demo.chain_api import Caller, ChainApi, Shelf, StepFailed, Store
from zhongtai.demo.simulated_journeys import (
    ADMIN,
    WALLETS,
    Journey,
    SimulationSettings,
    Tally,
)


class JourneySteps:
    """The steps, with the state they share: the API, the random streams, the window's tally
    and what each store refused or took."""

    def __init__(
        self,
        api: ChainApi,
        settings: SimulationSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.settings = settings
        self.clock = clock
        # Who comes and what she buys draws from one stream, the seconds each step takes from
        # another: the same seed then starts the same journeys, however fast the server is.
        self.rng = random.Random(settings.seed)
        self.later = random.Random(None if settings.seed is None else settings.seed + 1)
        self.window = Tally()
        #: Journeys of a type a store refused (its quote, or no goods it delivers) and quotes it
        #: took: a store that refused three before taking one is not asked again (see
        #: ``_may_ask``). Goods out of stock are no refusal.
        self._refusals: Counter[tuple[str, str]] = Counter()
        self._taken: Counter[tuple[str, str]] = Counter()

    def _basket(self, journey: Journey, lines: int) -> list[tuple[Shelf, int]]:
        store = journey.store
        if journey.kind != "delivery":
            picked = self.rng.sample(store.shelves, min(lines, len(store.shelves)))
        else:
            # She fills a delivery basket from the goods the store brings to the door, and
            # collects in store when none of those she looked at are (a refusal by the store).
            looked = self.rng.sample(store.shelves, min(3 * lines, len(store.shelves)))
            picked = [s for s in looked if self.api.delivers(store, s, ADMIN)][:lines]
            if not picked:
                self._refusals[(store.code, journey.kind)] += 1
                journey.kind = "pickup"
                return self._basket(journey, lines)
        shelves = [self.api.priced(store, shelf, ADMIN) for shelf in picked]
        return [(s, s.quantity(self.rng)) for s in shelves]

    def _checkout(self, journey: Journey) -> float | None:
        if journey.kind == "pos":
            self._till_sale(journey, self._basket(journey, self.rng.randint(1, 6)))
            return None
        basket = self._basket(journey, self.rng.randint(1, 4))
        body: dict[str, Any] = {
            "fulfillment_type": journey.kind,
            "lines": [{"sku_id": s.sku_id, "quantity": q} for s, q in basket],
        }
        if journey.kind in ("delivery", "ship"):
            body["address"] = self._address_near(journey.store)
        if journey.kind != "ship":
            body["store_id"] = journey.store.id
        quote = self._quote(journey, body)
        if quote is None:
            return None
        journey.order = self._post(
            "/orders",
            journey.customer,
            "place",
            {
                "quote_id": quote["id"],
                "contact_name": self.rng.choice("王李张刘陈杨赵黄周吴") + "女士",
                "contact_phone": f"13{self.rng.randint(0, 9)}{self.rng.randint(0, 99_999_999):08d}",
            },
        )
        self.window.placed += 1
        if quote["store_id"] != journey.store.id:  # a parcel may leave from the DC instead
            journey.clerk = ADMIN
        if journey.kind == "reserve_try":
            journey.steps = ["accept", "start-picking", "pack", "ready", "handover"]
            return self.later.uniform(1, 4)
        journey.steps = ["pay"]
        return self.later.uniform(0.5, 2)

    def _quote(self, journey: Journey, body: dict[str, Any]) -> dict[str, Any] | None:
        """The quote, or None when the customer finds the goods gone and leaves (a lost sale,
        not a failure): stock sells while the simulator's view of the shelves ages."""
        key = (journey.store.code, journey.kind)
        try:
            quote: dict[str, Any] = self._post("/checkout/quotes", journey.customer, "quote", body)
            self._taken[key] += 1
            return quote
        except StepFailed as refused:
            if refused.status != 409:
                raise
            reasons = {
                reason
                for verdict in (refused.problem.get("sourcing") or {}).get("candidates") or []
                for reason in verdict.get("reasons") or []
            }
            if "missing_stock" not in reasons:
                if journey.kind != "delivery":
                    raise
                # The store does not deliver this basket (pilot, radius): she collects it instead.
                self._refusals[key] += 1
                journey.kind = "pickup"
                body = {k: v for k, v in body.items() if k != "address"}
                return self._quote(journey, body | {"fulfillment_type": "pickup"})
        self.api.fill_shelves(journey.store, ADMIN)
        self.window.out_of_stock += 1
        return None

    def _pay(self, journey: Journey) -> float | None:
        """Pay by wallet: the customer confirms in the (sandbox) app, which calls the server."""
        order_id = journey.order["id"]
        tender = {"tender": self.later.choices(WALLETS, weights=(65, 35))[0]}
        try:
            payment = self._post(f"/orders/{order_id}/payments", journey.customer, "pay", tender)
        except StepFailed as refused:
            if refused.status != 503:
                raise
            if journey.retries < 2:
                journey.retries += 1
                journey.steps = ["pay"]
                return 1.0
            self._cancel(journey, "the payment provider did not answer")
            return None
        if payment["status"] == "pending":
            self._post(
                f"/sandbox/payments/{payment['provider_ref']}/confirm",
                journey.customer,
                "confirm in the wallet",
                None,
            )
        journey.steps = ["await-payment"]
        return 0.5 / self.settings.pace  # waiting for the server, not for people

    def _await_payment(self, journey: Journey) -> float | None:
        """The wallet's notification reaches the server on its own; the app sees the order paid."""
        order_id = journey.order["id"]
        order = self._get(f"/orders/{order_id}", journey.customer, "see the order paid")
        if order["status"] == "created":
            tried = self._get(f"/orders/{order_id}/payments", journey.customer, "payments")
            if tried and all(p["status"] == "failed" for p in tried):
                self._cancel(journey, "the payment was declined")
                return None
            if self.clock() - journey.started > self.settings.drain_seconds:
                raise StepFailed("await payment", 0, f"order {order['number']} is still unpaid")
            journey.steps = ["await-payment"]
            return 0.5 / self.settings.pace
        journey.order = order
        if self.later.random() < 0.03:
            journey.steps = ["cancel"]
            return self.later.uniform(1, 5)
        after_pack = {
            "delivery": ["dispatch", "await-rider"],
            "ship": ["ship", "delivered"],
        }.get(journey.kind, ["ready", "handover"])
        journey.steps = ["accept", "start-picking", "pack", *after_pack]
        return self.later.uniform(1, 5)

    def _cancel(self, journey: Journey, reason: str = "customer changed their mind") -> None:
        """The customer (or a failed payment) calls the order off before the store hands over."""
        self._post(
            f"/orders/{journey.order['id']}/cancel", journey.customer, "cancel", {"reason": reason}
        )
        self.window.cancelled += 1
        return None

    def _store_step(self, journey: Journey, step: str, body: Any = None) -> float:
        path = f"/fulfillment/orders/{journey.order['id']}/{step}"
        journey.order = self._post(path, journey.clerk, step, body)
        return self.later.uniform(1, 5)

    def _accept(self, journey: Journey) -> float:
        return self._store_step(journey, "accept")

    def _start_picking(self, journey: Journey) -> float:
        return self._store_step(journey, "start-picking")

    def _pack(self, journey: Journey) -> float:
        return self._store_step(journey, "pack", {"packages": self.later.randint(1, 2)})

    def _ready(self, journey: Journey) -> float:
        self._store_step(journey, "ready")
        return self.later.uniform(3, 12)  # the customer walks over to the store

    def _handover(self, journey: Journey) -> None:
        order_id = journey.order["id"]
        tracking = self._get(f"/orders/{order_id}/tracking", journey.customer, "tracking")
        code = (tracking.get("pickup") or {}).get("code")
        if code is None:
            raise StepFailed("handover", 0, f"order {journey.order['number']} shows no pickup code")
        done = self._post(
            "/fulfillment/pickups",
            journey.clerk,
            "handover",
            {"order": journey.order["number"], "code": code},
        )
        self._finished(done)
        if journey.kind == "reserve_try" and done["status"] == "completed":
            # What she tried on and keeps is rung up at the till.
            lines = [x for x in done["lines"] if x["sku_id"] and self.later.random() < 0.7]
            if lines:
                basket = [
                    (Shelf(x["sku_id"], x["price_per"], x["unit_price"]), x["quantity"])
                    for x in lines
                ]
                self._till_sale(journey, basket, counted=False)

    def _dispatch(self, journey: Journey) -> float:
        order_id = journey.order["id"]
        self._post(
            f"/fulfillment/orders/{order_id}/dispatch",
            journey.clerk,
            "book a rider",
            {"provider": "simulated"},
        )
        return 2.0

    def _await_rider(self, journey: Journey) -> float | None:
        """The simulated fleet calls the server back; the customer's app sees the order move."""
        order = self._get(f"/orders/{journey.order['id']}", journey.customer, "track the rider")
        if order["status"] == "completed":
            self._finished(order)
            return None
        if self.clock() - journey.started > self.settings.drain_seconds:
            raise StepFailed(
                "await rider", 0, f"order {order['number']} is still {order['status']}"
            )
        journey.steps = ["await-rider"]
        return 2.0 / self.settings.pace  # polling is not store work: keep it brisk

    def _ship(self, journey: Journey) -> float:
        tracking = f"SF{self.later.randint(10**11, 10**12 - 1)}"
        self._store_step(journey, "ship", {"carrier": "SF Express", "tracking_number": tracking})
        return self.later.uniform(3, 10)

    def _delivered(self, journey: Journey) -> None:
        self._store_step(journey, "delivered")
        self._finished(journey.order)

    def _till_sale(
        self, journey: Journey, basket: list[tuple[Shelf, int]], *, counted: bool = True
    ) -> None:
        total = sum(shelf.amount(quantity) for shelf, quantity in basket)
        if total <= 0:
            return
        if self.later.random() < 0.2:
            tender = {"type": "cash", "amount": math.ceil(total / 1000) * 1000}
        else:
            tender = {
                "type": self.later.choice(("wechat_pay", "alipay", "bank_card")),
                "amount": total,
            }
        sale = self._post(
            "/pos/sales",
            f"pos:{journey.store.code}",
            "till sale",
            {
                "client_sale_id": str(uuid.uuid4()),
                "lines": [
                    {"sku_id": s.sku_id, "quantity": q, "unit_price": s.unit_price}
                    for s, q in basket
                ],
                "tenders": [tender],
            },
        )
        if counted and sale["status"] == "recorded":
            self.window.placed += 1
            self.window.completed += 1

    def _finished(self, order: dict[str, Any]) -> None:
        if order["status"] == "completed":
            self.window.completed += 1

    # --- plumbing --------------------------------------------------------------------------------

    def _post(self, path: str, caller: Caller, step: str, body: Any) -> Any:
        return self.api.call("post", path, caller, step=step, json=body)

    def _get(self, path: str, caller: Caller, step: str) -> Any:
        return self.api.call("get", path, caller, step=step)

    def _address_near(self, store: Store) -> dict[str, Any]:
        radius = (store.capabilities.get("delivery") or {}).get("delivery_radius_m") or 3000
        reach = radius * 0.6 * math.sqrt(self.rng.random())
        angle = self.rng.uniform(0, 2 * math.pi)
        dlat = reach * math.cos(angle) / 111_195
        dlng = reach * math.sin(angle) / (111_195 * math.cos(math.radians(store.latitude)))
        return {
            "latitude": round(store.latitude + dlat, 6),
            "longitude": round(store.longitude + dlng, 6),
            "text": f"{store.code} 附近小区 {self.rng.randint(1, 40)} 号楼",
        }
