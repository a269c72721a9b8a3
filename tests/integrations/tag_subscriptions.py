"""Subscribing a :mod:`tests.integrations.tag_receiver` to the tagged test events, and making
them: what the webhook delivery tests (lanes, re-drives, handovers, reactivation) share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import update

from tests.integrations.events import PriceTagged
from tests.integrations.tag_receiver import TagReceiver, tag_receiver
from zhongtai.core.db import Database
from zhongtai.core.outbox import record_event
from zhongtai.core.settings import Settings
from zhongtai.integrations import webhooks
from zhongtai.integrations.models import WebhookSubscription
from zhongtai.integrations.targets import TargetGuard

SEALER = webhooks.webhook_secrets(
    Settings(secret_key="webhook-tag-subscription-tests-0123456789abcdef")
)


@contextmanager
def receiving_tags(db: Database) -> Iterator[TagReceiver]:
    """A tag receiver for one test; afterwards every subscription is deactivated, so later
    tests' events are not queued for its (gone) endpoint."""
    with tag_receiver() as r:
        yield r
    with db.writer() as s, s.begin():
        s.execute(update(WebhookSubscription).values(active=False))


def subscribe(db: Database, url: str) -> WebhookSubscription:
    """A subscription of ``url`` to the tagged events (loopback allowed), committed."""
    with db.writer() as s, s.begin():
        sub, _ = webhooks.create_subscription(
            s,
            url=url,
            event_types=["test.price_tagged"],
            guard=TargetGuard(allow_private=True),
            sealer=SEALER,
        )
    return sub


def tag_price(db: Database, aggregate: str, tag: str) -> None:
    """Commit one tagged event of ``aggregate`` (its lane)."""
    with db.writer() as s, s.begin():
        record_event(s, PriceTagged(tag=tag), aggregate_type="tag", aggregate_id=aggregate)
