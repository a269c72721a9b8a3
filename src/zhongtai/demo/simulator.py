"""The live order simulator: customers order on every channel, stores pick, pack and hand over,
riders deliver, tills ring sales — all through a running server's HTTP API.

This is the clock: it starts journeys at the asked rate, runs each journey's next step when it
is due and reports progress. The steps themselves are in :mod:`~zhongtai.demo.journey_steps`,
what they share in :mod:`~zhongtai.demo.simulated_journeys`.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable

from zhongtai.demo.chain_api import ChainApi, StepFailed, Store
from zhongtai.demo.journey_steps import JourneySteps
from zhongtai.demo.simulated_journeys import (
    ADMIN,
    ONLINE_CHANNELS,
    SHELVES_MAX_AGE,
    Journey,
    SimulationSettings,
    Tally,
)


class OrderSimulator(JourneySteps):
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
        super().__init__(api, settings, clock=clock)
        self.say = say
        self.sleep = sleep
        self.total = Tally()
        self._queue: list[tuple[float, int, Journey]] = []
        self._order = itertools.count()
        self._stores: list[Store] = []
        self._shelves_read = 0.0
        self.problems: list[str] = []

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
        mix = self.settings.mix
        kind = rng.choices(list(mix), weights=list(mix.values()))[0]
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
