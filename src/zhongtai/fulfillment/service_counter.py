"""The service counter's rules: which services (fish cleaning, alterations) an order asks of a
store, and how long each takes there."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from zhongtai.fulfillment.promise import PromiseSettings


@dataclass(frozen=True)
class ServiceAsked:
    """A service line of an order: what the customer asked for, and where it is done."""

    line_id: uuid.UUID
    service: str
    quantity: int
    location_id: uuid.UUID


@dataclass(frozen=True)
class ServiceJob:
    """A service the store's counter performs before the order is packed. ``prep_seconds`` is
    the time one service takes by the store's fulfilment profile (its defaults where the profile
    says nothing): the time the delivery promise counted for it."""

    line_id: uuid.UUID
    service: str
    quantity: int
    prep_seconds: int


def service_jobs(
    lines: Iterable[ServiceAsked], location_id: uuid.UUID, pace: PromiseSettings
) -> list[ServiceJob]:
    """The services ``location_id`` performs, in the order's line order, each timed by the
    location's ``pace``; a service done elsewhere is not this store's work."""
    return [
        ServiceJob(line.line_id, line.service, line.quantity, pace.prep_seconds(line.service))
        for line in lines
        if line.location_id == location_id
    ]
