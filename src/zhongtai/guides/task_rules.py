"""Pure rules of a shopping guide's daily tasks: which tasks one of her customers is due today,
why, how urgent, and which occurrence each one stands for.

Every task names its *occurrence* in a period key (``birthday:2027``, ``pickup_waiting:<order>``):
a daily run that finds the same occurrence again adds nothing, and a task she closed is not
given to her again for the same occurrence. Day counts use the store's local calendar; the
caller turns timestamps into local dates, except for the pickup wait, which counts hours.

Windows are inclusive: "within the last 3 days" is today and the 3 days before it.
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any


class TaskKind(StrEnum):
    #: An order of hers has waited at the counter too long.
    PICKUP_WAITING = "pickup_waiting"
    #: She brought something back: ask how it went.
    AFTER_SALE = "after_sale"
    #: Points of hers run out soon.
    POINTS_EXPIRING = "points_expiring"
    BIRTHDAY = "birthday"
    #: She bought before but not lately.
    DORMANT = "dormant"
    #: New products she is likely to care about.
    NEW_ARRIVALS = "new_arrivals"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    SKIPPED = "skipped"
    #: Its condition stopped holding (the pickup was collected, she was handed to another
    #: guide, the birthday passed) before the guide closed it.
    EXPIRED = "expired"


class TaskOutcome(StrEnum):
    """How a guide closes a task."""

    DONE = "done"
    SKIPPED = "skipped"


#: Lower comes first on her list: what the customer is waiting on or just went through comes
#: before care and sales work.
PRIORITY: Mapping[TaskKind, int] = {
    TaskKind.PICKUP_WAITING: 1,
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

#: The explicit state machine of a task; generation expires and reopens, the guide closes.
TRANSITIONS: Mapping[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.OPEN: frozenset({TaskStatus.DONE, TaskStatus.SKIPPED, TaskStatus.EXPIRED}),
    # She came back to this guide while the occurrence still holds: it is hers to do again.
    TaskStatus.EXPIRED: frozenset({TaskStatus.OPEN}),
    TaskStatus.DONE: frozenset(),
    TaskStatus.SKIPPED: frozenset(),
}


@dataclass(frozen=True)
class TaskPolicy:
    """The thresholds of the task list; the defaults are the chain's standard."""

    dormant_after_days: int = 60
    birthday_within_days: int = 7
    points_expiring_within_days: int = 14
    pickup_waiting_hours: int = 24
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
            "after_sale_within_days",
            "new_arrivals_within_days",
            "purchase_history_days",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more")
        if self.new_arrivals_max_skus < 1:
            raise ValueError("new_arrivals_max_skus must be 1 or more")


@dataclass(frozen=True)
class WaitingPickup:
    """An order of hers ready at the counter since ``ready_since``, not collected."""

    order_id: uuid.UUID
    number: str
    store_id: uuid.UUID
    ready_since: datetime


@dataclass(frozen=True)
class RecentReturn:
    return_id: uuid.UUID
    order_id: uuid.UUID
    order_number: str
    #: The store's local day she brought the goods back.
    returned_on: date
    #: Fen.
    refund_total: int
    reason: str | None = None


@dataclass(frozen=True)
class ExpiringPoints:
    """A points lot of hers with points left, not yet expired."""

    remaining: int
    #: The store's local day the lot expires.
    expires_on: date


@dataclass(frozen=True)
class BoughtCategory:
    category_id: uuid.UUID
    name: str
    #: The local day of her latest purchase in it.
    last_bought_on: date


@dataclass(frozen=True)
class NewArrival:
    """An active SKU of a product new to the catalogue (one row per SKU)."""

    sku_id: uuid.UUID
    sku_code: str
    sku_name: str
    size: str | None
    product_id: uuid.UUID
    product_name: str
    brand: str | None
    category_id: uuid.UUID
    category_name: str
    #: The local day the product was created.
    created_on: date


