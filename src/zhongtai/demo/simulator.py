"""The live order simulator: customers order on every channel, stores pick, pack and hand over,
riders deliver, tills ring sales — all through a running server's HTTP API."""

from __future__ import annotations

import heapq
import itertools
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zhongtai.demo.chain_api import Caller, ChainApi, Shelf, StepFailed, Store

ADMIN = "admin"
#: What customers start, by weight: till sales, then the online fulfilment types.
JOURNEYS = {"pos": 55, "delivery": 18, "pickup": 15, "ship": 5, "reserve_try": 7}
ONLINE_CHANNELS = {"app": 45, "mini_program": 40, "marketplace": 15}
WALLETS = ("wechat_pay", "alipay")
SHELVES_MAX_AGE = 300.0  # seconds before a store's stock is read again


@dataclass(frozen=True)
class SimulationSettings:
    orders_per_minute: float
    minutes: float | None = None  # None: until interrupted
    report_every: float = 60.0  # seconds between the progress lines
    pace: float = 1.0  # scales the seconds stores and customers take between steps
    drain_seconds: float = 600.0  # how long orders under way may take to finish at the end
    seed: int | None = None


@dataclass
class Tally:
    placed: int = 0
    completed: int = 0
    cancelled: int = 0
    failed: int = 0
    out_of_stock: int = 0  # customers who found the goods gone and did not order

    def add(self, other: Tally) -> None:
        self.placed += other.placed
        self.completed += other.completed
        self.cancelled += other.cancelled
        self.failed += other.failed
        self.out_of_stock += other.out_of_stock


@dataclass
class Journey:
    """One customer's order and what happens to it next."""

    kind: str
    store: Store
    customer: Caller
    clerk: Caller
    steps: list[str]
    order: dict[str, Any] = field(default_factory=dict)
    started: float = 0.0
    retries: int = 0


