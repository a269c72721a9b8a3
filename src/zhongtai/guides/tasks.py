"""The shopping guide's daily task list: generated each morning for the members bound to her,
read on her phone, closed by her, and counted for her performance view.

Generation reads every fact in a handful of set-based statements for all the guides' current
customers at once (a store may have thousands), leaves the decisions to the pure rules of
:mod:`zhongtai.guides.task_rules`, inserts what is new in batches that skip an occurrence
already on the list (the unique key decides, so two runs racing add each task once), and
expires open tasks whose condition no longer holds. Nothing here commits.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, func, or_, select, true, update
from sqlalchemy.orm import Session

from zhongtai.core import context
from zhongtai.core.db import conflict_insert
from zhongtai.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from zhongtai.core.ids import new_id
from zhongtai.guides.member_facts import NewArrival
from zhongtai.guides.roster import get_guide
from zhongtai.guides.task_facts import (
    arrival_rows,
    arrivals_in,
    batches,
    customer_ids_of,
    customers_of,
    facts_of,
    gather_facts,
)
from zhongtai.guides.task_kinds import MARKETING_KINDS, TaskKind, TaskPolicy
from zhongtai.guides.task_models import GuideTask
from zhongtai.guides.task_rules import DueTask, due_tasks, may_market_to
from zhongtai.guides.task_states import CloseVerdict, TaskOutcome, TaskStatus, close_verdict

NOTE_MAX = 500
#: Why an open task expired, when she is still the guide's customer.
_GONE: Mapping[TaskKind, str] = {
    TaskKind.PICKUP_WAITING: "The order is no longer waiting for pickup.",
    TaskKind.LATE_ORDER: "The late order is some days past: a word now would come late too.",
    TaskKind.AFTER_SALE: "The follow-up window of the return has passed.",
    TaskKind.POINTS_EXPIRING: "Those points were used or have expired.",
    TaskKind.BIRTHDAY: "The birthday has passed.",
    TaskKind.DORMANT: "She has bought again.",
    TaskKind.NEW_ARRIVALS: "These suggestions are no longer current (a new week or no match).",
}
_MOVED = "She is no longer this guide's customer."
_NO_CONSENT = "She has not consented to marketing messages."


@dataclass(frozen=True)
class GenerationSummary:
    day: date
    #: Active guides with customers in the run.
    guides: int
    #: Their current customers.
    members: int
    created: Mapping[TaskKind, int] = field(default_factory=dict)
    #: Expired tasks given back to their guide (the customer came back while still due).
    reopened: int = 0
    expired: int = 0

    @property
    def created_total(self) -> int:
        return sum(self.created.values())


@dataclass(frozen=True)
class TaskCounts:
    """A guide's tasks due since a day, by what became of them."""

    done: int
    skipped: int
    open: int
    expired: int

    @property
    def total(self) -> int:
        return self.done + self.skipped + self.open + self.expired


def _insert_statement(session: Session) -> Any:
    insert_fn = conflict_insert(session)
    return insert_fn(GuideTask)


def generate_tasks(
    session: Session,
    *,
    today: date,
    now: datetime,
    policy: TaskPolicy = TaskPolicy(),
    store_id: uuid.UUID | None = None,
) -> GenerationSummary:
    """Put today's tasks on the lists of every active guide (of ``store_id``, or of the chain).

    ``today`` is the stores' local date of ``now``. A task whose occurrence the guide already
    has (open, done, skipped) is not added again, nor one another guide of hers already did or
    skipped; an expired one is reopened when it is due again. Open tasks no longer due expire:
    the pickup was collected, the window passed, she bought again, or she is now another
    guide's customer (whose list gets the task instead). Running it twice adds nothing.
    """
    if now.tzinfo is None:
        raise InvalidInput.field("now", "include a UTC offset")
    customers = customers_of(session, store_id)
    customer_ids = customer_ids_of(store_id)
    gathered = gather_facts(session, customer_ids, now=now, policy=policy)
    arrivals = arrival_rows(session, now=now, policy=policy)
    arrivals_by_tz: dict[str, tuple[NewArrival, ...]] = {}

    wanted: dict[tuple[uuid.UUID, uuid.UUID, str], tuple[DueTask, uuid.UUID]] = {}
    guide_of: dict[uuid.UUID, uuid.UUID] = {}
    may_market: dict[uuid.UUID, bool] = {}
    for customer in customers:
        if customer.timezone not in arrivals_by_tz:
            arrivals_by_tz[customer.timezone] = arrivals_in(arrivals, customer.timezone)
        facts = facts_of(customer, gathered)
        guide_of[customer.member_id] = customer.guide_id
        may_market[customer.member_id] = may_market_to(facts, policy)
        for task in due_tasks(
            facts,
            today=today,
            now=now,
            policy=policy,
            arrivals=arrivals_by_tz[customer.timezone],
        ):
            key = (customer.guide_id, customer.member_id, task.period_key)
            wanted[key] = (task, customer.store_id)

    created, reopened = _add_due(session, wanted, customer_ids, today=today, now=now)
    expired = _expire_undue(
        session, wanted, guide_of, may_market, customer_ids, store_id=store_id, now=now
    )
    return GenerationSummary(
        day=today,
        guides=len(set(guide_of.values())),
        members=len(customers),
        created=dict(created),
        reopened=reopened,
        expired=expired,
    )