@dataclass(frozen=True)
class MemberFacts:
    """What the task rules know of one member."""

    member_id: uuid.UUID
    birthday: date | None = None
    #: The local day of her latest paid purchase (None: she never bought).
    last_purchase_on: date | None = None
    bought_categories: tuple[BoughtCategory, ...] = ()
    #: Her sizes and preferences as the profile holds them, e.g. {"top_size": "M"}.
    preferences: Mapping[str, Any] = field(default_factory=dict)
    points: tuple[ExpiringPoints, ...] = ()
    pickups: tuple[WaitingPickup, ...] = ()
    returns: tuple[RecentReturn, ...] = ()
    #: Her latest WeCom marketing consent: True given, False withdrawn, None never recorded.
    marketing_consent: bool | None = None


@dataclass(frozen=True)
class DueTask:
    kind: TaskKind
    #: The occurrence the task stands for, unique per member and guide.
    period_key: str
    priority: int
    #: One or two sentences for the guide's phone.
    explanation: str
    #: JSON-able facts behind the task (ids as strings, dates ISO).
    details: dict[str, Any]


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100}.{abs(fen) % 100:02d}"


def birthday_in(birthday: date, year: int) -> date:
    """Her birthday in ``year``; 29 February is kept on 28 February in common years (it stays
    in her birth month)."""
    if birthday.month == 2 and birthday.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return birthday.replace(year=year)


def next_birthday(birthday: date, today: date) -> date:
    """The first celebration of her birthday on or after ``today``."""
    this_year = birthday_in(birthday, today.year)
    return this_year if this_year >= today else birthday_in(birthday, today.year + 1)


def may_market_to(facts: MemberFacts, policy: TaskPolicy) -> bool:
    if facts.marketing_consent is None:
        return not policy.marketing_needs_granted_consent
    return facts.marketing_consent


def _task(kind: TaskKind, occurrence: str, explanation: str, **details: Any) -> DueTask:
    if len(explanation) > EXPLANATION_MAX:
        explanation = explanation[: EXPLANATION_MAX - 1] + "…"
    return DueTask(kind, f"{kind.value}:{occurrence}", PRIORITY[kind], explanation, details)


