"""The life of a guide's task: its states, the explicit state machine between them, and whether
she may close a task with the outcome she chose.

Daily generation expires and reopens tasks; only the guide closes them. Closing twice with the
same outcome is a retry, not a conflict.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


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


#: The explicit state machine of a task; generation expires and reopens, the guide closes.
TRANSITIONS: Mapping[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.OPEN: frozenset({TaskStatus.DONE, TaskStatus.SKIPPED, TaskStatus.EXPIRED}),
    # She came back to this guide while the occurrence still holds: it is hers to do again.
    TaskStatus.EXPIRED: frozenset({TaskStatus.OPEN}),
    TaskStatus.DONE: frozenset(),
    TaskStatus.SKIPPED: frozenset(),
}


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
