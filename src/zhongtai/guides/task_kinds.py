"""What a shopping guide's daily task can be: its kinds, how urgent each is, which of them are
marketing, and the thresholds (the policy) that decide when each is due.

Kept apart from the rules that decide the tasks because the task table, the schemas and the
fact readers need this vocabulary without the deciding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class TaskKind(StrEnum):
    #: An order of hers has waited at the counter too long.
    PICKUP_WAITING = "pickup_waiting"
    #: An order of hers missed the time she was promised: say sorry, say where it stands.
    LATE_ORDER = "late_order"
    #: She brought something back: ask how it went.
    AFTER_SALE = "after_sale"
    #: Points of hers run out soon.
    POINTS_EXPIRING = "points_expiring"
    BIRTHDAY = "birthday"
    #: She bought before but not lately.
    DORMANT = "dormant"
    #: New products she is likely to care about.
    NEW_ARRIVALS = "new_arrivals"


#: Lower comes first on her list: what the customer is waiting on or just went through comes
#: before care and sales work.
PRIORITY: Mapping[TaskKind, int] = {
    TaskKind.PICKUP_WAITING: 1,
    TaskKind.LATE_ORDER: 1,
    TaskKind.AFTER_SALE: 2,
    TaskKind.POINTS_EXPIRING: 3,
    TaskKind.BIRTHDAY: 4,
    TaskKind.DORMANT: 5,
    TaskKind.NEW_ARRIVALS: 6,
}

#: The longest explanation kept (the rest is in the details).
EXPLANATION_MAX = 300

#: Tasks that promote rather than serve something of hers (an order, a return, her points):
#: the guide reaches out for these only with the member's marketing consent (see ``TaskPolicy``).
MARKETING_KINDS = frozenset({TaskKind.BIRTHDAY, TaskKind.DORMANT, TaskKind.NEW_ARRIVALS})


@dataclass(frozen=True)
class TaskPolicy:
    """The thresholds of the task list; the defaults are the chain's standard."""

    dormant_after_days: int = 60
    birthday_within_days: int = 7
    points_expiring_within_days: int = 14
    pickup_waiting_hours: int = 24
    #: A promise missed this recently (days) is still worth a word to her.
    late_order_within_days: int = 2
    after_sale_within_days: int = 3
    new_arrivals_within_days: int = 14
    #: Categories she bought from this far back count as hers for new arrivals.
    purchase_history_days: int = 180
    new_arrivals_max_skus: int = 3
    #: False: marketing tasks stop only when her latest WeCom consent withdraws it; True: they
    #: need a consent she gave (a member who was never asked gets service tasks only).
    marketing_needs_granted_consent: bool = False

    def __post_init__(self) -> None:
        for name in (
            "dormant_after_days",
            "birthday_within_days",
            "points_expiring_within_days",
            "pickup_waiting_hours",
            "late_order_within_days",
            "after_sale_within_days",
            "new_arrivals_within_days",
            "purchase_history_days",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more")
        if self.new_arrivals_max_skus < 1:
            raise ValueError("new_arrivals_max_skus must be 1 or more")