def _pickups(facts: MemberFacts, now: datetime, policy: TaskPolicy) -> list[DueTask]:
    limit = timedelta(hours=policy.pickup_waiting_hours)
    out = []
    for pickup in facts.pickups:
        waited = now - pickup.ready_since
        if waited <= limit:
            continue
        hours = int(waited.total_seconds() // 3600)
        out.append(
            _task(
                TaskKind.PICKUP_WAITING,
                str(pickup.order_id),
                f"Order {pickup.number} has waited {hours} hours for pickup: remind her to "
                "collect it.",
                order_id=str(pickup.order_id),
                order_number=pickup.number,
                store_id=str(pickup.store_id),
                ready_since=pickup.ready_since.isoformat(),
                waiting_hours=hours,
            )
        )
    return out


def _returns(facts: MemberFacts, today: date, policy: TaskPolicy) -> list[DueTask]:
    since = today - timedelta(days=policy.after_sale_within_days)
    out = []
    for returned in facts.returns:
        if not since <= returned.returned_on <= today:
            continue
        why = f" ({returned.reason})" if returned.reason else ""
        out.append(
            _task(
                TaskKind.AFTER_SALE,
                str(returned.return_id),
                f"She returned goods of order {returned.order_number} on "
                f"{returned.returned_on.isoformat()}{why}, refunded {yuan(returned.refund_total)}: "
                "ask how it went.",
                return_id=str(returned.return_id),
                order_id=str(returned.order_id),
                order_number=returned.order_number,
                returned_on=returned.returned_on.isoformat(),
                refund_total=returned.refund_total,
                reason=returned.reason,
            )
        )
    return out


def _points(facts: MemberFacts, today: date, policy: TaskPolicy) -> list[DueTask]:
    until = today + timedelta(days=policy.points_expiring_within_days)
    lots = sorted(
        (p for p in facts.points if p.remaining > 0 and today <= p.expires_on <= until),
        key=lambda p: p.expires_on,
    )
    if not lots:
        return []
    total = sum(p.remaining for p in lots)
    first = lots[0]
    by_day: dict[date, int] = {}
    for lot in lots:
        by_day[lot.expires_on] = by_day.get(lot.expires_on, 0) + lot.remaining
    when = (
        f"on {first.expires_on.isoformat()}"
        if len(by_day) == 1
        else f"by {lots[-1].expires_on.isoformat()}, {by_day[first.expires_on]} of them on "
        f"{first.expires_on.isoformat()}"
    )
    # The first expiry day names the occurrence: once those points are used or gone, the next
    # lot to expire is news again.
    return [
        _task(
            TaskKind.POINTS_EXPIRING,
            first.expires_on.isoformat(),
            f"{total} of her points expire {when}: suggest she uses them.",
            points=total,
            first_expires_on=first.expires_on.isoformat(),
            expiring=[{"expires_on": d.isoformat(), "points": n} for d, n in by_day.items()],
        )
    ]


def _birthday(facts: MemberFacts, today: date, policy: TaskPolicy) -> list[DueTask]:
    if facts.birthday is None:
        return []
    coming = next_birthday(facts.birthday, today)
    days = (coming - today).days
    if days > policy.birthday_within_days:
        return []
    when = "today" if days == 0 else "tomorrow" if days == 1 else f"in {days} days"
    return [
        _task(
            TaskKind.BIRTHDAY,
            str(coming.year),
            f"Her birthday is {when} ({coming:%m-%d}): send her your wishes.",
            birthday_on=coming.isoformat(),
            days_to_go=days,
        )
    ]


def _dormant(facts: MemberFacts, today: date, policy: TaskPolicy) -> list[DueTask]:
    last = facts.last_purchase_on
    if last is None:
        return []
    days = (today - last).days
    if days < policy.dormant_after_days:
        return []
    # Her last purchase names the quiet spell: buying again ends it, and a later spell is new.
    return [
        _task(
            TaskKind.DORMANT,
            last.isoformat(),
            f"No purchase for {days} days (last on {last.isoformat()}): invite her back.",
            last_purchase_on=last.isoformat(),
            days_since=days,
        )
    ]


def _sizes(preferences: Mapping[str, Any]) -> set[str]:
    return {
        v.strip().casefold()
        for k, v in preferences.items()
        if k.endswith("size") and isinstance(v, str) and v.strip()
    }


def _preference_matches(preferences: Mapping[str, Any], arrival: NewArrival) -> list[str]:
    """Her preferences naming the product's brand or category ("brand: 申城衣橱")."""
    names = {n.strip().casefold() for n in (arrival.brand, arrival.category_name) if n}
    return [
        f"{k}: {v.strip()}"
        for k, v in sorted(preferences.items())
        if isinstance(v, str) and v.strip() and v.strip().casefold() in names
    ]


@dataclass(frozen=True)
class ArrivalPick:
    """A new SKU chosen for her, with why (the first reason is the strongest)."""

    arrival: NewArrival
    reasons: tuple[str, ...]
    in_her_size: bool

    @property
    def rank(self) -> tuple[int, int, int, str]:
        a = self.arrival
        return (-len(self.reasons), -int(self.in_her_size), -a.created_on.toordinal(), a.sku_code)


def pick_new_arrivals(
    facts: MemberFacts,
    arrivals: Sequence[NewArrival],
    today: date,
    policy: TaskPolicy = TaskPolicy(),
) -> list[ArrivalPick]:
    """Up to ``new_arrivals_max_skus`` new SKUs for her, one per product.

    A new product is hers when its category is one she bought from within the purchase
    history, or when a preference of hers names its brand or category. A size preference
    only chooses among the product's SKUs (her size first): a size alone recommends nothing.
    Products with both reasons come first, then those in her size, then the newest.
    """
    new_since = today - timedelta(days=policy.new_arrivals_within_days)
    bought_since = today - timedelta(days=policy.purchase_history_days)
    hers = {
        c.category_id: c
        for c in facts.bought_categories
        if bought_since <= c.last_bought_on <= today
    }
    sizes = _sizes(facts.preferences)
    best: dict[uuid.UUID, ArrivalPick] = {}
    for arrival in arrivals:
        if not new_since <= arrival.created_on <= today:
            continue
        reasons = []
        bought = hers.get(arrival.category_id)
        if bought is not None:
            reasons.append(f"she bought {bought.name} on {bought.last_bought_on.isoformat()}")
        reasons += [f"her preference {m}" for m in _preference_matches(facts.preferences, arrival)]
        if not reasons:
            continue
        size = arrival.size.strip().casefold() if arrival.size else None
        pick = ArrivalPick(arrival, tuple(reasons), size is not None and size in sizes)
        kept = best.get(arrival.product_id)
        if kept is None or pick.rank < kept.rank:
            best[arrival.product_id] = pick
    return sorted(best.values(), key=lambda p: p.rank)[: policy.new_arrivals_max_skus]


def _new_arrivals(
    facts: MemberFacts, arrivals: Sequence[NewArrival], today: date, policy: TaskPolicy
) -> list[DueTask]:
    picks = pick_new_arrivals(facts, arrivals, today, policy)
    if not picks:
        return []
    year, week, _ = today.isocalendar()
    names = ", ".join(f"{p.arrival.product_name} ({p.reasons[0]})" for p in picks)
    # At most one nudge a week: a daily one would be noise, and she gets the week's best three.
    return [
        _task(
            TaskKind.NEW_ARRIVALS,
            f"{year}-W{week:02d}",
            f"New for her: {names}.",
            skus=[
                {
                    "sku_id": str(p.arrival.sku_id),
                    "sku_code": p.arrival.sku_code,
                    "name": p.arrival.sku_name,
                    "size": p.arrival.size,
                    "product_id": str(p.arrival.product_id),
                    "product_name": p.arrival.product_name,
                    "category": p.arrival.category_name,
                    "in_her_size": p.in_her_size,
                    "why": list(p.reasons),
                }
                for p in picks
            ],
        )
    ]


def due_tasks(
    facts: MemberFacts,
    *,
    today: date,
    now: datetime,
    policy: TaskPolicy = TaskPolicy(),
    arrivals: Sequence[NewArrival] = (),
) -> list[DueTask]:
    """The tasks due today for one member, most urgent first (then by period key).

    ``today`` is the store's local date and ``now`` the same moment (aware), for the pickup
    wait; ``arrivals`` are the catalogue's new SKUs, shared by every member.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    tasks = [
        *_pickups(facts, now, policy),
        *_returns(facts, today, policy),
        *_points(facts, today, policy),
    ]
    if may_market_to(facts, policy):
        tasks += [
            *_birthday(facts, today, policy),
            *_dormant(facts, today, policy),
            *_new_arrivals(facts, arrivals, today, policy),
        ]
    return sorted(tasks, key=lambda t: (t.priority, t.period_key))


class CloseVerdict(StrEnum):
    CLOSE = "close"
    #: Closed before with the same outcome: nothing to do (a retry).
    ALREADY = "already"
    REFUSE = "refuse"


def close_verdict(status: TaskStatus, outcome: TaskOutcome) -> CloseVerdict:
    """May a task in ``status`` be closed with ``outcome``?"""
    wanted = TaskStatus(outcome.value)
    if status is wanted:
        return CloseVerdict.ALREADY
    return CloseVerdict.CLOSE if wanted in TRANSITIONS[status] else CloseVerdict.REFUSE