def _add_due(
    session: Session,
    wanted: Mapping[tuple[uuid.UUID, uuid.UUID, str], tuple[DueTask, uuid.UUID]],
    customer_ids: Select[uuid.UUID],
    *,
    today: date,
    now: datetime,
) -> tuple[Counter[TaskKind], int]:
    """Insert the due tasks not on the list yet; reopen the expired ones due again."""
    keys = sorted({period_key for _, _, period_key in wanted})
    mine: dict[tuple[uuid.UUID, uuid.UUID, str], tuple[uuid.UUID, TaskStatus]] = {}
    handled: set[tuple[uuid.UUID, str]] = set()
    for chunk in batches(keys):
        for task_id, guide_id, member_id, period_key, status in session.execute(
            select(
                GuideTask.id,
                GuideTask.guide_id,
                GuideTask.member_id,
                GuideTask.period_key,
                GuideTask.status,
            ).where(GuideTask.member_id.in_(customer_ids), GuideTask.period_key.in_(chunk))
        ):
            mine[(guide_id, member_id, period_key)] = (task_id, status)
            if status in (TaskStatus.DONE, TaskStatus.SKIPPED):
                handled.add((member_id, period_key))

    rows: list[dict[str, Any]] = []
    reopen: list[tuple[uuid.UUID, DueTask]] = []
    for key, (task, store_id) in wanted.items():
        guide_id, member_id, period_key = key
        existing = mine.get(key)
        if (member_id, period_key) in handled:
            continue
        if existing is not None:
            if existing[1] is TaskStatus.EXPIRED:
                reopen.append((existing[0], task))
            continue
        rows.append(
            {
                "id": new_id(),
                "guide_id": guide_id,
                "member_id": member_id,
                "store_id": store_id,
                "kind": task.kind,
                "period_key": period_key,
                "due_on": today,
                "status": TaskStatus.OPEN,
                "priority": task.priority,
                "explanation": task.explanation,
                "details": task.details,
                "created_at": now,
            }
        )

    created: Counter[TaskKind] = Counter()
    for chunk_rows in batches(rows):
        inserted = session.execute(
            _insert_statement(session)
            .values(list(chunk_rows))
            .on_conflict_do_nothing(index_elements=["guide_id", "member_id", "period_key"])
            .returning(GuideTask.kind)
        )
        created.update(TaskKind(kind) for kind in inserted.scalars())

    reopened = 0
    for task_id, task in reopen:
        reopened += _rowcount(
            session.execute(
                update(GuideTask)
                .where(GuideTask.id == task_id, GuideTask.status == TaskStatus.EXPIRED)
                .values(
                    status=TaskStatus.OPEN,
                    due_on=today,
                    priority=task.priority,
                    explanation=task.explanation,
                    details=task.details,
                    closed_at=None,
                    closed_by=None,
                    outcome_note=None,
                )
            )
        )
    return created, reopened


