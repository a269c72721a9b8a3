"""What holding a basket asks and answers: the checked request, and a held basket or an error.

Kept apart from the statements that hold stock so that callers (``reserve``, the reservation
desk, the HTTP route) can check a basket's shape before any transaction begins, and so that
every step of :func:`holds.hold_baskets` speaks of the same request and outcome.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from zhongtai.core import context
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import DomainError, InvalidInput
from zhongtai.inventory.allocation import check_channel
from zhongtai.inventory.checks import require_basket, require_text
from zhongtai.inventory.models import Reservation
from zhongtai.inventory.rules import Line, ttl_problem

REFERENCE_MAX = 128


@dataclass(frozen=True)
class Reserved:
    """A held basket. ``created`` is False for a retry of a reference held before."""

    created: bool
    reservation_id: uuid.UUID
    _load: Callable[[], Reservation] = field(repr=False, compare=False)

    @functools.cached_property
    def reservation(self) -> Reservation:
        """The reservation as stored; built when first read (a batch answers many callers
        that may never read it, and building ORM objects is most of a batch's Python)."""
        return self._load()


@dataclass(frozen=True)
class HoldRequest:
    """One basket to hold, checked for shape (not yet against the database)."""

    reference: str
    location_id: uuid.UUID
    lines: tuple[Line, ...]
    expires_at: datetime
    channel: str | None = None
    actor: str | None = None
    request_id: str | None = None


def hold_request(
    reference: str,
    location_id: uuid.UUID,
    lines: Sequence[Line],
    ttl: timedelta,
    *,
    channel: str | None = None,
    now: datetime | None = None,
) -> HoldRequest:
    """The request as :func:`holds.hold_baskets` takes it; 422 for a bad reference, basket,
    TTL or channel. Who asks (actor, request id) is taken from the caller's context here."""
    reference = require_text(reference, "reference", max_length=REFERENCE_MAX)
    require_basket(lines)
    problem = ttl_problem(int(ttl.total_seconds()))
    if problem:
        raise InvalidInput.field("ttl_seconds", problem)
    if channel is not None:
        check_channel(channel)
    return HoldRequest(
        reference=reference,
        location_id=location_id,
        lines=tuple(lines),
        expires_at=(now or utcnow()) + ttl,
        channel=channel,
        actor=context.actor.get(),
        request_id=context.request_id.get(),
    )


Outcome = Reserved | DomainError