class OrderSimulator:
    """Runs journeys on a clock: each step is due some seconds after the one before it."""

    def __init__(
        self,
        api: ChainApi,
        settings: SimulationSettings,
        *,
        say: Callable[[str], None] = print,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api = api
        self.settings = settings
        self.say = say
        self.clock = clock
        self.sleep = sleep
        # Who comes and what she buys draws from one stream, the seconds each step takes from
        # another: the same seed then starts the same journeys, however fast the server is.
        self.rng = random.Random(settings.seed)
        self.later = random.Random(None if settings.seed is None else settings.seed + 1)
        self.total = Tally()
        self.window = Tally()
        self._queue: list[tuple[float, int, Journey]] = []
        self._order = itertools.count()
        self._stores: list[Store] = []
        self._shelves_read = 0.0
        self.problems: list[str] = []
        #: Quotes of a type a store refused and took: a store whose pilot does not offer
        #: delivery refuses every time and is not asked again.
        self._refusals: Counter[tuple[str, str]] = Counter()
        self._taken: Counter[tuple[str, str]] = Counter()

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> Tally:
        self._read_chain()
        start = self.clock()
        stop = start + self.settings.minutes * 60 if self.settings.minutes is not None else None
        next_report = start + self.settings.report_every
        credit = 0.0
        last = start
        while True:
            now = self.clock()
            placing = stop is None or now < stop
            if placing:
                credit += (now - last) * self.settings.orders_per_minute / 60.0
                while credit >= 1:
                    credit -= 1
                    self._begin()
            last = now
            self._run_due(now)
            if now >= next_report:
                self._report(now - start)
                next_report += self.settings.report_every
            if not placing and (
                not self._queue or now > (stop or now) + self.settings.drain_seconds
            ):
                break
            self.sleep(0.05)
        self.window.failed += len(self._queue)  # still under way when the drain time ran out
        self._queue.clear()
        self._report(self.clock() - start)
        return self.total

    def summary(self) -> str:
        t = Tally()
        t.add(self.total)
        t.add(self.window)
        return (
            f"total: placed {t.placed}, completed {t.completed}, cancelled {t.cancelled}, "
            f"failed {t.failed}, out of stock {t.out_of_stock}"
        )

    def _report(self, elapsed: float) -> None:
        w = self.window
        self.say(
            f"[{int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}] placed {w.placed}, "
            f"completed {w.completed}, cancelled {w.cancelled}, failed {w.failed}, "
            f"out of stock {w.out_of_stock}, under way {len(self._queue)}"
        )
        for problem in self.problems[:3]:
            self.say(f"  failed: {problem}")
        self.total.add(w)
        self.window = Tally()
        self.problems = []

    def _run_due(self, now: float) -> None:
        while self._queue and self._queue[0][0] <= now:
            _, _, journey = heapq.heappop(self._queue)
            self._advance(journey)

    def _schedule(self, journey: Journey, delay: float) -> None:
        due = self.clock() + delay * self.settings.pace
        heapq.heappush(self._queue, (due, next(self._order), journey))

    def _read_chain(self) -> None:
        self._stores = [s for s in self.api.stores(ADMIN) if self.api.has(f"pos:{s.code}")]
        if not self._stores:
            raise StepFailed("read the chain", 0, "no store of the demo credentials was found")
        self._refresh_shelves()

    def _refresh_shelves(self) -> None:
        for store in self._stores:
            self.api.fill_shelves(store, ADMIN)
        self._shelves_read = self.clock()

    # --- starting a journey --------------------------------------------------------------------

    def _begin(self) -> None:
        if self.clock() - self._shelves_read > SHELVES_MAX_AGE:
            try:
                self._refresh_shelves()
            except StepFailed as failed:  # keep selling from what was seen; try again later
                self._shelves_read = self.clock()
                self.problems.append(str(failed))
        rng = self.rng
        kind = rng.choices(list(JOURNEYS), weights=list(JOURNEYS.values()))[0]
        offering = {
            "delivery": [s for s in self._stores if self._may_ask(s, "delivery")],
            "ship": self._stores,
            "pos": self._stores,
        }.get(kind, [s for s in self._stores if s.offers("pickup")])
        stocked = [s for s in offering if s.shelves]
        if not stocked:
            return
        store = rng.choice(stocked)
        clerk = f"clerk.{store.code.lower()}"
        journey = Journey(
            kind=kind,
            store=store,
            customer=rng.choices(list(ONLINE_CHANNELS), weights=list(ONLINE_CHANNELS.values()))[0],
            clerk=clerk if self.api.has(clerk) else ADMIN,
            steps=["checkout"],
            started=self.clock(),
        )
        if kind == "reserve_try" and journey.customer == "marketplace":
            journey.customer = "app"  # try-ons are booked in the chain's own app
        self._advance(journey)

    def _may_ask(self, store: Store, kind: str) -> bool:
        key = (store.code, kind)
        return store.offers(kind) and (self._taken[key] > 0 or self._refusals[key] < 3)

    def _advance(self, journey: Journey) -> None:
        step = journey.steps.pop(0)
        try:
            delay = getattr(self, f"_{step.replace('-', '_')}")(journey)
        except StepFailed as failed:
            self.window.failed += 1
            self.problems.append(f"{journey.kind} {journey.store.code} {failed}")
            return
        if delay is None:
            return  # the journey ended
        self._schedule(journey, delay)

    # --- the steps: each answers the seconds until the next one, or None when done ------------

    def _basket(self, journey: Journey, lines: int) -> list[tuple[Shelf, int]]:
        store = journey.store
        picked = self.rng.sample(store.shelves, min(lines, len(store.shelves)))
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
            if journey.kind == "delivery":
                # No store may deliver this basket (pilot, radius): she collects it instead.
                self._refusals[key] += 1
                journey.kind = "pickup"
                body = {k: v for k, v in body.items() if k != "address"}
                return self._quote(journey, body | {"fulfillment_type": "pickup"})
            if "missing_stock" not in reasons:
                raise
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
