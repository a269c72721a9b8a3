"""An internal address spelt so that only the HTTP client reads it as one (full-width digits,
the ideographic full stop 。 of a Chinese keyboard) is refused where the client would reach it:
when a URL is configured, and again when a webhook or stock push is sent."""

from __future__ import annotations

import asyncio

import pytest

from tests.integrations.receiver import Receiver
from tests.integrations.relaying import relay_and_send
from tests.integrations.test_webhook_delivery import (
    FAST_RETRIES,
    LOOPBACK_ALLOWED,
    SEALER,
    _deliveries,
    _subscribe,
    _tag,
)
from zhongtai.core.db import Database
from zhongtai.integrations.models import DeliveryStatus
from zhongtai.integrations.outbound import check_url_address
from zhongtai.integrations.targets import TargetGuard, TargetRefused, url_refusal
from zhongtai.integrations.webhook_sender import WebhookSender

GUARDED = FAST_RETRIES.model_copy(update={"webhook_allow_private_targets": False})

#: Each reaches 127.0.0.1 or the metadata service through the HTTP client, which reads the host
#: as an IP address (and so connects without asking the resolver).
DISGUISED = [
    ("http://127。0。0。1/hook", "127.0.0.1 is a loopback address"),
    ("http://１２７.０.０.１/hook", "127.0.0.1 is a loopback address"),
    ("http://①②⑦.0.0.1/hook", "127.0.0.1 is a loopback address"),
    ("http://169。254。169。254/latest/meta-data/", "169.254.169.254 is a link-local address"),
]


@pytest.mark.parametrize(("url", "reason"), DISGUISED)
def test_an_internal_address_in_another_script_is_refused_by_the_url_alone(
    url: str, reason: str
) -> None:
    assert url_refusal(url) == reason
    with pytest.raises(TargetRefused, match=reason):
        check_url_address(url, allow_private=False)


@pytest.mark.parametrize(("url", "reason"), DISGUISED)
def test_an_internal_address_in_another_script_is_refused_without_asking_dns(
    url: str, reason: str
) -> None:
    def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError(f"{host} was looked up: the client would never look it up")

    with pytest.raises(TargetRefused, match=reason):
        TargetGuard(resolve=no_dns).check(url)


@pytest.mark.parametrize("host", ["2130706433", "127.1", "0177.0.0.1", "0x7f.1"])
def test_a_legacy_numeric_spelling_of_an_address_is_refused_by_the_url_alone(host: str) -> None:
    # The system resolver reads each as 127.0.0.1; a client that takes an all-digit host for an
    # address connects there without asking the guarded resolver.
    if host.replace(".", "").isdigit():
        assert (
            url_refusal(f"http://{host}/hook") == f"{host} is not an IP address in canonical form"
        )
        with pytest.raises(TargetRefused, match="canonical"):
            check_url_address(f"http://{host}/hook", allow_private=False)
    else:  # a name to the client: its resolver (and so the guard) sees it
        assert url_refusal(f"http://{host}/hook") is None
    with pytest.raises(TargetRefused):
        TargetGuard().check(f"http://{host}/hook")


def test_a_url_the_http_client_cannot_read_is_refused_when_configured() -> None:
    # The standard library reads a host here; the HTTP client refuses the URL outright, so a
    # subscription to it could never deliver anything.
    with pytest.raises(TargetRefused, match="is not a valid URL"):
        TargetGuard(resolve=lambda host, port: ["93.184.215.14"]).check(
            "http://hooks.example.com\\@93.184.215.14/"
        )


def test_a_webhook_to_a_disguised_loopback_address_is_not_sent_once_private_targets_are_off(
    db: Database, receiver: Receiver
) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    # Subscribed while private targets were allowed (or before the guard); now they are not.
    sub, _ = _subscribe(db, f"http://127。0。0。1:{port}/disguised", ["test.price_tagged"])
    _tag(db, "disguised-1")
    sender = WebhookSender(db.writer, GUARDED, sealer=SEALER)

    def settled() -> bool:
        return [d.status for d in _deliveries(db, sub)] in (
            [DeliveryStatus.DEAD],
            [DeliveryStatus.DELIVERED],
        )

    async def run() -> None:
        await relay_and_send(db, sender, settled)
        await sender.close()

    asyncio.run(run())
    assert receiver.bodies("/disguised") == [], "the request reached the loopback receiver"
    [delivery] = _deliveries(db, sub)
    assert delivery.status is DeliveryStatus.DEAD
    assert delivery.last_error is not None
    assert "127.0.0.1 is a loopback address" in delivery.last_error


def test_loopback_allowed_still_takes_the_disguised_spelling(
    db: Database, receiver: Receiver
) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    sub, _ = _subscribe(db, f"http://127。0。0。1:{port}/allowed", ["test.price_tagged"])
    assert LOOPBACK_ALLOWED.allow_private
    _tag(db, "allowed-1")
    sender = WebhookSender(db.writer, FAST_RETRIES, sealer=SEALER)

    async def run() -> None:
        await relay_and_send(db, sender, lambda: len(receiver.bodies("/allowed")) == 1)
        await sender.close()

    asyncio.run(run())
    assert [d.status for d in _deliveries(db, sub)] == [DeliveryStatus.DELIVERED]