def _expire_undue(
    session: Session,
    wanted: Mapping[tuple[uuid.UUID, uuid.UUID, str], object],
    guide_of: Mapping[uuid.UUID, uuid.UUID],
    may_market: Mapping[uuid.UUID, bool],
    customer_ids: Select[uuid.UUID],
    *,
    store_id: uuid.UUID | None,
    now: datetime,
) -> int:
    """Expire the run's open tasks that are no longer due, each with why."""
    in_scope = true() if store_id is None else GuideTask.store_id == store_id
    by_note: dict[str, list[uuid.UUID]] = defaultdict(list)
    for task_id, guide_id, member_id, kind, period_key in session.execute(
        select(
            GuideTask.id,
            GuideTask.guide_id,
            GuideTask.member_id,
            GuideTask.kind,
            GuideTask.period_key,
        ).where(
            GuideTask.status == TaskStatus.OPEN,
            or_(in_scope, GuideTask.member_id.in_(customer_ids)),
        )
    ):
        if (guide_id, member_id, period_key) in wanted:
            continue
        if guide_of.get(member_id) != guide_id:
            note = _MOVED
        elif kind in MARKETING_KINDS and not may_market.get(member_id, True):
            note = _NO_CONSENT
        else:
            note = _GONE[kind]
        by_note[note].append(task_id)

    expired = 0
    for note, ids in by_note.items():
        for chunk in batches(ids):
            expired += _rowcount(
                session.execute(
                    update(GuideTask)
                    .where(GuideTask.id.in_(chunk), GuideTask.status == TaskStatus.OPEN)
                    .values(status=TaskStatus.EXPIRED, closed_at=now, outcome_note=note)
                )
            )
    return expired


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def tasks_for_guide(
    session: Session,
    guide_id: uuid.UUID,
    *,
    status: TaskStatus | None = None,
    day: date | None = None,
) -> list[GuideTask]:
    """Her tasks, most urgent first (then oldest first): all of them, or those in ``status``
    and/or put on her list on ``day``."""
    get_guide(session, guide_id)
    stmt = select(GuideTask).where(GuideTask.guide_id == guide_id)
    if status is not None:
        stmt = stmt.where(GuideTask.status == status)
    if day is not None:
        stmt = stmt.where(GuideTask.due_on == day)
    return list(
        session.scalars(
            stmt.order_by(GuideTask.priority, GuideTask.due_on, GuideTask.created_at, GuideTask.id)
        )
    )


def _outcome(outcome: TaskOutcome | str) -> TaskOutcome:
    try:
        return TaskOutcome(outcome)
    except ValueError:
        allowed = ", ".join(o.value for o in TaskOutcome)
        raise InvalidInput.field("outcome", f"must be one of: {allowed}") from None


def _note(note: str | None) -> str | None:
    if note is None or not note.strip():
        return None
    if len(note.strip()) > NOTE_MAX:
        raise InvalidInput.field("note", f"at most {NOTE_MAX} characters")
    return note.strip()


def close_task(
    session: Session,
    task_id: uuid.UUID,
    guide_id: uuid.UUID,
    *,
    outcome: TaskOutcome | str,
    note: str | None = None,
    at: datetime,
) -> GuideTask:
    """She marks her task done or skipped, with an optional note on what came of it.

    Only the task's guide may close it. Closing it again the same way changes nothing (a
    retry keeps the first note and time); another outcome, or closing a task that expired,
    is a conflict.
    """
    wanted = _outcome(outcome)
    clean_note = _note(note)
    if at.tzinfo is None:
        raise InvalidInput.field("at", "include a UTC offset")
    # Locked and re-read: a second tap racing the first waits here and sees it closed.
    task = session.scalars(
        select(GuideTask)
        .where(GuideTask.id == task_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if task is None:
        raise NotFound(f"No task {task_id}.", task_id=str(task_id))
    if task.guide_id != guide_id:
        raise Forbidden(
            f"Task {task_id} is on another guide's list; only she may close it.",
            task_id=str(task_id),
        )
    verdict = close_verdict(task.status, wanted)
    if verdict is CloseVerdict.ALREADY:
        return task
    if verdict is CloseVerdict.REFUSE:
        raise Conflict(
            f"Task {task_id} is already {task.status.value}; it cannot be marked {wanted.value}.",
            task_id=str(task_id),
            task_status=task.status.value,
        )
    task.status = TaskStatus(wanted.value)
    task.closed_at = at
    task.closed_by = context.actor.get() or f"staff:{guide_id}"
    task.outcome_note = clean_note
    session.flush()
    return task


def task_counts(session: Session, guide_id: uuid.UUID, since: date) -> TaskCounts:
    """What became of the tasks put on her list since ``since`` (inclusive): done, skipped,
    still open, expired unhandled."""
    get_guide(session, guide_id)
    return task_counts_by_guide(session, [guide_id], since)[guide_id]


def task_counts_by_guide(
    session: Session, guide_ids: list[uuid.UUID], since: date
) -> dict[uuid.UUID, TaskCounts]:
    """:func:`task_counts` of many guides in one grouped statement (every guide asked for is
    answered, with zeros when she had no task)."""
    counts: dict[tuple[uuid.UUID, TaskStatus], int] = {
        (guide_id, status): n
        for guide_id, status, n in session.execute(
            select(GuideTask.guide_id, GuideTask.status, func.count())
            .where(GuideTask.guide_id.in_(guide_ids), GuideTask.due_on >= since)
            .group_by(GuideTask.guide_id, GuideTask.status)
        )
    }
    return {
        g: TaskCounts(
            done=counts.get((g, TaskStatus.DONE), 0),
            skipped=counts.get((g, TaskStatus.SKIPPED), 0),
            open=counts.get((g, TaskStatus.OPEN), 0),
            expired=counts.get((g, TaskStatus.EXPIRED), 0),
        )
        for g in guide_ids
    }
