"""Pure rules of a shopping guide's daily tasks: which tasks one of her customers is due today,
why, how urgent, and which occurrence each one stands for.

Every task names its *occurrence* in a period key (``birthday:2027``, ``pickup_waiting:<order>``):
a daily run that finds the same occurrence again adds nothing, and a task she closed is not
given to her again for the same occurrence. Day counts use the store's local calendar; the
caller turns timestamps into local dates, except for the pickup wait, which counts hours.

Windows are inclusive: "within the last 3 days" is today and the 3 days before it.

The vocabulary lives next door: kinds and policy in :mod:`~zhongtai.guides.task_kinds`, states
in :mod:`~zhongtai.guides.task_states`, the member's facts in
:mod:`~zhongtai.guides.member_facts`, and the choice of new arrivals in
:mod:`~zhongtai.guides.new_arrival_rules`.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from zhongtai.core.money import yuan
from zhongtai.guides.member_facts import MemberFacts, NewArrival
from zhongtai.guides.new_arrival_rules import pick_new_arrivals
from zhongtai.guides.task_kinds import EXPLANATION_MAX, PRIORITY, TaskKind, TaskPolicy


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
                "collect it before it is cancelled.",
                order_id=str(pickup.order_id),
                order_number=pickup.number,
                store_id=str(pickup.store_id),
                ready_since=pickup.ready_since.isoformat(),
                collect_by=pickup.collect_by.isoformat(),
                waiting_hours=hours,
            )
        )
    return out


def _late_orders(facts: MemberFacts, now: datetime, policy: TaskPolicy) -> list[DueTask]:
    since = now - timedelta(days=policy.late_order_within_days)
    out = []
    for late in facts.late_orders:
        if late.found_at < since:
            continue
        where = _WHERE_LATE.get(late.status_now, f"it is {late.status_now.replace('_', ' ')}")
        out.append(
            _task(
                TaskKind.LATE_ORDER,
                str(late.order_id),
                f"Order {late.number} missed the time she was promised: say sorry; {where}.",
                order_id=str(late.order_id),
                order_number=late.number,
                store_id=str(late.store_id),
                fulfillment_type=late.fulfillment_type,
                promised_by=late.promised_by.isoformat(),
                status=late.status_now,
            )
        )
    return out


#: What the guide can tell her, by where the late order stands now.
_WHERE_LATE = {
    **dict.fromkeys(
        ("created", "paid", "accepted", "picking", "packed"), "the store is still getting it ready"
    ),
    "ready_for_pickup": "it is ready to collect now",
    "out_for_delivery": "the rider is on the way",
    "shipped": "the parcel is on its way",
    "completed": "it has reached her since",
}


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
        *_late_orders(facts, now, policy),
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
