"""What the live order simulator works with: its settings, the tally it keeps, one customer's
journey through the chain, and the mix that journeys and channels are drawn from.

Shared by the loop (:mod:`~zhongtai.demo.simulator`) and the steps of a journey
(:mod:`~zhongtai.demo.journey_steps`), so neither has to import the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from zhongtai.demo.chain_api import Caller, Store

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
    #: What customers start, by weight (the journeys of ``JOURNEYS``).
    mix: Mapping[str, int] = field(default_factory=lambda: dict(JOURNEYS))

    def __post_init__(self) -> None:
        unknown = set(self.mix) - set(JOURNEYS)
        if unknown or not any(self.mix.values()):
            raise ValueError(f"a mix weighs some of {', '.join(JOURNEYS)}; got {dict(self.mix)}")


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
